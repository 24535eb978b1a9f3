"""Offline evaluation protocols: each turns a Ratings table into training data plus per-user ground truth.

* `chatrec_split`  — Chat-REC paper (Gao et al. 2023) on ML-100K: seeded random users, a random 20 % of each
  one's liked items (rating ≥ 4) held out; everything else trains.
* `loo_split`      — leave-one-out by time with full ranking (LlamaRec / SASRec): 5-core filter, last item per
  user is test, second-to-last is validation.
* `lmrecsys_split` — LMRecSys (Zhang et al. 2021) on ML-1M: the first 5 items of a user predict the 6th.

"By time" always means a stable sort on the timestamp, ties broken by the ratings file's line order (Ratings
arrays are kept in file order), because MovieLens users often rate several movies in the same second.
All randomness comes from `np.random.default_rng(seed)`, so a seed fixes a split exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, NamedTuple

import numpy as np
import scipy.sparse as sp

from retrieval.datasets import Dataset
from retrieval.types import Catalog, Interactions, Ratings

LIKED = 4.0  # the Chat-REC paper's "liked" threshold on the 1–5 scale


class ProtocolError(ValueError):
    """The data cannot support the requested protocol (too few users, items, ratings)."""


@dataclass(frozen=True)
class Split:
    """Training ratings plus held-out ground truth for a set of evaluated users.

    `train` keeps the source's user ids (and rows) so generator rows line up with `users`; every row refers to
    `catalog`, which for filtered protocols (5-core) is the surviving sub-catalog.
    """

    name: str
    catalog: Catalog
    train: Ratings
    users: np.ndarray  # evaluated user rows into train.user_ids
    truth: tuple[np.ndarray, ...]  # per evaluated user: held-out catalog rows
    notes: tuple[str, ...] = ()

    def __post_init__(self):
        if len(self.users) != len(self.truth):
            raise ValueError(f"{len(self.users)} users but {len(self.truth)} ground-truth lists")

    @property
    def n_items(self) -> int:
        return len(self.catalog)

    @property
    def user_ids(self) -> tuple[str, ...]:
        return tuple(self.train.user_ids[int(u)] for u in self.users)

    def interactions(self, *, min_rating: float = 0.0, confidence: str = "binary", alpha: float = 1.0) -> Interactions:
        return Interactions.from_ratings(self.train, self.n_items, min_rating=min_rating, confidence=confidence,
                                         alpha=alpha)

    def seen(self) -> sp.csr_matrix:
        """Users × items: 1 where the user rated the item in training, whatever the rating (never recommended)."""
        m = sp.csr_matrix(
            (np.ones(len(self.train), dtype=np.float32), (self.train.user, self.train.item)),
            shape=(self.train.n_users, self.n_items),
        )
        m.sum_duplicates()
        return m


# --- ordering helpers ------------------------------------------------------------------------------------------

def time_order(ratings: Ratings) -> np.ndarray:
    """Indices sorted by (user, timestamp, file line): stable sorts keep file order among equal timestamps."""
    by_time = np.argsort(ratings.timestamp, kind="stable")
    return by_time[np.argsort(ratings.user[by_time], kind="stable")]


def _user_groups(users_sorted: np.ndarray, n_users: int) -> np.ndarray:
    """indptr-style boundaries of each user's run in an array sorted by user."""
    return np.searchsorted(users_sorted, np.arange(n_users + 1))


# --- (a) Chat-REC ----------------------------------------------------------------------------------------------

