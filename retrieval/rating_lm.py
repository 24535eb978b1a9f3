"""Rating prediction with a causal language model: p("1".."5" | the user's rated history, the item's facts).

The prompt lists the user's ratings one item per line and ends with the target item's line up to its rating:

    Movie ratings by one user, from 1 (hated it) to 5 (loved it).
    Toy Story (1995); Animation, Children, Comedy: 4
    Heat (1995); Action, Crime, Thriller; dir. Michael Mann: 5
    ...
    Fargo (1996); Crime, Drama, Thriller; dir. Joel Coen: ▌

The next-token distribution restricted to the five rating tokens (renormalised) is the LM's belief; its mean is the
raw prediction. Small LMs carry a strong prior over digits whatever the item, so two corrections follow:
  - contextual calibration (Zhao et al. 2021): divide by the distribution for a content-free item ("N/A") after the
    same history, which removes the prompt's own bias towards some digits;
  - `LMCalibrator`: an affine map of (raw mean, calibrated mean) to the rating, fitted on validation ratings.

Cost: the history is encoded once per user (its key/value cache is shared), and all of that user's target lines
are packed side by side into one row under a block-diagonal mask with position ids restarting after the history
(the technique of `title_scorer._exact`), so a user with 20 targets costs about two forward passes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .types import Item

RATINGS = (1, 2, 3, 4, 5)
CONTENT_FREE = "N/A"


class LMRatingError(ValueError):
    """Input the LM rating path cannot handle (a tokenizer without single-token digits, a prompt too long)."""


@dataclass(frozen=True)
class RatingTemplate:
    header: str = "Movie ratings by one user, from 1 (hated it) to 5 (loved it).\n"
    max_genres: int = 3

    def describe(self, item: Item) -> str:
        """One line's item part: label; genres; director (facts from the catalog only)."""
        parts = [item.label]
        if item.genres:
            parts.append(", ".join(item.genres[: self.max_genres]))
        if item.directors:
            parts.append("dir. " + item.directors[0])
        elif item.authors:
            parts.append("by " + item.authors[0])
        return "; ".join(parts)


def display_rating(value: float) -> int:
    """Half stars round half up (4.5 → 5), so the prompt only ever shows the five scored digits."""
    return int(min(5, max(1, math.floor(float(value) + 0.5))))


@dataclass(frozen=True)
class LMRatings:
    """Per target: probabilities over ratings 1..5 (raw and contextually calibrated)."""

    probs: np.ndarray  # [n, 5]
    calibrated: np.ndarray  # [n, 5]

    @property
    def expected(self) -> np.ndarray:
        return self.probs @ np.asarray(RATINGS, dtype=np.float64)

    @property
    def expected_calibrated(self) -> np.ndarray:
        return self.calibrated @ np.asarray(RATINGS, dtype=np.float64)

    def features(self) -> np.ndarray:
        """[n, 2]: the inputs `LMCalibrator` maps to a rating."""
        return np.column_stack([self.expected, self.expected_calibrated])


