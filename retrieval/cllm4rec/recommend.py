"""Ranking with a trained CLLM4Rec: one forward pass of the recommendation prompt scores the whole catalog.

Ids are strings here; rows exist only in `score_histories`, the batch API the eval harness uses. Items the model
has no token for are never scored (`rank_candidates` returns only known candidates, so a caller can keep the rest
in its own order).
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..types import Scored
from .corpus import length_batches, pad
from .model import CLLM4Rec, load_cllm
from .vocab import Prompter


class CLLMRecommender:
    def __init__(self, model: CLLM4Rec, tokenizer, *, max_items: int = 32, soft_order: bool = True,
                 batch_size: int = 32, autocast: bool = True, meta: dict | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.prompter = Prompter(tokenizer, model.vocab)
        self.max_items = max_items
        self.soft_order = soft_order
        self.batch_size = batch_size
        self.autocast = autocast
        self.meta = dict(meta or {})

    @property
    def vocab(self):
        return self.model.vocab

    @property
    def item_ids(self) -> tuple[str, ...]:
        return self.model.vocab.item_ids

    @classmethod
    def load(cls, path: Path | str, device: str | None = None) -> "CLLMRecommender":
        model, tok, meta = load_cllm(path, device=device)
        cfg = meta.get("config", {})
        return cls(model, tok, max_items=int(cfg.get("max_items", 32)), soft_order=bool(cfg.get("soft_order", True)),
                   autocast=bool(cfg.get("autocast", True)), meta=meta)

    @classmethod
    def from_training(cls, model: CLLM4Rec, tokenizer, cfg, meta: dict | None = None) -> "CLLMRecommender":
        """Wrap a freshly trained model; the config travels in `meta` so a saved model prompts the same way."""
        full = {"config": dataclasses.asdict(cfg), **(meta or {})}
        return cls(model, tokenizer, max_items=cfg.max_items, soft_order=cfg.soft_order, autocast=cfg.autocast,
                   meta=full)

    def save(self, path: Path | str) -> Path:
        return self.model.save(path, self.tokenizer, self.meta)

    # -- numeric batch API ------------------------------------------------------------------------------------
    def _shown(self, rows: np.ndarray, seed: int) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) <= self.max_items:
            return rows
        if self.soft_order:  # a set: a fixed random subset, so a run is reproducible
            return rows[np.random.default_rng(seed).permutation(len(rows))[: self.max_items]]
        return rows[-self.max_items:]

    def score_histories(self, histories: Sequence[np.ndarray], users: Sequence[int | None] | None = None, *,
                        progress: bool = False) -> np.ndarray:
        """Logits [n, n_items] (float32) for each history of item rows; `users[i]` is a user row or None
        (anonymous). Items in the history are not masked: the caller decides what is excluded."""
        n = len(histories)
        users = [None] * n if users is None else list(users)
        seqs = [self.prompter.recommendation(users[i], self._shown(histories[i], i)) for i in range(n)]
        out = np.empty((n, self.vocab.n_items), dtype=np.float32)
        batches = length_batches([len(s) for s in seqs], self.batch_size, np.random.default_rng(0))
        dev = self.model.device
        kind = "cuda" if dev.type == "cuda" else "cpu"
        with torch.no_grad(), torch.autocast(kind, dtype=torch.bfloat16, enabled=self.autocast):
            for idx in tqdm(batches, desc="CLLM4Rec scoring", unit="batch", disable=not progress, file=sys.stderr,
                            leave=False):
                out[idx] = self.model.last_logits(pad([seqs[i] for i in idx])).float().cpu().numpy()
        return out

    # -- id API (the app) ----------------------------------------------------------------------------------------
    def scores_for(self, liked_ids: Sequence[str], user_id: str | None = None) -> np.ndarray:
        """Logits over `item_ids` for someone who liked `liked_ids` (unknown ids are skipped)."""
        rows = [r for r in (self.vocab.item_row(i) for i in liked_ids) if r is not None]
        user = self.vocab.user_row(user_id) if user_id is not None else None
        return self.score_histories([np.asarray(rows, dtype=np.int64)], [user])[0]

    def rank_candidates(self, liked_ids: Sequence[str], candidate_ids: Sequence[str],
                        user_id: str | None = None) -> Scored:
        """The known candidates, best first (ties: candidate order). Unknown candidates are left out."""
        known = [(i, r) for i, r in ((c, self.vocab.item_row(c)) for c in dict.fromkeys(candidate_ids))
                 if r is not None]
        if not known:
            return Scored.empty()
        logits = self.scores_for(liked_ids, user_id)
        s = np.array([logits[r] for _, r in known], dtype=np.float32)
        order = np.lexsort((np.arange(len(s)), -s))
        return Scored(tuple(known[j][0] for j in order), s[order])

    def recommend(self, liked_ids: Sequence[str], k: int, exclude: Sequence[str] = (),
                  user_id: str | None = None) -> Scored:
        """Top-k of the whole catalog, never a liked or excluded item."""
        logits = self.scores_for(liked_ids, user_id).astype(np.float64)
        for i in (*liked_ids, *exclude):
            r = self.vocab.item_row(i)
            if r is not None:
                logits[r] = -np.inf
        order = np.lexsort((np.arange(len(logits)), -logits))
        order = [j for j in order if np.isfinite(logits[j])][:k]
        return Scored(tuple(self.item_ids[j] for j in order), logits[order].astype(np.float32))
