"""Training CLLM4Rec: mutually regularised pretraining (collaborative + content LM), then the multinomial head.

Pretraining, per epoch: one collaborative sequence per user (`<user> has interacted with <items…>`, items in a
fresh random order every time — "soft" ordering, because a set of ratings has no order — or in time order for
the ablation) interleaved with content documents (`<item> is a movie: Title (year). Genres… Plot…`, `<user>
enjoys Drama titles such as …`); each step adds `tie` × the squared distance between the two embeddings of its
soft tokens. Fine-tuning, per epoch: each user's items are split at random into an input part (the prompt) and a
masked part (`mask_ratio`, at least one item); the loss is the multinomial NLL, under the head's softmax over the
catalog, of all the user's items (`targets="all"`, as the paper's released code does) or of the masked ones only
(`"masked"`, which learned more slowly on ML-100K). A share `anon_rate` of the prompts uses the anonymous user
token, so the model also serves users it never saw (the app's session user).
"""
from __future__ import annotations

import logging
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from .corpus import Batch, TrainingData, length_batches, pad
from .model import CLLM4Rec, prepare_backbone
from .vocab import Prompter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CLLMConfig:
    layers: int | None = 2  # first N transformer blocks of the backbone (None = all)
    train_layers: int = 2  # top blocks that train (0 = frozen backbone: soft tokens, lens and head only)
    content: bool = True  # content LM view and the tie regulariser
    soft_order: bool = True  # shuffle each user's items every time they are shown; False = time order
    pretrain_epochs: int = 2
    finetune_epochs: int = 20
    batch_size: int = 16
    max_items: int = 32  # items per prompt; longer histories show a random subset (time order: the latest)
    content_tokens: int = 32  # document text tokens per content example
    lr: float = 1e-2  # soft tokens and item bias (AdamW)
    backbone_lr: float = 3e-4  # the lens and the trained top blocks, if any
    weight_decay: float = 0.0
    tie: float = 1.0  # λ of the collaborative–content regulariser
    mask_ratio: float = 0.2
    targets: str = "all"  # "all" (input items too, as the paper's code; learns faster) | "masked"
    anon_rate: float = 0.1
    tie_head: bool = True  # the head reads the collaborative item embeddings (paper); False = its own vectors
    text_init: bool = True  # start soft item tokens at the mean embedding of their title's tokens
    min_rating: float = 0.0  # ratings ≥ this are interactions
    autocast: bool = True  # bfloat16 autocast (CPU with AVX512-BF16 / AMX, or CUDA)
    seed: int = 0
    device: str | None = None

    def __post_init__(self):
        if self.targets not in ("masked", "all"):
            raise ValueError(f"targets must be 'masked' or 'all', got {self.targets!r}")
        if not 0 < self.mask_ratio < 1:
            raise ValueError("mask_ratio must be in (0, 1)")
        if self.batch_size < 1 or self.max_items < 1:
            raise ValueError("batch_size and max_items must be positive")

    def short(self) -> str:
        frozen = "frozen" if self.train_layers == 0 else f"top {self.train_layers} trained"
        return (f"{self.layers or 'all'} blocks ({frozen}), content={'on' if self.content else 'off'}, "
                f"order={'soft' if self.soft_order else 'time'}, pre {self.pretrain_epochs} + fine "
                f"{self.finetune_epochs} epochs, batch {self.batch_size}, ≤{self.max_items} items/prompt")


@dataclass
class TrainLog:
    """Loss per step (phase, step, value), epoch summaries, timings (s) and peak memory (MiB)."""

    steps: list[tuple[str, int, float]] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mib: float = 0.0
    peak_cuda_mib: float | None = None
    device: str = "cpu"
    threads: int = 1

    def mean_loss(self, phase: str, last: int = 50) -> float:
        vals = [v for p, _, v in self.steps if p == phase][-last:]
        return float(np.mean(vals)) if vals else float("nan")


def peak_rss_mib() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


# --- sampling of prompts ---------------------------------------------------------------------------------------

def show_items(rows: np.ndarray, cap: int, soft: bool, rng: np.random.Generator) -> np.ndarray:
    """The items a prompt shows: all (shuffled when soft) or, over `cap`, a random subset (soft) / the latest."""
    if soft:
        pick = rng.permutation(len(rows))[:cap]
        return rows[pick]
    return rows[-cap:]


