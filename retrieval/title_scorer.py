"""LMRecSys title scoring (Zhang et al. 2021): rank candidate titles by a causal LM's probability after a prompt.

    "A user watched A, B, C, D, E. Now the user may want to watch" + " " + title

Token-level definition (what the known-answer tests check): the prompt is tokenised on its own (with the
tokenizer's special tokens, e.g. Gemma's <bos>), the title as `" " + title` without special tokens, and the two id
lists are concatenated. With title tokens t_0..t_{n-1} (n capped at `max_title_tokens`):

- ``exact`` (O(LN)): token j is scored by log p(t_j | prompt, t_<j); the title's score is the sum (or mean) over j.
  Fast path: the prompt is encoded once; its key/value cache is shared by packs of titles laid side by side in
  one row under a block-diagonal mask (see `_exact`); the last title token is never fed (only predicted), so
  one-token titles cost no forward pass at all.
- ``o1`` (O(1)): one forward pass of the prompt; every title token is scored at the next-token position,
  independently: log p(t_j | prompt). Order-blind, cheap, and the paper's weakest regime.
- ``oL`` (O(L)): L single-token passes shared by all N titles. The model greedily continues the prompt
  (c_1..c_{L-1}); token j is scored by log p(t_j | prompt, c_<j), i.e. position j uses the model's own best guess
  of the preceding title tokens instead of the candidate's. This is the causal-LM analogue of filling L [MASK]
  positions left to right in a masked LM.

Padding never enters a score: `mean` divides by the title's own (truncated) token count.
Calibration (PMI): score(title | prompt) − score(title | neutral prompt); the neutral score is cached per title.

Defined results for awkward input:
- empty history → the neutral prompt is the prompt (so calibrated scores are all 0: nothing to personalise on);
- no candidates → an empty array;
- an empty / whitespace-only title → `TitleScoringError` naming its index;
- a title made only of the tokenizer's unknown token → score −inf (ranked last) and a warning; byte-level BPE
  tokenizers (SmolLM2, GPT-2) have no unknown token, so any text gets a finite score there;
- a title longer than `max_title_tokens` (or than the context left after the prompt) is truncated to its first
  tokens; a prompt that leaves no room for one title token → `TitleScoringError` (shorten the history).
"""
from __future__ import annotations

import logging
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .types import Scored, UnknownItemError

log = logging.getLogger(__name__)

MODES = ("exact", "o1", "oL")
REDUCTIONS = ("sum", "mean")


class TitleScoringError(ValueError):
    """Input the scorer cannot score; the message says what to change."""


@dataclass(frozen=True)
class Template:
    prompt: str  # "{history}" is replaced by the joined history titles
    neutral: str  # the same request without a user, for calibration and for an empty history
    joiner: str = ", "

    def build(self, history_titles: Sequence[str]) -> str:
        hist = [h.strip() for h in history_titles if h and h.strip()]
        if not hist:
            return self.neutral
        return self.prompt.format(history=self.joiner.join(hist))


TEMPLATES: Mapping[str, Template] = {
    "en": Template(
        prompt="A user watched {history}. Now the user may want to watch",
        neutral="A user may want to watch",
    ),
    "ko": Template(
        prompt="사용자는 {history}을(를) 보았습니다. 이제 사용자가 보고 싶어 할 영화는",
        neutral="사용자가 보고 싶어 할 영화는",
    ),
}


def _template(template: str | Template) -> Template:
    if isinstance(template, Template):
        return template
    try:
        return TEMPLATES[template]
    except KeyError:
        raise TitleScoringError(f"unknown template {template!r}; use one of {sorted(TEMPLATES)} or a Template") from None


@dataclass(frozen=True)
class _PromptState:
    ids: tuple[int, ...]
    past: tuple[tuple[Any, Any], ...]  # per layer (keys, values), batch 1
    next_logprobs: Any  # [V] float32 log p(· | prompt)


