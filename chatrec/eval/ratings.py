"""`chatrec-eval ratings`: explicit rating prediction, Chat-REC's second experiment (RMSE / MAE on MovieLens).

    chatrec-eval ratings --dataset ml-100k --seeds 3
    chatrec-eval ratings --dataset ml-100k --lm-users 12 --lm-model PATH/SmolLM2-135M-Instruct.Q4_1.gguf
    chatrec-eval ratings --dataset ml-1m --models baseline,svd,knn_baseline

Protocols (fixed seeds; every split is a pure function of the seed):
  chatrec  Chat-REC's setting as far as the paper states it: a seeded sample of users (default 200), a random 20 %
           of each one's ratings (all rating values) held out as test; every other rating trains. A validation
           split (another 20 % of the sampled users' remaining ratings) fits the blend weights and the LM's
           calibration; models are then refitted on the full training data for test.
  random   the common ML-100K benchmark: a random 20 % of all ratings is test, 10 % of the rest validation.

Models: global mean, baseline (biases), biased MF ("SVD"), SVD++, item-kNN with baselines (retrieval.rating_models,
scikit-surprise underneath); the LM path (retrieval.rating_lm) on a seeded sample of the test users because it
costs ~2 forward passes per user on CPU; the blend (least squares on validation predictions, guarded so it falls
back to its best part when cross-validation says blending does not help). RMSE/MAE standard errors come from a
user-level bootstrap (ratings of one user are not independent). Writes report.md with plots under --out.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from retrieval.datasets import Dataset, DatasetError, load_dataset
from retrieval.rating_models import MODEL_NAMES, BiasedMF, LinearBlend, make_rating_model
from retrieval.types import Ratings

from ..predict import ErrorCurve
from .data_flags import add_data_flags, locator_for, settings_for
from .report import Report, markdown_table

log = logging.getLogger(__name__)

PROTOCOLS = ("chatrec", "random")
LABELS = {"global_mean": "Global mean", "baseline": "Baseline (μ + b_u + b_i)", "svd": "Biased MF (SVD)",
          "svdpp": "SVD++", "knn_baseline": "Item-kNN with baselines", "blend": "Blend (classical)",
          "lm_raw": "LM (raw E[r])", "lm": "LM (calibrated)", "blend_lm": "Blend (classical blend + LM)"}
BLEND_PARTS = ("baseline", "svd", "svdpp", "knn_baseline")
# Gao et al. 2023, Table 3 (ML-100K): RMSE, MAE. The LLM rows were zero-shot on a sample of the data.
PAPER = [("MF (paper)", 0.988, 0.771), ("Item-KNN (paper)", 0.933, 0.734),
         ("text-davinci-003, zero-shot on a sample (paper)", 0.785, 0.593)]
TARGET_RMSE = 0.933


# --- splits -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RatingSplit:
    name: str
    train: Ratings  # everything but test: what test predictions are fitted on
    val_train: Ratings  # train minus validation: what validation predictions are fitted on
    val: Ratings
    test: Ratings
    notes: tuple[str, ...] = ()


def _per_user_holdout(ratings: Ratings, users: np.ndarray, share: float, rng, within: np.ndarray) -> np.ndarray:
    """Mask: a random `share` (≥ 1) of each user's ratings among rows where `within` is True."""
    out = np.zeros(len(ratings), dtype=bool)
    for u in users:
        idx = np.flatnonzero((ratings.user == u) & within)
        n = max(1, int(round(share * len(idx))))
        out[rng.choice(idx, size=min(n, len(idx) - 1), replace=False)] = True
    return out