def split_for_finetune(rows: np.ndarray, cfg: CLLMConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(prompt items, target items) for one user: a random `mask_ratio` share (≥ 1) is masked out."""
    n_out = max(1, int(round(cfg.mask_ratio * len(rows))))
    perm = rng.permutation(len(rows))
    masked = np.zeros(len(rows), dtype=bool)
    masked[perm[:n_out]] = True
    inputs = rows[~masked]  # keeps time order for the no-soft-order ablation
    inputs = show_items(inputs, cfg.max_items, cfg.soft_order, rng)
    targets = rows if cfg.targets == "all" else rows[masked]
    return inputs, targets


# --- initialisation ---------------------------------------------------------------------------------------------

def text_init(prompter: Prompter, data: TrainingData, text_embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Item init = mean embedding of the first tokens of its document (title, year, genres); user init = mean of
    their items' inits (anonymous user: mean of all items)."""
    emb = text_embeddings.detach().float()
    items = torch.stack([emb[prompter.text(" " + doc, 12)].mean(0) for doc in data.item_docs])
    users = [items[torch.as_tensor(r)].mean(0) if len(r) else items.mean(0) for r in data.user_items]
    return items, torch.stack([*users, items.mean(0)])


# --- the loop ---------------------------------------------------------------------------------------------------

def _autocast(cfg: CLLMConfig, device: str):
    kind = "cuda" if device.startswith("cuda") else "cpu"
    return torch.autocast(kind, dtype=torch.bfloat16, enabled=cfg.autocast)


def train_cllm(backbone, tokenizer, data: TrainingData, cfg: CLLMConfig = CLLMConfig(), *, progress: bool = True,
               on_epoch: Callable[[CLLM4Rec, dict], dict | None] | None = None) -> tuple[CLLM4Rec, TrainLog]:
    """Train on `data` with the (already loaded) transformers causal LM `backbone`; returns (model, log).

    `on_epoch(model, info)` runs after every fine-tuning epoch (in eval mode) and may return extra numbers for
    the log (the eval harness records a monitoring metric there).
    """
    from ..lm_loading import pick_device

    t_start = time.time()
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    backbone = prepare_backbone(backbone, cfg.layers, cfg.train_layers).to(device=device, dtype=torch.float32)
    prompter = Prompter(tokenizer, data.vocab)
    item_init = user_init = None
    if cfg.text_init:
        item_init, user_init = text_init(prompter, data, backbone.get_input_embeddings().weight)
    model = CLLM4Rec(backbone, data.vocab, item_init=item_init, user_init=user_init,
                     tie_head=cfg.tie_head).to(device)
    _init_bias(model, data)
    users = [u for u in range(data.vocab.n_users) if len(data.user_items[u]) >= 2]
    probe = users[:: max(1, len(users) // cfg.batch_size)][: cfg.batch_size]
    if probe:
        with _autocast(cfg, device):
            model.calibrate_scale(pad([prompter.recommendation(u, show_items(data.user_items[u], cfg.max_items,
                                                                              cfg.soft_order, rng)) for u in probe]))
    groups = [{"params": model.soft_parameters(), "lr": cfg.lr},
              {"params": model.dense_parameters(), "lr": cfg.backbone_lr}]
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    tlog = TrainLog(device=device, threads=torch.get_num_threads())
    tlog.seconds["setup"] = time.time() - t_start

    docs = _content_docs(prompter, data, cfg) if cfg.content else []
    # The content softmax runs over the text tokens the documents use (see CLLM4Rec.content_loss).
    used = np.unique(np.concatenate([np.asarray(d[start:], np.int64) for d, start in docs])) if docs else None
    out_rows = torch.as_tensor(used, device=device) if used is not None else None
    remap = np.full(data.vocab.text_size, -1, dtype=np.int64)
    if used is not None:
        remap[used] = np.arange(len(used))

    # Phase 1: pretraining.
    t0 = time.time()
    for ep in range(cfg.pretrain_epochs):
        model.train()
        steps = _pretrain_steps(prompter, data, users, docs, cfg, rng, remap)
        bar = tqdm(steps, desc=f"CLLM4Rec pretrain {ep + 1}/{cfg.pretrain_epochs}", unit="batch",
                   disable=not progress, file=sys.stderr, leave=False)
        for kind, batch in bar:
            with _autocast(cfg, device):
                main = (model.collaborative_loss(batch) if kind == "collab"
                        else model.content_loss(batch, out_rows))
            loss = main + (cfg.tie * model.tie_loss([batch.ids]) if cfg.content else 0.0)
            _step(opt, loss)
            tlog.steps.append((kind, len(tlog.steps), float(main.detach())))
            bar.set_postfix(loss=f"{float(main.detach()):.3f}")
        tlog.epochs.append({"phase": "pretrain", "epoch": ep + 1, "collab": tlog.mean_loss("collab"),
                            "content": tlog.mean_loss("content"), "seconds": time.time() - t0})
    tlog.seconds["pretrain"] = time.time() - t0

    # Phase 2: fine-tuning the multinomial head.
    t0 = time.time()
    for ep in range(cfg.finetune_epochs):
        model.train()
        examples = []
        for u in users:
            inputs, targets = split_for_finetune(data.user_items[u], cfg, rng)
            who = None if rng.random() < cfg.anon_rate else u
            examples.append((prompter.recommendation(who, inputs), targets))
        batches = length_batches([len(e[0]) for e in examples], cfg.batch_size, rng)
        bar = tqdm(batches, desc=f"CLLM4Rec finetune {ep + 1}/{cfg.finetune_epochs}", unit="batch",
                   disable=not progress, file=sys.stderr, leave=False)
        for idx in bar:
            batch = pad([examples[i][0] for i in idx])
            with _autocast(cfg, device):
                main = model.recommendation_loss(batch, [examples[i][1] for i in idx])
            loss = main + (cfg.tie * model.tie_loss([batch.ids], anchor_content=True) if cfg.content else 0.0)
            _step(opt, loss)
            tlog.steps.append(("finetune", len(tlog.steps), float(main.detach())))
            bar.set_postfix(loss=f"{float(main.detach()):.3f}")
        info = {"phase": "finetune", "epoch": ep + 1, "loss": tlog.mean_loss("finetune", len(batches)),
                "seconds": time.time() - t0}
        if on_epoch is not None:
            model.eval()
            info.update(on_epoch(model, dict(info)) or {})
        tlog.epochs.append(info)
        log.info("CLLM4Rec fine-tune epoch %d: %s", ep + 1, info)
    tlog.seconds["finetune"] = time.time() - t0
    tlog.seconds["total"] = time.time() - t_start
    tlog.peak_rss_mib = peak_rss_mib()
    if device.startswith("cuda"):
        tlog.peak_cuda_mib = torch.cuda.max_memory_allocated() / 2**20
    model.eval()
    return model, tlog


def _step(opt, loss):
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _init_bias(model: CLLM4Rec, data: TrainingData) -> None:
    """The head bias starts at log-popularity: an untrained model then ranks like the popularity baseline."""
    counts = np.bincount(np.concatenate([r for r in data.user_items if len(r)] or [np.zeros(0, np.int64)]),
                         minlength=data.vocab.n_items).astype(np.float64)
    logp = np.log((counts + 1.0) / (counts.sum() + len(counts)))
    with torch.no_grad():
        model.item_bias.copy_(torch.as_tensor(logp - logp.mean(), dtype=torch.float32))


def _content_docs(prompter: Prompter, data: TrainingData, cfg: CLLMConfig) -> list[tuple[list[int], int]]:
    v = data.vocab
    noun = "book" if data.domain == "book" else "movie"
    docs = [prompter.content(v.item_base + i, f" is a {noun}:", doc, cfg.content_tokens)
            for i, doc in enumerate(data.item_docs)]
    docs += [prompter.content(v.user_token(u), " enjoys", doc, cfg.content_tokens)
             for u, doc in enumerate(data.user_docs) if len(data.user_items[u])]
    return docs


def _pretrain_steps(prompter: Prompter, data: TrainingData, users: list[int], docs, cfg: CLLMConfig,
                    rng: np.random.Generator, remap: np.ndarray) -> list[tuple[str, Batch]]:
    """One epoch of collaborative and content batches, interleaved at random."""
    v = data.vocab
    seqs = [prompter.collaborative(u, show_items(data.user_items[u], cfg.max_items, cfg.soft_order, rng))
            for u in users]
    steps = []
    for idx in length_batches([len(s[0]) for s in seqs], cfg.batch_size, rng):
        steps.append(("collab", pad([seqs[i][0] for i in idx], [seqs[i][1] for i in idx],
                                    lambda nxt: nxt - v.item_base)))
    for idx in length_batches([len(d[0]) for d in docs], cfg.batch_size, rng):
        steps.append(("content", pad([docs[i][0] for i in idx], [docs[i][1] for i in idx], remap.__getitem__)))
    order = rng.permutation(len(steps))
    return [steps[i] for i in order]

