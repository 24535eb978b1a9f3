"""`chatrec-index`: build, extend and query the item knowledge store (Chroma).

  chatrec-index build --dataset ml-latest-small [--books] [--rebuild]   index a catalog (idempotent)
  chatrec-index add --file new_items.csv                               cold-start items (CSV columns: see
                                                                       retrieval/documents.py)
  chatrec-index search "우주를 배경으로 한 잔잔한 SF" [--k 10 --domain movie --mode hybrid]
  chatrec-index info                                                   where the store is and what it holds
  chatrec-index enrich [--dataset ml-latest-small --limit N]           Korean titles, posters, runtimes...:
                                                                       TMDB with TMDB_API_KEY, else Wikidata
                                                                       (cached under DATA_DIR/enrich, resumable)

Store location: embedded under CACHE_DIR/knowledge, or a server when --chroma-host/--chroma-port (CHROMA_HOST /
CHROMA_PORT) are set. Exit codes: 0 ok, 2 bad input, 3 store unavailable or built with another encoder.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

from retrieval.datasets import DatasetError
from retrieval.documents import ItemFileError, read_items_csv, with_avg_ratings
from retrieval.embeddings import EmbedderUnavailableError, make_embedder
from retrieval.knowledge import (
    EncoderMismatchError,
    KnowledgeConfig,
    KnowledgeStore,
    KnowledgeUnavailableError,
    UnknownGenreError,
)

from .settings import DATASET_NAMES, Settings, from_env


def knowledge_config(settings: Settings, *, collection: str = "chatrec-items", progress: bool = True) -> KnowledgeConfig:
    """The store location the app and this CLI share: a Chroma server if configured, else the cache dir."""
    if settings.chroma_host:
        return KnowledgeConfig(host=settings.chroma_host, port=settings.chroma_port or 8000, collection=collection,
                               progress=progress)
    return KnowledgeConfig(path=Path(settings.cache_dir) / "knowledge", collection=collection, progress=progress)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chatrec-index", description=__doc__.split("\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cache-dir", type=Path, help="default: CHATREC_CACHE_DIR or ~/.cache/chatrec")
    common.add_argument("--path", type=Path, help="embedded store directory (default CACHE_DIR/knowledge)")
    common.add_argument("--chroma-host", help="Chroma server host (CHROMA_HOST)")
    common.add_argument("--chroma-port", type=int, help="Chroma server port (CHROMA_PORT)")
    common.add_argument("--collection", default="chatrec-items")
    common.add_argument("--embedder", help="use-multilingual | sentence-transformers:<model> | openai:<model>")
    common.add_argument("--no-progress", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", parents=[common], help="index a dataset's catalog")
    b.add_argument("--dataset", default="ml-latest-small", choices=DATASET_NAMES)
    b.add_argument("--books", action="store_true", help="also index goodbooks-10k")
    b.add_argument("--data-dir", type=Path)
    b.add_argument("--no-download", action="store_true", help="fail instead of downloading missing data")
    b.add_argument("--rebuild", action="store_true", help="delete the collection first (e.g. after changing --embedder)")
    a = sub.add_parser("add", parents=[common], help="add cold-start items from a CSV file")
    a.add_argument("--file", type=Path, required=True)
    s = sub.add_parser("search", parents=[common], help="query the store")
    s.add_argument("query")
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--domain", choices=("movie", "book"))
    s.add_argument("--genre", action="append", dest="genres")
    s.add_argument("--mode", default="hybrid", choices=("hybrid", "vector", "bm25"))
    sub.add_parser("info", parents=[common], help="show the store location and size")
    e = sub.add_parser("enrich", parents=[common], help="fetch Korean titles, posters, runtimes (TMDB / Wikidata)")
    e.add_argument("--dataset", default="ml-latest-small", choices=DATASET_NAMES)
    e.add_argument("--data-dir", type=Path)
    e.add_argument("--no-download", action="store_true", help="fail instead of downloading missing data")
    e.add_argument("--limit", type=int, help="fetch at most this many movies in this run (resume later)")
    e.add_argument("--tmdb-url", default=None, help=argparse.SUPPRESS)  # tests: a local server
    e.add_argument("--wikidata-url", default=None, help=argparse.SUPPRESS)
    return p


def _enrich(ns, settings: Settings) -> int:
    """`chatrec-index enrich`: fill the enrichment cache for a dataset's movies (see retrieval/enrich.py)."""
    from retrieval import enrich
    from retrieval.datasets import DataLocator, load_dataset

    loc = DataLocator(data_dir=settings.data_dir, cache_dir=settings.cache_dir,
                      allow_download=settings.allow_download, progress=not ns.no_progress)
    items = list(load_dataset(ns.dataset, loc, with_text=False).catalog)
    root = enrich.cache_root(settings.data_dir, settings.cache_dir)
    key = settings.tmdb_api_key.get_secret_value()
    urls = {k: v for k, v in (("tmdb_url", ns.tmdb_url), ("wikidata_url", ns.wikidata_url)) if v}
    report = enrich.enrich(items, root, tmdb_api_key=key, limit=ns.limit, progress=not ns.no_progress, **urls)
    print(f"{root} ({'TMDB' if key else 'Wikidata, no TMDB_API_KEY'}): {report}")
    return 0