def chatrec_rating_split(ratings: Ratings, *, n_users: int = 200, holdout: float = 0.2, min_ratings: int = 20,
                         seed: int = 0) -> RatingSplit:
    rng = np.random.default_rng(seed)
    counts = np.bincount(ratings.user, minlength=ratings.n_users)
    eligible = np.flatnonzero(counts >= min_ratings)
    if len(eligible) < n_users:
        raise ValueError(f"only {len(eligible)} users have ≥ {min_ratings} ratings; ask for at most that many users")
    users = np.sort(rng.choice(eligible, size=n_users, replace=False))
    test = _per_user_holdout(ratings, users, holdout, rng, np.ones(len(ratings), dtype=bool))
    val = _per_user_holdout(ratings, users, holdout, rng, ~test)
    notes = (f"{n_users} users sampled with seed {seed} from {len(eligible)} with ≥ {min_ratings} ratings; "
             f"{int(test.sum())} test ratings ({holdout:.0%} of each sampled user's ratings, every rating value), "
             f"{int(val.sum())} validation ratings (another {holdout:.0%} of the rest); all other ratings train",)
    return RatingSplit("chatrec", ratings.subset(~test), ratings.subset(~test & ~val), ratings.subset(val),
                       ratings.subset(test), notes)


def random_rating_split(ratings: Ratings, *, holdout: float = 0.2, seed: int = 0) -> RatingSplit:
    u = np.random.default_rng(seed).random(len(ratings))
    test = u < holdout
    val = (u >= holdout) & (u < holdout + 0.1 * (1 - holdout))
    notes = (f"random {holdout:.0%} of all ratings as test ({int(test.sum())}), 10 % of the rest as validation "
             f"({int(val.sum())}), seed {seed}",)
    return RatingSplit("random", ratings.subset(~test), ratings.subset(~test & ~val), ratings.subset(val),
                       ratings.subset(test), notes)


def make_split(protocol: str, ratings: Ratings, seed: int, n_users: int) -> RatingSplit:
    if protocol == "chatrec":
        return chatrec_rating_split(ratings, n_users=n_users, seed=seed)
    if protocol == "random":
        return random_rating_split(ratings, seed=seed)
    raise ValueError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")


# --- errors with user-level standard errors ---------------------------------------------------------------------

@dataclass(frozen=True)
class Score:
    rmse: float
    mae: float
    se_rmse: float
    se_mae: float
    n: int
    n_users: int


def _user_sums(err: np.ndarray, users: np.ndarray):
    _, inv = np.unique(users, return_inverse=True)
    return (np.bincount(inv, weights=err**2), np.bincount(inv, weights=np.abs(err)),
            np.bincount(inv).astype(np.float64))


def _weights(n_users: int, boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).multinomial(n_users, np.full(n_users, 1.0 / n_users), size=boot)


