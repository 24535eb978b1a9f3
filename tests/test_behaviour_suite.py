"""The behaviour suite (tests/behaviour/): short KO/EN conversations that check what the engine understood.

Each script checks the session state (liked / disliked / seen) and the cards (genre conjunctions, excluded genres and
titles, periods, people, origin, domain, references to cards) of a 1–4 turn conversation. The expectations say what
a careful human recommender would do with this catalog (ml-latest-small + goodbooks-10k), not what the code does today.

- Schema and coverage run everywhere: every script loads, the suite is large enough, half Korean, every category
  is present, and the failures listed in issue 13 each have a script.
- With the data present, every title and genre a script names is checked against the real catalog (a typo there
  would make a check pass or fail for the wrong reason).
- The integration test (`-m behaviour`, deselect with `-m "not behaviour"`) plays every script against the real
  engine (no LLM, score order, a reduced knowledge index), prints a per-category table and asserts ≥ 95% of the
  scripts pass.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from chatrec.eval.dialogue import CATEGORY_COLUMNS, category_rows, load_scripts
from chatrec.eval.expectations import Expectations
from chatrec.eval.report import markdown_table
from tests.conftest import SHARED_DATA, TEST_CACHE, has_data

SUITE = Path(__file__).parent / "behaviour"
# Realistic, messy lines (typos, glued Korean, corrections, questions about cards, ranges) written after the rules,
# with a held-out part (annotations/SPLIT.md, by script name) that no change is tuned on.
MESSY = Path(__file__).parent / "behaviour_messy"
MESSY_DEV_RATE = 0.70  # the dev part passed .654 before the dialogue-act policy for questions, corrections, answers
CATEGORIES = {"titles", "negation", "genres", "period", "follow-ups", "references", "people", "origin", "domain",
              "chit-chat"}
MIN_SCRIPTS = 90
PASS_RATE = 0.95
INDEX_LIMIT = 1500
# The failures issue 13 lists, one script each (the issue's wording in the comment).
ISSUE_SCRIPTS = {
    "ko_titles_hanguk_not_hancock",  # "한국 영화 추천해줘" → Hancock
    "ko_genres_fantasy_not_fantasia",  # "판타지 영화" → Fantasia
    "en_ref_more_like_the_second_one",  # "more like the second one" → Seconds
    "en_titles_no_is_not_a_title",  # "No" → Nô
    "en_titles_whatever_is_not_a_title",  # "Whatever you recommend" → Whatever
    "en_titles_infinity_war_with_year",  # "Avengers: Infinity War (2018)" → Infinity + The War
    "en_titles_year_in_parentheses",  # "(1984)" → 1984
    "ko_neg_avengers_other_heroes",  # "어벤져스 시리즈 말고 다른 히어로 영화"
    "ko_neg_scary_to_family",  # "무서운 영화 말고 가족이랑 볼 만한 거"
    "ko_neg_fantasy_to_mystery_books",  # "판타지 말고 추리소설로"
    "en_neg_matrix_less_violent",  # "like The Matrix but less violent"
    "ko_genres_90s_romcom",  # "90년대 로맨틱 코미디"
    "ko_follow_lighter_keeps_romcom_90s",  # "좀 더 가벼운 걸로"
    "ko_follow_animation_is_better",  # "애니메이션이면 더 좋아"
    "en_follow_who_directed_it",  # "who directed it?"
    "ko_follow_similar_to_that",  # "그거랑 비슷한 거"
    "en_follow_similar_after_details",  # "recommend something similar" after details
    "en_follow_titanic_askback_keeps_romance",  # the romance request lost after "which Titanic?"
    "en_titles_never_seen_vs_seen",  # "I have never seen X. I have seen Y"
    "en_chit_those_are_awesome",  # "Those are awesome"
    "en_chit_like_that_kind",  # "I like that kind of movies"
    "en_ref_the_new_one_blade_runner",  # "the new one" → a year filter
    "en_domain_book_and_movie_stays_movies",  # "I loved the book and the movie" → books
    "ko_people_bong_joon_ho",  # "봉준호 감독 영화" → The Good Shepherd
    "ko_titles_parasite_not_in_catalog",  # "기생충" (2019) → nothing to offer
    "ko_domain_movie_book_and_back",  # Books, then Movies again, still returned books
}
TITLE_FIELDS = ("cards_contain_title", "cards_exclude_title", "never_mentions", "cards_any_title", "cards_only_titles",
                "liked_include", "liked_exclude", "liked_only", "disliked_include", "disliked_exclude", "seen_include",
                "seen_exclude")
GENRE_FIELDS = ("cards_contain_genre", "cards_all_genres", "cards_no_genre")
# What a check on the understanding looks like; reply_language and min_reply_chars alone do not test it.
UNDERSTANDING_FIELDS = set(Expectations.model_fields) - {"reply_language", "min_reply_chars", "no_html_in_reply",
                                                         "no_system_prompt_leak"}

HANGUL = re.compile(r"[\uac00-\ud7a3]")

needs_data = pytest.mark.skipif(not has_data("ml-latest-small", "goodbooks-10k"),
                                reason=f"needs ml-latest-small and goodbooks-10k in {SHARED_DATA}")


@pytest.fixture(scope="module")
def scripts():
    return load_scripts(SUITE)


@pytest.fixture(scope="module")
def messy():
    return load_scripts(MESSY)


def _expectations(script):
    return [t.expect for t in script.turns]


def _norm(title: str) -> str:
    return " ".join(title.casefold().split())


# ------------------------------------------------------------------------------------------------ schema, coverage
def test_suite_loads_and_covers_every_category(scripts):
    assert len(scripts) >= MIN_SCRIPTS
    assert sum(s.language == "ko" for s in scripts) * 2 >= len(scripts), "at least half must be Korean"
    names = [s.name for s in scripts]
    assert len(set(names)) == len(names)
    assert {p.stem for p in SUITE.glob("*.yaml")} == set(names), "file name = script name"
    assert {s.category for s in scripts} == CATEGORIES
    assert ISSUE_SCRIPTS <= set(names), f"missing: {sorted(ISSUE_SCRIPTS - set(names))}"
    for s in scripts:
        assert 1 <= len(s.turns) <= 4, s.name
        assert s.description, s.name
        assert s.name.startswith(f"{s.language}_"), s.name


def test_messy_suite_loads_with_a_held_out_part(messy):
    from chatrec.eval.split import select

    assert len(messy) >= 60 and {s.category for s in messy} <= CATEGORIES
    assert {p.stem for p in MESSY.glob("*.yaml")} == {s.name for s in messy}
    assert sum(s.language == "ko" for s in messy) * 2 >= len(messy) - 2, "about half must be Korean"
    held = select(messy, lambda s: s.name, "heldout")
    assert 10 <= len(held) <= len(messy) // 3


@pytest.mark.parametrize("suite", ["behaviour", "behaviour_messy"])
def test_every_script_checks_the_understanding(suite, scripts, messy):
    for s in scripts if suite == "behaviour" else messy:
        used = {k for e in _expectations(s) for k in e.model_fields_set}
        assert used & UNDERSTANDING_FIELDS, f"{s.name} checks only the reply language"
        for t in s.turns:
            if t.user is not None and "reply_language" not in t.expect.model_fields_set:
                pytest.fail(f"{s.name}: turn {t.user!r} does not check the reply language")
            if t.user is not None:
                has_hangul = HANGUL.search(t.user) is not None
                assert has_hangul == (s.language == "ko"), f"{s.name}: {t.user!r} is not in {s.language}"


def test_category_rows_count_scripts_and_checks():
    from chatrec.eval.dialogue import Script, ScriptResult, TurnResult
    from chatrec.eval.expectations import Check

    def result(name, category, *passed):
        s = Script(name=name, language="en", category=category, turns=[{"user": "hi"}])
        checks = [Check(f"c{i}", p) for i, p in enumerate(passed)]
        return ScriptResult(s, [TurnResult(1, "hi", "", [], [], 0.0, checks)])

    rows = category_rows([result("a", "titles", True, True), result("b", "titles", True, False),
                          result("c", "", True)])
    assert rows == [["-", "1/1", "1/1", "1.000"], ["titles", "1/2", "3/4", "0.500"], ["all", "2/3", "4/5", "0.667"]]


# ------------------------------------------------------------------------------------------------ against the catalog
@needs_data
def test_named_titles_and_genres_exist_in_the_catalog(scripts, messy, ml_small, books):
    titles = {_norm(it.title) for it in ml_small.catalog} | {_norm(it.title) for it in books.catalog}
    genres = {g for it in ml_small.catalog for g in it.genres}
    missing, bad_genres = [], []
    for s in [*scripts, *messy]:
        for e in _expectations(s):
            for f in TITLE_FIELDS:
                missing += [(s.name, f, t) for t in getattr(e, f) or () if _norm(t) not in titles]
            for f in GENRE_FIELDS:
                bad_genres += [(s.name, f, g) for g in getattr(e, f) or () if g not in genres]
            if e.cards_exclude_matching:
                re.compile(e.cards_exclude_matching)
    assert not missing, f"titles not in the catalog: {missing}"
    assert not bad_genres, f"not MovieLens genres: {bad_genres}"


# ------------------------------------------------------------------------------------------------ the real engine
@pytest.fixture(scope="session")
def behaviour_engine():
    if not has_data("ml-latest-small", "goodbooks-10k"):
        pytest.skip(f"needs ml-latest-small and goodbooks-10k in {SHARED_DATA}")
    from chatrec.eval.dialogue import build_engine
    from chatrec.settings import Settings

    settings = Settings(data_dir=SHARED_DATA, cache_dir=TEST_CACHE / "app", allow_download=False,
                        llm_backend="none", rerank="score")
    return build_engine(settings, "behaviour", index_limit=INDEX_LIMIT, progress=False)


@pytest.mark.behaviour
@needs_data
def test_behaviour_suite_passes(scripts, behaviour_engine):
    from chatrec.eval.dialogue import run_scripts

    results = run_scripts(behaviour_engine.engine, scripts, behaviour_engine.catalog, progress=False)
    table = markdown_table(CATEGORY_COLUMNS, category_rows(results), 3)
    failures = [f"{r.script.name} turn {t.index} {c.name}: {c.detail}"[:300]
                for r in results for t in r.turns for c in t.checks if not c.passed]
    print("\nBehaviour suite by category:\n" + table)
    print("\n".join(failures))
    hard = [f for f in failures if re.search(r" (no_exception|card_ids_in_catalog|no_html_in_reply|"
                                               r"no_system_prompt_leak):", f)]
    assert not hard, "\n".join(hard)
    rate = sum(r.passed for r in results) / len(results)
    assert rate >= PASS_RATE, f"script pass rate {rate:.3f} < {PASS_RATE}\n{table}"


@pytest.mark.behaviour
@needs_data
def test_messy_suite_by_part(messy, behaviour_engine):
    """Both parts are reported; the floor is on the dev part only (the held-out part is measured, never tuned)."""
    from chatrec.eval.dialogue import run_scripts
    from chatrec.eval.split import select

    rates = {}
    for part in ("dev", "heldout"):
        results = run_scripts(behaviour_engine.engine, select(messy, lambda s: s.name, part),
                              behaviour_engine.catalog, progress=False)
        print(f"\nMessy behaviour suite, {part} part:\n" + markdown_table(CATEGORY_COLUMNS, category_rows(results), 3))
        hard = [f"{r.script.name} turn {t.index} {c.name}: {c.detail}"[:300] for r in results for t in r.turns
                for c in t.checks if not c.passed and c.name in ("no_exception", "card_ids_in_catalog",
                                                                  "no_html_in_reply", "no_system_prompt_leak")]
        assert not hard, "\n".join(hard)
        rates[part] = sum(r.passed for r in results) / len(results)
    print(f"script pass rate: dev {rates['dev']:.3f}, held out {rates['heldout']:.3f}")
    assert rates["dev"] >= MESSY_DEV_RATE, rates