def _settings(ns) -> Settings:
    s = from_env()
    kw = {}
    for name in ("cache_dir", "chroma_host", "chroma_port", "embedder"):
        v = getattr(ns, name, None)
        if v is not None:
            kw[name] = v
    if getattr(ns, "data_dir", None) is not None:
        kw["data_dir"] = ns.data_dir
    if getattr(ns, "no_download", False):
        kw["allow_download"] = False
    return s.replace(**kw)


def main(argv: Sequence[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    settings = _settings(ns)
    if ns.cmd == "enrich":  # needs no store
        try:
            return _enrich(ns, settings)
        except (DatasetError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    config = knowledge_config(settings, collection=ns.collection, progress=not ns.no_progress)
    if ns.path is not None:
        if settings.chroma_host:
            print("error: pass either --path or --chroma-host, not both", file=sys.stderr)
            return 2
        config = KnowledgeConfig(path=ns.path, collection=ns.collection, progress=not ns.no_progress)
    try:
        if ns.cmd == "build" and ns.rebuild:
            dropped = KnowledgeStore.drop(config)
            print(f"dropped collection {config.collection!r}" if dropped else "nothing to drop")
        if ns.cmd == "add":
            items = read_items_csv(ns.file)  # read before opening the store: a bad file fails fast
        store = KnowledgeStore.open(config, make_embedder(settings.embedder))
        if ns.cmd == "build":
            from retrieval.datasets import DataLocator, load_dataset

            loc = DataLocator(data_dir=settings.data_dir, cache_dir=settings.cache_dir,
                              allow_download=settings.allow_download, progress=not ns.no_progress)
            ds = load_dataset(ns.dataset, loc)
            items = with_avg_ratings(ds.catalog, ds.ratings)
            if ns.books:
                items += list(load_dataset("goodbooks-10k", loc).catalog)
            report = store.index(items)
            print(f"{config.where} [{config.collection}]: {report.added} added, {report.updated} updated, "
                  f"{report.unchanged} unchanged in {report.seconds:.1f}s; {store.count()} items")
        elif ns.cmd == "add":
            report = store.add_items(items)
            print(f"{ns.file}: {report.added} added, {report.updated} updated, {report.unchanged} unchanged; "
                  f"{store.count()} items")
        elif ns.cmd == "search":
            t0 = time.perf_counter()
            res = store.search(ns.query, k=ns.k, domain=ns.domain, genres=ns.genres, mode=ns.mode)
            ms = (time.perf_counter() - t0) * 1000
            for rank, (item_id, score) in enumerate(res.scored, 1):
                it = store.item(item_id)
                print(f"{rank:>2}. {score:.4f}  {item_id:<14} {it.label if it else ''}")
            for note in res.notes:
                print(f"note: {note}")
            print(f"({ms:.0f} ms)")
        else:
            print(f"{config.where} [{config.collection}]: {store.count()} items, encoder {store.embedder.encoder_id} "
                  f"(dim {store.embedder.dim}), genres: {', '.join(store.genres)}")
    except (KnowledgeUnavailableError, EncoderMismatchError, EmbedderUnavailableError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except (ItemFileError, UnknownGenreError, DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
