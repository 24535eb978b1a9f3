"""The web UI: streamed chat, recommendation cards with feedback, onboarding, KO/EN labels, settings.

Everything user-specific lives in one `gr.State` per browser session (a `Conversation` holding the engine's
Session and the cards on screen); the module keeps no mutable globals, so concurrent users never see each other.
A session's own events run one at a time (a lock in its Conversation): a like clicked while a reply streams
waits for the reply instead of losing its acknowledgement, and parallel API calls of one session cannot
interleave their messages.

Rendering is deliberate: the engine yields plain text, and the Chatbot renders neither Markdown nor raw HTML from
it. Every message is HTML-escaped here (newlines stay newlines, shown by CSS), so `<img src=x onerror=...>` typed by a user shows
up as those characters. Cards are built from escaped fields too.

Everything that arrives through the page or the API is checked at this boundary: strings made valid text
(a lone surrogate would break every later response of the session), messages cut to what the engine reads,
ids and lists bounded, numbers finite, unknown values ignored. Nothing raw is echoed back.

Named API endpoints (for gradio_client and scripts): /chat, /feedback, /reset, /search_titles, /like_titles.
The conversation shown is kept server-side in the Conversation (not read back from the Chatbot input), so an API
client continues its session exactly as a browser tab does.
"""
from __future__ import annotations

import html
import logging
import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

import gradio as gr
from starlette.middleware import Middleware

from chatrec.engine import MAX_MESSAGE_CHARS
from chatrec.events import Card, Cards, Event, Notice, TextChunk
from chatrec.explain import display_genres, display_title, explain
from chatrec.request import ItemRef, Request, Wish
from chatrec.session import MAX_SNAPSHOT_BYTES
from chatrec.session import restore as restore_session
from chatrec.settings import redact_urls
from retrieval import rx
from retrieval.textnorm import clean_text

from .http_guard import HTTPGuard, allowed_hosts_for
from .i18n import EXAMPLES, feedback_done, normalise_language, rerank_label, t
from .taste import MARK_ICONS, export_markdown, marked_choices
from .inputs import Choice, ChoiceMenu, Count, PickList
from .sessions import SessionLimits, expiring_state, joined, start_sweeper

log = logging.getLogger(__name__)

MAX_CARDS = 10  # card slots on the page; the "number of recommendations" slider goes up to this
_BOOK_WORDS = rx.compile(r"\bbooks?\b|\bnovels?\b|책|소설", rx.IGNORECASE)
_HANGUL = rx.compile(r"[\uac00-\ud7a3]")
# Every response carries the whole displayed chat: these bound what one session can make the server hold and send.
MAX_MESSAGES = 100  # chat messages kept per session for display (the engine keeps its own shorter history)
MAX_ID_CHARS = 64  # longer than any catalog id
MAX_QUERY_CHARS = 200
MAX_PICKS = 20  # onboarding likes per click
MAX_LABELS = 1000  # search results remembered per session (to label ticked titles)
# The textbox takes a longer paste than the engine reads, so the engine can say it read only the first part (a
# browser cutting at the limit would say nothing).
PASTE_CHARS = 4 * MAX_MESSAGE_CHARS
MAX_QUEUED = 512  # events waiting in Gradio's queue, all sessions together
BUSY_WAIT_S = 60.0  # how long an event waits for the same session's previous event before saying "busy"
# Streamed updates are re-sent whole (the history and every card slot): at most one per interval besides the first
# text and the final state. An LLM's tokens still flow smoothly; a rule-based reply made in milliseconds is sent once.
STREAM_INTERVAL_S = 0.15
FEEDBACK_KINDS = ("like", "dislike", "seen")
DOMAINS = ("movie", "book")


class EngineLike(Protocol):
    """What the UI needs from chatrec.engine.Engine (kept narrow so the UI can be read on its own)."""

    def new_session(self, language: str = "en") -> Any: ...

    def turn(self, session: Any, message: str, *, domain: str | None = None) -> Iterator[Event]: ...

    def recommend(self, session: Any, request: Request) -> Iterator[Event]: ...

    def item(self, item_id: str) -> Any: ...

    def feedback(self, session: Any, item_id: str, kind: str) -> Iterator[Event]: ...

    def search_titles(self, prefix: str, k: int = 10) -> list[tuple[str, str]]: ...

    def status(self, language: str = "en") -> str: ...


@dataclass(frozen=True)
class UIConfig:
    """What the page shows about the app's configuration (built by the composition root)."""

    llm_choices: tuple[str, ...] = ("none",)  # configured backends, first = active
    rerank_modes: tuple[str, ...] = ("score",)  # available modes, first = default
    n_recs: int = 5
    domains: tuple[str, ...] = DOMAINS
    default_language: str = "en"
    notes: tuple[str, ...] = ()  # degraded parts found at start-up (e.g. Chroma down), shown in the status line


@dataclass
class Prefs:
    """Per-session choices from the settings accordion."""

    n_recs: int = 5
    domain: str = "movie"
    rerank: str = "score"
    llm: str = "none"


class EventLock:
    """Runs one session's events one at a time. Gradio deep-copies a State's initial value per session: a copy is
    a new, free lock."""

    def __init__(self):
        self._lock = threading.Lock()

    def __deepcopy__(self, memo) -> "EventLock":
        return EventLock()

    def acquire(self, timeout: float) -> bool:
        return self._lock.acquire(timeout=timeout)

    def release(self) -> None:
        # A plain Lock (not RLock): Gradio may resume a streaming handler on another worker thread.
        self._lock.release()


@dataclass
class Conversation:
    """One browser session: the engine's Session plus what this page shows. Lives in gr.State only."""

    session: Any
    cards: tuple[Card, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)  # item_id → label for picked onboarding titles
    # The chat as displayed (openai-style dicts, escaped). Kept here, not taken from the Chatbot input, so an API
    # client's conversation continues server-side exactly like a browser's.
    messages: list[dict] = field(default_factory=list)
    prefs: Prefs = field(default_factory=Prefs)
    lock: EventLock = field(default_factory=EventLock, repr=False)


# ------------------------------------------------------------------------------------------------ input checks
def text_input(value: Any, limit: int) -> str:
    """A string from the page or the API as display-safe text of at most `limit` characters ("" for non-strings)."""
    if not isinstance(value, str):
        return ""
    # Cleaning only drops characters (NFC aside): a bounded slice of a megabyte string cleans the same.
    return clean_text(value[: 4 * limit]).strip()[:limit]


