"""Item knowledge in Chroma: one document per item, hybrid (vector + BM25) search, "more like these", cold start.

Usage:
    from retrieval.embeddings import make_embedder
    from retrieval.knowledge import KnowledgeConfig, KnowledgeStore

    store = KnowledgeStore.open(KnowledgeConfig(path=cache_dir / "knowledge"), make_embedder("use-multilingual"))
    store.index(items)                      # idempotent: unchanged items (same content hash) are not re-embedded
    res = store.search("우주를 배경으로 한 잔잔한 SF", k=10, domain="movie", genres=("Sci-Fi",), year_range=(1990, None))
    res.scored.ids, res.notes               # Scored best first; notes say what was truncated / ignored
    store.similar_to(["mls:541"], k=10, domain="book")   # books for someone who liked Blade Runner
    store.document("mls:541")               # the grounding text explanations quote (None if unknown)
    store.add_items(new_items)              # cold-start items are searchable at once

Server mode: `KnowledgeConfig(host="127.0.0.1", port=8000)` talks to `chroma run`; a server that is down at open
raises `KnowledgeUnavailableError` (the app then runs on ALS alone). Chroma is the store of record; `open` mirrors
documents, metadata, BM25 tokens and embeddings in memory, so searches are exact, identical in both modes, and keep
answering if the server goes away later (writes then raise KnowledgeUnavailableError).

Search semantics:
- mode "vector" (cosine on multilingual embeddings), "bm25" (bm25s over the same documents; Hangul tokenised into
  morphemes with kiwipiepy, Latin words lower-cased, stop-worded and Snowball-stemmed), "hybrid" (reciprocal rank
  fusion of both). When fewer than half of the query's words occur in any document (a Korean query against
  English documents) hybrid drops the BM25 leg and keeps the vector order instead of fusing noise; a note says so.
- An empty or blank query returns an empty result with a note (not an error: the engine may pass no text).
- Queries longer than MAX_QUERY_CHARS are truncated, with a note.
- `genres` are matched case-insensitively against the genres in the index; all must match (genre_match="all") or
  any (genre_match="any"); an unknown genre raises UnknownGenreError listing the known ones.
- `year_range=(lo, hi)` is inclusive; either end may be None. Items without a year never pass a year filter.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from tqdm.auto import tqdm

from . import rx
from . import lang
from .documents import DOMAINS, document_text, embedding_text, item_from_json, iter_batches, lexical_text, metadata
from .embeddings import Embedder
from .types import Item, Scored, UnknownItemError

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 1000
SEARCH_MODES = ("hybrid", "vector", "bm25")
_NAME_RE = rx.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")


class KnowledgeError(Exception):
    """Base class for knowledge-store problems; messages say what to do."""


class KnowledgeUnavailableError(KnowledgeError, ConnectionError):
    """The Chroma server cannot be reached (or the local store cannot be opened)."""


class EncoderMismatchError(KnowledgeError, ValueError):
    """The collection was built with a different encoder than the one passed to `open`."""


class UnknownGenreError(KnowledgeError, ValueError):
    """A genre filter that no indexed item carries."""


@dataclass(frozen=True)
class KnowledgeConfig:
    """Where the store lives: `path` for an embedded PersistentClient, or `host`+`port` for a Chroma server."""

    path: Path | None = None
    host: str | None = None
    port: int | None = None
    collection: str = "chatrec-items"
    batch_size: int = 256
    progress: bool = True
    rrf_k: int = 60  # the usual RRF constant: damps the top ranks so neither leg dominates
    # Hybrid drops the BM25 leg when fewer than this share of the query's words occur in any document: a Korean
    # query against English documents then matches only a stray Latin token ("SF") and would fuse noise.
    min_bm25_coverage: float = 0.5
    # "exact": cosine over an in-memory copy of the embeddings (20k items: 40 MB, a few ms per query, identical in
    # embedded and server mode). "chroma": Chroma's HNSW, for catalogs too big to mirror; on this data its default
    # graph (M=16, ef=100) found only ~92% of the exact top-10, which cost 2 of 17 Korean quality queries.
    vector_search: str = "exact"

    def __post_init__(self):
        if (self.path is None) == (self.host is None):
            raise ValueError("KnowledgeConfig needs exactly one of path (embedded) or host+port (server)")
        if self.host is not None and not self.port:
            raise ValueError("KnowledgeConfig(host=...) also needs port (CHROMA_PORT)")
        if not _NAME_RE.match(self.collection) or ".." in self.collection:
            raise ValueError(
                f"collection name {self.collection!r} is invalid: 3-512 characters from [A-Za-z0-9._-], "
                "starting and ending with a letter or digit"
            )
        if self.batch_size <= 0:
            raise ValueError("batch_size must be positive")
        if self.vector_search not in ("exact", "chroma"):
            raise ValueError(f"vector_search must be 'exact' or 'chroma', got {self.vector_search!r}")

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}" if self.host else str(self.path)


@dataclass(frozen=True)
class SearchResult:
    scored: Scored
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class IndexReport:
    added: int
    updated: int
    unchanged: int
    seconds: float
    notes: tuple[str, ...] = field(default=())


# --- lexical side -----------------------------------------------------------------------------------------------

_WORD = rx.compile(r"\w{2,}")  # maximal runs of two or more word characters (what `\b\w\w+\b` found)
_KO_KEEP = ("NNG", "NNP", "NR", "SH", "SN", "XR", "VV", "VA", "MAG")
_HANGUL_OR_DIGITS = rx.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f0-9]+")
_LATIN_WORDS = rx.compile(r"[^\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f\u4e00-\u9fff0-9\s]+")
# Bump when Tokenizer output changes: stored tokens of another version are made again on open (no re-embedding).
TOKENIZER_VERSION = 3  # 3: Latin words never through Kiwi; Korean titles are no BM25 words


class Tokenizer:
    """Korean morphemes (kiwipiepy) where there is Hangul, stemmed lower-case English words elsewhere."""

    def __init__(self):
        import Stemmer
        from bm25s.stopwords import STOPWORDS_EN

        self._stem = Stemmer.Stemmer("english")
        self._stop = frozenset(STOPWORDS_EN) | {"film", "movie", "movies", "book", "books", "genres"}

    def _english(self, text: str) -> list[str]:
        words = [w for w in _WORD.findall(text.lower()) if w not in self._stop]
        return self._stem.stemWords(words)

    def __call__(self, text: str) -> list[str]:
        if not lang.has_hangul(text):
            return self._english(text)
        # Kiwi reads the Hangul and the numbers (2차); Latin words go the English way, because Kiwi cuts foreign
        # words it does not know ("Kubrick" → "ku" + "brick", "computer" → "compu" + "ter").
        out = self._english(_HANGUL_OR_DIGITS.sub(" ", text))
        for t in lang.tokens(_LATIN_WORDS.sub(" ", text)):
            tag = str(t.tag).split("-")[0]
            if tag in _KO_KEEP:
                out.append(t.form)
        return out


class _Lexical:
    """BM25 over the documents plus numpy arrays of the filter fields (BM25 scores every document at once)."""

    def __init__(self, ids: list[str], tokens: list[list[str]], metas: list[dict], emb: np.ndarray):
        import bm25s

        # bm25s sets its logger to DEBUG when imported; NOTSET lets the application's logging level decide.
        logging.getLogger("bm25s").setLevel(logging.NOTSET)
        self.emb = emb
        self.ids = ids
        self.row = {i: r for r, i in enumerate(ids)}
        self.bm25 = bm25s.BM25()
        if ids:
            self.bm25.index(tokens, show_progress=False)
        self.vocab = set(self.bm25.vocab_dict) if ids else set()
        self.domain = np.array([m.get("domain", "") for m in metas], dtype=object)
        self.year = np.array([m.get("year", np.nan) for m in metas], dtype=np.float64)
        self.genre_mask: dict[str, np.ndarray] = {}
        for r, m in enumerate(metas):
            for g in m.get("genres", ()):
                self.genre_mask.setdefault(g, np.zeros(len(ids), dtype=bool))[r] = True

    def search(self, tokens: list[str], mask: np.ndarray, n: int) -> tuple[list[str], np.ndarray, int]:
        """Top-n (ids, scores) among rows where mask is True; third value = query tokens known to the index."""
        known = [t for t in tokens if t in self.vocab]
        if not known or not self.ids:
            return [], np.zeros(0, dtype=np.float32), 0
        scores = np.asarray(self.bm25.get_scores(known), dtype=np.float32)
        scores = np.where(mask & (scores > 0), scores, 0.0)
        top = np.argsort(-scores, kind="stable")[:n]
        top = top[scores[top] > 0]
        return [self.ids[r] for r in top], scores[top], len(known)


@dataclass(frozen=True)
class _Filters:
    where: dict | None
    mask: np.ndarray
    exclude: frozenset[str]


def rrf(rankings: Sequence[Sequence[str]], k: int = 60) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: score(id) = Σ_legs 1 / (k + rank), rank from 1; ties keep first-seen order."""
    score: dict[str, float] = {}
    for ranking in rankings:
        for rank, item_id in enumerate(ranking, start=1):
            score[item_id] = score.get(item_id, 0.0) + 1.0 / (k + rank)
    return sorted(score.items(), key=lambda kv: -kv[1])


