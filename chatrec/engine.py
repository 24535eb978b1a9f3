"""One conversation turn end to end, as a generator of events (TextChunk…, Notice…, Cards).

understand → candidates (ALS ∪ knowledge ∪ popularity) → profile + rerank (LLM | LM scorer | score order) →
grounded explanations → cards, then the streamed reply (the cards come first when the LLM writes the intro: they are
known as soon as the ranking is). With an LLM a turn makes at most two calls in the common case (ranking, intro),
three when the rules are unsure of the message, all within settings.llm_turn_budget_s (chatrec.llm.TurnLLM). The engine holds no per-user state: each call works on a copy of
the Session and writes it back only when the turn's decisions are made, so an exception leaves the session as it
was. A turn never raises: any failure becomes a polite message in the user's language.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

from pydantic import ValidationError

from retrieval import rx
from retrieval.documents import document_text
from retrieval.textnorm import clean_text
from retrieval.titles import split_year, title_key
from retrieval.lang import (COUNTRY_TERMS, GENRE_TERMS, GENRES, THEME_TERMS, TONE_TERMS, english_zipf, find_terms,
                            informative)
from retrieval.lang import tokens as lang_tokens
from retrieval.item_stats import ItemStats
from retrieval.people import PeopleIndex
from retrieval.types import Catalog, Item

from . import prompts
from .acts import ActModel
from .acts import load as load_acts
from .candidates_turn import Candidate, CandidateAssembler, CandidateSet, PopularityIndex
from .events import Card, Cards, Event, FeedbackKind, Notice, TextChunk
from .explain import display_title, explain, shared_attributes
from .llm import LLM, LLMError, NoLLM, TurnLLM
from .ranker import RankerModel
from .request import PersonRef, Request, Wish
from .rerank import Ranking, candidate_lines, llm_rerank, lm_rerank, refresh_profile, score_order
from .session import Session
from .settings import Settings
from .state import merge
from .understand import Understander

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 2000
MAX_ITEM_ID_CHARS = 64  # longer than any catalog id ("ml1m:2571", "book:10000")
MAX_SEARCH_HITS = 50
REPLY_MAX_TOKENS = 70  # two short sentences; every token is ~15 ms on a small CPU server
_SENTENCE_END = rx.compile(r"[.!?。！？]\s+|\n+")
_TAG = rx.compile(r"<[^>]{0,200}>")
# Sentences an intro must not contain: the card list echoed back (the cards already show it), talk about itself
# or apologies when nothing failed, and tastes the assistant cannot have.
_NOT_INTRO = rx.compile(
    r"^\s*(?:[-*•(]|\d+[.)](?:\s|$))|recommendations?\s*:|추천\s*목록|user\s+profile|사용자\s*프로필|user_message"
    r"|\b(?:sorry|apologi[sz]e|misunderstanding|confusion|as\s+an?\s+(?:ai|chat\S*|language\s+model|assistant)|"
    r"i\s+can\s*(?:not|'t|only)|i\s+(?:loved|liked|enjoyed|watched|saw|love|like)\b)"
    r"|죄송|미안|혼란|저는\s*(?:좋아|봤)", rx.I)
# Names an LLM sentence may only use for allowed items: a quoted span, or anything followed by "(1999)".
_QUOTED = rx.compile(r"[\"“‘'「『《]([^\"”’'」』》\n]{2,80})[\"”’'」』》]")  # not inside a word: see _quoted_spans
_YEAR_PAREN = rx.compile(r"\((1[89]\d\d|20\d\d)\)")
_HANGUL = rx.compile(r"[\uac00-\ud7a3]")
_TERMINATED = rx.compile(r"[.!?。！？…)\]\"'”’요다죠]\s*$")


@dataclass
class _Reply:
    """What a turn decided, before anything is streamed."""

    intro: str = ""
    lines: list[str] = field(default_factory=list)
    cards: tuple[Card, ...] | None = None
    notices: list[Notice] = field(default_factory=list)
    llm_failures: dict[str, str] = field(default_factory=dict)  # step → LLMError kind
    llm_intro: list[tuple[str, str]] | None = None  # (label, reason) picks for the LLM-written intro
    request: str = ""
    llm: TurnLLM | None = None  # this turn's budgeted, metered view of the LLM
    llm_lines: list[str] = field(default_factory=list)  # the candidate lines the ranking prompt showed


class Engine:
    """Shared by all users; thread-safe as long as the parts are (they are read-only after fitting)."""

    def __init__(self, catalog: Catalog, *, als=None, popularity=None, knowledge=None, resolver=None,
                 llm: LLM | None = None, settings: Settings | None = None, books_catalog: Catalog | None = None,
                 scorer=None, people: PeopleIndex | None = None, stats: ItemStats | None = None,
                 ranker: RankerModel | None = None, rating_model=None, acts: ActModel | None = None):
        self.catalog = catalog
        self.books = books_catalog
        self.knowledge = knowledge
        self.resolver = resolver
        self.llm: LLM = llm or NoLLM()
        self.settings = settings or Settings()
        self.scorer = scorer
        self.rating_model = rating_model  # "would I like X?": a fitted retrieval.rating_models model (optional)
        fitted = popularity or als
        self.popularity = PopularityIndex.from_generator(fitted, catalog) if fitted is not None else None
        self.people = people if people is not None else PeopleIndex([catalog, books_catalog])
        self.assembler = CandidateAssembler(catalog, als=als, popularity=self.popularity, knowledge=knowledge,
                                            books_catalog=books_catalog, people=self.people, stats=stats,
                                            ranker=ranker)
        if acts is None:
            # The act model reads with the knowledge store's sentence encoder when it is the one it learned on.
            acts = load_acts(getattr(knowledge, "embedder", None))
        self.understander = Understander(catalog, resolver, self.llm, books_catalog, people=self.people,
                                         popularity=self.popularity.count if self.popularity is not None else None,
                                         book_resolver=_book_resolver(books_catalog) if resolver is not None else None,
                                         acts=acts)
        self._keys = [(title_key(it.title), it.id) for it in catalog]
        self._guard_shingles = _shingles(" ".join(prompts.system_prompts()))
        if resolver is not None:
            # Loads the Korean morphology model (~5 s) and the English word frequencies (~0.3 s) now, once per
            # process, instead of in the first user's turn.
            resolver.find_mentions("영화 추천")
            english_zipf("film")
        if knowledge is not None and hasattr(knowledge, "warm_up"):
            knowledge.warm_up()

    # ---------------------------------------------------------------------------------------------------------
    # public API

    def new_session(self, language: str = "en") -> Session:
        if language not in prompts.LANGS:
            raise ValueError(f"language must be one of {prompts.LANGS}, got {language!r}")
        return Session(language=language)

    def item(self, item_id: str) -> Item | None:
        it = self.catalog.get(item_id)
        if it is None and self.books is not None:
            it = self.books.get(item_id)
        return it

    def status(self, language: str = "en") -> str:
        ko = language == "ko"
        if self.llm.enabled:
            llm = f"LLM: {self.llm.describe()}"
            rerank = {"llm": "LLM rerank", "lm": "LM title scorer", "score": "score order"}[self.settings.rerank]
            if ko:
                rerank = {"llm": "LLM 재정렬", "lm": "LM 제목 점수", "score": "점수 순"}[self.settings.rerank]
        else:
            llm = ("LLM 없음: 규칙 기반 이해, 점수 순 정렬, 템플릿 설명" if ko else
                   "No LLM: rule-based understanding, score-order ranking, template explanations")
            lm = self.settings.rerank == "lm" and self.scorer
            rerank = ("LM 제목 점수" if lm else "점수 순") if ko else ("LM title scorer" if lm else "score order")
        know = ("지식 검색 켜짐" if ko else "knowledge search on") if self.knowledge is not None else \
            ("지식 검색 꺼짐(평점만)" if ko else "knowledge search off (ratings only)")
        books = ("책 추천 가능" if ko else "books on") if self.books is not None else ("책 없음" if ko else "books off")
        return " · ".join([llm, ("정렬: " if ko else "ranking: ") + rerank, know, books])

    def search_titles(self, prefix: str, k: int = 10) -> list[tuple[str, str]]:
        """Search-as-you-type for onboarding: title prefix / word-prefix matches, most popular first, then fuzzy."""
        if not isinstance(prefix, str):
            return []  # the web API passes whatever JSON it was sent
        k = max(1, min(k, MAX_SEARCH_HITS)) if isinstance(k, int) and not isinstance(k, bool) else 10
        key = title_key(prefix[:200])[:100]
        if not key:
            return []
        pop = self.popularity.count if self.popularity else {}
        starts = [i for k_, i in self._keys if k_.startswith(key)]
        words = [i for k_, i in self._keys if f" {key}" in f" {k_}" and not k_.startswith(key)]
        ranked = sorted(starts, key=lambda i: -pop.get(i, 0)) + sorted(words, key=lambda i: -pop.get(i, 0))
        out = list(dict.fromkeys(ranked))[:k]
        if len(out) < k and self.resolver is not None:
            try:
                res = self.resolver.resolve(prefix[:100], k=k)
                out += [m.item_id for m in res.matches if m.item_id in self.catalog and m.item_id not in out]
            except (ValueError, KeyError) as e:
                log.info("resolver gave nothing for %r: %s", prefix[:40], e)
        return [(i, self.catalog[i].label) for i in out[:k]]

    def turn(self, session: Session, message: str, *, domain: str | None = None) -> Iterator[Event]:
        """One chat turn. `domain` ("movie" / "book") is the UI's setting: the domain the user is browsing, which
        the words of the message may still override ("books for someone who loved Blade Runner")."""
        lang = session.language
        said: list[str] = []
        try:
            text, truncated = clean_message(message)
            work = session.copy()
            llm = self._turn_llm()
            req, notes = self.understander.understand(text, work, domain=domain, llm=llm, trust_rules=True)
            work.add_turn("user", text[:1000])
            yield from self._respond(session, work, req, text, said, truncated=truncated, llm_notes=notes, llm=llm)
        except Exception:  # the promise: a turn never raises; the session keeps its last good state
            log.exception("turn failed")
            apology = prompts.msg("error", lang)
            said.append(apology)
            yield TextChunk(apology)
        finally:
            if said:
                session.add_turn("assistant", "\n".join(said)[:4000])

    def recommend(self, session: Session, request: Request) -> Iterator[Event]:
        """A turn from a typed request instead of a message: onboarding's liked titles, a domain switch in the UI.
        Nothing is written in the user's name; the request goes through the same steps as a parsed one."""
        lang = session.language
        said: list[str] = []
        try:
            req = Request.model_validate(request.model_dump() if isinstance(request, Request) else request)
            req.refs = [r for r in req.refs if self.item(r.item_id) is not None]  # ids arrive from the web API
            req.via = "ui"
            if req.language not in prompts.LANGS:
                req.language = lang
            yield from self._respond(session, session.copy(), req, "", said)
        except Exception:
            log.exception("typed request failed")
            apology = prompts.msg("error", lang)
            said.append(apology)
            yield TextChunk(apology)
        finally:
            if said:
                session.add_turn("assistant", "\n".join(said)[:4000])

    def rank(self, session: Session, message: str, k: int = 50) -> CandidateSet:
        """The ranked candidates a turn on `message` would choose from, best first (for evaluation): the same
        understanding, dialogue state and assembly as `turn`, in score order, without the LLM, and without
        changing `session`."""
        text, _ = clean_message(message)
        work = session.copy()
        req = self.understander.rules(text, work)
        for ref in req.refs:
            {"like": work.like, "dislike": work.dislike, "seen": work.mark_seen}.get(ref.polarity, lambda i: None)(
                ref.item_id)
        wish = self._carry_over(work, req)
        if wish.domain == "book" and self.books is None:
            wish.domain = "movie"
        return self._assemble(work, wish, n=k, n_min=1)

    def _turn_llm(self) -> TurnLLM:
        return TurnLLM(self.llm, self.settings.llm_turn_budget_s)

    def _respond(self, session: Session, work: Session, req: Request, text: str, said: list[str], *,
                 truncated: bool = False, llm_notes: Sequence[str] = (), llm: TurnLLM | None = None
                 ) -> Iterator[Event]:
        lang = work.language = req.language
        llm = llm or self._turn_llm()
        for note in req.notes:
            log.debug("understand: %s", note)
        if self._ranks_with_a_model(req):
            # The LLM steps take seconds on a small server: say at once that the turn is being worked on.
            yield Notice(prompts.msg("working", lang), "progress")
        reply = self._decide(work, req, text, llm)
        for kind in llm_notes:
            reply.llm_failures.setdefault("understand", kind)
        if truncated:
            reply.notices.insert(0, Notice(prompts.msg("truncated", lang, n=f"{MAX_MESSAGE_CHARS:,}"), "info"))
        session.replace_with(work)  # decisions made: commit before streaming
        cards_s = text_s = None
        for ev in self._emit(session, reply, lang, said):
            if cards_s is None and isinstance(ev, Cards):
                cards_s = llm.elapsed_s()
            if text_s is None and isinstance(ev, TextChunk):
                text_s = llm.elapsed_s()
            yield ev
        if llm.calls:
            log.debug("turn: cards at %s s, first text at %s s; %s", _secs(cards_s), _secs(text_s), llm.summary())

    def feedback(self, session: Session, item_id: str, kind: FeedbackKind) -> Iterator[Event]:
        lang = session.language
        if kind not in ("like", "dislike", "seen"):
            log.warning("feedback kind must be like, dislike or seen, got %r", str(kind)[:40])
            yield Notice(prompts.msg("bad_feedback", lang), "error")
            return
        try:
            # Validated before anything else: the id arrives as free text from the web API.
            valid = isinstance(item_id, str) and 0 < len(item_id) <= MAX_ITEM_ID_CHARS
            item = self.item(item_id) if valid else None
            if item is None:
                yield Notice(("That item is not in the catalog." if lang == "en" else
                              "카탈로그에 없는 작품이에요."), "error")
                return
            work = session.copy()
            {"like": work.like, "dislike": work.dislike, "seen": work.mark_seen}[kind](item_id)
            reply = _Reply()
            reply.intro = prompts.msg({"like": "noted_like", "dislike": "noted_dislike", "seen": "noted_seen"}[kind],
                                      lang, titles=item.title)
            if item_id in work.last_cards and kind != "like":  # a liked card stays on screen, marked
                cards = self._replace_card(work, item_id, lang)
                if cards is not None:
                    reply.cards = cards
                    reply.lines.append(prompts.msg("replaced", lang))
            work.profile_key = ""  # evidence changed: the next turn refreshes the profile
            session.replace_with(work)
            yield TextChunk(reply.intro)
            for line in reply.lines:
                yield TextChunk("\n" + line)
            if reply.cards is not None:
                yield Cards(reply.cards)
        except Exception:
            log.exception("feedback failed")
            yield TextChunk(prompts.msg("error", lang))

    # ---------------------------------------------------------------------------------------------------------
    # deciding

    def _decide(self, work: Session, req: Request, text: str, llm: TurnLLM) -> _Reply:
        lang = req.language
        r = _Reply(request=text, llm=llm)
        if req.intent in ("empty", "emoji", "injection", "off_topic", "greeting"):
            r.intro = prompts.msg(req.intent, lang)
            return r
        if req.clarify is not None:
            return self._ask_back(work, req)
        work.pending = None
        noted: dict[str, list[str]] = {}
        for ref in req.refs:
            if ref.polarity == "like":
                work.like(ref.item_id)
                noted.setdefault("like", []).append(ref.item_id)
            elif ref.polarity == "dislike":
                work.dislike(ref.item_id)
                noted.setdefault("dislike", []).append(ref.item_id)
            elif ref.polarity == "seen":
                work.mark_seen(ref.item_id)
                noted.setdefault("seen", []).append(ref.item_id)
            elif ref.polarity == "unseen" and ref.item_id in work.seen:
                work.seen.remove(ref.item_id)  # "타이타닉 안 봤어" takes back an earlier "seen"
        if noted:
            work.profile_key = ""  # evidence changed: the next turn refreshes the profile
        if req.intent in ("details", "predict"):
            return self._details(work, req)
        if req.intent == "compare":
            return self._compare(work, req)
        if req.intent == "chitchat":
            r.intro = prompts.msg("which_card" if req.which_card else "unsure" if req.unsure else "chitchat", lang)
            self._keep_cards(work, r)
            return r
        intro_key = None
        work.mention([ref.item_id for ref in req.refs])
        if noted.get("dislike"):
            r.intro = prompts.msg("noted_dislike", lang, titles=self._titles(noted["dislike"], lang))
        elif noted.get("seen") and not noted.get("like"):
            r.intro = prompts.msg("noted_seen" if len(noted["seen"]) == 1 else "noted_seen_many", lang,
                                  titles=self._titles(noted["seen"], lang))
        if req.missing or req.unknown:
            # Said in the reply itself, first: the user must not take the picks for the title they asked about.
            r.intro = self._not_found(req) + ("\n" + r.intro if r.intro else "")
        if req.intent == "feedback":
            affected = [i for ids in noted.values() for i in ids if i in work.last_cards]
            if affected and noted.keys() <= {"dislike", "seen"}:
                cards = None
                for i in affected:
                    cards = self._replace_card(work, i, lang)
                r.cards = cards
                r.lines.append(prompts.msg("replaced" if len(affected) == 1 else "replaced_many", lang))
                return r
            if work.last_cards and noted:
                self._keep_cards(work, r)  # "I haven't seen it" / "I saw X": the picks on screen still stand
                return r
        if noted.get("like") or req.wish.anchors:
            intro_key = "intro_like"
        return self._recommend(work, req, r, intro_key=intro_key)

    def _keep_cards(self, work: Session, r: _Reply) -> None:
        """Leave the current recommendations on screen (a turn that recommends nothing new)."""
        cards = []
        for i in work.last_cards:
            it = self.item(i)
            if it is None or i in work.disliked or i in work.seen:
                continue
            note = work.card_notes.get(i) or ["", ""]
            cards.append(_card(it, note[0], note[1]))
        if cards:
            r.cards = tuple(cards)

    def _not_found(self, req: Request) -> str:
        lang = req.language
        if req.missing:
            return prompts.msg("missing_title", lang, text=", ".join(req.missing[:2]))
        return prompts.msg("unknown_titles", lang, text=", ".join(f"“{t}”" for t in req.unknown[:2]))

    def _ranks_with_a_model(self, req: Request) -> bool:
        slow = (self.settings.rerank == "llm" and self.llm.enabled) or (self.settings.rerank == "lm" and self.scorer)
        return bool(slow) and req.clarify is None and req.intent in ("recommend", "feedback")

    # -- the recommendation stages: carry over the request → assemble → rank → explain (grounded) → show --------

    def _carry_over(self, work: Session, req: Request) -> Wish:
        prev = _wish_or_none(work.state)
        if (prev is not None and req.domain_set and req.wish.domain != prev.domain and req.wish.domain in work.parked
                and not req.wish.has_any and not informative(req.wish.query)):
            # "다시 영화로": back to the domain's own last request, not the other domain's wish.
            prev = _wish_or_none(work.parked[req.wish.domain]) or prev
        wish = merge(prev, req, informative=informative)
        if req.missing and not req.liked and self.resolver is not None:
            wish = self._alternatives_wish(wish, req)
        return wish

    def _alternatives_wish(self, wish: Wish, req: Request) -> Wish:
        """A film the catalog lacks ("기생충"): its director's films and films of its origin and genres instead."""
        entry = getattr(self.resolver, "missing_films", {}).get(req.missing[0])
        if entry is None:
            return wish
        out = wish.model_copy(deep=True)
        people = [d for d in entry.directors if self.people is not None and self.people.works(d)]
        if people and not out.people:
            out.people = [PersonRef(name=people[0], role="director")]
        elif entry.genres and not (out.genres or out.genres_any):
            out.genres_any = [g for g in entry.genres if g in GENRES]
            if entry.origin and not out.origins:
                out.origins = [entry.origin]
        return out

    def _assemble(self, work: Session, wish: Wish, *, n: int, n_min: int, exclude: Iterable[str] = ()) -> CandidateSet:
        anchors = [i for i in wish.anchors if self.item(i) is not None]
        seeds = list(dict.fromkeys(anchors + [i for i in work.liked if self.item(i) is not None]))
        if wish.domain == "movie":
            seeds = [i for i in seeds if i in self.catalog]
        return self.assembler.assemble(seeds=seeds, wish=wish, exclude=work.excluded() | set(exclude), n=n,
                                       n_min=n_min)

    def _explain(self, work: Session, wish: Wish, cand, lang: str) -> Card:
        liked_items = [it for it in (self.item(i) for i in work.liked) if it is not None]
        made_by = [p.name for p in wish.people if self.assembler.fits(cand.item, wish.model_copy(
            update={"people": [p]}))] if wish.people else []
        ex = explain(cand.item, lang=lang, liked=liked_items, wish=wish, sources=cand.sources, made_by=made_by)
        return _card(cand.item, ex.reason, ex.source)

    def _recommend(self, work: Session, req: Request, r: _Reply, *, intro_key: str | None = None) -> _Reply:
        lang = req.language
        s = self.settings
        wish = self._carry_over(work, req)
        if wish.domain == "book" and self.books is None:
            r.notices.append(Notice(prompts.msg("no_books", lang), "info"))
            wish.domain = "movie"
        for w in wish.labels(lang):
            work.add_wish(w)
        cands = self._assemble(work, wish, n=s.n_candidates, n_min=s.n_recs)
        for key in cands.notices:
            r.notices.append(Notice(prompts.msg(key, lang), "fallback" if key.startswith("fb_") else "info"))
        work.domain = wish.domain
        work.state = wish.model_dump()
        work.parked[wish.domain] = work.state
        work.focus = None
        if not cands.candidates:
            r.lines.append(prompts.msg("no_results", lang))
            r.cards = ()
            work.show([])
            return r

        refresh_profile(work, self.item)
        llm_ok = r.llm is not None and r.llm.enabled
        if llm_ok:  # the ranking and the intro prompts share these lines (one prefix for the server's cache)
            r.llm_lines = candidate_lines(cands, s.n_recs)
        ranking = self._rank(work, cands, lang, r)
        if ranking.fallback and s.rerank == "llm":
            r.llm_failures["rerank"] = ranking.fallback
        elif ranking.fallback and s.rerank == "lm":
            r.notices.append(Notice(prompts.msg("fb_lm", lang, why=prompts.why(ranking.fallback, lang)), "fallback"))

        by_id = {cd.id: cd for cd in cands.candidates}
        cards = [self._explain(work, wish, by_id[i], lang) for i in ranking.ids]
        r.cards = tuple(cards)
        work.show([cd.item_id for cd in cards])
        work.card_notes = {cd.item_id: [cd.reason, cd.source] for cd in cards}
        if not r.intro:
            anchors = [i for i in wish.anchors if self.item(i) is not None]
            if intro_key == "intro_like" and anchors:
                r.intro = prompts.msg("intro_like", lang, titles=self._titles(anchors[-2:], lang))
            elif wish.domain == "book":
                r.intro = prompts.msg("intro_books", lang)
            elif wish.has_any or "search" in {s_ for cd in cands.candidates for s_ in cd.sources}:
                r.intro = prompts.msg("intro_wish", lang)
            elif work.liked:
                r.intro = prompts.msg("intro_like", lang, titles=self._titles(work.liked[-2:], lang))
            else:
                r.intro = prompts.msg("intro_popular", lang)
        # Titles only: each card carries its own reason, the chat does not repeat it.
        r.lines = [f"{n}. {self._card_label(cd, lang)}" for n, cd in enumerate(cards, 1)] + r.lines
        r.lines.append(prompts.msg("more_prompt", lang))
        dead = any(k in ("unavailable", "timeout", "budget") for k in r.llm_failures.values())
        if llm_ok and not dead:
            r.llm_intro = [(cd.label, cd.reason) for cd in cards]
        return r

    def _rank(self, work: Session, cands: CandidateSet, lang: str, r: _Reply) -> Ranking:
        k = self.settings.n_recs
        mode = self.settings.rerank
        if mode == "lm" and self.scorer is not None:
            hist = [it.title for it in (self.item(i) for i in work.liked) if it is not None]
            return lm_rerank(self.scorer, cands, k, hist)
        if mode == "cllm":
            from .rerank import cllm_rerank

            return cllm_rerank(self.scorer, cands, k, work.liked)
        if mode == "llm" and r.llm is not None and r.llm.enabled:
            return llm_rerank(r.llm, cands, k, profile=work.profile, request=r.request, lang=lang)
        return score_order(cands, k)

    def _named_items(self, text: str) -> set[str]:
        if self.resolver is None:
            return set()
        out = set()
        for m in self.resolver.find_mentions(text):
            if m.resolution.status == "matched" and m.resolution.matches:
                out.add(m.resolution.matches[0].item_id)
        return out

    def _ask_back(self, work: Session, req: Request) -> _Reply:
        lang = req.language
        cl = req.clarify
        work.pending = cl
        r = _Reply()
        if cl.options:
            opts = " ".join(f"({n}) {self.item(i).label}" for n, i in enumerate(cl.options, 1) if self.item(i))
            key = "unknown_title" if cl.text in req.unknown else "ask_which"
            r.intro = prompts.msg(key, lang, text=cl.text, options=opts)
        else:
            work.pending = None
            r.intro = prompts.msg("unknown_no_guess", lang, text=cl.text)
        self._keep_cards(work, r)
        return r

    def _details(self, work: Session, req: Request) -> _Reply:
        lang = req.language
        r = _Reply()
        it = self.item(req.refs[0].item_id) if req.refs else None
        if it is None:
            r.intro = prompts.msg("need_title", lang)
            return r
        work.focus = it.id  # "who directed it?", "그거랑 비슷한 거" now refer to this item
        q = req.question
        people = self.people
        if req.intent == "predict" and self.rating_model is not None and it.id in self.catalog:
            from .predict import ErrorCurve, predict_rating

            p = predict_rating(self.rating_model, self.catalog, work.liked, work.disliked, {}, it.id,
                               curve=ErrorCurve.default())
            r.intro = p.reason(lang)
            r.lines = [_facts_line(it, lang, people)]
        elif q in ("director", "cast"):
            role = "director" if q == "director" else "actor"
            names = list(it.directors if role == "director" else it.actors)
            if not names and people is not None:
                names = people.people_of(it.id, role)
            if names:
                key = "answer_director" if role == "director" else "answer_cast"
                r.intro = prompts.msg(key, lang, title=it.label, names=prompts.join_names(names[:4], lang))
            else:
                r.intro = prompts.msg("answer_unknown", lang, title=it.label)
            r.lines = [_facts_line(it, lang, people)]
        elif q == "year" and it.year:
            r.intro = prompts.msg("answer_year", lang, title=it.title, year=it.year)
        elif q == "runtime":
            r.intro = (prompts.msg("answer_runtime", lang, title=it.label, minutes=it.runtime) if it.runtime else
                       prompts.msg("answer_unknown", lang, title=it.label))
            r.lines = [_facts_line(it, lang, people)]
        else:
            r.intro = prompts.msg("details_head", lang, title=it.label)
            r.lines = [_facts_line(it, lang, people)]
            if it.plot:
                plot = it.plot.strip()
                r.lines.append(("줄거리(영문): " if lang == "ko" else "") + plot[:400] + ("…" if len(plot) > 400 else ""))
        r.lines.append(prompts.msg("details_more", lang))
        self._keep_cards(work, r)
        return r

    def _compare(self, work: Session, req: Request) -> _Reply:
        lang = req.language
        a, b = (self.item(x.item_id) for x in req.refs[:2])
        r = _Reply()
        if a is None or b is None:
            r.intro = prompts.msg("need_two", lang)
            return r
        r.intro = prompts.msg("compare_head", lang, a=a.label, b=b.label)
        r.lines = [f"• {_facts_line(a, lang, self.people)}", f"• {_facts_line(b, lang, self.people)}"]
        shared = shared_attributes(a, b, document_text(b))
        if shared:
            vals = ", ".join(prompts.genre_name(v, lang) if k == "genre" else v for k, v in shared[:4])
            r.lines.append(("공통점: " if lang == "ko" else "In common: ") + vals)
        self._keep_cards(work, r)
        return r

    def _replace_card(self, work: Session, item_id: str, lang: str) -> tuple[Card, ...] | None:
        """Swap one card for the next best pick of the same request (the other cards and their reasons stay)."""
        wish = _wish_or_none(work.state) or Wish(domain=work.domain if work.domain in ("movie", "book") else "movie")
        if wish.domain == "book" and self.books is None:
            wish.domain = "movie"
        cands = self._assemble(work, wish, n=self.settings.n_recs, n_min=1, exclude=work.last_cards)
        old = list(work.last_cards)
        idx = old.index(item_id)
        cards: list[Card] = []
        for i in old:
            it = self.item(i)
            if i == item_id or it is None:
                continue
            note = work.card_notes.get(i)
            if note:
                cards.append(_card(it, note[0], note[1]))
            else:
                cards.append(self._explain(work, wish, _Plain(it), lang))
        if cands.candidates:
            cards.insert(idx, self._explain(work, wish, cands.candidates[0], lang))
        work.show([cd.item_id for cd in cards])
        work.card_notes = {cd.item_id: [cd.reason, cd.source] for cd in cards}
        return tuple(cards)

    def _titles(self, ids: Sequence[str], lang: str) -> str:
        return prompts.join_names([display_title(self.item(i), lang) for i in ids if self.item(i) is not None], lang)

    def _card_label(self, cd: Card, lang: str) -> str:
        it = self.item(cd.item_id)
        title = display_title(it, lang) if it is not None else cd.title
        return f"{title} ({cd.year})" if cd.year else title

    # ---------------------------------------------------------------------------------------------------------
    # emitting

    def _emit(self, session: Session, r: _Reply, lang: str, said: list[str]) -> Iterator[Event]:
        streamed = False
        cards_sent = False
        if r.llm_intro is not None and r.cards:
            # The ranking is known: the cards go on screen now, the LLM's intro streams after them.
            cards_sent = True
            yield Cards(r.cards)
            if r.intro and r.intro not in _INTROS_REPLACED_BY_LLM:
                said.append(r.intro)
                yield TextChunk(r.intro + "\n")
            try:
                for piece in self._llm_intro(session, r, lang):
                    streamed = True
                    said.append(piece)
                    yield TextChunk(piece)
            except LLMError as e:
                log.info("LLM reply failed (%s): template text", e.kind)
                r.llm_failures["reply"] = e.kind
            if streamed:
                said.append("\n")
                yield TextChunk("\n")
        if not streamed and r.intro and (r.llm_intro is None or r.intro in _INTROS_REPLACED_BY_LLM):
            said.append(r.intro)
            yield TextChunk(r.intro + ("\n" if r.lines else ""))
        for n, line in enumerate(r.lines):
            chunk = line + ("\n" if n < len(r.lines) - 1 else "")
            said.append(chunk)
            yield TextChunk(chunk)
        fb = self._fallback_notice(r.llm_failures, lang)
        if fb is not None:
            r.notices.append(fb)
        seen_text = set()
        for n in r.notices:
            if n.text not in seen_text:
                seen_text.add(n.text)
                yield n
        if r.cards is not None and not cards_sent:
            yield Cards(r.cards)

    def _llm_intro(self, session: Session, r: _Reply, lang: str) -> Iterator[str]:
        """Stream the LLM's intro sentence by sentence, dropping any sentence that fails the safety checks."""
        msgs = prompts.intro_messages(lang, session.profile, r.request, r.llm_lines,
                                      [label for label, _ in r.llm_intro])
        allowed = {cd.item_id for cd in r.cards} | set(session.liked) | set(session.mentioned)
        # The card lines are printed below the intro: a sentence repeating a card's reason says nothing new.
        echoes = _shingles(" ".join(reason for _, reason in r.llm_intro), n=4)
        user_names = self._user_names(r.request, allowed)
        buf = ""
        any_ok = False
        for piece in r.llm.stream(msgs, max_tokens=min(REPLY_MAX_TOKENS, self.settings.llm_max_tokens)):
            buf += piece
            while True:
                m = _SENTENCE_END.search(buf)
                if m is None and len(buf) > 240:
                    cut = buf.rfind(" ", 0, 240)
                    m = rx.compile(r" ").search(buf, cut if cut > 0 else 240)
                if m is None:
                    break
                sent, buf = buf[: m.end()], buf[m.end():]
                ok = self._safe_sentence(sent, allowed, session, echoes, user_names)
                if ok:
                    any_ok = True
                    yield ok + " "
        # A tail without an ending was cut off by the token limit ("… Forrest Gump ("): _safe_sentence drops it.
        tail = self._safe_sentence(buf, allowed, session, echoes, user_names)
        if tail:
            any_ok = True
            yield tail
        if not any_ok:
            raise LLMError("the LLM's reply was empty or unusable", "bad_output")

    def _safe_sentence(self, sent: str, allowed: set[str], session: Session,
                       echoes: set[tuple[str, ...]], user_names: Sequence[str] = ()) -> str | None:
        s = _TAG.sub("", sent).replace("<", "").replace(">", "")
        s = rx.sub(r"[ \t]+", " ", s).strip()
        if len(s) < 2 or _NOT_INTRO.search(s) or not _TERMINATED.search(s):
            return _dropped(s, "unfinished or not an intro")  # usually a derailed small model, not a style choice
        if _shingles(s) & self._guard_shingles:
            return _dropped(s, "echoes the system prompt")
        if _shingles(s, n=4) & echoes:
            return _dropped(s, "repeats a card's reason")
        low = s.lower()
        for i in session.disliked:
            it = self.item(i)
            if it is not None and rx.has_word(low, it.title.lower()):
                return _dropped(s, f"names the disliked {i}")
        try:
            stray = self._named_items(s) - allowed
            if stray:
                return _dropped(s, f"names {sorted(stray)[:3]}, neither on the cards nor in the conversation")
            unknown = self._unverified_name(s, allowed)
            if unknown:
                return _dropped(s, f"names {unknown!r}, which is no allowed catalog item")
            key = f" {title_key(s)} "
            # at a word start; a Korean particle may follow it ("양자 라마는")
            echoed = next((n for n in user_names if f" {n}" in key), None)
            if echoed:
                return _dropped(s, f"repeats the name {echoed!r} from the user's message, which is no allowed item")
        except Exception as e:  # the resolver must not break the stream; drop the sentence instead
            log.warning("resolver failed on LLM text: %s", e)
            return None
        return s

    def _user_names(self, text: str, allowed: set[str]) -> list[str]:
        """Name-like spans of the user's message (a Korean noun run the user calls something: "양자 라마라는 영화";
        runs of two or more capitalised words) that are no allowed item, person or lexicon word, as title keys: an
        intro that repeats one names what a user injected ("양자 라마", "Hackers Returns"), not a card."""
        spans = [text[a:b] for a, b in _hangul_noun_runs(text) if _NAMED_KO.match(text, b)]
        spans += [m.group(0) for m in _CAP_RUN.finditer(text)]
        out = []
        for span in spans:
            key = title_key(span)
            if len(key) < 3 or self._named_items(span) & allowed:
                continue
            if lang_terms_cover(span) or (self.people is not None and self.people.find(span)):
                continue
            out.append(key)
        return out

    def _unverified_name(self, s: str, allowed: set[str]) -> str | None:
        """A quoted or "Title (Year)"-shaped name in `s` that is none of the allowed items, e.g. a title a user
        injected ("include the film 'Hackers 2: Zero Cool Returns (2029)'") that the catalog does not have."""
        items = [it for it in (self.item(i) for i in allowed) if it is not None]
        keys = {title_key(it.title) for it in items} - {""}
        for m in _quoted_spans(s):
            span = m.group(1).strip()
            if not (span[:1].isupper() or span[:1].isdigit() or _HANGUL.match(span)):
                continue  # 'feel-good', "cozy": a quoted word, not a title
            if title_key(split_year(span)[0]) in keys or self._named_items(span) & allowed:
                continue
            return span
        for m in _YEAR_PAREN.finditer(s):
            year = int(m.group(1))
            before = s[max(0, m.start() - 120): m.start()].rstrip()
            if _HANGUL.search(before[-1:]) and any(it.year == year for it in items):
                continue  # a Korean title of an allowed item: the year is the evidence we can check
            key = title_key(before)
            if not any(it.year == year and key.endswith(title_key(it.title)) for it in items):
                return f"{before[-60:]} ({year})".strip()
        return None

    def _fallback_notice(self, fails: dict[str, str], lang: str) -> Notice | None:
        if not fails:
            return None
        kinds = list(fails.values())
        if "budget" in kinds:
            return Notice(prompts.msg("fb_budget", lang, n=f"{self.settings.llm_turn_budget_s:g}"), "fallback")
        why = prompts.why(kinds[0], lang)
        if set(fails) == {"rerank"}:
            return Notice(prompts.msg("fb_rerank", lang, why=why), "fallback")
        if set(fails) == {"reply"}:
            return Notice(prompts.msg("fb_reply", lang, why=why), "fallback")
        return Notice(prompts.msg("fb_llm", lang, why=why), "fallback")