def id_input(value: Any) -> str:
    """An item id as sent by a client: "" unless it is a plausible id (the engine then checks the catalog)."""
    text = text_input(value, MAX_ID_CHARS + 1)
    return text if 0 < len(text) <= MAX_ID_CHARS and not any(c.isspace() for c in text) else ""


def ids_input(values: Any) -> list[str]:
    """A list of item ids: valid ones only, without duplicates, at most MAX_PICKS."""
    if not isinstance(values, (list, tuple)):
        return []
    out: list[str] = []
    for v in values[: 10 * MAX_PICKS]:
        i = id_input(v)
        if i and i not in out:
            out.append(i)
            if len(out) == MAX_PICKS:
                break
    return out


def language_input(lang: Any) -> str:
    return normalise_language(lang if isinstance(lang, str) else None)


# ------------------------------------------------------------------------------------------------ rendering helpers
def as_text_html(text: str) -> str:
    """Plain text → HTML that displays exactly that text (the Chatbot renders HTML; we never let text be markup).
    Line breaks stay newlines, shown by CSS (white-space: pre-wrap): a <br> would be read out literally in the
    message's accessible name."""
    return html.escape(text, quote=False)


_SAFE_URL = rx.compile(r"^https://[A-Za-z0-9.-]+/[^\s\"'<>]*$")


def card_title(card: Card, item: Any, lang: str) -> str:
    """The title a reader of `lang` knows: the Korean release title in a Korean session when one is known."""
    return display_title(item, lang) if item is not None else card.title


def card_html(card: Card, lang: str, item: Any = None, liked: bool = False) -> str:
    """One recommendation: poster (or a placeholder), title in the session's language with the original in smaller
    type, year, genres in that language, MovieLens mean rating with its count, runtime, links to TMDB and IMDb,
    and the grounded reason. `item` is the catalog Item behind the card (None: what the card itself says).
    Every field is escaped; the data-aria-* attributes name the card's buttons for screen readers (set by the
    page script, plain text only)."""
    e = html.escape
    title = card_title(card, item, lang)
    year = f' <span class="rec-year">({card.year})</span>' if card.year else ""
    poster = getattr(item, "poster_url", "") or (getattr(item, "extra", {}) or {}).get("image_url", "")
    icon = "📚" if card.domain == "book" else "🎬"
    if poster and _SAFE_URL.match(poster) and "nophoto" not in poster:
        art = (f'<img class="rec-poster" src="{e(poster)}" alt="{e(t("poster_of", lang).format(title=title))}" '
               'loading="lazy" referrerpolicy="no-referrer">')
    else:
        art = f'<div class="rec-poster rec-placeholder" aria-hidden="true">{icon}</div>'
    aria = {kind: t(f"aria_{kind}", lang).format(title=title) for kind in FEEDBACK_KINDS}
    parts = [
        f'<div class="rec-card{" rec-liked" if liked else ""}" data-item-id="{e(card.item_id)}" '
        + " ".join(f'data-aria-{k}="{e(v)}"' for k, v in aria.items()) + ">",
        art, '<div class="rec-body">',
        f'<div class="rec-title">{e(title)}{year}</div>',
    ]
    if title != card.title:
        parts.append(f'<div class="rec-original" lang="en">{e(card.title)}</div>')
    if card.authors:
        parts.append(f'<div class="rec-authors">{e(t("by", lang))} {e(", ".join(card.authors))}</div>')
    facts = display_genres(card.genres, lang)[:3]
    avg, count = getattr(item, "avg_rating", None), getattr(item, "rating_count", None)
    if isinstance(avg, float) and math.isfinite(avg) and count:
        facts.append(f"★ {avg:.1f} · " + t("ratings_n", lang).format(n=f"{count:,}"))
    runtime = getattr(item, "runtime", None)
    if isinstance(runtime, int) and runtime > 0:
        facts.append(t("minutes", lang).format(n=runtime))
    cert = getattr(item, "certification_kr" if lang == "ko" else "certification_us", "")
    if cert:
        facts.append(cert)
    if facts:
        parts.append(f'<div class="rec-genres">{e(" · ".join(facts))}</div>')
    if card.reason:
        parts.append(f'<div class="rec-reason">{e(card.reason)}</div>')
    links = []
    if getattr(item, "tmdb_id", ""):
        links.append(("TMDB", f"https://www.themoviedb.org/movie/{item.tmdb_id}"))
    if getattr(item, "imdb_id", ""):
        links.append(("IMDb", f"https://www.imdb.com/title/{item.imdb_id}/"))
    if links:
        parts.append('<div class="rec-links">' + " · ".join(
            f'<a href="{e(url)}" target="_blank" rel="noopener noreferrer">{name}</a>' for name, url in links) + "</div>")
    if liked:
        parts.append(f'<div class="rec-mark">{e(t("liked_mark", lang))}</div>')
    parts.append("</div></div>")
    return "".join(parts)


def cards_payload(cards: Sequence[Card], items: Sequence[Any] = ()) -> list[dict]:
    """The cards as JSON for API clients (the page shows the HTML slots); `items`: the catalog Items behind them."""
    out = []
    for n, c in enumerate(cards):
        it = items[n] if n < len(items) else None
        out.append({"item_id": c.item_id, "title": c.title, "year": c.year, "genres": list(c.genres),
                    "domain": c.domain, "reason": c.reason, "source": c.source, "authors": list(c.authors),
                    "label": c.label, "title_ko": getattr(it, "title_ko", ""),
                    "tmdb_id": getattr(it, "tmdb_id", ""), "imdb_id": getattr(it, "imdb_id", ""),
                    "avg_rating": getattr(it, "avg_rating", None), "rating_count": getattr(it, "rating_count", None),
                    "runtime": getattr(it, "runtime", None), "poster_url": getattr(it, "poster_url", "")})
    return out


def status_line(engine: EngineLike, config: UIConfig, lang: str = "en") -> str:
    """The configuration line on the page. URLs lose user:password and query: every visitor sees this line."""
    parts = [engine.status(language=lang), *config.notes]
    return " · ".join(html.escape(redact_urls(p)) for p in parts if p)


def notice_line(n: Notice) -> str:
    icon = {"fallback": "⚠️", "error": "⛔", "progress": "⏳"}.get(n.kind, "ℹ️")
    return f"{icon} {n.text}"


