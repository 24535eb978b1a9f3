"""Interest journeys: clustering, names from facts (EN/KO), across-journey picks, the LLM polish guard."""
from __future__ import annotations

import numpy as np
import pytest

from chatrec.journeys import (JourneyConfig, _quotas, cluster, item_embedder, journeys, pick_journey, polish_names,
                              precomputed_embedder, recommend_across_journeys, steer_liked)
from chatrec.llm import LLMError
from retrieval.types import Catalog, Item, Scored
from tests.conftest import requires_data


def _films() -> list[Item]:
    space = [Item(f"m:{i}", t, y, ("Sci-Fi", "Adventure"), directors=(d,), extra={"keywords": "space, astronaut"})
             for i, (t, y, d) in enumerate([("Interstellar", 2014, "Christopher Nolan"), ("Gravity", 2013, "Alfonso Cuarón"),
                                            ("The Martian", 2015, "Ridley Scott"), ("Ad Astra", 2019, "James Gray"),
                                            ("Arrival", 2016, "Denis Villeneuve")])]
    crime = [Item(f"m:{10 + i}", t, y, ("Crime", "Thriller"), directors=(d,))
             for i, (t, y, d) in enumerate([("Pulp Fiction", 1994, "Quentin Tarantino"),
                                            ("Reservoir Dogs", 1992, "Quentin Tarantino"), ("Heat", 1995, "Michael Mann"),
                                            ("Se7en", 1995, "David Fincher"), ("Fargo", 1996, "Joel Coen")])]
    ghibli = [Item(f"m:{20 + i}", t, y, ("Animation", "Fantasy"), directors=("Hayao Miyazaki",))
              for i, (t, y) in enumerate([("Spirited Away", 2001), ("Princess Mononoke", 1997),
                                          ("My Neighbor Totoro", 1988)])]
    other = [Item(f"m:{30 + i}", f"Other {i}", 2000 + i, ("Drama",)) for i in range(6)]
    return space + crime + ghibli + other


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(_films(), "toy")


def test_three_threads_become_three_named_journeys(catalog):
    liked = [f"m:{i}" for i in (0, 10, 20, 1, 11, 21, 2, 12, 22, 3, 13, 4, 14)]
    js = journeys(liked, catalog)  # no sentence vectors: genres, decade and director alone
    assert len(js) == 3
    assert sorted(len(j) for j in js) == [3, 5, 5] and len(js[0]) == 5  # biggest first
    by_first = {catalog[j.item_ids[0]].genres[0]: j for j in js}
    space, crime, ghibli = by_first["Sci-Fi"], by_first["Crime"], by_first["Animation"]
    assert set(space.item_ids) == {f"m:{i}" for i in range(5)}
    assert space.name("en") == "2010s Astronaut Sci-Fi/Adventure"
    assert space.name("ko") == "2010년대 SF·모험 ‘astronaut’"
    assert crime.name("en") == "1990s Crime/Thriller — Quentin Tarantino"  # 2 of 5: enough to name, not to split
    assert crime.name("ko") == "1990년대 범죄·스릴러 — Quentin Tarantino 감독"
    assert ghibli.name("en") == "Animation/Fantasy — Hayao Miyazaki"
    assert ghibli.name("ko") == "애니메이션·판타지 — Hayao Miyazaki 감독"
    assert steer_liked(js, 2) == js[2].item_ids
    order = [js.index(space), js.index(crime), js.index(ghibli)]
    assert pick_journey("이 중에 우주 SF 쪽으로", js) == order[0]
    assert pick_journey("more of the Miyazaki one please", js) == order[2]
    assert pick_journey("90년대 범죄 영화 쪽으로", js) == order[1] and pick_journey("90s crime", js) == order[1]
    assert pick_journey("두 번째 걸로", js) == 1 and pick_journey("the third", js) == 2
    assert pick_journey("something else entirely", js) is None
    with pytest.raises(IndexError, match="there are 3"):
        steer_liked(js, 3)


