"""CLLM4Rec training-step cost on CPU: threads, bfloat16 autocast, the content softmax, depth, frozen vs unfrozen.

    python benchmarks/cllm4rec.py [--gguf PATH] [--data-dir ../shared/data] [--repeats 3]

One process, one run: each setting times `--repeats` optimizer steps of each kind (collaborative, content,
fine-tuning) on the same ML-100K batches (16 users / documents) and prints the best time per step and its ratio
to the reference setting (first row). The machine may be shared: the load average is printed before and after,
and ratios measured together are what to compare, not the absolute seconds.
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

from retrieval.cllm4rec import CLLM4Rec, CLLMConfig, Prompter, build_training_data, prepare_backbone  # noqa: E402
from retrieval.cllm4rec.corpus import pad  # noqa: E402
from retrieval.cllm4rec.train import _content_docs, _pretrain_steps, split_for_finetune  # noqa: E402
from retrieval.datasets import DataLocator, load_dataset  # noqa: E402
from retrieval.lm_loading import load_lm  # noqa: E402

SETTINGS = (  # (label, threads, autocast, layers, train_layers, content sub-vocabulary)
    ("reference: 1 thread, bf16, 4 blocks frozen, sub-vocab", 1, True, 4, 0, True),
    ("2 threads", 2, True, 4, 0, True),
    ("float32", 1, False, 4, 0, True),
    ("full 49k content softmax", 1, True, 4, 0, False),
    ("8 blocks", 1, True, 8, 0, True),
    ("top 2 blocks trained", 1, True, 4, 2, True),
)


def time_steps(label, threads, autocast, layers, train_layers, sub, args, data, tok, model_path):
    import torch

    torch.set_num_threads(threads)
    lm = load_lm(model_path, cache_dir=args.cache_dir, device="cpu")
    cfg = CLLMConfig(layers=layers, train_layers=train_layers, max_items=64, content_tokens=32)
    model = CLLM4Rec(prepare_backbone(lm.model, layers, train_layers), data.vocab)
    params = model.soft_parameters() + model.dense_parameters()
    opt = torch.optim.AdamW(params, lr=1e-3)
    p = Prompter(tok, data.vocab)
    rng = np.random.default_rng(0)
    docs = _content_docs(p, data, cfg)
    used = np.unique(np.concatenate([np.asarray(d[s:]) for d, s in docs]))
    remap = np.full(data.vocab.text_size, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    steps = _pretrain_steps(p, data, list(range(data.vocab.n_users)), docs, cfg, rng, remap)
    collab = next(b for k, b in steps if k == "collab")
    if sub:
        content = next(b for k, b in steps if k == "content")
        rows = torch.as_tensor(used)
    else:
        content = pad([d for d, _ in docs[:16]], [s for _, s in docs[:16]])
        rows = None
    ex = [split_for_finetune(data.user_items[u], cfg, rng) for u in range(16)]
    fine = pad([p.recommendation(u, ex[u][0]) for u in range(16)])
    losses = {"collab": lambda: model.collaborative_loss(collab), "content": lambda: model.content_loss(content, rows),
              "finetune": lambda: model.recommendation_loss(fine, [e[1] for e in ex])}
    out = {}
    for kind, f in losses.items():
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                loss = f()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            best = min(best, time.perf_counter() - t0)
        out[kind] = best
    return out


def main(argv=None) -> int:
    default_gguf = Path(os.environ.get("CHATREC_TEST_GGUF_DIR", Path.home() / ".cache/chatrec-ci/models"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", type=Path, default=default_gguf / "SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "chatrec")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    ds = load_dataset("ml-100k", DataLocator(data_dir=args.data_dir, allow_download=False, progress=False))
    lm = load_lm(args.gguf, cache_dir=args.cache_dir, device="cpu")
    data = build_training_data(ds.ratings, ds.catalog, lm.model.get_input_embeddings().num_embeddings)
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    rows = []
    for s in SETTINGS:
        rows.append((s[0], time_steps(*s, args, data, lm.tokenizer, args.gguf)))
    ref = rows[0][1]
    print(f"\n{'setting':58s} {'collab s':>9s} {'content s':>9s} {'finetune s':>10s}   ratios to the reference")
    for label, t in rows:
        ratios = " ".join(f"{t[k] / ref[k]:5.2f}x" for k in ("collab", "content", "finetune"))
        print(f"{label:58s} {t['collab']:9.2f} {t['content']:9.2f} {t['finetune']:10.2f}   {ratios}")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
