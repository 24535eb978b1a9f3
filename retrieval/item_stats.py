"""What the ratings say about each item, independent of any user: how many rated it, how well, and how lately.

- `count`: users who rated the item (all-time popularity);
- `recent`: ratings in the last `recent_years` of the rating log ("popular lately", not "popular in 1996");
- `bayes`: the mean rating shrunk towards the global mean by `prior` pseudo-ratings (a film with two 5-star
  ratings does not outrank one with four hundred 4.3s).

Arrays are indexed by catalog row; items without ratings get zeros and the global mean.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .types import Catalog, Ratings

YEAR_SECONDS = 365.25 * 86400


@dataclass(frozen=True)
class ItemStats:
    count: np.ndarray
    recent: np.ndarray
    bayes: np.ndarray
    global_mean: float

    @classmethod
    def from_ratings(cls, catalog: Catalog, ratings: Ratings | None, recent_years: float = 4.0,
                     prior: float = 10.0) -> "ItemStats":
        n = len(catalog)
        if ratings is None or not len(ratings):
            z = np.zeros(n, dtype=np.float32)
            return cls(z, z, np.full(n, 3.5, dtype=np.float32), 3.5)
        count = np.bincount(ratings.item, minlength=n).astype(np.float32)
        total = np.bincount(ratings.item, weights=ratings.rating, minlength=n)
        g = float(ratings.rating.mean())
        bayes = ((total + prior * g) / (count + prior)).astype(np.float32)
        since = ratings.timestamp.max() - recent_years * YEAR_SECONDS
        recent = np.bincount(ratings.item[ratings.timestamp >= since], minlength=n).astype(np.float32)
        return cls(count, recent, bayes, g)

    @classmethod
    def from_books(cls, books: Catalog) -> "ItemStats":
        """Books: goodbooks' ratings count and average (no per-user ratings offline)."""
        count = np.array([float(it.rating_count or 0) for it in books], dtype=np.float32)
        avg = np.array([it.avg_rating if it.avg_rating is not None else 3.9 for it in books], dtype=np.float32)
        return cls(count, count, avg, float(avg.mean()) if len(avg) else 3.9)
