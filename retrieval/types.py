"""The immutable currency passed between components: items, catalogs, interactions and scored lists.

Item ids are strings at every boundary ("ml1m:2571", "book:1"); integer rows exist only inside numeric code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import scipy.sparse as sp


class UnknownItemError(KeyError):
    """An item id that is not in the catalog."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "unknown item"


class UnknownUserError(KeyError):
    """A user id that the interactions do not contain."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown user"


# `extra` keys that mirror typed fields (keywords, alt_titles, rating_count); see Item.__post_init__.
LEGACY_EXTRA = ("keywords", "alt_titles", "ratings_count")


@dataclass(frozen=True)
class Item:
    """One catalog entry. `title` is the normalised display title; `raw_title` is what the source file says."""

    id: str
    title: str
    year: int | None = None
    genres: tuple[str, ...] = ()
    domain: str = "movie"
    raw_title: str = ""
    plot: str = ""
    directors: tuple[str, ...] = ()
    writers: tuple[str, ...] = ()
    actors: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    avg_rating: float | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    countries: tuple[str, ...] = ()  # ISO 3166 codes of the production countries, where the data says
    original_language: str = ""  # ISO 639-1 code ("ko", "en"), where the data says
    keywords: tuple[str, ...] = ()  # subject keywords (TMDB, a new-items CSV)
    alt_titles: tuple[str, ...] = ()  # other names the source gives ("a.k.a." titles in MovieLens)
    rating_count: int | None = None  # how many ratings `avg_rating` is the mean of
    # Display facts: the Korean title and overview, a poster, runtime and age ratings (the alias table and
    # `chatrec-index enrich`, see retrieval/enrich.py), and ids on the movie sites (MovieLens links.csv).
    title_ko: str = ""
    overview_ko: str = ""
    poster_url: str = ""
    runtime: int | None = None  # minutes
    certification_kr: str = ""  # "12", "15", "청소년관람불가"
    certification_us: str = ""  # "PG-13"
    tmdb_id: str = ""
    imdb_id: str = ""  # "tt0133093"

    def __post_init__(self):
        # Keywords, alternative titles and the ratings count used to travel in `extra` as joined strings (stored
        # documents and callers still hand them over that way): the typed fields are the truth; `extra` mirrors the
        # joined form for callers that still read it there (documents stored with it are read back the same).
        extra = dict(self.extra)
        if not self.keywords and extra.get("keywords"):
            object.__setattr__(self, "keywords", tuple(k.strip() for k in extra["keywords"].split(",") if k.strip()))
        if not self.alt_titles and extra.get("alt_titles"):
            object.__setattr__(self, "alt_titles", tuple(a for a in extra["alt_titles"].split(" | ") if a))
        if self.rating_count is None:
            object.__setattr__(self, "rating_count", _count(extra.get("ratings_count", "")))
        for key, value in ((LEGACY_EXTRA[0], ", ".join(self.keywords)), (LEGACY_EXTRA[1], " | ".join(self.alt_titles)),
                           (LEGACY_EXTRA[2], "" if self.rating_count is None else str(self.rating_count))):
            if value:
                extra[key] = value
            else:
                extra.pop(key, None)
        object.__setattr__(self, "extra", extra)

    @property
    def label(self) -> str:
        """Title with year, the form users recognise: "The Matrix (1999)"."""
        return f"{self.title} ({self.year})" if self.year else self.title


def _count(text: str) -> int | None:
    """A count written as text ("4780653", "12.0"); None for anything else."""
    try:
        n = float(text)
    except ValueError:
        return None
    return int(n) if n >= 0 and n == n and n != float("inf") else None


class Catalog:
    """An immutable, ordered set of items with O(1) id ↔ row lookups."""

    __slots__ = ("_items", "_row", "name")

    def __init__(self, items: Iterable[Item], name: str = "catalog"):
        items = tuple(items)
        row: dict[str, int] = {}
        for i, it in enumerate(items):
            if it.id in row:
                raise ValueError(f"duplicate item id {it.id!r} in catalog {name!r}")
            row[it.id] = i
        self._items = items
        self._row = MappingProxyType(row)
        self.name = name

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self._items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row

    def __getitem__(self, item_id: str) -> Item:
        try:
            return self._items[self._row[item_id]]
        except KeyError:
            raise UnknownItemError(f"item {item_id!r} is not in catalog {self.name!r}") from None

    def get(self, item_id: str) -> Item | None:
        r = self._row.get(item_id)
        return None if r is None else self._items[r]

    @property
    def items(self) -> tuple[Item, ...]:
        return self._items

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(it.id for it in self._items)

    def row(self, item_id: str) -> int:
        try:
            return self._row[item_id]
        except KeyError:
            raise UnknownItemError(f"item {item_id!r} is not in catalog {self.name!r}") from None

    def rows(self, item_ids: Iterable[str]) -> np.ndarray:
        return np.fromiter((self.row(i) for i in item_ids), dtype=np.int64)

    def id_of(self, row: int) -> str:
        return self._items[int(row)].id

    def ids_of(self, rows: Iterable[int]) -> tuple[str, ...]:
        return tuple(self._items[int(r)].id for r in rows)

    def merged(self, other: "Catalog", name: str | None = None) -> "Catalog":
        """A new catalog with `other`'s items appended (ids must not collide)."""
        return Catalog(self._items + other._items, name=name or f"{self.name}+{other.name}")


