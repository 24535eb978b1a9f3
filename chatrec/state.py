"""Dialogue state: a follow-up refines the last request instead of replacing it.

The session keeps the last effective `Wish`; each turn's request is merged into it:
- a new topic ("I loved X, something like it", "a horror movie", "something completely different") starts
  from a fresh wish, keeping only the domain unless the turn chose another;
- a refinement ("lighter, please", "애니메이션이면 더 좋아", "from the 90s", "not Korean") changes only what
  it names: genres are added (a conjunction), excluded genres removed, the period and the people replaced,
  tones and themes added, the free text replaced when it says something;
- paging ("more", "다른 거") and feedback ("I didn't like X") keep the wish as it is, and so do turns that ask
  for nothing (small talk, "no, I haven't", off-topic lines);
- a request that is neither a new topic nor a refinement ("not my kind of movie at all!") is read as a
  refinement: an unclear line never wipes what the user asked for earlier.
"""
from __future__ import annotations

from .request import Request, Wish

_OPPOSITE_TONES = {"light": {"dark", "sad"}, "dark": {"light", "feel-good", "family"}, "feel-good": {"dark"},
                   "family": {"dark"}, "sad": {"light"}}


def merge(prev: Wish | None, req: Request, *, informative=lambda q: bool(q)) -> Wish:
    new = req.wish
    if prev is None:
        return new.model_copy(deep=True)
    # Nothing asked for (the turn itself keeps the cards for these): the request stands.
    if req.page or req.intent in ("feedback", "chitchat", "off_topic", "greeting", "empty", "emoji", "injection"):
        out = prev.model_copy(deep=True)
        if req.domain_set:
            out.domain = new.domain
        out.exclude_ids = list(dict.fromkeys(out.exclude_ids + new.exclude_ids))
        return out
    if not req.new_topic and not req.refine and _empty(new, informative):
        # "응 그럼 추천해줘" / "so what should I watch next?": nothing new asked, the request stands.
        out = prev.model_copy(deep=True)
        if req.domain_set:
            out.domain = new.domain
        return out
    if req.new_topic:
        out = new.model_copy(deep=True)
        if not req.domain_set:
            out.domain = prev.domain
        return out
    out = prev.model_copy(deep=True)
    if req.domain_set:
        out.domain = new.domain
    if new.genres and _replaces(req):
        out.genres = list(new.genres)
    else:
        out.genres = list(dict.fromkeys(out.genres + new.genres))
    if new.genres_any:
        out.genres_any = list(new.genres_any)
    out.exclude_genres = list(dict.fromkeys(out.exclude_genres + new.exclude_genres))
    out.genres = [g for g in out.genres if g not in out.exclude_genres]
    out.genres_any = [g for g in out.genres_any if g not in out.exclude_genres]
    if new.people:
        out.people = list(new.people)
    if new.soft_people:
        out.soft_people = list(dict.fromkeys(out.soft_people + new.soft_people))
    if new.origins:
        out.origins = list(new.origins)
    out.exclude_origins = list(dict.fromkeys(out.exclude_origins + new.exclude_origins))
    out.origins = [o for o in out.origins if o not in out.exclude_origins]
    if new.year_from is not None or new.year_to is not None:
        out.year_from, out.year_to, out.period_label = new.year_from, new.year_to, new.period_label
    for t in new.tones:
        out.tones = [x for x in out.tones if x not in _OPPOSITE_TONES.get(t, set())]
        if t not in out.tones:
            out.tones.append(t)
    out.themes = list(dict.fromkeys(out.themes + new.themes))
    out.exclude_themes = list(dict.fromkeys(out.exclude_themes + new.exclude_themes))
    out.themes = [t for t in out.themes if t not in out.exclude_themes]
    if informative(new.query):
        out.query = new.query
    out.exclude_ids = list(dict.fromkeys(out.exclude_ids + new.exclude_ids))
    if new.anchors:
        out.anchors = list(new.anchors)
    return out


def _replaces(req: Request) -> bool:
    """ "comedy instead" / "코미디로 바꿔": the new genres replace the old ones instead of narrowing them."""
    return req.replace


def _empty(w: Wish, informative) -> bool:
    return not (w.has_any or w.exclude_ids or informative(w.query))
