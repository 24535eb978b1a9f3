"""Rerank the turn's candidates: LLM (structured, ids restricted to the candidates), LM title scorer, or score order.

The LLM sees a short numbered list (number, title, year, two or three facts) of the best-scored candidates and
answers with numbers only: a grammar-constrained list of a few tokens. The card reasons come from the grounded
templates (explain.py), not from the LLM. The prompt puts everything that does not change first, and the turn's
intro call starts with the same text (see prompts.rank_messages / intro_messages), so a server with a prefix cache
evaluates the candidate list once per turn.

Also the ONCE-style user profile: a short rule-made text from the liked/disliked items and stated wishes,
refreshed only when that evidence changes (the session stores it with a fingerprint of the evidence).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

from pydantic import BaseModel, Field

from retrieval.types import Item, Scored

from . import prompts
from .candidates_turn import CandidateSet
from .llm import LLM, LLMError
from .session import Session

log = logging.getLogger(__name__)

# The LLM chooses among the best-scored k + 3 candidates: a small model reads a short list better than a long one,
# and each line costs ~30 prompt tokens on every turn (SmolLM2's tokenizer); the rest stay as score-order fill.
EXTRA = 3


@dataclass(frozen=True)
class Ranking:
    ids: tuple[str, ...]
    method: str = "score"  # "llm" | "lm" | "cllm" | "score"
    fallback: str | None = None  # why the requested method was not used (an LLMError kind or a message)
    dropped: int = 0  # numbers the LLM returned that were unknown or duplicated


class _RankingAnswer(BaseModel):
    picks: list[int] = Field(default_factory=list)  # candidate numbers, best first


def llm_pool(cands: CandidateSet, k: int) -> tuple[str, ...]:
    """The candidates the LLM chooses from, best-scored first."""
    return cands.ids[:k + EXTRA]


def ranking_schema(n_shown: int, k: int) -> dict:
    """Exactly min(k, n_shown) picks, each one of the numbers 1..n_shown (repeats are dropped by the caller).
    Bare integers: `[2, 1, 3]` is about half the tokens of `["2", "1", "3"]`."""
    n = min(k, n_shown)
    return {
        "type": "object",
        "properties": {
            "picks": {"type": "array", "minItems": n, "maxItems": n,
                      "items": {"type": "integer", "enum": list(range(1, n_shown + 1))}},
        },
        "required": ["picks"],
    }


def candidate_line(n: int, item: Item) -> str:
    """"3. Heat (1995); Action, Crime, Drama; Michael Mann": number, title, year, genres and one name (director,
    author or lead actor): what a short prompt can afford per candidate."""
    facts = [", ".join(item.genres[:3])] if item.genres else []
    facts += list(item.directors[:1]) or list(item.authors[:1]) or list(item.actors[:1])
    return "; ".join([f"{n}. {item.label}", *facts])


def candidate_lines(cands: CandidateSet, k: int) -> list[str]:
    by_id = {c.id: c.item for c in cands.candidates}
    return [candidate_line(n, by_id[i]) for n, i in enumerate(llm_pool(cands, k), 1)]


def score_order(cands: CandidateSet, k: int, fallback: str | None = None) -> Ranking:
    return Ranking(cands.ids[:k], method="score", fallback=fallback)


def fill(chosen: Sequence[str], cands: CandidateSet, k: int) -> tuple[str, ...]:
    """Chosen ids first, then the best-scored remaining candidates up to k."""
    out = list(dict.fromkeys(chosen))[:k]
    for i in cands.ids:
        if len(out) >= k:
            break
        if i not in out:
            out.append(i)
    return tuple(out)


def llm_rerank(llm: LLM, cands: CandidateSet, k: int, *, profile: str, request: str, lang: str,
               max_tokens: int | None = None) -> Ranking:
    """The LLM picks k of the llm_pool candidates by number; any failure → score order with the reason."""
    shown = llm_pool(cands, k)
    if not shown:
        return score_order(cands, k)
    n = min(k, len(shown))
    msgs = prompts.rank_messages(lang, n, profile, request, candidate_lines(cands, k))
    try:
        # Schema enforcement is ours below: a partly valid answer keeps its valid picks.
        # {"picks": [3, 1, ...]} is ~2 tokens per pick plus ~8 of JSON; the schema's maxItems ends it anyway.
        budget = max_tokens or 3 * n + 16
        ans = llm.structured(msgs, ranking_schema(len(shown), k), _RankingAnswer, max_tokens=budget,
                             check_schema=False)
    except LLMError as e:
        log.info("LLM rerank failed (%s): score order", e.kind)
        return score_order(cands, k, fallback=e.kind)
    chosen: list[str] = []
    dropped = 0
    for num in ans.picks:
        item_id = shown[num - 1] if 1 <= num <= len(shown) else None
        if item_id is None or item_id in chosen:
            dropped += 1
            continue
        chosen.append(item_id)
    if not chosen:
        return score_order(cands, k, fallback="bad_output")
    return Ranking(fill(chosen[:k], cands, k), "llm", None, dropped)


def lm_rerank(scorer, cands: CandidateSet, k: int, history_titles: Sequence[str]) -> Ranking:
    """LMRecSys title scoring (retrieval.title_scorer.rerank); any failure → score order."""
    from retrieval.title_scorer import rerank as title_rerank

    if not cands.candidates:
        return score_order(cands, k)
    if scorer is None:
        return score_order(cands, k, fallback="config")
    titles = {c.id: c.item.title for c in cands.candidates}
    try:
        out: Scored = title_rerank(scorer, list(history_titles), cands.scored(), titles)
    except Exception as e:  # a model failure must not break the turn; the reply says score order was used
        log.warning("LM title rerank failed: %s: %s", type(e).__name__, e)
        return score_order(cands, k, fallback="unavailable")
    return Ranking(out.ids[:k], method="lm")


def cllm_rerank(model, cands: CandidateSet, k: int, liked_ids: Sequence[str]) -> Ranking:
    """CLLM4Rec (retrieval.cllm4rec.CLLMRecommender): one forward pass over the liked ids scores the candidates.

    Candidates the model has no token for (books, items newer than the model) follow in score order. A missing
    model or any failure → score order with the reason; no candidate known → plain score order."""
    if not cands.candidates:
        return score_order(cands, k)
    if not hasattr(model, "rank_candidates"):  # None, or another mode's model
        return score_order(cands, k, fallback="config")
    try:
        out: Scored = model.rank_candidates(list(liked_ids), list(cands.ids))
    except Exception as e:  # a model failure must not break the turn; the reply says score order was used
        log.warning("CLLM4Rec rerank failed: %s: %s", type(e).__name__, e)
        return score_order(cands, k, fallback="unavailable")
    if not out.ids:
        return score_order(cands, k)
    allowed = set(cands.ids)
    known = [i for i in out.ids if i in allowed]  # the model only ever reorders what it was given
    return Ranking(fill(known[:k], cands, k), method="cllm")


# ---------------------------------------------------------------------------------------------------------------
# ONCE-style profile

_PROFILE_LABELS = {"liked": "Likes ", "genres": "favours ", "disliked": "dislikes ", "wishes": "asked for "}


def rule_profile(session: Session, lookup: Callable[[str], Item | None]) -> str:
    """The profile the LLM prompts show. English in both languages, like the prompts' own words: Hangul costs a small
    model ~3 tokens a syllable; the wishes stay as the user's language put them."""
    liked = [it for it in (lookup(i) for i in session.liked) if it is not None]
    disliked = [it for it in (lookup(i) for i in session.disliked) if it is not None]
    genres: dict[str, int] = {}
    for it in liked:
        for g in it.genres:
            genres[g] = genres.get(g, 0) + 1
    top = [g for g, _ in sorted(genres.items(), key=lambda kv: -kv[1])[:3]]
    fields = (("liked", [it.title for it in liked[-5:]]), ("genres", top),
              ("disliked", [it.title for it in disliked[-3:]]), ("wishes", list(session.wishes[-4:])))
    parts = [_PROFILE_LABELS[key] + ", ".join(values) for key, values in fields if values]
    return "; ".join(parts) + ("." if parts else "")


def refresh_profile(session: Session, lookup: Callable[[str], Item | None]) -> None:
    """Update session.profile when its evidence changed. Made by rules: a summary by the LLM would cost a round trip
    in the turn, and the rule text already says everything the ranking prompt can use."""
    key = session.evidence_key()
    if session.profile and session.profile_key == key:
        return
    session.profile = rule_profile(session, lookup)
    session.profile_key = key