def test_a_homogeneous_taste_stays_one_journey(catalog):
    js = journeys([f"m:{i}" for i in range(5)], catalog)
    assert len(js) == 1 and len(js[0]) == 5
    assert journeys(["m:0"], catalog)[0].item_ids == ("m:0",)
    assert journeys(["nope:1"], catalog) == [] and journeys([], catalog) == []


def test_cluster_respects_max_journeys_and_min_size():
    rng = np.random.default_rng(0)
    centres = np.eye(6)
    x = np.vstack([c + 0.05 * rng.normal(size=(4, 6)) for c in centres])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = cluster(x, JourneyConfig(max_journeys=4))
    assert labels.max() + 1 <= 4 and np.bincount(labels).min() >= 2
    assert cluster(x[:3], JourneyConfig()).tolist() == [0, 0, 0]  # fewer than 2·min_size items


def test_quotas_are_proportional_with_one_each():
    assert _quotas([10, 5, 5], 5) == [3, 1, 1]
    assert _quotas([1, 1, 1, 1], 2) == [1, 1, 0, 0]
    assert sum(_quotas([7, 3], 10)) == 10


def test_across_journey_picks_come_from_the_candidates_and_cover_each_journey(catalog):
    liked = [f"m:{i}" for i in (0, 1, 2, 10, 11, 12, 13)]
    js = journeys(liked, catalog)
    assert len(js) == 2
    # The generator ranks crime first; the space journey must still get a pick within depth.
    cands = Scored(("m:14", "m:30", "m:31", "m:3", "m:4", "m:32"), np.array([6, 5, 4, 3, 2, 1], dtype=np.float32))
    picks = recommend_across_journeys(cands, js, catalog, 3, depth=5)
    ids = [p.item_id for p in picks]
    assert len(ids) == 3 and set(ids) <= set(cands.ids) and len(set(ids)) == 3
    assert {p.journey for p in picks} == {0, 1}
    assert ids == [i for i in cands.ids if i in ids]  # generator order kept
    rr = recommend_across_journeys(cands, js, catalog, 3, depth=5, order="round_robin")
    assert [p.journey for p in rr[:2]] in ([0, 1], [1, 0]) and {p.item_id for p in rr} == set(ids)
    one = recommend_across_journeys(cands, js[:1], catalog, 3)
    assert [p.item_id for p in one] == list(cands.ids[:3])  # one journey: the generator's own top k
    with pytest.raises(ValueError, match="order"):
        recommend_across_journeys(cands, js, catalog, 3, order="zigzag")


class _FakeLLM:
    """Stands in for a structured-output backend (parsing only; the real backends are tested elsewhere)."""

    name, enabled = "fake", True

    def __init__(self, answer=None, fail=False):
        self.answer, self.fail = answer, fail

    def structured(self, messages, schema, model, *, max_tokens=None, check_schema=True):
        if self.fail:
            raise LLMError("down", "unavailable")
        return model.model_validate(self.answer)


def test_polish_keeps_only_names_that_state_a_fact(catalog):
    js = journeys([f"m:{i}" for i in (0, 1, 2, 10, 11, 12, 13)], catalog)
    ans = {"names": [{"en": "Tarantino-esque 90s crime", "ko": "90년대 범죄 영화"},
                     {"en": "Feel-good picks", "ko": "기분 좋은 영화"}]}
    out = polish_names(js, _FakeLLM(ans), catalog)
    assert out[0].name("en") == "Tarantino-esque 90s crime" and out[0].name("ko") == "90년대 범죄 영화"
    assert out[1].names == js[1].names  # no fact in the polished names: the rule names stay
    assert [j.names for j in polish_names(js, _FakeLLM(fail=True), catalog)] == [j.names for j in js]


