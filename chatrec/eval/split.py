"""The held-out rule of annotations/SPLIT.md: one hash decides, for every set, which dialogues are never tuned on."""
from __future__ import annotations

import hashlib
from typing import Iterable, Literal, TypeVar

Part = Literal["dev", "heldout", "all"]
PARTS = ("dev", "heldout", "all")
T = TypeVar("T")


def heldout(key: str) -> bool:
    """Is this dialogue / request / script held out (about one in five)?"""
    return int(hashlib.sha1(f"chatrec-heldout:{key}".encode()).hexdigest(), 16) % 5 == 0


def in_part(key: str, part: Part) -> bool:
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    return part == "all" or heldout(key) == (part == "heldout")


def select(items: Iterable[T], key, part: Part) -> list[T]:
    """The items of one part; `key(item)` gives the dialogue (or request) the item belongs to."""
    return [x for x in items if in_part(str(key(x)), part)]