def score(pred: np.ndarray, truth: np.ndarray, users: np.ndarray, *, boot: int = 300, seed: int = 0) -> Score:
    """RMSE/MAE and their standard errors from resampling users (with all their ratings) with replacement."""
    err = np.asarray(pred, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    sq, ab, n = _user_sums(err, users)
    w = _weights(len(n), boot, seed)
    rm = np.sqrt((w @ sq) / (w @ n))
    ma = (w @ ab) / (w @ n)
    return Score(float(np.sqrt(sq.sum() / n.sum())), float(ab.sum() / n.sum()), float(rm.std(ddof=1)),
                 float(ma.std(ddof=1)), int(n.sum()), len(n))


def paired_delta(a: np.ndarray, b: np.ndarray, truth: np.ndarray, users: np.ndarray, *, boot: int = 300,
                 seed: int = 0) -> tuple[float, float]:
    """RMSE(a) − RMSE(b) and its user-bootstrap standard error (same resamples for both)."""
    ea, eb = np.asarray(a) - truth, np.asarray(b) - truth
    sa, _, n = _user_sums(ea, users)
    sb, _, _ = _user_sums(eb, users)
    w = _weights(len(n), boot, seed)
    d = np.sqrt((w @ sa) / (w @ n)) - np.sqrt((w @ sb) / (w @ n))
    return float(np.sqrt(sa.sum() / n.sum()) - np.sqrt(sb.sum() / n.sum())), float(d.std(ddof=1))


# --- the LM path ----------------------------------------------------------------------------------------------

def _history(r: Ratings, catalog, u: int):
    mine = np.flatnonzero(r.user == u)
    mine = mine[np.argsort(r.timestamp[mine], kind="stable")]
    return [(catalog.items[int(i)], float(v)) for i, v in zip(r.item[mine], r.rating[mine])]


def lm_predictions(scorer, catalog, split: RatingSplit, users: np.ndarray):
    """LMRatings for the validation and test ratings of `users`, one prompt per user.

    The prompt's history comes from `val_train` (the user's ratings minus both held-out parts), so validation and
    test targets share one encoded history and one packed pass; the test targets see a little less history than
    the classical models were refitted on (their validation ratings), never more.
    """
    from retrieval.rating_lm import LMRatings

    masks = {"val": np.isin(split.val.user, users), "test": np.isin(split.test.user, users)}
    probs = {k: np.zeros((len(r), 5)) for k, r in (("val", split.val), ("test", split.test))}
    cal = {k: np.zeros((len(r), 5)) for k, r in (("val", split.val), ("test", split.test))}
    for u in tqdm(users, desc="LM rating scoring", unit="user", file=sys.stderr):
        rows = {"val": np.flatnonzero(split.val.user == u), "test": np.flatnonzero(split.test.user == u)}
        items = [catalog.items[int(i)] for kind in ("val", "test")
                 for i in (split.val if kind == "val" else split.test).item[rows[kind]]]
        out = scorer.score(_history(split.val_train, catalog, int(u)), items)
        n_val = len(rows["val"])
        probs["val"][rows["val"]], cal["val"][rows["val"]] = out.probs[:n_val], out.calibrated[:n_val]
        probs["test"][rows["test"]], cal["test"][rows["test"]] = out.probs[n_val:], out.calibrated[n_val:]
    return masks, LMRatings(probs["val"], cal["val"]), LMRatings(probs["test"], cal["test"])


def _cross_fit_calibration(lm_val, truth: np.ndarray, users: np.ndarray, scale, folds: int = 5) -> np.ndarray:
    """Calibrated LM predictions for validation ratings, each from a calibrator fitted on other users' ratings
    (so the blend that uses them does not see in-sample calibration)."""
    from retrieval.rating_lm import LMCalibrator, LMRatings

    uniq = np.unique(users)
    fold_of = dict(zip(uniq.tolist(), (np.arange(len(uniq)) % folds).tolist()))
    f = np.array([fold_of[int(u)] for u in users])
    out = np.zeros(len(truth))
    for k in range(folds):
        tr, te = f != k, f == k
        if te.any():
            cal = LMCalibrator.fit(LMRatings(lm_val.probs[tr], lm_val.calibrated[tr]), truth[tr], scale)
            out[te] = cal.predict(LMRatings(lm_val.probs[te], lm_val.calibrated[te]))
    return out


# --- one run ----------------------------------------------------------------------------------------------------

@dataclass
class SeedResult:
    seed: int
    scores: dict[str, Score] = field(default_factory=dict)  # all test users
    lm_scores: dict[str, Score] = field(default_factory=dict)  # the LM's sample of test users
    blend: dict[str, str] = field(default_factory=dict)  # blend name → what it chose / weights
    deltas: dict[str, tuple[float, float]] = field(default_factory=dict)
    lm_reliability: tuple = ()
    notes: tuple[str, ...] = ()


def _model_params(name: str, seed: int) -> dict:
    return {"seed": seed} if name in ("svd", "svdpp") else {}


def run_seed(ds: Dataset, protocol: str, seed: int, models: Sequence[str], n_users: int, scorer=None,
             lm_users: int = 0, scale=(1.0, 5.0), cache_dir: Path | None = None) -> SeedResult:
    split = make_split(protocol, ds.ratings, seed, n_users)
    n_items = len(ds.catalog)
    val_pred, test_pred = {}, {}
    for name in tqdm(models, desc=f"rating models, seed {seed}", unit="model", file=sys.stderr):
        params = _model_params(name, seed)
        val_pred[name] = make_rating_model(name, scale, **params).fit(split.val_train, n_items).predict(
            split.val.user, split.val.item)
        test_pred[name] = make_rating_model(name, scale, **params).fit(split.train, n_items).predict(
            split.test.user, split.test.item)
    res = SeedResult(seed, notes=split.notes)
    t_truth, t_users = split.test.rating.astype(np.float64), split.test.user
    v_truth = split.val.rating.astype(np.float64)
    for name in models:
        res.scores[name] = score(test_pred[name], t_truth, t_users, seed=seed)
    parts = [m for m in BLEND_PARTS if m in models]
    if len(parts) >= 2:
        blend = LinearBlend.fit({m: val_pred[m] for m in parts}, v_truth, scale=scale, seed=seed)
        test_pred["blend"] = blend.predict(test_pred)
        res.scores["blend"] = score(test_pred["blend"], t_truth, t_users, seed=seed)
        res.blend["blend"] = _describe_blend(blend)
        val_pred["blend"] = blend.predict(val_pred)  # in-sample for its few weights; feeds the LM's blend
        best = min(parts, key=lambda m: res.scores[m].rmse)
        res.deltas["blend − best part (" + best + ")"] = paired_delta(test_pred["blend"], test_pred[best], t_truth,
                                                                     t_users, seed=seed)
    if scorer is not None and lm_users > 0:
        _run_lm(res, ds, split, scorer, lm_users, seed, parts, val_pred, test_pred, scale, cache_dir)
    return res


def _describe_blend(b: LinearBlend) -> str:
    if b.chosen != "blend":
        return f"fell back to {b.chosen} (blending did not beat it in cross-validation)"
    return f"{b.intercept:+.3f} " + " ".join(f"{w:+.3f}·{n}" for n, w in zip(b.names, b.weights))


def _lm_cached(scorer, ds: Dataset, split: RatingSplit, users: np.ndarray, seed: int, cache_dir: Path | None):
    """`lm_predictions`, stored under cache_dir/ratings-lm by (data, split, users, model, prompt) so that
    re-running the report (other blends, plots) does not pay the LM's CPU time again."""
    from retrieval.rating_lm import LMRatings

    key = hashlib.sha256(repr((ds.describe(), split.name, seed, split.notes, users.tolist(), scorer.source,
                               scorer.max_history, scorer.template)).encode()).hexdigest()[:20]
    path = Path(cache_dir) / "ratings-lm" / f"{key}.npz" if cache_dir is not None else None
    if path is not None and path.is_file():
        z = np.load(path)
        return ({"val": z["vm"], "test": z["tm"]}, LMRatings(z["vp"], z["vc"]), LMRatings(z["tp"], z["tc"]))
    masks, lm_val, lm_test = lm_predictions(scorer, ds.catalog, split, users)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, vm=masks["val"], tm=masks["test"], vp=lm_val.probs, vc=lm_val.calibrated, tp=lm_test.probs,
                 tc=lm_test.calibrated)
    return masks, lm_val, lm_test