@contextmanager
def one_at_a_time(conv: Conversation, lang: str) -> Iterator[None]:
    """Hold the session's event lock; an event that cannot get it in BUSY_WAIT_S is refused in the user's language,
    changing nothing."""
    if not conv.lock.acquire(timeout=BUSY_WAIT_S):
        raise gr.Error(t("busy", lang))
    try:
        yield
    finally:
        conv.lock.release()


# ------------------------------------------------------------------------------------------------ controller
class ChatController:
    """The event handlers, free of layout. Holds only the (shared, read-only from here) engine and UI config."""

    def __init__(self, engine: EngineLike, config: UIConfig,
                 engine_for: Callable[..., EngineLike] | None = None):
        self.engine = engine  # titles search, status, new sessions
        self.config = config
        self.engine_for = engine_for  # per-session variants: engine_for(rerank=, use_llm=, n_recs=)

    # -- state ------------------------------------------------------------------------------------------------
    def new_conversation(self, lang: str | None = None) -> Conversation:
        lang = normalise_language(lang or self.config.default_language)
        conv = Conversation(session=self.engine.new_session(language=lang))
        conv.prefs = Prefs(n_recs=self.config.n_recs, domain=self.config.domains[0],
                           rerank=self.config.rerank_modes[0], llm=self.config.llm_choices[0])
        return conv

    def ensure(self, conv: Conversation | None, lang: str) -> Conversation:
        if not isinstance(conv, Conversation):
            return self.new_conversation(lang)
        if not conv.messages:  # nothing said yet: speak the page's language (the engine follows the user's later)
            conv.session.language = lang
        return conv

    def apply_prefs(self, conv: Conversation, n_recs, domain, rerank, llm) -> None:
        """Settings from the accordion (or an API call): out-of-range or malformed values change nothing."""
        p = conv.prefs
        if isinstance(n_recs, (int, float)) and not isinstance(n_recs, bool) and math.isfinite(n_recs):
            p.n_recs = max(1, min(MAX_CARDS, int(n_recs)))
        if isinstance(domain, str) and domain in self.config.domains:
            p.domain = domain
        if isinstance(rerank, str) and rerank in self.config.rerank_modes:
            p.rerank = rerank
        if isinstance(llm, str) and llm in self.config.llm_choices:
            p.llm = llm

    def engine_of(self, conv: Conversation) -> EngineLike:
        """The engine for this session's settings (rerank mode, LLM on/off, list length); all share the fitted parts."""
        if self.engine_for is None:
            return self.engine
        p = conv.prefs
        return self.engine_for(rerank=p.rerank, use_llm=p.llm != "none", n_recs=p.n_recs)


    # -- outputs ----------------------------------------------------------------------------------------------
    def card_bodies(self, conv: Conversation, lang: str) -> list[str]:
        """The HTML of every card slot ("" hides a slot, by CSS).

        Plain values on purpose: Gradio rebuilds a component (and its whole config) for every property update,
        gr.skip() included, which made the 22 card outputs of each streamed update the largest cost of a turn."""
        shown = conv.cards[: conv.prefs.n_recs]
        liked = set(conv.session.liked)
        return [card_html(shown[i], lang, self.engine.item(shown[i].item_id), shown[i].item_id in liked)
                if i < len(shown) else "" for i in range(MAX_CARDS)]

    # -- chat -------------------------------------------------------------------------------------------------
    def respond(self, message: str, conv: Conversation | None, lang: str,
                n_recs=None, domain=None, rerank=None, llm=None) -> Iterator[tuple]:
        """Streams (textbox, chatbot, cards_json, *bodies); the session is changed in place."""
        lang = language_input(lang)
        conv = self.ensure(conv, lang)
        # What the page keeps and shows is what the engine reads (MAX_MESSAGE_CHARS); one more character lets
        # the engine see, and say, that the message was cut.
        text = text_input(message, MAX_MESSAGE_CHARS + 1)
        with one_at_a_time(conv, lang):
            self.apply_prefs(conv, n_recs, domain, rerank, llm)
            if not text.strip():
                yield ("", list(conv.messages), *self._cards_out(conv, lang))
                return
            shown = text[:MAX_MESSAGE_CHARS] + ("…" if len(text) > MAX_MESSAGE_CHARS else "")
            conv.messages.append({"role": "user", "content": as_text_html(shown)})
            cleared = False
            for _, history in self._stream_turn(conv, text):
                # The box is emptied once; later updates leave alone what the user types meanwhile.
                yield (gr.skip() if cleared else "", history, *self._cards_out(conv, lang))
                cleared = True

    def _stream_turn(self, conv: Conversation, message: str | None, lead: str = "",
                     request: Request | None = None) -> Iterator[tuple[bool, list]]:
        """Runs one engine turn into a new assistant message; yields (is_final, history copy) as text streams.

        Called with the session's lock held; the reply is written only into its own message (by position)."""
        history = conv.messages
        del history[:-MAX_MESSAGES]
        history.append({"role": "assistant", "content": as_text_html(lead)})
        mine = len(history) - 1
        text, notices = lead, []
        engine = self.engine_of(conv)
        writes_intro = conv.prefs.llm != "none"
        # No update before there is something to show: a turn without an LLM is done in tens of milliseconds and
        # goes out as one update (every update costs the server a full postprocess of the page's outputs); a
        # slow turn shows its progress line, its cards and its first words as soon as each exists.
        started = sent_at = time.monotonic()
        first_text = True
        # Typed requests from the page (onboarding) and the domain setting go to the engine as such: nothing is
        # written into the user's message on their behalf.
        events = (engine.recommend(conv.session, request) if request is not None
                  else engine.turn(conv.session, message, domain=conv.prefs.domain))
        for ev in events:
            if isinstance(ev, Cards):
                conv.cards = tuple(ev.cards)
                if writes_intro:
                    # Cards go on screen as soon as the ranking is known, while the LLM's intro is still to come;
                    # without an LLM the text follows at once and one update carries both (each costs the server).
                    sent_at = time.monotonic()
                    yield False, list(history)
                continue
            if isinstance(ev, TextChunk):
                if text == lead:  # the reply has started: the progress line has done its job
                    notices = [n for n in notices if n.kind != "progress"]
                text += ev.text
            elif isinstance(ev, Notice):
                notices.append(ev)
            history[mine] = {"role": "assistant", "content": self._reply_html(text, notices)}
            now = time.monotonic()
            if ((first_text and text != lead and now - started >= STREAM_INTERVAL_S)
                    or now - sent_at >= STREAM_INTERVAL_S or _is_progress(ev)):
                first_text = first_text and text == lead
                sent_at = now
                yield False, list(history)
        notices = [n for n in notices if n.kind != "progress"]  # the work is done: only what stays true remains
        history[mine] = {"role": "assistant", "content": self._reply_html(text, notices)}
        yield True, list(history)

    def _cards_out(self, conv: Conversation, lang: str) -> list:
        """(cards_json, *bodies) for the cards now in the conversation."""
        shown = conv.cards[: conv.prefs.n_recs]
        return [cards_payload(shown, [self.engine.item(c.item_id) for c in shown]), *self.card_bodies(conv, lang)]

    @staticmethod
    def _reply_html(text: str, notices: Sequence[Notice]) -> str:
        lines = [text.strip(), *(notice_line(n) for n in notices)]
        return as_text_html("\n".join(line for line in lines if line))

    # -- feedback ---------------------------------------------------------------------------------------------
    def feedback(self, item_id: str, kind: str, conv: Conversation | None, lang: str) -> tuple:
        """(chatbot, cards_json, *bodies) after like/dislike/seen on `item_id`."""
        lang = language_input(lang)
        conv = self.ensure(conv, lang)
        if not isinstance(kind, str) or kind not in FEEDBACK_KINDS:
            raise gr.Error(t("bad_kind", lang))
        item_id = id_input(item_id)
        with one_at_a_time(conv, lang):
            label = next((c.label for c in conv.cards if c.item_id == item_id), conv.labels.get(item_id))
            text, notices = self._drain(conv, self.engine_of(conv).feedback(conv.session, item_id, kind))
            # The engine acknowledges in the user's language; our own line is only for an engine that says nothing
            # at all, and never claims success for an item it refused.
            if not text.strip() and not notices and label:
                text = feedback_done(kind, lang) + label
            history = conv.messages
            history.append({"role": "assistant", "content": self._reply_html(text, notices)})
            del history[:-MAX_MESSAGES]
            return (list(history), *self._cards_out(conv, lang))

    def feedback_slot(self, slot: int, kind: str, conv, lang) -> tuple:
        lang = language_input(lang)
        conv = self.ensure(conv, lang)
        shown = conv.cards[: conv.prefs.n_recs]
        if slot >= len(shown):  # a stale click on a slot that was just emptied: nothing to do
            return (list(conv.messages), *self._cards_out(conv, lang))
        return self.feedback(shown[slot].item_id, kind, conv, lang)

    def _drain(self, conv: Conversation, events: Iterable[Event]) -> tuple[str, list[Notice]]:
        text, notices = "", []
        for ev in events:
            if isinstance(ev, TextChunk):
                text += ev.text
            elif isinstance(ev, Notice):
                notices.append(ev)
            elif isinstance(ev, Cards):
                conv.cards = tuple(ev.cards)
        return text, notices

    # -- onboarding -------------------------------------------------------------------------------------------
    def search(self, query: str, picked: list[str] | None, conv: Conversation | None, lang: str):
        """Search-as-you-type: ticked titles stay ticked and listed while the results below them change."""
        lang = language_input(lang)
        conv = self.ensure(conv, lang)
        picked = ids_input(picked)
        query = text_input(query, MAX_QUERY_CHARS)
        hits = self.engine.search_titles(query, k=10) if query.strip() else []
        hits = [(i, self._label(i, label, lang)) for i, label in hits]
        for item_id, label in hits:
            if len(conv.labels) < MAX_LABELS:
                conv.labels.setdefault(item_id, label)
        # Only titles this session found by searching are listed: an id typed into the API is not echoed.
        picked = [i for i in picked if i in conv.labels]
        choices = [(conv.labels[i], i) for i in picked]
        choices += [(label, item_id) for item_id, label in hits if item_id not in picked]
        return gr.update(choices=choices, value=picked)

    def _label(self, item_id: str, fallback: str, lang: str, original: bool = True) -> str:
        """A title as the reader knows it: "매트릭스 (1999) · The Matrix" in Korean (the original only when
        `original`), "The Matrix (1999)" in English."""
        it = self.engine.item(item_id)
        if it is None:
            return fallback
        title = display_title(it, lang)
        label = f"{title} ({it.year})" if it.year else title
        return label + (f" · {it.title}" if original and title != it.title else "")

    def like_titles(self, picked: list[str] | None, conv: Conversation | None, lang: str,
                    n_recs=None, domain=None, rerank=None, llm=None) -> Iterator[tuple]:
        """Onboarding: like every ticked title, then stream recommendations that follow from them.

        Streams (picks, chatbot, cards_json, *bodies)."""
        lang = language_input(lang)
        conv = self.ensure(conv, lang)
        picked = ids_input(picked)
        if not picked:
            raise gr.Error(t("picked_none", lang))
        with one_at_a_time(conv, lang):
            self.apply_prefs(conv, n_recs, domain, rerank, llm)
            engine = self.engine_of(conv)
            known = [i for i in picked if engine.item(i) is not None]
            if not known:  # nothing known was ticked: say why, and run no turn
                conv.messages.append({"role": "assistant",
                                      "content": self._reply_html("", [Notice(t("not_in_catalog", lang), "error")])})
                del conv.messages[:-MAX_MESSAGES]
                yield (gr.update(value=[]), list(conv.messages), *self._cards_out(conv, lang))
                return
            liked = [self._label(i, engine.item(i).label, lang, original=False) for i in known]
            lead = t("you_liked", lang) + ", ".join(liked) + "\n"
            # A typed request: these titles are liked and anchor the recommendation (ALS fold-in).
            request = Request(intent="recommend", language=lang, new_topic=True, domain_set=True,
                              refs=[ItemRef(item_id=i, polarity="like", via="ui") for i in known],
                              wish=Wish(domain=conv.prefs.domain, anchors=known))
            for final, history in self._stream_turn(conv, None, lead=lead, request=request):
                if final:
                    yield (gr.update(value=[]), history, *self._cards_out(conv, lang))
                else:
                    yield (gr.skip(), history, *self._cards_out(conv, lang))

    # -- taste panel ----------------------------------------------------------------------------------------
    def marks_update(self, conv: Conversation, lang: str):
        return gr.update(choices=marked_choices(conv.session, self.engine.item, lang), value=[])

    def journeys_of(self, conv: Conversation) -> list:
        """The session's interest journeys (chatrec/journeys.py) over its liked titles: genres, decade, director."""
        from chatrec.journeys import journeys

        catalog = getattr(self.engine, "catalog", None)
        liked = [i for i in conv.session.liked if catalog is not None and i in catalog]
        return journeys(liked, catalog) if len(liked) >= 2 else []

    def journeys_update(self, conv: Conversation, lang: str):
        js = self.journeys_of(conv)
        choices = [(f"{j.name(lang)} ({len(j)})", str(n)) for n, j in enumerate(js)]
        return gr.update(choices=choices, value=None)

    def taste(self, conv: Conversation | None, lang: str) -> tuple:
        """(marks, journeys) for the taste panel after any change."""
        lang = language_input(lang)
        conv = self.ensure(conv, lang)
        return self.marks_update(conv, lang), self.journeys_update(conv, lang)

    def taste_and_snapshot(self, conv: Conversation | None, lang: str) -> tuple:
        """(marks, journeys, saved session) after a change: the taste panel and what the browser keeps."""
        return (*self.taste(conv, lang), self.snapshot(conv))

    def undo(self, picked: list[str] | None, conv: Conversation | None, lang: str) -> tuple:
        """Take back the marks of the ticked titles. Returns (chatbot, cards_json, *bodies)."""
        lang = language_input(lang)
        conv = self.ensure(conv, lang)
        picked = ids_input(picked)
        with one_at_a_time(conv, lang):
            undone = [i for i in picked if conv.session.unmark(i)]
            if undone:
                names = ", ".join(display_title(self.engine.item(i), lang) for i in undone if self.engine.item(i))
                conv.messages.append({"role": "assistant", "content": as_text_html(t("undone", lang) + names)})
                del conv.messages[:-MAX_MESSAGES]
            return (list(conv.messages), *self._cards_out(conv, lang))

    def export(self, conv: Conversation | None, lang: str) -> str:
        lang = language_input(lang)
        conv = self.ensure(conv, lang)
        return export_markdown(conv.cards[: conv.prefs.n_recs], conv.session, self.engine.item, lang)

    def steer(self, choice: Any, conv: Conversation | None, lang: str, n_recs=None, domain=None, rerank=None,
              llm=None) -> Iterator[tuple]:
        """A journey picked in the taste panel: its titles anchor the next recommendations (a typed request)."""
        lang = language_input(lang)
        conv = self.ensure(conv, lang)
        js = self.journeys_of(conv)
        index = int(choice) if isinstance(choice, str) and choice.isdigit() else -1
        if not 0 <= index < len(js):
            yield (list(conv.messages), *self._cards_out(conv, lang))
            return
        with one_at_a_time(conv, lang):
            self.apply_prefs(conv, n_recs, domain, rerank, llm)
            anchors = list(js[index].item_ids)
            request = Request(intent="recommend", language=lang, new_topic=True, domain_set=True,
                              wish=Wish(domain="movie", anchors=anchors))
            lead = f"🧭 {js[index].name(lang)}\n"
            for _, history in self._stream_turn(conv, None, lead=lead, request=request):
                yield (history, *self._cards_out(conv, lang))

    # -- persistence ------------------------------------------------------------------------------------------
    @staticmethod
    def snapshot(conv: Conversation | None) -> str:
        """What the browser keeps (localStorage) between reloads: the engine's session as JSON."""
        return conv.session.snapshot() if isinstance(conv, Conversation) else ""

    def restore(self, saved: Any, lang: str) -> tuple:
        """A reload: the saved session, validated (unknown ids dropped, sizes capped, a forged or outdated one
        refused), comes back with its chat and cards. Returns (conv, chatbot, cards_json, *bodies)."""
        lang = language_input(lang)
        conv = self.new_conversation(lang)
        if saved == TOO_LARGE:
            conv.messages.append({"role": "assistant", "content": as_text_html(t("restore_failed", lang))})
        elif saved:
            try:
                session = restore_session(saved, known=lambda i: self.engine.item(i) is not None)
            except ValueError as e:
                log.info("saved session refused: %s", str(e)[:200])
                conv.messages.append({"role": "assistant", "content": as_text_html(t("restore_failed", lang))})
            else:
                conv.session = session
                # A saved reply joins its streamed lines with newlines of their own: one line break each.
                conv.messages = [{"role": turn.role, "content": as_text_html(rx.sub(r"\n{2,}", "\n", turn.text))}
                                 for turn in session.history][-MAX_MESSAGES:]
                cards = []
                for i in session.last_cards:
                    it = self.engine.item(i)
                    if it is not None and i not in session.disliked and i not in session.seen:
                        reason, source = (list(session.card_notes.get(i) or []) + ["", ""])[:2]
                        cards.append(Card(item_id=it.id, title=it.title, year=it.year, genres=tuple(it.genres),
                                          domain=it.domain, reason=reason, source=source,
                                          authors=tuple(it.authors)))
                conv.cards = tuple(cards)
        return (conv, list(conv.messages), *self._cards_out(conv, lang))

    # -- reset ------------------------------------------------------------------------------------------------
    def reset(self, lang: str, conv: Conversation | None = None) -> tuple:
        """A fresh session. Waits for the old one's running event, so its last update cannot bring it back."""
        lang = language_input(lang)
        if isinstance(conv, Conversation):
            with one_at_a_time(conv, lang):
                fresh = self.new_conversation(lang)
        else:
            fresh = self.new_conversation(lang)
        return ([], fresh, *self._cards_out(fresh, lang))

    # -- language ---------------------------------------------------------------------------------------------
    def reexplain(self, conv: Conversation, lang: str) -> None:
        """The language was switched: replies follow it from now on, and the cards' reasons are written again in
        it from the same grounded facts (a reason is never shown in the other language)."""
        session = conv.session
        session.language = lang
        if not conv.cards:
            return
        try:
            wish = Wish.model_validate(session.state) if session.state else Wish()
        except ValueError:
            wish = Wish()
        liked = [it for it in map(self.engine.item, session.liked) if it is not None]
        cards = []
        for c in conv.cards:
            it = self.engine.item(c.item_id)
            if it is not None:
                others = [x for x in liked if x.id != it.id]  # a liked card is not its own evidence
                ex = explain(it, lang=lang, liked=others, wish=wish, sources=("search",) if session.state else ())
                c = replace(c, reason=ex.reason, source=ex.source)
                if c.item_id in session.card_notes:
                    # A new dict, not an in-place change: the taste panel and the snapshot read the session
                    # without its lock.
                    session.card_notes = {**session.card_notes, c.item_id: [ex.reason, ex.source]}
            cards.append(c)
        conv.cards = tuple(cards)

    def relabel(self, lang: str, conv: Conversation | None) -> list:
        lang = language_input(lang)
        ex = EXAMPLES[lang]
        if isinstance(conv, Conversation):
            with one_at_a_time(conv, lang):
                self.reexplain(conv, lang)
            body_updates = [gr.update(value=b) for b in self.card_bodies(conv, lang)]
            marks, journeys = self.marks_update(conv, lang), self.journeys_update(conv, lang)
        else:
            body_updates = [gr.skip()] * MAX_CARDS
            marks, journeys = gr.update(), gr.update()
        return [
            gr.update(value=f"## {t('title', lang)}"),
            gr.update(value=status_line(self.engine, self.config, lang)),
            gr.update(label=t("chat", lang)),
            gr.update(label=t("message", lang), placeholder=t("message_placeholder", lang)),
            gr.update(value=t("send", lang)),
            gr.update(value=t("reset", lang)),
            gr.update(value=f"**{t('examples', lang)}**"),
            *[gr.update(value=e) for e in ex],
            gr.update(value=t("cards", lang)),
            gr.update(value=t("no_cards", lang)),
            gr.update(label=t("onboarding", lang)),
            gr.update(value=t("onboarding_hint", lang)),
            gr.update(label=t("search", lang), placeholder=t("search_placeholder", lang)),
            gr.update(label=t("picks", lang)),
            gr.update(value=t("like_picks", lang)),
            gr.update(label=t("settings", lang)),
            gr.update(label=t("llm", lang)),
            gr.update(label=t("rerank", lang),
                      choices=[(rerank_label(m, lang), m) for m in self.config.rerank_modes]),
            gr.update(label=t("n_recs", lang)),
            gr.update(label=t("domain", lang), choices=self._domain_choices(lang)),
            *[gr.update(value=t(kind, lang)) for _ in range(MAX_CARDS) for kind in FEEDBACK_KINDS],
            *body_updates,
            gr.update(label=t("taste", lang)),
            gr.update(value=t("taste_hint", lang)),
            gr.update(value=t("undo", lang)),
            gr.update(value=t("export", lang)),
            gr.update(label=t("export_text", lang)),
            gr.update(value=t("journey_go", lang)),
            {**marks, "label": t("marks", lang)},
            {**journeys, "label": t("journeys", lang), "info": t("journeys_hint", lang)},
        ]

    def _domain_choices(self, lang: str) -> list[tuple[str, str]]:
        names = {"movie": t("movies", lang), "book": t("books", lang)}
        return [(names[d], d) for d in self.config.domains]