# --- the store --------------------------------------------------------------------------------------------------

class KnowledgeStore:
    """A Chroma collection of item documents plus an in-memory BM25 mirror. Build with `KnowledgeStore.open`."""

    def __init__(self, config: KnowledgeConfig, embedder: Embedder, client, collection):
        self.config = config
        self.embedder = embedder
        self._client = client
        self._col = collection
        self._tok = Tokenizer()
        self._lock = threading.RLock()  # add_items may run while other users search
        self._docs: dict[str, str] = {}
        self._metas: dict[str, dict] = {}
        self._tokens: dict[str, list[str]] = {}
        self._emb: dict[str, np.ndarray] = {}
        self._lex = _Lexical([], [], [], np.zeros((0, embedder.dim), dtype=np.float32))
        # A conversation sends the same query turn after turn (a refinement keeps it), and the search and the
        # ranker's features both need it: one encoding per distinct text (thread-safe, bounded).
        self._query_vector = functools.lru_cache(maxsize=512)(self._encode_query)

    # -- opening ----------------------------------------------------------------------------------------------

    @classmethod
    def open(cls, config: KnowledgeConfig, embedder: Embedder) -> "KnowledgeStore":
        """Open (or create) the collection; refuses one built with another encoder; loads the BM25 mirror."""
        from chromadb.errors import NotFoundError

        client = cls._client_for(config)
        want = {"encoder": embedder.encoder_id, "dim": int(embedder.dim)}
        try:
            existing = cls._call(config, lambda: client.get_collection(config.collection, embedding_function=None))
        except NotFoundError:
            existing = None
        except ValueError as e:  # chromadb < 1.6 reports a missing collection as ValueError on some paths
            if "does not exist" not in str(e):
                raise
            existing = None
        if existing is not None:
            have = {k: (existing.metadata or {}).get(k) for k in want}
            if have != want:
                raise EncoderMismatchError(
                    f"collection {config.collection!r} at {config.where} was built with encoder "
                    f"{have['encoder']!r} (dim {have['dim']}), but {want['encoder']!r} (dim {want['dim']}) was "
                    f"requested. Choose --embedder {have['encoder']!r}, or rebuild: chatrec-index build --rebuild"
                )
        col = cls._call(config, lambda: client.get_or_create_collection(
            config.collection, metadata=want, embedding_function=embedder,
            configuration={"hnsw": {"space": "cosine"}},
        ))
        store = cls(config, embedder, client, col)
        store._load_mirror()
        return store

    @staticmethod
    def _client_for(config: KnowledgeConfig):
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        try:
            if config.host:
                return chromadb.HttpClient(host=config.host, port=int(config.port), settings=chroma_settings)
            Path(config.path).mkdir(parents=True, exist_ok=True)
            return chromadb.PersistentClient(path=str(config.path), settings=chroma_settings)
        except (ValueError, OSError) as e:
            raise KnowledgeUnavailableError(
                f"cannot open the Chroma store at {config.where} ({e}). Start it with "
                f"`chroma run --path DIR --host {config.host or '127.0.0.1'} --port {config.port or 8000}`, fix "
                "CHROMA_HOST/CHROMA_PORT, or unset them to use the embedded store; the app still works on ALS alone"
            ) from e

    @classmethod
    def drop(cls, config: KnowledgeConfig) -> bool:
        """Delete the collection (to rebuild with another encoder). Returns False when there was none."""
        from chromadb.errors import NotFoundError

        client = cls._client_for(config)
        try:
            cls._call(config, lambda: client.delete_collection(config.collection))
        except (NotFoundError, ValueError):
            return False
        return True

    @staticmethod
    def _call(config: KnowledgeConfig, fn):
        """Run a Chroma call; connection failures become KnowledgeUnavailableError."""
        try:
            return fn()
        except Exception as e:
            name = type(e).__name__
            if isinstance(e, (ConnectionError, OSError)) or "Connect" in name or "Could not connect" in str(e):
                raise KnowledgeUnavailableError(
                    f"the Chroma server at {config.where} stopped answering ({e}); restart `chroma run` or unset "
                    "CHROMA_HOST to use the embedded store"
                ) from e
            raise

    def _load_mirror(self) -> None:
        """Pull every document + metadata once: BM25, filters and `document()` then need no round trip."""
        n = self._call(self.config, self._col.count)
        page = 5000
        for off in range(0, n, page):
            got = self._call(self.config, lambda: self._col.get(
                include=["documents", "metadatas", "embeddings"], limit=page, offset=off))
            for i, d, m, e in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"]):
                self._docs[i] = d or ""
                self._metas[i] = m or {}
                self._emb[i] = np.asarray(e, dtype=np.float32)
        stale = [i for i, m in self._metas.items() if "tokens" not in m or m.get("tokens_v") != TOKENIZER_VERSION]
        self._tokens = {i: m["tokens"].split() for i, m in self._metas.items() if "tokens" in m}
        for i in tqdm(stale, desc="tokenising documents", unit="doc", disable=not (stale and self.config.progress)):
            m = self._metas[i]
            self._tokens[i] = self._tok(lexical_text(item_from_json(m["item"])) if "item" in m else self._docs[i])
            self._metas[i] = {**self._metas[i], "tokens": " ".join(self._tokens[i]), "tokens_v": TOKENIZER_VERSION}
        if stale:
            self._store_tokens(stale)
        self._rebuild_lexical()

    def _store_tokens(self, ids: list[str]) -> None:
        """Write re-made tokens back, so that the next open reads them instead of tokenising again."""
        page = 1000
        for off in range(0, len(ids), page):
            part = ids[off:off + page]
            self._call(self.config, lambda: self._col.update(ids=part, metadatas=[self._metas[i] for i in part]))
        log.info("knowledge index %s: BM25 tokens of %d documents made again (tokenizer v%d)",
                 self.config.where, len(ids), TOKENIZER_VERSION)

    def _rebuild_lexical(self) -> None:
        ids = list(self._docs)
        emb = (np.stack([self._emb[i] for i in ids]) if ids
               else np.zeros((0, self.embedder.dim), dtype=np.float32))
        self._lex = _Lexical(ids, [self._tokens[i] for i in ids], [self._metas[i] for i in ids], emb)

    # -- writing ----------------------------------------------------------------------------------------------

    def index(self, items: Iterable[Item]) -> IndexReport:
        """Upsert items. Only new or changed items (by content hash) are embedded; returns what happened."""
        t0 = time.perf_counter()
        items = list(items)
        seen: set[str] = set()
        todo: list[tuple[Item, str, dict]] = []
        added = updated = unchanged = 0
        for it in items:
            if it.id in seen:
                raise ValueError(f"item id {it.id!r} appears twice in one index() call")
            seen.add(it.id)
            meta = metadata(it)
            old = self._metas.get(it.id)
            if old is not None and old.get("hash") == meta["hash"]:
                unchanged += 1
                continue
            added += old is None
            updated += old is not None
            doc = document_text(it)
            # BM25 tokens travel in the metadata: re-tokenising 20k documents on every open costs seconds
            meta["tokens"], meta["tokens_v"] = " ".join(self._tok(lexical_text(it))), TOKENIZER_VERSION
            todo.append((it, doc, meta))
        if todo:
            bs = min(self.config.batch_size, self._call(self.config, self._client.get_max_batch_size))
            with tqdm(total=len(todo), desc="embedding items", unit="item", disable=not self.config.progress) as bar:
                for batch in iter_batches(todo, bs):
                    docs = [d for _, d, _ in batch]
                    emb = self.embedder.encode([embedding_text(it) for it, _, _ in batch])
                    ids = [it.id for it, _, _ in batch]
                    metas = [m for _, _, m in batch]
                    self._call(self.config, lambda: self._col.upsert(
                        ids=ids, embeddings=emb, documents=docs, metadatas=metas))
                    with self._lock:
                        for i, d, m, e in zip(ids, docs, metas, emb):
                            self._docs[i], self._metas[i], self._tokens[i] = d, m, m["tokens"].split()
                            self._emb[i] = np.asarray(e, dtype=np.float32)
                    bar.update(len(batch))
            with self._lock:
                self._rebuild_lexical()
        report = IndexReport(added, updated, unchanged, time.perf_counter() - t0)
        log.info("knowledge index %s: %d added, %d updated, %d unchanged in %.1fs",
                 self.config.where, added, updated, unchanged, report.seconds)
        return report

    def add_items(self, items: Iterable[Item]) -> IndexReport:
        """Cold start: new (or edited) items become searchable immediately, before any rating exists."""
        return self.index(items)

    def delete(self, item_ids: Iterable[str]) -> int:
        ids = [i for i in item_ids if i in self._docs]
        if ids:
            self._call(self.config, lambda: self._col.delete(ids=ids))
            with self._lock:
                for i in ids:
                    self._docs.pop(i), self._metas.pop(i), self._tokens.pop(i), self._emb.pop(i)
                self._rebuild_lexical()
        return len(ids)

    # -- reading ----------------------------------------------------------------------------------------------

    def count(self) -> int:
        return int(self._call(self.config, self._col.count))

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._docs

    def document(self, item_id: str) -> str | None:
        """The grounding text for an item, or None when the store does not hold it."""
        return self._docs.get(item_id)

    def item(self, item_id: str) -> Item | None:
        m = self._metas.get(item_id)
        return item_from_json(m["item"]) if m and "item" in m else None

    @property
    def genres(self) -> tuple[str, ...]:
        """Every genre carried by at least one indexed item, sorted."""
        return tuple(sorted(self._lex.genre_mask))

    # -- search -----------------------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        domain: str | None = None,
        genres: Sequence[str] | None = None,
        genre_match: str = "all",
        year_range: tuple[int | None, int | None] | None = None,
        exclude: Iterable[str] = (),
        mode: str = "hybrid",
    ) -> SearchResult:
        """Items matching a Korean or English description, best first (module docstring: semantics)."""
        if mode not in SEARCH_MODES:
            raise ValueError(f"mode must be one of {SEARCH_MODES}, got {mode!r}")
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        notes: list[str] = []
        query = query or ""
        if len(query) > MAX_QUERY_CHARS:
            notes.append(f"query truncated from {len(query):,} to {MAX_QUERY_CHARS:,} characters")
            query = query[:MAX_QUERY_CHARS]
        with self._lock:
            lex = self._lex
        flt = self._filters(lex, domain, genres, genre_match, year_range, exclude)
        if not query.strip():
            notes.append("empty query: nothing to search for")
            return SearchResult(Scored.empty(), tuple(notes))
        n_leg = max(50, 3 * k)
        vec_ids: list[str] = []
        vec_scores = np.zeros(0, dtype=np.float32)
        if mode in ("vector", "hybrid"):
            qv = self._query_vector(query)
            vec_ids, vec_scores = self._vector(lex, qv, n_leg, flt)
        bm_ids: list[str] = []
        bm_scores = np.zeros(0, dtype=np.float32)
        if mode in ("bm25", "hybrid"):
            tokens = self._tok(query)
            bm_ids, bm_scores, n_known = lex.search(tokens, flt.mask, n_leg)
            if not n_known:
                notes.append("no query word occurs in the item texts: "
                             + ("ranked by meaning only" if mode == "hybrid" else "BM25 found nothing"))
            elif mode == "hybrid" and n_known < self.config.min_bm25_coverage * len(tokens):
                notes.append(f"only {n_known} of {len(tokens)} query words occur in the item texts: "
                             "ranked by meaning only")
                bm_ids = []
        if mode == "vector":
            return SearchResult(Scored(tuple(vec_ids[:k]), vec_scores[:k]), tuple(notes))
        if mode == "bm25":
            return SearchResult(Scored(tuple(bm_ids[:k]), bm_scores[:k]), tuple(notes))
        fused = rrf([vec_ids, bm_ids], self.config.rrf_k)[:k]
        return SearchResult(
            Scored(tuple(i for i, _ in fused), np.array([s for _, s in fused], dtype=np.float32)), tuple(notes)
        )

    def similar_to(
        self, item_ids: Sequence[str], k: int = 10, *, domain: str | None = None, exclude: Iterable[str] = ()
    ) -> SearchResult:
        """Items near the mean embedding of `item_ids` ("more like these"); with domain="book" a movie profile
        finds books. The given items themselves are never returned."""
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        item_ids = list(dict.fromkeys(item_ids))
        known = [i for i in item_ids if i in self._docs]
        if not known:
            raise UnknownItemError(
                f"none of {item_ids[:5]} is in the knowledge store ({len(self._docs)} items); index them first"
            )
        notes = []
        if len(known) < len(item_ids):
            missing = [i for i in item_ids if i not in self._docs]
            notes.append(f"ignored {len(missing)} unknown item(s): {', '.join(missing[:5])}")
        centre = np.stack([self._emb[i] for i in known]).mean(axis=0)
        centre /= max(float(np.linalg.norm(centre)), 1e-12)
        with self._lock:
            lex = self._lex
        flt = self._filters(lex, domain, None, "all", None, set(exclude) | set(known))
        ids, scores = self._vector(lex, centre, k, flt)
        return SearchResult(Scored(tuple(ids[:k]), scores[:k]), tuple(notes))

    def similarities(self, query: str, seed_ids: Sequence[str], item_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Cosine of each item's embedding with the query's and with the mean of the seeds' (zeros where an item,
        the query or the seeds are unknown): features for a ranker over candidates from any source."""
        text_sim = np.zeros(len(item_ids), dtype=np.float32)
        seed_sim = np.zeros(len(item_ids), dtype=np.float32)
        with self._lock:
            lex = self._lex
        rows = [lex.row.get(i) for i in item_ids]
        known = [n for n, r in enumerate(rows) if r is not None]
        if not known:
            return text_sim, seed_sim
        M = lex.emb[[rows[n] for n in known]]
        if query and query.strip():
            text_sim[known] = M @ self._query_vector(query[:MAX_QUERY_CHARS])
        seeds = [self._emb[i] for i in seed_ids if i in self._emb]
        if seeds:
            centre = np.mean(seeds, axis=0)
            centre /= max(float(np.linalg.norm(centre)), 1e-12)
            seed_sim[known] = M @ centre
        return text_sim, seed_sim

    def warm_up(self) -> None:
        """Load the sentence encoder now (~1.5 s, lazily loaded on first use) instead of in a user's turn."""
        self._query_vector("film")

    # -- internals --------------------------------------------------------------------------------------------

    def _encode_query(self, text: str) -> np.ndarray:
        v = self.embedder.encode([text])[0]
        v.setflags(write=False)  # shared by every caller through the cache
        return v

    def _filters(self, lex: _Lexical, domain, genres, genre_match, year_range, exclude) -> _Filters:
        n = len(lex.ids)
        mask = np.ones(n, dtype=bool)
        conds: list[dict] = []
        if domain is not None:
            if domain not in DOMAINS:
                raise ValueError(f"domain must be one of {DOMAINS} or None, got {domain!r}")
            conds.append({"domain": domain})
            mask &= lex.domain == domain
        if genres:
            if genre_match not in ("all", "any"):
                raise ValueError(f"genre_match must be 'all' or 'any', got {genre_match!r}")
            by_key = {g.lower(): g for g in lex.genre_mask}
            wanted = []
            for g in ([genres] if isinstance(genres, str) else genres):
                canon = by_key.get(str(g).strip().lower())
                if canon is None:
                    raise UnknownGenreError(
                        f"unknown genre {g!r}; known genres: {', '.join(sorted(lex.genre_mask)) or '(none indexed)'}"
                    )
                wanted.append(canon)
            gconds = [{"genres": {"$contains": g}} for g in wanted]
            if len(gconds) == 1:
                conds.append(gconds[0])
            else:
                conds.append({"$and" if genre_match == "all" else "$or": gconds})
            gm = [lex.genre_mask[g] for g in wanted]
            mask &= np.logical_and.reduce(gm) if genre_match == "all" else np.logical_or.reduce(gm)
        if year_range is not None:
            lo, hi = year_range
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"year_range {year_range} has start after end")
            if lo is not None:
                conds.append({"year": {"$gte": int(lo)}})
                mask &= lex.year >= lo
            if hi is not None:
                conds.append({"year": {"$lte": int(hi)}})
                mask &= lex.year <= hi
        exclude = frozenset(exclude)
        for i in exclude:
            r = lex.row.get(i)
            if r is not None:
                mask[r] = False
        where = None if not conds else conds[0] if len(conds) == 1 else {"$and": conds}
        return _Filters(where, mask, exclude)

    def _vector(self, lex: _Lexical, qv: np.ndarray, n: int, flt: _Filters) -> tuple[list[str], np.ndarray]:
        if self.config.vector_search == "exact":
            sims = lex.emb @ np.asarray(qv, dtype=np.float32)
            sims = np.where(flt.mask, sims, -np.inf)
            n = min(n, int(flt.mask.sum()))
            if n <= 0:
                return [], np.zeros(0, dtype=np.float32)
            top = np.argpartition(-sims, n - 1)[:n]
            top = top[np.argsort(-sims[top], kind="stable")]
            return [lex.ids[r] for r in top], sims[top].astype(np.float32)
        total = len(self._docs)
        if total == 0:
            return [], np.zeros(0, dtype=np.float32)
        # Chroma cannot filter by id: fetch enough extra rows to survive dropping the excluded ones.
        n_fetch = min(total, n + len(flt.exclude))
        res = self._call(self.config, lambda: self._col.query(
            query_embeddings=[qv], n_results=n_fetch, where=flt.where, include=["distances"]))
        ids, scores = [], []
        for i, d in zip(res["ids"][0], res["distances"][0]):
            if i in flt.exclude:
                continue
            ids.append(i)
            scores.append(1.0 - float(d))  # cosine distance → similarity
            if len(ids) >= n:
                break
        return ids, np.asarray(scores, dtype=np.float32)
