"""Known-answer tests for the ranking metrics (values computed by hand)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from chatrec.eval.metrics import evaluate_ranking, hit_matrix, mean_std, user_metrics

RANKED = np.array([[1, 2, 3, 4, 5], [7, 8, 9, -1, -1]])
TRUTH = [np.array([2, 5, 9]), np.array([10])]


def test_hits_and_padding():
    h = hit_matrix(RANKED, TRUTH)
    assert h.tolist() == [[False, True, False, False, True], [False] * 5]
    # -1 is padding, never a hit, even when the "truth" list is odd
    assert not hit_matrix(np.array([[-1, -1]]), [np.array([0])]).any()


def test_known_answers_at_5():
    m = user_metrics(RANKED, TRUTH, 5)
    assert m.precision.tolist() == pytest.approx([0.4, 0.0])
    assert m.recall.tolist() == pytest.approx([2 / 3, 0.0])
    dcg = 1 / math.log2(3) + 1 / math.log2(6)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m.ndcg[0] == pytest.approx(dcg / idcg)
    assert m.ndcg[0] == pytest.approx(0.477624, abs=1e-6)
    assert m.mrr.tolist() == pytest.approx([0.5, 0.0])
    assert m.hit.tolist() == [1.0, 0.0]
    s = m.summary()
    assert s["R@5"] == pytest.approx(1 / 3)  # mean of per-user recalls (2/3, 0)
    assert s["Rmicro@5"] == pytest.approx(0.5)  # 2 hits / 4 ground-truth items
    assert s["P@5"] == pytest.approx(0.2)


def test_cutoff_and_ideal_dcg_uses_min_truth_k():
    m = user_metrics(RANKED, TRUTH, 3)
    assert m.precision[0] == pytest.approx(1 / 3)
    assert m.ndcg[0] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3) + 0.5))
    # 3 relevant items but k=2: a perfect top-2 has NDCG 1
    assert user_metrics(np.array([[2, 5]]), [np.array([2, 5, 9])], 2).ndcg[0] == pytest.approx(1.0)


def test_single_target_recall_equals_hit_rate():
    ranked = np.array([[3, 1, 2], [0, 1, 2], [4, 5, 6]])
    truth = [np.array([1]), np.array([0]), np.array([9])]
    s = evaluate_ranking(ranked, truth, [3])
    assert s["R@3"] == s["HR@3"] == s["Rmicro@3"] == pytest.approx(2 / 3)
    assert s["MRR@3"] == pytest.approx((0.5 + 1.0) / 3)
    assert s["NDCG@3"] == pytest.approx((1 / math.log2(3) + 1) / 3)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="no ground-truth"):
        user_metrics(np.array([[1, 2]]), [np.array([], dtype=np.int64)], 2)
    with pytest.raises(ValueError, match="ask the generator for more"):
        user_metrics(np.array([[1, 2]]), [np.array([1])], 5)
    with pytest.raises(ValueError, match="2-D"):
        hit_matrix(np.array([1, 2]), [np.array([1])])
    with pytest.raises(ValueError, match="ground truth for"):
        hit_matrix(np.array([[1, 2]]), [np.array([1]), np.array([2])])


def test_mean_std():
    assert mean_std([0.2, 0.4]) == pytest.approx((0.3, math.sqrt(0.02)))
    assert mean_std([0.5]) == (0.5, 0.0)
