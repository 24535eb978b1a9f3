"""`chatrec-eval pooled`: does pooling other MovieLens sets into the ALS input help the target's own users?

    chatrec-eval pooled --data-dir ../shared/data
    chatrec-eval pooled --weights "ml-1m=0,0.5,1;ml-100k=0,1" --seeds 3

Only the target's users are evaluated (Chat-REC holdout: 20 % of each user's liked items, every eligible user,
one split per seed); the other sets only add training rows. ALS uses the app's settings (chatrec/settings.py,
CHATREC_ALS_* and flags), the same for every weighting, so the table answers "what does the app gain by
switching pool_movielens on". Per user the metrics are averaged over seeds; standard errors are over users, and
the Δ columns are paired differences against the unpooled row (same users, same held-out items).
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from retrieval.candidates import ALSConfig, ALSGenerator
from retrieval.datasets import DatasetError, load_dataset
from retrieval.pooled import POOLABLE, PooledDataset, load_pooled

from ..settings import Settings
from .data_flags import add_data_flags, locator_for, settings_for
from .metrics import user_metrics
from .offline import rank
from .protocols import ProtocolError, chatrec_split
from .report import Report, markdown_table

KS = (10, 50)
COLD = 10  # held-out items with fewer training ratings than this (in the target alone) count as cold


@dataclass(frozen=True)
class Row:
    weights: tuple[tuple[str, float], ...]
    per_user: dict[str, np.ndarray]  # metric → [n_users], averaged over seeds
    cold_hits: int
    cold_total: int
    fit_s: float
    nnz: int
    n_users: int

    @property
    def label(self) -> str:
        pooled = [f"{n} {w:g}" for n, w in self.weights if w > 0]
        return ", ".join(pooled) or "none (the target alone)"


def parse_weights(text: str, target: str) -> list[tuple[tuple[str, float], ...]]:
    """"ml-1m=0,0.5,1;ml-100k=0,1" → every combination, as ((name, weight), ...) tuples."""
    grid = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, values = part.partition("=")
        name = name.strip()
        if name not in POOLABLE or name == target:
            raise ValueError(f"cannot pool {name!r} into {target}; choose from "
                             f"{', '.join(n for n in POOLABLE if n != target)}")
        try:
            ws = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"weights for {name} must be numbers, e.g. {name}=0,0.5,1") from None
        if not ws or any(not np.isfinite(w) or w < 0 for w in ws):
            raise ValueError(f"weights for {name} must be finite numbers ≥ 0")
        grid.append([(name, w) for w in ws])
    return [tuple(c) for c in itertools.product(*grid)]


def als_config(settings: Settings, seed: int) -> ALSConfig:
    return ALSConfig(factors=settings.als_factors, regularization=settings.als_regularization,
                     alpha=settings.als_alpha, iterations=settings.als_iterations, seed=seed)


def evaluate(pools: dict, settings: Settings, seeds: Sequence[int], n_users: int | None) -> list[Row]:
    """One ALS fit per (weighting, seed) on the seed's training part of the target plus the pooled sources."""
    target = next(iter(pools.values())).target
    splits = []
    for s in seeds:
        if n_users is None:
            eligible = np.bincount(target.ratings.user[target.ratings.rating >= 4.0], minlength=target.ratings.n_users)
            n = int((eligible >= 5).sum())
        else:
            n = n_users
        splits.append(chatrec_split(target.ratings, target.catalog, n_users=n, seed=s))
    counts = [np.bincount(sp.train.item, minlength=len(target.catalog)) for sp in splits]
    rows = []
    jobs = [(w, i) for w in pools for i in range(len(seeds))]
    acc: dict = {}
    for weights, i in tqdm(jobs, desc="pooled ALS fits", unit="fit", file=sys.stderr):
        pooled: PooledDataset = pools[weights]
        split = splits[i]
        inter = pooled.interactions(target=split.train, min_rating=settings.als_min_rating,
                                    confidence=settings.als_confidence)
        t0 = time.perf_counter()
        gen = ALSGenerator(als_config(settings, seed=42 + i)).fit(inter, split.catalog)
        fit_s = time.perf_counter() - t0
        ranked = rank(gen, split, max(KS))
        a = acc.setdefault(weights, {"metrics": [], "cold": [0, 0], "fit": [], "shape": inter.shape,
                                     "nnz": inter.matrix.nnz})
        a["metrics"].append({f"{name}@{k}": getattr(user_metrics(ranked, split.truth, k), attr)
                             for k in KS for name, attr in (("R", "recall"), ("NDCG", "ndcg"))})
        for row, truth in zip(ranked, split.truth):
            cold = truth[counts[i][truth] < COLD]
            a["cold"][0] += int(np.isin(cold, row[: max(KS)]).sum())
            a["cold"][1] += len(cold)
        a["fit"].append(fit_s)
    for weights, a in acc.items():
        per_user = {m: np.mean([d[m] for d in a["metrics"]], axis=0) for m in a["metrics"][0]}
        rows.append(Row(weights, per_user, a["cold"][0], a["cold"][1], float(np.mean(a["fit"])), a["nnz"],
                        a["shape"][0]))
    return rows


def _se(x: np.ndarray) -> float:
    return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else 0.0


