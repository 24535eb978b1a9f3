"""Rating prediction speed, measured in one run: what the numpy export of the surprise models and the packed LM
rating pass buy.

    python -m benchmarks.ratings [--data-dir ../shared/data] [--gguf PATH] [--targets 20] [--history 30]

1. Biased MF on ML-100K (random 20 % test): surprise's own `algo.predict(u, i)` per test pair vs our vectorised
   `BiasedMF.predict` over all pairs (same fitted parameters; the largest difference is printed).
2. The LM rating path for one user: naive (one full forward pass of history + target line per target) vs
   `LMRatingScorer.score` (history encoded once, all target lines packed into one row). Prints the speed-up and the
   largest probability difference.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from retrieval.datasets import DataLocator, load_dataset  # noqa: E402
from retrieval.rating_models import BiasedMF, to_surprise_trainset  # noqa: E402


def bench_mf(ds) -> None:
    import surprise

    r = ds.ratings
    test = np.random.default_rng(0).random(len(r)) < 0.2
    tr = r.subset(~test)
    ours = BiasedMF(seed=0).fit(tr, len(ds.catalog))
    algo = surprise.SVD(biased=True, random_state=0, **ours.params).fit(to_surprise_trainset(tr, ours.scale))
    u, i = r.user[test], r.item[test]
    t0 = time.perf_counter()
    theirs = np.array([algo.predict(int(a), int(b)).est for a, b in zip(u, i)])
    t_loop = time.perf_counter() - t0
    t0 = time.perf_counter()
    mine = ours.predict(u, i)
    t_vec = time.perf_counter() - t0
    print(f"biased MF, {len(u):,} test pairs: surprise predict loop {t_loop:.3f} s, vectorised {t_vec * 1e3:.1f} ms "
          f"→ {t_loop / t_vec:.0f}x; max |Δ| = {np.abs(theirs - mine).max():.2e}")


def bench_lm(ds, gguf: Path, cache_dir: Path, n_targets: int, n_history: int) -> None:
    import torch

    from retrieval.rating_lm import LMRatingScorer

    scorer = LMRatingScorer.from_pretrained(str(gguf), cache_dir=cache_dir, device="cpu", max_history=n_history)
    r = ds.ratings
    u = int(np.argmax(np.bincount(r.user)))  # the most active user: enough history and targets
    mine = np.flatnonzero(r.user == u)
    mine = mine[np.argsort(r.timestamp[mine], kind="stable")]
    hist = [(ds.catalog.items[int(i)], float(v)) for i, v in zip(r.item[mine[:n_history]], r.rating[mine[:n_history]])]
    targets = [ds.catalog.items[int(i)] for i in r.item[mine[n_history:n_history + n_targets]]]
    scorer.score(hist, targets[:2])  # warm-up: first-call allocations are not what we compare
    t0 = time.perf_counter()
    packed = scorer.score(hist, targets)
    t_packed = time.perf_counter() - t0
    prefix = scorer.history_text(hist)
    t0 = time.perf_counter()
    naive = []
    with torch.inference_mode():
        for t in targets:
            ids = scorer.tokenizer(prefix + scorer.template.describe(t) + scorer.separator)["input_ids"]
            lp = scorer.model(input_ids=torch.tensor([ids])).logits[0, -1].float().log_softmax(-1)
            p = lp[scorer.rating_ids].exp().numpy()
            naive.append(p / p.sum())
    t_naive = time.perf_counter() - t0
    n_tok = len(scorer.tokenizer(prefix)["input_ids"])
    print(f"LM rating path, {len(targets)} targets after a {len(hist)}-item history ({n_tok} tokens): naive "
          f"{t_naive:.1f} s, packed {t_packed:.1f} s → {t_naive / t_packed:.1f}x; "
          f"max |Δp| = {np.abs(np.array(naive) - packed.probs).max():.1e}")


def main(argv=None) -> int:
    default_gguf = Path(os.environ.get("CHATREC_TEST_GGUF_DIR", Path.home() / ".cache/chatrec-ci/models"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--gguf", type=Path, default=default_gguf / "SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "chatrec")
    ap.add_argument("--targets", type=int, default=20)
    ap.add_argument("--history", type=int, default=30)
    args = ap.parse_args(argv)
    ds = load_dataset("ml-100k", DataLocator(data_dir=args.data_dir, allow_download=False, progress=False))
    bench_mf(ds)
    if args.gguf.exists():
        bench_lm(ds, args.gguf, args.cache_dir, args.targets, args.history)
    else:
        print(f"LM rating path skipped: {args.gguf} not found (pass --gguf)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
