"""`chatrec-eval cllm4rec`: CLLM4Rec (soft user/item tokens in a small LM) against Popularity, item-kNN and tuned ALS.

Protocol: the Chat-REC user split (`protocols.chatrec_split`) over every eligible user — for each user with ≥ 5
liked (≥ 4 stars) items, a seeded random 20 % of the liked items is held out; everything else trains. Every
method ranks the whole catalog minus the user's training items; Recall and NDCG at 10 and 20, mean over users with
the standard error over users, and the paired NDCG@20 difference against ALS.

    chatrec-eval cllm4rec --dataset ml-100k --model ~/.cache/chatrec-ci/models/SmolLM2-135M-Instruct.Q4_1.gguf
    chatrec-eval cllm4rec ... --ablation            # + no content LM, time order, unfrozen top blocks (seed 0)
    chatrec-eval cllm4rec ... --save models/cllm    # keep the seed-0 model for `app.py --rerank cllm`

Writes report.md with a training-curve PNG under --out. Monitoring NDCG@20 per fine-tuning epoch is computed on
test users and only drawn: nothing is chosen with it.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from chatrec.settings import from_env
from retrieval.candidates import ItemKNNConfig, topk_rows
from retrieval.cllm4rec import CLLMConfig, CLLMRecommender, build_training_data, train_cllm
from retrieval.datasets import DataLocator, load_dataset

from .metrics import user_metrics
from .offline import DEFAULT_ALS, TUNED_ALS, GeneratorSpec, rank
from .protocols import LIKED, Split, chatrec_split
from .report import Report, markdown_table

log = logging.getLogger(__name__)

KS = (10, 20)
METRICS = ("R@10", "NDCG@10", "R@20", "NDCG@20")
MONITOR_USERS = 200


@dataclass
class MethodResult:
    name: str
    per_user: dict[str, np.ndarray]  # metric → per-user values (aligned with the split's users)
    seconds: float = 0.0
    notes: str = ""

    def mean_se(self, metric: str) -> tuple[float, float]:
        v = self.per_user[metric]
        return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0


def per_user_metrics(ranked: np.ndarray, split: Split) -> dict[str, np.ndarray]:
    out = {}
    for k in KS:
        m = user_metrics(ranked, split.truth, k)
        out[f"R@{k}"], out[f"NDCG@{k}"] = m.recall, m.ndcg
    return out


def eligible_users(split_source, liked: float = LIKED, min_liked: int = 5) -> int:
    r = split_source.ratings
    return int((np.bincount(r.user[r.rating >= liked], minlength=r.n_users) >= min_liked).sum())


def rank_cllm(rec: CLLMRecommender, data, split: Split, users: np.ndarray | None = None, k: int = 20,
              progress: bool = False) -> np.ndarray:
    """Top-k catalog rows for the split's users (or a subset of rows into split.users), seen items excluded."""
    idx = np.arange(len(split.users)) if users is None else users
    urows = split.users[idx]
    scores = rec.score_histories([data.user_items[int(u)] for u in urows], [int(u) for u in urows],
                                 progress=progress)
    seen = split.seen()[urows]
    for i in range(len(urows)):
        scores[i, seen.indices[seen.indptr[i]:seen.indptr[i + 1]]] = -np.inf
    rows, _ = topk_rows(scores, k)
    return rows


def train_and_rank(name: str, backbone_loader, ds_catalog, split: Split, cfg: CLLMConfig, *, monitor: bool,
                   progress: bool = True):
    """Train one CLLM4Rec on the split's training ratings; returns (MethodResult, TrainLog, recommender)."""
    lm = backbone_loader()
    text_size = lm.model.get_input_embeddings().num_embeddings
    data = build_training_data(split.train, ds_catalog, text_size, min_rating=cfg.min_rating, seed=cfg.seed)
    sample = np.sort(np.random.default_rng(123).choice(len(split.users), size=min(MONITOR_USERS, len(split.users)),
                                                       replace=False))
    sub_truth = tuple(split.truth[int(i)] for i in sample)

    def on_epoch(model, info):
        if not monitor:
            return None
        rec = CLLMRecommender.from_training(model, lm.tokenizer, cfg)
        ranked = rank_cllm(rec, data, split, sample)
        return {"monitor_ndcg20": float(user_metrics(ranked, sub_truth, 20).ndcg.mean())}

    load0 = os.getloadavg()[0]
    model, tlog = train_cllm(lm.model, lm.tokenizer, data, cfg, progress=progress, on_epoch=on_epoch)
    load1 = os.getloadavg()[0]
    rec = CLLMRecommender.from_training(model, lm.tokenizer, cfg, {"dataset": split.catalog.name,
                                                                     "source": lm.source})
    t0 = time.time()
    ranked = rank_cllm(rec, data, split, progress=progress)
    t_rank = time.time() - t0
    res = MethodResult(name, per_user_metrics(ranked, split), tlog.seconds["total"],
                       f"train {tlog.seconds['total']:.0f} s, rank {t_rank:.0f} s, load avg {load0:.1f}→{load1:.1f}")
    return res, tlog, rec