def table(rows: Sequence[Row]) -> tuple[str, Row]:
    base = next((r for r in rows if all(w == 0 for _, w in r.weights)), rows[0])
    headers = ["pooled sources (weight)", "users", "nonzeros", "R@10", "NDCG@10", "ΔR@10 (paired)",
               "ΔNDCG@10 (paired)", "R@50", f"cold R@50 (<{COLD} ratings)", "fit s"]
    body = []
    for r in rows:
        cells = [r.label, f"{r.n_users:,}", f"{r.nnz:,}"]
        for m in ("R@10", "NDCG@10"):
            cells.append(f"{r.per_user[m].mean():.4f} ± {_se(r.per_user[m]):.4f}")
        for m in ("R@10", "NDCG@10"):
            d = r.per_user[m] - base.per_user[m]
            cells.append("—" if r is base else f"{d.mean():+.4f} ± {_se(d):.4f}")
        cells.append(f"{r.per_user['R@50'].mean():.4f} ± {_se(r.per_user['R@50']):.4f}")
        cells.append(f"{r.cold_hits / max(r.cold_total, 1):.4f} ({r.cold_total})")
        cells.append(f"{r.fit_s:.1f}")
        body.append(cells)
    return markdown_table(headers, body), base


def _figure(rows: Sequence[Row], base: Row):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.5))
    labels = [r.label for r in rows]
    for j, m in enumerate(("R@10", "NDCG@10")):
        d = [float((r.per_user[m] - base.per_user[m]).mean()) for r in rows]
        e = [_se(r.per_user[m] - base.per_user[m]) for r in rows]
        ax.barh(np.arange(len(rows)) + 0.4 * j, d, 0.4, xerr=e, capsize=3, label=f"Δ{m}")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(np.arange(len(rows)) + 0.2, labels, fontsize=8)
    ax.set_xlabel(f"paired difference vs. {base.label} (± SE over users)")
    ax.legend(fontsize=8)
    return fig


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="chatrec-eval pooled", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="ml-latest-small", help="the target: whose users are evaluated")
    p.add_argument("--weights", default=None,
                   help="per source, the weights to try, e.g. 'ml-1m=0,0.5,1;ml-100k=0,1'; every combination is "
                        "run (default: 0, 0.5 and 1 for each other set in POOLABLE)")
    p.add_argument("--seeds", type=int, default=3, help="holdout splits (0, 1, ...) and ALS initialisations")
    p.add_argument("--users", type=int, default=0, help="evaluated users per split (0 = every eligible user)")
    p.add_argument("--out", type=Path, default=Path("reports/pooled"))
    add_data_flags(p)
    args = p.parse_args(argv)
    settings = settings_for(args)
    if args.seeds < 1:
        p.error("--seeds must be at least 1")
    t0 = time.time()
    try:
        grid = parse_weights(args.weights or ";".join(f"{n}=0,0.5,1" for n in POOLABLE if n != args.dataset),
                             args.dataset)
        loc = locator_for(settings)
        target = load_dataset(args.dataset, loc, with_text=False)
        # Each source in the grid is loaded once (weight 1), then reweighted per combination.
        named = {n for combo in grid for n, _ in combo}
        full = load_pooled(target, loc, {n: float(n in named) for n in POOLABLE})
    except (ValueError, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    pools = {w: full.reweighted(dict(w)) for w in grid}
    try:
        rows = evaluate(pools, settings, list(range(args.seeds)), args.users or None)
    except ProtocolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    text, base = table(rows)
    # Ties on NDCG@10 at the printed precision go to the better R@10.
    best = max(rows, key=lambda r: (round(float(r.per_user["NDCG@10"].mean()), 4), float(r.per_user["R@10"].mean())))
    report = Report(f"Pooled MovieLens ratings for ALS — evaluated on {target.name} users")
    report.add("\n".join([
        f"- target: {target.describe()}; sources: " + "; ".join(r.line() for r in full.reports),
        f"- protocol: Chat-REC holdout (20 % of each evaluated user's liked items, ratings ≥ 4), "
        f"{args.users or 'every eligible'} users per split, seeds {list(range(args.seeds))}; metrics per user "
        f"averaged over seeds, ± one standard error over users; Δ = paired difference against "
        f"**{base.label}** (same users, same held-out items)",
        f"- ALS as the app runs it: {settings.als_factors} factors, regularization {settings.als_regularization:g}, "
        f"alpha {settings.als_alpha:g}, {settings.als_iterations} iterations, {settings.als_confidence} confidence, "
        f"ratings ≥ {settings.als_min_rating:g}; the same for every row",
        f"- cold R@50: share of held-out items with fewer than {COLD} training ratings in {target.name} that reach "
        "the top 50 (the films pooling should help most), pooled over seeds; in brackets the number of such items",
    ]))
    report.add("## Results\n\n" + text)
    report.add(f"Best NDCG@10: **{best.label}**.")
    report.add_figure(_figure(rows, base), "pooled-delta", f"paired gain over {base.label}")
    report.add(f"Run time: {time.time() - t0:.0f} s. Command: `chatrec-eval pooled "
               f"{' '.join(argv if argv is not None else sys.argv[1:])}`")
    path = report.write(args.out)
    print(text)
    print(f"\nbest NDCG@10: {best.label}\nreport: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
