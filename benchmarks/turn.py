"""Turn latency of the Chat-REC engine.

1. Without LLM generation (llm_backend=none, score order): p50/p95 of a whole turn and of its stages
   (understanding incl. title resolution, candidate assembly incl. ALS fold-in + knowledge search) over N scripted
   English/Korean turns on ml-latest-small + goodbooks-10k with the real Chroma store.
2. With a real llama.cpp server (SmolLM2-135M GGUF, if available): time to the first streamed text chunk, to the
   first LLM-written chunk, and to the end of the turn.

    python -m benchmarks.turn --turns 100 --llm-turns 10
Prints one table; the numbers depend on the machine (and on other load on it), so compare within one run.
"""
from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCRIPT = [
    ("en", "I loved The Matrix, recommend something similar"),
    ("en", "a feel-good comedy from the 90s"),
    ("en", "more please"),
    ("en", "something scary but not too gory, recent"),
    ("en", "books for someone who loved Blade Runner"),
    ("en", "I didn't like Forrest Gump"),
    ("ko", "인터스텔라 같은 영화 추천해줘"),
    ("ko", "90년대 로맨스 영화"),
    ("ko", "다른 거 더 추천해줘"),
    ("ko", "블레이드 러너 좋아하는 사람한테 책 추천"),
    ("en", "movies like Toy Story and Up"),
    ("ko", "우주를 배경으로 한 잔잔한 SF"),
]


def pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1000.0, q))


def row(name, xs):
    return f"{name:<38} {len(xs):>5} {pct(xs, 50):>9.1f} {pct(xs, 95):>9.1f} {max(xs) * 1000:>9.1f}"


def build(index_limit: int | None, cache_dir: Path, data_dir: Path):
    from chatrec.bootstrap import fit_generators, items_to_index, load_data, open_knowledge
    from chatrec.settings import Settings
    from retrieval.title_resolver import TitleResolver

    settings = Settings(data_dir=data_dir, cache_dir=cache_dir, allow_download=False, llm_backend="none",
                        rerank="score")
    movies, books = load_data(settings)
    als, pop = fit_generators(settings, movies)
    knowledge, note = open_knowledge(settings, items_to_index(movies, books, index_limit), progress=True)
    if knowledge is None:
        print(f"warning: {note}")
    resolver = TitleResolver.for_dataset(movies)
    return settings, movies, books, als, pop, knowledge, resolver


def engine_for(parts, llm=None, **kw):
    from chatrec.engine import Engine

    settings, movies, books, als, pop, knowledge, resolver = parts
    return Engine(movies.catalog, als=als, popularity=pop, knowledge=knowledge, resolver=resolver, llm=llm,
                  settings=settings.replace(**kw), books_catalog=books.catalog if books else None)


def timed(obj, name, sink):
    fn = getattr(obj, name)

    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            sink.append(time.perf_counter() - t)

    setattr(obj, name, wrapper)


def bench_no_llm(parts, n_turns: int):
    eng = engine_for(parts)
    und, cand = [], []
    timed(eng.understander, "understand", und)
    timed(eng.assembler, "assemble", cand)
    for lang, msg in SCRIPT[:2] + SCRIPT[6:8]:  # one-time costs (Korean morphology model load) stay out
        for _ in eng.turn(eng.new_session(lang), msg):
            pass
    und.clear()
    cand.clear()
    total = []
    session = None
    for i in range(n_turns):
        lang, msg = SCRIPT[i % len(SCRIPT)]
        if i % len(SCRIPT) == 0:
            session = eng.new_session(lang)
        t = time.perf_counter()
        for _ in eng.turn(session, msg):
            pass
        total.append(time.perf_counter() - t)
    return total, und, cand


def bench_llm(parts, n_turns: int, max_tokens: int):
    from chatrec.events import TextChunk
    from chatrec.llm import OpenAICompatibleLLM
    from tests.fixtures.llama_server import _skip_reason, gguf_path, start_llama_server

    reason = _skip_reason()
    if reason:
        print(f"llama.cpp part skipped: {reason}")
        return None
    import tempfile

    server = start_llama_server(gguf_path(), Path(tempfile.mkdtemp()) / "server.log")
    try:
        llm = OpenAICompatibleLLM(base_url=server.base_url, api_key="", model="local", max_tokens=max_tokens,
                                  timeout_s=120, max_retries=1)
        list(llm.stream([("user", "hi")], max_tokens=4))  # warm the server
        eng = engine_for(parts, llm=llm, llm_backend="openai", rerank="llm", llm_max_tokens=max_tokens)
        first, first_llm, end, raw_first, progress = [], [], [], [], []
        for i in range(n_turns):
            t = time.perf_counter()
            it = llm.stream([("user", SCRIPT[i % len(SCRIPT)][1])], max_tokens=8)
            next(it)
            raw_first.append(time.perf_counter() - t)
            for _ in it:
                pass
        starts: list[float] = []  # perf_counter of the first piece of every llm.stream call (profile, reply)
        orig = llm.stream

        def stream(*a, **k):
            first_piece = True
            for piece in orig(*a, **k):
                if first_piece:
                    starts.append(time.perf_counter())
                    first_piece = False
                yield piece

        llm.stream = stream
        for i in range(n_turns):
            lang, msg = SCRIPT[i % len(SCRIPT)]
            s = eng.new_session(lang)
            starts.clear()
            t = time.perf_counter()
            got_first = got_event = None
            for ev in eng.turn(s, msg):
                if got_event is None:
                    got_event = time.perf_counter() - t
                    progress.append(got_event)
                if isinstance(ev, TextChunk) and got_first is None:
                    got_first = time.perf_counter() - t
            end.append(time.perf_counter() - t)
            first.append(got_first)
            if starts:
                first_llm.append(starts[-1] - t)  # the reply is the turn's last stream
        return raw_first, progress, first, first_llm, end
    finally:
        server.stop()


def main(argv=None) -> int:
    from tests.conftest import SHARED_DATA, TEST_CACHE

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=100)
    ap.add_argument("--llm-turns", type=int, default=10)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--index-limit", type=int, default=1500,
                    help="movies (+ as many books) in the Chroma index; 0 = all (first build takes minutes)")
    ap.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    ap.add_argument("--cache-dir", type=Path, default=TEST_CACHE / "app")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    t0 = time.perf_counter()
    parts = build(args.index_limit or None, args.cache_dir, args.data_dir)
    print(f"setup: {time.perf_counter() - t0:.1f} s · {platform.processor() or platform.machine()} · "
          f"index_limit={args.index_limit or 'all'}")
    total, und, cand = bench_no_llm(parts, args.turns)
    print(f"\n{'no LLM (rules + score order + templates)':<38} {'n':>5} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}")
    print(row("whole turn", total))
    print(row("  understanding (rules + resolver)", und))
    print(row("  candidates (ALS + knowledge + pop)", cand))
    if args.llm_turns > 0:
        res = bench_llm(parts, args.llm_turns, args.max_tokens)
        if res:
            raw, progress, first, first_llm, end = res
            print(f"\n{'llama.cpp SmolLM2-135M (rerank=llm)':<38} {'n':>5} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}")
            print(row("raw server first token (short prompt)", raw))
            print(row("turn: first event (progress line)", progress))
            print(row("turn: first text chunk", first))
            if first_llm:
                print(row("turn: first token of the LLM reply", first_llm))
            print(row("turn: complete", end))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