@dataclass(frozen=True)
class Ratings:
    """Explicit ratings in file order. `user`/`item` are rows into `user_ids` and the catalog."""

    user: np.ndarray  # int64 rows
    item: np.ndarray  # int64 catalog rows
    rating: np.ndarray  # float32
    timestamp: np.ndarray  # int64 seconds
    user_ids: tuple[str, ...]

    def __post_init__(self):
        n = len(self.user)
        if not (len(self.item) == len(self.rating) == len(self.timestamp) == n):
            raise ValueError("ratings arrays must have equal length")
        for a in (self.user, self.item, self.rating, self.timestamp):
            a.setflags(write=False)

    def __len__(self) -> int:
        return len(self.user)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    def subset(self, mask: np.ndarray) -> "Ratings":
        return Ratings(self.user[mask], self.item[mask], self.rating[mask], self.timestamp[mask], self.user_ids)


class Interactions:
    """Users × items confidence matrix (CSR, float32). Rows align with `user_ids`, columns with the catalog."""

    __slots__ = ("matrix", "user_ids", "_user_row")

    def __init__(self, matrix: sp.csr_matrix, user_ids: Sequence[str]):
        if not sp.issparse(matrix):
            raise ValueError("interactions matrix must be a scipy sparse matrix")
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        if matrix.shape[0] != len(user_ids):
            raise ValueError(f"matrix has {matrix.shape[0]} rows but {len(user_ids)} user ids were given")
        matrix.sort_indices()
        matrix.data.setflags(write=False)
        self.matrix = matrix
        self.user_ids = tuple(user_ids)
        self._user_row = MappingProxyType({u: i for i, u in enumerate(self.user_ids)})

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    def user_row(self, user_id: str) -> int:
        try:
            return self._user_row[str(user_id)]
        except KeyError:
            raise UnknownUserError(
                f"user {user_id!r} has no interactions (known users: {self.user_ids[0]!r}…{self.user_ids[-1]!r})"
            ) from None

    def has_user(self, user_id: str) -> bool:
        return str(user_id) in self._user_row

    def items_of(self, user_row: int) -> np.ndarray:
        m = self.matrix
        return m.indices[m.indptr[user_row] : m.indptr[user_row + 1]]

    @classmethod
    def from_ratings(
        cls,
        ratings: Ratings,
        n_items: int,
        *,
        min_rating: float = 0.0,
        confidence: str = "linear",
        alpha: float = 1.0,
    ) -> "Interactions":
        """Build the implicit-feedback matrix from explicit ratings.

        confidence: "binary" (1 per rating kept), "linear" (1 + alpha·rating), "log" (1 + alpha·log1p(rating)).
        Ratings below `min_rating` are dropped (a 1-star rating is not evidence of taste).
        """
        keep = ratings.rating >= min_rating
        r = ratings.rating[keep].astype(np.float32)
        if confidence == "binary":
            c = np.ones_like(r)
        elif confidence == "linear":
            c = 1.0 + alpha * r
        elif confidence == "log":
            c = 1.0 + alpha * np.log1p(r)
        else:
            raise ValueError(f"unknown confidence {confidence!r}; use 'binary', 'linear' or 'log'")
        m = sp.coo_matrix(
            (c, (ratings.user[keep], ratings.item[keep])), shape=(ratings.n_users, n_items), dtype=np.float32
        ).tocsr()
        m.sum_duplicates()
        return cls(m, ratings.user_ids)


@dataclass(frozen=True)
class Scored:
    """Item ids with scores, best first."""

    ids: tuple[str, ...]
    scores: np.ndarray

    def __post_init__(self):
        scores = np.asarray(self.scores, dtype=np.float32)
        if len(scores) != len(self.ids):
            raise ValueError(f"{len(self.ids)} ids but {len(scores)} scores")
        scores.setflags(write=False)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "ids", tuple(self.ids))

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[tuple[str, float]]:
        return zip(self.ids, self.scores.tolist())

    def top(self, k: int) -> "Scored":
        return Scored(self.ids[:k], self.scores[:k])

    @classmethod
    def empty(cls) -> "Scored":
        return cls((), np.zeros(0, dtype=np.float32))