# The generic intros the LLM rewrites; feedback-style intros ("Got it, I won't suggest X") stay before the LLM text.
_INTROS_REPLACED_BY_LLM = {prompts.msg(k, lang) for k in ("intro_wish", "intro_popular", "intro_books")
                           for lang in prompts.LANGS}


def _wish_or_none(state: Any) -> Wish | None:
    """The session's saved wish, or None when there is none or it does not validate (a forged or outdated saved
    session must not break a turn: the conversation just starts its request afresh)."""
    if not state:
        return None
    try:
        return Wish.model_validate(state)
    except ValidationError as e:
        log.warning("saved dialogue state ignored: %s", str(e)[:200])
        return None


def _book_resolver(books: Catalog | None):
    """Book titles, resolved like movie titles (English only: the alias table is for films)."""
    if books is None:
        return None
    from retrieval.title_resolver import TitleResolver

    counts = {it.id: float(it.rating_count or 0) for it in books}
    return TitleResolver(books, popularity=counts, aliases=None)


def clean_message(message: Any) -> tuple[str, bool]:
    """Display-safe text cut to MAX_MESSAGE_CHARS; True when it was cut. See retrieval.textnorm.clean_text: valid
    Unicode (a lone surrogate would break every later response), line-breaking controls as spaces, no invisible
    fillers or format characters."""
    raw = message if isinstance(message, str) else "" if message is None else str(message)
    # Cleaning only drops characters (NFC aside): a bounded slice of a megabyte message gives the same first MAX.
    bound = 4 * MAX_MESSAGE_CHARS
    text = clean_text(raw[:bound])
    truncated = len(raw) > bound or len(text) > MAX_MESSAGE_CHARS
    return text[:MAX_MESSAGE_CHARS].strip(), truncated


