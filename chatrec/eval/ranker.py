"""`chatrec-eval ranker`: learn the fusion ranker from conversations, report it by grouped cross-validation, ship it.

    chatrec-eval ranker --data-dir ../shared/data --out runs/ranker            # CV report + chatrec/data/ranker.json
    chatrec-eval ranker --data-dir ../shared/data --no-save --ablation         # also drop each signal in turn

Training data (every example is one candidate pool with the true item(s) marked):
- pseudo-conversations from MovieLens histories: users held out of a separately fitted ALS name two earlier liked
  films (and sometimes a genre or a decade of the film they went on to like); the target is a later liked film;
- redial-dev cases (the seeker's lines as one message, as `chatrec-eval redial --variants text` reads them).

Reported numbers are never training scores: 5-fold cross-validation grouped by dialogue (a dialogue's cases are in
one fold), each fold's model trained on all pseudo-conversations plus the other folds' dialogues. The shipped model
is then trained on everything. Models: logistic regression on standardised features, and LightGBM LambdaRank; the
simpler one ships unless the other is better by more than the folds' spread.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from chatrec.eval.redial_data import load_cases
from chatrec.eval.report import Report, markdown_table
from chatrec.candidates_turn import POOL_CAP, POOL_N
from chatrec.ranker import DEFAULT_MODEL, FEATURES, GROUPS, BlendRanker, BoostedRanker, LinearRanker, featurize
from chatrec.request import Wish
from chatrec.settings import build_parser, from_args

log = logging.getLogger("chatrec.eval.ranker")
KS = (1, 10, 50)


@dataclass
class Example:
    group: str  # dialogue id ("redial:…") or pseudo user ("pseudo:…")
    X: np.ndarray  # candidates × features
    fused: np.ndarray  # the weighted-sum score (the fallback ranker)
    ids: list[str]
    fits: np.ndarray  # bool: passes the wish's hard filters (the app never shows the others first)
    targets: tuple[str, ...]

    @property
    def y(self) -> np.ndarray:
        t = set(self.targets)
        return np.array([i in t for i in self.ids], dtype=np.float32)


def pool_example(engine, assembler, group: str, seeds: Sequence[str], wish: Wish, exclude: set[str],
                 targets: Sequence[str], n: int = POOL_N) -> Example | None:
    p = assembler.pool(seeds=seeds, wish=wish, exclude=exclude, n=n)
    ids = [i for i in sorted(p.fused, key=lambda i: -p.fused[i])[:POOL_CAP] if i not in exclude]
    if not ids:
        return None
    items = [p.catalog[i] for i in ids]
    X = featurize(items, [p.ranks.get(i, {}) for i in ids], [p.fused[i] for i in ids],
                  assembler.context(seeds, wish, ids))
    fits = np.array([assembler.fits(it, wish) for it in items])
    return Example(group, X, np.array([p.fused[i] for i in ids]), ids, fits, tuple(targets))


def redial_examples(engine, cases, progress: bool) -> list[Example]:
    out = []
    for c in tqdm(cases, desc="redial pools", unit="case", disable=not progress):
        message = "\n".join(ln.text for ln in c.seeker_lines if ln.text.strip())
        session = engine.new_session("en")
        req = engine.understander.rules(message, session)
        for ref in req.refs:
            {"like": session.like, "dislike": session.dislike, "seen": session.mark_seen}.get(
                ref.polarity, lambda i: None)(ref.item_id)
        wish = engine._carry_over(session, req)  # noqa: SLF001 - the eval replays the engine's own stages
        wish.domain = "movie"
        seeds = list(dict.fromkeys([i for i in wish.anchors + session.liked if i in engine.catalog]))
        excl = session.excluded() | set(c.context_ids)
        ex = pool_example(engine, engine.assembler, f"redial:{c.dialogue_id}", seeds, wish, excl, c.targets)
        if ex is not None:
            out.append(ex)
    return out


def pseudo_examples(engine, dataset, settings, n_users: int, seed: int, progress: bool) -> list[Example]:
    """Conversations made from MovieLens histories of users the ALS used here has never seen."""
    from chatrec.candidates_turn import CandidateAssembler
    from retrieval.candidates import ALSConfig, ALSGenerator
    from retrieval.types import Interactions

    rng = np.random.default_rng(seed)
    r = dataset.ratings
    users = np.unique(r.user)
    held = set(rng.choice(users, size=max(1, len(users) // 5), replace=False).tolist())
    keep = np.array([u not in held for u in r.user])
    train = r.subset(keep & (r.rating >= settings.als_min_rating))
    inter = Interactions.from_ratings(train, len(dataset.catalog), confidence=settings.als_confidence)
    cfg = ALSConfig(factors=settings.als_factors, regularization=settings.als_regularization,
                    alpha=settings.als_alpha, iterations=settings.als_iterations, seed=seed, num_threads=0)
    als = ALSGenerator(cfg).fit(inter, dataset.catalog)
    base = engine.assembler
    assembler = CandidateAssembler(dataset.catalog, als=als, popularity=base.popularity, knowledge=base.knowledge,
                                   people=base.people, stats=base.stats)
    ids = dataset.catalog.ids
    out = []
    for u in tqdm(sorted(held)[:n_users], desc="pseudo-conversations", unit="user", disable=not progress):
        mine = np.where((r.user == u) & (r.rating >= 4.0))[0]
        if len(mine) < 8:
            continue
        mine = mine[np.argsort(r.timestamp[mine], kind="stable")]
        half = len(mine) // 2
        seeds = [ids[r.item[i]] for i in rng.choice(mine[:half], size=2, replace=False)]
        target = ids[r.item[rng.choice(mine[half:])]]
        it = dataset.catalog[target]
        roll = rng.random()
        if roll < 0.4 and it.genres:
            # Many real requests name no title at all, only a genre ("any good comedies?").
            seeds = []
            wish = Wish(genres=[it.genres[0]])
        elif roll < 0.6 and it.genres:
            wish = Wish(genres=[it.genres[0]], anchors=list(seeds))
        elif roll < 0.7 and it.year:
            start = it.year // 10 * 10
            wish = Wish(year_from=start, year_to=start + 9, period_label=f"{start}s", anchors=list(seeds))
        else:
            wish = Wish(anchors=list(seeds))
        seen = {ids[r.item[i]] for i in mine[:half]} | set(seeds)
        ex = pool_example(engine, assembler, f"pseudo:{u}", seeds, wish, seen - {target}, [target])
        if ex is not None:
            out.append(ex)
    return out


# ------------------------------------------------------------------------------------------------ models
PSEUDO_WEIGHT = 0.3  # pseudo-conversations help, but real dialogues are what the ranker is for


def _stack(examples: Sequence[Example], drop: Sequence[int] = ()
           ) -> tuple[np.ndarray, np.ndarray, list[int], np.ndarray]:
    X = np.concatenate([e.X for e in examples])
    if drop:
        X = X.copy()
        X[:, list(drop)] = 0.0
    y = np.concatenate([e.y for e in examples])
    w = np.concatenate([np.full(len(e.ids), PSEUDO_WEIGHT if e.group.startswith("pseudo:") else 1.0)
                        for e in examples])
    return X, y, [len(e.ids) for e in examples], w


def fit_linear(examples: Sequence[Example], drop: Sequence[int] = (), C: float = 0.5) -> LinearRanker:
    from sklearn.linear_model import LogisticRegression

    X, y, _, w = _stack(examples, drop)
    mean, scale = X.mean(axis=0), X.std(axis=0) + 1e-6
    lr = LogisticRegression(C=C, class_weight="balanced", max_iter=2000)
    lr.fit((X - mean) / scale, y, sample_weight=w)
    coef = lr.coef_[0]
    if drop:
        coef = coef.copy()
        coef[list(drop)] = 0.0
    return LinearRanker(FEATURES, coef, mean, scale)


def fit_lgbm(examples: Sequence[Example], drop: Sequence[int] = (), rounds: int = 150) -> BoostedRanker:
    import lightgbm as lgb

    X, y, groups, w = _stack(examples, drop)
    params = {"objective": "lambdarank", "metric": "ndcg", "ndcg_eval_at": [10, 50], "learning_rate": 0.05,
              "num_leaves": 15, "min_data_in_leaf": 40, "feature_fraction": 0.8, "bagging_fraction": 0.8,
              "bagging_freq": 1, "lambdarank_truncation_level": 60, "verbose": -1, "seed": 0, "num_threads": 2}
    # Per-row weights: LightGBM weighs a query by the mean of its rows' weights (all rows of a pool share one).
    booster = lgb.train(params, lgb.Dataset(X, y, group=groups, weight=w), num_boost_round=rounds)
    return BoostedRanker(booster.model_to_string())


BLEND_WEIGHT = 0.6  # the linear model's share in the blend: 0.3 / 0.6 / 1.0 gave R@50 .282 / .289 / .282 in CV


def fit_blend(examples: Sequence[Example], drop: Sequence[int] = ()) -> BlendRanker:
    return BlendRanker(fit_lgbm(examples, drop), fit_linear(examples, drop), BLEND_WEIGHT)


def recall_of(examples: Sequence[Example], score) -> dict[int, list[int]]:
    """Per-target hits@k when each pool is ordered by `score(example)`, candidates that break the wish last
    (as the app shows them)."""
    hits = {k: [] for k in KS}
    for e in examples:
        s = score(e)
        order = sorted(range(len(e.ids)), key=lambda j: (not e.fits[j], -s[j]))
        pos = {e.ids[j]: n for n, j in enumerate(order)}
        for t in e.targets:
            for k in KS:
                hits[k].append(int(t in pos and pos[t] < k))
    return hits


def _summ(hits: dict[int, list[int]]) -> dict[int, float]:
    return {k: float(np.mean(v)) if v else 0.0 for k, v in hits.items()}


def cross_validate(redial: Sequence[Example], pseudo: Sequence[Example], fit, folds: int = 5, seed: int = 0,
                   drop: Sequence[int] = (), use_pseudo: bool = True
                   ) -> tuple[dict[int, float], list[dict[int, float]], dict[int, list[int]]]:
    """Recall pooled over the held-out folds, per fold, and the per-target hits (in a fixed order, so two models'
    hits pair up)."""
    groups = sorted({e.group for e in redial})
    rng = np.random.default_rng(seed)
    rng.shuffle(groups)
    fold_of = {g: n % folds for n, g in enumerate(groups)}
    pooled = {k: [] for k in KS}
    per_fold = []
    for f in range(folds):
        train = [e for e in redial if fold_of[e.group] != f] + (list(pseudo) if use_pseudo else [])
        test = [e for e in redial if fold_of[e.group] == f]
        model = fit(train, drop)
        hits = recall_of(test, lambda e: model.score(e.X))
        per_fold.append(_summ(hits))
        for k in KS:
            pooled[k] += hits[k]
    return _summ(pooled), per_fold, pooled


# ------------------------------------------------------------------------------------------------ command
def build_ranker_parser() -> argparse.ArgumentParser:
    p = build_parser(prog="chatrec-eval ranker")
    g = p.add_argument_group("ranker training")
    g.add_argument("--pseudo-users", type=int, default=120, help="MovieLens users turned into pseudo-conversations")
    g.add_argument("--folds", type=int, default=5)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--ablation", action="store_true", help="retrain without each signal group in turn")
    g.add_argument("--index-limit", type=int, default=None)
    g.add_argument("--save", default=str(DEFAULT_MODEL), help="where the shipped model goes")
    g.add_argument("--no-save", action="store_true")
    g.add_argument("--out", type=Path, default=Path("runs/ranker"))
    g.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from chatrec.eval.dialogue import build_engine

    settings, ns = from_args(argv, parser=build_ranker_parser())
    if settings.data_dir is None:
        raise SystemExit("the ranker learns from redial-dev: pass --data-dir DIR or set CHATREC_DATA_DIR")
    settings = settings.replace(llm_backend="none", rerank="score", ranker_model="none")
    progress = not ns.no_progress
    built = build_engine(settings, "ranker", index_limit=ns.index_limit, progress=progress)
    engine = built.engine
    t0 = time.perf_counter()
    cases = load_cases(settings.data_dir, built.movies.catalog, settings.dataset)
    redial = redial_examples(engine, cases, progress)
    pseudo = pseudo_examples(engine, built.movies, settings, ns.pseudo_users, ns.seed, progress)
    log.info("%d redial pools, %d pseudo pools in %.0f s", len(redial), len(pseudo), time.perf_counter() - t0)
    targets = [(e, t) for e in redial for t in e.targets]
    in_pool = sum(t in set(e.ids) for e, t in targets) / max(len(targets), 1)
    in_fit = sum(t in {i for i, f in zip(e.ids, e.fits) if f} for e, t in targets) / max(len(targets), 1)
    sizes = [len(e.ids) for e in redial]
    print(f"redial pools: median {int(np.median(sizes))} candidates; targets in the pool {in_pool:.3f}, "
          f"in the pool and fitting the wish {in_fit:.3f} (the ceiling of any ranking of these pools)")

    rows = []
    base = _summ(recall_of(redial, lambda e: e.fused))
    rows.append(["weighted sum (no model)", *(f"{base[k]:.3f}" for k in KS), "-"])
    results = {}
    for name, fit, use_pseudo in (("logistic regression", fit_linear, True), ("LambdaRank (LightGBM)", fit_lgbm, True),
                                  (f"blend (LambdaRank + {BLEND_WEIGHT} × linear)", fit_blend, True),
                                  ("logistic regression, redial only", fit_linear, False),
                                  ("LambdaRank, redial only", fit_lgbm, False)):
        pooled, per_fold, hits = cross_validate(redial, pseudo, fit, ns.folds, ns.seed, use_pseudo=use_pseudo)
        spread = np.std([f[50] for f in per_fold])
        results[name] = (pooled, per_fold, hits)
        rows.append([name, *(f"{pooled[k]:.3f}" for k in KS), f"±{spread:.3f}"])
        print(f"{name}: " + " ".join(f"R@{k} {pooled[k]:.3f}" for k in KS) + f" (R@50 fold spread ±{spread:.3f})")
    # Every model is scored on the same held-out targets: each step up in complexity (linear → LambdaRank →
    # blend) must gain more than two standard errors of the paired per-target R@50 difference.
    names = {"linear": "logistic regression", "lgbm": "LambdaRank (LightGBM)",
             "blend": f"blend (LambdaRank + {BLEND_WEIGHT} × linear)"}
    fits = {"linear": fit_linear, "lgbm": fit_lgbm, "blend": fit_blend}
    choice, steps = "linear", []
    for step in ("lgbm", "blend"):
        diff = (np.asarray(results[names[step]][2][50], float) - np.asarray(results[names[choice]][2][50], float))
        gain, gain_se = float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(max(len(diff), 1)))
        steps.append(f"{names[step]} − {names[choice]}, R@50 paired over {len(diff)} targets: "
                     f"{gain:+.3f} ± {gain_se:.3f}")
        if gain > 2 * gain_se:
            choice = step
    for line in steps:
        print(line)
    print(f"→ ships {choice}")
    fit = fits[choice]

    ablation_rows = []
    if ns.ablation:
        full = results[names[choice]][0]
        for group, feats in GROUPS.items():
            drop = [FEATURES.index(f) for f in feats]
            pooled, _, _ = cross_validate(redial, pseudo, fit, ns.folds, ns.seed, drop=drop)
            ablation_rows.append([f"without {group}", *(f"{pooled[k]:.3f}" for k in KS),
                                  f"{pooled[50] - full[50]:+.3f}"])
            print(f"without {group}: " + " ".join(f"R@{k} {pooled[k]:.3f}" for k in KS))

    rep = Report("Fusion ranker: grouped cross-validation on redial-dev")
    rep.add(f"{len(redial)} redial-dev cases ({len({e.group for e in redial})} dialogues) and {len(pseudo)} "
            f"pseudo-conversations from MovieLens histories (users held out of the ALS used for them). "
            f"{ns.folds}-fold cross-validation grouped by dialogue; each fold trains on the other folds' dialogues "
            "plus the pseudo-conversations. Per-target recall within each case's candidate pool, context movies "
            "removed, candidates that break the wish ranked last (as the app shows them).")
    rep.add(f"Candidate pools: median {int(np.median(sizes))} items; {in_pool:.1%} of the targets are in their "
            f"pool at all and {in_fit:.1%} in it and fitting the request (the ceiling for any ranker).")
    rep.add_table(["model", *(f"R@{k}" for k in KS), "R@50 fold spread"], rows, "Cross-validated recall")
    rep.add("Paired differences (SE) on the held-out targets: " + "; ".join(steps) + f". The shipped model is the "
            f"{choice} one (each step up only when it gains more than two standard errors).")
    if ablation_rows:
        rep.add_table(["signals", *(f"R@{k}" for k in KS), "Δ R@50"], ablation_rows,
                      f"Ablation ({names[choice]}, each group dropped)")
    final = fit(list(redial) + list(pseudo))
    final.meta = {"trained_on": f"{len(redial)} redial-dev cases + {len(pseudo)} pseudo-conversations",
                  "cv_recall": {str(k): v for k, v in results[names[choice]][0].items()}}
    if choice == "linear":
        rep.add_table(["feature", "weight (standardised)"],
                      sorted(([f, f"{c:+.3f}"] for f, c in zip(FEATURES, final.coef)), key=lambda r: -abs(float(r[1]))),
                      "The shipped linear model's weights")
    if not ns.no_save:
        Path(ns.save).parent.mkdir(parents=True, exist_ok=True)
        Path(ns.save).write_text(json.dumps(final.to_json()), encoding="utf-8")
        print(f"saved the {choice} ranker to {ns.save} ({Path(ns.save).stat().st_size / 1024:.0f} KB)")
        rep.add(f"Shipped: `{ns.save}` ({choice}).")
    print(markdown_table(["model", *(f"R@{k}" for k in KS), "spread"], rows))
    print(f"report: {rep.write(ns.out)}")
    return 0