# ------------------------------------------------------------------------------------------------ layout
CSS = """
.rec-card {display: flex; gap: 10px; padding: 4px 2px; align-items: flex-start;}
.rec-poster {width: 72px; min-width: 72px; height: 108px; object-fit: cover; border-radius: 6px;}
.rec-placeholder {display: flex; align-items: center; justify-content: center; font-size: 28px;
  background: var(--background-fill-secondary); border: 1px solid var(--border-color-primary);}
.rec-body {flex: 1; min-width: 0;}
.rec-title {font-weight: 600; font-size: 1.05em; overflow-wrap: anywhere; word-break: keep-all;}
.rec-year {font-weight: 400; opacity: .75; white-space: nowrap;}
.rec-original {font-size: .8em; opacity: .7;}
.rec-genres, .rec-authors {font-size: .85em; opacity: .8;}
.rec-reason {margin-top: 4px;}
.rec-links {font-size: .85em; margin-top: 2px;}
.rec-mark {font-size: .85em; color: var(--color-accent); margin-top: 2px;}
.card-buttons button {min-width: 0 !important;}
#status-line {font-size: .9em; opacity: .85;}
.rec-slot:not(:has(.rec-card)) {display: none !important;}
#cards-panel:has(.rec-card) #no-cards {display: none !important;}
#chatbot .message {white-space: pre-wrap;}
/* Desktop: chat and the panels under it on the left, cards on the right. Phone: chat, cards, then the panels. */
#main-row {display: grid !important; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr);
  grid-template-areas: "chat cards" "extras cards"; gap: 16px; align-items: start;}
#chat-col {grid-area: chat; min-width: 0 !important;}
#cards-panel {grid-area: cards; min-width: 0 !important;}
#extras-col {grid-area: extras; min-width: 0 !important;}
@media (max-width: 820px) {
  #main-row {grid-template-columns: minmax(0, 1fr); grid-template-areas: "chat" "cards" "extras";}
  #chatbot {height: 360px !important;}
  #header-row {flex-wrap: wrap !important;}
  #app-title {min-width: 100% !important;}
  .card-buttons {flex-wrap: nowrap !important;}
}
"""

