"""One interaction matrix over a MovieLens catalog that pools every MovieLens ratings set on hand.

ml-latest-small has 610 users; ML-1M (here its first 2,999 users) and ML-100K (943 users) rated many of the same
films. Pooled, ALS sees about six times the ratings for the films they share. Items join by MovieLens movie id
where both sides use it (ml-latest-small, ML-1M, ml-25m, ml-32m: the same number is the same film) and by
normalised title and year where a side numbers its films its own way (ML-100K). Ratings of films missing from the
target catalog are dropped (they could not be recommended anyway).

Users of each source are distinct people: the target's users keep their ids (and rows 0..n-1), every other
source's users get the source's prefix ("ml1m:17"). Each source has a weight that scales its interaction values
(0 leaves it out), so a source that helps only a little can still be pooled in lightly.

    pooled = load_pooled(target, locator, {"ml-1m": 1.0, "ml-100k": 0.5})
    als.fit(pooled.interactions(confidence="linear", min_rating=3.0), pooled.catalog)
    print(pooled.describe())    # ratings / users / items each source adds
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from rapidfuzz import fuzz

from .datasets import ID_PREFIX, MOVIELENS_ID_PREFIXES, DataLocator, Dataset, DatasetError, load_dataset
from .titles import title_key
from .types import Catalog, Interactions, Item, Ratings

log = logging.getLogger(__name__)

POOLABLE = ("ml-latest-small", "ml-1m", "ml-100k")
# Per target, the source weights that won `chatrec-eval pooled` on the target's own users with the app's ALS
# (3 holdout seeds, every eligible user; paired ΔNDCG@10 against the target alone in the comments). A source
# left out hurt or did not help. Targets not listed pool nothing: on ML-1M (2,999 dense users here) every
# source hurt (-.003 to -.007); ml-25m / ml-32m have 30-300x the ratings of the small sets.
DEFAULT_WEIGHTS: Mapping[str, Mapping[str, float]] = {
    "ml-latest-small": {"ml-1m": 0.1, "ml-100k": 0.5},  # +.026 ± .004 (ML-1M at 1 with ML-100K: +.008)
    "ml-100k": {"ml-latest-small": 0.5},  # +.009 ± .002 (adding ML-1M at 0.1: -.004; at 0.5: -.024)
}
# A fuzzy title match must be this close (rapidfuzz ratio of the title keys) and beat the runner-up clearly.
_NEAR = 90.0
_NEAR_MARGIN = 5.0


# ---------------------------------------------------------------------------------------------------- items
@dataclass(frozen=True)
class ItemMap:
    """Source catalog row → target catalog row (-1: the film is not in the target), and how each was found."""

    rows: np.ndarray
    how: Mapping[str, int]  # "id", "title+year", "year ±1", "title part", "near title"


def map_items(source: Catalog, target: Catalog) -> ItemMap:
    """Join a source catalog onto a target one: by MovieLens id when both use them, else by title and year."""
    s_prefix = _prefix(source)
    t_prefix = _prefix(target)
    if s_prefix in MOVIELENS_ID_PREFIXES and t_prefix in MOVIELENS_ID_PREFIXES:
        ids = (f"{t_prefix}:{it.id.split(':', 1)[1]}" for it in source)
        rows = np.fromiter((target.row(i) if i in target else -1 for i in ids), dtype=np.int64, count=len(source))
        return ItemMap(rows, {"id": int((rows >= 0).sum())})
    return _map_by_title(source, target)


def _prefix(catalog: Catalog) -> str:
    first = next(iter(catalog), None)
    return first.id.split(":", 1)[0] if first is not None else ""


def _names(it: Item, keep_article: bool = False) -> list[str]:
    alts = list(it.alt_titles)
    # title_key drops a leading article; behind a dummy word it stays ("The Fear" ≠ "Fear").
    keys = (" ".join(title_key("x " + n).split()[1:]) if keep_article else title_key(n) for n in [it.title, *alts])
    return [k for k in dict.fromkeys(keys) if k]


def _parts(title: str) -> list[str]:
    """Title keys of the pieces of "Star Wars: Episode IV - A New Hope" and of "Stephen King's The Langoliers"
    without the possessive: ML-100K often names a film by one piece ("Star Wars", "The Langoliers")."""
    pieces = [p for p in (x.strip() for chunk in title.split(":") for x in chunk.split(" - ")) if p]
    out = [title_key(p) for p in pieces] if len(pieces) > 1 else []
    head, sep, rest = title.partition("'s ")
    if sep and len(head.split()) <= 3 and rest:
        out.append(title_key(rest))
    return [k for k in dict.fromkeys(out) if k]


def _map_by_title(source: Catalog, target: Catalog) -> ItemMap:
    """Cascade, most certain first; each step needs the match to be unique (two films → no match): exact title
    key + year (display or alternative titles) → same title with its article, year ±1 (release years drift
    between the sets) → one title is a piece of the other ("Star Wars" / "Star Wars: Episode IV - A New Hope"),
    same year → near-identical titles with their articles (rapidfuzz ratio ≥ 90, clear of the runner-up),
    year ±1."""
    exact: dict[tuple[str, int | None], set[int]] = {}
    strict: dict[tuple[str, int | None], set[int]] = {}
    by_year: dict[int | None, list[tuple[str, int]]] = {}
    parts: dict[tuple[str, int | None], set[int]] = {}
    for row, it in enumerate(target):
        for k in _names(it):
            exact.setdefault((k, it.year), set()).add(row)
        for k in _names(it, keep_article=True):
            strict.setdefault((k, it.year), set()).add(row)
            by_year.setdefault(it.year, []).append((k, row))
        for k in _parts(it.title):
            parts.setdefault((k, it.year), set()).add(row)

    def unique(found: set[int]) -> int:
        return next(iter(found)) if len(found) == 1 else -1

    rows = np.full(len(source), -1, dtype=np.int64)
    how: Counter[str] = Counter()
    for i, it in enumerate(source):
        keys = _names(it)
        strict_keys = _names(it, keep_article=True)
        years = (it.year,) if it.year is None else (it.year - 1, it.year + 1)
        steps = (
            ("title+year", lambda: set().union(*(exact.get((k, it.year), set()) for k in keys))),
            ("year ±1", lambda: set().union(*(strict.get((k, y), set()) for k in strict_keys for y in years))),
            ("title part", lambda: set().union(*(parts.get((k, it.year), set()) for k in keys),
                                               *(exact.get((p, it.year), set()) for p in _parts(it.title)))),
            ("near title", lambda: _near(strict_keys, [c for y in {it.year, *years} for c in by_year.get(y, [])])),
        )
        for name, find in steps:
            r = unique(find()) if keys else -1
            if r >= 0:
                rows[i] = r
                how[name] += 1
                break
    return ItemMap(rows, dict(how))


def _near(keys: Sequence[str], candidates: Sequence[tuple[str, int]]) -> set[int]:
    best: dict[int, float] = {}
    for k in keys:
        for ck, row in candidates:
            best[row] = max(best.get(row, 0.0), fuzz.ratio(k, ck))
    ranked = sorted(best.items(), key=lambda x: -x[1])
    if not ranked or ranked[0][1] < _NEAR:
        return set()
    if len(ranked) > 1 and ranked[1][1] > ranked[0][1] - _NEAR_MARGIN:
        return set()
    return {ranked[0][0]}


# ---------------------------------------------------------------------------------------------------- ratings
@dataclass(frozen=True)
class SourceReport:
    """What one source adds to the pool."""

    name: str
    weight: float
    ratings: int  # ratings kept (their film is in the target catalog)
    users: int  # users with at least one kept rating
    items: int  # distinct target items they rate
    new_items: int  # target items without any rating in the target set that this source rates
    dropped: int  # ratings of films the target catalog does not have
    matched_by: Mapping[str, int] = field(default_factory=dict)  # source films joined, by method
    note: str = ""  # why a source adds nothing (left out, not found)

    def line(self) -> str:
        if self.note:
            return f"{self.name}: {self.note}"
        how = ", ".join(f"{k} {v}" for k, v in self.matched_by.items())
        return (f"{self.name} (weight {self.weight:g}): +{self.ratings:,} ratings, +{self.users:,} users, "
                f"{self.items:,} items ({self.new_items:,} unrated in the target); {self.dropped:,} ratings of "
                f"films outside the catalog dropped; films joined by {how or 'nothing'}")


@dataclass(frozen=True)
class _Part:
    name: str
    ratings: Ratings  # over the target catalog, user ids already prefixed
    weight: float


@dataclass(frozen=True)
class PooledDataset:
    """The target dataset plus other sources' ratings mapped onto its catalog, weighted per source.

    Dataset-like where ALS needs it (`name`, `catalog`, `interactions(...)`); `target` is the unpooled dataset,
    whose ratings stay the truth for everything else (popularity, average ratings, evaluation)."""

    target: Dataset
    parts: tuple[_Part, ...]
    reports: tuple[SourceReport, ...]

    @property
    def name(self) -> str:
        return self.target.name + "".join(f"+{p.name}×{p.weight:g}" for p in self.parts)

    @property
    def catalog(self) -> Catalog:
        return self.target.catalog

    def interactions(self, *, min_rating: float = 0.0, confidence: str = "linear", alpha: float = 1.0,
                     target: Ratings | None = None) -> Interactions:
        """The target's users (rows 0..n-1, same ids) stacked over each source's users, whose values are
        multiplied by the source's weight. `target` replaces the target's ratings (an evaluation's training
        part; it must keep the same user ids)."""
        base = self.target.ratings if target is None else target
        n = len(self.catalog)
        blocks = [Interactions.from_ratings(base, n, min_rating=min_rating, confidence=confidence, alpha=alpha)]
        for p in self.parts:
            blocks.append(Interactions.from_ratings(p.ratings, n, min_rating=min_rating, confidence=confidence,
                                                    alpha=alpha))
        weights = [1.0] + [p.weight for p in self.parts]
        matrix = sp.vstack([b.matrix.multiply(w).tocsr() if w != 1.0 else b.matrix for b, w in zip(blocks, weights)],
                           format="csr", dtype=np.float32)
        return Interactions(matrix, [u for b in blocks for u in b.user_ids])

    def describe(self) -> str:
        lines = [f"{self.target.describe()} (target)", *(r.line() for r in self.reports)]
        return "\n".join(lines)

    def reweighted(self, weights: Mapping[str, float]) -> "PooledDataset":
        """The same pool with other weights for some sources (0 leaves a source out; others keep theirs)."""
        by_name = {p.name: p for p in self.parts}
        parts, reports = [], []
        for r in self.reports:
            w = float(weights.get(r.name, r.weight))
            if not np.isfinite(w) or w < 0:
                raise ValueError(f"pool weight for {r.name} must be a finite number ≥ 0, got {w}")
            if r.name not in by_name:
                reports.append(r)
            elif w == 0:
                reports.append(SourceReport(r.name, 0.0, 0, 0, 0, 0, 0, note="weight 0: left out"))
            else:
                parts.append(replace(by_name[r.name], weight=w))
                reports.append(replace(r, weight=w))
        return PooledDataset(self.target, tuple(parts), tuple(reports))


def pool(target: Dataset, sources: Sequence[tuple[Dataset, float]]) -> PooledDataset:
    """Map each (source dataset, weight) onto `target`'s catalog; a weight of 0 leaves the source out."""
    per_item = np.bincount(target.ratings.item, minlength=len(target.catalog))
    parts, reports = [], []
    for ds, w in sources:
        if not np.isfinite(w) or w < 0:
            raise ValueError(f"pool weight for {ds.name} must be a finite number ≥ 0, got {w}")
        if ds.name == target.name:
            raise ValueError(f"{ds.name} is the target; pool other sets into it")
        if w == 0:
            reports.append(SourceReport(ds.name, 0.0, 0, 0, 0, 0, 0, note="weight 0: left out"))
            continue
        part, report = _map_ratings(ds, target.catalog, w, per_item)
        parts.append(part)
        reports.append(report)
        log.info("pooled %s", report.line())
    return PooledDataset(target, tuple(parts), tuple(reports))


