"""Rating models: known answers against scikit-surprise's own predictions, fold-in, blend, and the LM rating path
on the real packaged SmolLM2 model."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval.rating_models import (Baseline, BiasedMF, FoldedUser, FoldInConfig, GlobalMean, ItemKNNBaseline,
                                     LinearBlend, RatingModelError, SVDPlusPlus, make_rating_model, rmse_mae)
from retrieval.types import Item, Ratings
from tests.conftest import requires_data

N_USERS, N_ITEMS = 40, 30


def synthetic(seed: int = 0, density: float = 0.4) -> Ratings:
    """Low-rank taste plus noise on 1..5; item N_ITEMS-1 is never rated (an unknown item for the models)."""
    rng = np.random.default_rng(seed)
    p, q = rng.normal(size=(N_USERS, 3)), rng.normal(size=(N_ITEMS, 3))
    full = np.clip(np.rint(3.4 + 0.6 * p @ q.T + rng.normal(scale=0.5, size=(N_USERS, N_ITEMS))), 1, 5)
    mask = rng.random((N_USERS, N_ITEMS)) < density
    mask[:, -1] = False
    mask[np.arange(N_USERS), rng.integers(0, N_ITEMS - 1, N_USERS)] = True  # every user rates something
    u, i = np.nonzero(mask)
    order = rng.permutation(len(u))
    return Ratings(u[order].astype(np.int64), i[order].astype(np.int64), full[u, i][order].astype(np.float32),
                   np.arange(len(u), dtype=np.int64), tuple(f"u{k}" for k in range(N_USERS)))


@pytest.fixture(scope="module")
def ratings() -> Ratings:
    return synthetic()


def surprise_estimates(algo, ratings: Ratings, users, items) -> np.ndarray:
    """Fit `algo` through surprise's documented path (pandas DataFrame → Trainset) and ask it pair by pair."""
    import pandas as pd
    from surprise import Dataset, Reader

    df = pd.DataFrame({"u": ratings.user, "i": ratings.item, "r": ratings.rating.astype(float)})
    algo.fit(Dataset.load_from_df(df, Reader(rating_scale=(1, 5))).build_full_trainset())
    return np.array([algo.predict(int(u), int(i)).est for u, i in zip(users, items)])


def all_pairs():
    u, i = np.meshgrid(np.arange(N_USERS), np.arange(N_ITEMS), indexing="ij")
    return u.ravel(), i.ravel()


@pytest.mark.parametrize("ours, theirs", [
    (lambda: Baseline(), lambda s: s.BaselineOnly(bsl_options={"method": "als", "reg_u": 15.0, "reg_i": 10.0,
                                                               "n_epochs": 10}, verbose=False)),
    (lambda: BiasedMF(n_factors=4, n_epochs=15, seed=3),
     lambda s: s.SVD(n_factors=4, n_epochs=15, lr_all=0.01, reg_all=0.1, random_state=3)),
    (lambda: SVDPlusPlus(n_factors=3, n_epochs=10, seed=1),
     lambda s: s.SVDpp(n_factors=3, n_epochs=10, random_state=1, cache_ratings=True)),
    (lambda: ItemKNNBaseline(k=5, shrinkage=10.0),
     lambda s: s.KNNBaseline(k=5, verbose=False, sim_options={"name": "pearson_baseline", "user_based": False,
                                                              "shrinkage": 10.0})),
], ids=["baseline", "svd", "svdpp", "knn_baseline"])
def test_vectorised_predictions_equal_surprise(ratings, ours, theirs):
    import surprise

    users, items = all_pairs()  # includes the never-rated item: both fall back to mu + b_u
    model = ours().fit(ratings, N_ITEMS)
    np.testing.assert_allclose(model.predict(users, items), surprise_estimates(theirs(surprise), ratings, users,
                                                                               items), atol=1e-9)
    assert not model.knows_item(N_ITEMS - 1) and model.knows_item(int(ratings.item[0]))


def test_global_mean_and_clipping(ratings):
    m = GlobalMean().fit(ratings, N_ITEMS)
    assert np.allclose(m.predict([0, 1], [2, 3]), ratings.rating.mean())
    mf = BiasedMF(n_factors=2, n_epochs=5).fit(ratings, N_ITEMS)
    p = mf.predict(*all_pairs())
    assert p.min() >= 1.0 and p.max() <= 5.0


def test_fold_in_is_ridge_regression_against_fixed_items(ratings):
    mf = BiasedMF(n_factors=3, n_epochs=10, fold=FoldInConfig(2.0, 7.0)).fit(ratings, N_ITEMS)
    rows, vals = np.array([0, 4, 9, N_ITEMS - 1]), np.array([5.0, 4.0, 1.0, 3.0])  # last: unknown, ignored
    f = mf.fold_in(rows, vals)
    x = np.hstack([np.ones((3, 1)), mf.qi[rows[:3]]])
    y = vals[:3] - mf.mu - mf.bi[rows[:3]]
    sol = np.linalg.solve(x.T @ x + np.diag([2.0, 7.0, 7.0, 7.0]), x.T @ y)
    assert f.bias == pytest.approx(sol[0]) and np.allclose(f.factor, sol[1:])
    expect = np.clip(mf.mu + sol[0] + mf.bi + mf.qi @ sol[1:], 1, 5)
    np.testing.assert_allclose(mf.predict_folded(f, np.arange(N_ITEMS)), expect)


