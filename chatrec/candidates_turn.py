"""Per-turn candidate assembly: the Chat-REC narrowing step from thousands of items to the ~20–30 an LLM can read.

Movies: ALS fold-in from the liked ids ∪ knowledge search for the request (cold-start items included) ∪
knowledge "similar to" the liked ids ∪ the works of the people asked for ∪ items about the themes asked for ∪
popularity as the last resort. Books: knowledge `similar_to(domain="book")` for the liked movies ∪ knowledge
search in the book domain ∪ popular books. Lists are fused by weighted reciprocal rank (scale-free across
generators). Liked, disliked, seen and already-shown ids never come back, nor items the user asked to leave out.
The wish's hard parts (all of its genres, none of the excluded ones, the period, origin, people, themes) filter,
and are relaxed with a note only when too few items survive; tones weigh (preferred genres up, others down).
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from retrieval import rx
from retrieval.lang import COUNTRY_LANGUAGE, THEME_KEYWORDS, TONE_BY_KEY, informative
from retrieval.people import PeopleIndex
from retrieval.titles import title_key
from retrieval.types import Catalog, Item, Scored

from retrieval.item_stats import ItemStats

from .ranker import FEATURES, RankContext, RankerModel, featurize
from .request import Wish

log = logging.getLogger(__name__)

_RRF_K = 60.0
# A film in Korean is a Korean film even where the production countries are unknown; English says nothing.
_LANGUAGE_HOME = {lang: c for c, lang in COUNTRY_LANGUAGE.items() if lang != "en" and c not in ("MX", "TW")}
_WEIGHTS = {"als": 1.0, "search": 1.0, "similar": 0.7, "popular": 0.25, "author": 1.5, "people": 1.5, "theme": 0.8,
            "recent": 0.25, "new": 0.25}
# With a learned ranker the sources are asked for wider lists (POOL_N per request) and the ranker orders up to
# POOL_CAP of them: a target the weighted sum would put at 300 can still reach the cards.
POOL_N = 150
POOL_CAP = 800
# Pool standard deviations per unit of genre share. 5-fold grouped CV on redial-dev (LambdaRank, redial pools):
# 0 → R@10 .114 / R@50 .271, 0.75 → .118 / .270, 1.5 → .116 / .261; 1.0 keeps Forrest Gump out of "a 90s romcom".
GENRE_PURITY = 1.0
# "New releases": films from the catalog's last NEW_YEARS years. On redial-dev, a third of the targets the pool
# missed were 2015–2018 films with few ratings (Black Panther, Deadpool 2) asked for with no title or genre.
NEW_YEARS = 3
TONE_WEIGHT = 1.0  # pool standard deviations per genre against the tone
# A tone alone ("a sad movie", "something to cheer me up") puts films of its genres first: the pool's standardised
# scores reach 5+ for the blockbusters every vague request would otherwise get.
TONE_ALONE = 100.0


class PopularityIndex:
    """Items ordered by how many users interacted with them (from the fitted interactions); books by ratings_count."""

    def __init__(self, ids: Sequence[str], counts: Sequence[float]):
        self.order = np.argsort(-np.asarray(counts, dtype=np.float64), kind="stable")
        self._by_row = tuple(ids)
        self.ids = tuple(ids[i] for i in self.order)
        self.count = {ids[i]: float(counts[i]) for i in range(len(ids))}

    @classmethod
    def from_generator(cls, generator, catalog: Catalog) -> "PopularityIndex":
        counts = np.diff(generator.interactions.matrix.tocsc().indptr)
        return cls(catalog.ids, counts)

    @classmethod
    def from_books(cls, books: Catalog) -> "PopularityIndex":
        return cls(books.ids, [float(it.rating_count or 0) for it in books])

    def top(self, k: int, exclude: set[str], keep=lambda i: True, allowed: np.ndarray | None = None) -> list[str]:
        """The `k` most popular ids not excluded that `keep` accepts; `allowed` (a mask over the ids as given to
        the constructor, i.e. catalog rows) skips what cannot fit before `keep` is asked."""
        out = []
        rows = self.order if allowed is None or len(allowed) != len(self.order) else self.order[allowed[self.order]]
        for r in rows:
            i = self._by_row[r]
            if i not in exclude and keep(i):
                out.append(i)
                if len(out) >= k:
                    break
        return out


@dataclass(frozen=True)
class Candidate:
    item: Item
    score: float
    sources: tuple[str, ...]  # "als" | "search" | "similar" | "popular" | "people" | "theme" | "author"
    fits: bool = True  # satisfies every hard constraint
    ranks: Mapping[str, int] = field(default_factory=dict)  # position in each source's list (the ranker's input)

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


def descriptive(w: Wish) -> bool:
    """Does the wish say more than genre and period? "a slow revenge thriller" does, "90s comedy" does not: text
    search on "comedy" would rank films with the word in their title first, not the comedies people mean."""
    return any(TONE_BY_KEY[t].search for t in w.tones) or informative(w.query) or bool(w.themes)


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
    if item.keywords:
        parts.append("themes: " + ", ".join(item.keywords[:4]))
    if item.plot:
        p = item.plot.strip()
        parts.append(p[:max_plot] + ("…" if len(p) > max_plot else ""))
    return "; ".join(parts)


@dataclass(frozen=True)
class Pool:
    catalog: Catalog
    fused: dict[str, float]
    sources: dict[str, list[str]]
    ranks: dict[str, dict[str, int]]
    notices: list[str]
    excluded: set[str]


class CandidateAssembler:
    def __init__(self, catalog: Catalog, *, als=None, popularity: PopularityIndex | None = None, knowledge=None,
                 books_catalog: Catalog | None = None, book_popularity: PopularityIndex | None = None,
                 people: PeopleIndex | None = None, stats: ItemStats | None = None,
                 ranker: RankerModel | None = None):
        self.catalog = catalog
        self.stats = stats
        self.book_stats = ItemStats.from_books(books_catalog) if books_catalog is not None else None
        self.ranker = ranker or RankerModel()
        # "Popular lately": the items most rated in the last years of the rating log (not only all-time hits).
        self.recently_popular = PopularityIndex(catalog.ids, stats.recent) if stats is not None else None
        years = [it.year for it in catalog if it.year]
        self.max_year = max(years) if years else 2018
        self.books = books_catalog
        self.als = als
        self.popularity = popularity
        self.knowledge = knowledge
        self.people = people
        self.book_popularity = book_popularity or (PopularityIndex.from_books(books_catalog) if books_catalog else None)
        # author name → book ids: a film's writer or source author links straight to their books (grounded)
        self._books_by_author: dict[str, list[str]] = {}
        for it in books_catalog or ():
            for a in it.authors:
                self._books_by_author.setdefault(a.lower(), []).append(it.id)
        # Genre and year per catalog row as arrays: the wish's genres and period rule out most of a popularity scan
        # at once, before the item-by-item check.
        self._genre_rows: dict[str, np.ndarray] = {}
        for r, it in enumerate(catalog):
            for g in it.genres:
                self._genre_rows.setdefault(g, np.zeros(len(catalog), dtype=bool))[r] = True
        self._years = np.array([it.year or np.nan for it in catalog], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            self._new_rows = self._years >= self.max_year - NEW_YEARS
        # Films sharing a title (King Kong 1933 / 1976 / 2005): to someone who named one, the others are that film.
        self._versions: dict[str, list[str]] = {}
        for it in catalog:
            self._versions.setdefault(title_key(it.title), []).append(it.id)
        # theme → movie ids whose keywords or tags name it ("superhero" is no MovieLens genre)
        self._themes: dict[str, set[str]] = {t: set() for t in THEME_KEYWORDS}
        for it in catalog:
            words = " | ".join([*it.keywords, *it.tags]).lower()
            if not words.strip(" |"):
                continue
            for t, pats in THEME_KEYWORDS.items():
                if any(p in words for p in pats):
                    self._themes[t].add(it.id)
        self._theme_rows: dict[str, np.ndarray] = {}
        for t, ids in self._themes.items():
            self._theme_rows[t] = np.zeros(len(catalog), dtype=bool)
            self._theme_rows[t][[catalog.row(i) for i in ids]] = True

    def item(self, item_id: str) -> Item | None:
        it = self.catalog.get(item_id)
        if it is None and self.books is not None:
            it = self.books.get(item_id)
        return it

    # -- the wish's hard parts -------------------------------------------------------------------------------
    def genres_of(self, item: Item) -> set[str]:
        """An item's genres; a book's come from what its authors write (the book data has none)."""
        if item.genres or item.domain == "movie" or self.people is None:
            return set(item.genres)
        return set(self.people.book_genres(item.authors))

    def fits(self, item: Item, w: Wish, loose_origin: bool = False) -> bool:
        return self.fit_check(w, loose_origin)(item)

    def fit_check(self, w: Wish, loose_origin: bool = False) -> Callable[[Item], bool]:
        """`fits` for one wish, with the wish's sets built once: popularity scans call it on thousands of items."""
        need, any_of, avoid = set(w.genres), set(w.genres_any), set(w.avoid_genres)
        rng = w.year_range
        origins, not_origins = set(w.origins), set(w.exclude_origins)
        people = tuple(w.people)
        themes = [self._themes.get(t, set()) for t in w.themes]
        not_themes = [self._themes.get(t, set()) for t in w.exclude_themes]

        def check(item: Item) -> bool:
            movie = item.domain == "movie"
            if need or any_of or avoid:
                genres = self.genres_of(item)
                if not need <= genres or (any_of and not any_of & genres) or avoid & genres:
                    return False
            if rng and (item.year is None or not rng[0] <= item.year <= rng[1]):
                return False
            if movie and (origins or not_origins):
                # Loose: any production country counts (an English-language film made in India is still Indian).
                origin = set(item.countries) | self.origins_of(item) if loose_origin else self.origins_of(item)
                if (origins and not origin & origins) or origin & not_origins:
                    return False
            for p in people:
                if self._made_by(item, p.name, p.role) == p.exclude:
                    return False
            if movie and themes and not any(item.id in t for t in themes):
                return False
            return not (movie and any(item.id in t for t in not_themes))

        return check

    def allowed_rows(self, w: Wish) -> np.ndarray | None:
        """Movie catalog rows whose genres and year can fit the wish (None: no such constraint). A necessary
        condition only: `fit_check` still decides."""
        if w.domain == "book" or not (w.genres or w.genres_any or w.avoid_genres or w.year_range or w.themes
                                      or w.exclude_themes):
            return None
        none = np.zeros(len(self._years), dtype=bool)
        mask = np.ones(len(self._years), dtype=bool)
        for g in w.genres:
            mask &= self._genre_rows.get(g, none)
        if w.genres_any:
            mask &= np.logical_or.reduce([self._genre_rows.get(g, none) for g in w.genres_any])
        for g in w.avoid_genres:
            mask &= ~self._genre_rows.get(g, none)
        if w.themes:
            mask &= np.logical_or.reduce([self._theme_rows.get(t, none) for t in w.themes])
        for t in w.exclude_themes:
            mask &= ~self._theme_rows.get(t, none)
        if w.year_range:
            with np.errstate(invalid="ignore"):
                mask &= (self._years >= w.year_range[0]) & (self._years <= w.year_range[1])
        return mask

    @staticmethod
    def origins_of(item: Item) -> set[str]:
        """Countries of origin: production countries, or the country whose language the film is in."""
        lang = item.original_language
        if not lang:
            return set(item.countries)
        # Co-producers are not the origin (Blade Runner lists Hong Kong): keep the countries of the film's language.
        out = {c for c in item.countries if COUNTRY_LANGUAGE.get(c) == lang}
        home = _LANGUAGE_HOME.get(lang)
        if home:
            out.add(home)
        return out

    def _made_by(self, item: Item, name: str, role: str) -> bool:
        low = name.lower()
        fields = {"director": item.directors, "actor": item.actors, "writer": item.writers, "author": item.authors}
        own = [x for r, xs in fields.items() if role in ("any", r) for x in xs]
        if any(x.lower() == low for x in own):
            return True
        return self.people is not None and self.people.credited(item.id, name, role)

    def pool(self, *, seeds: Sequence[str], wish: Wish, exclude: Iterable[str], n: int) -> Pool:
        """Every candidate the sources offer for this request, with its rank in each source and the fused score,
        before the wish filters and the cut to `n` (the ranker's input; `assemble` filters and cuts)."""
        excl = set(exclude) | set(seeds) | set(wish.exclude_ids)
        for s in seeds:
            if s in self.catalog:
                excl.update(self._versions.get(title_key(self.catalog[s].title), ()))
        lists: dict[str, list[str]] = {}
        notices: list[str] = []
        if wish.domain == "book":
            catalog = self.books
            self._book_sources(seeds, wish, excl, n, lists, notices)
        else:
            catalog = self.catalog
            self._movie_sources(seeds, wish, excl, n, lists, notices)
        fused: dict[str, float] = {}
        srcs: dict[str, list[str]] = {}
        ranks: dict[str, dict[str, int]] = {}
        for name, ids in lists.items():
            source = name.split(":")[0]
            w = _WEIGHTS[source]
            for rank, i in enumerate(ids):
                if i in excl or i not in catalog:
                    continue  # never an item outside the catalog or one the user ruled out
                fused[i] = fused.get(i, 0.0) + w / (_RRF_K + rank)
                srcs.setdefault(i, []).append(source)
                ranks.setdefault(i, {}).setdefault(source, rank)
        if wish.tones or wish.soft_genres or wish.genres or wish.genres_any:  # else both terms are 0 for every item
            for i in fused:
                it = catalog[i]
                fused[i] += self._tone_score(it, wish) + self._genre_fit(it, wish)
        return Pool(catalog, fused, srcs, ranks, notices, excl)

    def context(self, seeds: Sequence[str], wish: Wish, pool_ids: Sequence[str] = ()) -> RankContext:
        """What the ranker's features need, including model scores for every item of the pool (so a candidate from
        any source gets its ALS fold-in score and its embedding similarity to the request and to the seeds)."""
        book = wish.domain == "book"
        ctx = RankContext(wish, [it for it in (self.item(i) for i in seeds) if it is not None],
                          self.book_stats if book else self.stats, self.books if book else self.catalog, self.max_year)
        ids = list(pool_ids)
        if not ids:
            return ctx
        movie_seeds = [i for i in seeds if i in self.catalog]
        if movie_seeds and self.als is not None and not book:
            try:
                ctx.als_scores = dict(zip(ids, self.als.scores_for_items(movie_seeds, ids).tolist()))
            except (ValueError, KeyError) as e:
                log.info("ALS scores for the ranker unavailable: %s", e)
        if self.knowledge is not None and hasattr(self.knowledge, "similarities"):
            try:
                text, near = self.knowledge.similarities(wish.search_text(), seeds, ids)
                ctx.text_sims, ctx.seed_sims = dict(zip(ids, text.tolist())), dict(zip(ids, near.tolist()))
            except Exception as e:  # the store being down costs these features, never the turn
                log.warning("knowledge similarities unavailable: %s: %s", type(e).__name__, e)
        return ctx

    def assemble(self, *, seeds: Sequence[str], wish: Wish, exclude: Iterable[str], n: int, n_min: int
                 ) -> CandidateSet:
        learned = self.ranker.kind != "weighted_sum"
        p = self.pool(seeds=seeds, wish=wish, exclude=exclude, n=max(n, POOL_N) if learned else n)
        catalog, fused, srcs, ranks, notices, excl = p.catalog, p.fused, p.sources, p.ranks, p.notices, p.excluded
        pop = self.book_popularity if wish.domain == "book" else self.popularity
        if learned and fused:
            # The learned ranker orders the pool; the weighted sum stays the fallback (no model file).
            ids = sorted(fused, key=lambda i: -fused[i])[:POOL_CAP]
            X = featurize([catalog[i] for i in ids], [ranks.get(i, {}) for i in ids], [fused[i] for i in ids],
                          self.context(seeds, wish, ids))
            # A genre request is answered by films of that genre first (a romcom is Comedy|Romance, not Forrest
            # Gump's Comedy|Drama|Romance|War): the model's popularity features would otherwise outweigh it. On
            # the pool's standardised scores (any model's scale), so the weight means the same for every model.
            score = self.ranker.score(X)
            score = (score - score.mean()) / (score.std() + 1e-9)
            share = X[:, FEATURES.index("genre_share")]
            # A tone ("lighter") keeps the genres against it down (its preferred genres are a feature of the model;
            # pushing them too sent "a lighter romcom" to any animated film).
            against = X[:, FEATURES.index("demote")]
            score = score + GENRE_PURITY * share - TONE_WEIGHT * against
            if not (wish.genres or wish.genres_any):
                core = {g for t in wish.tones for g in TONE_BY_KEY[t].core_genres}
                if core:
                    score += TONE_ALONE * np.array([bool(core & set(catalog[i].genres)) for i in ids])
            fused = dict(zip(ids, (float(v) for v in score)))

        def build(ids_scores, fits) -> list[Candidate]:
            return [Candidate(catalog[i], s, tuple(dict.fromkeys(srcs.get(i, ["popular"]))), fits, ranks.get(i, {}))
                    for i, s in ids_scores]

        ranked = sorted(fused.items(), key=lambda kv: -kv[1])
        check = self.fit_check(wish)
        out = build(itertools.islice(((i, s) for i, s in ranked if check(catalog[i])), n), True)
        if len(out) < n and pop is not None:
            # Popular items that satisfy the wish before anything that breaks it.
            have = {c.id for c in out} | excl
            extra = pop.top(n - len(out), have, lambda i: check(catalog[i]), self.allowed_rows(wish))
            out += [Candidate(catalog[i], self._tone_score(catalog[i], wish), ("popular",), True) for i in extra]
        if len(out) < n_min and wish.origins and pop is not None:
            have = {c.id for c in out} | excl
            loose = self.fit_check(wish, loose_origin=True)
            extra = pop.top(n - len(out), have, lambda i: loose(catalog[i]), self.allowed_rows(wish))
            out += [Candidate(catalog[i], self._tone_score(catalog[i], wish), ("popular",), True) for i in extra]
        if 0 < len(out) < n_min:
            notices.append("few_match")  # fewer picks, all of them right, rather than padding with misfits
        if not out:
            notices.append("relaxed")
            have = {c.id for c in out}
            soft = wish.model_copy(update={"origins": [], "people": [], "themes": [], "year_from": None,
                                           "year_to": None, "genres_any": []})
            # Keep what was excluded out even when relaxing: a disliked genre never comes back.
            soft_check = self.fit_check(soft)
            rest = [(i, s) for i, s in ranked if i not in have and soft_check(catalog[i])]
            out += build(rest[: n - len(out)], False)
            if len(out) < n_min and pop is not None:
                have = {c.id for c in out} | excl
                keep = (lambda i: not set(wish.avoid_genres) & set(catalog[i].genres))
                out += [Candidate(catalog[i], 0.0, ("popular",), False) for i in pop.top(n - len(out), have, keep)]
        return CandidateSet(tuple(out[:n]), tuple(dict.fromkeys(notices)), tuple(seeds))

    @staticmethod
    def _genre_fit(item: Item, w: Wish) -> float:
        """For a genre request, films that are mostly that genre first: a romantic comedy is Comedy|Romance, not
        Comedy|Drama|Romance|War (Forrest Gump has both genres but nobody calls it a romcom)."""
        wanted = set(w.genres) | set(w.genres_any)
        if not wanted or not item.genres or item.domain != "movie":
            return 0.0
        return 0.002 * len(wanted & set(item.genres)) / len(item.genres)

    @staticmethod
    def _tone_score(item: Item, w: Wish) -> float:
        """Soft evidence from the tones: preferred genres up, genres and keywords against the wish down (on the
        reciprocal-rank scale, where one rank near the top is worth ~0.0003)."""
        if not w.tones and not w.soft_genres:
            return 0.0
        genres = set(item.genres)
        score = 0.004 * min(2, len(genres & set(w.prefer_genres)))
        score -= 0.006 * len(genres & set(w.demote_genres))
        bad = {k for t in w.tones for k in TONE_BY_KEY[t].demote_keywords}  # noqa: C401
        if bad:
            words = " | ".join([*item.keywords, *item.tags]).lower()
            score -= 0.004 * sum(1 for k in bad if k in words)
        return score

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

    def _by_popularity(self, ids: Iterable[str]) -> list[str]:
        count = self.popularity.count if self.popularity is not None else {}
        return sorted(ids, key=lambda i: -count.get(i, 0.0))

    def _movie_sources(self, seeds, w: Wish, excl, n, lists, notices) -> None:
        movie_seeds = [s for s in seeds if s in self.catalog]
        wide = max(4 * n, 120) if w.has_filters else 2 * n
        if movie_seeds and self.als is not None:
            try:
                lists["als"] = list(self.als.recommend_for_items(movie_seeds, wide, exclude=excl).ids)
            except (ValueError, KeyError) as e:  # an id unknown to the model: use the other sources
                log.warning("ALS fold-in failed: %s", e)
        if movie_seeds and self.knowledge is not None:
            lists["similar"] = self._knowledge("similar_to", movie_seeds, n, domain="movie", exclude=tuple(excl),
                                               notices=notices)
        wanted = [(p.name, p.role) for p in w.people if not p.exclude]
        if (wanted or w.soft_people) and self.people is not None:
            works: set[str] = set()
            for name, role in wanted:
                works |= {i for i in self.people.works(name, role) if i in self.catalog}
            liked: set[str] = set()
            for name in w.soft_people:  # a taste: their films join the pool, the wish check does not need them
                liked |= {i for i in self.people.works(name, "any") if i in self.catalog}
            lists["people"] = self._by_popularity(works - excl) + self._by_popularity(liked - works - excl)
        if w.themes:
            ids = set().union(*(self._themes.get(t, set()) for t in w.themes))
            lists["theme"] = self._by_popularity(ids - excl)[:wide]
        if descriptive(w):  # genre and period alone are hard filters on the ALS / popularity lists below
            text = w.search_text()
            if text and self.knowledge is not None and "fb_knowledge" not in notices:
                lists["search"] = self._knowledge(
                    "search", text, k=wide, domain="movie", genres=list(w.genres) or None, genre_match="all",
                    year_range=w.year_range, exclude=tuple(excl), notices=notices)
        have = sum(len(v) for v in lists.values())
        if self.popularity is not None and (have < n or not movie_seeds):
            check, allowed = self.fit_check(w), self.allowed_rows(w)
            keep = (lambda i: check(self.catalog[i]))
            lists["popular"] = self.popularity.top(2 * n if w.has_filters else n, excl, keep, allowed)
            if self.recently_popular is not None:
                lists["recent"] = self.recently_popular.top(2 * n if w.has_filters else n, excl, keep, allowed)
            # New releases: what people ask about is often this year's film, which has few ratings yet.
            new = self._new_rows if allowed is None else allowed & self._new_rows
            lists["new"] = self.popularity.top(n, excl, keep, new)

    def _book_sources(self, seeds, w: Wish, excl, n, lists, notices) -> None:
        if self.books is None:
            return
        seed_items = [it for it in (self.item(i) for i in seeds) if it is not None]
        by_author = []
        for it in seed_items:
            for name in (*it.writers, *it.authors, *it.tags):
                by_author += [b for b in self._books_by_author.get(name.lower(), ()) if b not in by_author]
        for p in w.people:
            if not p.exclude:
                by_author += [b for b in self._books_by_author.get(p.name.lower(), ()) if b not in by_author]
        if by_author:
            lists["author"] = by_author
        if seeds and self.knowledge is not None:
            lists["similar"] = self._knowledge("similar_to", list(seeds), n, domain="book", exclude=tuple(excl),
                                               notices=notices)
        wish = descriptive(w)
        text = w.search_text() if wish or w.has_any else ""
        if not wish and seed_items:
            # No wish in words: describe the latest liked item (the one this request is about; the similarity
            # list covers all of them) by its themes, next to any genre asked for ("해리 포터 같은 판타지 소설").
            last = seed_items[-1]
            kws = list(last.keywords)
            text = " ".join([text] * bool(text) + kws[:10] + list(last.genres if not w.genres else ()))
        if text and self.knowledge is not None and "fb_knowledge" not in notices:
            found = self._knowledge("search", text, k=n if wish else 4 * n, domain="book", exclude=tuple(excl),
                                    notices=notices)
            # Themes or a bare genre ("판타지 소설"): among the matching books, the ones readers actually know first.
            lists["search"] = found if wish else _by_search_and_popularity(found, self.book_popularity, n)
        if "fb_knowledge" in notices or self.knowledge is None:
            notices.append("fb_books")
        if self.book_popularity is not None and sum(len(v) for v in lists.values()) < n:
            lists["popular"] = self.book_popularity.top(n, excl)