def test_embedder_vectors_pull_plot_neighbours_together():
    from retrieval.embeddings import make_embedder

    items = [Item("a:1", "Star Voyage", 2001, ("Drama",), plot="Astronauts travel to a distant planet in space."),
             Item("a:2", "Orbit", 2002, ("Drama",), plot="A crew of astronauts is stranded aboard a space station."),
             Item("a:3", "Kitchen Wars", 2001, ("Drama",), plot="Two rival chefs compete in a cooking contest."),
             Item("a:4", "Bake Off", 2002, ("Drama",), plot="A baker enters a national cooking competition.")]
    cat = Catalog(items, "plots")
    embed = item_embedder(make_embedder("use-multilingual"))
    assert embed(items[:1]).shape == (1, 512) and np.allclose(embed(items[:1]), embed(items[:1]))
    js = journeys(cat.ids, cat, embed=embed, config=JourneyConfig(min_silhouette=0.0))
    assert sorted(sorted(j.item_ids) for j in js) == [["a:1", "a:2"], ["a:3", "a:4"]]
    pre = precomputed_embedder(cat, embed(items))
    assert np.allclose(pre(items[2:3]), embed(items[2:3]))


@requires_data("ml-100k")
def test_real_users_get_one_to_four_journeys_named_from_their_items(ml100k):
    r = ml100k.ratings
    for u in (0, 5, 12):
        ids = ml100k.catalog.ids_of(r.item[(r.user == u) & (r.rating >= 4)])
        js = journeys(ids, ml100k.catalog)
        assert 1 <= len(js) <= 4 and sum(len(j) for j in js) == len(set(ids))
        for j in js:
            assert j.name("en") and j.name("ko") and j.name("en") != j.name("ko") or not j.facets
            genres = {v for k, v in j.facets if k == "genre"}
            share = np.mean([bool(genres & set(ml100k.catalog[i].genres)) for i in j.item_ids]) if genres else 1
            assert share >= 0.5  # a named genre is held by most of the journey's titles


def test_diversity_and_coverage_metrics():
    from chatrec.eval.journeys import coverage, genre_diversity, intra_list_diversity

    vecs = np.eye(4)
    assert intra_list_diversity([[0, 1, 2]], vecs) == pytest.approx(1.0)
    assert intra_list_diversity([[0, 0]], vecs) == pytest.approx(0.0)
    assert intra_list_diversity([[0, 1], [2, -1]], vecs) == pytest.approx(1.0)  # -1 padding and 1-item lists skip
    assert coverage([[0, 1], [1, -1]], 10) == pytest.approx(0.2)
    cat = Catalog([Item("a", "A", genres=("X",)), Item("b", "B", genres=("X", "Y")), Item("c", "C", genres=("Z",))])
    assert genre_diversity([[0, 1, 2]], cat) == pytest.approx((0.5 + 1 + 1) / 3)


def test_polish_with_a_real_llama_server_never_loses_the_facts(llama_server, catalog):
    """SmolLM2-135M behind llama.cpp: whatever the tiny model writes, every name that survives states a fact."""
    from chatrec.llm import OpenAICompatibleLLM

    llm = OpenAICompatibleLLM(base_url=llama_server.base_url, api_key="", model="local", max_tokens=160,
                              timeout_s=60, max_retries=1, structured_method="json_object")
    js = journeys([f"m:{i}" for i in (0, 1, 2, 10, 11, 12, 13)], catalog)
    out = polish_names(js, llm, catalog, max_tokens=96)  # a cut-off answer is an LLMError: rule names stay
    assert len(out) == len(js)
    for before, after in zip(js, out):
        assert after.item_ids == before.item_ids and after.rule_names == before.names
        for lang in ("en", "ko"):
            facts = [v.lower() for _, v in before.facets] + ["90s", "2010s", "1990년대", "2010년대", "sf", "범죄",
                                                             "스릴러", "모험"]
            assert after.name(lang) == before.name(lang) or any(f in after.name(lang).lower() for f in facts)