def chatrec_split(
    ratings: Ratings,
    catalog: Catalog,
    *,
    n_users: int = 200,
    holdout: float = 0.2,
    liked: float = LIKED,
    min_liked: int = 5,
    seed: int = 0,
    name: str = "chatrec",
) -> Split:
    """Chat-REC protocol: `n_users` random users (with ≥ `min_liked` liked items, so 20 % is at least one item);
    for each, round(holdout · #liked) (≥ 1) liked items chosen at random are the ground truth; all other ratings,
    of these users and of everyone else, train.
    """
    if not 0 < holdout < 1:
        raise ValueError(f"holdout must be in (0, 1), got {holdout}")
    rng = np.random.default_rng(seed)
    is_liked = ratings.rating >= liked
    n_liked = np.bincount(ratings.user[is_liked], minlength=ratings.n_users)
    eligible = np.flatnonzero(n_liked >= min_liked)
    if len(eligible) < n_users:
        raise ProtocolError(
            f"only {len(eligible)} users have ≥ {min_liked} ratings ≥ {liked}; ask for at most that many users"
        )
    users = np.sort(rng.choice(eligible, size=n_users, replace=False))
    test_mask = np.zeros(len(ratings), dtype=bool)
    truth = []
    for u in users:
        idx = np.flatnonzero((ratings.user == u) & is_liked)  # file order, then a seeded permutation
        n_out = max(1, int(round(holdout * len(idx))))
        out = np.sort(rng.choice(idx, size=n_out, replace=False))
        test_mask[out] = True
        truth.append(ratings.item[out].astype(np.int64))
    notes = (
        f"{n_users} users sampled with seed {seed} from {len(eligible)} users with ≥ {min_liked} liked (≥ {liked}) "
        f"items; {int(test_mask.sum())} held-out liked items ({holdout:.0%} per user, at least 1)",
    )
    return Split(name, catalog, ratings.subset(~test_mask), users, tuple(truth), notes)


# --- (b) leave-one-out -----------------------------------------------------------------------------------------

def k_core(ratings: Ratings, k: int = 5) -> np.ndarray:
    """Mask of ratings that survive iterated k-core filtering (every kept user and item has ≥ k ratings)."""
    keep = np.ones(len(ratings), dtype=bool)
    n_items = int(ratings.item.max()) + 1 if len(ratings) else 0
    while True:
        uc = np.bincount(ratings.user[keep], minlength=ratings.n_users)
        ic = np.bincount(ratings.item[keep], minlength=n_items)
        new = keep & (uc[ratings.user] >= k) & (ic[ratings.item] >= k)
        if new.sum() == keep.sum():
            return keep
        keep = new


def _compact(ratings: Ratings, catalog: Catalog, mask: np.ndarray) -> tuple[Ratings, Catalog]:
    """Keep only masked ratings, renumber users and items to the survivors (the sub-catalog keeps catalog order)."""
    r = ratings.subset(mask)
    user_keep = np.unique(r.user)
    item_keep = np.unique(r.item)
    umap = np.full(ratings.n_users, -1, dtype=np.int64)
    umap[user_keep] = np.arange(len(user_keep))
    imap = np.full(len(catalog), -1, dtype=np.int64)
    imap[item_keep] = np.arange(len(item_keep))
    sub = Catalog([catalog.items[int(i)] for i in item_keep], name=f"{catalog.name}-core")
    out = Ratings(umap[r.user], imap[r.item], r.rating, r.timestamp, tuple(ratings.user_ids[int(u)] for u in user_keep))
    return out, sub


def loo_split(
    ratings: Ratings, catalog: Catalog, *, which: str = "test", core: int = 5, name: str = "loo", depth: int = 1
) -> Split:
    """Leave-one-out by time on the `core`-core data; ranks the surviving sub-catalog.

    which="test": ground truth is each user's last item; training holds everything before it (the validation item
    included, as sequential recommenders see it at test time). which="validation": ground truth is the
    second-to-last item and the last two are both withheld from training. Validation `depth` d > 1 moves the
    target d items before the last (training keeps only what came before it): extra validation folds that cut
    the noise of tuning on a few hundred users.
    """
    if which not in ("test", "validation"):
        raise ValueError(f"which must be 'test' or 'validation', got {which!r}")
    if not 1 <= depth <= core - 2:
        raise ValueError(f"validation depth must be in [1, {core - 2}] so every user keeps training items")
    keep = k_core(ratings, core)
    if not keep.any():
        raise ProtocolError(f"nothing survives the {core}-core filter; use a larger dataset or a smaller core")
    r, sub = _compact(ratings, catalog, keep)
    order = time_order(r)
    bounds = _user_groups(r.user[order], r.n_users)
    pos = np.arange(len(r)) - np.repeat(bounds[:-1], np.diff(bounds))  # position within the user's sequence
    from_end = np.empty(len(r), dtype=np.int64)
    from_end[order] = np.repeat(np.diff(bounds), np.diff(bounds)) - 1 - pos  # 0 = last item
    target = 0 if which == "test" else depth
    held = order[bounds[1:] - 1 - target]  # the k-core guarantees `core` ratings per user
    drop = from_end <= target
    users = np.arange(r.n_users, dtype=np.int64)
    where = "the last" if which == "test" else f"number {depth + 1} from the end"
    truth = tuple(r.item[held].astype(np.int64).reshape(-1, 1))
    notes = (
        f"{core}-core filter (iterated until stable): {len(r)} of {len(ratings)} ratings, {r.n_users} users, "
        f"{len(sub)} items; {which} item = {where} by timestamp "
        "(stable sort, ties broken by file line order); full ranking of the filtered catalog minus training items",
    )
    return Split(f"{name}-{which}", sub, r.subset(~drop), users, truth, notes)