class LMRatingScorer:
    """Scores the rating tokens with a causal transformers LM. One instance per model; not thread-safe."""

    def __init__(self, model, tokenizer, *, device: str | None = None, max_history: int = 30,
                 template: RatingTemplate = RatingTemplate(), pack_tokens: int = 1024):
        from .lm_loading import pick_device

        if max_history < 0:
            raise LMRatingError("max_history must be >= 0")
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.max_history = int(max_history)
        self.template = template
        self.pack_tokens = int(pack_tokens)
        cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        self.context = int(getattr(cfg, "max_position_embeddings", None) or 2048)
        self.separator, self.rating_ids = self._rating_tokens()
        self.source = getattr(model, "name_or_path", "") or type(model).__name__  # for reports and caches

    @classmethod
    def from_pretrained(cls, model: str, *, gguf_file: str | None = None, cache_dir=None, device: str | None = None,
                        **kw) -> "LMRatingScorer":
        from .lm_loading import load_lm

        lm = load_lm(model, gguf_file=gguf_file, cache_dir=cache_dir, device=device)
        scorer = cls(lm.model, lm.tokenizer, device=device, **kw)
        scorer.source = lm.loaded_from
        return scorer

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _rating_tokens(self) -> tuple[str, list[int]]:
        """How a line ends before its rating, and the five rating token ids, such that tokenising
        "…{sep}{r}" gives exactly ids("…{sep}") + [rating_ids[r]]: the scored token is the one the history shows."""
        probe = "Heat (1995); Action"
        for sep, fmt in ((": ", "{}"), (":", " {}")):
            base = self._ids(probe + sep)
            ids = []
            for r in RATINGS:
                full = self._ids(probe + sep + str(r))
                if full[: len(base)] != base or len(full) != len(base) + 1:
                    break
                ids.append(full[-1])
            if len(ids) == len(RATINGS) and len(set(ids)) == len(RATINGS):
                return sep, ids
        raise LMRatingError("this tokenizer has no single-token ratings 1..5 after ': '; use another model")

    def history_text(self, history: Sequence[tuple[Item, float]]) -> str:
        """The prompt up to the first target: header plus the last `max_history` rated items (oldest first)."""
        keep = list(history)[-self.max_history :] if self.max_history else []
        lines = [f"{self.template.describe(it)}{self.separator}{display_rating(r)}\n" for it, r in keep]
        return self.template.header + "".join(lines)

    def _encode_prefix(self, text: str):
        import torch

        ids = list(self.tokenizer(text, add_special_tokens=True)["input_ids"])
        if len(ids) >= self.context - 32:
            raise LMRatingError(f"the history prompt is {len(ids)} tokens (context {self.context}): lower max_history")
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids], device=self.device), use_cache=True)
        past = tuple((layer.keys, layer.values) for layer in out.past_key_values.layers)
        return len(ids), past

    def _next_logprobs(self, prefix_len: int, past, segments: list[list[int]]) -> np.ndarray:
        """[len(segments), 5] log p(rating token | prefix, segment), segments packed into rows of ≤ pack_tokens."""
        import torch
        from transformers import DynamicCache

        dtype = next(self.model.parameters()).dtype
        neg = torch.finfo(dtype).min
        out = np.zeros((len(segments), len(RATINGS)))
        rating_ids = torch.tensor(self.rating_ids, device=self.device)
        packs, cur, used = [], [], 0
        for s, seg in enumerate(segments):
            if prefix_len + len(seg) >= self.context:
                raise LMRatingError(f"target line {s} does not fit the context after the history: lower max_history")
            if cur and used + len(seg) > self.pack_tokens:
                packs.append(cur)
                cur, used = [], 0
            cur.append(s)
            used += len(seg)
        if cur:
            packs.append(cur)
        with torch.inference_mode():
            for pack in packs:
                ids, pos, seg_of, last = [], [], [], []
                for k, s in enumerate(pack):
                    n = len(segments[s])
                    ids += segments[s]
                    pos += range(prefix_len, prefix_len + n)
                    seg_of += [k] * n
                    last.append(len(ids) - 1)
                S = len(ids)
                seg_t = torch.tensor(seg_of, device=self.device)
                pos_t = torch.tensor(pos, device=self.device)
                see = (seg_t[:, None] == seg_t[None, :]) & (pos_t[None, :] <= pos_t[:, None])
                see = torch.cat([torch.ones(S, prefix_len, dtype=torch.bool, device=self.device), see], dim=1)
                mask = torch.zeros(1, 1, S, prefix_len + S, dtype=dtype, device=self.device)
                mask.masked_fill_(~see, neg)  # additive form: works for both sdpa and eager attention
                cache = DynamicCache(ddp_cache_data=list(past), config=self.model.config)
                logits = self.model(input_ids=torch.tensor([ids], device=self.device), attention_mask=mask,
                                    position_ids=pos_t[None, :], past_key_values=cache, use_cache=True).logits[0]
                lp = logits[torch.tensor(last, device=self.device)].float().log_softmax(-1)
                out[pack] = lp[:, rating_ids].double().cpu().numpy()
        return out

    def score(self, history: Sequence[tuple[Item, float]], targets: Sequence[Item]) -> LMRatings:
        """Rating distributions for `targets` after the user's `history` ((item, rating) pairs, oldest first)."""
        if not targets:
            return LMRatings(np.zeros((0, 5)), np.zeros((0, 5)))
        prefix_len, past = self._encode_prefix(self.history_text(history))
        segs = [self._ids(f"{self.template.describe(t)}{self.separator}") for t in targets]
        segs.append(self._ids(f"{CONTENT_FREE}{self.separator}"))
        lp = self._next_logprobs(prefix_len, past, segs)
        p = _softmax(lp)
        cf = p[-1]
        cal = p[:-1] / np.maximum(cf, 1e-12)
        return LMRatings(p[:-1], cal / cal.sum(axis=1, keepdims=True))


def _softmax(lp: np.ndarray) -> np.ndarray:
    z = np.exp(lp - lp.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class LMCalibrator:
    """rating ≈ w0 + w1·E_raw[r] + w2·E_calibrated[r], least squares (tiny ridge) on validation ratings."""

    weights: np.ndarray
    scale: tuple[float, float] = (1.0, 5.0)

    @classmethod
    def fit(cls, lm: LMRatings, truth: np.ndarray, scale: tuple[float, float] = (1.0, 5.0),
            ridge: float = 1e-3) -> "LMCalibrator":
        truth = np.asarray(truth, dtype=np.float64)
        if len(truth) != len(lm.probs) or len(truth) < 3:
            raise LMRatingError("calibration needs at least 3 scored ratings, one truth value per scored target")
        x = np.column_stack([np.ones(len(truth)), lm.features()])
        w = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ truth)
        return cls(w, scale)

    def predict(self, lm: LMRatings) -> np.ndarray:
        x = np.column_stack([np.ones(len(lm.probs)), lm.features()])
        return np.clip(x @ self.weights, *self.scale)


__all__ = ["LMCalibrator", "LMRatingError", "LMRatingScorer", "LMRatings", "RatingTemplate", "display_rating"]
