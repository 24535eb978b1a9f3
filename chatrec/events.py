"""What one conversation turn yields: streamed text chunks, notices and recommendation cards. The cards come last,
or, in a turn whose intro the LLM writes, first (as soon as the ranking is known, before the intro streams).

The web UI and the eval harness both consume these; nothing else crosses the engine boundary.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union


@dataclass(frozen=True)
class TextChunk:
    """A piece of the assistant's reply, in the user's language (plain text; the UI escapes it)."""

    text: str


@dataclass(frozen=True)
class Notice:
    """Something the user should know about how the answer was made (a fallback, a truncated message...)."""

    text: str
    kind: Literal["fallback", "info", "error", "progress"] = "info"  # progress: transient, until the reply comes


@dataclass(frozen=True)
class Card:
    """One recommended catalog item. `reason` is grounded in the item's facts; `source` says where it came from."""

    item_id: str
    title: str
    year: int | None
    genres: tuple[str, ...]
    domain: str  # "movie" | "book"
    reason: str
    source: str  # e.g. "because you liked The Matrix", "matches your description", "popular"
    authors: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.title} ({self.year})" if self.year else self.title


@dataclass(frozen=True)
class Cards:
    """The current recommendation list (replaces any earlier list in the UI)."""

    cards: tuple[Card, ...]


Event = Union[TextChunk, Notice, Cards]
FeedbackKind = Literal["like", "dislike", "seen"]
