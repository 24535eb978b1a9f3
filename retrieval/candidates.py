"""Candidate generators: narrow a catalog of thousands to the few dozen items an LLM can read.

Three implementations share one interface (`CandidateGenerator`):
  - `ALSGenerator`: implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008) via the `implicit` package;
    new users are folded in from a few liked ids by solving their factor against the fixed item factors.
  - `ItemKNNGenerator`: cosine item-item neighbours, the classic "people who liked X also liked Y".
  - `PopularityGenerator`: how many users interacted with an item; the cold-start fallback and the baseline.

Ids are strings at every public method; catalog rows (ints) appear only in `recommend_rows`, the numeric batch API
the evaluation harness uses. Rows of a user's training interactions and excluded ids are never returned.
"""
from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterable, Protocol, Sequence, runtime_checkable

import numpy as np
import scipy.sparse as sp
import threadpoolctl

from .types import Catalog, Interactions, Scored, UnknownItemError, UnknownUserError

FOLD_CACHE = 32  # fold-ins kept per generator (a few MB for a 10k-item catalog)

# Users scored per dense block in batch calls: 1024 × 10k items × 4 B = 40 MB, small enough for a 2-core box.
_BLOCK = 1024


@runtime_checkable
class CandidateGenerator(Protocol):
    """What every generator offers. Methods other than `fit` raise RuntimeError before `fit`."""

    name: str

    def fit(self, interactions: Interactions, catalog: Catalog) -> "CandidateGenerator": ...

    def recommend(self, user_id: str, k: int, exclude: Iterable[str] = ()) -> Scored: ...

    def recommend_for_items(
        self, liked_ids: Sequence[str], k: int, exclude: Iterable[str] = (), weights: Sequence[float] | None = None
    ) -> Scored: ...

    def recommend_rows(
        self, user_rows: np.ndarray, k: int, filter_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def similar_items(self, item_ids: Sequence[str], k: int, exclude: Iterable[str] = ()) -> Scored: ...

    def item_scores_for_user(self, user_id: str, item_ids: Sequence[str]) -> np.ndarray: ...


def topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best `k` columns of each row of `scores` ([n, m] float32, -inf = not allowed), best first.

    Ties break by column (lower row of the catalog first) so results never depend on partition internals.
    Slots that cannot be filled (fewer than k allowed items) hold row -1 and score -inf.
    """
    n, m = scores.shape
    kk = min(k, m)
    if kk == 0 or n == 0:
        return np.full((n, k), -1, dtype=np.int64), np.full((n, k), -np.inf, dtype=np.float32)
    cols = np.argpartition(scores, m - kk, axis=1)[:, m - kk :] if kk < m else np.tile(np.arange(m), (n, 1))
    vals = np.take_along_axis(scores, cols, axis=1)
    # argpartition picks arbitrarily among items tied with the k-th best; redo just those rows in column order
    # (rare for real-valued scores, common for popularity counts and zero kNN scores).
    kth = vals.min(axis=1, keepdims=True)
    for r in np.flatnonzero((scores == kth).sum(axis=1) > (vals == kth).sum(axis=1)):
        above = np.flatnonzero(scores[r] > kth[r])
        at = np.flatnonzero(scores[r] == kth[r])[: kk - len(above)]
        cols[r] = np.concatenate([above, at])
        vals[r] = scores[r, cols[r]]
    order = np.lexsort((cols, -vals), axis=1)  # best first; equal scores by column
    cols = np.take_along_axis(cols, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(vals, order, axis=1).astype(np.float32)
    cols[~np.isfinite(vals)] = -1
    vals[cols < 0] = -np.inf
    if kk < k:
        cols = np.pad(cols, ((0, 0), (0, k - kk)), constant_values=-1)
        vals = np.pad(vals, ((0, 0), (0, k - kk)), constant_values=-np.inf)
    return cols, vals


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise ValueError(f"k must be a positive integer (how many candidates to return), got {k!r}")
    return int(k)


class _Base:
    """Shared bookkeeping: id ↔ row translation, seen/excluded filtering, top-k selection, Scored output.

    Subclasses provide scores only: `_fit`, `_score_users(rows)` and `_score_seeds(rows, weights)`.
    """

    name = "base"
    _needs_evidence = True  # seeds without any training interaction give nothing to extrapolate from

    def __init__(self) -> None:
        self._catalog: Catalog | None = None
        self._inter: Interactions | None = None
        self._counts: np.ndarray | None = None  # users per item, marks items with any evidence
        self._typical = 1.0
        # One conversational turn folds in the same seeds twice (the candidate list, then the ranker's feature for
        # every pool item): the last few fold-ins are kept, keyed by rows and weights.
        self._folds: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._folds_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def fit(self, interactions: Interactions, catalog: Catalog):
        if not isinstance(interactions, Interactions) or not isinstance(catalog, Catalog):
            raise ValueError("fit(interactions, catalog) needs a retrieval.types.Interactions and a Catalog")
        if interactions.n_items != len(catalog):
            raise ValueError(
                f"interactions have {interactions.n_items} item columns but catalog {catalog.name!r} has "
                f"{len(catalog)} items; build the Interactions with n_items=len(catalog) from the same catalog"
            )
        if interactions.n_users == 0 or interactions.matrix.nnz == 0:
            raise ValueError("interactions are empty; a generator needs at least one user with one interaction")
        self._catalog, self._inter = catalog, interactions
        self._counts = np.diff(interactions.matrix.tocsc().indptr).astype(np.int64)
        # A liked title from the chat carries no rating; treat it like a typical training interaction.
        self._typical = float(np.median(interactions.matrix.data))
        self._fit(interactions.matrix)
        with self._folds_lock:
            self._folds.clear()
        return self

    @property
    def catalog(self) -> Catalog:
        self._require_fit()
        return self._catalog

    @property
    def interactions(self) -> Interactions:
        self._require_fit()
        return self._inter

    def _require_fit(self) -> None:
        if self._inter is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(interactions, catalog) first")

    # -- hooks ----------------------------------------------------------------------------------------------------
    def _fit(self, matrix: sp.csr_matrix) -> None:
        raise NotImplementedError

    def _score_users(self, rows: np.ndarray) -> np.ndarray:
        """Dense [len(rows), n_items] float32 scores for known users (training rows)."""
        raise NotImplementedError

    def _score_seeds(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Dense [n_items] float32 scores for a new user who liked catalog `rows` with interaction `weights`."""
        raise NotImplementedError

    def _seed_scores(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """`_score_seeds`, remembered for the last FOLD_CACHE seed sets (read-only: callers share it)."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        weights = np.ascontiguousarray(weights, dtype=np.float32)
        key = rows.tobytes() + b"|" + weights.tobytes()
        with self._folds_lock:
            hit = self._folds.get(key)
            if hit is not None:
                self._folds.move_to_end(key)
                return hit
        dense = np.array(self._score_seeds(rows, weights), dtype=np.float32)  # a copy: never lock a model array
        dense.setflags(write=False)
        with self._folds_lock:
            self._folds[key] = dense
            while len(self._folds) > FOLD_CACHE:
                self._folds.popitem(last=False)
        return dense

    def _score_similar(self, rows: np.ndarray) -> np.ndarray:
        return self._score_seeds(rows, np.full(len(rows), self._typical_value(), dtype=np.float32))

    # -- helpers --------------------------------------------------------------------------------------------------
    def _typical_value(self) -> float:
        return self._typical

    def _exclude_rows(self, exclude: Iterable[str]) -> np.ndarray:
        if isinstance(exclude, str):
            raise ValueError("exclude must be a collection of item ids, not a single string; wrap it in a list")
        # Ids from outside this catalog (e.g. a book while this generator covers movies) cannot be returned anyway.
        rows = [self._catalog.row(i) for i in exclude if i in self._catalog]
        return np.asarray(rows, dtype=np.int64)

    def _seed_rows(self, ids: Sequence[str], what: str) -> np.ndarray:
        if isinstance(ids, str):
            raise ValueError(f"{what} must be a sequence of item ids, not a single string; wrap it in a list")
        ids = list(ids)
        if not ids:
            raise ValueError(
                f"{what} is empty: give at least one catalog id (for a user with no history use the "
                "'popularity' generator instead)"
            )
        return self._catalog.rows(ids)  # raises UnknownItemError naming the id

    def _to_scored(self, scores: np.ndarray, k: int, banned: np.ndarray) -> Scored:
        scores = np.array(scores, dtype=np.float32, copy=True)
        if len(banned):
            scores[banned] = -np.inf
        rows, vals = topk_rows(scores[None, :], k)
        keep = rows[0] >= 0
        return Scored(self._catalog.ids_of(rows[0][keep]), vals[0][keep])

    # -- public API -----------------------------------------------------------------------------------------------
    def recommend(self, user_id: str, k: int, exclude: Iterable[str] = ()) -> Scored:
        """Top-k for a known training user; never their training items nor `exclude`."""
        k = _check_k(k)
        self._require_fit()
        u = self._inter.user_row(user_id)  # UnknownUserError for new users: use recommend_for_items
        scores = self._score_users(np.array([u], dtype=np.int64))[0]
        banned = np.concatenate([self._inter.items_of(u).astype(np.int64), self._exclude_rows(exclude)])
        return self._to_scored(scores, k, banned)

    def recommend_for_items(
        self, liked_ids: Sequence[str], k: int, exclude: Iterable[str] = (), weights: Sequence[float] | None = None
    ) -> Scored:
        """Top-k for a new user known only by a few liked ids (one is enough).

        `weights` are in the units of the training matrix values (default: the median training value).
        Liked ids and `exclude` are never returned. If none of the liked items has any training interaction
        there is no evidence to extrapolate from and the result is empty (callers fall back to knowledge search).
        """
        k = _check_k(k)
        self._require_fit()
        rows = self._seed_rows(liked_ids, "liked_ids")
        if weights is None:
            w = np.full(len(rows), self._typical_value(), dtype=np.float32)
        else:
            w = np.asarray(weights, dtype=np.float32)
            if w.shape != rows.shape or not np.all(np.isfinite(w)) or np.any(w <= 0):
                raise ValueError(f"weights must be {len(rows)} positive finite numbers, one per liked id")
        warm = self._counts[rows] > 0
        banned = np.concatenate([rows, self._exclude_rows(exclude)])
        if not warm.any() and self._needs_evidence:
            return Scored.empty()
        return self._to_scored(self._seed_scores(rows[warm], w[warm]), k, banned)

    def scores_for_items(self, liked_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        """The fold-in score of each of `item_ids` for a new user who liked `liked_ids` (zeros when no liked item
        has training evidence, or for ids the model does not know): a feature for rankers, not a ranking."""
        self._require_fit()
        out = np.zeros(len(item_ids), dtype=np.float32)
        rows = [r for r in (self._catalog._row.get(i) for i in liked_ids) if r is not None]  # noqa: SLF001
        if not rows or not item_ids:
            return out
        rows = np.asarray(rows, dtype=np.int64)
        warm = rows[self._counts[rows] > 0]
        if not len(warm):
            return out
        dense = self._seed_scores(warm, np.full(len(warm), self._typical_value(), dtype=np.float32))
        idx = [(n, self._catalog._row.get(i)) for n, i in enumerate(item_ids)]  # noqa: SLF001
        for n, r in idx:
            if r is not None:
                out[n] = dense[r]
        return out

    def recommend_rows(self, user_rows: np.ndarray, k: int, filter_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Numeric batch API: catalog rows [n, k] int64 and scores [n, k] float32, best first.

        Unfillable slots (a user who has seen nearly everything) hold row -1 and score -inf.
        """
        k = _check_k(k)
        self._require_fit()
        user_rows = np.asarray(user_rows, dtype=np.int64).reshape(-1)
        if len(user_rows) and (user_rows.min() < 0 or user_rows.max() >= self._inter.n_users):
            raise ValueError(f"user_rows must lie in [0, {self._inter.n_users}); map ids with interactions.user_row")
        m = self._inter.matrix
        out_rows = np.empty((len(user_rows), k), dtype=np.int64)
        out_vals = np.empty((len(user_rows), k), dtype=np.float32)
        for s in range(0, len(user_rows), _BLOCK):
            block = user_rows[s : s + _BLOCK]
            scores = np.asarray(self._score_users(block), dtype=np.float32)
            if filter_seen:
                seen = m[block]
                scores[np.repeat(np.arange(len(block)), np.diff(seen.indptr)), seen.indices] = -np.inf
            out_rows[s : s + len(block)], out_vals[s : s + len(block)] = topk_rows(scores, k)
        return out_rows, out_vals

    def similar_items(self, item_ids: Sequence[str], k: int, exclude: Iterable[str] = ()) -> Scored:
        """"More like these": items most similar to `item_ids` (never the seeds themselves nor `exclude`)."""
        k = _check_k(k)
        self._require_fit()
        rows = self._seed_rows(item_ids, "item_ids")
        warm = self._counts[rows] > 0
        banned = np.concatenate([rows, self._exclude_rows(exclude)])
        if not warm.any() and self._needs_evidence:
            return Scored.empty()
        return self._to_scored(self._score_similar(rows[warm]), k, banned)

    def item_scores_for_user(self, user_id: str, item_ids: Sequence[str]) -> np.ndarray:
        """This generator's score of each given id for a known user, in the given order (for reranking)."""
        self._require_fit()
        u = self._inter.user_row(user_id)
        cols = self._catalog.rows(item_ids)
        return np.asarray(self._score_users(np.array([u], dtype=np.int64))[0][cols], dtype=np.float32)


# ---------------------------------------------------------------------------------------------------------------
class PopularityGenerator(_Base):
    """Items ranked by how many users interacted with them; ties by catalog row. Ignores who is asking."""

    name = "popularity"
    _needs_evidence = False

    def _fit(self, matrix: sp.csr_matrix) -> None:
        self._pop = self._counts.astype(np.float32)

    def _score_users(self, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._pop, (len(rows), len(self._pop))).copy()

    def _score_seeds(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return self._pop


# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ItemKNNConfig:
    k_neighbors: int = 100  # neighbours kept per item: prunes noise and keeps scoring sparse
    shrink: float = 0.0  # sim = dot / (|a||b| + shrink): damps similarities backed by few co-occurrences

    def __post_init__(self):
        if self.k_neighbors < 1:
            raise ValueError(f"k_neighbors must be >= 1, got {self.k_neighbors}")
        if self.shrink < 0:
            raise ValueError(f"shrink must be >= 0, got {self.shrink}")


class ItemKNNGenerator(_Base):
    """Cosine item-item neighbourhood on the confidence matrix; a user's score for item i = Σ_j x_uj · sim(j, i)."""

    name = "itemknn"

    def __init__(self, config: ItemKNNConfig | None = None):
        super().__init__()
        self.config = config or ItemKNNConfig()

    def _fit(self, matrix: sp.csr_matrix) -> None:
        x = matrix.tocsc().astype(np.float32)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel()).astype(np.float32)
        xt = x.T.tocsr()
        n = x.shape[1]
        kn = min(self.config.k_neighbors, max(n - 1, 1))
        src, dst, val = [], [], []
        # Column blocks keep the dense item×item product bounded (n × 512 floats) for large catalogs.
        for s in range(0, n, 512):
            cols = np.arange(s, min(s + 512, n))
            dots = (xt @ x[:, cols]).toarray()  # [n, c]: co-occurrence dot products
            sim = dots / (norms[:, None] * norms[None, cols] + self.config.shrink + 1e-12)
            sim[cols, np.arange(len(cols))] = 0.0  # an item is not its own neighbour
            nb = np.argpartition(-sim, kn - 1, axis=0)[:kn] if kn < n else np.arange(n)[:, None].repeat(len(cols), 1)
            v = np.take_along_axis(sim, nb, axis=0)
            keep = v > 0
            src.append(nb[keep])
            dst.append(np.broadcast_to(cols[None, :], nb.shape)[keep])
            val.append(v[keep].astype(np.float32))
        # S[j, i] = sim(j, i) kept when j is among i's top neighbours, so a user's scores are x_u @ S.
        self._sim = sp.csr_matrix(
            (np.concatenate(val), (np.concatenate(src), np.concatenate(dst))), shape=(n, n), dtype=np.float32
        )

    def _score_users(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray((self._inter.matrix[rows] @ self._sim).toarray(), dtype=np.float32)

    def _score_seeds(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return np.asarray(self._sim[rows].T @ weights, dtype=np.float32).ravel()

    def _score_similar(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self._sim[rows].sum(axis=0), dtype=np.float32).ravel()


# ---------------------------------------------------------------------------------------------------------------
def _cuda_available() -> bool:
    try:
        import implicit.gpu

        return bool(implicit.gpu.HAS_CUDA)
    except ImportError:
        return False


@dataclass(frozen=True)
class ALSConfig:
    factors: int = 64
    regularization: float = 10.0
    alpha: float = 2.0  # confidence C = 1 + alpha · value (Hu et al.), see ALSGenerator
    iterations: int = 15
    seed: int = 42
    use_gpu: bool | None = None  # None: GPU only when implicit was built with CUDA and sees a device
    num_threads: int = 0  # implicit's OpenMP threads; 0 = all cores
    show_progress: bool = False

    def __post_init__(self):
        if not 1 <= self.factors <= 4096:
            raise ValueError(f"factors must be in [1, 4096], got {self.factors}")
        if not self.regularization >= 0 or not np.isfinite(self.regularization):
            raise ValueError(f"regularization must be a finite number >= 0, got {self.regularization}")
        if not self.alpha >= 0 or not np.isfinite(self.alpha):
            raise ValueError(f"alpha must be a finite number >= 0, got {self.alpha}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")


class ALSGenerator(_Base):
    """Implicit ALS. Confidence follows Hu, Koren & Volinsky (2008): C_ui = 1 + alpha · r_ui, preference p_ui = 1.

    `r_ui` is the Interactions value (already binary/linear/log of the rating). We add the 1 ourselves and give
    implicit alpha=1 because implicit reads the matrix as C_ui itself and weights positives by (C_ui − 1) on top
    of the all-items Gram term; passing `alpha · r` directly (implicit's own alpha) would give a binary matrix
    with alpha < 1 a *negative* extra weight on positives. With 1 + alpha·r every positive counts at least as
    much as an unobserved item, for any alpha ≥ 0.
    """

    name = "als"

    def __init__(self, config: ALSConfig | None = None):
        super().__init__()
        self.config = config or ALSConfig()
        self._model = None

    def _confidence(self, m: sp.csr_matrix) -> sp.csr_matrix:
        c = m.astype(np.float32, copy=True)
        c.data = 1.0 + self.config.alpha * c.data
        return c

    def _fit(self, matrix: sp.csr_matrix) -> None:
        from implicit.als import AlternatingLeastSquares

        cfg = self.config
        use_gpu = _cuda_available() if cfg.use_gpu is None else cfg.use_gpu
        # implicit's own threads do the work; a multi-threaded BLAS underneath oversubscribes the cores (implicit
        # warns it can be 10x slower), so BLAS is pinned to one thread while the model is built and fitted.
        with threadpoolctl.threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=cfg.factors, regularization=cfg.regularization, alpha=1.0, iterations=cfg.iterations,
                random_state=cfg.seed, num_threads=cfg.num_threads, use_gpu=use_gpu,
            )
            model.fit(self._confidence(matrix), show_progress=cfg.show_progress)
        if use_gpu:
            model = model.to_cpu()  # scoring and fold-in stay in numpy
        # After fitting, the model only solves one new user at a time: an OpenMP team for a 64×64 solve costs
        # ~1000x the solve itself on a busy machine (measured 29 ms vs 0.03 ms), so serve single-threaded.
        model.num_threads = 1
        self._model = model
        self._user_f = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self._item_f = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        norms = np.linalg.norm(self._item_f, axis=1)
        self._item_unit = self._item_f / np.where(norms > 0, norms, 1.0)[:, None]

    @property
    def item_factors(self) -> np.ndarray:
        self._require_fit()
        return self._item_f

    @property
    def user_factors(self) -> np.ndarray:
        self._require_fit()
        return self._user_f

    def _score_users(self, rows: np.ndarray) -> np.ndarray:
        return self._user_f[rows] @ self._item_f.T

    def fold_in(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The least-squares user factor for a new user with interaction values `weights` on catalog `rows`."""
        order = np.argsort(rows, kind="stable")
        row = sp.csr_matrix(
            (weights[order], rows[order], np.array([0, len(rows)])), shape=(1, len(self._catalog)), dtype=np.float32
        )
        row.sum_duplicates()
        return np.asarray(self._model.recalculate_user(0, self._confidence(row)), dtype=np.float32)

    def _score_seeds(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return self._item_f @ self.fold_in(rows, weights)

    def _score_similar(self, rows: np.ndarray) -> np.ndarray:
        # Mean cosine to the seeds in factor space: scale-free, so a popular seed doesn't drown a niche one.
        return (self._item_unit @ self._item_unit[rows].T).mean(axis=1)


# ---------------------------------------------------------------------------------------------------------------
_GENERATORS = {"als": (ALSGenerator, ALSConfig), "itemknn": (ItemKNNGenerator, ItemKNNConfig),
               "popularity": (PopularityGenerator, None)}


def make_generator(name: str, **config) -> CandidateGenerator:
    """`make_generator("als", factors=128)`: a generator by name with its config fields as keywords."""
    if name not in _GENERATORS:
        raise ValueError(f"unknown candidate generator {name!r}; choose one of {sorted(_GENERATORS)}")
    cls, cfg_cls = _GENERATORS[name]
    if cfg_cls is None:
        if config:
            raise ValueError(f"generator {name!r} takes no options, got {sorted(config)}")
        return cls()
    valid = {f.name for f in dataclasses.fields(cfg_cls)}
    unknown = sorted(set(config) - valid)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for generator {name!r}; valid: {sorted(valid)}")
    return cls(cfg_cls(**config))


__all__ = [
    "ALSConfig", "ALSGenerator", "CandidateGenerator", "ItemKNNConfig", "ItemKNNGenerator", "PopularityGenerator",
    "UnknownItemError", "UnknownUserError", "make_generator", "topk_rows",
]
