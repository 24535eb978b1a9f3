"""The fusion ranker: one score per candidate from every signal the turn has, learned from conversations.

Signals (`FEATURES`), all computed from the candidate, the request and the items the user named:
- where each candidate source put it (ALS fold-in, knowledge similarity, knowledge search, people, themes,
  popularity, popular lately) as reciprocal ranks, and the fused reciprocal-rank score;
- quality and popularity priors: log rating count, recent rating count, Bayesian mean rating, release year;
- how well it answers the wish: share of its genres that were asked for, preferred / demoted genres of the tone;
- content links to the seeds: shared genres, people (director, cast, writer), keywords, same series, year gap.

`RankerModel` is either the learned one (logistic regression or LightGBM LambdaRank, trained by `chatrec-eval
ranker` on pseudo-conversations from MovieLens histories and on redial-dev, shipped as a small JSON file) or, when
no model file is present, the plain weighted sum: the fused score the assembler already computed.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from retrieval import rx
from retrieval.item_stats import ItemStats
from retrieval.titles import title_key
from retrieval.types import Catalog, Item

from .request import Wish

SOURCES = ("als", "similar", "search", "people", "theme", "popular", "recent", "author", "new")
FEATURES = (*(f"rr_{s}" for s in SOURCES), "fused", "log_count", "log_recent", "bayes", "year", "recent_film",
            "genre_share", "prefer", "demote", "seed_genre", "seed_people", "seed_keywords", "same_series",
            "year_gap", "n_seeds", "has_genres", "als_score", "text_sim", "seed_sim")
GROUPS = {  # for ablations: which features each signal owns
    "collaborative": ("rr_als", "als_score"),
    "content": ("rr_similar", "seed_genre", "seed_people", "seed_keywords", "same_series", "year_gap", "seed_sim"),
    "search": ("rr_search", "text_sim"),
    "people_themes": ("rr_people", "rr_theme", "rr_author"),
    "popularity": ("rr_popular", "log_count"),
    "recency": ("rr_recent", "rr_new", "log_recent", "year", "recent_film"),
    "quality": ("bayes",),
    "wish": ("genre_share", "prefer", "demote", "has_genres"),
}
DEFAULT_MODEL = Path(__file__).with_name("data") / "ranker.json"


@dataclass
class RankContext:
    """What the features need besides the candidate: the wish, the seed items, the catalog's statistics."""

    wish: Wish
    seeds: Sequence[Item]
    stats: ItemStats | None
    catalog: Catalog
    max_year: int = 2018
    # Scores for the pool computed by the sources' models (ALS fold-in, embedding similarities), by item id.
    als_scores: Mapping[str, float] = field(default_factory=dict)
    text_sims: Mapping[str, float] = field(default_factory=dict)
    seed_sims: Mapping[str, float] = field(default_factory=dict)
    _seed_people: set[str] = field(default_factory=set, init=False)
    _seed_keywords: set[str] = field(default_factory=set, init=False)
    _seed_series: set[str] = field(default_factory=set, init=False)

    def __post_init__(self):
        for s in self.seeds:
            self._seed_people |= _people(s)
            self._seed_keywords |= _keywords(s)
            self._seed_series.add(_series_key(s.title))


def _keywords(item: Item) -> frozenset[str]:
    return _lowered(item.keywords, item.tags)


def _people(item: Item) -> frozenset[str]:
    return _lowered(item.directors, item.actors[:5], item.writers)


# Pure functions of an item's strings, asked for every pool candidate on every turn: memoised (bounded).
@functools.lru_cache(maxsize=1 << 16)
def _lowered(*groups: tuple[str, ...]) -> frozenset[str]:
    return frozenset(x.lower() for g in groups for x in g)


@functools.lru_cache(maxsize=1 << 16)
def _series_key(title: str) -> str:
    return rx.split(r"\s*[:\-–(]|\s+(?:part|chapter|episode)\b|\s+\d+\b", title_key(title))[0].strip()


