"""Builds every part of the app from Settings: data → generators → knowledge → resolver → LLM → Engine.

The composition root (app.py) calls `bootstrap(settings)` and hands the result to the UI. Each step logs what it
is doing and how long it took, so a first start (which embeds the catalog into Chroma) shows where the time goes.

Start-up caches, both under settings.cache_dir and both keyed by content:
- the fitted ALS factors (`models/als-<hash>.npz`, the hash covers the interaction matrix, the ALS config and the
  implicit version): a second start loads them instead of fitting;
- the Chroma index: indexing is idempotent by a content hash per item, so unchanged items are not re-embedded.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from retrieval.candidates import ALSConfig, ALSGenerator, PopularityGenerator
from retrieval.datasets import DataLocator, Dataset, load_dataset
from retrieval.types import Catalog, Interactions, Item

from .settings import Settings

log = logging.getLogger("chatrec.bootstrap")

ALS_CACHE_VERSION = 1  # bump when the cached file layout changes


class BootstrapError(RuntimeError):
    """A part of the app could not be built; the message says what to change."""


@dataclass
class Built:
    """Every long-lived part of the app (shared, read-only across users) plus how the start-up went."""

    settings: Settings
    movies: Dataset
    books: Dataset | None
    als: ALSGenerator
    popularity: PopularityGenerator
    knowledge: object | None  # retrieval.knowledge.KnowledgeStore, or None when Chroma is unavailable
    resolver: object | None
    llm: object
    engine: object
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # degraded parts, said in the UI status line too
    als_cached: bool = False
    scorer: object | None = None
    shared: dict = field(default_factory=dict, repr=False)  # stats, ranker, rating model: one set for all variants
    _variants: dict = field(default_factory=dict, repr=False)
    _variants_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def engine_for(self, *, rerank: str | None = None, use_llm: bool | None = None, n_recs: int | None = None):
        """An Engine over the same fitted parts with per-session choices (the UI's settings accordion).

        Engines hold no per-user state, so one per distinct choice is built on first use (~0.1 s) and shared.
        """
        s = self.settings
        key = (rerank or s.rerank, s.llm_enabled if use_llm is None else bool(use_llm) and s.llm_enabled,
               n_recs or s.n_recs)
        if key == (s.rerank, s.llm_enabled, s.n_recs):
            return self.engine
        with self._variants_lock:
            if key not in self._variants:
                from .llm import NoLLM

                rerank_, llm_on, n = key
                settings = s.replace(rerank=rerank_, n_recs=n, n_candidates=max(s.n_candidates, n))
                self._variants[key] = _build_engine(settings, self.movies, self.books, self.als, self.popularity,
                                                    self.knowledge, self.resolver,
                                                    self.llm if llm_on else NoLLM(), self.scorer, self.shared)
            return self._variants[key]


@contextmanager
def _step(name: str, timings: dict[str, float]) -> Iterator[None]:
    log.info("start-up: %s ...", name)
    t0 = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - t0
    log.info("start-up: %s done in %.1f s", name, timings[name])


# ------------------------------------------------------------------------------------------------ ALS with a disk cache
def als_cache_key(interactions: Interactions, config: ALSConfig, variant: str = "") -> str:
    """A hash of everything the fitted factors depend on; `variant` names the input (which sets were pooled)."""
    import implicit

    m = interactions.matrix
    h = hashlib.sha256()
    h.update(f"v{ALS_CACHE_VERSION}|implicit {implicit.__version__}|{m.shape}|{variant}|".encode())
    h.update(repr((config.factors, config.regularization, config.alpha, config.iterations, config.seed)).encode())
    for arr in (m.indptr, m.indices, m.data):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:20]


class CachedALSGenerator(ALSGenerator):
    """ALSGenerator whose fitted implicit model is saved to / loaded from `cache_dir/models/als-<key>.npz`.

    Only the numeric fit is cached; the id bookkeeping is rebuilt by `fit` as usual, so a cache file can never
    attach factors to the wrong catalog (the key covers the matrix shape and content).
    """

    def __init__(self, config: ALSConfig, cache_dir: Path | None, variant: str = ""):
        super().__init__(config)
        self.cache_dir = Path(cache_dir) / "models" if cache_dir else None
        self.variant = variant
        self.loaded_from_cache = False
        self.cache_path: Path | None = None

    def fit(self, interactions: Interactions, catalog: Catalog):
        if self.cache_dir is not None:
            self.cache_path = self.cache_dir / f"als-{als_cache_key(interactions, self.config, self.variant)}.npz"
        return super().fit(interactions, catalog)

    def _fit(self, matrix) -> None:
        path = self.cache_path
        if path is not None and path.is_file():
            try:
                self._adopt(self._load_model(path))
                self.loaded_from_cache = True
                log.info("ALS factors loaded from %s", path)
                return
            except (OSError, ValueError, KeyError) as e:  # a torn or stale file: refit and overwrite it
                log.warning("ignoring unreadable ALS cache %s (%s); refitting", path, e)
        super()._fit(matrix)
        if path is not None:
            self._save_model(path)

    @staticmethod
    def _load_model(path: Path):
        import threadpoolctl
        from implicit.cpu.als import AlternatingLeastSquares

        # Building the model object checks the BLAS thread pool and warns on every start unless it is pinned,
        # as it is for fitting (retrieval/candidates.py).
        with threadpoolctl.threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares.load(str(path))
        if model.user_factors is None or model.item_factors is None:
            raise ValueError("cache file has no factors")
        return model

    def _save_model(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        self._model.save(str(tmp))
        tmp.replace(path)  # atomic: a second process never reads a half-written file
        log.info("ALS factors cached in %s", path)

    def _adopt(self, model) -> None:
        # Mirrors the tail of ALSGenerator._fit (scoring and fold-in read these).
        self._model = model
        self._user_f = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self._item_f = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        norms = np.linalg.norm(self._item_f, axis=1)
        self._item_unit = self._item_f / np.where(norms > 0, norms, 1.0)[:, None]


# ------------------------------------------------------------------------------------------------ steps
def load_data(settings: Settings) -> tuple[Dataset, Dataset | None]:
    loc = DataLocator(data_dir=settings.data_dir, cache_dir=settings.cache_dir,
                      allow_download=settings.allow_download)
    movies = load_dataset(settings.dataset, loc)
    books = load_dataset("goodbooks-10k", loc) if settings.books else None
    return movies, books


def fit_generators(settings: Settings, movies: Dataset) -> tuple[CachedALSGenerator, PopularityGenerator]:
    cfg = ALSConfig(factors=settings.als_factors, regularization=settings.als_regularization,
                    alpha=settings.als_alpha, iterations=settings.als_iterations)
    als_input, variant = movies, ""
    if settings.pool_movielens:
        from retrieval.pooled import load_pooled

        als_input = load_pooled(movies, DataLocator(data_dir=settings.data_dir, cache_dir=settings.cache_dir,
                                                    allow_download=settings.allow_download))
        log.info("ALS input pooled:\n%s", als_input.describe())
        # Which sets, with which weights: the cache must not mix them up (nothing pooled: the plain key).
        variant = als_input.name if als_input.name != movies.name else ""
    liked = als_input.interactions(confidence=settings.als_confidence, min_rating=settings.als_min_rating)
    als = CachedALSGenerator(cfg, settings.cache_dir, variant=variant).fit(liked, movies.catalog)
    pop = PopularityGenerator().fit(movies.interactions(confidence=settings.als_confidence), movies.catalog)
    return als, pop


def items_to_index(movies: Dataset, books: Dataset | None, limit: int | None) -> list[Item]:
    """What goes into Chroma: every item, or with `limit` the `limit` most-rated movies plus as many books.

    The limit exists for tests and quick demos (embedding ~20k documents on two cores takes minutes once).
    """
    from retrieval.documents import with_avg_ratings

    movie_items = with_avg_ratings(movies.catalog, movies.ratings)
    book_items = list(books.catalog) if books is not None else []
    if limit is not None:
        counts = np.bincount(movies.ratings.item, minlength=len(movies.catalog))
        top = np.argsort(-counts, kind="stable")[:limit]
        movie_items = [movie_items[r] for r in sorted(top)]
        book_items = book_items[:limit]  # goodbooks-10k is ordered by popularity
    return movie_items + book_items


def open_knowledge(settings: Settings, items: list[Item], progress: bool = True):
    """The Chroma store, indexed. Returns (store or None, note): Chroma being down degrades, it doesn't stop us."""
    from retrieval.embeddings import make_embedder
    from retrieval.knowledge import KnowledgeConfig, KnowledgeStore, KnowledgeUnavailableError

    if settings.chroma_host:
        cfg = KnowledgeConfig(host=settings.chroma_host, port=settings.chroma_port or 8000, progress=progress)
    else:
        cfg = KnowledgeConfig(path=Path(settings.cache_dir) / "knowledge", progress=progress)
    try:
        store = KnowledgeStore.open(cfg, make_embedder(settings.embedder))
        report = store.index(items)
    except KnowledgeUnavailableError as e:
        log.warning("knowledge store unavailable: %s", e)
        return None, f"Knowledge store unavailable ({cfg.where}): descriptive search is off, ALS still works."
    log.info("knowledge index: %d added, %d updated, %d unchanged (%.1f s)",
             report.added, report.updated, report.unchanged, report.seconds)
    return store, None


def bootstrap(settings: Settings, *, index_limit: int | None = None, progress: bool = True) -> Built:
    """Build everything. Raises BootstrapError / DatasetError / LLMError with a message that says what to do."""
    timings: dict[str, float] = {}
    notes: list[str] = []
    with _step("language model", timings):  # first: a misconfigured LLM should fail before minutes of indexing
        from .llm import make_llm

        llm = make_llm(settings)
        scorer = _build_scorer(settings)
        if settings.rerank == "lm" and scorer is None:
            notes.append("rerank=lm needs --scorer-model; ranking by score order instead.")
    with _step("loading data", timings):
        movies, books = load_data(settings)
        log.info("data: %s%s", movies.describe(), f"; {books.describe()}" if books else "")
    if settings.rerank == "cllm":
        with _step("CLLM4Rec model", timings):
            scorer, note = _load_cllm(settings, movies.catalog)
            if note:
                notes.append(note)
    with _step("fitting ALS", timings):
        als, pop = fit_generators(settings, movies)
    with _step("indexing knowledge", timings):
        knowledge, note = open_knowledge(settings, items_to_index(movies, books, index_limit), progress)
        if note:
            notes.append(note)
    with _step("title resolver", timings):
        resolver = _build_resolver(movies)
    with _step("engine", timings):
        shared = shared_parts(settings, movies)
        engine = _build_engine(settings, movies, books, als, pop, knowledge, resolver, llm, scorer, shared)
    total = sum(timings.values())
    log.info("start-up: ready in %.1f s (%s)", total, ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    return Built(settings=settings, movies=movies, books=books, als=als, popularity=pop, knowledge=knowledge,
                 resolver=resolver, llm=llm, engine=engine, timings=timings, notes=notes,
                 als_cached=als.loaded_from_cache, scorer=scorer, shared=shared)


def _build_resolver(movies: Dataset):
    """Typed titles (English or Korean) → movie ids, popularity breaking near-ties.

    No embedding fallback: a nearest neighbour of any text is *some* film, and the engine trusts the resolver's
    matches as things the user named; descriptions go to the knowledge search instead.
    """
    from retrieval.title_resolver import TitleResolver

    return TitleResolver.for_dataset(movies)


def _build_scorer(settings: Settings):
    """The LMRecSys title scorer, only for rerank=lm with a scorer model configured."""
    if settings.rerank != "lm" or not settings.scorer_model:
        return None
    from retrieval.title_scorer import TitleScorer

    return TitleScorer.from_pretrained(settings.scorer_model, gguf_file=settings.scorer_model_file,
                                       cache_dir=settings.cache_dir, download=settings.allow_download)


def _load_cllm(settings: Settings, catalog: Catalog):
    """The CLLM4Rec reranker for rerank=cllm (it rides in the engine's scorer slot): (model, None), or (None, why)
    when it is not set, unreadable, or trained on another catalog (its item tokens would match nothing here)."""
    if not settings.cllm_model:
        return None, ("rerank=cllm needs --cllm-model (a folder from `chatrec-eval cllm4rec --save`); "
                      "ranking by score order instead.")
    from retrieval.cllm4rec import CLLMLoadError, CLLMRecommender

    try:
        model = CLLMRecommender.load(settings.cllm_model)
    except CLLMLoadError as e:
        log.warning("CLLM4Rec model not loaded: %s", e)
        return None, f"CLLM4Rec model not loaded ({e}); ranking by score order instead."
    known = sum(1 for i in catalog.ids if model.vocab.item_row(i) is not None)
    if known < len(catalog) // 2:
        return None, (f"the CLLM4Rec model knows {known} of the {len(catalog)} {catalog.name} items (trained on "
                      "another dataset?); ranking by score order instead.")
    log.info("CLLM4Rec model: %s (%d of %d items)", settings.cllm_model, known, len(catalog))
    return model, None


def shared_parts(settings, movies) -> dict:
    """Parts every engine variant shares (built once per app): item statistics, the fusion ranker, the rating
    model for "would I like X?"."""
    from retrieval.item_stats import ItemStats

    from .ranker import DEFAULT_MODEL, load_ranker

    choice = settings.ranker_model
    ranker = load_ranker(None if choice == "none" else DEFAULT_MODEL if choice == "default" else Path(choice))
    log.info("start-up: ranker: %s", ranker.describe())
    return {"stats": ItemStats.from_ratings(movies.catalog, movies.ratings), "ranker": ranker,
            "rating_model": _rating_model(movies)}


def _build_engine(settings, movies, books, als, pop, knowledge, resolver, llm, scorer, shared: dict):
    from .engine import Engine

    return Engine(movies.catalog, als=als, popularity=pop, knowledge=knowledge, resolver=resolver, llm=llm,
                  settings=settings, books_catalog=books.catalog if books is not None else None, scorer=scorer,
                  **shared)


def _rating_model(movies):
    """Biased MF for "would I like X?" (chatrec/predict.py); a few seconds to fit. None when it cannot be fitted."""
    from retrieval.rating_models import BiasedMF, RatingModelError

    if movies.ratings is None or not len(movies.ratings):
        return None
    lo = float(movies.ratings.rating.min())
    try:
        t0 = time.perf_counter()
        model = BiasedMF(scale=(min(lo, 1.0), 5.0), n_epochs=20).fit(movies.ratings, len(movies.catalog))
        log.info("start-up: rating model (biased MF) fitted in %.1f s", time.perf_counter() - t0)
        return model
    except RatingModelError as e:
        log.warning("rating prediction off: %s", e)
        return None
