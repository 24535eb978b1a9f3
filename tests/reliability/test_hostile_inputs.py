"""Hostile user input through the real engine (ml-latest-small + books, Chroma, no LLM).

Every line of tests/data/hostile_inputs.txt (SQL injection, XSS, prompt injection in KO and EN, control characters
and NUL, RTL and zero-width characters, emoji only, broken Unicode), plus an empty and a 100,000-character message:
0 exceptions (raised or caught-and-logged), a non-empty answer, no HTML, no system-prompt text, only catalog ids,
and a session that still saves as UTF-8 JSON and loads back.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from chatrec.session import Session

from .common import logged_exceptions, problems, run

HOSTILE_FILE = Path(__file__).resolve().parents[1] / "data" / "hostile_inputs.txt"
LONG_LEN = 100_000


def decode_line(line: str) -> str:
    """Lines are written with Python escapes (\\x00, \\u202e, \\ud800 ...); non-ASCII text passes through."""
    return line.encode("latin-1", "backslashreplace").decode("unicode_escape")


def load_cases() -> list[tuple[str, str]]:
    """(id, text) pairs; ids are "<section>-<n>", e.g. "sql-injection-03"."""
    cases, section, n = [], "misc", 0
    for raw in HOSTILE_FILE.read_text(encoding="utf-8").split("\n"):
        if raw.startswith("## section:"):
            section, n = "-".join(raw.split(":", 1)[1].lower().replace(",", "").split()), 0
            continue
        if not raw or raw.startswith("## "):
            continue
        n += 1
        cases.append((f"{section}-{n:02d}", decode_line(raw)))
    long = ("추천해 줘 The Matrix 같은 SF <b>영화</b> \u202e\u200b " * (LONG_LEN // 20 + 1))[:LONG_LEN]
    cases.append(("generated-100k", long))
    cases.append(("generated-empty", ""))
    return cases


CASES = load_cases()


def test_hostile_file_covers_the_categories():
    names = {cid.rsplit("-", 1)[0] for cid, _ in CASES}
    assert len(CASES) - 2 >= 200, f"only {len(CASES) - 2} inputs in {HOSTILE_FILE}"
    for want in ("sql-injection", "xss-and-html", "prompt-injection-english", "prompt-injection-korean",
                 "control-characters-and-nul", "rtl-and-zero-width", "emoji-only", "broken-unicode"):
        assert any(n.startswith(want) for n in names), f"no {want} section in {sorted(names)}"
    texts = [t for _, t in CASES]
    assert any("\x00" in t for t in texts)
    assert any(any(0xD800 <= ord(c) <= 0xDFFF for c in t) for t in texts), "no lone surrogate"
    assert any("\u202e" in t for t in texts) and any("\u200b" in t for t in texts)
    assert max(len(t) for t in texts) == LONG_LEN


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_gets_a_clean_answer(parts, case, caplog):
    _, text = case
    session = parts.engine.new_session(language="ko" if "korean" in case[0] else "en")
    with caplog.at_level(logging.WARNING):
        out = run(parts.engine.turn(session, text))
    assert not logged_exceptions(caplog.records), logged_exceptions(caplog.records)
    assert not problems(out, parts.catalog), (problems(out, parts.catalog), out.text[:300])
    saved = session.to_json()
    saved.encode("utf-8")  # a session must be storable as a file: no lone surrogates left in it
    assert Session.from_json(saved).to_json() == saved


def test_all_hostile_inputs_in_one_session(parts, caplog):
    """State built up over 200+ hostile turns (history, shown, wishes) never breaks a later turn."""
    engine = parts.engine
    session = engine.new_session(language="en")
    t0 = time.perf_counter()
    failures = []
    with caplog.at_level(logging.WARNING):
        for cid, text in CASES:
            out = run(engine.turn(session, text))
            bad = problems(out, parts.catalog)
            if bad:
                failures.append((cid, bad))
            if out.cards:  # also hit the feedback path with what the engine just showed
                run(engine.feedback(session, out.cards[0].item_id, "dislike"))
        out = run(engine.turn(session, "Recommend a good sci-fi movie"))
    elapsed = time.perf_counter() - t0
    assert not failures, failures[:5]
    assert not logged_exceptions(caplog.records), logged_exceptions(caplog.records)[:5]
    assert out.cards and not problems(out, parts.catalog, need_cards=True)
    assert not ({c.item_id for c in out.cards} & set(session.disliked)), "a disliked item came back"
    print(f"\n{len(CASES)} hostile turns in one session: {elapsed:.1f} s ({elapsed / len(CASES) * 1000:.0f} ms/turn)")
    Session.from_json(session.to_json().encode("utf-8").decode("utf-8"))


def test_hostile_strings_as_feedback_and_search(parts, caplog):
    """The API-only paths (feedback by item id, title search) take arbitrary strings too."""
    engine = parts.engine
    session = engine.new_session(language="en")
    sample = [t for _, t in CASES[::7]] + ["mls:999999999", "book:-1", "", "\x00", "\ud800"]
    with caplog.at_level(logging.WARNING):
        for s in sample:
            out = run(engine.feedback(session, s, "dislike"))
            assert out.text.strip() or out.notices, f"no answer to feedback on {s[:40]!r}"
            assert not problems(out, parts.catalog)
            hits = engine.search_titles(s[:1000], k=10)
            assert all(i in parts.catalog for i, _ in hits)
    assert not logged_exceptions(caplog.records), logged_exceptions(caplog.records)[:5]
    assert all(i in parts.catalog for i in session.disliked), "a non-catalog id was stored as disliked"
    for s in sample:  # an invalid feedback kind (the Gradio API takes it as free text) is answered, not raised
        out = run(engine.feedback(session, "mls:1", s[:200]))
        assert out.text.strip() or out.notices
