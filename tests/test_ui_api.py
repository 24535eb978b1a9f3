"""The web app driven through its API with gradio_client: a full conversation, and 20 concurrent sessions.

The app runs in-process on a free loopback port with the real engine on ml-latest-small (+ goodbooks-10k), the
real Chroma store (embedded, a reduced index so a fresh CI cache builds in well under a minute) and no LLM.
"""
from __future__ import annotations

import html
import re
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import SHARED_DATA, TEST_CACHE, has_data

INDEX_LIMIT = 1500
N_SESSIONS = 20

needs_data = pytest.mark.skipif(not has_data("ml-latest-small", "goodbooks-10k"),
                                reason=f"needs ml-latest-small and goodbooks-10k in {SHARED_DATA}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(concurrency: int = 4):
    """Bootstrap the real app and launch it without blocking. Returns (url, built, close)."""
    from app import ui_config
    from chatrec.bootstrap import bootstrap
    from chatrec.settings import Settings
    from ui.gradio_app import build_ui, launch_ui

    settings = Settings(data_dir=SHARED_DATA, cache_dir=TEST_CACHE / "app", allow_download=False,
                        llm_backend="none", rerank="score", concurrency=concurrency)
    built = bootstrap(settings, index_limit=INDEX_LIMIT, progress=False)
    demo = build_ui(built.engine, ui_config(built), concurrency=concurrency, engine_for=built.engine_for)
    port = free_port()
    launch_ui(demo, host="127.0.0.1", port=port, block=False, quiet=True)
    return f"http://127.0.0.1:{port}/", built, demo.close


@pytest.fixture(scope="module")
def app():
    if not has_data("ml-latest-small", "goodbooks-10k"):
        pytest.skip(f"needs ml-latest-small and goodbooks-10k in {SHARED_DATA}")
    url, built, close = start_app()
    try:
        yield url, built
    finally:
        close()


# ------------------------------------------------------------------------------------------------ helpers
def chat(client, message: str):
    """Send a message; returns (history, cards, number of streamed updates)."""
    job = client.submit(message, api_name="/chat")
    outputs = list(job)  # every streamed update
    result = job.result()
    return result[1], result[2] or [], len(outputs)


def feedback(client, item_id: str, kind: str):
    result = client.predict(item_id, kind, api_name="/feedback")
    return result[0], result[1] or []


def texts(history, role: str) -> list[str]:
    """Message texts as the user sees them (the app sends escaped HTML with <br> line breaks)."""
    out = []
    for m in history:
        if m["role"] != role:
            continue
        content = m["content"]
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        out.append(html.unescape(re.sub(r"<br>", "\n", re.sub(r"</?small>", "", content))))
    return out


def client_for(url: str):
    from gradio_client import Client

    return Client(url, verbose=False)


# ------------------------------------------------------------------------------------------------ rendering
def _matrix(**kw):
    from retrieval.types import Item

    base = dict(id="mls:2571", title="The Matrix", year=1999, genres=("Action", "Sci-Fi", "IMAX"),
                title_ko="매트릭스", tmdb_id="603", imdb_id="tt0133093", avg_rating=4.192, rating_count=278,
                runtime=136, certification_kr="15")
    return Item(**{**base, **kw})


def _card(item, reason="인터스텔라 팬이시라면: ‘우주’ 소재를 함께 다뤄요."):
    from chatrec.events import Card

    return Card(item_id=item.id, title=item.title, year=item.year, genres=item.genres, domain="movie",
                reason=reason, source="src")


def test_card_shows_korean_title_original_localized_facts_and_links():
    from ui.gradio_app import card_html

    it = _matrix()
    ko = card_html(_card(it), "ko", it, liked=True)
    assert '<div class="rec-title">매트릭스 <span class="rec-year">(1999)</span></div>' in ko
    assert '<div class="rec-original" lang="en">The Matrix</div>' in ko
    assert "액션 · SF · ★ 4.2 · 278명 평가 · 136분 · 15" in ko and "IMAX" not in ko and "Sci-Fi" not in ko
    assert 'href="https://www.themoviedb.org/movie/603"' in ko and 'href="https://www.imdb.com/title/tt0133093/"' in ko
    assert 'data-aria-like="좋아요: 매트릭스"' in ko and "rec-liked" in ko and "rec-placeholder" in ko
    en = card_html(_card(it, "Because you liked Alien: it also deals with space."), "en", it)
    assert '<div class="rec-title">The Matrix' in en and "rec-original" not in en
    assert "Action · Sci-Fi · ★ 4.2 · 278 ratings · 136 min" in en and 'data-aria-like="Like The Matrix"' in en


def test_card_fields_are_escaped_and_only_https_posters_show():
    from ui.gradio_app import card_html

    evil = _matrix(title_ko='<img src=x onerror="alert(1)">', poster_url="javascript:alert(1)")
    out = card_html(_card(evil, "<script>x</script>"), "ko", evil)
    assert "<img src=x" not in out and "<script>" not in out and "javascript:" not in out
    assert 'data-aria-like="좋아요: &lt;img src=x onerror=&quot;alert(1)&quot;&gt;"' in out
    ok = _matrix(poster_url="https://image.tmdb.org/t/p/w342/abc.jpg")
    assert '<img class="rec-poster" src="https://image.tmdb.org/t/p/w342/abc.jpg" alt="매트릭스 포스터"' in \
        card_html(_card(ok), "ko", ok)


def test_export_is_markdown_with_marks_and_no_injected_markup():
    from chatrec.session import Session
    from ui.taste import export_markdown, marked_choices

    it = _matrix(title_ko="매트릭스 [click](http://x)")
    items = {it.id: it}
    s = Session(language="ko")
    s.like(it.id)
    s.like("mls:unknown")
    md = export_markdown([_card(it)], s, items.get, "ko")
    assert md.startswith("# Chat-REC") and "## 👍 좋아요" in md
    assert "\\[click\\](http://x)" in md and "(https://www.themoviedb.org/movie/603)" in md
    assert marked_choices(s, items.get, "ko") == [("👍 매트릭스 [click](http://x) (1999)", it.id)]


def test_text_is_never_markup():
    from ui.gradio_app import as_text_html

    assert as_text_html("<img src=x onerror=alert(1)>\n**b**") == "&lt;img src=x onerror=alert(1)&gt;\n**b**"


def test_card_fields_are_escaped():
    from chatrec.events import Card
    from ui.gradio_app import card_html

    card = Card("mls:1", "<b>Toy</b> Story", 1995, ("Animation",), "movie", "reason <script>x</script>",
                "because you liked <i>it</i>", authors=("A & B",))
    out = card_html(card, "en")
    assert "<b>" not in out and "<script>" not in out and "<i>" not in out
    assert 'data-item-id="mls:1"' in out and "&lt;b&gt;Toy&lt;/b&gt; Story" in out and "A &amp; B" in out


def test_books_setting_is_a_typed_option_not_words_in_the_message(app):
    """The Books setting reaches the engine as the turn's domain; the user's message is shown and read as typed."""
    url, built = app
    c = client_for(url)
    job = c.submit("something like Dune", "en", 5, "book", "score", "none", api_name="/chat")
    list(job)
    history, cards = job.result()[1], job.result()[2] or []
    assert texts(history, "user")[-1] == "something like Dune"
    assert cards and all(card["domain"] == "book" for card in cards)
    job = c.submit("something like Dune", "en", 5, "movie", "score", "none", api_name="/chat")
    list(job)
    cards = job.result()[2] or []
    assert cards and all(card["domain"] == "movie" for card in cards)  # switching back really switches back


# ------------------------------------------------------------------------------------------------ the app
def test_full_conversation(app):
    url, built = app
    c = client_for(url)
    catalog = built.movies.catalog

    history, cards, updates = chat(c, "Recommend movies like The Matrix")
    assert texts(history, "user") == ["Recommend movies like The Matrix"]
    reply = texts(history, "assistant")[-1]
    assert reply.strip(), "the assistant replied with nothing"
    assert updates >= 1  # one update for a turn without an LLM (see test_ui_updates.py for streaming)
    assert len(cards) >= 3
    assert all(card["item_id"] in catalog for card in cards)
    assert not any(card["title"] == "Matrix, The" or card["title"] == "The Matrix" for card in cards)
    assert all(card["reason"] and card["source"] for card in cards)

    # Dislike the first card: it disappears and the list is refilled.
    gone = cards[0]["item_id"]
    history, after = feedback(c, gone, "dislike")
    assert gone not in [x["item_id"] for x in after]
    assert len(after) == len(cards)

    # Like another: it stays on the list (liked, marked on the card) and the list stays full.
    liked = after[0]["item_id"]
    history, after2 = feedback(c, liked, "like")
    assert [x["item_id"] for x in after2] == [x["item_id"] for x in after]
    # Cards carry what a person recognises a film by: MovieLens mean rating and count, TMDB / IMDb ids.
    assert all(x["rating_count"] and x["avg_rating"] and x["tmdb_id"] and x["imdb_id"].startswith("tt")
               for x in after2), after2

    # A Korean turn: the reply follows the user's language; the disliked film never comes back.
    history, cards_ko, _ = chat(c, "인터스텔라 같은 영화 추천해줘")
    assert re.search(r"[\uac00-\ud7a3]", texts(history, "assistant")[-1]), "reply to Korean is not in Korean"
    assert len(cards_ko) >= 3
    assert gone not in [x["item_id"] for x in cards_ko]
    assert texts(history, "user") == ["Recommend movies like The Matrix", "인터스텔라 같은 영화 추천해줘"]

    # Onboarding search-as-you-type, then "start with these".
    update = c.predict("toy story", [], api_name="/search_titles")
    hits = [tuple(choice) for choice in update["choices"]]  # (label, item_id)
    assert any(label.startswith("Toy Story") for label, _ in hits), hits
    label, item_id = next(h for h in hits if h[0].startswith("Toy Story"))
    result = c.predict([item_id], api_name="/like_titles")
    assert label in texts(result[1], "assistant")[-1]
    assert len(result[2]) >= 3 and item_id not in [x["item_id"] for x in result[2]]

    # Reset: empty conversation and no cards.
    result = c.predict(api_name="/reset")
    assert result[0] == [] and result[1] == []


def test_settings_books_and_list_length(app):
    url, built = app
    c = client_for(url)
    # /chat parameters after the message: lang, n_recs, domain, rerank, llm (the settings accordion).
    result = c.predict("Something like Interstellar", "en", 8, "book", "score", "none", api_name="/chat")
    cards = result[2]
    assert len(cards) == 8
    assert all(card["domain"] == "book" and card["item_id"] in built.books.catalog for card in cards)


def test_user_html_is_text(app):
    url, _ = app
    c = client_for(url)
    attack = "<img src=x onerror=alert(1)>"
    history, _, _ = chat(c, attack)
    assert texts(history, "user") == [attack]
    raw = history[0]["content"]
    raw = raw[0]["text"] if isinstance(raw, list) else raw
    assert "<img" not in raw and "&lt;img" in raw  # escaped before the Chatbot sees it


def test_bad_feedback_kind_is_an_error(app):
    from gradio_client.exceptions import AppError

    url, _ = app
    c = client_for(url)
    with pytest.raises(AppError, match="feedback kind"):
        c.predict("mls:1", "love", api_name="/feedback")


def test_concurrent_sessions_are_isolated(app):
    url, built = app
    # Unambiguous titles (a bare "Heat" makes the engine ask which one, with no cards yet).
    titles = ["Toy Story", "Pulp Fiction", "Fargo", "Alien", "Casablanca", "Jaws", "Rocky (1976)", "Up",
              "Seven (1995)", "Amélie", "Forrest Gump", "Fight Club", "Memento", "Inception", "Shrek",
              "Interstellar", "Vertigo", "Ratatouille", "Braveheart", "Goodfellas"]
    assert len(titles) == N_SESSIONS

    def one(i: int):
        c = client_for(url)
        msg = f"Recommend movies like {titles[i]}"
        history, cards, _ = chat(c, msg)
        first = cards[0]["item_id"] if cards else None
        history2, cards2 = feedback(c, first, "dislike") if first else (history, cards)
        history3, cards3, _ = chat(c, f"More please, session {i}")
        return msg, history3, cards, cards2, cards3, first

    with ThreadPoolExecutor(N_SESSIONS) as pool:
        results = list(pool.map(one, range(N_SESSIONS)))

    for i, (msg, history, cards, cards2, cards3, first) in enumerate(results):
        assert texts(history, "user") == [msg, f"More please, session {i}"], f"session {i} saw another history"
        assert len(cards) >= 3, f"session {i} got {len(cards)} cards"
        assert first not in [x["item_id"] for x in cards2], f"session {i}: disliked card still shown"
        assert first not in [x["item_id"] for x in cards3], f"session {i}: disliked card came back"
    # Different requests lead to different lists: no session received another's cards wholesale.
    firsts = {tuple(x["item_id"] for x in r[2]) for r in results}
    assert len(firsts) > N_SESSIONS // 2
