"""`chatrec-eval tune`: tune ALS on a validation split carved from training data only.

    chatrec-eval tune --dataset ml-100k --protocol chatrec
    chatrec-eval tune --dataset ml-latest-small --protocol loo

Validation never touches test ground truth:
  * chatrec: for each test seed s the test split is drawn first (exactly as `offline` draws it); a second
    Chat-REC split (other users, seed 1000+s) is then carved from that split's *training* ratings.
  * loo: the second-to-last item per user is the validation target; the last two items are withheld from training.
    With --loo-depths 3 the third- and fourth-to-last items are further folds (each trained on what came before):
    one fold of ~600 users is too noisy to rank configs.
  * lmrecsys: the test split is drawn first; validation users are drawn from the others (test users keep only 5
    items in training, so they are never eligible) and their first 5 items predict the 6th.

Search: seeded random samples of a coarse grid (the default setup is always tried), then greedy one-step
coordinate moves from the best until none improves or the trial budget is spent. Writes best.json (feed it to
`chatrec-eval offline --als-config PATH`) and a report with the top trials.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from retrieval.datasets import Dataset, DatasetError, load_dataset

from .data_flags import add_data_flags, locator_for, settings_for
from .offline import DEFAULT_ALS, KS, ALSSetup, GeneratorSpec, TUNED_ALS, evaluate
from .protocols import Split, chatrec_split, lmrecsys_split, loo_split
from .report import Report, markdown_table

# Coarse grid; regularization spans 0.01 … 100 on a log scale as strong shrinkage often wins on small data.
SPACE: dict[str, tuple] = {
    "factors": (16, 32, 64, 128, 200),
    "regularization": (0.01, 0.1, 1.0, 3.0, 10.0, 30.0, 100.0),
    "alpha": (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0),
    "iterations": (10, 15, 30),
    "confidence": ("binary", "linear"),
    "min_rating": (0.0, 3.0, 4.0),
}
OBJECTIVE = {"chatrec": "NDCG@5", "loo": "NDCG@10", "lmrecsys": "R@20"}


def validation_splits(protocol: str, ds: Dataset, seeds, n_users: int = 300, lmrecsys_users: int | None = 1000,
                      loo_depths: int = 3) -> list[Split]:
    if protocol == "chatrec":
        out = []
        for s in seeds:
            test = chatrec_split(ds.ratings, ds.catalog, seed=s)
            out.append(chatrec_split(test.train, ds.catalog, n_users=n_users, seed=1000 + s, name="chatrec-val"))
        return out
    if protocol == "loo":
        return [loo_split(ds.ratings, ds.catalog, which="validation", depth=d) for d in range(1, loo_depths + 1)]
    if protocol == "lmrecsys":
        out = []
        for s in seeds:
            test = lmrecsys_split(ds, n_users=lmrecsys_users, seed=s).split
            carved = Dataset(f"{ds.name}-train", ds.catalog, test.train, ds.partial, ds.notes)
            out.append(lmrecsys_split(carved, n_users=n_users, seed=1000 + s).split)
        return out
    raise ValueError(f"tuning supports protocols {', '.join(OBJECTIVE)}, not {protocol!r}")


def sample(rng: np.random.Generator) -> ALSSetup:
    return ALSSetup(**{k: v[int(rng.integers(len(v)))] for k, v in SPACE.items()})


def neighbours(setup: ALSSetup) -> list[ALSSetup]:
    """Setups one grid step away on one axis (values off the grid snap to their nearest grid point first)."""
    out = []
    for k, grid in SPACE.items():
        v = getattr(setup, k)
        if isinstance(v, str):
            out += [replace(setup, **{k: g}) for g in grid if g != v]
            continue
        i = int(np.argmin([abs(np.log(float(g)) - np.log(float(v))) if float(g) > 0 and float(v) > 0
                           else abs(float(g) - float(v)) for g in grid]))
        out += [replace(setup, **{k: grid[j]}) for j in (i - 1, i + 1) if 0 <= j < len(grid)]
    return out


class Tuner:
    def __init__(self, protocol: str, splits: list[Split], seeds: tuple[int, ...] = (42,)):
        self.protocol, self.splits, self.seeds = protocol, splits, seeds
        self.metric = OBJECTIVE[protocol]
        self.trials: dict[ALSSetup, dict[str, float]] = {}

    def score(self, setup: ALSSetup) -> float:
        if setup not in self.trials:
            # Several ALS inits per split average out init noise, which on 600 users rivals real differences.
            ms = [evaluate(GeneratorSpec("als", als=setup), sp, KS[self.protocol], seed)
                  for sp in self.splits for seed in self.seeds]
            self.trials[setup] = {m: float(np.mean([r[m] for r in ms])) for m in ms[0]}
        return self.trials[setup][self.metric]

    def best(self) -> ALSSetup:
        return max(self.trials, key=lambda s: self.trials[s][self.metric])

    def run(self, n_random: int, max_trials: int, rng: np.random.Generator, budget_s: float) -> ALSSetup:
        t0 = time.time()
        starts = [DEFAULT_ALS, *TUNED_ALS.values(), *(sample(rng) for _ in range(n_random))]
        for s in tqdm(starts, desc="random search", unit="trial", file=sys.stderr):
            if time.time() - t0 > budget_s:
                break
            self.score(s)
        bar = tqdm(desc="coordinate moves", unit="trial", file=sys.stderr)
        improved = True
        while improved and len(self.trials) < max_trials and time.time() - t0 < budget_s:
            improved = False
            best = self.best()
            for n in neighbours(best):
                if n in self.trials:
                    continue
                self.score(n)
                bar.update()
                if self.trials[n][self.metric] > self.trials[best][self.metric]:
                    improved = True
                    break  # greedy: move at once, then look around the new best
                if len(self.trials) >= max_trials or time.time() - t0 > budget_s:
                    break
        bar.close()
        return self.best()


def _plot(tuner: Tuner):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    setups = list(tuner.trials)
    y = [tuner.trials[s][tuner.metric] for s in setups]
    for ax, key in zip(axes, ("regularization", "alpha", "factors")):
        ax.scatter([getattr(s, key) for s in setups], y, s=12, alpha=0.7,
                   c=["C0" if s.confidence == "binary" else "C1" for s in setups])
        ax.set_xscale("log")
        ax.set_xlabel(key)
        ax.set_ylabel(tuner.metric)
    axes[0].set_title("blue: binary, orange: linear confidence", fontsize=8)
    fig.suptitle(f"validation {tuner.metric} per trial")
    return fig


def _parse(argv):
    p = argparse.ArgumentParser(prog="chatrec-eval tune", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument("--protocol", choices=tuple(OBJECTIVE), default="chatrec")
    p.add_argument("--out", type=Path, default=None, help="report folder (default reports/tune-DATASET-PROTOCOL)")
    p.add_argument("--seeds", type=int, default=3, help="chatrec/lmrecsys: validation splits (one per test seed)")
    p.add_argument("--val-users", type=int, default=300, help="chatrec/lmrecsys: users per validation split")
    p.add_argument("--lmrecsys-users", type=int, default=1000, help="lmrecsys: test users per split, as offline")
    p.add_argument("--als-seeds", type=int, default=1, help="ALS initialisations averaged per trial")
    p.add_argument("--loo-depths", type=int, default=3, help="loo: validation folds (2nd-, 3rd-, ... to-last item)")
    p.add_argument("--random-trials", type=int, default=40)
    p.add_argument("--max-trials", type=int, default=120)
    p.add_argument("--budget-s", type=float, default=600.0, help="stop starting new trials after this many seconds")
    p.add_argument("--search-seed", type=int, default=0)
    add_data_flags(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.seeds < 1:
        print("error: --seeds must be at least 1", file=sys.stderr)
        return 2
    try:
        ds = load_dataset(args.dataset, locator_for(settings_for(args)), with_text=False)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    t0 = time.time()
    splits = validation_splits(args.protocol, ds, range(args.seeds), args.val_users, args.lmrecsys_users or None,
                               args.loo_depths)
    tuner = Tuner(args.protocol, splits, tuple(42 + i for i in range(max(1, args.als_seeds))))
    best = tuner.run(args.random_trials, args.max_trials, np.random.default_rng(args.search_seed), args.budget_s)
    elapsed = time.time() - t0
    out = args.out or Path("reports") / f"tune-{args.dataset}-{args.protocol}"
    out.mkdir(parents=True, exist_ok=True)
    best_json = {"dataset": args.dataset, "protocol": args.protocol, "objective": tuner.metric,
                 "validation": tuner.trials[best], "als": asdict(best)}
    (out / "best.json").write_text(json.dumps(best_json, indent=2), encoding="utf-8")

    keys = [f.name for f in fields(ALSSetup)]
    mcols = list(next(iter(tuner.trials.values())))
    ranked = sorted(tuner.trials, key=lambda s: -tuner.trials[s][tuner.metric])
    top = markdown_table([*keys, *mcols], [[*(getattr(s, k) for k in keys), *(tuner.trials[s][m] for m in mcols)]
                                           for s in ranked[:15]])
    default_score = tuner.trials.get(DEFAULT_ALS, {}).get(tuner.metric, float("nan"))
    report = Report(f"ALS tuning — {args.dataset}, {args.protocol} validation")
    report.add("\n".join([
        f"- dataset: {ds.describe()}",
        *(f"- validation: {n}" for n in splits[0].notes),
        f"- {len(splits)} validation split(s) × {len(tuner.seeds)} ALS init(s); objective: mean validation "
        f"{tuner.metric}",
        f"- {len(tuner.trials)} trials in {elapsed:.0f} s (random search over the grid, then greedy coordinate moves)",
        f"- grid: `{json.dumps(SPACE)}`",
        f"- best: {best.short()} → {tuner.metric} {tuner.trials[best][tuner.metric]:.4f} "
        f"(default {DEFAULT_ALS.short()}: {default_score:.4f})",
        f"- use it: `chatrec-eval offline --dataset {args.dataset} --protocol {args.protocol} "
        f"--als-config {out / 'best.json'}`",
    ]))
    report.add("## Top trials\n\n" + top)
    report.add_figure(_plot(tuner), "tune-trials", "validation objective per trial")
    path = report.write(out)
    print(f"best ALS for {args.dataset}/{args.protocol}: {best.short()}")
    print(json.dumps(best_json, indent=2))
    print(top)
    print(f"\nreport: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
