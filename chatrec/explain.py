"""SLIM-style grounded explanations: the user's evidence → a shared attribute → the item.

Evidence is a liked title or a stated wish; the attribute (director, writer/author, actor, keyword, genre, year)
must literally occur in the recommended item's knowledge document (retrieval.documents.document_text, the same
text the knowledge store indexes), so a reason never states a fact the item's document does not hold. Template
reasons need no LLM; LLM-written reasons are accepted only when they pass `validate_llm_reason`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from retrieval.documents import document_text
from retrieval.types import Item

from retrieval.lang import COUNTRY_NAMES, THEME_KEYWORDS, hangul_share

from . import prompts
from .request import TONE_EN, TONE_KO, Wish

_PRIORITY = ("director", "writer", "author", "actor", "keyword", "genre")


@dataclass(frozen=True)
class Explanation:
    reason: str
    source: str  # short card label: "because you liked X" / "matches your request" / "popular"
    evidence: str | None = None  # the liked item id behind it, if any
    attribute: str | None = None  # "director" | "actor" | ... | "wish_genre" | ...


# Tags about formats, releases and viewing lists: true of the item but no theme a reason can rest on.
_NOT_THEMES = {"imax", "3d", "in netflix queue", "netflix queue", "bd-r", "bd-video", "dvd", "dvd-video", "clv",
               "seen", "watched", "seen more than once", "own", "owned", "to see", "mindfuck", "duringcreditsstinger",
               "aftercreditsstinger", "woman director"}


def _keywords(item: Item) -> list[str]:
    kws = list(item.keywords)
    out = kws + [t for t in item.tags if t.lower() not in {k.lower() for k in kws}]
    return [k for k in out if k.lower() not in _NOT_THEMES]


def shared_attributes(src: Item, item: Item, doc: str) -> list[tuple[str, str]]:
    """(kind, value) pairs that `src` and `item` share and that `item`'s document states, strongest first."""
    low = doc.lower()
    out: list[tuple[str, str]] = []

    def add(kind: str, a: Iterable[str], b: Iterable[str]) -> None:
        bset = {x.lower(): x for x in b}
        for x in a:
            if x.lower() in bset and x.lower() in low:
                out.append((kind, bset[x.lower()]))

    add("director", src.directors, item.directors)
    # Cross-domain: a film's writer may be the author of a book (Blade Runner → Philip K. Dick).
    add("writer", src.writers, tuple(item.writers) + tuple(item.authors))
    add("author", src.authors, tuple(item.authors) + tuple(item.writers))
    add("actor", src.actors[:8], item.actors[:8])
    add("keyword", _keywords(src), _keywords(item))
    add("genre", src.genres, item.genres)
    seen: set[tuple[str, str]] = set()
    uniq = [x for x in out if not (x in seen or seen.add(x))]
    return sorted(uniq, key=lambda kv: _PRIORITY.index(kv[0]))


def facts_phrase(item: Item, lang: str, prefer: Sequence[str] = ()) -> str:
    """Genres (the wished-for ones first) and year (or author), as stated in the document."""
    parts = []
    if item.genres:
        genres = [g for g in prefer if g in item.genres] + [g for g in item.genres if g not in prefer]
        parts.append("/".join(prompts.genre_name(g, lang) for g in genres[:3]))
    if item.authors and item.domain == "book":
        parts.append(("by " if lang == "en" else "") + ", ".join(item.authors[:2]) + ("" if lang == "en" else " 작"))
    if item.year:
        parts.append(str(item.year))
    return ", ".join(parts) or item.title


def explain(item: Item, *, lang: str, liked: Sequence[Item], wish: Wish, sources: Sequence[str] = (),
            doc: str | None = None, made_by: Sequence[str] = ()) -> Explanation:
    """The strongest grounded reason for `item`. `made_by`: the people the user asked for who made or star in
    it (from the item data or the packaged people table, both facts the app holds)."""
    doc = doc if doc is not None else document_text(item)
    # The most recent likes are the freshest evidence.
    best: tuple[int, Item, str, str] | None = None
    for src in reversed(list(liked)):
        attrs = shared_attributes(src, item, doc)
        if attrs:
            kind, value = attrs[0]
            rank = _PRIORITY.index(kind)
            if best is None or rank < best[0]:
                best = (rank, src, kind, value)
    src_label = lambda s: prompts.source("liked", lang, src=s.title)  # noqa: E731

    # A strong personal link (same director/writer/actor/theme) beats a wish; a bare genre match does not.
    if best and best[2] != "genre":
        _, src, kind, value = best
        if kind == "genre":
            value = prompts.genre_name(value, lang)
        return Explanation(prompts.reason(kind, lang, src=src.title, attr=value), src_label(src), src.id, kind)

    reason = _wish_reason(item, lang, wish, doc, made_by)
    if reason is not None:
        return reason
    if best:
        _, src, kind, value = best
        return Explanation(prompts.reason("genre", lang, src=src.title, attr=prompts.genre_name(value, lang)),
                           src_label(src), src.id, "genre")
    if liked and ("als" in sources or "similar" in sources):
        src = list(liked)[-1]
        key = "similar_book" if item.domain == "book" else "similar"
        return Explanation(prompts.reason(key, lang, src=src.title, facts=facts_phrase(item, lang)),
                           src_label(src), src.id, key)
    if "search" in sources:
        return Explanation(prompts.reason("wish_text", lang, facts=facts_phrase(item, lang)),
                           prompts.source("wish", lang), None, "wish_text")
    return Explanation(prompts.reason("popular", lang, facts=facts_phrase(item, lang)),
                       prompts.source("popular", lang), None, "popular")