class TitleScorer:
    """Scores titles with a causal transformers LM. One instance per model; not thread-safe (caches)."""

    def __init__(
        self,
        model,
        tokenizer,
        *,
        mode: str = "exact",
        max_title_tokens: int | None = 10,
        reduce: str = "sum",
        device: str | None = None,
        dtype: Any = None,
        batch_size: int | None = None,
        memory_budget_mb: float | None = None,
        prompt_cache_size: int = 8,
        max_context: int | None = None,
    ):
        import torch

        from .lm_loading import pick_device, pick_dtype

        if mode not in MODES:
            raise TitleScoringError(f"mode must be one of {MODES}, got {mode!r}")
        if reduce not in REDUCTIONS:
            raise TitleScoringError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
        if max_title_tokens is not None and max_title_tokens < 1:
            raise TitleScoringError("max_title_tokens must be >= 1 (or None for the exact title length)")
        if not (hasattr(model, "can_generate") and model.can_generate()):
            raise TitleScoringError(
                f"{type(model).__name__} is not a causal LM; this scorer supports causal LMs only "
                "(load with kind='causal')"
            )
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device, dtype)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.tokenizer = tokenizer
        self.mode = mode
        self.max_title_tokens = max_title_tokens
        self.reduce = reduce
        self.batch_size = batch_size
        if memory_budget_mb is None:
            if self.device.startswith("cuda"):
                free, _ = torch.cuda.mem_get_info(torch.device(self.device))
                memory_budget_mb = 0.5 * free / 2**20
            else:
                memory_budget_mb = 512.0
        self.memory_budget_mb = memory_budget_mb
        cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        # max_context caps the model's window (memory, or a smaller window than the model was trained with).
        self.context = int(getattr(cfg, "max_position_embeddings", None) or 2048)
        if max_context is not None:
            self.context = min(self.context, int(max_context))
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        self._kv_bytes_per_token = 2 * cfg.num_hidden_layers * kv_heads * head_dim * torch.finfo(self.dtype).bits // 8
        self._vocab = int(model.get_output_embeddings().weight.shape[0])
        self._prompts: OrderedDict[str, _PromptState] = OrderedDict()
        self._prompt_cache_size = prompt_cache_size
        self._neutral: dict[tuple, float] = {}
        self._warned_unk = False
        self._title_tok: dict[str, list[int]] = {}
        self._unk = getattr(tokenizer, "unk_token_id", None)

    @classmethod
    def from_pretrained(cls, model: str, *, gguf_file: str | None = None, cache_dir=None, download: bool = False,
                        **kw) -> "TitleScorer":
        """Load through `lm_loading` (path, model id or GGUF file) and wrap."""
        from .lm_loading import load_lm

        lm = load_lm(model, gguf_file=gguf_file, cache_dir=cache_dir, device=kw.get("device"), dtype=kw.get("dtype"),
                     download=download)
        return cls(lm.model, lm.tokenizer, **kw)

    # --- tokenisation --------------------------------------------------------------------------------------

    def prompt_ids(self, prompt: str) -> list[int]:
        return list(self.tokenizer(prompt, add_special_tokens=True)["input_ids"])

    def title_ids(self, titles: Sequence[str], prompt_len: int = 0) -> list[list[int]]:
        """Token ids of `" " + title`, truncated to `max_title_tokens` and to the context left after the prompt."""
        room = self.context - prompt_len
        if room < 1:
            raise TitleScoringError(
                f"the prompt is {prompt_len} tokens, the model's context is {self.context}: shorten the history"
            )
        cap = room if self.max_title_tokens is None else min(self.max_title_tokens, room)
        out = []
        for i, t in enumerate(titles):
            if not isinstance(t, str) or not t.strip():
                raise TitleScoringError(f"candidate title {i} is empty ({t!r}); drop the item or give it a title")
            ids = self._title_tok.get(t)
            if ids is None:  # cached: an eval scores the same catalog titles for every user
                ids = self._title_tok[t] = list(self.tokenizer(" " + t.strip(), add_special_tokens=False)["input_ids"])
            if not ids:
                raise TitleScoringError(f"candidate title {i} ({t!r}) tokenises to nothing; drop the item")
            out.append(list(ids[:cap]))
        return out

    # --- prompt encoding (cached) ----------------------------------------------------------------------------

    def _encode_prompt(self, prompt: str) -> _PromptState:
        import torch

        hit = self._prompts.get(prompt)
        if hit is not None:
            self._prompts.move_to_end(prompt)
            return hit
        ids = self.prompt_ids(prompt)
        if len(ids) >= self.context:
            raise TitleScoringError(
                f"the prompt is {len(ids)} tokens, the model's context is {self.context}: shorten the history"
            )
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids], device=self.device), use_cache=True)
        past = tuple((layer.keys, layer.values) for layer in out.past_key_values.layers)
        state = _PromptState(tuple(ids), past, out.logits[0, -1].float().log_softmax(-1))
        self._prompts[prompt] = state
        if len(self._prompts) > self._prompt_cache_size:
            self._prompts.popitem(last=False)
        return state

    def _cache_for_batch(self, state: _PromptState, batch: int):
        from transformers import DynamicCache

        data = [(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in state.past]
        return DynamicCache(ddp_cache_data=data, config=self.model.config)

    def _tokens_per_pack(self) -> int:
        # Per packed token: its logits (+ a float32 copy for logsumexp) and a rough allowance for activations.
        # The additive mask grows with the square of the pack, so packs stay at most 2048 tokens.
        per_token = self._vocab * 8 + self.model.config.hidden_size * 4 * 16
        return int(max(16, min(2048, self.memory_budget_mb * 2**20 // per_token)))

    # --- per-token log-probs ---------------------------------------------------------------------------------

    def token_logprobs(self, prompt: str, title_ids: Sequence[Sequence[int]], mode: str | None = None,
                       progress: bool = False) -> list[np.ndarray]:
        """log p of every title token under `mode` (default: the scorer's mode), one float64 array per title."""
        mode = mode or self.mode
        state = self._encode_prompt(prompt)
        if mode == "o1":
            lp0 = state.next_logprobs.cpu().numpy().astype(np.float64)
            return [lp0[np.asarray(ids)] for ids in title_ids]
        if mode == "oL":
            steps = self._greedy_steps(state, max((len(t) for t in title_ids), default=0))
            return [np.array([steps[j][tok] for j, tok in enumerate(ids)]) for ids in title_ids]
        if mode == "exact":
            return self._exact(state, title_ids, progress)
        raise TitleScoringError(f"mode must be one of {MODES}, got {mode!r}")

    def _greedy_steps(self, state: _PromptState, n: int) -> list[np.ndarray]:
        import torch

        steps = [state.next_logprobs.cpu().numpy().astype(np.float64)]
        if n <= 1:
            return steps
        cache = self._cache_for_batch(state, 1)
        lp = state.next_logprobs
        with torch.inference_mode():
            for _ in range(n - 1):
                nxt = torch.argmax(lp).view(1, 1)
                out = self.model(input_ids=nxt, past_key_values=cache, use_cache=True)
                cache = out.past_key_values
                lp = out.logits[0, -1].float().log_softmax(-1)
                steps.append(lp.cpu().numpy().astype(np.float64))
        return steps

    def _exact(self, state: _PromptState, title_ids: Sequence[Sequence[int]], progress: bool) -> list[np.ndarray]:
        """Exact log-probs with the prompt encoded once.

        Titles are packed side by side into ONE row after the prompt's cache, with a block-diagonal causal mask
        (each title sees the prompt and its own earlier tokens) and position ids restarting at the prompt's end
        for every title. This is exactly the per-title computation, but the prompt's key/values are neither
        copied nor re-attended once per title, as a batch of B rows over an expanded cache would do (that
        copy cost ~25 % of the time on CPU), and titles of different lengths need no padding.
        """
        import torch
        from tqdm.auto import tqdm

        lp0 = state.next_logprobs
        out: list[np.ndarray | None] = [None] * len(title_ids)
        todo = []
        for i, ids in enumerate(title_ids):
            if len(ids) == 1:  # scored from the prompt's own next-token distribution: no forward pass
                out[i] = np.array([float(lp0[ids[0]])])
            else:
                todo.append(i)
        P = len(state.ids)
        budget, max_titles = self._tokens_per_pack(), self.batch_size or 1 << 30
        packs, cur, used = [], [], 0
        for i in todo:
            fed = len(title_ids[i]) - 1  # the last token is only predicted, never fed
            if cur and (used + fed > budget or len(cur) >= max_titles):
                packs.append(cur)
                cur, used = [], 0
            cur.append(i)
            used += fed
        if cur:
            packs.append(cur)
        neg = torch.finfo(self.dtype).min
        bar = tqdm(total=len(todo), desc="exact title scoring", unit="title", disable=not progress, leave=False)
        with torch.inference_mode():
            for pack in packs:
                fed_ids, pos, seg = [], [], []
                for s_, i in enumerate(pack):
                    ids = title_ids[i]
                    fed_ids += ids[:-1]
                    pos += range(P, P + len(ids) - 1)
                    seg += [s_] * (len(ids) - 1)
                S = len(fed_ids)
                seg_t = torch.tensor(seg, device=self.device)
                pos_t = torch.tensor(pos, device=self.device)
                see = (seg_t[:, None] == seg_t[None, :]) & (pos_t[None, :] <= pos_t[:, None])
                see = torch.cat([torch.ones(S, P, dtype=torch.bool, device=self.device), see], dim=1)
                mask = torch.zeros(1, 1, S, P + S, dtype=self.dtype, device=self.device)
                mask.masked_fill_(~see, neg)  # additive form: works for both sdpa and eager attention
                logits = self.model(
                    input_ids=torch.tensor([fed_ids], device=self.device), attention_mask=mask,
                    position_ids=pos_t[None, :], past_key_values=self._cache_for_batch(state, 1), use_cache=True,
                ).logits[0].float()  # [S, V]
                norm = logits.logsumexp(-1)
                at = 0
                for i in pack:
                    ids = title_ids[i]
                    n = len(ids) - 1
                    tgt = torch.tensor(ids[1:], device=self.device)
                    later = logits[at : at + n].gather(-1, tgt[:, None]).squeeze(-1) - norm[at : at + n]
                    out[i] = np.concatenate([[float(lp0[ids[0]])], later.double().cpu().numpy()])
                    at += n
                bar.update(len(pack))
        bar.close()
        return out  # type: ignore[return-value]

    # --- scores ---------------------------------------------------------------------------------------------

    def _reduce(self, lps: np.ndarray, ids: Sequence[int]) -> float:
        unk = self._unk
        if unk is not None and all(t == unk for t in ids):
            if not self._warned_unk:
                log.warning("a title tokenises to unknown tokens only; it scores -inf (ranked last)")
                self._warned_unk = True
            return -math.inf
        return float(lps.sum() if self.reduce == "sum" else lps.mean())

    def score(
        self,
        history_titles: Sequence[str],
        candidate_titles: Sequence[str],
        *,
        template: str | Template = "en",
        calibrate: bool = False,
        progress: bool = False,
    ) -> np.ndarray:
        """One score per candidate title (higher = more likely), float64, in the candidates' order."""
        tpl = _template(template)
        if len(candidate_titles) == 0:
            return np.zeros(0, dtype=np.float64)
        prompt = tpl.build(history_titles)
        if prompt == tpl.neutral and history_titles:
            log.debug("history has no usable titles; scoring under the neutral prompt")
        state = self._encode_prompt(prompt)
        tids = self.title_ids(candidate_titles, len(state.ids))
        raw = np.array([self._reduce(lp, ids) for lp, ids in
                        zip(self.token_logprobs(prompt, tids, progress=progress), tids)])
        if not calibrate:
            return raw
        return raw - self.neutral_scores(candidate_titles, template=tpl, progress=progress)

    def neutral_scores(self, candidate_titles: Sequence[str], *, template: str | Template = "en",
                       progress: bool = False) -> np.ndarray:
        """Scores under the neutral prompt (the title prior), cached per (title, template, mode, reduce, L)."""
        tpl = _template(template)
        key = (tpl.neutral, self.mode, self.reduce, self.max_title_tokens)
        missing = list(dict.fromkeys(t for t in candidate_titles if (key, t) not in self._neutral))
        if missing:
            state = self._encode_prompt(tpl.neutral)
            tids = self.title_ids(missing, len(state.ids))
            for t, lp, ids in zip(missing, self.token_logprobs(tpl.neutral, tids, progress=progress), tids):
                self._neutral[(key, t)] = self._reduce(lp, ids)
        return np.array([self._neutral[(key, t)] for t in candidate_titles])

    def naive_scores(self, history_titles: Sequence[str], candidate_titles: Sequence[str], *,
                     template: str | Template = "en") -> np.ndarray:
        """Reference exact scores: one full forward pass of prompt + title per title, no cache, no batching."""
        import torch

        tpl = _template(template)
        p = self.prompt_ids(tpl.build(history_titles))
        out = []
        with torch.inference_mode():
            for ids in self.title_ids(candidate_titles, len(p)):
                logits = self.model(input_ids=torch.tensor([p + ids], device=self.device)).logits[0].float()
                lp = logits[len(p) - 1 : len(p) - 1 + len(ids)].log_softmax(-1)
                tok = lp.gather(-1, torch.tensor(ids, device=self.device).unsqueeze(-1)).squeeze(-1)
                out.append(self._reduce(tok.double().cpu().numpy(), ids))
        return np.array(out)


def rerank(
    scorer: TitleScorer,
    history_item_titles: Sequence[str],
    candidates: Scored,
    titles: Mapping[str, str],
    *,
    template: str | Template = "en",
    calibrate: bool = True,
    max_history: int = 5,
    blend: float = 0.0,
) -> Scored:
    """Reorder `candidates` by the LM score of their titles given the user's most recent `max_history` titles.

    `blend` adds `blend ×` the candidate generator's own score (0 = LM only). Ties keep the candidates' order.
    Every candidate id needs a title in `titles` (UnknownItemError otherwise: the caller's catalog and candidate
    list disagree).
    """
    if len(candidates) == 0:
        return Scored.empty()
    missing = [i for i in candidates.ids if i not in titles]
    if missing:
        raise UnknownItemError(f"no title for candidate ids {missing[:5]}; pass titles for every candidate")
    hist = list(history_item_titles)[-max_history:] if max_history > 0 else []
    lm = scorer.score(hist, [titles[i] for i in candidates.ids], template=template, calibrate=calibrate)
    final = lm + blend * candidates.scores.astype(np.float64)
    order = np.argsort(-final, kind="stable")
    return Scored(tuple(candidates.ids[i] for i in order), final[order])