def featurize(items: Sequence[Item], ranks: Sequence[Mapping[str, int]], fused: Sequence[float],
              ctx: RankContext) -> np.ndarray:
    """One row of FEATURES per candidate (column by column: the pool has hundreds of items on every turn)."""
    w = ctx.wish
    wanted = set(w.genres) | set(w.genres_any)
    prefer, demote = set(w.prefer_genres), set(w.demote_genres)
    seed_genres = [g for g in (set(s.genres) for s in ctx.seeds) if g]
    seed_years = [s.year for s in ctx.seeds if s.year]
    mean_seed_year = float(np.mean(seed_years)) if seed_years else None
    stats = ctx.stats
    n = len(items)
    X = np.zeros((n, len(FEATURES)), dtype=np.float32)
    if not n:
        return X
    for j, s in enumerate(SOURCES):
        X[:, j] = [1.0 / (1.0 + rk[s]) if s in rk else 0.0 for rk in ranks]
    j = len(SOURCES)
    X[:, j] = np.asarray(fused, dtype=np.float64) * 100.0
    if stats is not None:
        row_of = ctx.catalog._row  # noqa: SLF001 - O(1), None for strangers
        rows = np.array([row_of.get(it.id, -1) for it in items], dtype=np.int64)
        known = rows >= 0
        r = rows[known]
        max_count = float(stats.count.max()) if len(stats.count) else 1.0
        max_recent = float(stats.recent.max()) if len(stats.recent) else 1.0
        X[known, j + 1] = np.log1p(np.asarray(stats.count, dtype=np.float64)[r]) / math.log1p(max_count)
        X[known, j + 2] = (np.log1p(np.asarray(stats.recent, dtype=np.float64)[r])
                           / math.log1p(max(max_recent, 1.0)))
        X[known, j + 3] = np.asarray(stats.bayes, dtype=np.float64)[r] - stats.global_mean
    year = np.array([it.year or 1990 for it in items], dtype=np.float64)
    X[:, j + 4] = (year - 1990) / 30.0
    X[:, j + 5] = year >= ctx.max_year - 8
    genres = [frozenset(it.genres) for it in items]
    if wanted:
        X[:, j + 6] = [len(wanted & g) / len(g) if g else 0.0 for g in genres]
    if prefer:
        X[:, j + 7] = [len(prefer & g) for g in genres]
    if demote:
        X[:, j + 8] = [len(demote & g) for g in genres]
    if seed_genres:
        X[:, j + 9] = [max(len(sg & g) / len(sg | g) for sg in seed_genres) if g else 0.0 for g in genres]
    if ctx._seed_people:  # noqa: SLF001
        X[:, j + 10] = [min(3, len(_people(it) & ctx._seed_people)) for it in items]  # noqa: SLF001
    if ctx._seed_keywords:  # noqa: SLF001
        X[:, j + 11] = [min(5, len(_keywords(it) & ctx._seed_keywords)) for it in items]  # noqa: SLF001
    if ctx._seed_series:  # noqa: SLF001
        X[:, j + 12] = [_series_key(it.title) in ctx._seed_series for it in items]  # noqa: SLF001
    if mean_seed_year is not None:
        X[:, j + 13] = np.abs(year - mean_seed_year) / 30.0
    X[:, j + 14] = min(len(ctx.seeds), 5)
    X[:, j + 15] = float(bool(wanted))
    als_top = max([abs(v) for v in ctx.als_scores.values()] or [1.0]) or 1.0
    if ctx.als_scores:
        X[:, j + 16] = [ctx.als_scores.get(it.id, 0.0) / als_top for it in items]
    if ctx.text_sims:
        X[:, j + 17] = [ctx.text_sims.get(it.id, 0.0) for it in items]
    if ctx.seed_sims:
        X[:, j + 18] = [ctx.seed_sims.get(it.id, 0.0) for it in items]
    return X