# Names the card buttons for screen readers from the card they belong to ("Like The Matrix"): the data-aria-*
# attributes carry plain text, set as aria-label (never markup). Runs on every change of the cards.
PAGE_JS = """
() => {
  const name = () => {
    document.querySelectorAll('.rec-slot').forEach((slot) => {
      const card = slot.querySelector('.rec-card');
      ['like', 'dislike', 'seen'].forEach((kind) => {
        const b = slot.querySelector('button[id^="' + kind + '-"]');
        if (!b) return;
        const label = card ? card.getAttribute('data-aria-' + kind) : null;
        if (label && b.getAttribute('aria-label') !== label) b.setAttribute('aria-label', label);
      });
    });
  };
  new MutationObserver(name).observe(document.body, {childList: true, subtree: true});
  name();
}
"""

STORAGE_KEY = "chatrec-session"
TOO_LARGE = "saved-session-too-large"  # what the page sends instead of a saved session over the cap
SAVE_JS = f"(v) => {{ if (v) localStorage.setItem('{STORAGE_KEY}', v); }}"
# A saved session too large for the request-body cap (one saved by an older version) is dropped here, in the page,
# and the server is told so: it says what happened instead of the browser showing "Request body too large".
LOAD_JS = (f"(s, l) => {{ const v = localStorage.getItem('{STORAGE_KEY}') || ''; "
           f"if (new TextEncoder().encode(v).length > {MAX_SNAPSHOT_BYTES}) "
           f"{{ localStorage.removeItem('{STORAGE_KEY}'); return ['{TOO_LARGE}', l]; }} return [v, l]; }}")