def _run_lm(res: SeedResult, ds: Dataset, split: RatingSplit, scorer, lm_users: int, seed: int, parts,
            val_pred, test_pred, scale, cache_dir: Path | None) -> None:
    from retrieval.rating_lm import LMCalibrator, LMRatings

    cand = np.intersect1d(np.unique(split.test.user), np.unique(split.val.user))
    users = np.sort(np.random.default_rng(seed + 1000).choice(cand, size=min(lm_users, len(cand)), replace=False))
    masks, lm_val, lm_test = _lm_cached(scorer, ds, split, users, seed, cache_dir)
    vm, tm = masks["val"], masks["test"]
    v_truth = split.val.rating.astype(np.float64)
    t_truth, t_users = split.test.rating.astype(np.float64), split.test.user

    def sub(x: LMRatings, m: np.ndarray) -> LMRatings:
        return LMRatings(x.probs[m], x.calibrated[m])

    cal = LMCalibrator.fit(sub(lm_val, vm), v_truth[vm], scale)
    lm_test_raw = np.clip(lm_test.expected[tm], *scale)
    lm_test_cal = cal.predict(sub(lm_test, tm))
    lm_val_cal = _cross_fit_calibration(sub(lm_val, vm), v_truth[vm], split.val.user[vm], scale)
    tt, tu = t_truth[tm], t_users[tm]
    for name in list(res.scores):
        res.lm_scores[name] = score(test_pred[name][tm], tt, tu, seed=seed)
    res.lm_scores["lm_raw"] = score(lm_test_raw, tt, tu, seed=seed)
    res.lm_scores["lm"] = score(lm_test_cal, tt, tu, seed=seed)
    # Stacked on the classical blend, whose weights come from all sampled users' validation ratings: the LM's few
    # users could not fit five weights reliably, and falling back lands on the classical blend, not on one model.
    # Convex (a mixing share for the LM, no intercept): a few users' ratings would otherwise fit their own mean.
    base = "blend" if "blend" in val_pred else min(parts or list(val_pred), key=lambda m: res.scores[m].rmse)
    blend = LinearBlend.fit({base: val_pred[base][vm], "lm": lm_val_cal}, v_truth[vm], scale=scale, seed=seed,
                            convex=True)
    pred = blend.predict({base: test_pred[base][tm], "lm": lm_test_cal})
    res.lm_scores["blend_lm"] = score(pred, tt, tu, seed=seed)
    res.blend["blend_lm"] = _describe_blend(blend)
    res.blend["lm calibration"] = (f"rating ≈ {cal.weights[0]:+.3f} {cal.weights[1]:+.3f}·E_raw "
                                   f"{cal.weights[2]:+.3f}·E_cf")
    others = {m: test_pred[m][tm] for m in [*parts, base]} | {"lm": lm_test_cal}
    best = min(others, key=lambda m: res.lm_scores[m].rmse)
    res.deltas[f"blend+LM − best part ({best}), LM users"] = paired_delta(pred, others[best], tt, tu, seed=seed)
    res.lm_reliability = (lm_test_raw, lm_test_cal, tt)
    res.notes += (f"LM path on {len(users)} of the test users (seeded sample), {int(tm.sum())} test ratings; "
                  f"{int(vm.sum())} validation ratings of the same users fit its calibration; its prompt shows "
                  "the user's last rated items outside both held-out parts",)


