"""Top-k ranking metrics from ranked catalog rows and per-user ground-truth rows.

Everything is computed from one boolean hit matrix [n_users, k], built in a single vectorised membership test,
so Precision, Recall, NDCG, HR and MRR always agree with each other. Rows equal to -1 are padding (a generator
that returned fewer than k items) and never count as hits; precision still divides by k, as the papers do.

Recall is reported two ways because papers disagree: `recall` is the mean of per-user recalls (LensKit,
RecBole), `recall_micro` is total hits / total ground-truth items, which is what the Chat-REC paper's numbers
correspond to (users with many held-out items weigh more).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


def hit_matrix(ranked: np.ndarray, truth: Sequence[np.ndarray], k: int | None = None) -> np.ndarray:
    """Boolean [n, k]: ranked[u, j] is one of user u's ground-truth rows."""
    ranked = np.asarray(ranked)
    if ranked.ndim != 2:
        raise ValueError(f"ranked must be a 2-D array [n_users, k] of catalog rows, got shape {ranked.shape}")
    if len(truth) != ranked.shape[0]:
        raise ValueError(f"{ranked.shape[0]} ranked rows but ground truth for {len(truth)} users")
    k = ranked.shape[1] if k is None else k
    if k < 1 or k > ranked.shape[1]:
        raise ValueError(f"k={k} but only {ranked.shape[1]} ranked items per user; ask the generator for more")
    ranked = ranked[:, :k].astype(np.int64)
    # Encode (user, item) pairs as one int64 so membership is a single np.isin over all users at once.
    width = int(max(ranked.max(initial=0), max((int(t.max()) for t in truth if len(t)), default=0))) + 1
    lens = np.fromiter((len(t) for t in truth), dtype=np.int64, count=len(truth))
    truth_codes = np.repeat(np.arange(len(truth), dtype=np.int64), lens) * width + (
        np.concatenate([np.asarray(t, dtype=np.int64) for t in truth]) if lens.sum() else np.zeros(0, np.int64)
    )
    codes = np.arange(len(truth), dtype=np.int64)[:, None] * width + ranked
    hits = np.isin(codes, truth_codes)
    hits &= ranked >= 0
    return hits


@dataclass(frozen=True)
class UserMetrics:
    """Per-user metrics at one cutoff k (arrays aligned with the evaluated users)."""

    k: int
    precision: np.ndarray
    recall: np.ndarray
    ndcg: np.ndarray
    hit: np.ndarray
    mrr: np.ndarray
    n_hits: np.ndarray
    n_truth: np.ndarray

    def __len__(self) -> int:
        return len(self.precision)

    def summary(self) -> dict[str, float]:
        """Means over users, plus micro recall (total hits / total ground-truth items)."""
        return {
            f"P@{self.k}": float(self.precision.mean()),
            f"R@{self.k}": float(self.recall.mean()),
            f"Rmicro@{self.k}": float(self.n_hits.sum() / self.n_truth.sum()),
            f"NDCG@{self.k}": float(self.ndcg.mean()),
            f"HR@{self.k}": float(self.hit.mean()),
            f"MRR@{self.k}": float(self.mrr.mean()),
        }


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def user_metrics(ranked: np.ndarray, truth: Sequence[np.ndarray], k: int) -> UserMetrics:
    """Metrics at k for each user. Every user needs at least one ground-truth item (else recall is undefined)."""
    n_truth = np.fromiter((len(set(np.asarray(t).tolist())) for t in truth), dtype=np.int64, count=len(truth))
    if (n_truth == 0).any():
        bad = int(np.flatnonzero(n_truth == 0)[0])
        raise ValueError(f"user #{bad} has no ground-truth items; drop such users in the protocol before scoring")
    hits = hit_matrix(ranked, truth, k)
    n_hits = hits.sum(axis=1)
    disc = _discounts(k)
    dcg = (hits * disc).sum(axis=1)
    ideal = np.cumsum(disc)[np.minimum(n_truth, k) - 1]
    first = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, 0)
    mrr = np.where(first > 0, 1.0 / np.maximum(first, 1), 0.0)
    return UserMetrics(
        k=k,
        precision=n_hits / k,
        recall=n_hits / n_truth,
        ndcg=dcg / ideal,
        hit=(n_hits > 0).astype(np.float64),
        mrr=mrr,
        n_hits=n_hits,
        n_truth=n_truth,
    )


def evaluate_ranking(ranked: np.ndarray, truth: Sequence[np.ndarray], ks: Sequence[int]) -> dict[str, float]:
    """Summary metrics for several cutoffs merged into one dict ("P@5", "Rmicro@5", "NDCG@10", ...)."""
    out: dict[str, float] = {}
    for k in ks:
        out.update(user_metrics(ranked, truth, k).summary())
    return out


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (ddof=1; 0 for a single value) over seeds."""
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0