# The browser's language, once the saved session is back; the page then marks itself loaded (data-chatrec-loaded),
# which scripts driving it (the browser tests, a screen reader's user script) can wait on instead of a delay.
LANG_JS = ("() => { document.documentElement.dataset.chatrecLoaded = '1'; "
           "return (navigator.language || 'en').toLowerCase().startsWith('ko') ? 'ko' : 'en'; }")

DOWNLOAD_JS = """
(text) => {
  if (!text) return;
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], {type: 'text/markdown;charset=utf-8'}));
  a.download = 'chatrec-list.md';
  document.body.appendChild(a); a.click(); a.remove();
}
"""


def build_ui(engine: EngineLike, config: UIConfig | None = None, *, concurrency: int = 4,
             engine_for: Callable[..., EngineLike] | None = None,
             limits: SessionLimits = SessionLimits()) -> gr.Blocks:
    """The Blocks app, queued with a per-event concurrency limit. Launch with `launch_ui(demo, ...)`.

    `engine_for(rerank=, use_llm=, n_recs=)` returns the engine for a session's settings (chatrec.bootstrap's
    `Built.engine_for`); without it every session uses `engine` and the settings only trim the card list.
    """
    config = config or UIConfig()
    ctl = ChatController(engine, config, engine_for)
    lang0 = normalise_language(config.default_language)

    with gr.Blocks(title="Chat-REC", analytics_enabled=False) as demo:
        # One Conversation per browser session, made when the session first needs it (a function, not a value:
        # Gradio calls it per session; a value would be deep-copied from one shared object).
        # It expires `limits.idle_s` after its last update (ui/sessions.py); the browser keeps a saved copy.
        conv = expiring_state(lambda: ctl.new_conversation(), limits.idle_s)
        # The session as JSON in this browser's localStorage, so a reload continues it. Read by the load event's
        # own script (gr.BrowserState fills its value after the load event may already have run); whatever it
        # holds is validated by ChatController.restore before use.
        saved = gr.Textbox(visible=False, elem_id="saved-session")
        with gr.Row(equal_height=True, elem_id="header-row"):
            title = gr.Markdown(f"## {t('title', lang0)}", elem_id="app-title")
            lang = Choice([("한국어", "ko"), ("English", "en")], value=lang0, show_label=False, container=False,
                            elem_id="lang-toggle", scale=0, min_width=240)
        status = gr.Markdown(status_line(engine, config, lang0), elem_id="status-line")

        with gr.Row(equal_height=False, elem_id="main-row"):
            with gr.Column(scale=3, elem_id="chat-col"):
                chatbot = gr.Chatbot(
                    label=t("chat", lang0), elem_id="chatbot", height=460,
                    render_markdown=False, sanitize_html=True, allow_tags=False, latex_delimiters=[],
                    buttons=["copy"], feedback_options=None,
                )
                with gr.Row():
                    msg = gr.Textbox(label=t("message", lang0), placeholder=t("message_placeholder", lang0),
                                     elem_id="msg", scale=5, lines=1, max_lines=4, autofocus=True,
                                     max_length=PASTE_CHARS)
                    send = gr.Button(t("send", lang0), variant="primary", elem_id="send", scale=1, min_width=80)
                with gr.Row():
                    ex_label = gr.Markdown(f"**{t('examples', lang0)}**")
                    ex_buttons = [gr.Button(e, size="sm", elem_id=f"example-{i}")
                                  for i, e in enumerate(EXAMPLES[lang0])]
                reset = gr.Button(t("reset", lang0), size="sm", variant="secondary", elem_id="reset")

            with gr.Column(scale=2, elem_id="cards-panel"):
                cards_title = gr.Markdown(t("cards", lang0))
                empty = gr.Markdown(t("no_cards", lang0), elem_id="no-cards")
                bodies, fb_buttons = [], []
                for i in range(MAX_CARDS):
                    with gr.Group(elem_id=f"card-{i}", elem_classes=["rec-slot"]):
                        body = gr.HTML("", elem_id=f"card-body-{i}")
                        with gr.Row(elem_classes=["card-buttons"]):
                            row_buttons = [gr.Button(t(kind, lang0), size="sm", elem_id=f"{kind}-{i}")
                                           for kind in FEEDBACK_KINDS]
                    bodies.append(body)
                    fb_buttons.append(row_buttons)
                cards_json = gr.JSON(visible=False)
                # API-only feedback by item id (the page uses the per-slot buttons).
                fb_item = gr.Textbox(visible=False)
                fb_kind = gr.Textbox(visible=False)
                fb_go = gr.Button(visible=False)

            with gr.Column(scale=3, elem_id="extras-col"):
                with gr.Accordion(t("onboarding", lang0), open=True, elem_id="onboarding") as onboarding:
                    hint = gr.Markdown(t("onboarding_hint", lang0))
                    search = gr.Textbox(label=t("search", lang0), placeholder=t("search_placeholder", lang0),
                                        elem_id="title-search", lines=1, max_length=MAX_QUERY_CHARS)
                    picks = PickList(choices=[], label=t("picks", lang0), elem_id="title-picks")
                    like_picks = gr.Button(t("like_picks", lang0), size="sm", elem_id="like-picks")

                with gr.Accordion(t("taste", lang0), open=True, elem_id="taste") as taste_acc:
                    taste_hint = gr.Markdown(t("taste_hint", lang0))
                    marks = PickList(choices=[], label=t("marks", lang0), elem_id="marks")
                    with gr.Row():
                        undo = gr.Button(t("undo", lang0), size="sm", elem_id="undo")
                        export = gr.Button(t("export", lang0), size="sm", elem_id="export")
                    export_text = gr.Textbox(label=t("export_text", lang0), elem_id="export-text", lines=4,
                                             max_lines=12, buttons=["copy"], interactive=False, visible=False)
                    journeys = Choice([], label=t("journeys", lang0), info=t("journeys_hint", lang0),
                                      elem_id="journeys")
                    journey_go = gr.Button(t("journey_go", lang0), size="sm", elem_id="journey-go")

                # Only settings that change something are shown: one rerank mode or one LLM is no choice.
                with gr.Accordion(t("settings", lang0), open=False, elem_id="settings") as settings_acc:
                    llm = ChoiceMenu(list(config.llm_choices), value=config.llm_choices[0], label=t("llm", lang0),
                                     visible=len(config.llm_choices) > 1, elem_id="llm-choice")
                    rerank = Choice([(rerank_label(m, lang0), m) for m in config.rerank_modes],
                                    value=config.rerank_modes[0], label=t("rerank", lang0), elem_id="rerank",
                                    visible=len(config.rerank_modes) > 1)
                    n_recs = Count(1, MAX_CARDS, value=config.n_recs, step=1, label=t("n_recs", lang0),
                                   elem_id="n-recs")
                    domain = Choice(ctl._domain_choices(lang0), value=config.domains[0], label=t("domain", lang0),
                                    elem_id="domain", visible=len(config.domains) > 1)

        card_outputs = bodies  # a slot without a card is hidden by CSS, so no visibility updates are needed
        prefs_inputs = [n_recs, domain, rerank, llm]
        quiet = {"api_visibility": "private", "show_progress": "hidden"}

        def after(event) -> None:
            """Every change of the session: refresh the taste panel and save the session in the browser."""
            # One server event for both (each event costs the queue a round of its own), then the browser saves.
            event.then(ctl.taste_and_snapshot, [conv, lang], [marks, journeys, saved], **quiet).then(
                None, [saved], None, js=SAVE_JS)

        after(gr.on([msg.submit, send.click], ctl.respond, [msg, conv, lang, *prefs_inputs],
                    [msg, chatbot, cards_json, *card_outputs], api_name="chat"))
        for b in ex_buttons:
            # An example is sent as a message straight away (it also shows what the assistant can do).
            after(b.click(ctl.respond, [b, conv, lang, *prefs_inputs],
                          [msg, chatbot, cards_json, *card_outputs], api_visibility="private"))

        fb_outputs = [chatbot, cards_json, *card_outputs]
        for i, row_buttons in enumerate(fb_buttons):
            for kind, b in zip(FEEDBACK_KINDS, row_buttons):
                after(b.click(_slot_handler(ctl, i, kind), [conv, lang], fb_outputs, api_visibility="private"))
        after(fb_go.click(ctl.feedback, [fb_item, fb_kind, conv, lang], fb_outputs, api_name="feedback"))

        # `change`, not `input`: text committed by an IME (Korean), pasted or deleted arrives without key events.
        search.change(ctl.search, [search, picks, conv, lang], [picks], api_name="search_titles",
                      trigger_mode="always_last", show_progress="hidden")
        after(like_picks.click(ctl.like_titles, [picks, conv, lang, *prefs_inputs],
                               [picks, chatbot, cards_json, *card_outputs], api_name="like_titles"))
        after(undo.click(ctl.undo, [marks, conv, lang], fb_outputs, api_visibility="private"))
        export.click(ctl.export, [conv, lang], [export_text], **quiet).then(
            lambda: gr.update(visible=True), None, [export_text], **quiet).then(
            None, [export_text], None, js=DOWNLOAD_JS)
        after(journey_go.click(ctl.steer, [journeys, conv, lang, *prefs_inputs], fb_outputs,
                               api_visibility="private"))
        reset_outputs = [chatbot, conv, cards_json, *card_outputs]
        after(reset.click(ctl.reset, [lang, conv], reset_outputs, api_name="reset"))
        # The Chatbot's own trash button clears the page: start a fresh session so both agree.
        after(chatbot.clear(ctl.reset, [lang, conv], reset_outputs, api_visibility="private"))

        relabel_outputs = [title, status, chatbot, msg, send, reset, ex_label, *ex_buttons, cards_title, empty, onboarding,
                           hint, search, picks, like_picks, settings_acc, llm, rerank, n_recs, domain,
                           *[b for row in fb_buttons for b in row], *bodies,
                           taste_acc, taste_hint, undo, export, export_text, journey_go, marks, journeys]
        after(lang.change(ctl.relabel, [lang, conv], relabel_outputs, api_visibility="private",
                          show_progress="hidden"))
        # On load: continue the session this browser saved (validated), then follow the browser's language when
        # nothing was said yet (the toggle can switch it any time).
        demo.load(ctl.restore, [saved, lang], [conv, chatbot, cards_json, *card_outputs], js=LOAD_JS, **quiet).then(
            ctl.taste, [conv, lang], [marks, journeys], **quiet).then(
            None, None, [lang], js=LANG_JS)

    # A bounded queue: past MAX_QUEUED waiting events a client gets "queue full" (HTTP 503) instead of a server
    # that piles up work.
    demo.queue(default_concurrency_limit=concurrency, max_size=MAX_QUEUED)
    # Gradio keeps up to 10,000 past events and rebuilds a pandas summary of them after every event, for the
    # /monitoring page this app turns off: ~10 ms per event once the history is full (two events per chat
    # turn). Keep one record. The queue reads the setting when it is created, so it is set on it here.
    demo._queue.ANALYTICS_MAX_EVENTS = 1  # noqa: SLF001 - no public switch in Gradio 6
    return demo


