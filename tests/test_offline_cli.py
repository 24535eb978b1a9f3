"""The offline harness: seen items never come back, setups parse, and the CLI writes a report with plots."""
from __future__ import annotations

import json

import numpy as np
import pytest

from chatrec.eval import offline
from chatrec.eval.offline import ALSSetup, GeneratorSpec, rank
from chatrec.eval.protocols import chatrec_split
from retrieval.types import Catalog, Item, Ratings
from tests.conftest import SHARED_DATA, requires_data


def _tiny_split():
    rng = np.random.default_rng(0)
    n_users, n_items = 30, 40
    u = np.repeat(np.arange(n_users), 15)
    i = np.concatenate([rng.choice(n_items, 15, replace=False) for _ in range(n_users)])
    r = rng.integers(1, 6, size=len(u)).astype(np.float32)
    ratings = Ratings(u, i, r, np.arange(len(u)), tuple(f"u{k}" for k in range(n_users)))
    cat = Catalog([Item(id=f"t:{k}", title=f"M{k}") for k in range(n_items)], name="tiny")
    return chatrec_split(ratings, cat, n_users=8, seed=0)


@pytest.mark.parametrize("name", ["popularity", "itemknn", "als"])
def test_rank_never_returns_training_items_even_low_rated(name):
    split = _tiny_split()
    # ALS trained on ratings ≥ 4 only: its own filter misses the user's low ratings, rank() must drop them
    spec = GeneratorSpec(name, als=ALSSetup(factors=4, iterations=3, min_rating=4.0), knn_min_rating=4.0)
    ranked = rank(spec.build(split, seed=0), split, 10)
    assert ranked.shape == (8, 10)
    seen = split.seen()
    for row, u in zip(ranked, split.users):
        assert not set(row.tolist()) & set(seen[u].indices.tolist())
        valid = row[row >= 0]
        assert len(valid) == len(set(valid.tolist()))


def test_als_setup_from_json(tmp_path):
    s = ALSSetup.from_json('{"factors": 8, "regularization": 30, "confidence": "linear"}')
    assert (s.factors, s.regularization, s.confidence) == (8, 30, "linear")
    p = tmp_path / "best.json"
    p.write_text(json.dumps({"objective": "NDCG@5", "als": {"alpha": 5.0, "min_rating": 4.0}}))
    assert ALSSetup.from_json(str(p)) == ALSSetup(alpha=5.0, min_rating=4.0)
    with pytest.raises(ValueError, match="unknown ALS setting"):
        ALSSetup.from_json('{"factor": 8}')


def test_cli_rejects_unknown_generator(capsys):
    assert offline.main(["--generators", "svd"]) == 2
    assert "unknown generator" in capsys.readouterr().err


@requires_data("ml-100k")
def test_cli_chatrec_smoke(tmp_path, capsys):
    out = tmp_path / "report"
    rc = offline.main(["--dataset", "ml-100k", "--protocol", "chatrec", "--seeds", "1", "--generators", "popularity",
                       "--data-dir", str(SHARED_DATA), "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| ml-100k | popularity |" in printed and "LightGCN (paper)" in printed
    text = (out / "report.md").read_text()
    assert "P@5" in text and "R@5 (micro)" in text
    assert (out / "chatrec-metrics.png").stat().st_size > 1000
    assert list(out.glob("*.png"))