# --- (c) LMRecSys ----------------------------------------------------------------------------------------------

class LMRecSysCase(NamedTuple):
    user_id: str
    history: tuple[str, ...]  # the first `n_history` item ids by time
    target: str  # the next item id


@dataclass(frozen=True)
class LMRecSysSplit:
    """Cases for the LM scorer plus training data for classical generators.

    Unpacks as `cases, train = lmrecsys_split(...)`. `split` is the same thing as a `Split` (ground truth = target
    row) so the offline harness can score ALS/Popularity exactly like the LM.
    """

    cases: tuple[LMRecSysCase, ...]
    split: Split
    notes: tuple[str, ...] = field(default=())

    @property
    def train(self) -> Interactions:
        return self.split.interactions(min_rating=0.0, confidence="binary")

    def __iter__(self) -> Iterator:
        return iter((self.cases, self.train))


def lmrecsys_split(
    dataset: Dataset, n_users: int | None = None, seed: int = 0, *, n_history: int = 5
) -> LMRecSysSplit:
    """LMRecSys protocol: each evaluated user's first `n_history` items by time predict item n_history+1.

    n_users=None evaluates every user with more than `n_history` ratings; otherwise a seeded sample. Training
    holds, for evaluated users, only their first `n_history` items, and all other users' full histories.
    """
    ratings, catalog = dataset.ratings, dataset.catalog
    order = time_order(ratings)
    bounds = _user_groups(ratings.user[order], ratings.n_users)
    counts = np.diff(bounds)
    eligible = np.flatnonzero(counts > n_history)
    if n_users is None:
        users = eligible
    else:
        if n_users > len(eligible):
            raise ProtocolError(f"only {len(eligible)} users have > {n_history} ratings; ask for at most that many")
        users = np.sort(np.random.default_rng(seed).choice(eligible, size=n_users, replace=False))
    drop = np.zeros(len(ratings), dtype=bool)
    cases, truth = [], []
    tied = 0
    for u in users:
        seq = order[bounds[u] : bounds[u + 1]]
        drop[seq[n_history:]] = True
        tied += int(ratings.timestamp[seq[n_history]] == ratings.timestamp[seq[n_history - 1]])
        target = int(ratings.item[seq[n_history]])
        cases.append(LMRecSysCase(ratings.user_ids[int(u)], catalog.ids_of(ratings.item[seq[:n_history]]),
                                  catalog.id_of(target)))
        truth.append(np.array([target], dtype=np.int64))
    notes = (
        f"{len(users)} evaluated users ({'all eligible' if n_users is None else f'sampled with seed {seed}'}); "
        f"history = first {n_history} items by timestamp (stable sort, ties broken by the ratings file's line "
        f"order), target = item {n_history + 1}; full-catalog ranking ({len(catalog)} items) minus the history",
        f"{tied} of {len(users)} targets ({tied / max(1, len(users)):.0%}) share their timestamp with the last "
        "history item, so their order comes from the file's line order alone",
    )
    if dataset.partial:
        notes += ("ratings are PARTIAL (" + "; ".join(dataset.notes) + ")",)
    split = Split("lmrecsys", catalog, ratings.subset(~drop), users.astype(np.int64), tuple(truth), notes)
    return LMRecSysSplit(tuple(cases), split, notes)
