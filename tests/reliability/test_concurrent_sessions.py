"""50 concurrent browser sessions over loopback through the Gradio API (gradio_client), against the real app.

Each session (half Korean, half English) asks for something of its own, gives feedback (like / dislike / seen, in
rotation) on its first card, and asks again. No cross-talk (every session sees exactly its own messages), no lost
feedback (the item never comes back in that session), no errors. Bounded: every call has a timeout, the pool
has a deadline, and pytest-timeout stops the test if anything still hangs.
"""
from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor, wait

import pytest

from tests.test_ui_api import free_port, texts

N_SESSIONS = 50
CALL_TIMEOUT_S = 120
DEADLINE_S = 400
FEEDBACK = ("dislike", "like", "seen")


@pytest.fixture(scope="module")
def app_url(parts):
    from app import ui_config
    from ui.gradio_app import build_ui, launch_ui

    demo = build_ui(parts.engine, ui_config(parts.built), concurrency=4)
    port = free_port()
    launch_ui(demo, host="127.0.0.1", port=port, block=False, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def _chat(client, message: str):
    # Keyword arguments: the conversation (history included) lives in the server-side per-client state.
    job = client.submit(message=message, api_name="/chat")
    result = job.result(timeout=CALL_TIMEOUT_S)
    return result[1], result[2] or []


def _distinct_labels(parts, n: int) -> list[str]:
    """The n most-rated movies whose title is unique in the catalog, as "Title (Year)": each session asks for its
    own film and no request is ambiguous (an ambiguous one gets a question back instead of cards)."""
    import numpy as np

    from retrieval.titles import title_key

    movies = parts.built.movies
    counts = np.bincount(movies.ratings.item, minlength=len(movies.catalog))
    keys: dict[str, int] = {}
    for it in movies.catalog:
        keys[title_key(it.title)] = keys.get(title_key(it.title), 0) + 1
    out = []
    for row in np.argsort(-counts, kind="stable"):
        it = movies.catalog.items[int(row)]
        if keys[title_key(it.title)] == 1 and it.year:
            out.append(it.label)
        if len(out) == n:
            return out
    raise AssertionError("not enough distinct titles")


def _session(url: str, i: int, title: str) -> dict:
    from gradio_client import Client

    c = Client(url, verbose=False, httpx_kwargs={"timeout": CALL_TIMEOUT_S}, analytics_enabled=False,
               download_files=False)
    ko = i % 2 == 1
    msg1 = f"{title} 같은 영화 추천해 줘" if ko else f"Recommend movies like {title}"
    history, cards = _chat(c, msg1)
    kind = FEEDBACK[i % len(FEEDBACK)]
    target = cards[0]["item_id"] if cards else None
    after = None
    if target:
        job = c.submit(item_id=target, kind=kind, api_name="/feedback")
        res = job.result(timeout=CALL_TIMEOUT_S)
        after = res[1] or []
    msg2 = f"다른 영화도 추천해 줘 ({i}번)" if ko else f"More please, session {i}"
    history2, cards2 = _chat(c, msg2)
    return dict(i=i, ko=ko, msgs=[msg1, msg2], kind=kind, target=target, cards=cards, after=after,
                cards2=cards2, history=history2)


@pytest.mark.timeout(DEADLINE_S + 60)
def test_fifty_concurrent_sessions(app_url, parts):
    titles = _distinct_labels(parts, N_SESSIONS)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(N_SESSIONS) as pool:
        futures = [pool.submit(_session, app_url, i, titles[i]) for i in range(N_SESSIONS)]
        done, pending = wait(futures, timeout=DEADLINE_S)
        for f in pending:
            f.cancel()
    elapsed = time.perf_counter() - t0
    assert not pending, f"{len(pending)} sessions did not finish within {DEADLINE_S} s"
    errors = [repr(f.exception()) for f in done if f.exception() is not None]
    assert not errors, f"{len(errors)} sessions failed: {errors[:3]}"
    results = sorted((f.result() for f in done), key=lambda r: r["i"])
    catalog = parts.catalog
    for r in results:
        i = r["i"]
        assert texts(r["history"], "user") == r["msgs"], f"session {i} saw another session's messages"
        replies = texts(r["history"], "assistant")
        assert len(replies) == (3 if r["target"] else 2), f"session {i}: {len(replies)} replies (feedback lost?)"
        assert all(x.strip() for x in replies), f"session {i}: empty reply"
        if r["ko"]:
            assert re.search(r"[\uac00-\ud7a3]", replies[-1]), f"session {i}: Korean user got a non-Korean reply"
        # The first answer may be a question back (a title the resolver is unsure of); the second has cards.
        assert r["cards"] or "?" in replies[0], (f"session {i}: no cards and no question", replies[0][:200])
        assert r["cards2"], (f"session {i}: no cards", r["msgs"], replies)
        ids = [c["item_id"] for c in r["cards"] + r["cards2"] + (r["after"] or [])]
        assert all(x in catalog for x in ids), f"session {i}: card id not in the catalog"
        if r["target"]:
            # A liked card stays on screen (marked); a disliked or seen one is replaced.
            kept = r["target"] in [c["item_id"] for c in r["after"]]
            assert kept == (r["kind"] == "like"), f"session {i}: {r['kind']} card {'kept' if kept else 'dropped'}"
        assert r["target"] not in [c["item_id"] for c in r["cards2"]], f"session {i}: {r['kind']} item came back"
    lists = {tuple(c["item_id"] for c in r["cards"]) for r in results if r["cards"]}
    assert len(lists) > N_SESSIONS // 4, "most sessions got the same cards: requests were not kept apart"
    asked = sum(not r["cards"] for r in results)
    print(f"\n{N_SESSIONS} sessions × (2 turns + 1 feedback) over loopback in {elapsed:.1f} s; "
          f"{asked} first turns were questions back")
