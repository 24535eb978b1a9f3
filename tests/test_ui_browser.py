"""The web app in a real headless browser (Debian Chromium driven by playwright).

Types a Korean request, watches the reply stream in and the cards appear, dislikes one and sees it replaced,
checks that an HTML/script message shows as text without firing a dialog, and saves a screenshot to
test-artifacts/ui.png. Skipped only when no chromium binary is installed (CI installs it with apt).
"""
from __future__ import annotations

import shutil

import pytest

from tests.conftest import ROOT
from tests.test_ui_api import needs_data, start_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = ROOT / "test-artifacts"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 60_000

pytestmark = [needs_data, pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")]


@pytest.fixture(scope="module")
def app_url():
    url, _, close = start_app()
    try:
        yield url
    finally:
        close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, app_url):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1100}, locale="ko-KR")
    pg = ctx.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    dialogs: list[str] = []
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    pg.dialogs = dialogs
    # A Gradio page never reaches "networkidle" (its event stream stays open): wait for a selector instead.
    pg.goto(app_url, wait_until="domcontentloaded")
    pg.wait_for_selector("#msg textarea")
    yield pg
    ctx.close()


def send(page, text: str) -> None:
    page.fill("#msg textarea", text)
    page.press("#msg textarea", "Enter")


def card_ids(page) -> list[str]:
    return page.eval_on_selector_all(
        ".rec-slot .rec-card", "els => els.filter(e => e.offsetParent !== null).map(e => e.dataset.itemId)")


def test_korean_conversation_cards_and_dislike(page):
    # The browser's language (ko-KR) picks the Korean labels.
    page.wait_for_function("() => document.querySelector('#send').innerText.includes('보내기')")
    send(page, "인터스텔라 같은 영화 추천해줘")
    # The reply text shows up in the assistant bubble (streamed chunk by chunk; the API test counts the updates).
    page.wait_for_function("() => { const b = document.querySelectorAll('#chatbot .message.bot');"
                           " return b.length && b[b.length - 1].innerText.trim().length > 0 }")
    page.wait_for_function("() => document.querySelectorAll('.rec-slot .rec-card').length >= 3")
    ids = card_ids(page)
    assert len(ids) >= 3
    reply = page.evaluate("() => { const b = document.querySelectorAll('#chatbot .message.bot');"
                          " return b[b.length - 1].innerText }")
    assert any("\uac00" <= ch <= "\ud7a3" for ch in reply), f"reply not in Korean: {reply!r}"

    # Dislike the first card: it disappears, another takes its place, the count stays.
    page.click("#dislike-0")
    page.wait_for_function("(id) => { const e = document.querySelector('#card-0 .rec-card');"
                           " return e && e.dataset.itemId !== id }", arg=ids[0])
    after = card_ids(page)
    assert ids[0] not in after
    assert len(after) == len(ids)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui.png"), full_page=True)
    assert (ARTIFACTS / "ui.png").stat().st_size > 10_000


def test_html_message_shows_as_text(page):
    attack = "<img src=x onerror=alert(1)>"
    send(page, attack)
    page.wait_for_function("(t) => document.querySelector('#chatbot').innerText.includes(t)", arg=attack)
    page.wait_for_timeout(500)  # give an injected handler time to fire, if there were one
    assert page.dialogs == []
    assert page.locator("#chatbot img[src='x']").count() == 0


def test_onboarding_search_and_like(page):
    # Typed key by key, as a person would (Gradio's `input` event ignores a programmatic fill).
    page.click("#title-search textarea")
    page.keyboard.type("toy sto", delay=40)
    page.wait_for_selector("#title-picks label:has-text('Toy Story')")
    page.locator("#title-picks label:has-text('Toy Story')").first.click()
    page.click("#like-picks")
    page.wait_for_function("() => document.querySelectorAll('.rec-slot .rec-card').length >= 3")
    assert "Toy Story" in page.inner_text("#chatbot")
