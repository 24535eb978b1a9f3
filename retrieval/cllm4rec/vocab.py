"""The extended vocabulary: one soft token per user and per item after the backbone's own (hard) tokens.

Token id layout (what every other module of the package relies on):

    [0, V)                 the backbone tokenizer's text tokens
    [V, V + U)             one token per training user, in `user_ids` order
    V + U                  the anonymous user: prompts for someone the model was not trained on (the app's
                           session user) use it; fine-tuning teaches it by replacing a share of the user tokens
    [V + U + 1, … + I)     one token per item, in `item_ids` order (also the order of the recommendation head)

An id is therefore never split into sub-word pieces ("ml100k:50" → one token). The embeddings of soft tokens are
not rows of the backbone's matrix: the model keeps a collaborative and a content table per kind (see model.py),
which is why the layout is explicit here rather than a `tokenizer.add_tokens` call.

The `Prompter` writes the token sequences of the three views from text snippets, tokenised once and cached.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class SoftVocab:
    text_size: int
    user_ids: tuple[str, ...]
    item_ids: tuple[str, ...]
    _item_row: dict = field(init=False, repr=False, compare=False)
    _user_row: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "user_ids", tuple(str(u) for u in self.user_ids))
        object.__setattr__(self, "item_ids", tuple(str(i) for i in self.item_ids))
        items = {i: r for r, i in enumerate(self.item_ids)}
        users = {u: r for r, u in enumerate(self.user_ids)}
        if len(items) != len(self.item_ids) or len(users) != len(self.user_ids):
            raise ValueError("user and item ids must be unique")
        if not self.item_ids:
            raise ValueError("a soft vocabulary needs at least one item")
        object.__setattr__(self, "_item_row", items)
        object.__setattr__(self, "_user_row", users)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def user_base(self) -> int:
        return self.text_size

    @property
    def anon_token(self) -> int:
        return self.text_size + self.n_users

    @property
    def item_base(self) -> int:
        return self.text_size + self.n_users + 1

    @property
    def size(self) -> int:
        return self.item_base + self.n_items

    def user_token(self, user_row: int | None) -> int:
        """The user's token; None (someone the model never saw) → the anonymous user token."""
        if user_row is None:
            return self.anon_token
        if not 0 <= user_row < self.n_users:
            raise IndexError(f"user row {user_row} outside 0..{self.n_users - 1}")
        return self.user_base + int(user_row)

    def item_tokens(self, item_rows: Sequence[int] | np.ndarray) -> list[int]:
        rows = np.asarray(item_rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_items):
            raise IndexError(f"item rows must be in 0..{self.n_items - 1}")
        return (rows + self.item_base).tolist()

    def item_row(self, item_id: str) -> int | None:
        return self._item_row.get(str(item_id))

    def user_row(self, user_id: str) -> int | None:
        return self._user_row.get(str(user_id))


@dataclass
class Prompter:
    """Token sequences of the three views. Text snippets are tokenised once (no special tokens, so a soft token
    can sit right before or after them)."""

    tokenizer: object
    vocab: SoftVocab
    _cache: dict = field(default_factory=dict, repr=False)

    def text(self, s: str, limit: int | None = None) -> list[int]:
        key = (s, limit)
        if key not in self._cache:
            ids = list(self.tokenizer(s, add_special_tokens=False)["input_ids"])
            if limit is not None:
                ids = ids[:limit]
            if len(self._cache) < 200_000:  # item documents and snippets: bounded by the catalog
                self._cache[key] = ids
            return ids
        return self._cache[key]

    def collaborative(self, user_row: int | None, item_rows: Sequence[int]) -> tuple[list[int], int]:
        """`<user> has interacted with <item> <item> …`; returns (ids, index of the first item token)."""
        head = [self.vocab.user_token(user_row), *self.text(" has interacted with")]
        return head + self.vocab.item_tokens(item_rows), len(head)

    def recommendation(self, user_row: int | None, item_rows: Sequence[int]) -> list[int]:
        """`<user> has interacted with <items>, <user> will interact with` — the head reads the last position."""
        u = self.vocab.user_token(user_row)
        return [u, *self.text(" has interacted with"), *self.vocab.item_tokens(item_rows), *self.text(","), u,
                *self.text(" will interact with")]

    def content(self, soft_token: int, intro: str, body: str, limit: int) -> tuple[list[int], int]:
        """`<soft token><intro> <body…>` (body cut to `limit` tokens); returns (ids, index of the first body token)."""
        head = [soft_token, *self.text(intro)]
        body_ids = self.text(" " + body.strip(), limit)
        return head + body_ids, len(head)
