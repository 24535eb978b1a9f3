"""Item → knowledge document: the grounding text, the filterable metadata, a content hash, and back.

The document is what gets embedded, what BM25 matches, and what explanations quote, so it holds facts only
(title, year, genres, plot, people, keywords, tags). Metadata values are Chroma scalars or non-empty lists
(chromadb ≥ 1.5 filters lists with `{"genres": {"$contains": "Drama"}}`).

New items arrive from CSV (`read_items_csv`, used by `chatrec-index add --file`). Columns, header required:
  id (required, e.g. "new:1" or "mls:193609"), title (required), year, genres, plot, directors, writers, actors,
  authors, tags, keywords, tagline, domain ("movie" default | "book"), avg_rating.
  List columns (genres, directors, writers, actors, authors, tags, keywords) are separated by "|".
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import numpy as np

from .types import LEGACY_EXTRA, Catalog, Item, Ratings

# Bump when the document layout changes: every item's hash changes with it, so the next index re-embeds all.
DOC_VERSION = 1
DOMAINS = ("movie", "book")
_MAX_ACTORS = 6  # a long cast list drowns the plot in the embedding
LIST_SEP = "|"


class ItemFileError(ValueError):
    """A new-items file that cannot be read; the message names the line and the fix."""


def document_text(item: Item) -> str:
    """The grounding text for one item (English facts as the sources give them)."""
    return _text(item, korean_title=True)


def lexical_text(item: Item) -> str:
    """What BM25 matches: the document without the Korean title. The title resolver looks Korean titles up; as
    description words they would match every film whose title holds 전쟁 or 공포 ("무서운 영화", Scary Movie) and
    a "2" every sequel, and a Korean description has nothing else to match in English documents."""
    return _text(item, korean_title=False)


def _text(item: Item, korean_title: bool) -> str:
    head = item.label + "."
    parts: list[str] = []
    if item.domain == "book":
        parts.append(head + " Book")
        if item.authors:
            parts.append("by " + ", ".join(item.authors) + ".")
        series = item.extra.get("series_title")
        if series:
            parts.append(f"Series: {series}.")
    else:
        parts.append(head)
        if item.alt_titles:
            parts.append(f"Also known as {' | '.join(item.alt_titles)}.")
    if item.title_ko and korean_title:
        parts.append(f"Korean title: {item.title_ko}.")
    if item.genres:
        parts.append("Genres: " + ", ".join(item.genres) + ".")
    if item.plot:
        parts.append(item.plot.strip())
    if item.overview_ko:
        parts.append(item.overview_ko.strip())
    tagline = item.extra.get("tagline")
    if tagline:
        parts.append(f"Tagline: {tagline}")
    if item.keywords:
        parts.append(f"Keywords: {', '.join(item.keywords)}.")
    if item.directors:
        parts.append("Directed by " + ", ".join(item.directors) + ".")
    if item.writers:
        parts.append("Written by " + ", ".join(item.writers) + ".")
    if item.actors:
        parts.append("Starring " + ", ".join(item.actors[:_MAX_ACTORS]) + ".")
    if item.domain != "book" and item.authors:
        parts.append("Based on work by " + ", ".join(item.authors) + ".")
    if item.tags:
        parts.append("Tags: " + ", ".join(item.tags) + ".")
    return " ".join(parts)


_EMBED_PLOT_CHARS = 400


def embedding_text(item: Item) -> str:
    """The compact view that gets embedded: what the item is about, without cast lists and user tags.

    Sentence encoders average over tokens, so a long credit list dilutes the plot; and encoding cost grows with
    length (on a busy 2-core machine a full document embeds several times slower than this view).
    """
    parts = [item.label + "."]
    if item.domain == "book":
        if item.authors:
            parts.append("Book by " + ", ".join(item.authors[:3]) + ".")
        series = item.extra.get("series_title")
        if series:
            parts.append(f"Series: {series}.")
    if item.genres:
        parts.append(", ".join(item.genres) + ".")
    plot = item.plot.strip()
    if len(plot) > _EMBED_PLOT_CHARS:
        cut = plot.rfind(". ", 0, _EMBED_PLOT_CHARS)
        plot = plot[: cut + 1] if cut > _EMBED_PLOT_CHARS // 2 else plot[:_EMBED_PLOT_CHARS]
    if plot:
        parts.append(plot)
    if item.keywords:
        parts.append("Keywords: " + ", ".join(item.keywords[:8]) + ".")
    elif item.tags:
        parts.append("Tags: " + ", ".join(item.tags[:8]) + ".")
    return " ".join(parts)


_TUPLE_FIELDS = tuple(f.name for f in dataclasses.fields(Item) if str(f.type).startswith("tuple"))
_FIELDS = frozenset(f.name for f in dataclasses.fields(Item))


def item_to_json(item: Item) -> str:
    d = dataclasses.asdict(item)
    d["extra"] = {k: v for k, v in item.extra.items() if k not in LEGACY_EXTRA}  # typed fields hold these
    return json.dumps(d, ensure_ascii=False, sort_keys=True)


def item_from_json(text: str) -> Item:
    """The inverse of item_to_json; also reads documents stored before a field existed (it takes its default)
    or after one was dropped (ignored)."""
    d = {k: v for k, v in json.loads(text).items() if k in _FIELDS}
    for k in _TUPLE_FIELDS:
        if k in d:
            d[k] = tuple(d[k] or ())
    return Item(**d)


def content_hash(item: Item) -> str:
    return hashlib.sha256(f"v{DOC_VERSION}\n{item_to_json(item)}".encode()).hexdigest()[:32]


def metadata(item: Item) -> dict:
    """Filterable fields + the hash + the item itself (so a store alone can answer `item(id)`)."""
    if item.domain not in DOMAINS:
        raise ValueError(f"item {item.id!r} has domain {item.domain!r}; expected one of {DOMAINS}")
    m: dict = {"domain": item.domain, "title": item.title, "hash": content_hash(item), "item": item_to_json(item)}
    if item.year is not None:
        m["year"] = int(item.year)
    if item.genres:  # Chroma rejects empty lists: no key means "no genres"
        m["genres"] = list(item.genres)
    if item.avg_rating is not None and np.isfinite(item.avg_rating):
        m["avg_rating"] = float(item.avg_rating)
    return m


def with_avg_ratings(catalog: Catalog, ratings: Ratings) -> list[Item]:
    """Catalog items with `avg_rating` filled from explicit ratings where the item has none (MovieLens)."""
    n = len(catalog)
    sums = np.bincount(ratings.item, weights=ratings.rating, minlength=n)
    counts = np.bincount(ratings.item, minlength=n)
    out = []
    for row, it in enumerate(catalog):
        if it.avg_rating is None and counts[row] > 0:
            it = dataclasses.replace(it, avg_rating=round(float(sums[row] / counts[row]), 3))
        out.append(it)
    return out


# --- new items from CSV --------------------------------------------------------------------------------------------

CSV_COLUMNS = ("id", "title", "year", "genres", "plot", "directors", "writers", "actors", "authors", "tags",
               "keywords", "tagline", "domain", "avg_rating")
_LIST_COLUMNS = ("genres", "directors", "writers", "actors", "authors", "tags")


def _split(v: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in (v or "").split(LIST_SEP) if x.strip())


def item_from_record(rec: Mapping[str, str], where: str = "record") -> Item:
    """One CSV row (or dict of strings) → Item. Raises ItemFileError with `where` in the message."""
    unknown = set(rec) - set(CSV_COLUMNS) - {None}
    if unknown:
        raise ItemFileError(f"{where}: unknown column(s) {sorted(unknown)}; allowed: {', '.join(CSV_COLUMNS)}")
    get = lambda k: (rec.get(k) or "").strip()  # noqa: E731
    item_id, title = get("id"), get("title")
    if not item_id or not title:
        raise ItemFileError(f"{where}: 'id' and 'title' are required (got id={item_id!r}, title={title!r})")
    year = None
    if get("year"):
        try:
            year = int(float(get("year")))
        except ValueError:
            raise ItemFileError(f"{where}: year {get('year')!r} is not a number") from None
    avg = None
    if get("avg_rating"):
        try:
            avg = float(get("avg_rating"))
        except ValueError:
            raise ItemFileError(f"{where}: avg_rating {get('avg_rating')!r} is not a number") from None
    domain = get("domain") or "movie"
    if domain not in DOMAINS:
        raise ItemFileError(f"{where}: domain {domain!r} must be one of {DOMAINS}")
    extra = {"tagline": get("tagline")} if get("tagline") else {}
    lists = {k: _split(get(k)) for k in _LIST_COLUMNS}
    return Item(id=item_id, title=title, year=year, domain=domain, raw_title=title, plot=get("plot"),
                avg_rating=avg, extra=extra, keywords=_split(get("keywords")), **lists)


def read_items_csv(path: Path) -> list[Item]:
    """Read new items from a UTF-8 CSV with a header row (columns in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ItemFileError(f"{path} does not exist; pass a CSV file with columns {', '.join(CSV_COLUMNS)}")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "id" not in reader.fieldnames or "title" not in reader.fieldnames:
            raise ItemFileError(f"{path}: the header must contain at least 'id' and 'title' (got {reader.fieldnames})")
        items = [item_from_record(r, f"{path}:{n}") for n, r in enumerate(reader, start=2)]
    seen: set[str] = set()
    for it in items:
        if it.id in seen:
            raise ItemFileError(f"{path}: item id {it.id!r} appears twice; ids must be unique")
        seen.add(it.id)
    return items


def write_items_csv(items: Iterable[Item], path: Path) -> None:
    """The inverse of `read_items_csv` (used to prepare cold-start files and in tests)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for it in items:
            w.writerow({
                "id": it.id, "title": it.title, "year": it.year or "", "plot": it.plot, "domain": it.domain,
                "avg_rating": "" if it.avg_rating is None else it.avg_rating,
                "keywords": LIST_SEP.join(it.keywords),
                "tagline": it.extra.get("tagline", ""),
                **{k: LIST_SEP.join(getattr(it, k)) for k in _LIST_COLUMNS},
            })


def iter_batches(seq: list, size: int) -> Iterator[list]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]