def _wish_reason(item: Item, lang: str, w: Wish, doc: str, made_by: Sequence[str]) -> Explanation | None:
    src = prompts.source("wish", lang)
    low = doc.lower()
    people = [p for p in w.people if not p.exclude and p.name in made_by]
    if people:
        p = people[0]
        key = "wish_director" if p.role == "director" or (p.role == "any" and p.name in item.directors) else "wish_person"
        return Explanation(prompts.reason(key, lang, attr=p.name, facts=facts_phrase(item, lang)), src, None, key)
    wanted = [g for g in w.genres + w.genres_any if g in item.genres and g.lower() in low]
    if wanted:
        label = prompts.join_names([prompts.genre_name(g, lang) for g in wanted], lang)
        return Explanation(prompts.reason("wish_genre", lang, attr=label, facts=facts_phrase(item, lang, wanted)),
                           src, None, "wish_genre")
    origin = [c for c in w.origins if c in item.countries]
    if origin:
        name = COUNTRY_NAMES.get(origin[0], (origin[0], origin[0]))[1 if lang == "ko" else 0]
        return Explanation(prompts.reason("wish_origin", lang, attr=name, facts=facts_phrase(item, lang)), src, None,
                           "wish_origin")
    themes = [t for t in w.themes if any(k in low for k in THEME_KEYWORDS.get(t, ()))]
    if themes:
        return Explanation(prompts.reason("wish_theme", lang, attr=prompts.theme_name(themes[0], lang),
                                          facts=facts_phrase(item, lang)), src, None, "wish_theme")
    preferred = [g for g in w.prefer_genres if g in item.genres and g.lower() in low][:1]
    if preferred and w.tones:
        label = (TONE_KO if lang == "ko" else TONE_EN).get(w.tones[0], w.tones[0])
        return Explanation(prompts.reason("wish_genre", lang, attr=label, facts=facts_phrase(item, lang, preferred)),
                           src, None, "wish_tone")
    rng = w.year_range
    if rng and item.year and rng[0] <= item.year <= rng[1] and str(item.year) in doc:
        return Explanation(prompts.reason("wish_period", lang, attr=w.period_label or f"{rng[0]}–{rng[1]}",
                                          year=item.year), src, None, "wish_period")
    return None


# ---------------------------------------------------------------------------------------------------------------
# Validation of LLM-written text

_PROPER = re.compile(r"\b[A-Z][\w'’-]+(?:\s+(?:[A-Z][\w'’-]+|of|the|and|de|von|van))*\s+[A-Z][\w'’-]+\b")
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")
_MID_CAPITAL = re.compile(r"(?<=[\w,;:] )[A-Z][A-Za-z'’-]+")
# Every genre name in both languages → the catalog genre it stands for.
_GENRE_WORD = {name.lower(): g for g, ko in prompts.GENRE_KO.items() for name in (g, ko)}
_GENRE_RX = re.compile("|".join(rf"(?<![a-z]){re.escape(w)}(?![a-z])" if w.isascii() else re.escape(w)
                                 for w in sorted(_GENRE_WORD, key=len, reverse=True)), re.I)


def validate_llm_reason(text: str, *, lang: str, allowed_text: str,
                        names_items: Callable[[str], set[str]] | None = None,
                        allowed_ids: Iterable[str] = (), titles: Iterable[str] = (),
                        genres: Iterable[str] | None = None) -> bool:
    """Accept an LLM reason only if it is plain text in the user's language, says something beyond the `titles`
    it mentions, every proper name and every year in it occurs in `allowed_text` (the item's document + the user's
    evidence), every genre it names is one of the item's `genres` (when given), and it names no catalog item
    outside `allowed_ids` (`names_items(text)` → ids the resolver finds in it)."""
    t = text.strip()
    if not t or len(t) > 160 or re.search(r"[<>{}]", t):
        return False
    rest = t.lower()
    for title in sorted((x for x in titles if x), key=len, reverse=True):
        rest = rest.replace(title.lower(), " ")
    if len(re.findall(r"[^\W\d_]+", _YEAR.sub(" ", rest))) < 3:
        return False  # small models echo a title ("Fight Club (1999)") as the reason: that explains nothing
    share = hangul_share(t)
    if lang == "ko" and (share is None or share < 0.3):
        return False
    if lang == "en" and share is not None and share >= 0.3:
        return False
    low = allowed_text.lower()
    for m in _PROPER.finditer(t):
        if m.group(0).lower() not in low:
            return False
    for m in _MID_CAPITAL.finditer(t):  # "… in the 19th Century": a capitalised name the document lacks
        if m.group(0).lower() not in low and m.group(0).lower() not in _GENRE_WORD:
            return False
    for y in _YEAR.findall(t):
        if y not in allowed_text:
            return False
    if genres is not None:
        own = set(genres)
        if any(_GENRE_WORD[m.group(0).lower()] not in own for m in _GENRE_RX.finditer(t)):
            return False  # "Star Wars — Comedy/Crime/Drama": a genre the item does not have
    if names_items is not None and names_items(t) - set(allowed_ids):
        return False
    return True
