"""The language toolkit (lexicons, boundaries, clauses), people in messages, and the title scan's decision log."""
from __future__ import annotations

import pytest

from retrieval import lang
from retrieval.people import PeopleIndex
from retrieval.title_resolver import TitleResolver
from retrieval.types import Catalog, Item

FILMS = Catalog([
    Item(id="f:1", title="The Host", year=2006, genres=("Horror",)),
    Item(id="f:2", title="Heat", year=1995, genres=("Crime",)),
    Item(id="f:3", title="Inception", year=2010, genres=("Sci-Fi",)),
    Item(id="f:4", title="Seconds", year=1966, genres=("Sci-Fi",)),
], "films")


def test_korean_words_start_a_token_and_may_carry_particles():
    assert [h.key for h in lang.find_terms("한국 영화", lang.COUNTRY_TERMS)] == ["KR"]
    assert lang.find_terms("리액션 영상", lang.GENRE_TERMS) == []  # 액션 inside another word is no genre
    assert [h.key for h in lang.find_terms("SF는 빼고 공포영화", lang.GENRE_TERMS)] == ["Sci-Fi", "Horror"]
    assert lang.find_terms("sf is rare", lang.GENRE_TERMS) == []  # "SF" counts only upper-case


def test_glued_korean_reads_by_morphemes_and_english_typos_by_one_edit():
    assert [h.key for h in lang.find_terms("로맨틱코미디추천좀", lang.GENRE_TERMS)] == ["Romance", "Comedy"]
    assert [h.key for h in lang.find_terms("some comedys or a horor", lang.GENRE_TERMS)] == ["Comedy", "Horror"]
    assert [h.key for h in lang.find_terms("something funy", lang.GENRE_TERMS)] == ["Comedy"]
    assert lang.find_terms("Comey and crimes", lang.GENRE_TERMS) == []  # a name; a real English word
    assert [h.key for h in lang.find_terms("a movie for my kid", lang.GENRE_TERMS)] == ["Children"]


def test_korean_genre_words_one_letter_off_and_sf_glued_to_korean():
    for text, key in (("비오는날 보기좋은 로멘스 영화", "Romance"), ("스릴라 좋아해요", "Thriller"), ("코메디영화 추천", "Comedy"),
                      ("90년대sf영화추천ㄱㄱ", "Sci-Fi")):
        assert [h.key for h in lang.find_terms(text, lang.GENRE_TERMS)] == [key], text
    # a longer word that holds a near-miss, and a near-miss of a two-syllable word, are no genre or theme
    assert lang.find_terms("스페이스 영화", lang.GENRE_TERMS + lang.THEME_TERMS + lang.COUNTRY_TERMS) == []
    assert lang.find_terms("공부할 때 보는 영화", lang.GENRE_TERMS) == []
    assert lang.find_terms("sf is rare", lang.GENRE_TERMS) == []


def test_longest_terms_win():
    hits = lang.find_terms("a rom-com or a romantic comedy", lang.GENRE_TERMS)
    assert [h.key for h in hits] == ["Romance+Comedy", "Romance", "Comedy"]


@pytest.mark.parametrize("text,pos,clause", [
    ("I loved Alien but hated Prometheus", 24, "hated Prometheus"),
    ("anything but horror tonight", 13, "anything but horror tonight"),
    ("포레스트 검프는 봤는데 쇼생크 탈출은 안 봤어", 14, "쇼생크 탈출은 안 봤어"),
])
def test_clauses(text, pos, clause):
    s, e = lang.clause_bounds(text, pos)
    assert text[s:e].strip() == clause


def test_informative_ignores_filler():
    assert not lang.informative("recommend me another movie please")
    assert not lang.informative("다른 거 추천해줘")
    assert lang.informative("a slow revenge story")
    assert lang.informative("잔잔한 여행 이야기")


def test_common_english_words_by_frequency():
    assert lang.is_common_english("heat") and lang.is_common_english("seconds")
    assert not lang.is_common_english("inception")


def test_people_are_found_with_their_role_and_short_names_need_context():
    people = PeopleIndex([FILMS])
    hit = people.find("봉준호 감독 영화")[0]
    assert (hit.name, hit.role) == ("Bong Joon-ho", "director")
    assert people.find("something with tom hanks")[0].role == "actor"
    assert people.find("hitchcock films")[0].name == "Alfred Hitchcock"
    assert people.find("깜짝 놀란 영화") == [] and people.find("I want to share") == []
    assert "f:1" in people.works("Bong Joon-ho", "director")  # from the packaged table, joined by title + year


def test_a_misspelt_name_next_to_a_person_cue_is_that_person():
    cast = Catalog([
        Item(id="c:1", title="Big", year=1988, actors=("Tom Hanks",)),
        Item(id="c:2", title="Emma", year=1815, domain="book", authors=("Jane Austen",)),
        Item(id="c:3", title="Persuasion", year=1817, domain="book", authors=("Jane Austen",)),
        Item(id="c:4", title="Sense and Sensibility", year=1811, domain="book", authors=("Jane Austen",)),
        Item(id="c:5", title="Obscure", year=1990, actors=("Jeanne Austin",)),
        Item(id="c:6", title="Kill Bill: Vol. 1", year=2003, actors=("Bill Kilo",)),
        Item(id="c:7", title="Dark Knight Rises", year=2012, actors=("Mark Knight",)),
    ], "cast")
    people = PeopleIndex([cast])
    assert [h.name for h in people.find("tarantno movies")] == ["Quentin Tarantino"]  # the packaged table's name
    assert [(h.name, h.role) for h in people.find("something starring tom hank")] == [("Tom Hanks", "actor")]
    assert [h.name for h in people.find("jane austin books?")] == ["Jane Austen"]  # far more works than the actress
    for text in ("jane austin",                # no cue around it
                 "kill bill movies",           # everyday words
                 "dark knight movies",         # the first words of a title
                 "feel good movies with my wife"):
        assert people.find(text) == [], text


def test_author_genres_stand_in_for_book_genres():
    people = PeopleIndex([])
    assert set(people.book_genres(["Agatha Christie"])) >= {"Mystery"}
    assert people.book_genres(["Nobody Known"]) == ()


def test_the_title_scan_logs_every_decision_with_its_reason():
    scan = TitleResolver(FILMS, aliases=None).scan_mentions("Heat is on, I loved Inception and seconds later")
    accepted = {d.text for d in scan.decisions if d.accepted}
    assert accepted == {"Inception"}
    reasons = {d.text: d.reason for d in scan.decisions if not d.accepted}
    assert "Heat" in reasons and "seconds" in reasons and all(reasons.values())