def launch_ui(demo: gr.Blocks, *, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
              block: bool = True, quiet: bool = False, auth: tuple[str, str] | None = None,
              allowed_hosts: Sequence[str] = (), limits: SessionLimits = SessionLimits()):
    """Launch on host:port (loopback by default; a public share link only when asked for).

    Hardened (see ui/http_guard.py): Host names checked, uploads / deep links / monitoring off, request bodies
    capped, security headers on, and errors say what went wrong only through gr.Error (no internals, no object
    addresses). `auth=(user, password)` puts Gradio's login page in front, for a shared deployment.
    """
    guard = Middleware(HTTPGuard, allowed_hosts=None if share else allowed_hosts_for(host, allowed_hosts),
                       fn_indices=tuple(demo.fns), known_session=lambda sid: joined(demo, sid))
    start_sweeper(demo, limits)
    return demo.launch(state_session_capacity=limits.max_sessions, server_name=host, server_port=port, share=share, css=CSS, js=PAGE_JS,
                       prevent_thread_lock=not block,
                       quiet=quiet, show_error=False, auth=auth, max_file_size=1, enable_monitoring=False,
                       ssr_mode=False, pwa=False, mcp_server=False, footer_links=["api"],
                       app_kwargs={"middleware": [guard]})


def _is_progress(ev: Event) -> bool:
    return isinstance(ev, Notice) and ev.kind == "progress"


def _slot_handler(ctl: ChatController, slot: int, kind: str):
    def handler(conv, lang):
        return ctl.feedback_slot(slot, kind, conv, lang)

    return handler
