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

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from retrieval.item_stats import ItemStats
from retrieval.titles import title_key
from retrieval.types import Catalog, Item

from .request import Wish

SOURCES = ("als", "similar", "search", "people", "theme", "popular", "recent", "author")
FEATURES = (*(f"rr_{s}" for s in SOURCES), "fused", "log_count", "log_recent", "bayes", "year", "recent_film",
            "genre_share", "prefer", "demote", "seed_genre", "seed_people", "seed_keywords", "same_series",
            "year_gap", "n_seeds", "has_genres", "als_score", "text_sim", "seed_sim")
GROUPS = {  # for ablations: which features each signal owns
    "collaborative": ("rr_als", "als_score"),
    "content": ("rr_similar", "seed_genre", "seed_people", "seed_keywords", "same_series", "year_gap", "seed_sim"),
    "search": ("rr_search", "text_sim"),
    "people_themes": ("rr_people", "rr_theme", "rr_author"),
    "popularity": ("rr_popular", "log_count"),
    "recency": ("rr_recent", "log_recent", "year", "recent_film"),
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
            self._seed_people |= {p.lower() for p in (*s.directors, *s.actors[:5], *s.writers)}
            self._seed_keywords |= _keywords(s)
            self._seed_series.add(_series_key(s.title))


def _keywords(item: Item) -> set[str]:
    return {k.lower() for k in item.keywords} | {
        t.lower() for t in item.tags}


def _series_key(title: str) -> str:
    return re.split(r"\s*[:\-–(]|\s+(?:part|chapter|episode)\b|\s+\d+\b", title_key(title))[0].strip()


def featurize(items: Sequence[Item], ranks: Sequence[Mapping[str, int]], fused: Sequence[float],
              ctx: RankContext) -> np.ndarray:
    """One row of FEATURES per candidate."""
    w = ctx.wish
    wanted = set(w.genres) | set(w.genres_any)
    prefer, demote = set(w.prefer_genres), set(w.demote_genres)
    seed_genres = [set(s.genres) for s in ctx.seeds]
    seed_years = [s.year for s in ctx.seeds if s.year]
    mean_seed_year = float(np.mean(seed_years)) if seed_years else None
    stats = ctx.stats
    max_count = float(stats.count.max()) if stats is not None and len(stats.count) else 1.0
    max_recent = float(stats.recent.max()) if stats is not None and len(stats.recent) else 1.0
    als_top = max([abs(v) for v in ctx.als_scores.values()] or [1.0]) or 1.0
    X = np.zeros((len(items), len(FEATURES)), dtype=np.float32)
    for n, (it, rk, fs) in enumerate(zip(items, ranks, fused)):
        row = X[n]
        for j, s in enumerate(SOURCES):
            if s in rk:
                row[j] = 1.0 / (1.0 + rk[s])
        j = len(SOURCES)
        row[j] = fs * 100.0
        r = ctx.catalog._row.get(it.id) if stats is not None else None  # noqa: SLF001 - O(1), None for strangers
        if r is not None:
            row[j + 1] = math.log1p(stats.count[r]) / math.log1p(max_count)
            row[j + 2] = math.log1p(stats.recent[r]) / math.log1p(max(max_recent, 1.0))
            row[j + 3] = (stats.bayes[r] - stats.global_mean)
        year = it.year or 1990
        row[j + 4] = (year - 1990) / 30.0
        row[j + 5] = float(year >= ctx.max_year - 8)
        genres = set(it.genres)
        row[j + 6] = len(wanted & genres) / len(genres) if wanted and genres else 0.0
        row[j + 7] = len(prefer & genres)
        row[j + 8] = len(demote & genres)
        if seed_genres and genres:
            row[j + 9] = max(len(g & genres) / len(g | genres) for g in seed_genres if g) if any(seed_genres) else 0
        people = {p.lower() for p in (*it.directors, *it.actors[:5], *it.writers)}
        row[j + 10] = min(3, len(people & ctx._seed_people))  # noqa: SLF001
        row[j + 11] = min(5, len(_keywords(it) & ctx._seed_keywords))  # noqa: SLF001
        row[j + 12] = float(_series_key(it.title) in ctx._seed_series)  # noqa: SLF001
        row[j + 13] = abs(year - mean_seed_year) / 30.0 if mean_seed_year is not None else 0.0
        row[j + 14] = min(len(ctx.seeds), 5)
        row[j + 15] = float(bool(wanted))
        row[j + 16] = ctx.als_scores.get(it.id, 0.0) / als_top
        row[j + 17] = ctx.text_sims.get(it.id, 0.0)
        row[j + 18] = ctx.seed_sims.get(it.id, 0.0)
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


def load_ranker(path: str | Path | None = DEFAULT_MODEL) -> RankerModel:
    """The shipped (or given) model; the weighted sum when there is no file. A file that does not parse is an
    error that says how to rebuild it."""
    if path is None or not Path(path).is_file():
        return RankerModel()
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        if d.get("features") != list(FEATURES):
            raise ValueError("its features differ from this version's")
        if d["kind"] == "linear":
            return LinearRanker(d["features"], d["coef"], d["mean"], d["scale"], d.get("meta"))
        if d["kind"] == "lgbm":
            return BoostedRanker(d["model"], d.get("meta"))
        raise ValueError(f"unknown kind {d['kind']!r}")
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        raise ValueError(f"ranker model {path} is unusable ({e}); rebuild it with `chatrec-eval ranker`") from e
