"""Knowledge-store benchmark: embedding throughput, index time (all ML-1M movies + 10,000 goodbooks), reopen time,
and query latency p50/p99 over 500 queries, embedded and against a real `chroma run` server.

    .venv/bin/python benchmarks/knowledge.py [--data-dir ../shared/data] [--queries 500] [--quality]

Everything is built in a temporary directory; the server is started and always stopped by this script.
Numbers depend on the machine's load: the script prints the load average next to them.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from retrieval.datasets import DataLocator, load_dataset  # noqa: E402
from retrieval.documents import embedding_text, with_avg_ratings  # noqa: E402
from retrieval.embeddings import make_embedder  # noqa: E402
from retrieval.knowledge import KnowledgeConfig, KnowledgeStore  # noqa: E402
from tests.fixtures.chroma_server import running_chroma  # noqa: E402

WORDS_EN = ("space", "revenge", "love", "war", "robot", "ghost", "heist", "family", "music", "western", "detective",
            "dragon", "school", "ocean", "zombie", "prison", "island", "king", "spy", "friendship")
WORDS_KO = ("우주", "복수", "사랑", "전쟁", "로봇", "유령", "강도", "가족", "음악", "서부", "탐정", "용", "학교", "바다",
            "좀비", "감옥", "섬", "왕", "스파이", "우정")


def make_queries(n: int, seed: int = 0) -> list[tuple[str, dict]]:
    """Half English, half Korean; a third with filters, so every code path is timed."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = WORDS_KO if i % 2 else WORDS_EN
        q = " ".join(rng.sample(words, 3))
        q = (f"{q}에 관한 영화" if i % 2 else f"a film about {q}")
        kw: dict = {}
        if i % 3 == 1:
            kw["domain"] = "movie"
        elif i % 3 == 2:
            kw.update(domain="movie", genres=("Drama",), year_range=(1980, 1999))
        out.append((q, kw))
    return out


def latency(store: KnowledgeStore, queries, mode: str) -> tuple[float, float]:
    store.search("warm up", k=10, mode=mode)
    ts = []
    for q, kw in queries:
        t0 = time.perf_counter()
        store.search(q, k=10, mode=mode, **kw)
        ts.append((time.perf_counter() - t0) * 1000)
    return float(np.percentile(ts, 50)), float(np.percentile(ts, 99))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--books", type=int, default=10_000)
    ap.add_argument("--quality", action="store_true", help="also print the quality-set hit@10 table")
    args = ap.parse_args(argv)

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    loc = DataLocator(data_dir=args.data_dir, allow_download=False, progress=False)
    ml1m = load_dataset("ml-1m", loc)
    books = load_dataset("goodbooks-10k", loc)
    items = with_avg_ratings(ml1m.catalog, ml1m.ratings) + list(books.catalog)[: args.books]
    print(f"items: {len(ml1m.catalog)} ML-1M movies + {min(args.books, len(books.catalog))} books = {len(items)}")

    embedder = make_embedder()
    texts = [embedding_text(it) for it in items[:1000]]
    embedder.encode(texts[:16])
    t0 = time.perf_counter()
    embedder.encode(texts)
    dt = time.perf_counter() - t0
    chars = np.mean([len(t) for t in texts])
    print(f"embedding throughput ({embedder.encoder_id}, threads=1): {len(texts) / dt:.0f} docs/s "
          f"(1000 movie texts, mean {chars:.0f} chars); single query: ", end="")
    t0 = time.perf_counter()
    for _ in range(50):
        embedder.encode(["우주를 배경으로 한 잔잔한 SF"])
    print(f"{(time.perf_counter() - t0) / 50 * 1000:.1f} ms")

    queries = make_queries(args.queries)
    with tempfile.TemporaryDirectory(prefix="chatrec-bench-") as tmp:
        path = Path(tmp) / "chroma"
        cfg = KnowledgeConfig(path=path, progress=False)
        t0 = time.perf_counter()
        store = KnowledgeStore.open(cfg, embedder)
        rep = store.index(items)
        print(f"index (embedded, from empty): {rep.added} items in {time.perf_counter() - t0:.1f} s "
              f"({rep.added / rep.seconds:.0f} items/s incl. upserts)")
        t0 = time.perf_counter()
        store = KnowledgeStore.open(cfg, embedder)
        t_open = time.perf_counter() - t0
        t0 = time.perf_counter()
        rep2 = store.index(items)
        print(f"reopen existing index: {t_open:.1f} s; re-index unchanged: {rep2.unchanged} unchanged, "
              f"{rep2.added + rep2.updated} embedded, {time.perf_counter() - t0:.1f} s")
        print(f"query latency over {len(queries)} queries (k=10, half Korean, a third filtered):")
        for mode in ("vector", "bm25", "hybrid"):
            p50, p99 = latency(store, queries, mode)
            print(f"  embedded {mode:<7} p50 {p50:6.1f} ms   p99 {p99:6.1f} ms")
        t0 = time.perf_counter()
        res = store.similar_to([items[0].id, items[1].id], k=10, domain="book")
        print(f"  embedded similar_to(2 movies, domain=book): {(time.perf_counter() - t0) * 1000:.1f} ms "
              f"({len(res.scored)} books)")
        del store
        with running_chroma(path) as server:
            t0 = time.perf_counter()
            remote = KnowledgeStore.open(KnowledgeConfig(host=server.host, port=server.port, progress=False),
                                         embedder)
            print(f"server open (same index via `chroma run`): {time.perf_counter() - t0:.1f} s, "
                  f"{remote.count()} items")
            for mode in ("vector", "hybrid"):
                p50, p99 = latency(remote, queries, mode)
                print(f"  server   {mode:<7} p50 {p50:6.1f} ms   p99 {p99:6.1f} ms")
    if args.quality:
        from tests.test_knowledge_quality import cached_index_dir, evaluate, load_queries, quality_items

        q_items = quality_items(loc)
        qstore = KnowledgeStore.open(KnowledgeConfig(path=cached_index_dir(q_items, embedder), progress=False),
                                     embedder)
        print("quality set (ml-latest-small + goodbooks-10k):")
        print(evaluate(qstore, load_queries()).render())
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
