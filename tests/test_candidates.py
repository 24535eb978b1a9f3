"""Candidate generators: one contract every implementation passes, known answers on tiny matrices, one data test."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from retrieval.candidates import (
    ALSConfig, ALSGenerator, CandidateGenerator, ItemKNNConfig, ItemKNNGenerator, PopularityGenerator, make_generator,
    topk_rows,
)
from retrieval.types import Catalog, Interactions, Item, Ratings, UnknownItemError, UnknownUserError

N_ITEMS = 12
BLOCK_A = {f"x:{i}" for i in range(5)} | {"x:10"}  # x:10 is group A's long-tail item
BLOCK_B = {f"x:{i}" for i in range(5, 10)}
COLD = "x:11"  # in the catalog, no interactions


def _catalog(n: int = N_ITEMS) -> Catalog:
    return Catalog([Item(id=f"x:{i}", title=f"Title {i}", year=2000 + i) for i in range(n)], "tiny")


def _blocks() -> Interactions:
    """Two taste groups that never overlap: users a* like 3 of items 0-4, users b* like 3 of items 5-9.

    Item 10 is liked by a0 only (a long-tail item); item 11 by nobody.
    """
    rows, cols, vals = [], [], []
    users = [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)]
    for u in range(10):
        base = 0 if u < 5 else 5
        for j in (u, u + 1, u + 2):
            rows.append(u)
            cols.append(base + j % 5)
            vals.append(1.0 + (u + j) % 3)  # confidences differ a little, like rating-derived values
    rows.append(0), cols.append(10), vals.append(1.0)
    m = sp.csr_matrix((vals, (rows, cols)), shape=(10, N_ITEMS), dtype=np.float32)
    return Interactions(m, users)


@pytest.fixture(scope="module")
def catalog():
    return _catalog()


@pytest.fixture(scope="module")
def inter():
    return _blocks()


class GeneratorContract:
    """Every generator inherits these; subclasses define make()."""

    def make(self) -> CandidateGenerator:
        raise NotImplementedError

    @pytest.fixture
    def gen(self, inter, catalog):
        return self.make().fit(inter, catalog)

    def test_is_a_candidate_generator(self, gen):
        assert isinstance(gen, CandidateGenerator)
        assert gen.name in {"als", "itemknn", "popularity"}

    def test_at_most_k_sorted_catalog_ids(self, gen, catalog):
        for k in (1, 2, 5):
            rec = gen.recommend("a1", k)
            assert 0 < len(rec) <= k
            assert all(i in catalog for i in rec.ids)
            assert len(set(rec.ids)) == len(rec.ids)
            assert np.all(np.diff(rec.scores) <= 0)

    def test_never_returns_seen_items(self, gen, inter, catalog):
        for u in inter.user_ids:
            seen = set(catalog.ids_of(inter.items_of(inter.user_row(u))))
            rec = gen.recommend(u, N_ITEMS)
            assert not seen & set(rec.ids)
            assert len(rec) == N_ITEMS - len(seen)  # everything else is still a candidate

    def test_never_returns_excluded(self, gen):
        first = gen.recommend("a1", 3).ids
        rec = gen.recommend("a1", 3, exclude=[first[0], "not-in-catalog:1"])
        assert first[0] not in rec.ids
        assert len(rec) == 3

    def test_exclude_must_be_a_collection(self, gen):
        with pytest.raises(ValueError, match="wrap it in a list"):
            gen.recommend("a1", 3, exclude="x:1")

    def test_unknown_user(self, gen):
        with pytest.raises(UnknownUserError):
            gen.recommend("nobody", 3)

    @pytest.mark.parametrize("k", [0, -1])
    def test_nonpositive_k(self, gen, k):
        with pytest.raises(ValueError, match="positive integer"):
            gen.recommend("a1", k)
        with pytest.raises(ValueError, match="positive integer"):
            gen.recommend_for_items(["x:0"], k)
        with pytest.raises(ValueError, match="positive integer"):
            gen.recommend_rows(np.array([0]), k)

    def test_fold_in_from_one_title(self, gen, catalog):
        rec = gen.recommend_for_items(["x:6"], 4)
        assert 0 < len(rec) <= 4
        assert "x:6" not in rec.ids
        assert all(i in catalog for i in rec.ids)
        assert np.all(np.diff(rec.scores) <= 0)

    def test_fold_in_excludes(self, gen):
        first = gen.recommend_for_items(["x:6", "x:7"], 3).ids
        rec = gen.recommend_for_items(["x:6", "x:7"], 3, exclude=[first[0]])
        assert not {"x:6", "x:7", first[0]} & set(rec.ids)

    def test_fold_in_unknown_id(self, gen):
        with pytest.raises(UnknownItemError, match="nope:1"):
            gen.recommend_for_items(["x:1", "nope:1"], 3)

    def test_fold_in_empty(self, gen):
        with pytest.raises(ValueError, match="popularity"):
            gen.recommend_for_items([], 3)

    def test_fold_in_bad_weights(self, gen):
        with pytest.raises(ValueError, match="weights"):
            gen.recommend_for_items(["x:1", "x:2"], 3, weights=[1.0])

    def test_similar_items(self, gen, catalog):
        rec = gen.similar_items(["x:1"], 3, exclude=["x:2"])
        assert 0 < len(rec) <= 3
        assert not {"x:1", "x:2"} & set(rec.ids)
        with pytest.raises(UnknownItemError):
            gen.similar_items(["nope"], 3)

    def test_rows_api_matches_single_calls(self, gen, inter, catalog):
        rows, scores = gen.recommend_rows(np.arange(inter.n_users), 3)
        assert rows.shape == scores.shape == (inter.n_users, 3)
        assert rows.dtype == np.int64 and scores.dtype == np.float32
        for u, uid in enumerate(inter.user_ids):
            assert catalog.ids_of(rows[u]) == gen.recommend(uid, 3).ids
            assert not set(rows[u]) & set(inter.items_of(u))

    def test_rows_api_pads_when_catalog_runs_out(self, gen, inter):
        rows, scores = gen.recommend_rows(np.array([0]), N_ITEMS + 3)
        n_free = N_ITEMS - len(inter.items_of(0))
        assert np.all(rows[0, :n_free] >= 0)
        assert np.all(rows[0, n_free:] == -1) and np.all(np.isneginf(scores[0, n_free:]))

    def test_rows_api_can_keep_seen(self, gen):
        rows, _ = gen.recommend_rows(np.array([0]), N_ITEMS, filter_seen=False)
        assert sorted(rows[0]) == list(range(N_ITEMS))

    def test_rows_api_bad_rows(self, gen):
        with pytest.raises(ValueError, match="user_rows"):
            gen.recommend_rows(np.array([99]), 3)

    def test_item_scores_for_user(self, gen):
        rec = gen.recommend("a1", 3)
        s = gen.item_scores_for_user("a1", list(rec.ids))
        np.testing.assert_allclose(s, rec.scores, rtol=1e-5)

    def test_shape_mismatch(self, inter):
        with pytest.raises(ValueError, match="n_items=len"):
            self.make().fit(inter, _catalog(N_ITEMS + 1))

    def test_not_fitted(self):
        with pytest.raises(RuntimeError, match="fit"):
            self.make().recommend("a1", 3)


class TestALS(GeneratorContract):
    def make(self):
        # two factors per block would do; strong regularisation keeps the tiny model from memorising rows
        return ALSGenerator(ALSConfig(factors=4, regularization=5.0, iterations=20, num_threads=1))

    def test_recommends_within_the_block(self, gen, inter, catalog):
        for u in inter.user_ids:
            block = BLOCK_A if u.startswith("a") else BLOCK_B
            assert set(gen.recommend(u, 2).ids) <= block

    def test_fold_in_stays_in_the_block(self, gen):
        assert set(gen.recommend_for_items(["x:6"], 4).ids) == BLOCK_B - {"x:6"}
        assert set(gen.similar_items(["x:1"], 4).ids) <= BLOCK_A - {"x:1"}

    def test_cold_seed_gives_no_candidates(self, gen):
        # nothing learned about x:11, so there is nothing to extrapolate from; the engine falls back
        assert len(gen.recommend_for_items([COLD], 3)) == 0
        assert len(gen.similar_items([COLD], 3)) == 0

    def test_deterministic_given_seed(self, inter, catalog):
        a = self.make().fit(inter, catalog).item_factors
        b = self.make().fit(inter, catalog).item_factors
        np.testing.assert_array_equal(a, b)

    @pytest.mark.parametrize("factors,reg", [(16, 0.01), (256, 0.01), (16, 100.0), (256, 100.0)])
    def test_hyperparameter_range(self, inter, catalog, factors, reg):
        cfg = ALSConfig(factors=factors, regularization=reg, iterations=5, num_threads=1)
        gen = ALSGenerator(cfg).fit(inter, catalog)
        rows, scores = gen.recommend_rows(np.arange(inter.n_users), 3)
        assert np.all(rows >= 0) and np.all(np.isfinite(scores))
        assert np.all(np.isfinite(gen.recommend_for_items(["x:1"], 3).scores))

    @pytest.mark.parametrize("bad", [dict(factors=0), dict(regularization=-1.0), dict(alpha=float("nan")),
                                     dict(iterations=0)])
    def test_bad_config(self, bad):
        with pytest.raises(ValueError):
            ALSConfig(**bad)


class TestItemKNN(GeneratorContract):
    def make(self):
        return ItemKNNGenerator(ItemKNNConfig(k_neighbors=20))

    def test_recommends_within_the_block(self, gen, inter, catalog):
        for u in inter.user_ids:
            block = BLOCK_A if u.startswith("a") else BLOCK_B
            rec = gen.recommend(u, N_ITEMS)
            positive = {i for i, s in rec if s > 0}
            assert len(positive) >= 2 and positive <= block  # nothing outside co-occurs with this user's items

    def test_similar_items_share_users(self, gen):
        rec = gen.similar_items(["x:6"], 5)
        positive = {i for i, s in rec if s > 0}
        assert positive == BLOCK_B - {"x:6"}

    def test_neighbours_are_pruned(self, inter, catalog):
        gen = ItemKNNGenerator(ItemKNNConfig(k_neighbors=1)).fit(inter, catalog)
        assert np.all(np.diff(gen._sim.tocsc().indptr) <= 1)

    def test_shrink_lowers_scores(self, inter, catalog):
        plain = ItemKNNGenerator().fit(inter, catalog).similar_items(["x:6"], 1).scores[0]
        shrunk = ItemKNNGenerator(ItemKNNConfig(shrink=10.0)).fit(inter, catalog).similar_items(["x:6"], 1).scores[0]
        assert 0 < shrunk < plain


class TestPopularity(GeneratorContract):
    def make(self):
        return PopularityGenerator()

    def test_known_order_with_row_tie_break(self):
        # users per item: [2, 1, 2, 0, 3] → 4, then 0 and 2 tied (row order), then 1, then 3
        m = sp.csr_matrix(np.array([[1, 1, 0, 0, 1], [1, 0, 1, 0, 1], [0, 0, 1, 0, 1]], dtype=np.float32))
        gen = PopularityGenerator().fit(Interactions(m, ["u", "v", "w"]), _catalog(5))
        assert gen.recommend_for_items(["x:3"], 5).ids == ("x:4", "x:0", "x:2", "x:1")
        assert gen.recommend("w", 5).ids == ("x:0", "x:1", "x:3")
        np.testing.assert_array_equal(gen.recommend("w", 5).scores, [2, 1, 0])


def test_topk_rows_breaks_ties_by_row_and_pads():
    s = np.array([[1, 3, 3, 2, 3], [-np.inf, 1, -np.inf, -np.inf, -np.inf]], dtype=np.float32)
    rows, vals = topk_rows(s, 3)
    np.testing.assert_array_equal(rows, [[1, 2, 4], [1, -1, -1]])
    np.testing.assert_array_equal(vals[0], [3, 3, 3])
    rows, _ = topk_rows(s, 7)
    np.testing.assert_array_equal(rows[0], [1, 2, 4, 3, 0, -1, -1])


def test_make_generator():
    assert isinstance(make_generator("als", factors=16), ALSGenerator)
    assert make_generator("als", factors=16).config.factors == 16
    assert isinstance(make_generator("itemknn", shrink=5.0), ItemKNNGenerator)
    assert isinstance(make_generator("popularity"), PopularityGenerator)
    with pytest.raises(ValueError, match="choose one of"):
        make_generator("svd")
    with pytest.raises(ValueError, match="unknown option"):
        make_generator("als", factor=16)
    with pytest.raises(ValueError, match="no options"):
        make_generator("popularity", k=3)


# --- data test -------------------------------------------------------------------------------------------------

def per_user_split(ratings: Ratings, test_frac: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Boolean train/test masks: a random `test_frac` of each user's ratings is held out."""
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(ratings)), ratings.user))  # by user, random within user
    counts = np.bincount(ratings.user, minlength=ratings.n_users)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    rank = np.empty(len(ratings), dtype=np.int64)
    rank[order] = np.arange(len(ratings)) - starts
    test = rank < np.floor(test_frac * counts[ratings.user])
    return ~test, test