# --- aggregation and report -------------------------------------------------------------------------------------

def combine(results: Sequence[SeedResult], attr: str) -> dict[str, Score]:
    """Mean over seeds; SE = √(Σ SE_s²) / S (each seed's user bootstrap; seeds treated as independent)."""
    names = list(dict.fromkeys(n for r in results for n in getattr(r, attr)))
    out = {}
    for n in names:
        ss = [getattr(r, attr)[n] for r in results if n in getattr(r, attr)]
        s = len(ss)
        out[n] = Score(float(np.mean([x.rmse for x in ss])), float(np.mean([x.mae for x in ss])),
                       float(np.sqrt(sum(x.se_rmse**2 for x in ss)) / s),
                       float(np.sqrt(sum(x.se_mae**2 for x in ss)) / s), int(sum(x.n for x in ss)),
                       int(sum(x.n_users for x in ss)))
    return out


def table(scores: dict[str, Score], with_paper: bool) -> str:
    rows = [[LABELS.get(n, n), f"{s.rmse:.4f} ± {s.se_rmse:.4f}", f"{s.mae:.4f} ± {s.se_mae:.4f}", s.n, s.n_users]
            for n, s in scores.items()]
    if with_paper:
        rows += [[name, f"{r:.3f}", f"{m:.3f}", "", ""] for name, r, m in PAPER]
    return markdown_table(["model", "RMSE ± SE", "MAE ± SE", "test ratings", "users (summed over seeds)"], rows)


def _bar_figure(scores: dict[str, Score], title: str):
    import matplotlib.pyplot as plt

    names = list(scores)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("rmse", "mae")):
        vals = [getattr(scores[n], metric) for n in names]
        errs = [getattr(scores[n], "se_" + metric) for n in names]
        ax.barh(range(len(names)), vals, xerr=errs, capsize=3, color=[f"C{i}" for i in range(len(names))])
        ax.set_yticks(range(len(names)), [LABELS.get(n, n) for n in names], fontsize=8)
        for j, (pname, r, m) in enumerate(PAPER):
            ax.axvline(r if metric == "rmse" else m, color=f"C{len(names) + j}", linestyle="--", label=pname)
        ax.set_xlabel(metric.upper())
        lo = min(min(vals), *(p[1] if metric == "rmse" else p[2] for p in PAPER))
        ax.set_xlim(lo * 0.9, max(vals) * 1.03)
        ax.invert_yaxis()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=len(PAPER), bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def _curve_figure(curve: ErrorCurve, base: ErrorCurve | None):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(curve.counts, curve.rmse, marker="o", label="biased MF fold-in")
    if base is not None:
        ax.plot(base.counts, base.rmse, marker="s", label="baseline fold-in (biases only)")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("ratings folded in for a new user")
    ax.set_ylabel("RMSE on the user's other ratings")
    ax.set_title("how much a session must tell before predictions sharpen")
    ax.legend(fontsize=8)
    return fig