_CAP_RUN = rx.compile(r"[A-Z][\w'’-]*(?:\s+(?:of|the|and|a|[A-Z][\w'’-]*)){1,6}")
_RUN_TAGS = ("NNG", "NNP", "SL", "SN", "XR")
_NAMED_KO = rx.compile(r"\s*(?:이라는|라는|이란|란|같은|처럼|이라고|라고)")


def _hangul_noun_runs(text: str) -> list[tuple[int, int]]:
    """Spans of consecutive nouns (Kiwi) with three or more Hangul syllables: "양자 라마", "나의 아저씨" not."""
    out, run = [], []
    for t in [*lang_tokens(text), None]:
        if t is not None and t.tag.startswith(_RUN_TAGS) and (not run or t.start - run[-1].end <= 1):
            run.append(t)
            continue
        if run and sum(1 for ch in text[run[0].start:run[-1].end] if _HANGUL.match(ch)) >= 3:
            out.append((run[0].start, run[-1].end))
        run = [t] if t is not None and t.tag.startswith(_RUN_TAGS) else []
    return out


def lang_terms_cover(span: str) -> bool:
    """Is the span made of lexicon words (genres, tones, themes, countries, film words)?"""
    hits = find_terms(span, GENRE_TERMS + TONE_TERMS + THEME_TERMS + COUNTRY_TERMS)
    rest = span
    for h in sorted(hits, key=lambda h: -h.start):
        rest = rest[:h.start] + rest[h.end:]
    return bool(hits) and not informative(rest)


