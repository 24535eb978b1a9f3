"""Rerank the turn's candidates: LLM (structured, ids restricted to the candidates), LM title scorer, or score order.

Also the ONCE-style user profile: a short text summarised from the liked/disliked items and stated wishes,
refreshed only when that evidence changes (the session stores it with a fingerprint of the evidence).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Mapping, Sequence

from pydantic import BaseModel, Field

from retrieval.types import Item, Scored

from . import prompts
from .candidates_turn import CandidateSet, item_facts
from .llm import LLM, LLMError
from .session import Session

log = logging.getLogger(__name__)

REASON_PATTERN = r'^[^"\\\n\r\t<>]{0,100}$'
MAX_LLM_CANDIDATES = 20  # what a small model can read in one prompt; the rest stay as score-order fill


@dataclass(frozen=True)
class Ranking:
    ids: tuple[str, ...]
    reasons: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # LLM-written, unvalidated
    method: str = "score"  # "llm" | "lm" | "cllm" | "score"
    fallback: str | None = None  # why the requested method was not used (an LLMError kind or a message)
    dropped: int = 0  # ids the LLM returned that were unknown or duplicated


class _Pick(BaseModel):
    id: str
    reason: str = ""


class _RankingAnswer(BaseModel):
    picks: list[_Pick] = Field(default_factory=list)


def ranking_schema(ids: Sequence[str], k: int) -> dict:
    n = min(k, len(ids))
    return {
        "type": "object",
        "properties": {
            "picks": {
                "type": "array", "minItems": n, "maxItems": n,
                "items": {
                    "type": "object",
                    "properties": {"id": {"type": "string", "enum": list(ids)},
                                   "reason": {"type": "string", "pattern": REASON_PATTERN}},
                    "required": ["id", "reason"],
                },
            }
        },
        "required": ["picks"],
    }


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


def numbered_candidates(cands: CandidateSet, limit: int = MAX_LLM_CANDIDATES) -> list[str]:
    return [f"{n}. id={c.id} | {c.item.label} | {item_facts(c.item, max_plot=0)}"
            for n, c in enumerate(cands.candidates[:limit], 1)]


def llm_rerank(llm: LLM, cands: CandidateSet, k: int, *, profile: str, request: str, lang: str,
               max_tokens: int | None = None) -> Ranking:
    """The LLM picks k of the (first MAX_LLM_CANDIDATES) candidates; any failure → score order with the reason."""
    shown = cands.ids[:MAX_LLM_CANDIDATES]
    if not shown:
        return score_order(cands, k)
    schema = ranking_schema(shown, k)
    msgs = prompts.rerank_messages(lang, min(k, len(shown)), profile, request[:500], numbered_candidates(cands))
    try:
        # Schema enforcement is ours below: a partly valid answer keeps its valid picks.
        # ~15 tokens of JSON and id plus ~30 of reason per pick; the schema's maxItems ends the answer anyway.
        budget = max_tokens or 48 * min(k, len(shown)) + 24
        ans = llm.structured(msgs, schema, _RankingAnswer, max_tokens=budget, check_schema=False)
    except LLMError as e:
        log.info("LLM rerank failed (%s): score order", e.kind)
        return score_order(cands, k, fallback=e.kind)
    allowed = set(shown)
    chosen: list[str] = []
    reasons: dict[str, str] = {}
    dropped = 0
    for p in ans.picks:
        if p.id not in allowed or p.id in chosen:
            dropped += 1
            continue
        chosen.append(p.id)
        r = re.sub(r"\s+", " ", p.reason).strip()
        if r and re.fullmatch(REASON_PATTERN, r):
            reasons[p.id] = r
    if not chosen:
        return score_order(cands, k, fallback="bad_output")
    return Ranking(fill(chosen[:k], cands, k), MappingProxyType(reasons), "llm", None, dropped)


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

_PROFILE_LABELS = {
    "ko": {"liked": "좋아함: ", "genres": "선호 장르: ", "disliked": "싫어함: ", "wishes": "요청: "},
    "en": {"liked": "Likes ", "genres": "favours ", "disliked": "dislikes ", "wishes": "asked for "},
}


def rule_profile(session: Session, lookup: Callable[[str], Item | None], lang: str) -> str:
    liked = [it for it in (lookup(i) for i in session.liked) if it is not None]
    disliked = [it for it in (lookup(i) for i in session.disliked) if it is not None]
    genres: dict[str, int] = {}
    for it in liked:
        for g in it.genres:
            genres[g] = genres.get(g, 0) + 1
    top = [prompts.genre_name(g, lang) for g, _ in sorted(genres.items(), key=lambda kv: -kv[1])[:3]]
    labels = _PROFILE_LABELS["ko" if lang == "ko" else "en"]
    fields = (("liked", [it.title for it in liked[-5:]]), ("genres", top),
              ("disliked", [it.title for it in disliked[-3:]]), ("wishes", list(session.wishes[-4:])))
    parts = [labels[key] + ", ".join(values) for key, values in fields if values]
    return "; ".join(parts) + ("." if parts else "")


def llm_profile(llm: LLM, session: Session, lookup: Callable[[str], Item | None], lang: str,
                max_tokens: int = 60) -> str:
    """Summarise with the LLM; raises LLMError (the caller keeps the rule profile then)."""
    names = lambda ids: [it.label for it in (lookup(i) for i in ids) if it is not None][-6:]  # noqa: E731
    requests = [t.text[:200] for t in session.history if t.role == "user"]
    text = "".join(llm.stream(prompts.profile_messages(lang, names(session.liked), names(session.disliked),
                                                       session.wishes, requests), max_tokens=max_tokens))
    text = re.sub(r"[<>]", "", re.sub(r"\s+", " ", text)).strip()
    if not text:
        raise LLMError("empty profile", "bad_output")
    return text[:300]


def refresh_profile(session: Session, llm: LLM | None, lookup: Callable[[str], Item | None],
                    lang: str) -> str | None:
    """Update session.profile when its evidence changed. Returns an LLMError kind if the LLM step failed."""
    key = session.evidence_key()
    if session.profile and session.profile_key == key:
        return None
    session.profile = rule_profile(session, lookup, lang)
    session.profile_key = key
    if llm is None or not llm.enabled or not (session.liked or session.wishes):
        return None
    try:
        session.profile = llm_profile(llm, session, lookup, lang)
    except LLMError as e:
        log.info("LLM profile failed (%s); keeping the rule profile", e.kind)
        return e.kind
    return None
