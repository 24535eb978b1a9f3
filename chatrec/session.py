"""Everything one user's conversation knows, in one JSON-serialisable object.

The engine holds no per-user state: it reads a Session, computes on a copy, and writes the copy back only when the
turn succeeded, so a failure never leaves a half-updated session behind.
"""
from __future__ import annotations

import copy
import functools
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Iterable

import pydantic_core
from pydantic import TypeAdapter, ValidationError

SCHEMA_VERSION = 2  # 2: dialogue state (state, focus) replaced last_request
# What the page keeps in the browser, in UTF-8 bytes: well under the web layer's 256 KB request-body cap (Korean text
# takes three bytes a character), so a reload can always send it back.
MAX_SNAPSHOT_BYTES = 120_000
MAX_HISTORY = 40  # turns kept; the prompts use only the last few, the rest is for the UI / saving


@dataclass
class Turn:
    role: str  # "user" | "assistant"
    text: str


@dataclass
class Clarification:
    """A question we asked back: which of `options` (item ids) did the user mean by `text`?"""

    text: str
    options: list[str]
    polarity: str = "like"  # what to do with the answer: "like" | "dislike" | "seen" | "unseen" | "details"
    domain: str = "movie"
    request: dict[str, Any] | None = None  # the request waiting for the answer (chatrec.request.Request, dumped)