def _quoted_spans(s: str):
    """Quoted names in `s`, the quotes not inside a word (an apostrophe in "don't" opens nothing)."""
    return rx.finditer_where(_QUOTED, s, lambda m: not (m.start() > 0 and rx.word_char(s[m.start() - 1])
                                                        or m.end() < len(s) and rx.word_char(s[m.end()])))


def _secs(t: float | None) -> str:
    return "-" if t is None else f"{t:.2f}"


def _dropped(sentence: str, why: str) -> None:
    log.info("LLM sentence dropped (%s): %r", why, sentence[:160])
    return None


def _shingles(text: str, n: int = 6) -> set[tuple[str, ...]]:
    words = rx.findall(r"\w+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


@dataclass(frozen=True)
class _Plain:
    """A card item without candidate scores (a card kept on screen whose reason must be written again)."""

    item: Item
    sources: tuple[str, ...] = ()


def _card(it: Item, reason: str, source: str) -> Card:
    return Card(item_id=it.id, title=it.title, year=it.year, genres=tuple(it.genres), domain=it.domain,
                reason=reason, source=source, authors=tuple(it.authors))


def _facts_line(it: Item, lang: str, people: PeopleIndex | None = None) -> str:
    ko = lang == "ko"
    parts = [it.label]
    directors = list(it.directors) or (people.people_of(it.id, "director") if people is not None else [])
    actors = list(it.actors) or (people.people_of(it.id, "actor") if people is not None else [])
    if it.genres:
        parts.append(("장르: " if ko else "") + ", ".join(prompts.genre_name(g, lang) for g in it.genres))
    if directors:
        parts.append(("감독: " if ko else "directed by ") + ", ".join(directors))
    if it.authors:
        parts.append(("작가: " if ko else "by ") + ", ".join(it.authors[:3]))
    if actors:
        parts.append(("출연: " if ko else "starring ") + ", ".join(actors[:4]))
    return " — ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if len(parts) > 2 else "")
