"""Per-turn candidate assembly: the Chat-REC narrowing step from thousands of items to the ~20–30 an LLM can read.

Movies: ALS fold-in from the liked ids ∪ knowledge search for the request (cold-start items included) ∪
knowledge "similar to" the liked ids ∪ popularity as the last resort. Books: knowledge `similar_to(domain="book")`
for the liked movies ∪ knowledge search in the book domain ∪ popular books. Lists are fused by weighted reciprocal
rank (scale-free across generators). Liked, disliked, seen and already-shown ids never come back; constraints
(genre, period, excluded genres) filter, and are relaxed with a note only when too few items survive.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from retrieval.types import Catalog, Item, Scored

from .understand import Constraints, without_constraint_words

log = logging.getLogger(__name__)

_RRF_K = 60.0
_WEIGHTS = {"als": 1.0, "search": 1.0, "similar": 0.7, "popular": 0.25, "author": 1.5}
_STOP = set("""a an the me my i you we something anything some any movie movies film films book books novel novels
recommend recommendation recommendations suggest please show give want would like to for of with and or in on
watch see read good great best new one ones more another other else that this is it what should could can
about tonight today can someone somebody anyone who people person fan fans friend my our your their they he
she him her them his""".split())


class PopularityIndex:
    """Items ordered by how many users interacted with them (from the fitted interactions); books by ratings_count."""

    def __init__(self, ids: Sequence[str], counts: Sequence[float]):
        order = np.argsort(-np.asarray(counts, dtype=np.float64), kind="stable")
        self.ids = tuple(ids[i] for i in order)
        self.count = {ids[i]: float(counts[i]) for i in range(len(ids))}

    @classmethod
    def from_generator(cls, generator, catalog: Catalog) -> "PopularityIndex":
        counts = np.diff(generator.interactions.matrix.tocsc().indptr)
        return cls(catalog.ids, counts)

    @classmethod
    def from_books(cls, books: Catalog) -> "PopularityIndex":
        def n(it: Item) -> float:
            try:
                return float(it.extra.get("ratings_count", "0") or 0)
            except ValueError:
                return 0.0
        return cls(books.ids, [n(it) for it in books])

    def top(self, k: int, exclude: set[str], keep=lambda i: True) -> list[str]:
        out = []
        for i in self.ids:
            if i not in exclude and keep(i):
                out.append(i)
                if len(out) >= k:
                    break
        return out


@dataclass(frozen=True)
class Candidate:
    item: Item
    score: float
    sources: tuple[str, ...]  # "als" | "search" | "similar" | "popular"
    fits: bool = True  # satisfies every hard constraint

    @property
    def id(self) -> str:
        return self.item.id


@dataclass(frozen=True)
class CandidateSet:
    candidates: tuple[Candidate, ...]
    notices: tuple[str, ...] = ()  # prompt keys: "fb_knowledge", "relaxed", "fb_books"
    seeds: tuple[str, ...] = ()

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.candidates)

    def scored(self) -> Scored:
        return Scored(self.ids, np.array([c.score for c in self.candidates], dtype=np.float32))


_KO_FILLER = ("추천", "영화", "다른", "더", "거", "것", "좀", "해줘", "해 줘", "줘", "보여", "알려", "별로", "싫", "재밌",
              "재미", "좋아", "봤", "뭐", "볼", "하나", "또", "그", "이", "저", "요", "작품", "책", "소설", "읽", "있",
              "없", "같은", "비슷", "처럼", "해", "주세요", "부탁", "안녕", "뭔가", "아무", "나", "제", "저한테", "한테",
              "사람", "좋아하는", "친구", "누구", "분")
_STOP |= set("""didn don doesn t s m ve ll re d not no really so very too also just still was were is are be been
liked loved enjoyed hated hate love enjoy please thanks thank ok okay now then again maybe similar same kind sort type
vibe vibes stuff things fan fans someone somebody from but""".split())


def informative(query: str) -> bool:
    """Does the free text say anything beyond "recommend me another movie" / "다른 거 추천해줘"?"""
    for w in re.findall(r"\w+", query.lower()):
        if re.search(r"[가-힣]", w):
            if not w.startswith(_KO_FILLER):
                return True
        elif w not in _STOP and len(w) > 1 and not w.isdigit():
            return True
    return False


def descriptive(c: Constraints) -> bool:
    """Does the wish say more than genre and period? "a slow revenge thriller" does, "90s comedy" does not: text
    search on "comedy" would rank films with the word in their title first, not the comedies people mean."""
    return bool(c.moods) or informative(without_constraint_words(c.query))


def _by_search_and_popularity(ids: Sequence[str], pop: "PopularityIndex | None", k: int) -> list[str]:
    """Search hits reordered by their search rank plus their popularity rank among the hits."""
    if pop is None:
        return list(ids[:k])
    by_search = {i: r for r, i in enumerate(ids)}
    by_pop = {i: r for r, i in enumerate(sorted(ids, key=lambda i: -pop.count.get(i, 0.0)))}
    return sorted(ids, key=lambda i: by_search[i] + by_pop[i])[:k]


def _ids(result: Any) -> Scored:
    """Knowledge calls return a SearchResult(scored, notes) or a Scored."""
    return result.scored if hasattr(result, "scored") else result


def item_facts(item: Item, max_plot: int = 140) -> str:
    """One line of facts for the LLM prompt (all from the item's own fields)."""
    parts = []
    if item.genres:
        parts.append("/".join(item.genres))
    if item.directors:
        parts.append("dir. " + ", ".join(item.directors[:2]))
    if item.authors:
        parts.append("by " + ", ".join(item.authors[:2]))
    if item.actors:
        parts.append("with " + ", ".join(item.actors[:3]))
    kw = item.extra.get("keywords", "")
    if kw:
        parts.append("themes: " + ", ".join(k.strip() for k in kw.split(",")[:4]))
    if item.plot:
        p = item.plot.strip()
        parts.append(p[:max_plot] + ("…" if len(p) > max_plot else ""))
    return "; ".join(parts)


class CandidateAssembler:
    def __init__(self, catalog: Catalog, *, als=None, popularity: PopularityIndex | None = None, knowledge=None,
                 books_catalog: Catalog | None = None, book_popularity: PopularityIndex | None = None):
        self.catalog = catalog
        self.books = books_catalog
        self.als = als
        self.popularity = popularity
        self.knowledge = knowledge
        self.book_popularity = book_popularity or (PopularityIndex.from_books(books_catalog) if books_catalog else None)
        # author name → book ids: a film's writer or source author links straight to their books (grounded)
        self._books_by_author: dict[str, list[str]] = {}
        for it in books_catalog or ():
            for a in it.authors:
                self._books_by_author.setdefault(a.lower(), []).append(it.id)

    def item(self, item_id: str) -> Item | None:
        it = self.catalog.get(item_id)
        if it is None and self.books is not None:
            it = self.books.get(item_id)
        return it

    @staticmethod
    def fits(item: Item, c: Constraints) -> bool:
        if c.genres and item.domain == "movie" and not set(c.genres) & set(item.genres):
            return False
        if c.exclude_genres and set(c.exclude_genres) & set(item.genres):
            return False
        rng = c.year_range
        if rng and (item.year is None or not rng[0] <= item.year <= rng[1]):
            return False
        return True

    def assemble(self, *, seeds: Sequence[str], constraints: Constraints, exclude: Iterable[str], domain: str,
                 n: int, n_min: int) -> CandidateSet:
        excl = set(exclude) | set(seeds)
        lists: dict[str, list[str]] = {}
        notices: list[str] = []
        if domain == "book":
            catalog = self.books
            self._book_sources(seeds, constraints, excl, n, lists, notices)
            pop = self.book_popularity
        else:
            catalog = self.catalog
            self._movie_sources(seeds, constraints, excl, n, lists, notices)
            pop = self.popularity

        fused: dict[str, float] = {}
        srcs: dict[str, list[str]] = {}
        for name, ids in lists.items():
            w = _WEIGHTS[name.split(":")[0]]
            for rank, i in enumerate(ids):
                if i in excl or i not in catalog:
                    continue  # never an item outside the catalog or one the user ruled out
                fused[i] = fused.get(i, 0.0) + w / (_RRF_K + rank)
                srcs.setdefault(i, []).append(name.split(":")[0])
        soft = set(constraints.soft_genres)
        for i in fused:
            if soft:
                fused[i] += 0.004 * min(2, len(soft & set(catalog[i].genres)))

        def build(ids_scores, fits) -> list[Candidate]:
            return [Candidate(catalog[i], s, tuple(dict.fromkeys(srcs.get(i, ["popular"]))), fits)
                    for i, s in ids_scores]

        ranked = sorted(fused.items(), key=lambda kv: -kv[1])
        good = [(i, s) for i, s in ranked if self.fits(catalog[i], constraints)]
        out = build(good[:n], True)
        if len(out) < n_min and pop is not None:
            # Popular items that satisfy the constraints before anything that breaks them.
            have = {c.id for c in out} | excl
            extra = pop.top(n - len(out), have, lambda i: self.fits(catalog[i], constraints))
            out += [Candidate(catalog[i], 0.0, ("popular",), True) for i in extra]
        if len(out) < n_min:
            notices.append("relaxed")
            have = {c.id for c in out}
            rest = [(i, s) for i, s in ranked if i not in have]
            out += build(rest[: n - len(out)], False)
            if len(out) < n_min and pop is not None:
                have = {c.id for c in out} | excl
                out += [Candidate(catalog[i], 0.0, ("popular",), False) for i in pop.top(n - len(out), have)]
        return CandidateSet(tuple(out[:n]), tuple(dict.fromkeys(notices)), tuple(seeds))

    # -- sources ---------------------------------------------------------------------------------------------
    def _knowledge(self, fn: str, *args, notices: list[str], **kw) -> list[str]:
        if self.knowledge is None:
            return []
        if kw.get("genres"):
            known = set(getattr(self.knowledge, "genres", ()) or ())
            kw["genres"] = [g for g in kw["genres"] if g in known] or None if known else kw["genres"]
        try:
            return list(_ids(getattr(self.knowledge, fn)(*args, **kw)).ids)
        except (KeyError, ValueError) as e:
            # Not an outage: seeds the store does not index (UnknownItemError) or a filter it cannot apply.
            log.info("knowledge %s gave nothing: %s: %s", fn, type(e).__name__, e)
            return []
        except Exception as e:  # any store failure (server down, bad index): continue on ratings, and say so
            log.warning("knowledge %s failed: %s: %s", fn, type(e).__name__, e)
            notices.append("fb_knowledge")
            return []

    def _movie_sources(self, seeds, c: Constraints, excl, n, lists, notices) -> None:
        movie_seeds = [s for s in seeds if s in self.catalog]
        wide = max(4 * n, 120) if c.has_any else 2 * n
        if movie_seeds and self.als is not None:
            try:
                lists["als"] = list(self.als.recommend_for_items(movie_seeds, wide, exclude=excl).ids)
            except (ValueError, KeyError) as e:  # an id unknown to the model: use the other sources
                log.warning("ALS fold-in failed: %s", e)
        if movie_seeds and self.knowledge is not None:
            lists["similar"] = self._knowledge("similar_to", movie_seeds, n, domain="movie", exclude=tuple(excl),
                                               notices=notices)
        text = c.search_text()
        if descriptive(c):  # genre and period alone are hard filters on the ALS / popularity lists below
            if text and self.knowledge is not None and "fb_knowledge" not in notices:
                lists["search"] = self._knowledge(
                    "search", text, k=wide, domain="movie", genres=list(c.genres) or None, genre_match="any",
                    year_range=c.year_range, exclude=tuple(excl), notices=notices)
        have = sum(len(v) for v in lists.values())
        if self.popularity is not None and (have < n or not movie_seeds):
            keep = (lambda i: self.fits(self.catalog[i], c))
            lists["popular"] = self.popularity.top(n, excl, keep)

    def _book_sources(self, seeds, c: Constraints, excl, n, lists, notices) -> None:
        if self.books is None:
            return
        seed_items = [it for it in (self.item(i) for i in seeds) if it is not None]
        by_author = []
        for it in seed_items:
            for name in (*it.writers, *it.authors, *it.tags):
                by_author += [b for b in self._books_by_author.get(name.lower(), ()) if b not in by_author]
        if by_author:
            lists["author"] = by_author
        if seeds and self.knowledge is not None:
            lists["similar"] = self._knowledge("similar_to", list(seeds), n, domain="book", exclude=tuple(excl),
                                               notices=notices)
        wish = descriptive(c)
        text = c.search_text() if wish or c.has_any else ""
        if not wish and seed_items:
            # No wish in words: describe the latest liked item (the one this request is about; the similarity
            # list covers all of them) by its themes, next to any genre asked for ("해리 포터 같은 판타지 소설").
            last = seed_items[-1]
            kws = [k.strip() for k in last.extra.get("keywords", "").split(",") if k.strip()]
            text = " ".join([text] * bool(text) + kws[:10] + list(last.genres if not c.genres else ()))
        if text and self.knowledge is not None and "fb_knowledge" not in notices:
            found = self._knowledge("search", text, k=n if wish else 4 * n, domain="book", exclude=tuple(excl),
                                    notices=notices)
            # Themes or a bare genre ("판타지 소설"): among the matching books, the ones readers actually know first.
            lists["search"] = found if wish else _by_search_and_popularity(found, self.book_popularity, n)
        if "fb_knowledge" in notices or self.knowledge is None:
            notices.append("fb_books")
        if self.book_popularity is not None and sum(len(v) for v in lists.values()) < n:
            lists["popular"] = self.book_popularity.top(n, excl)