def precision_at(gen, train: Interactions, test: sp.csr_matrix, k: int = 10) -> float:
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    rows, _ = gen.recommend_rows(users, k)
    hits = [len(set(rows[i]) & set(test.indices[test.indptr[u]:test.indptr[u + 1]])) for i, u in enumerate(users)]
    return float(np.mean(hits)) / k


def test_als_beats_popularity_on_ml100k(ml100k):
    r = ml100k.ratings
    train_mask, test_mask = per_user_split(r)
    n = len(ml100k.catalog)
    train = Interactions.from_ratings(r.subset(train_mask), n, min_rating=4, confidence="linear")
    test = Interactions.from_ratings(r.subset(test_mask), n, min_rating=4, confidence="binary").matrix
    als = ALSGenerator(ALSConfig()).fit(train, ml100k.catalog)
    pop = PopularityGenerator().fit(train, ml100k.catalog)
    p_als, p_pop = precision_at(als, train, test), precision_at(pop, train, test)
    print(f"ML-100K P@10: ALS {p_als:.4f}  popularity {p_pop:.4f}")
    assert p_als > p_pop * 1.1
    # a new user who liked one title gets candidates, all from the catalog, never the title itself
    star_wars = ml100k.catalog.id_of(int(np.argmax(np.diff(train.matrix.tocsc().indptr))))
    rec = als.recommend_for_items([star_wars], 10)
    assert len(rec) == 10 and star_wars not in rec.ids


@pytest.mark.parametrize("m,k", [(7, 3), (100, 1), (1000, 10), (1000, 40), (997, 10), (2000, 5)])
def test_topk_rows_matches_a_full_stable_sort(m, k):
    rng = np.random.default_rng(m + k)
    s = rng.integers(0, 6, size=(50, m)).astype(np.float32)  # heavy ties
    s[:25] += rng.random((25, m)).astype(np.float32)  # half the rows real-valued
    s[rng.random(s.shape) < 0.3] = -np.inf
    s[3, : m - 2] = -np.inf  # a row with almost nothing left
    s[4, :] = -np.inf
    rows, vals = topk_rows(s.copy(), k)
    for r in range(len(s)):
        ref = np.argsort(-s[r], kind="stable")[:k]
        ref = np.where(np.isfinite(s[r][ref]), ref, -1)
        ref = np.pad(ref, (0, k - len(ref)), constant_values=-1)
        np.testing.assert_array_equal(rows[r], ref)
        np.testing.assert_array_equal(vals[r][rows[r] >= 0], s[r][ref[ref >= 0]])
