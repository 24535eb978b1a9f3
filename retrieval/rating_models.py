"""Explicit rating prediction ("how many stars would this user give this item?").

Models, weakest to strongest on MovieLens:
  - `GlobalMean`          every prediction is the training mean (the floor any model must beat)
  - `Baseline`            mu + b_u + b_i, biases fitted by alternating least squares (Koren 2010, eq. 2)
  - `BiasedMF`            "SVD": mu + b_u + b_i + q_i·p_u, fitted by SGD (Funk / Koren, Bell & Volinsky 2009)
  - `SVDPlusPlus`         biased MF plus implicit feedback: p_u + |N(u)|^-½ Σ_{j∈N(u)} y_j (Koren 2008)
  - `ItemKNNBaseline`     item-item neighbourhood on baseline residuals with shrunk Pearson similarities

Fitting is done by scikit-surprise: its Cython SGD/ALS are the reference implementations of exactly these
models (the numbers papers quote for ML-100K come from it), so we do not re-derive them. After fitting, every
model exports its parameters to numpy arrays indexed by *our* rows (users of `Ratings.user_ids`, catalog rows),
which buys two things surprise lacks: vectorised batch prediction, and folding in a new user (a chat session)
from a handful of ratings without refitting. Unknown users/items fall back exactly as surprise does (an unknown
user gets mu + b_i, an unknown item mu + b_u); all predictions are clipped to the rating scale.

Fold-in solves the new user's parameters against the fixed item parameters by ridge regression (closed form),
the least-squares problem each SGD epoch approximates; `FoldInConfig` holds its penalties.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from .types import Ratings

MODEL_NAMES = ("global_mean", "baseline", "svd", "svdpp", "knn_baseline")


class RatingModelError(ValueError):
    """Bad input to a rating model (shapes, empty data, out-of-range rows); the message says what to fix."""


@dataclass(frozen=True)
class FoldInConfig:
    """Ridge penalties for a folded-in user. Larger = trust the few given ratings less, stay nearer the item means.

    Measured on 150 ML-100K users held out of training, folded in from 1–40 of their ratings: penalties of 3–5
    beat both 1 (overfits the first few ratings) and 10–30 (too slow to follow the evidence)
    at every count (a one-off comparison); `chatrec-eval ratings` prints the curve for these defaults.
    """

    reg_bias: float = 5.0
    reg_factors: float = 5.0

    def __post_init__(self):
        if self.reg_bias <= 0 or self.reg_factors <= 0:
            raise RatingModelError("fold-in penalties must be > 0 (they keep a 1-rating user well defined)")


@dataclass(frozen=True)
class FoldedUser:
    """A user known only by (item row, rating) pairs: what a session gives. Built by `RatingModel.fold_in`."""

    rows: np.ndarray  # int64 catalog rows the user rated (known to the model or not)
    values: np.ndarray  # float64 ratings, aligned with rows
    bias: float = 0.0
    factor: np.ndarray = field(default_factory=lambda: np.zeros(0))
    implicit: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n(self) -> int:
        return len(self.rows)


@runtime_checkable
class RatingModel(Protocol):
    name: str
    scale: tuple[float, float]

    def fit(self, ratings: Ratings, n_items: int) -> "RatingModel": ...

    def predict(self, user_rows: np.ndarray, item_rows: np.ndarray) -> np.ndarray: ...

    def fold_in(self, item_rows: Sequence[int], values: Sequence[float]) -> FoldedUser: ...

    def predict_folded(self, user: FoldedUser, item_rows: Sequence[int]) -> np.ndarray: ...

    def knows_item(self, item_row: int) -> bool: ...


def _check_pairs(user_rows, item_rows) -> tuple[np.ndarray, np.ndarray]:
    u = np.asarray(user_rows, dtype=np.int64).reshape(-1)
    i = np.asarray(item_rows, dtype=np.int64).reshape(-1)
    if u.shape != i.shape:
        raise RatingModelError(f"{len(u)} user rows but {len(i)} item rows; give one user row per item row")
    return u, i


def _check_evidence(item_rows, values, scale) -> tuple[np.ndarray, np.ndarray]:
    rows = np.asarray(item_rows, dtype=np.int64).reshape(-1)
    vals = np.asarray(values, dtype=np.float64).reshape(-1)
    if rows.shape != vals.shape:
        raise RatingModelError(f"{len(rows)} item rows but {len(vals)} ratings; give one rating per item")
    if len(vals) and (not np.all(np.isfinite(vals)) or vals.min() < scale[0] or vals.max() > scale[1]):
        raise RatingModelError(f"ratings must lie in the model's scale {scale}, got {vals.tolist()}")
    return rows, vals


class _Base:
    name = "base"

    def __init__(self, scale: tuple[float, float] = (1.0, 5.0)):
        lo, hi = float(scale[0]), float(scale[1])
        if not lo < hi:
            raise RatingModelError(f"rating scale must be (low, high) with low < high, got {scale}")
        self.scale = (lo, hi)
        self.mu: float | None = None
        self.n_users = 0
        self.n_items = 0
        self._known_items = np.zeros(0, dtype=bool)

    def _require_fit(self) -> None:
        if self.mu is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(ratings, n_items) first")

    def _check_rows(self, u: np.ndarray | None, i: np.ndarray) -> None:
        if len(i) and (i.min() < 0 or i.max() >= self.n_items):
            raise RatingModelError(f"item rows must lie in [0, {self.n_items}) (catalog rows of the fitted data)")
        if u is not None and len(u) and (u.min() < 0 or u.max() >= self.n_users):
            raise RatingModelError(f"user rows must lie in [0, {self.n_users}); fold in new users with fold_in")

    def _clip(self, est: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(est, dtype=np.float64), *self.scale)

    def _start(self, ratings: Ratings, n_items: int) -> None:
        if len(ratings) == 0:
            raise RatingModelError("no ratings to fit; a rating model needs at least one rating")
        if int(ratings.item.max()) >= n_items:
            raise RatingModelError(f"ratings refer to item row {int(ratings.item.max())} but n_items={n_items}")
        lo, hi = float(ratings.rating.min()), float(ratings.rating.max())
        if lo < self.scale[0] or hi > self.scale[1]:
            raise RatingModelError(f"ratings span [{lo}, {hi}], outside the model's scale {self.scale}")
        self.n_users, self.n_items = ratings.n_users, int(n_items)
        self.mu = float(ratings.rating.mean())
        self._known_items = np.bincount(ratings.item, minlength=n_items) > 0

    def knows_item(self, item_row: int) -> bool:
        self._require_fit()
        return 0 <= int(item_row) < self.n_items and bool(self._known_items[int(item_row)])


class GlobalMean(_Base):
    name = "global_mean"

    def fit(self, ratings: Ratings, n_items: int) -> "GlobalMean":
        self._start(ratings, n_items)
        return self

    def predict(self, user_rows, item_rows) -> np.ndarray:
        self._require_fit()
        u, i = _check_pairs(user_rows, item_rows)
        self._check_rows(u, i)
        return self._clip(np.full(len(i), self.mu))

    def fold_in(self, item_rows, values) -> FoldedUser:
        self._require_fit()
        rows, vals = _check_evidence(item_rows, values, self.scale)
        return FoldedUser(rows, vals)

    def predict_folded(self, user: FoldedUser, item_rows) -> np.ndarray:
        self._require_fit()
        i = np.asarray(item_rows, dtype=np.int64).reshape(-1)
        self._check_rows(None, i)
        return self._clip(np.full(len(i), self.mu))


# --- surprise-backed models ------------------------------------------------------------------------------------

def to_surprise_trainset(ratings: Ratings, scale: tuple[float, float]):
    """A surprise Trainset whose raw ids are our integer rows (so exported arrays map straight back).

    Built the way surprise's `Dataset.construct_trainset` builds one (inner ids in order of first appearance,
    per-user lists in file order), without the pandas round trip of `Dataset.load_from_df`.
    """
    from collections import defaultdict

    from surprise import Trainset

    users: dict[int, int] = {}
    items: dict[int, int] = {}
    ur: defaultdict = defaultdict(list)
    ir: defaultdict = defaultdict(list)
    for u, i, r in zip(ratings.user.tolist(), ratings.item.tolist(), ratings.rating.astype(np.float64).tolist()):
        uid = users.setdefault(u, len(users))
        iid = items.setdefault(i, len(items))
        ur[uid].append((iid, r))
        ir[iid].append((uid, r))
    return Trainset(ur, ir, len(ur), len(ir), len(ratings), scale, users, items)


def _raw_rows(trainset, kind: str) -> np.ndarray:
    n = trainset.n_users if kind == "user" else trainset.n_items
    to_raw = trainset.to_raw_uid if kind == "user" else trainset.to_raw_iid
    return np.fromiter((int(to_raw(k)) for k in range(n)), dtype=np.int64, count=n)


def _scatter(values: np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
    """Place per-inner-id parameters at our rows; rows the fit never saw stay 0 (surprise's unknown fallback)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros((size,) + values.shape[1:], dtype=np.float64)
    out[rows] = values
    return out


class Baseline(_Base):
    """mu + b_u + b_i with biases from surprise's ALS baseline estimator (reg_u, reg_i as in Koren 2010)."""

    name = "baseline"

    def __init__(self, scale=(1.0, 5.0), *, reg_u: float = 15.0, reg_i: float = 10.0, n_epochs: int = 10):
        super().__init__(scale)
        self.bsl_options = {"method": "als", "reg_u": float(reg_u), "reg_i": float(reg_i), "n_epochs": int(n_epochs)}
        self.bu = self.bi = np.zeros(0)

    def fit(self, ratings: Ratings, n_items: int) -> "Baseline":
        from surprise import BaselineOnly

        self._start(ratings, n_items)
        ts = to_surprise_trainset(ratings, self.scale)
        algo = BaselineOnly(bsl_options=dict(self.bsl_options), verbose=False).fit(ts)
        self.mu = float(ts.global_mean)
        self.bu = _scatter(algo.bu, _raw_rows(ts, "user"), self.n_users)
        self.bi = _scatter(algo.bi, _raw_rows(ts, "item"), self.n_items)
        return self

    def predict(self, user_rows, item_rows) -> np.ndarray:
        self._require_fit()
        u, i = _check_pairs(user_rows, item_rows)
        self._check_rows(u, i)
        return self._clip(self.mu + self.bu[u] + self.bi[i])

    def _user_bias(self, rows: np.ndarray, vals: np.ndarray) -> float:
        """The ALS baseline's user step with the item biases fixed: Σ (r − mu − b_i) / (reg_u + n)."""
        known = self._known_items[rows]
        resid = vals[known] - self.mu - self.bi[rows[known]]
        return float(resid.sum() / (self.bsl_options["reg_u"] + len(resid)))

    def fold_in(self, item_rows, values) -> FoldedUser:
        self._require_fit()
        rows, vals = _check_evidence(item_rows, values, self.scale)
        self._check_rows(None, rows)
        return FoldedUser(rows, vals, bias=self._user_bias(rows, vals))

    def predict_folded(self, user: FoldedUser, item_rows) -> np.ndarray:
        self._require_fit()
        i = np.asarray(item_rows, dtype=np.int64).reshape(-1)
        self._check_rows(None, i)
        return self._clip(self.mu + user.bias + self.bi[i])


class BiasedMF(_Base):
    """Biased matrix factorisation ("SVD" in the Netflix-prize sense), surprise's `SVD` with biased=True."""

    name = "svd"

    # Defaults tuned on a validation split carved from an ML-100K training split (surprise's own defaults, 20
    # epochs at reg 0.02, give RMSE .946 there; these .920): longer training needs the stronger regularisation.
    def __init__(self, scale=(1.0, 5.0), *, n_factors: int = 100, n_epochs: int = 40, lr_all: float = 0.01,
                 reg_all: float = 0.1, init_std_dev: float = 0.1, seed: int = 0,
                 fold: FoldInConfig = FoldInConfig()):
        super().__init__(scale)
        self.params = dict(n_factors=int(n_factors), n_epochs=int(n_epochs), lr_all=float(lr_all),
                           reg_all=float(reg_all), init_std_dev=float(init_std_dev))
        self.seed = int(seed)
        self.fold = fold
        self.bu = self.bi = self.pu = self.qi = np.zeros(0)

    def _algo(self):
        from surprise import SVD

        return SVD(biased=True, random_state=self.seed, **self.params)

    def fit(self, ratings: Ratings, n_items: int) -> "BiasedMF":
        self._start(ratings, n_items)
        ts = to_surprise_trainset(ratings, self.scale)
        algo = self._algo().fit(ts)
        self.mu = float(ts.global_mean)
        urows, irows = _raw_rows(ts, "user"), _raw_rows(ts, "item")
        self.bu, self.pu = _scatter(algo.bu, urows, self.n_users), _scatter(algo.pu, urows, self.n_users)
        self.bi, self.qi = _scatter(algo.bi, irows, self.n_items), _scatter(algo.qi, irows, self.n_items)
        self._fit_extra(algo, ts, urows, irows)
        return self

    def _fit_extra(self, algo, ts, urows, irows) -> None:
        """Hook for SVD++'s implicit-feedback parameters."""

    def _user_vectors(self, u: np.ndarray) -> np.ndarray:
        return self.pu[u]

    def predict(self, user_rows, item_rows) -> np.ndarray:
        self._require_fit()
        u, i = _check_pairs(user_rows, item_rows)
        self._check_rows(u, i)
        dot = np.einsum("nk,nk->n", self._user_vectors(u), self.qi[i])
        return self._clip(self.mu + self.bu[u] + self.bi[i] + dot)

    @property
    def item_factors(self) -> np.ndarray:
        """[n_items, k] item factors (zeros for items without training ratings), e.g. for similarity."""
        self._require_fit()
        return self.qi

    def _implicit(self, rows: np.ndarray) -> np.ndarray:
        return np.zeros(self.qi.shape[1])

    def fold_in(self, item_rows, values) -> FoldedUser:
        """Ridge solution of r − mu − b_i − q_i·imp = b_u + q_i·p_u over the user's known items."""
        self._require_fit()
        rows, vals = _check_evidence(item_rows, values, self.scale)
        self._check_rows(None, rows)
        known = self._known_items[rows]
        kr = rows[known]
        imp = self._implicit(kr)
        k = self.qi.shape[1]
        if len(kr) == 0:
            return FoldedUser(rows, vals, 0.0, np.zeros(k), imp)
        q = self.qi[kr]
        x = np.hstack([np.ones((len(kr), 1)), q])
        y = vals[known] - self.mu - self.bi[kr] - q @ imp
        pen = np.diag(np.r_[self.fold.reg_bias, np.full(k, self.fold.reg_factors)])
        sol = np.linalg.solve(x.T @ x + pen, x.T @ y)
        return FoldedUser(rows, vals, float(sol[0]), sol[1:], imp)

    def predict_folded(self, user: FoldedUser, item_rows) -> np.ndarray:
        self._require_fit()
        i = np.asarray(item_rows, dtype=np.int64).reshape(-1)
        self._check_rows(None, i)
        if user.factor.shape != (self.qi.shape[1],):
            raise RatingModelError(f"this user was not folded in by a {self.qi.shape[1]}-factor model; use its fold_in")
        return self._clip(self.mu + user.bias + self.bi[i] + self.qi[i] @ (user.factor + user.implicit))


class SVDPlusPlus(BiasedMF):
    """SVD++ (surprise `SVDpp`): the user vector adds |N(u)|^-½ Σ y_j over the items the user rated."""

    name = "svdpp"

    def __init__(self, scale=(1.0, 5.0), *, n_factors: int = 20, n_epochs: int = 20, lr_all: float = 0.007,
                 reg_all: float = 0.02, init_std_dev: float = 0.1, seed: int = 0,
                 fold: FoldInConfig = FoldInConfig()):
        super().__init__(scale, n_factors=n_factors, n_epochs=n_epochs, lr_all=lr_all, reg_all=reg_all,
                         init_std_dev=init_std_dev, seed=seed, fold=fold)
        self.yj = self.user_imp = np.zeros(0)

    def _algo(self):
        from surprise import SVDpp

        return SVDpp(random_state=self.seed, cache_ratings=True, **self.params)

    def _fit_extra(self, algo, ts, urows, irows) -> None:
        self.yj = _scatter(algo.yj, irows, self.n_items)
        imp = np.zeros((ts.n_users, self.yj.shape[1]))
        y_inner = np.asarray(algo.yj, dtype=np.float64)
        for inner_u, pairs in ts.ur.items():
            js = np.fromiter((j for j, _ in pairs), dtype=np.int64, count=len(pairs))
            imp[inner_u] = y_inner[js].sum(axis=0) / np.sqrt(len(js))
        self.user_imp = _scatter(imp, urows, self.n_users)

    def _user_vectors(self, u: np.ndarray) -> np.ndarray:
        return self.pu[u] + self.user_imp[u]

    def _implicit(self, rows: np.ndarray) -> np.ndarray:
        if len(rows) == 0:
            return np.zeros(self.yj.shape[1])
        return self.yj[rows].sum(axis=0) / np.sqrt(len(rows))


class ItemKNNBaseline(Baseline):
    """Item-based kNN on baseline residuals (surprise `KNNBaseline`, pearson_baseline similarity, shrinkage).

    r̂_ui = b_ui + Σ_j s_ij (r_uj − b_uj) / Σ_j s_ij over the k items the user rated that are most similar to i,
    counting only positive similarities. The similarity matrix is dense over rated items (O(items²) memory:
    ~55 MB for ML-1M), which suits evaluation; sessions use `BiasedMF`.
    """

    name = "knn_baseline"

    def __init__(self, scale=(1.0, 5.0), *, k: int = 40, min_k: int = 1, shrinkage: float = 100.0,
                 reg_u: float = 15.0, reg_i: float = 10.0, n_epochs: int = 10):
        super().__init__(scale, reg_u=reg_u, reg_i=reg_i, n_epochs=n_epochs)
        if k < 1 or min_k < 0:
            raise RatingModelError(f"k must be >= 1 and min_k >= 0, got k={k}, min_k={min_k}")
        self.k, self.min_k, self.shrinkage = int(k), int(min_k), float(shrinkage)
        self.sim = np.zeros((0, 0), dtype=np.float32)
        self._inner = np.zeros(0, dtype=np.int64)  # our item row → similarity index (−1: no ratings)
        self._user_items: list[np.ndarray] = []
        self._user_resid: list[np.ndarray] = []

    def fit(self, ratings: Ratings, n_items: int) -> "ItemKNNBaseline":
        from surprise import KNNBaseline

        self._start(ratings, n_items)
        ts = to_surprise_trainset(ratings, self.scale)
        algo = KNNBaseline(k=self.k, min_k=self.min_k, verbose=False, bsl_options=dict(self.bsl_options),
                           sim_options={"name": "pearson_baseline", "user_based": False, "shrinkage": self.shrinkage})
        algo.fit(ts)
        self.mu = float(ts.global_mean)
        urows, irows = _raw_rows(ts, "user"), _raw_rows(ts, "item")
        self.bu = _scatter(algo.bu, urows, self.n_users)
        self.bi = _scatter(algo.bi, irows, self.n_items)
        self.sim = np.asarray(algo.sim, dtype=np.float32)
        self._inner = np.full(self.n_items, -1, dtype=np.int64)
        self._inner[irows] = np.arange(len(irows))
        # Per user: rated items (as similarity indices) and their baseline residuals r_uj − b_uj.
        order = np.argsort(ratings.user, kind="stable")
        bounds = np.searchsorted(ratings.user[order], np.arange(self.n_users + 1))
        items = self._inner[ratings.item[order]]
        resid = ratings.rating[order].astype(np.float64) - self.mu - self.bu[ratings.user[order]] \
            - self.bi[ratings.item[order]]
        self._user_items = [items[bounds[u]:bounds[u + 1]] for u in range(self.n_users)]
        self._user_resid = [resid[bounds[u]:bounds[u + 1]] for u in range(self.n_users)]
        return self

    def _neighbour_offsets(self, targets: np.ndarray, nb_items: np.ndarray, nb_resid: np.ndarray) -> np.ndarray:
        """Σ s·resid / Σ s over each target's k most similar rated items (positive similarities only)."""
        out = np.zeros(len(targets))
        ok = targets >= 0
        if not ok.any() or len(nb_items) == 0:
            return out
        s = self.sim[np.ix_(targets[ok], nb_items)].astype(np.float64)  # [t, n]
        if s.shape[1] > self.k:
            top = np.argpartition(-s, self.k - 1, axis=1)[:, : self.k]
            s_top = np.take_along_axis(s, top, axis=1)
            r_top = nb_resid[top]
        else:
            s_top, r_top = s, np.broadcast_to(nb_resid, s.shape)
        pos = s_top > 0
        w = np.where(pos, s_top, 0.0)
        den = w.sum(axis=1)
        num = (w * r_top).sum(axis=1)
        enough = (pos.sum(axis=1) >= self.min_k) & (den > 0)
        out[np.flatnonzero(ok)[enough]] = num[enough] / den[enough]
        return out

    def predict(self, user_rows, item_rows) -> np.ndarray:
        self._require_fit()
        u, i = _check_pairs(user_rows, item_rows)
        self._check_rows(u, i)
        est = self.mu + self.bu[u] + self.bi[i]
        order = np.argsort(u, kind="stable")
        bounds = np.flatnonzero(np.r_[True, u[order][1:] != u[order][:-1], True])
        for a, b in zip(bounds[:-1], bounds[1:]):
            idx = order[a:b]
            uu = int(u[idx[0]])
            est[idx] += self._neighbour_offsets(self._inner[i[idx]], self._user_items[uu], self._user_resid[uu])
        return self._clip(est)

    def predict_folded(self, user: FoldedUser, item_rows) -> np.ndarray:
        self._require_fit()
        i = np.asarray(item_rows, dtype=np.int64).reshape(-1)
        self._check_rows(None, i)
        known = self._known_items[user.rows]
        kr = user.rows[known]
        resid = user.values[known] - self.mu - user.bias - self.bi[kr]
        est = self.mu + user.bias + self.bi[i]
        return self._clip(est + self._neighbour_offsets(self._inner[i], self._inner[kr], resid))


def make_rating_model(name: str, scale: tuple[float, float] = (1.0, 5.0), **params) -> RatingModel:
    """A rating model by name (MODEL_NAMES) with its keyword parameters."""
    classes = {"global_mean": GlobalMean, "baseline": Baseline, "svd": BiasedMF, "svdpp": SVDPlusPlus,
               "knn_baseline": ItemKNNBaseline}
    if name not in classes:
        raise RatingModelError(f"unknown rating model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    try:
        return classes[name](scale, **params)
    except TypeError as e:
        raise RatingModelError(f"bad parameters for rating model {name!r}: {e}") from e


@dataclass(frozen=True)
class LinearBlend:
    """rating ≈ b + Σ w_m · pred_m over component models, non-negative least squares on validation predictions.

    convex=True fits Σ w_m · pred_m with w ≥ 0, Σ w = 1 and no intercept: a mixture that cannot drift away from its
    components, for small validation sets (a few users' ratings) where a free intercept fits their mean instead.
    Guard: the blend is kept only if its K-fold cross-validated RMSE on the validation ratings beats every single
    component's; otherwise it degenerates to the best component (weight 1, intercept 0). So on the data it was
    fitted on, the blend is never worse than its best part; `chosen` says which case happened.
    """

    names: tuple[str, ...]
    weights: np.ndarray
    intercept: float
    chosen: str  # "blend" or the name of the single best component
    scale: tuple[float, float] = (1.0, 5.0)

    @classmethod
    def fit(cls, preds: dict[str, np.ndarray], truth: np.ndarray, *, scale: tuple[float, float] = (1.0, 5.0),
            ridge: float = 1e-2, folds: int = 5, seed: int = 0, convex: bool = False) -> "LinearBlend":
        names = tuple(preds)
        truth = np.asarray(truth, dtype=np.float64)
        if not names:
            raise RatingModelError("a blend needs at least one component")
        x = np.column_stack([np.asarray(preds[n], dtype=np.float64) for n in names])
        if x.shape[0] != len(truth) or len(truth) < 2 * folds:
            raise RatingModelError(f"blend needs one prediction per truth value and at least {2 * folds} ratings")

        def solve(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
            # Non-negative weights on centred data (the intercept is free and unshrunk): correlated components
            # otherwise get large opposite-signed weights that fit validation noise.
            from scipy.optimize import nnls

            if convex:  # Σ w = 1 enforced as a heavily weighted extra equation
                big = 1e3 * np.sqrt(len(xs))
                w, _ = nnls(np.vstack([xs, np.full((1, xs.shape[1]), big)]), np.r_[ys, big])
                return np.r_[0.0, w / w.sum()]
            mx, my = xs.mean(axis=0), ys.mean()
            a = np.vstack([xs - mx, np.sqrt(ridge * len(xs)) * np.eye(xs.shape[1])])
            w, _ = nnls(a, np.r_[ys - my, np.zeros(xs.shape[1])])
            return np.r_[my - mx @ w, w]

        fold = np.random.default_rng(seed).permutation(len(truth)) % folds
        cv = np.empty(len(truth))
        for f in range(folds):
            w = solve(x[fold != f], truth[fold != f])
            cv[fold == f] = np.clip(w[0] + x[fold == f] @ w[1:], *scale)
        cv_rmse = float(np.sqrt(np.mean((cv - truth) ** 2)))
        single = {n: float(np.sqrt(np.mean((np.clip(x[:, j], *scale) - truth) ** 2))) for j, n in enumerate(names)}
        best = min(single, key=single.get)
        if cv_rmse < single[best]:
            w = solve(x, truth)
            return cls(names, w[1:], float(w[0]), "blend", scale)
        weights = np.array([1.0 if n == best else 0.0 for n in names])
        return cls(names, weights, 0.0, best, scale)

    def predict(self, preds: dict[str, np.ndarray]) -> np.ndarray:
        missing = [n for n in self.names if n not in preds]
        if missing:
            raise RatingModelError(f"blend needs predictions from {missing}")
        x = np.column_stack([np.asarray(preds[n], dtype=np.float64) for n in self.names])
        return np.clip(self.intercept + x @ self.weights, *self.scale)


def rmse_mae(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    err = np.asarray(pred, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    if len(err) == 0:
        raise RatingModelError("no predictions to score")
    return float(np.sqrt(np.mean(err**2))), float(np.mean(np.abs(err)))


__all__ = ["Baseline", "BiasedMF", "FoldInConfig", "FoldedUser", "GlobalMean", "ItemKNNBaseline", "LinearBlend",
           "MODEL_NAMES", "RatingModel", "RatingModelError", "SVDPlusPlus", "make_rating_model", "rmse_mae",
           "to_surprise_trainset"]