def _reliability_figure(rel: Sequence[tuple]):
    import matplotlib.pyplot as plt

    raw = np.concatenate([r[0] for r in rel])
    cal = np.concatenate([r[1] for r in rel])
    truth = np.concatenate([r[2] for r in rel])
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, p in (("LM raw E[r]", raw), ("LM calibrated", cal)):
        bins = np.clip(np.rint(p * 2) / 2, 1, 5)
        xs = np.unique(bins)
        ax.plot(xs, [truth[bins == x].mean() for x in xs], marker="o", label=name)
    ax.plot([1, 5], [1, 5], color="grey", linestyle=":", label="perfect")
    ax.set_xlabel("predicted rating (binned to 0.5)")
    ax.set_ylabel("mean true rating")
    ax.set_title("LM rating path: reliability on test ratings")
    ax.legend(fontsize=8)
    return fig


# --- CLI ----------------------------------------------------------------------------------------------------------

def _parse(argv):
    p = argparse.ArgumentParser(prog="chatrec-eval ratings", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="ml-100k", help="ml-100k, ml-1m (partial ratings) or a comma-separated list")
    p.add_argument("--protocol", choices=PROTOCOLS, default="chatrec")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--users", type=int, default=200, help="sampled users (chatrec protocol)")
    p.add_argument("--models", default=",".join(MODEL_NAMES))
    p.add_argument("--lm-users", type=int, default=0, help="test users scored by the LM path per seed (0 = off)")
    p.add_argument("--lm-model", default=None, help="causal LM for the LM path: folder, .gguf file or cached id "
                   "(default: settings scorer_model)")
    p.add_argument("--lm-history", type=int, default=30, help="rated items shown to the LM per user")
    p.add_argument("--device", default=None)
    p.add_argument("--no-curve", action="store_true", help="skip the fold-in error curve")
    p.add_argument("--out", type=Path, default=None, help="report folder (default reports/ratings-PROTOCOL)")
    add_data_flags(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in models if m not in MODEL_NAMES]
    if bad or not models:
        print(f"error: unknown model(s) {bad}; choose from {', '.join(MODEL_NAMES)}", file=sys.stderr)
        return 2
    if args.seeds < 1:
        print("error: --seeds must be at least 1", file=sys.stderr)
        return 2
    settings = settings_for(args)
    cache_dir = settings.cache_dir
    locator = locator_for(settings)
    scorer = None
    lm_note = "LM path: off (pass --lm-users N and --lm-model PATH)"
    if args.lm_users > 0:
        model = args.lm_model or settings.scorer_model
        if not model:
            print("error: --lm-users needs --lm-model (a folder, .gguf file or cached model id)", file=sys.stderr)
            return 2
        from retrieval.rating_lm import LMRatingScorer

        scorer = LMRatingScorer.from_pretrained(str(Path(model).expanduser()) if Path(model).expanduser().exists()
                                                else model, cache_dir=cache_dir, device=args.device,
                                                max_history=args.lm_history)
        lm_note = (f"LM path: {model} on {args.lm_users} sampled test users per seed, last {args.lm_history} "
                   f"rated items (by time) in the prompt, ratings 1..5 scored as next tokens")
    out = args.out or Path("reports") / f"ratings-{args.protocol}"
    report = Report(f"Rating prediction — {args.protocol} protocol")
    t0 = time.time()
    summary_lines = []
    for dname in [d.strip() for d in args.dataset.split(",") if d.strip()]:
        try:
            ds = load_dataset(dname, locator, with_text=scorer is not None)
        except DatasetError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        lo, hi = float(ds.ratings.rating.min()), float(ds.ratings.rating.max())
        scale = (min(lo, 1.0), max(hi, 5.0))
        results = [run_seed(ds, args.protocol, s, models, args.users, scorer, args.lm_users, scale, cache_dir)
                   for s in range(args.seeds)]
        allc, lmc = combine(results, "scores"), combine(results, "lm_scores")
        head = [f"- dataset: {ds.describe()}", *(f"- {n}" for n in ds.notes), *(f"- {n}" for n in results[0].notes),
                f"- seeds {list(range(args.seeds))} (notes above are for seed 0)", f"- {lm_note}",
                "- SE: user-level bootstrap (300 resamples) per seed, combined as √(Σ SE²)/S over seeds"]
        report.add(f"## {dname}\n\n" + "\n".join(head))
        report.add("### All test users\n\n" + table(allc, dname == "ml-100k"))
        if lmc:
            report.add("### The LM's sample of test users (every model on the same ratings)\n\n" + table(lmc, False))
        blend_rows = [[r.seed, k, v] for r in results for k, v in r.blend.items()]
        if blend_rows:
            report.add("### Blends and calibration per seed\n\n" + markdown_table(["seed", "what", "fit"], blend_rows))
        delta_rows = [[r.seed, k, f"{d:+.4f} ± {se:.4f}"] for r in results for k, (d, se) in r.deltas.items()]
        if delta_rows:
            report.add("### Blend vs its best part (paired, test)\n\n"
                       + markdown_table(["seed", "comparison", "Δ RMSE ± SE"], delta_rows)
                       + "\n\n_negative = the blend is better_")
        report.add_figure(_bar_figure(allc, f"{dname}, {args.protocol} protocol, all test users"),
                          f"{dname}-rmse-mae", "RMSE / MAE per model (error bars: SE); dashed: Chat-REC's rows")
        if lmc:
            report.add_figure(_bar_figure(lmc, f"{dname}: the LM's sample of users"), f"{dname}-lm-users",
                              "the same models on the LM's sample of test users")
            report.add_figure(_reliability_figure([r.lm_reliability for r in results if r.lm_reliability]),
                              f"{dname}-lm-reliability", "LM rating path: mean true rating per predicted bin")
        if not args.no_curve:
            curve = ErrorCurve.measure(lambda: BiasedMF(scale), ds.ratings, len(ds.catalog))
            base = ErrorCurve.measure(lambda: make_rating_model("baseline", scale), ds.ratings, len(ds.catalog))
            report.add("### Fold-in error curve (chat sessions)\n\n" + markdown_table(
                ["ratings folded in", *map(str, curve.counts)],
                [["biased MF RMSE", *curve.rmse], ["baseline RMSE", *base.rmse]])
                + "\n\n_150 users held out of training, folded in from c random ratings, scored on the rest; "
                  "`chatrec.predict` turns this into the interval it shows._")
            report.add_figure(_curve_figure(curve, base), f"{dname}-fold-in", "fold-in error by evidence count")
        best = min((n for n in allc if n in MODEL_NAMES and n != "global_mean"), key=lambda n: allc[n].rmse)
        summary_lines.append(f"{dname}: best classical {LABELS[best]} RMSE {allc[best].rmse:.4f} "
                             f"(target < {TARGET_RMSE}: {'met' if allc[best].rmse < TARGET_RMSE else 'NOT met'})")
        print(f"\n## {dname} ({args.protocol}, {args.seeds} seed(s))\n")
        print(table(allc, dname == "ml-100k"))
        if lmc:
            print("\nLM users:\n" + table(lmc, False))
        for r in results:
            for k, v in r.blend.items():
                print(f"seed {r.seed} {k}: {v}")
            for k, (d, se) in r.deltas.items():
                print(f"seed {r.seed} {k}: Δ RMSE {d:+.4f} ± {se:.4f}")
    report.add("## Summary\n\n" + "\n".join(f"- {s}" for s in summary_lines))
    report.add(f"Run time: {time.time() - t0:.0f} s. Command: `chatrec-eval ratings "
               f"{' '.join(argv if argv is not None else sys.argv[1:])}`")
    path = report.write(out)
    print("\n" + "\n".join(summary_lines))
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