def _map_ratings(ds: Dataset, catalog: Catalog, weight: float, target_counts: np.ndarray) -> tuple[_Part, SourceReport]:
    m = map_items(ds.catalog, catalog)
    r = ds.ratings
    rows = m.rows[r.item]
    keep = rows >= 0
    users_kept = np.unique(r.user[keep])
    renumber = np.full(r.n_users, -1, dtype=np.int64)
    renumber[users_kept] = np.arange(len(users_kept))
    prefix = ID_PREFIX.get(ds.name, ds.name)
    ratings = Ratings(renumber[r.user[keep]], rows[keep], r.rating[keep], r.timestamp[keep],
                      tuple(f"{prefix}:{r.user_ids[int(u)]}" for u in users_kept))
    touched = np.unique(rows[keep])
    report = SourceReport(
        ds.name, float(weight), int(keep.sum()), len(users_kept), len(touched), int((target_counts[touched] == 0).sum()),
        int((~keep).sum()), dict(m.how),
    )
    return _Part(ds.name, ratings, float(weight)), report


def load_pooled(target: Dataset, locator: DataLocator, weights: Mapping[str, float] | None = None) -> PooledDataset:
    """`target` pooled with every other MovieLens set in POOLABLE that the locator finds (ratings only).

    weights: per source name; None takes DEFAULT_WEIGHTS for the target, and a source without a weight is left
    out. A source that cannot be found or downloaded is reported and skipped: pooling adds evidence, it is never
    a reason not to start."""
    weights = DEFAULT_WEIGHTS.get(target.name, {}) if weights is None else weights
    sources, reports = [], {}
    for name in POOLABLE:
        w = float(weights.get(name, 0.0))
        if name == target.name:
            continue
        if w == 0:
            reports[name] = SourceReport(name, 0.0, 0, 0, 0, 0, 0, note="weight 0: left out")
            continue
        try:
            sources.append((load_dataset(name, locator, with_text=False), w))
        except DatasetError as e:
            log.warning("pooling without %s: %s", name, e)
            reports[name] = SourceReport(name, w, 0, 0, 0, 0, 0, note=f"not available ({type(e).__name__})")
    pooled = pool(target, sources)
    reports.update((r.name, r) for r in pooled.reports)
    ordered = tuple(reports[n] for n in POOLABLE if n in reports)
    return PooledDataset(pooled.target, pooled.parts, ordered)
