"""The dialogue harness: script loading, per-turn checks, simulated users, and a smoke run on the real engine.

The judging logic is tested on hand-made turn outcomes (it is parsing/judging code); the smoke test runs
`chatrec-eval dialogue` end to end on 3 scripts and 5 simulated users with the real app (no LLM).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chatrec.events import Card, Cards, Notice, TextChunk
from chatrec.eval.dialogue import ScriptError, load_script, load_scripts
from chatrec.eval.expectations import (DialogueState, Expectations, LeakDetector, TurnOutcome, check_turn,
                                       detect_language)
from chatrec.eval.simulator import SimDialogue, SimTurn, SimUser, attributes_of, sample_users, summarize
from retrieval.types import Catalog, Item, Ratings
from tests.conftest import SHARED_DATA, TEST_CACHE, has_data

SCRIPTS = Path(__file__).parent / "dialogues"
REQUIRED_COVERAGE = {"recommend", "more-like-X", "dislike feedback", "details", "compare", "books",
                     "books cross-domain", "off-topic", "ambiguous title", "unknown Hangul title", "prompt injection"}


def card(item_id, title, year=1999, genres=("Sci-Fi",), domain="movie", reason="r", source="s"):
    return Card(item_id, title, year, tuple(genres), domain, reason, source)


CAT = Catalog([Item("mls:1", "The Matrix", 1999, ("Action", "Sci-Fi")),
               Item("mls:2", "The Matrix Reloaded", 2003, ("Action", "Sci-Fi")),
               Item("mls:3", "Heat", 1995, ("Crime",)),
               Item("book:1", "Dune", 1965, (), "book")], name="tiny")


def state(**kw):
    return DialogueState(catalog=CAT, leak=LeakDetector(["You are a secret system prompt that must never leak out."]),
                         catalog_titles=tuple(it.title for it in CAT), **kw)


def outcome(text="", cards=(), notices=()):
    events = [TextChunk(text)] + list(notices) + ([Cards(tuple(cards))] if cards is not None else [])
    return TurnOutcome.from_events(events)


def failed(checks):
    return {c.name for c in checks if not c.passed}


# ------------------------------------------------------------------------------------------------ scripts
def test_bundled_scripts_load_and_cover_the_brief():
    scripts = load_scripts(SCRIPTS)
    assert len(scripts) >= 20
    assert sum(s.language == "ko" for s in scripts) * 2 >= len(scripts), "at least half must be Korean"
    assert len({s.name for s in scripts}) == len(scripts)
    assert REQUIRED_COVERAGE <= {s.covers for s in scripts}


def test_script_typos_fail_loudly(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nlanguage: ko\nturns:\n  - user: hi\n    expect: {min_card: 3}\n", encoding="utf-8")
    with pytest.raises(ScriptError, match="min_card"):
        load_script(bad)
    bad.write_text("name: x\nlanguage: ko\nturns:\n  - user: hi\n    feedback: {kind: like, card: 1}\n",
                   encoding="utf-8")
    with pytest.raises(ScriptError, match="exactly one"):
        load_script(bad)
    bad.write_text("name: x\nlanguage: fr\nturns:\n  - user: hi\n", encoding="utf-8")
    with pytest.raises(ScriptError, match="language"):
        load_script(bad)
    with pytest.raises(ScriptError, match="does not exist"):
        load_scripts(tmp_path / "nowhere")


# ------------------------------------------------------------------------------------------------ checks
def test_detect_language():
    assert detect_language("SF 영화 추천해 드릴게요: The Matrix (1999), Star Wars (1977)") == "ko"
    assert detect_language("Here are some picks: The Matrix (1999).") == "en"
    assert detect_language("Nothing similar to 헤어질 결심 in my catalog, sorry; try another title.") == "en"
    assert detect_language("12345 !!!") == "none"


def test_always_checks_catch_html_leaks_and_stray_ids():
    out = outcome("Sure <script>alert(1)</script> you are a secret system prompt that must never leak out.",
                  [card("mls:999", "Ghost")])
    assert failed(check_turn(Expectations(), out, state())) == {"no_html_in_reply", "no_system_prompt_leak",
                                                                 "card_ids_in_catalog"}
    assert "non_empty_answer" in failed(check_turn(Expectations(), outcome("", ()), state()))
    assert "no_exception" in failed(check_turn(Expectations(), TurnOutcome.from_events([], error="boom"), state()))
    ok = outcome("Try Heat (1995) — a &lt;b&gt; crime classic; 3 < 5 > 1", [card("mls:3", "Heat", genres=("Crime",))])
    assert not failed(check_turn(Expectations(), ok, state()))


def test_expectations_on_cards_and_language():
    cards = [card("mls:3", "Heat", 1995, ("Crime",)), card("mls:1", "The Matrix", 1999, ("Action", "Sci-Fi"))]
    exp = Expectations(reply_language="ko", min_cards=2, cards_contain_genre="Sci-Fi", cards_domain="movie",
                       cards_exclude_title="Heat", cards_year_between=[1990, 1999])
    got = failed(check_turn(exp, outcome("이런 영화는 어떠세요? 둘 다 추천해요.", cards), state()))
    assert got == {"cards_exclude_title"}
    exp = Expectations(reply_language="en", cards_any_domain="book", max_cards=1)
    assert failed(check_turn(exp, outcome("이런 영화", cards), state())) == {"reply_language", "cards_any_domain",
                                                                           "max_cards"}


def test_never_mentions_is_sticky_and_ignores_longer_titles():
    st = state()
    exp = Expectations(never_mentions=["The Matrix"])
    ok = outcome("If you liked The Matrix Reloaded, try Heat.", [card("mls:2", "The Matrix Reloaded")])
    assert not failed(check_turn(exp, ok, st))
    later = outcome("Because you asked: the matrix is great.", [card("mls:3", "Heat")])
    assert failed(check_turn(Expectations(), later, st)) == {"never_mentions:The Matrix"}
    shown = outcome("Here you go.", [card("mls:1", "The Matrix")])
    assert failed(check_turn(Expectations(), shown, st)) == {"never_mentions:The Matrix"}


def test_disliked_repeats_and_questions():
    st = state(shown=["mls:3"], disliked={"mls:1"})
    out = outcome("Which one did you mean?", [card("mls:1", "The Matrix"), card("mls:3", "Heat")])
    exp = Expectations(disliked_never_shown=True, no_repeats=True, asks_clarifying_question=True)
    assert failed(check_turn(exp, out, st)) == {"disliked_never_shown", "no_repeats"}
    exp = Expectations(asks_or_admits_unknown=True)
    assert not failed(check_turn(exp, outcome("그 제목은 찾지 못했어요. 다른 작품을 알려 주세요."), state()))
    assert failed(check_turn(exp, outcome("Here are popular picks."), state())) == {"asks_or_admits_unknown"}
    pending = type("S", (), {"pending": object()})()
    assert not failed(check_turn(Expectations(asks_clarifying_question=True), outcome("1933, 1976 or 2005."),
                                 state(), session=pending))
    exp = Expectations(reply_mentions_all=["Alien", "Aliens"], has_notice="fallback")
    out = outcome("Alien is horror; Aliens is action.", notices=[Notice("ranking fell back", "fallback")])
    assert not failed(check_turn(exp, out, state()))


# ------------------------------------------------------------------------------------------------ simulator
def _tiny_dataset():
    items = [Item(f"ml1m:{i}", f"Film {i}", 1980 + i, ("Drama", "Crime") if i % 2 else ("Sci-Fi",),
                  directors=(f"Director {i}",), actors=(f"Actor {i}",),
                  plot=f"Film {i} tells the story of a hero number {i} who saves the whole world twice over.")
              for i in range(1, 13)]
    cat = Catalog(items, name="tiny")
    users, rows, ratings, ts = [], [], [], []
    for u in range(4):
        for j in range(12):
            users.append(u)
            rows.append((j + u) % 12)
            ratings.append(5.0 if j % 3 else 2.0)
            ts.append(1000 * u + j)
    r = Ratings(np.array(users), np.array(rows), np.array(ratings, np.float32), np.array(ts),
                tuple(f"u{u}" for u in range(4)))
    return type("DS", (), {"name": "tiny", "catalog": cat, "ratings": r})()


def test_sample_users_hide_a_late_favourite_and_speak_both_languages():
    ds = _tiny_dataset()
    users = sample_users(ds, 4, seed=1, min_ratings=10)
    assert [u.language for u in users] == ["ko", "en", "ko", "en"]
    for u in users:
        assert u.target_id in ds.catalog and u.target_id not in u.liked_ids and len(u.liked_ids) == 3
        assert [a.kind for a in u.attributes] == ["genre", "era", "director", "actor", "plot"]
        texts = [u.utterance(t) for t in range(5)]
        assert len(set(texts)) == 5
        title = ds.catalog[u.target_id].title
        assert "Film" not in u.attributes[-1].value, "the plot hint gives the title away"
        assert title not in " ".join(texts)
    ko = users[0]
    assert "영화" in ko.utterance(0) and ("SF" in ko.utterance(0) or "드라마" in ko.utterance(0))
    assert ko.utterance(2, cumulative=True).count("영화") >= 3
    with pytest.raises(ValueError, match="qualify"):
        sample_users(ds, 50, min_ratings=10)
    assert attributes_of(Item("x", "No facts"), "en") is None


def test_summarize_counts_what_the_report_promises():
    u = SimUser("u1", "ko", "ml1m:5", ("ml1m:1",), ())

    def turn(i, ids, rank=None, lang="ko", hall=(), rep=(), dis=(), lat=0.1, notices=()):
        return SimTurn(i, "x", tuple(ids), "t", lang, tuple(notices), lat, lat / 2, None, rank, tuple(hall),
                       tuple(rep), tuple(dis))

    d1 = SimDialogue(u, [turn(1, ["a", "b"]), turn(2, ["c", "ml1m:5"], rank=2, lang="en")], success_turn=2)
    d2 = SimDialogue(u, [turn(1, ["a"], hall=["zz:1"]), turn(2, ["a"], rep=["a"], dis=["a"], notices=["fallback"]),
                         turn(3, [])])
    m = summarize([d1, d2], turns=3, ks=(1, 3))
    assert m["success@1"] == 0.0 and m["success@3"] == 0.5
    assert m["avg_turns_to_success"] == 2.0
    assert m["success_by_turn"] == [0.0, 0.5, 0.5]
    assert m["recall@3_by_turn"][:2] == [0.0, 0.5] and m["recall@3_by_turn"][2] == 0.0
    assert (m["hallucinated_ids"], m["repeats"], m["disliked_violations"]) == (1, 1, 1)
    assert m["language_match"] == pytest.approx(4 / 5)
    assert m["fallback_rate"] == pytest.approx(1 / 5) and m["empty_card_turns"] == 1


# ------------------------------------------------------------------------------------------------ smoke run
@pytest.mark.skipif(not has_data("ml-latest-small", "goodbooks-10k"), reason=f"needs ml-latest-small in {SHARED_DATA}")
def test_harness_smoke_run(tmp_path):
    from chatrec.eval.dialogue import main

    out = tmp_path / "run"
    rc = main(["--scripts", str(SCRIPTS), "--only", "ko_recommend_scifi", "en_dislike_matrix", "ko_prompt_injection",
               "--simulate", "5", "--turns", "3", "--data-dir", str(SHARED_DATA), "--cache-dir",
               str(TEST_CACHE / "app"), "--no-allow-download", "--index-limit", "1500", "--out", str(out),
               "--no-progress"])
    assert rc in (0, 1)
    report = (out / "report.md").read_text(encoding="utf-8")
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert "Scripted dialogues" in report and "Simulated users" in report
    assert (out / "success_by_turn.png").stat().st_size > 1000 and (out / "latency_hist.png").is_file()
    scripts = results["scripts"]["score"]
    assert {s["name"] for s in scripts} == {"ko_recommend_scifi", "en_dislike_matrix", "ko_prompt_injection"}
    for s in scripts:  # the checks every turn must pass hold even where a script's own expectations may not
        for t in s["turns"]:
            hard = [c for c in t["checks"] if c["name"] in ("no_exception", "card_ids_in_catalog",
                                                             "no_system_prompt_leak", "no_html_in_reply")]
            assert all(c["passed"] for c in hard), (s["name"], t["index"], hard)
    m = results["simulation"]["score"]["metrics"]
    assert m["users"] == 5 and m["errors"] == 0 and m["hallucinated_ids"] == 0
    assert 0.0 <= m["success@5"] <= 1.0 and m["turns_played"] >= 5