class RankerModel:
    """score(X) → one number per row; higher is better."""

    kind = "weighted_sum"

    def score(self, X: np.ndarray) -> np.ndarray:
        return X[:, FEATURES.index("fused")]

    def describe(self) -> str:
        return "weighted sum of reciprocal ranks (no trained model)"


class LinearRanker(RankerModel):
    kind = "linear"

    def __init__(self, names: Sequence[str], coef: Sequence[float], mean: Sequence[float], scale: Sequence[float],
                 meta: Mapping | None = None):
        if list(names) != list(FEATURES):
            raise ValueError("ranker model was trained on other features; retrain it with `chatrec-eval ranker`")
        self.coef = np.asarray(coef, dtype=np.float64)
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.meta = dict(meta or {})

    def score(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean) / self.scale) @ self.coef

    def describe(self) -> str:
        return f"learned linear ranker ({self.meta.get('trained_on', 'conversations')})"

    def to_json(self) -> dict:
        return {"kind": "linear", "features": list(FEATURES), "coef": self.coef.tolist(),
                "mean": self.mean.tolist(), "scale": self.scale.tolist(), "meta": self.meta}


class BoostedRanker(RankerModel):
    kind = "lgbm"

    def __init__(self, model_text: str, meta: Mapping | None = None):
        import lightgbm as lgb

        self.booster = lgb.Booster(model_str=model_text)
        self.model_text = model_text
        self.meta = dict(meta or {})

    def score(self, X: np.ndarray) -> np.ndarray:
        return self.booster.predict(X)

    def describe(self) -> str:
        return f"learned LambdaRank ranker ({self.meta.get('trained_on', 'conversations')})"

    def to_json(self) -> dict:
        return {"kind": "lgbm", "features": list(FEATURES), "model": self.model_text, "meta": self.meta}


def _standardised(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return (v - v.mean()) / (v.std() + 1e-9)


class BlendRanker(RankerModel):
    """LambdaRank plus `weight` × logistic regression, each standardised over the pool it scores (one pool per
    call): the trees order the top of the list, the linear model keeps the long tail in a sensible order."""

    kind = "blend"

    def __init__(self, boosted: BoostedRanker, linear: LinearRanker, weight: float, meta: Mapping | None = None):
        self.boosted, self.linear, self.weight = boosted, linear, float(weight)
        self.meta = dict(meta or {})

    def score(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.zeros(0)
        return _standardised(self.boosted.score(X)) + self.weight * _standardised(self.linear.score(X))

    def describe(self) -> str:
        return f"learned LambdaRank + linear blend ({self.meta.get('trained_on', 'conversations')})"

    def to_json(self) -> dict:
        return {"kind": "blend", "features": list(FEATURES), "weight": self.weight,
                "lgbm": self.boosted.to_json(), "linear": self.linear.to_json(), "meta": self.meta}


def _from_json(d: Mapping) -> RankerModel:
    if d.get("features") != list(FEATURES):
        raise ValueError("its features differ from this version's")
    if d["kind"] == "linear":
        return LinearRanker(d["features"], d["coef"], d["mean"], d["scale"], d.get("meta"))
    if d["kind"] == "lgbm":
        return BoostedRanker(d["model"], d.get("meta"))
    if d["kind"] == "blend":
        return BlendRanker(_from_json(d["lgbm"]), _from_json(d["linear"]), d["weight"], d.get("meta"))
    raise ValueError(f"unknown kind {d['kind']!r}")


def load_ranker(path: str | Path | None = DEFAULT_MODEL) -> RankerModel:
    """The shipped (or given) model; the weighted sum when there is no file. A file that does not parse is an
    error that says how to rebuild it."""
    if path is None or not Path(path).is_file():
        return RankerModel()
    try:
        return _from_json(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        raise ValueError(f"ranker model {path} is unusable ({e}); rebuild it with `chatrec-eval ranker`") from e
