"""Everything one user's conversation knows, in one JSON-serialisable object.

The engine holds no per-user state: it reads a Session, computes on a copy, and writes the copy back only when the
turn succeeded, so a failure never leaves a half-updated session behind.
"""
from __future__ import annotations

import copy
import functools
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Iterable

import pydantic_core
from pydantic import TypeAdapter, ValidationError

SCHEMA_VERSION = 2  # 2: dialogue state (state, focus) replaced last_request
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