# --- report pieces -----------------------------------------------------------------------------------------------

def results_rows(results: list[MethodResult], ref: MethodResult | None) -> list[list]:
    rows = []
    for r in results:
        cells = [r.name]
        for m in METRICS:
            mean, se = r.mean_se(m)
            cells.append(f"{mean:.4f} ± {se:.4f}")
        if ref is not None and r is not ref:
            d = r.per_user["NDCG@20"] - ref.per_user["NDCG@20"]
            cells.append(f"{d.mean():+.4f} ± {d.std(ddof=1) / np.sqrt(len(d)):.4f}")
        else:
            cells.append("")
        rows.append(cells)
    return rows


def curve_figure(tlogs: dict[str, object]):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for ci, (name, tl) in enumerate(tlogs.items()):
        color = f"C{ci}"
        for phase in ("collab", "content"):
            v = np.array([v for p, _, v in tl.steps if p == phase])
            if not len(v):
                continue
            w = max(1, len(v) // 40)  # a running mean: batches differ a lot in difficulty
            axes[0].plot(np.arange(w, len(v) + 1), np.convolve(v, np.ones(w) / w, mode="valid"), color=color,
                         ls="-" if phase == "collab" else ":", label=f"{name} ({phase})")
        ep = [e for e in tl.epochs if e["phase"] == "finetune"]
        axes[1].plot([e["epoch"] for e in ep], [e["loss"] for e in ep], "o-", color=color, label=name)
        ep = [e for e in ep if "monitor_ndcg20" in e]
        if ep:
            axes[2].plot([e["epoch"] for e in ep], [e["monitor_ndcg20"] for e in ep], "o-", color=color, label=name)
    axes[0].set_title("pretraining loss (solid: collaborative, dotted: content)")
    axes[0].set_xlabel("batch of its kind")
    axes[1].set_title("fine-tuning loss (mean multinomial NLL per user)")
    axes[2].set_title(f"NDCG@20 after each fine-tuning epoch\n({MONITOR_USERS} test users, monitoring only)")
    axes[1].set_xlabel("fine-tuning epoch")
    axes[2].set_xlabel("fine-tuning epoch")
    for ax in axes:
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# --- CLI ----------------------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    d = CLLMConfig()
    p = argparse.ArgumentParser(prog="chatrec-eval cllm4rec", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="ml-100k", choices=("ml-100k", "ml-1m", "ml-latest-small"))
    p.add_argument("--model", default=None, help="backbone: folder, .gguf file or cached id (default: settings "
                   "scorer_model / CHATREC_SCORER_MODEL)")
    p.add_argument("--model-file", default=None, help="GGUF file name inside --model")
    p.add_argument("--seeds", type=int, default=1, help="splits 0..N-1 (each trains its own model)")
    p.add_argument("--users", type=int, default=0, help="evaluated users per split (0 = every eligible user)")
    p.add_argument("--layers", type=int, default=d.layers, help="keep the first N blocks of the backbone (0 = all)")
    p.add_argument("--train-layers", type=int, default=d.train_layers, help="top blocks that train (0 = frozen)")
    p.add_argument("--pretrain-epochs", type=int, default=d.pretrain_epochs)
    p.add_argument("--finetune-epochs", type=int, default=d.finetune_epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--max-items", type=int, default=d.max_items)
    p.add_argument("--content-tokens", type=int, default=d.content_tokens)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--backbone-lr", type=float, default=d.backbone_lr)
    p.add_argument("--tie", type=float, default=d.tie)
    p.add_argument("--targets", choices=("masked", "all"), default=d.targets)
    p.add_argument("--min-rating", type=float, default=LIKED, help="ratings ≥ this are the model's interactions")
    p.add_argument("--no-content", action="store_true", help="no content LM (and no tie regulariser)")
    p.add_argument("--time-order", action="store_true", help="items in time order instead of soft (shuffled)")
    p.add_argument("--no-text-init", action="store_true", help="random soft-token init instead of title tokens")
    p.add_argument("--no-autocast", action="store_true", help="float32 instead of bfloat16 autocast")
    p.add_argument("--ablation", action="store_true",
                   help="also train: no content LM, time order, and frozen↔unfrozen top blocks (seed 0)")
    p.add_argument("--ablation-unfrozen", type=int, default=2,
                   help="blocks trained in the unfrozen ablation arm when the main run is frozen")
    p.add_argument("--no-monitor", action="store_true", help="skip the per-epoch monitoring NDCG")
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--save", type=Path, default=None, help="save the seed-0 model here (for --rerank cllm)")
    p.add_argument("--out", type=Path, default=Path("reports/cllm4rec"))
    return p


def config_from(args) -> CLLMConfig:
    return CLLMConfig(
        layers=args.layers or None, train_layers=args.train_layers, content=not args.no_content,
        soft_order=not args.time_order, pretrain_epochs=args.pretrain_epochs, finetune_epochs=args.finetune_epochs,
        batch_size=args.batch_size, max_items=args.max_items, content_tokens=args.content_tokens, lr=args.lr,
        backbone_lr=args.backbone_lr, tie=args.tie, targets=args.targets, min_rating=args.min_rating,
        text_init=not args.no_text_init, autocast=not args.no_autocast, device=args.device)


def ablation_arms(cfg: CLLMConfig, unfrozen: int) -> list[tuple[str, CLLMConfig]]:
    arms = []
    if cfg.content:
        arms.append(("no content LM", replace(cfg, content=False)))
    if cfg.soft_order:
        arms.append(("no soft ordering (time order)", replace(cfg, soft_order=False)))
    if cfg.train_layers == 0:
        arms.append((f"unfrozen (top {unfrozen} blocks train)", replace(cfg, train_layers=unfrozen)))
    else:
        arms.append(("frozen backbone", replace(cfg, train_layers=0)))
    return arms


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import torch

    from retrieval.lm_loading import load_lm

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = from_env()
    model_src = args.model or settings.scorer_model
    if not model_src:
        print("error: no backbone: pass --model (a folder, .gguf file or cached model id) or set "
              "CHATREC_SCORER_MODEL", file=sys.stderr)
        return 2
    if args.seeds < 1:
        print("error: --seeds must be at least 1", file=sys.stderr)
        return 2
    cache_dir = args.cache_dir or settings.cache_dir
    gguf = args.model_file or (settings.scorer_model_file if not args.model else None)

    def backbone():  # a fresh copy per training run: prepare_backbone truncates and may train it in place
        return load_lm(model_src, gguf_file=gguf, cache_dir=cache_dir, device=args.device,
                       download=settings.allow_download)

    t_start = time.time()
    ds = load_dataset(args.dataset, DataLocator(data_dir=args.data_dir or settings.data_dir, cache_dir=cache_dir,
                                                allow_download=settings.allow_download), with_text=True)
    cfg = config_from(args)
    n_users = args.users or eligible_users(ds)
    als_setup = TUNED_ALS.get((args.dataset, "chatrec"), DEFAULT_ALS)
    als_label = "ALS (tuned)" if (args.dataset, "chatrec") in TUNED_ALS else "ALS (defaults)"
    specs = [("Popularity", GeneratorSpec("popularity")), ("item-kNN", GeneratorSpec("itemknn",
             knn=ItemKNNConfig(k_neighbors=100))), (als_label, GeneratorSpec("als", als=als_setup))]

    per_seed: list[list[MethodResult]] = []
    tlogs: dict[str, object] = {}
    ablation: list[MethodResult] = []
    split0 = None
    for seed in range(args.seeds):
        split = chatrec_split(ds.ratings, ds.catalog, n_users=n_users, seed=seed, name="chatrec-all")
        split0 = split0 or split
        results = []
        for name, spec in specs:
            t0 = time.time()
            gen = spec.build(split, seed)
            results.append(MethodResult(name, per_user_metrics(rank(gen, split, max(KS)), split), time.time() - t0))
        seed_cfg = replace(cfg, seed=seed)
        res, tlog, rec = train_and_rank("CLLM4Rec", backbone, ds.catalog, split, seed_cfg,
                                        monitor=not args.no_monitor)
        results.append(res)
        per_seed.append(results)
        if seed == 0:
            tlogs["CLLM4Rec"] = tlog
            if args.save:
                rec.save(args.save)
                log.info("saved the seed-0 model to %s", args.save)
            if args.ablation:
                ablation.append(res)
                for arm, arm_cfg in ablation_arms(seed_cfg, args.ablation_unfrozen):
                    r, tl, _ = train_and_rank(arm, backbone, ds.catalog, split, arm_cfg, monitor=not args.no_monitor)
                    ablation.append(r)
                    tlogs[arm] = tl
        del rec
        print(markdown_table(["method", *METRICS, "ΔNDCG@20 vs ALS"],
                             results_rows(results, results[2])), flush=True)

    report = write_report(args, argv, ds, cfg, split0, per_seed, ablation, tlogs, als_setup, t_start)
    print(f"\nreport: {report}")
    return 0


def write_report(args, argv, ds, cfg, split0, per_seed, ablation, tlogs, als_setup, t_start) -> Path:
    import torch

    rep = Report(f"CLLM4Rec on {args.dataset}")
    main_log = tlogs["CLLM4Rec"]
    lines = [f"- dataset: {ds.describe()}", *(f"- {n}" for n in split0.notes), *(f"- {n}" for n in ds.notes),
             f"- backbone: `{args.model or 'settings scorer_model'}`; CLLM4Rec config: {cfg.short()}",
             f"- full config: `{asdict(cfg)}`",
             f"- ALS: {als_setup.short()}; item-kNN: 100 neighbours, cosine; Popularity: training counts",
             f"- device {main_log.device}, {main_log.threads} torch threads, {os.cpu_count()} CPUs "
             f"(machine shared with other jobs; the load average is in the notes column)"]
    rep.add("## Set-up\n\n" + "\n".join(lines))
    for seed, results in enumerate(per_seed):
        ref = next(r for r in results if r.name.startswith("ALS"))
        rows = results_rows(results, ref)
        rows = [[*row, f"{r.seconds:.0f} s" + (f"; {r.notes}" if r.notes else "")] for row, r in zip(rows, results)]
        rep.add_table(["method", *(f"{m} ± SE" for m in METRICS), "ΔNDCG@20 vs ALS (paired ± SE)", "time / notes"],
                      rows, caption=f"## Results, split seed {seed} ({len(split0.users)} users; SE over users)")
    if len(per_seed) > 1:
        names = [r.name for r in per_seed[0]]
        rows = []
        for i, n in enumerate(names):
            vals = np.array([[res[i].mean_se(m)[0] for m in METRICS] for res in per_seed])
            rows.append([n, *(f"{vals[:, j].mean():.4f} ± {vals[:, j].std(ddof=1):.4f}" for j in range(len(METRICS)))])
        rep.add_table(["method", *METRICS], rows, caption=f"## Mean ± std over {len(per_seed)} splits")
    t = main_log.seconds
    cuda = f", peak CUDA {main_log.peak_cuda_mib:.0f} MiB" if main_log.peak_cuda_mib else ""
    rep.add(f"## Training cost (seed 0)\n\n- time: set-up {t['setup']:.0f} s, pretraining {t['pretrain']:.0f} s, "
            f"fine-tuning {t['finetune']:.0f} s (monitoring included), total {t['total']:.0f} s "
            f"({t['total'] / 60:.1f} min)\n- peak resident memory of the eval process: {main_log.peak_rss_mib:.0f} MiB"
            f"{cuda}\n- torch {torch.__version__}, {main_log.threads} threads")
    if ablation:
        ref = ablation[0]
        rows = results_rows(ablation, ref)
        rows = [[*row, f"{r.seconds:.0f} s"] for row, r in zip(rows, ablation)]
        rep.add_table(["variant (seed 0)", *METRICS, "ΔNDCG@20 vs full (paired ± SE)", "train time"], rows,
                      caption="## Ablation")
    rep.add_figure(curve_figure(tlogs), "training-curves", "training losses and the monitoring NDCG@20")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "train-logs.json").write_text(json.dumps({n: asdict(tl) for n, tl in tlogs.items()}), encoding="utf-8")
    rep.add(f"Run time {time.time() - t_start:.0f} s. Command: `chatrec-eval cllm4rec "
            f"{' '.join(argv if argv is not None else sys.argv[1:])}`")
    return rep.write(args.out)


if __name__ == "__main__":
    raise SystemExit(main())