def test_fold_in_with_no_evidence_is_the_item_average(ratings):
    for model in (Baseline(), BiasedMF(n_factors=2, n_epochs=5), SVDPlusPlus(n_factors=2, n_epochs=3),
                  ItemKNNBaseline(k=5)):
        model.fit(ratings, N_ITEMS)
        empty = model.fold_in([], [])
        np.testing.assert_allclose(model.predict_folded(empty, np.arange(N_ITEMS)),
                                   np.clip(model.mu + model.bi, 1, 5), err_msg=model.name)


def test_fold_in_moves_towards_the_evidence(ratings):
    mf = BiasedMF(n_factors=3, n_epochs=10).fit(ratings, N_ITEMS)
    item = 7
    avg = mf.predict_folded(mf.fold_in([], []), [item])[0]
    assert mf.predict_folded(mf.fold_in([item], [5.0]), [item])[0] > avg
    assert mf.predict_folded(mf.fold_in([item], [1.0]), [item])[0] < avg


def test_knn_fold_in_of_a_training_user_matches_predict(ratings):
    knn = ItemKNNBaseline(k=5).fit(ratings, N_ITEMS)
    u = 3
    mine = ratings.user == u
    user = FoldedUser(ratings.item[mine], ratings.rating[mine].astype(np.float64), bias=float(knn.bu[u]))
    items = np.arange(N_ITEMS)
    np.testing.assert_allclose(knn.predict_folded(user, items), knn.predict(np.full(N_ITEMS, u), items))


def test_bad_input_is_a_clear_error(ratings):
    with pytest.raises(RuntimeError, match="not fitted"):
        BiasedMF().predict([0], [0])
    with pytest.raises(RatingModelError, match="unknown rating model"):
        make_rating_model("svd+++")
    mf = BiasedMF(n_factors=2, n_epochs=2).fit(ratings, N_ITEMS)
    with pytest.raises(RatingModelError, match="one user row per item row"):
        mf.predict([0, 1], [0])
    with pytest.raises(RatingModelError, match="user rows must lie"):
        mf.predict([N_USERS], [0])
    with pytest.raises(RatingModelError, match="scale"):
        mf.fold_in([0], [7.0])
    with pytest.raises(RatingModelError, match="outside the model's scale"):
        BiasedMF(scale=(1, 4)).fit(ratings, N_ITEMS)
    with pytest.raises(RatingModelError, match="n_items"):
        Baseline().fit(ratings, 5)


def test_blend_recovers_weights_and_never_loses_to_its_best_part():
    rng = np.random.default_rng(0)
    truth = rng.uniform(1, 5, 400)
    a = truth + rng.normal(scale=0.6, size=400)
    b = truth + rng.normal(scale=0.6, size=400)
    blend = LinearBlend.fit({"a": a, "b": b}, truth)
    assert blend.chosen == "blend" and np.allclose(blend.weights, [0.5, 0.5], atol=0.1)
    assert rmse_mae(blend.predict({"a": a, "b": b}), truth)[0] < min(rmse_mae(a, truth)[0], rmse_mae(b, truth)[0])
    # A useless extra component must not hurt: the guard falls back to the best single model when needed.
    noise = rng.uniform(1, 5, 400)
    worse = LinearBlend.fit({"a": a, "noise": noise}, truth)
    assert rmse_mae(worse.predict({"a": a, "noise": noise}), truth)[0] <= rmse_mae(np.clip(a, 1, 5), truth)[0] + 1e-9
    with pytest.raises(RatingModelError, match="needs predictions"):
        worse.predict({"a": a})
    mix = LinearBlend.fit({"a": a, "b": b}, truth, convex=True)
    assert mix.intercept == 0.0 and mix.weights.sum() == pytest.approx(1.0) and np.all(mix.weights >= 0)
    assert np.allclose(mix.weights, [0.5, 0.5], atol=0.1)


@requires_data("ml-100k")
def test_biased_mf_beats_the_papers_best_classical_row_on_ml100k(ml100k):
    r = ml100k.ratings
    test = np.random.default_rng(0).random(len(r)) < 0.2
    mf = BiasedMF().fit(r.subset(~test), len(ml100k.catalog))
    rmse, mae = rmse_mae(mf.predict(r.user[test], r.item[test]), r.rating[test])
    assert rmse < 0.933 and mae < 0.734  # Chat-REC's item-kNN row; measured .908 / .717


# --- the language-model path, on the real packaged model --------------------------------------------------------

from tests.test_lm_loading import GGUF_DIR, SMOL, requires_smol  # noqa: E402