@dataclass
class Session:
    language: str = "en"  # "en" | "ko": the language of our replies
    domain: str = "movie"  # what the last request asked for: "movie" | "book"
    history: list[Turn] = field(default_factory=list)
    liked: list[str] = field(default_factory=list)
    disliked: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)
    mentioned: list[str] = field(default_factory=list)
    wishes: list[str] = field(default_factory=list)  # stated wishes, e.g. "sci-fi", "1990s", "feel-good"
    profile: str = ""  # ONCE-style short profile text
    profile_key: str = ""  # fingerprint of the evidence the profile was made from
    pending: Clarification | None = None
    last_cards: list[str] = field(default_factory=list)  # item ids of the cards on screen, in order
    card_notes: dict[str, list[str]] = field(default_factory=dict)  # id → [reason, source] of the cards on screen
    # Dialogue state: the last effective wish (chatrec.request.Wish, dumped), which a follow-up refines, and the
    # item in focus (the one a details answer was about), which "it" / "그거" refer to.
    state: dict[str, Any] = field(default_factory=dict)
    focus: str | None = None
    parked: dict[str, dict[str, Any]] = field(default_factory=dict)  # the last wish per domain, for switching back
    version: int = SCHEMA_VERSION

    # --- mutation helpers (keep the lists duplicate-free and mutually consistent) ---
    def add_turn(self, role: str, text: str) -> None:
        self.history.append(Turn(role, text))
        del self.history[:-MAX_HISTORY]

    def like(self, item_id: str) -> None:
        _remove(self.disliked, item_id)
        _add(self.liked, item_id)

    def dislike(self, item_id: str) -> None:
        _remove(self.liked, item_id)
        _add(self.disliked, item_id)

    def mark_seen(self, item_id: str) -> None:
        _add(self.seen, item_id)

    def unmark(self, item_id: str) -> bool:
        """Undo like / dislike / seen for `item_id` (it may be recommended again); True when it was marked."""
        marked = any(item_id in lst for lst in (self.liked, self.disliked, self.seen))
        for lst in (self.liked, self.disliked, self.seen, self.shown):
            _remove(lst, item_id)
        if marked:
            self.profile_key = ""  # the evidence changed: the next turn refreshes the profile
        return marked

    def mention(self, item_ids: Iterable[str]) -> None:
        for i in item_ids:
            _add(self.mentioned, i)

    def add_wish(self, wish: str) -> None:
        if wish and wish not in self.wishes:
            self.wishes.append(wish)
            del self.wishes[:-8]

    def show(self, item_ids: Iterable[str]) -> None:
        ids = list(item_ids)
        for i in ids:
            _add(self.shown, i)
        self.last_cards = ids

    def excluded(self) -> set[str]:
        """Ids never to recommend again: liked, disliked, seen, and already shown."""
        return set(self.liked) | set(self.disliked) | set(self.seen) | set(self.shown)

    def evidence_key(self) -> str:
        """Changes whenever the evidence behind the profile changes (ONCE: refresh the profile then)."""
        return json.dumps([self.liked, self.disliked, self.wishes[-4:], self.language])

    def recent_dialogue(self, n: int = 6) -> list[Turn]:
        return self.history[-n:]

    def copy(self) -> "Session":
        return copy.deepcopy(self)

    def replace_with(self, other: "Session") -> None:
        """Commit a successful turn's working copy into this (UI-held) object."""
        for f in fields(self):
            setattr(self, f.name, getattr(other, f.name))

    # --- JSON ---
    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    def snapshot(self, max_bytes: int = MAX_SNAPSHOT_BYTES) -> str:
        """The JSON the browser keeps, at most `max_bytes` in UTF-8: the oldest turns go first, then card notes
        and the long id lists (what was shown, mentioned), never the likes, dislikes, seen marks or the request."""
        s = self.copy()
        while True:
            text = s.to_json()
            if len(text.encode("utf-8")) <= max_bytes:
                return text
            if len(s.history) > 2:
                del s.history[:max(1, len(s.history) // 4)]
            elif s.card_notes or s.shown[:-20] or s.mentioned[:-20]:
                s.card_notes, s.shown, s.mentioned = {}, s.shown[-20:], s.mentioned[-20:]
            elif s.history:
                s.history = []
            else:
                return text  # likes and marks alone: their ids are capped when restored

    @classmethod
    def from_json(cls, text: str | bytes) -> "Session":
        """A saved session, checked against a schema derived from the dataclass fields (nested ones included).

        Anything else — not JSON, nested too deep, a lone surrogate escape, a wrong type anywhere ("liked":
        [["mls:1"]]), an unknown field, another version — raises ValueError, never TypeError or RecursionError."""
        if not isinstance(text, (str, bytes)):
            raise ValueError(f"saved session must be JSON text, got {type(text).__name__}")
        try:
            d = pydantic_core.from_json(text)  # bounded nesting, strict UTF-8 / no lone surrogates
        except ValueError as e:
            raise ValueError(f"saved session is not valid JSON ({e}); start a new session") from None
        if not isinstance(d, dict):
            raise ValueError("saved session must be a JSON object; start a new session")
        if d.get("version", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise ValueError(f"saved session has version {str(d.get('version'))[:20]}, expected {SCHEMA_VERSION}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            names = [k[:40] for k in sorted(unknown)[:10]]
            raise ValueError(f"saved session has unknown fields {names}; start a new session")
        try:
            session = _schema().validate_json(text, strict=True)
        except ValidationError as e:
            where = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}"
                              for err in e.errors(include_url=False, include_input=False)[:5])
            raise ValueError(f"saved session does not match the schema ({where}); start a new session") from None
        if session.language not in ("en", "ko"):
            raise ValueError("saved session language must be 'en' or 'ko'")
        return session


MAX_SAVED_CHARS = 200_000  # a session saved in the browser larger than this is not read at all
MAX_WISH_TEXT = 300  # the free-text wish and other strings of a saved wish
MAX_WISH_LIST = 20
MAX_SAVED_LIST = 500  # ids kept per list of a saved session (liked, disliked, seen, shown, mentioned)
MAX_SAVED_TEXT = 4000  # characters per saved turn / note


def restore(text: Any, known: Callable[[str], bool]) -> Session:
    """A session saved in the browser (or forged), made safe to continue: the schema and version are checked
    (Session.from_json; ValueError otherwise), ids the catalog does not hold are dropped, every list and text is
    capped, and dialogue state that does not validate is dropped. What comes back can run any turn."""
    if not isinstance(text, (str, bytes)) or len(text) > MAX_SAVED_CHARS:
        raise ValueError("saved session is missing or too large; start a new session")
    s = Session.from_json(text)

    def ids(values: list[str]) -> list[str]:
        return list(dict.fromkeys(i for i in values[-MAX_SAVED_LIST:] if 0 < len(i) <= 64 and known(i)))

    s.liked, s.disliked, s.seen = ids(s.liked), ids(s.disliked), ids(s.seen)
    s.disliked = [i for i in s.disliked if i not in s.liked]
    s.shown, s.mentioned = ids(s.shown), ids(s.mentioned)
    s.last_cards = ids(s.last_cards)[:20]
    s.card_notes = {i: [x[:MAX_SAVED_TEXT] for x in s.card_notes[i][:2]] for i in s.last_cards if i in s.card_notes}
    s.history = [Turn(t.role, t.text[:MAX_SAVED_TEXT]) for t in s.history[-MAX_HISTORY:]
                 if t.role in ("user", "assistant")]
    s.wishes = [w[:100] for w in s.wishes[-8:]]
    s.profile, s.profile_key = s.profile[:MAX_SAVED_TEXT], ""
    s.focus = s.focus if s.focus and known(s.focus) else None
    if s.domain not in ("movie", "book"):
        s.domain = "movie"
    s.state = _bounded_wish(s.state, known)
    s.parked = {d: w for d, w in ((d, _bounded_wish(w, known)) for d, w in s.parked.items())
                if d in ("movie", "book") and w}
    p = s.pending
    if p is not None and not (p.options and all(known(i) for i in p.options[:20]) and len(p.options) <= 20
                              and p.polarity in _POLARITIES and p.domain in ("movie", "book")
                              and (p.request is None or _bounded_request(p.request, known) is not None)):
        s.pending = None
    if s.pending is not None:
        s.pending.text = s.pending.text[:100]
        s.pending.request = _bounded_request(s.pending.request, known) if s.pending.request else None
    return s


def _bounded_wish(data: Any, known: Callable[[str], bool]) -> dict[str, Any]:
    """A saved wish that a turn can run on: it validates, its words are ones the lexicons know (a tone key this
    version lacks would fail every later turn), its strings and lists are capped and its ids are in the catalog;
    {} otherwise."""
    from retrieval.lang import COUNTRY_NAMES, GENRES, THEME_KEYWORDS, TONE_BY_KEY

    from .request import Wish

    if not data or not _valid(Wish, data):
        return {}
    w = Wish.model_validate(data)
    vocab = {"genres": GENRES, "genres_any": GENRES, "exclude_genres": GENRES, "soft_genres": GENRES,
             "tones": TONE_BY_KEY, "themes": THEME_KEYWORDS, "exclude_themes": THEME_KEYWORDS,
             "origins": COUNTRY_NAMES, "exclude_origins": COUNTRY_NAMES}
    update: dict[str, Any] = {k: [x for x in getattr(w, k) if x in allowed][:MAX_WISH_LIST] for k, allowed in vocab.items()}
    update["exclude_ids"] = [i for i in w.exclude_ids if known(i)][:MAX_SAVED_LIST]
    update["anchors"] = [i for i in w.anchors if known(i)][:MAX_WISH_LIST]
    update["people"] = w.people[:MAX_WISH_LIST]
    update["soft_people"] = [p[:100] for p in w.soft_people[:MAX_WISH_LIST]]
    update["query"] = w.query[:MAX_WISH_TEXT]
    update["period_label"] = w.period_label[:40]
    return w.model_copy(update=update).model_dump()


def _bounded_request(data: Any, known: Callable[[str], bool]) -> dict[str, Any] | None:
    from .request import Request

    if not _valid(Request, data):
        return None
    r = Request.model_validate(data)
    wish = _bounded_wish(r.wish.model_dump(), known)
    if not wish:
        return None
    refs = [ref for ref in r.refs if known(ref.item_id)][:MAX_WISH_LIST]
    return r.model_copy(update={"refs": refs, "notes": [], "unknown": r.unknown[:4], "missing": r.missing[:4]}
                        ).model_dump() | {"wish": wish}


_POLARITIES = ("like", "dislike", "seen", "unseen", "exclude", "details", "compare", "neutral")


def _valid(model, data: Any) -> bool:
    try:
        model.model_validate(data)
    except ValidationError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def _schema() -> TypeAdapter:
    # Built on first use: the annotations are strings until the whole module (Turn, Clarification) exists.
    return TypeAdapter(Session)


def _add(lst: list[str], x: str) -> None:
    if x not in lst:
        lst.append(x)


def _remove(lst: list[str], x: str) -> None:
    if x in lst:
        lst.remove(x)
