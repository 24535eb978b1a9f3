"""The fusion ranker: features from the candidate pool, the learned models' round trip, the weighted-sum fallback, and
the assembler using whichever is loaded (always inside the wish's filters and the catalog)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from chatrec.candidates_turn import CandidateAssembler, PopularityIndex
from chatrec.eval.ranker import Example, cross_validate, fit_blend, fit_lgbm, fit_linear, recall_of
from chatrec.ranker import FEATURES, LinearRanker, RankContext, RankerModel, featurize, load_ranker
from chatrec.request import Wish
from retrieval.item_stats import ItemStats
from retrieval.types import Catalog, Item, Ratings

ITEMS = [Item(id=f"m:{i}", title=f"Film {i}", year=1980 + i, genres=(("Comedy",) if i % 2 else ("Horror",)),
              directors=(("Ann Lee",) if i < 3 else ("Bo Kim",))) for i in range(12)]
CAT = Catalog(ITEMS, "tiny")


def _stats():
    rng = np.random.default_rng(0)
    n = 400
    items = rng.integers(0, len(ITEMS), n)
    r = Ratings(rng.integers(0, 30, n), items, rng.uniform(1, 5, n).astype(np.float32),
                (1_000_000_000 + items * 100_000_000).astype(np.int64), tuple(str(u) for u in range(30)))
    return ItemStats.from_ratings(CAT, r)


def test_item_stats_count_recent_and_shrunk_means():
    s = _stats()
    assert s.count.sum() == 400 and (s.recent <= s.count).all()
    assert s.recent[-1] > 0 and s.recent[0] == 0  # later items were rated in the last years of the log
    assert np.all(np.abs(s.bayes - s.global_mean) < 2.0)


def test_features_describe_the_candidate_and_its_links_to_the_seeds():
    ctx = RankContext(Wish(genres=["Comedy"]), [ITEMS[1]], _stats(), CAT, max_year=1991)
    X = featurize([ITEMS[3], ITEMS[4]], [{"als": 0}, {"popular": 4}], [0.01, 0.002], ctx)
    assert X.shape == (2, len(FEATURES))
    f = {name: X[:, j] for j, name in enumerate(FEATURES)}
    assert f["rr_als"][0] == 1.0 and f["rr_als"][1] == 0.0 and f["rr_popular"][1] == pytest.approx(0.2)
    assert f["genre_share"][0] == 1.0 and f["genre_share"][1] == 0.0  # Film 3 is a comedy, Film 4 is not
    assert f["seed_people"][0] == 0.0 and f["seed_genre"][0] == 1.0
    assert f["recent_film"].tolist() == [1.0, 1.0]


def test_no_model_file_means_the_weighted_sum(tmp_path):
    m = load_ranker(tmp_path / "absent.json")
    assert m.kind == "weighted_sum"
    X = np.zeros((3, len(FEATURES)), dtype=np.float32)
    X[:, FEATURES.index("fused")] = [0.1, 0.3, 0.2]
    assert np.argsort(-m.score(X)).tolist() == [1, 2, 0]


def test_a_broken_or_outdated_model_file_says_how_to_rebuild(tmp_path):
    bad = tmp_path / "ranker.json"
    bad.write_text('{"kind": "linear", "features": ["x"], "coef": [1]}')
    with pytest.raises(ValueError, match="chatrec-eval ranker"):
        load_ranker(bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="chatrec-eval ranker"):
        load_ranker(bad)


def _examples(n=60, seed=0, pseudo_every=0):
    """Pools where the target is the candidate with the highest rr_als: learnable, and the fused score is noise
    (every `pseudo_every`-th pool a down-weighted pseudo-conversation)."""
    rng = np.random.default_rng(seed)
    out = []
    for g in range(n):
        X = rng.normal(size=(30, len(FEATURES))).astype(np.float32)
        t = int(np.argmax(X[:, FEATURES.index("rr_als")]))
        ids = [f"m:{g}:{j}" for j in range(30)]
        group = f"pseudo:{g}" if pseudo_every and g % pseudo_every == 0 else f"redial:{g // 2}"
        out.append(Example(group, X, rng.normal(size=30), ids, np.ones(30, bool), (ids[t],)))
    return out


@pytest.mark.parametrize("fit", [fit_linear, fit_lgbm, fit_blend])
def test_learned_rankers_beat_the_noise_and_round_trip(tmp_path, fit):
    train, test = _examples(80, 0, pseudo_every=3), _examples(30, 1)
    model = fit(train)
    learned = np.mean(recall_of(test, lambda e: model.score(e.X))[1])
    noise = np.mean(recall_of(test, lambda e: e.fused)[1])
    assert learned > 0.6 > noise
    path = tmp_path / "ranker.json"
    path.write_text(json.dumps(model.to_json()))
    again = load_ranker(path)
    X = test[0].X
    assert np.allclose(again.score(X), model.score(X), atol=1e-5)


def test_cross_validation_never_scores_on_training_dialogues():
    ex = _examples(40)
    pooled, per_fold, hits = cross_validate(ex, [], fit_linear, folds=4)
    assert len(per_fold) == 4 and 0.0 <= pooled[10] <= 1.0 and len(hits[10]) == len(ex)


def test_the_assembler_orders_with_the_model_inside_the_filters():
    pop = PopularityIndex(CAT.ids, [float(12 - i) for i in range(12)])
    coef = np.zeros(len(FEATURES))
    coef[FEATURES.index("year")] = 1.0  # this toy model prefers newer films
    ranker = LinearRanker(FEATURES, coef, np.zeros(len(FEATURES)), np.ones(len(FEATURES)))
    a = CandidateAssembler(CAT, popularity=pop, stats=_stats(), ranker=ranker)
    cs = a.assemble(seeds=[], wish=Wish(genres=["Comedy"]), exclude={"m:11"}, n=4, n_min=1)
    assert all("Comedy" in c.item.genres for c in cs.candidates) and "m:11" not in cs.ids
    years = [c.item.year for c in cs.candidates]
    assert years == sorted(years, reverse=True)
    plain = CandidateAssembler(CAT, popularity=pop, stats=_stats(), ranker=RankerModel())
    by_sum = plain.assemble(seeds=[], wish=Wish(genres=["Comedy"]), exclude={"m:11"}, n=4, n_min=1)
    assert all("Comedy" in c.item.genres for c in by_sum.candidates) and by_sum.ids != cs.ids


def test_redial_figures_of_a_ranker_trained_on_redial_are_flagged_in_sample():
    from chatrec.eval.redial import in_sample_warning

    trained = LinearRanker(FEATURES, np.zeros(len(FEATURES)), np.zeros(len(FEATURES)), np.ones(len(FEATURES)),
                           meta={"trained_on": "990 redial-dev cases + 115 pseudo-conversations"})
    assert "IN-SAMPLE" in in_sample_warning(trained)
    assert in_sample_warning(RankerModel()) == ""


def test_the_blend_standardises_each_pool_and_scores_an_empty_one():
    model = fit_blend(_examples(40))
    X = _examples(1, 3)[0].X
    s = model.score(X)
    assert abs(s.mean()) < 1e-6 and model.score(X[:0]).shape == (0,)
    def z(v):
        return (v - v.mean()) / (v.std() + 1e-9)

    assert np.allclose(s, z(model.boosted.score(X)) + model.weight * z(model.linear.score(X)))


def test_other_versions_of_a_named_film_are_not_recommended():
    """King Kong (1933) is the same film, to someone who named King Kong (2005)."""
    items = [Item(id="k:1", title="King Kong", year=2005, genres=("Adventure",)),
             Item(id="k:2", title="King Kong", year=1933, genres=("Adventure",)),
             Item(id="k:3", title="Kong: Skull Island", year=2017, genres=("Adventure",)),
             Item(id="k:4", title="Jumanji", year=1995, genres=("Adventure",))]
    cat = Catalog(items, "kong")
    a = CandidateAssembler(cat, popularity=PopularityIndex(cat.ids, [4.0, 3.0, 2.0, 1.0]))
    cs = a.assemble(seeds=["k:1"], wish=Wish(), exclude=(), n=3, n_min=1)
    assert cs.ids == ("k:3", "k:4")


def test_new_releases_join_a_pool_that_names_no_film():
    """This year's films have few ratings yet: the popularity lists alone would never reach them."""
    pop = PopularityIndex(CAT.ids, [100.0 - i for i in range(12)])  # the oldest films are the most rated
    a = CandidateAssembler(CAT, popularity=pop)
    p = a.pool(seeds=[], wish=Wish(genres=["Comedy"]), exclude=(), n=2)
    assert p.sources["m:11"] == ["new"]  # 1991, the catalog's newest comedy: only the new-release list has it
    assert set(p.ranks) >= {"m:1", "m:3", "m:9", "m:11"}
    assert all(a.catalog[i].year >= 1988 for i in p.sources if "new" in p.sources[i])
    cs = a.assemble(seeds=[], wish=Wish(genres=["Comedy"]), exclude=(), n=6, n_min=1)
    assert all("Comedy" in c.item.genres for c in cs.candidates)


def test_a_tone_alone_puts_films_of_its_genres_first():
    """ "A sad movie" names no genre; the model's favourites (here the newest films, all action) must not outrank
    the dramas the tone stands for."""
    items = [Item(id=f"d:{i}", title=f"Story {i}", year=1990 + i, genres=("Action",) if i >= 6 else ("Drama",))
             for i in range(10)]
    cat = Catalog(items, "tones")
    coef = np.zeros(len(FEATURES))
    coef[FEATURES.index("year")] = 1.0
    ranker = LinearRanker(FEATURES, coef, np.zeros(len(FEATURES)), np.ones(len(FEATURES)))
    a = CandidateAssembler(cat, popularity=PopularityIndex(cat.ids, [10.0] * 10), ranker=ranker)
    cs = a.assemble(seeds=[], wish=Wish(tones=["sad"]), exclude=(), n=4, n_min=1)
    assert [c.id for c in cs.candidates] == ["d:5", "d:4", "d:3", "d:2"]  # dramas, newest first
    plain = a.assemble(seeds=[], wish=Wish(), exclude=(), n=4, n_min=1)
    assert all(c.item.genres == ("Action",) for c in plain.candidates)  # no tone: the model's order