@pytest.fixture(scope="module")
def lm_scorer():
    from retrieval.rating_lm import LMRatingScorer
    from tests.conftest import TEST_CACHE

    return LMRatingScorer.from_pretrained(str(GGUF_DIR / SMOL), cache_dir=TEST_CACHE, device="cpu", max_history=5)


@requires_smol
def test_lm_rating_distribution_equals_a_plain_forward_pass(lm_scorer):
    import torch

    from retrieval.rating_lm import LMCalibrator, LMRatings

    history = [(Item(f"x:{k}", t, y, g), r) for k, (t, y, g, r) in enumerate([
        ("Toy Story", 1995, ("Animation", "Comedy"), 5), ("Heat", 1995, ("Action", "Crime"), 2),
        ("Fargo", 1996, ("Crime", "Drama"), 4.5)])]
    targets = [Item("t:1", "Casino", 1995, ("Crime", "Drama"), directors=("Martin Scorsese",)),
               Item("t:2", "Babe", 1995, ("Children", "Comedy"))]
    out = lm_scorer.score(history, targets)
    assert out.probs.shape == (2, 5) and np.allclose(out.probs.sum(axis=1), 1.0)
    assert np.allclose(out.calibrated.sum(axis=1), 1.0)
    assert "Fargo (1996); Crime, Drama: 5\n" in lm_scorer.history_text(history)  # 4.5 shows as 5
    tok, model = lm_scorer.tokenizer, lm_scorer.model
    # The packed, cached pass equals one plain pass over the whole prompt; the second target sits behind the first
    # in the pack, so this also checks that the block-diagonal mask hides the first target from it.
    text = lm_scorer.history_text(history) + lm_scorer.template.describe(targets[1]) + lm_scorer.separator
    with torch.inference_mode():
        lp = model(input_ids=torch.tensor([tok(text)["input_ids"]])).logits[0, -1].float().log_softmax(-1)
    p = lp[lm_scorer.rating_ids].exp().numpy()
    np.testing.assert_allclose(out.probs[1], p / p.sum(), atol=1e-4)
    twice = LMRatings(np.vstack([out.probs, out.probs]), np.vstack([out.calibrated, out.calibrated]))
    pred = LMCalibrator.fit(twice, np.array([4.0, 3.0, 4.5, 2.5])).predict(out)
    assert pred.shape == (2,) and np.all((pred >= 1) & (pred <= 5))


# --- the evaluation harness's own arithmetic --------------------------------------------------------------------

def test_rating_splits_are_disjoint_seeded_and_per_user(ratings):
    from chatrec.eval.ratings import chatrec_rating_split, random_rating_split

    sp = chatrec_rating_split(ratings, n_users=10, min_ratings=5, seed=3)
    again = chatrec_rating_split(ratings, n_users=10, min_ratings=5, seed=3)
    assert np.array_equal(sp.test.item, again.test.item) and np.array_equal(sp.test.user, again.test.user)
    assert len(sp.train) + len(sp.test) == len(ratings) and len(sp.val_train) + len(sp.val) == len(sp.train)
    assert len(np.unique(sp.test.user)) == 10 and set(np.unique(sp.val.user)) <= set(np.unique(sp.test.user))
    pairs = lambda r: set(zip(r.user.tolist(), r.item.tolist()))  # noqa: E731
    assert not pairs(sp.test) & pairs(sp.train) and not pairs(sp.val) & pairs(sp.val_train)
    rnd = random_rating_split(ratings, seed=0)
    assert abs(len(rnd.test) / len(ratings) - 0.2) < 0.05 and not pairs(rnd.test) & pairs(rnd.train)


def test_scores_and_user_bootstrap_standard_errors():
    from chatrec.eval.ratings import paired_delta, score

    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(50), 10)
    truth = rng.integers(1, 6, len(users)).astype(float)
    pred = truth + rng.normal(scale=0.9, size=len(users))
    s = score(pred, truth, users)
    assert s.rmse == pytest.approx(rmse_mae(pred, truth)[0]) and s.mae == pytest.approx(rmse_mae(pred, truth)[1])
    assert 0.02 < s.se_rmse < 0.2 and s.n == 500 and s.n_users == 50
    assert paired_delta(pred, pred, truth, users) == (0.0, 0.0)
    d, se = paired_delta(truth, pred, truth, users)
    assert d == pytest.approx(-s.rmse) and se > 0


@requires_data("ml-100k")
def test_ratings_command_end_to_end(tmp_path, capsys):
    from chatrec.eval.ratings import main
    from tests.conftest import SHARED_DATA

    rc = main(["--dataset", "ml-100k", "--models", "global_mean,baseline", "--seeds", "1", "--users", "30",
               "--no-curve", "--data-dir", str(SHARED_DATA), "--cache-dir", str(tmp_path / "c"),
               "--out", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert rc == 0 and "Baseline (μ + b_u + b_i)" in out and "Item-KNN (paper)" in out
    assert (tmp_path / "r" / "report.md").is_file() and (tmp_path / "r" / "ml-100k-rmse-mae.png").is_file()
    assert main(["--models", "svd+++"]) == 2
