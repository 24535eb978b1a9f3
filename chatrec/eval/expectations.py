"""Per-turn checks for scripted dialogues: what a YAML script may expect of one engine turn, and how it is judged.

A script turn's `expect:` mapping is validated into `Expectations` (unknown keys are an error, so a typo in a script
fails loudly instead of silently checking nothing). `check_turn` returns one `Check` per expectation plus the checks
every turn must pass (no exception, a non-empty answer, card ids in the catalog, no HTML, no system-prompt text).

Two expectations are sticky, because they are promises about the rest of the conversation, not about one reply:
`never_mentions` (titles) and `disliked_never_shown` hold from the turn that states them to the end of the script.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chatrec.events import Card, Cards, Notice, TextChunk

HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
LATIN = re.compile(r"[A-Za-z]")
# An opening or closing tag, a comment or a doctype: what a browser would treat as markup.
HTML_TAG = re.compile(r"<\s*/?\s*[A-Za-z][A-Za-z0-9:-]*(\s[^<>]*)?/?\s*>|<!--|<!\s*doctype", re.I)
QUESTION_MARKS = ("?", "？")
# Phrases that say "I don't know that title" (a clarifying question also counts; see asks_or_admits_unknown).
UNKNOWN_PHRASES = (
    "couldn't find", "could not find", "can't find", "cannot find", "don't know", "do not know", "not in my catalog",
    "not in the catalog", "no match", "not sure which", "didn't find", "did not find", "don't have",
    "찾지 못", "찾을 수 없", "모르", "없어요", "없습니다", "없네요", "확인할 수 없", "알 수 없",
)
LEAK_WINDOW = 40  # characters of a system prompt that may never appear verbatim in a reply


class Expectations(BaseModel):
    """What one turn must show. Every field is optional; `None` means "not checked"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reply_language: str | None = Field(None, pattern="^(ko|en)$")
    min_cards: int | None = Field(None, ge=0)
    max_cards: int | None = Field(None, ge=0)
    cards_contain_genre: tuple[str, ...] | None = None  # at least one card has one of these genres
    cards_domain: str | None = Field(None, pattern="^(movie|book)$")  # every card is of this domain
    cards_any_domain: str | None = Field(None, pattern="^(movie|book)$")  # at least one card is
    cards_contain_title: str | None = None
    cards_exclude_title: tuple[str, ...] | None = None  # no card has exactly this title
    cards_year_between: tuple[int, int] | None = None  # at least half of the dated cards fall in [a, b]
    never_mentions: tuple[str, ...] | None = None  # sticky: title never in reply text or cards from here on
    disliked_never_shown: bool | None = None  # sticky: no disliked id among the cards from here on
    no_repeats: bool | None = None  # no card was already shown earlier in this dialogue
    asks_clarifying_question: bool | None = None
    asks_or_admits_unknown: bool | None = None
    reply_mentions_any: tuple[str, ...] | None = None
    reply_mentions_all: tuple[str, ...] | None = None
    has_notice: str | None = Field(None, pattern="^(fallback|info|error|any)$")
    no_html_in_reply: bool | None = None  # also checked on every turn
    no_system_prompt_leak: bool | None = None  # also checked on every turn
    min_reply_chars: int | None = Field(None, ge=0)
    # Conjunctions and exclusions over every card (not just one of them).
    cards_all_genres: tuple[str, ...] | None = None  # every card has all of these genres
    cards_no_genre: tuple[str, ...] | None = None  # no card has any of these genres
    cards_all_years_between: tuple[int, int] | None = None  # every dated card falls in [a, b]
    cards_any_title: tuple[str, ...] | None = None  # at least one card has one of these titles
    cards_only_titles: tuple[str, ...] | None = None  # every card is one of these titles
    cards_exclude_matching: str | None = None  # no card title matches this regex (case-insensitive)
    keeps_cards: bool | None = None  # the cards on screen after the turn are the ones shown before it
    # What the session believes after the turn (titles are matched by normalised title, as cards are).
    liked_include: tuple[str, ...] | None = None
    liked_exclude: tuple[str, ...] | None = None
    liked_only: tuple[str, ...] | None = None  # the liked list holds exactly these titles (order ignored)
    disliked_include: tuple[str, ...] | None = None
    disliked_exclude: tuple[str, ...] | None = None
    seen_include: tuple[str, ...] | None = None
    seen_exclude: tuple[str, ...] | None = None
    # References to the cards shown by the previous turn (1-based positions).
    liked_include_card: int | None = Field(None, ge=1)
    disliked_include_card: int | None = Field(None, ge=1)
    seen_include_card: int | None = Field(None, ge=1)
    reply_mentions_card: int | None = Field(None, ge=1)  # the reply names that card's title

    @field_validator("cards_contain_genre", "cards_exclude_title", "never_mentions", "reply_mentions_any",
                     "reply_mentions_all", "cards_all_genres", "cards_no_genre", "cards_any_title",
                     "cards_only_titles", "liked_include", "liked_exclude", "liked_only", "disliked_include",
                     "disliked_exclude", "seen_include", "seen_exclude", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return (v,) if isinstance(v, str) else v


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class TurnOutcome:
    """Everything one engine call produced, flattened for checking."""

    text: str
    notices: tuple[Notice, ...]
    cards: tuple[Card, ...]
    got_cards_event: bool
    error: str | None
    latency_s: float
    first_event_s: float | None

    @classmethod
    def from_events(cls, events: Sequence[object], *, error: str | None = None, latency_s: float = 0.0,
                    first_event_s: float | None = None) -> "TurnOutcome":
        text = "".join(e.text for e in events if isinstance(e, TextChunk))
        notices = tuple(e for e in events if isinstance(e, Notice))
        card_events = [e for e in events if isinstance(e, Cards)]
        # A later Cards event replaces an earlier one (the UI shows only the newest list).
        cards = card_events[-1].cards if card_events else ()
        return cls(text, notices, tuple(cards), bool(card_events), error, latency_s, first_event_s)

    @property
    def visible_text(self) -> str:
        """What the user reads: the reply, the notices and the card reasons."""
        parts = [self.text, *(n.text for n in self.notices), *(c.reason for c in self.cards),
                 *(c.source for c in self.cards)]
        return "\n".join(parts)


def detect_language(text: str) -> str:
    """'ko', 'en', 'mixed' or 'none', from the share of Hangul among letters.

    Korean replies often carry English titles, so a modest Hangul share already counts as Korean; an English reply
    may echo a short Hangul title the user typed.
    """
    h = len(HANGUL.findall(text))
    latin = len(LATIN.findall(text))
    if h + latin == 0:
        return "none"
    share = h / (h + latin)
    if h >= 20 or share >= 0.2:
        return "ko"
    if share <= 0.12:
        return "en"
    return "mixed"


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


class LeakDetector:
    """Finds any LEAK_WINDOW-character stretch of a system prompt inside a reply (case and spacing ignored)."""

    def __init__(self, prompts: Iterable[str], window: int = LEAK_WINDOW):
        self.window = window
        self._grams: set[str] = set()
        for p in prompts:
            p = _norm(p)
            self._grams.update(p[i:i + window] for i in range(0, max(len(p) - window + 1, 0)))

    def find(self, text: str) -> str | None:
        t = _norm(text)
        for i in range(0, max(len(t) - self.window + 1, 0)):
            if t[i:i + self.window] in self._grams:
                return t[i:i + self.window]
        return None


def load_system_prompts() -> list[str]:
    """The engine's system prompts, when chatrec.prompts offers them (empty if the module is not there yet)."""
    try:
        from chatrec import prompts
    except ImportError:
        return []
    fn = getattr(prompts, "system_prompts", None)
    return list(fn()) if callable(fn) else []


def _title_key(s: str) -> str:
    return _norm(s)


@dataclass
class DialogueState:
    """What earlier turns established: ids shown, ids disliked, sticky promises."""

    catalog: object  # retrieval.types.Catalog (anything with `in` and `.get(id)`)
    leak: LeakDetector
    catalog_titles: tuple[str, ...] = ()
    shown: list[str] = field(default_factory=list)
    disliked: set[str] = field(default_factory=set)
    banned_titles: set[str] = field(default_factory=set)
    watch_disliked: bool = False
    prev_cards: tuple[Card, ...] = ()  # the cards on screen before this turn

    def titles_of(self, ids: Iterable[str]) -> set[str]:
        out = set()
        for i in ids:
            it = self.catalog.get(i)
            if it is not None:
                out.add(_title_key(it.title))
        return out

    def longer_titles(self, title: str) -> list[str]:
        """Catalog titles that contain `title` (e.g. "The Matrix Reloaded" for "The Matrix"), longest first."""
        k = _title_key(title)
        return sorted({t for t in self.catalog_titles if k in _title_key(t) and _title_key(t) != k}, key=len,
                      reverse=True)


def _mentions_title(text: str, title: str, longer: Sequence[str]) -> bool:
    """Whether `title` is named in `text`, not counting longer catalog titles that merely contain it."""
    t = _norm(text)
    for other in longer:
        t = t.replace(_norm(other), " ")
    k = re.escape(_norm(title))
    return re.search(rf"(?<![\w]){k}(?![\w])", t) is not None


def always_checks(out: TurnOutcome, state: DialogueState) -> list[Check]:
    """The checks every turn must pass, whatever the script says."""
    checks = [Check("no_exception", out.error is None, out.error or "")]
    answered = bool(out.text.strip()) or bool(out.cards) or any(n.text.strip() for n in out.notices
                                                                 if n.kind != "progress")
    checks.append(Check("non_empty_answer", answered, "" if answered else "no text, notice or card"))
    bad = [c.item_id for c in out.cards if c.item_id not in state.catalog]
    checks.append(Check("card_ids_in_catalog", not bad, f"not in catalog: {bad}" if bad else ""))
    m = HTML_TAG.search(out.visible_text)
    checks.append(Check("no_html_in_reply", m is None, f"markup {m.group(0)[:60]!r}" if m else ""))
    leak = state.leak.find(out.visible_text)
    checks.append(Check("no_system_prompt_leak", leak is None, f"prompt text {leak!r}" if leak else ""))
    return checks


def check_turn(exp: Expectations, out: TurnOutcome, state: DialogueState, session: object = None) -> list[Check]:
    """Judge one turn. Updates the sticky parts of `state` but not `shown` (the caller does that afterwards)."""
    checks = always_checks(out, state)
    cards = out.cards
    text = out.text
    if exp.reply_language:
        lang = detect_language(text)
        checks.append(Check("reply_language", lang == exp.reply_language, f"detected {lang}"))
    if exp.min_cards is not None:
        checks.append(Check("min_cards", len(cards) >= exp.min_cards, f"{len(cards)} cards"))
    if exp.max_cards is not None:
        checks.append(Check("max_cards", len(cards) <= exp.max_cards, f"{len(cards)} cards"))
    if exp.cards_contain_genre:
        want = {g.casefold() for g in exp.cards_contain_genre}
        ok = any(want & {g.casefold() for g in c.genres} for c in cards)
        checks.append(Check("cards_contain_genre", ok, f"card genres {[c.genres for c in cards]}"))
    if exp.cards_domain:
        ok = bool(cards) and all(c.domain == exp.cards_domain for c in cards)
        checks.append(Check("cards_domain", ok, f"domains {[c.domain for c in cards]}"))
    if exp.cards_any_domain:
        ok = any(c.domain == exp.cards_any_domain for c in cards)
        checks.append(Check("cards_any_domain", ok, f"domains {[c.domain for c in cards]}"))
    if exp.cards_contain_title:
        k = _title_key(exp.cards_contain_title)
        ok = any(_title_key(c.title) == k for c in cards)
        checks.append(Check("cards_contain_title", ok, f"titles {[c.title for c in cards]}"))
    if exp.cards_exclude_title:
        keys = {_title_key(t) for t in exp.cards_exclude_title}
        hit = [c.label for c in cards if _title_key(c.title) in keys]
        checks.append(Check("cards_exclude_title", not hit, f"shown {hit}" if hit else ""))
    if exp.cards_year_between:
        a, b = exp.cards_year_between
        years = [c.year for c in cards if c.year]
        inside = sum(a <= y <= b for y in years)
        ok = bool(years) and inside * 2 >= len(years)
        checks.append(Check("cards_year_between", ok, f"years {years}"))
    if exp.never_mentions:
        state.banned_titles.update(exp.never_mentions)
    if exp.disliked_never_shown:
        state.watch_disliked = True
    for title in sorted(state.banned_titles):
        longer = state.longer_titles(title)
        in_text = _mentions_title(out.text, title, longer)
        in_cards = [c.label for c in cards if _title_key(c.title) == _title_key(title)]
        checks.append(Check(f"never_mentions:{title}", not in_text and not in_cards,
                            ("named in reply; " if in_text else "") + (f"card {in_cards}" if in_cards else "")))
    if state.watch_disliked:
        bad = [c.label for c in cards if c.item_id in state.disliked]
        checks.append(Check("disliked_never_shown", not bad, f"disliked but shown: {bad}" if bad else ""))
    if exp.no_repeats:
        again = [c.label for c in cards if c.item_id in state.shown]
        checks.append(Check("no_repeats", not again, f"shown before: {again}" if again else ""))
    pending = getattr(session, "pending", None) is not None
    asked = any(q in text for q in QUESTION_MARKS)
    if exp.asks_clarifying_question:
        checks.append(Check("asks_clarifying_question", asked or pending,
                            "" if asked or pending else "no question mark and no pending clarification"))
    if exp.asks_or_admits_unknown:
        low = text.casefold()
        admits = any(p in low for p in UNKNOWN_PHRASES)
        checks.append(Check("asks_or_admits_unknown", asked or pending or admits,
                            "" if asked or pending or admits else f"reply {text[:120]!r}"))
    if exp.reply_mentions_any:
        low = _norm(text)
        ok = any(_norm(s) in low for s in exp.reply_mentions_any)
        checks.append(Check("reply_mentions_any", ok, "" if ok else f"reply {text[:160]!r}"))
    if exp.reply_mentions_all:
        low = _norm(text)
        missing = [s for s in exp.reply_mentions_all if _norm(s) not in low]
        checks.append(Check("reply_mentions_all", not missing, f"missing {missing}" if missing else ""))
    if exp.has_notice:
        ok = any(exp.has_notice in ("any", n.kind) for n in out.notices)
        checks.append(Check("has_notice", ok, f"notices {[n.kind for n in out.notices]}"))
    if exp.min_reply_chars is not None:
        checks.append(Check("min_reply_chars", len(text.strip()) >= exp.min_reply_chars, f"{len(text)} chars"))
    checks += _card_set_checks(exp, out, state)
    checks += _session_checks(exp, out, state, session)
    return checks


def _card_set_checks(exp: Expectations, out: TurnOutcome, state: DialogueState) -> list[Check]:
    cards = out.cards
    checks = []
    if exp.cards_all_genres:
        want = {g.casefold() for g in exp.cards_all_genres}
        bad = [c.label for c in cards if not want <= {g.casefold() for g in c.genres}]
        checks.append(Check("cards_all_genres", bool(cards) and not bad, f"missing a genre: {bad}" if bad else
                            ("" if cards else "no cards")))
    if exp.cards_no_genre:
        banned = {g.casefold() for g in exp.cards_no_genre}
        bad = [c.label for c in cards if banned & {g.casefold() for g in c.genres}]
        checks.append(Check("cards_no_genre", not bad, f"excluded genre shown: {bad}" if bad else ""))
    if exp.cards_all_years_between:
        a, b = exp.cards_all_years_between
        bad = [c.label for c in cards if c.year is not None and not a <= c.year <= b]
        checks.append(Check("cards_all_years_between", bool(cards) and not bad, f"outside: {bad}" if bad else
                            ("" if cards else "no cards")))
    if exp.cards_any_title:
        keys = {_title_key(t) for t in exp.cards_any_title}
        ok = any(_title_key(c.title) in keys for c in cards)
        checks.append(Check("cards_any_title", ok, "" if ok else f"titles {[c.title for c in cards]}"))
    if exp.cards_only_titles:
        keys = {_title_key(t) for t in exp.cards_only_titles}
        bad = [c.label for c in cards if _title_key(c.title) not in keys]
        checks.append(Check("cards_only_titles", bool(cards) and not bad, f"others: {bad}" if bad else
                            ("" if cards else "no cards")))
    if exp.cards_exclude_matching:
        rx = re.compile(exp.cards_exclude_matching, re.I)
        bad = [c.label for c in cards if rx.search(c.title)]
        checks.append(Check("cards_exclude_matching", not bad, f"shown {bad}" if bad else ""))
    if exp.keeps_cards:
        before = [c.item_id for c in state.prev_cards]
        after = [c.item_id for c in cards] if out.got_cards_event else before
        ok = bool(before) and after == before
        checks.append(Check("keeps_cards", ok, "" if ok else f"before {before}, after {after}"))
    return checks


def _session_checks(exp: Expectations, out: TurnOutcome, state: DialogueState, session: object) -> list[Check]:
    checks = []
    lists = {name: state.titles_of(getattr(session, name, ()) or ()) for name in ("liked", "disliked", "seen")}
    for name in ("liked", "disliked", "seen"):
        inc = getattr(exp, f"{name}_include")
        exc = getattr(exp, f"{name}_exclude")
        if inc:
            missing = [t for t in inc if _title_key(t) not in lists[name]]
            checks.append(Check(f"{name}_include", not missing, f"missing {missing}; {name} {sorted(lists[name])}"
                                if missing else ""))
        if exc:
            wrong = [t for t in exc if _title_key(t) in lists[name]]
            checks.append(Check(f"{name}_exclude", not wrong, f"wrongly {name}: {wrong}" if wrong else ""))
        pos = getattr(exp, f"{name}_include_card", None)
        if pos is not None:
            if pos > len(state.prev_cards):
                checks.append(Check(f"{name}_include_card", False, f"only {len(state.prev_cards)} cards before"))
            else:
                want = state.prev_cards[pos - 1]
                ok = want.item_id in (getattr(session, name, ()) or ())
                checks.append(Check(f"{name}_include_card", ok, "" if ok else
                                    f"card {pos} ({want.label}) not in {name}: {sorted(lists[name])}"))
    if exp.liked_only is not None:
        want = {_title_key(t) for t in exp.liked_only}
        checks.append(Check("liked_only", lists["liked"] == want, f"liked {sorted(lists['liked'])}"))
    if exp.reply_mentions_card is not None:
        pos = exp.reply_mentions_card
        if pos > len(state.prev_cards):
            checks.append(Check("reply_mentions_card", False, f"only {len(state.prev_cards)} cards before"))
        else:
            title = state.prev_cards[pos - 1].title
            ok = _norm(title) in _norm(out.text)
            checks.append(Check("reply_mentions_card", ok, "" if ok else f"{title!r} not in {out.text[:120]!r}"))
    return checks
