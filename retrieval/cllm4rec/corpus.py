"""Training material for CLLM4Rec: who interacted with what (item rows per user, in time order), the item and user
documents of the content view, and padded batches of token ids with their next-token labels.

Label convention for every view: `labels[b, p]` is what position p must predict (the token at p + 1): an item row
for collaborative sequences, a text token id for content documents, -100 where nothing is predicted (the prompt
and padding).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..types import Catalog, Item, Ratings
from .vocab import SoftVocab

IGNORE = -100


@dataclass(frozen=True)
class TrainingData:
    """What one model is trained on. `user_items[u]` are item rows in time order (ties: file order)."""

    vocab: SoftVocab
    user_items: tuple[np.ndarray, ...]
    item_docs: tuple[str, ...]
    user_docs: tuple[str, ...]
    domain: str = "movie"

    def __post_init__(self):
        if len(self.user_items) != self.vocab.n_users or len(self.user_docs) != self.vocab.n_users:
            raise ValueError("one item list and one document per user are needed")
        if len(self.item_docs) != self.vocab.n_items:
            raise ValueError("one document per item is needed")

    @property
    def n_interactions(self) -> int:
        return int(sum(len(x) for x in self.user_items))


def item_document(it: Item, max_people: int = 3) -> str:
    """Title, genres, people and plot as one short text (the model sees its first tokens only)."""
    parts = [f"{it.label}."]
    if it.genres:
        parts.append(f"Genres: {', '.join(it.genres)}.")
    if it.directors:
        parts.append(f"Directed by {', '.join(it.directors[:max_people])}.")
    if it.authors:
        parts.append(f"Written by {', '.join(it.authors[:max_people])}.")
    if it.actors:
        parts.append(f"Starring {', '.join(it.actors[:max_people])}.")
    if it.tags:
        parts.append(f"Tags: {', '.join(it.tags[:8])}.")
    if it.plot:
        parts.append(it.plot.strip())
    return " ".join(parts)


def user_document(items: Sequence[Item], rng: np.random.Generator, n_titles: int = 5, n_genres: int = 3) -> str:
    """The user's favourite genres and a few of their titles, from training interactions only."""
    if not items:
        return "nothing yet."
    genres = Counter(g for it in items for g in it.genres)
    top = [g for g, _ in genres.most_common(n_genres)]
    pick = rng.choice(len(items), size=min(n_titles, len(items)), replace=False)
    titles = ", ".join(items[int(i)].label for i in sorted(pick))
    lead = f"{', '.join(top)} titles" if top else "titles"
    return f"{lead} such as {titles}."


def build_training_data(ratings: Ratings, catalog: Catalog, text_size: int, *, min_rating: float = 0.0,
                        seed: int = 0) -> TrainingData:
    """Interactions = ratings ≥ `min_rating`; every user of `ratings` gets a token, every catalog item one too."""
    keep = ratings.rating >= min_rating
    user, item, ts = ratings.user[keep], ratings.item[keep], ratings.timestamp[keep]
    order = np.lexsort((np.arange(len(user)), ts, user))  # by user, then time, then file line
    user, item = user[order], item[order]
    bounds = np.searchsorted(user, np.arange(ratings.n_users + 1))
    user_items = tuple(item[bounds[u]:bounds[u + 1]].astype(np.int64) for u in range(ratings.n_users))
    vocab = SoftVocab(text_size, ratings.user_ids, catalog.ids)
    rng = np.random.default_rng(seed)
    items = catalog.items
    user_docs = tuple(user_document([items[int(i)] for i in rows], rng) for rows in user_items)
    domain = items[0].domain if items else "movie"
    return TrainingData(vocab, user_items, tuple(item_document(it) for it in items), user_docs, domain)


@dataclass(frozen=True)
class Batch:
    """Right-padded token ids [B, T] (pad positions are masked out) and their next-token labels."""

    ids: np.ndarray
    mask: np.ndarray
    labels: np.ndarray  # [B, T]; IGNORE where nothing is predicted

    @property
    def last(self) -> np.ndarray:
        """Index of each row's last real token."""
        return self.mask.sum(axis=1) - 1


def pad(seqs: Sequence[Sequence[int]], label_from: Sequence[int] | None = None,
        label_of=None) -> Batch:
    """Pad `seqs` to one length. With `label_from[b]` = index of the first predicted token, positions
    label_from-1 … len-2 get `label_of(token)` of the next token as their label."""
    n, t = len(seqs), max(len(s) for s in seqs)
    ids = np.zeros((n, t), dtype=np.int64)
    mask = np.zeros((n, t), dtype=np.int64)
    labels = np.full((n, t), IGNORE, dtype=np.int64)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = s
        mask[b, : len(s)] = 1
        if label_from is not None:
            start = max(1, int(label_from[b]))
            nxt = np.asarray(s[start:], dtype=np.int64)
            labels[b, start - 1 : len(s) - 1] = label_of(nxt) if label_of else nxt
    return Batch(ids, mask, labels)


def length_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (less padding), batches in random order."""
    order = np.argsort(np.asarray(lengths) + rng.random(len(lengths)), kind="stable")
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches
