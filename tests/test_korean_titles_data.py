"""Korean titles as Koreans write them, on the real catalog: the generated alias table, a year after a Hangul title,
and sound-alike matching only with a cue (ml-latest-small from ../shared/data)."""
from __future__ import annotations

import pytest

from retrieval.title_resolver import TitleResolver

from .conftest import requires_data

pytestmark = requires_data("ml-latest-small")


@pytest.fixture(scope="module")
def resolver(ml_small):
    return TitleResolver.for_dataset(ml_small)


def found(resolver, text):
    return {m.resolution.best.item_id for m in resolver.find_mentions(text)
            if m.resolution.status == "matched" and m.resolution.best is not None}


def label(resolver, text):
    return {resolver.catalog[i].label for i in found(resolver, text)}


@pytest.mark.parametrize("text, title", [
    ("데드풀 2 진짜 웃겼어", "Deadpool 2 (2018)"),                    # generated table
    ("클릭 같은 코미디 좋아해요", "Click (2006)"),                      # everyday word with a cue
    ("카지노(1995) 같은 거", "Casino (1995)"),                        # a year after a Hangul title
    ("이블 데드(2013) 같은 거", "Evil Dead (2013)"),                  # the year picks the remake
    ("그것(2017)이나 마마(2013)처럼", "It (2017)"),               # a pronoun name, with its year
])
def test_korean_titles_are_found(resolver, text, title):
    assert title in label(resolver, text)


@pytest.mark.parametrize("text", [
    "네, 보고 싶어요!",               # 고 (Go, 1999) is a verb ending here
    "그것도 봤어요 진짜 좋았어요!",    # a pronoun, not It
    "본드 영화 완전 좋아해",           # sounds like Bound: no cue that a title is meant
    "야구 보고 있는데 경기 끝나고 볼 코미디 추천 좀",  # 경기 is no Congo
    "어벤져스(2012) 좋아하세요?",      # the year is no film "2012"
])
def test_everyday_korean_is_no_title(resolver, text):
    assert not (label(resolver, text) - {"The Avengers (2012)"})
