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
import re
import sys
import time
from pathlib import Path

from collections import Counter

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


class ServerLog:
    """Token counts of each request, read from the llama.cpp server's verbose log (llama-cpp-python prints the
    prefix-cache hit and the prompt/eval token counts of every request; its HTTP answer carries neither the cached
    count nor, when streaming, any usage)."""

    _HIT = re.compile(r"Llama\.generate: (\d+) prefix-match hit")
    _FULL = re.compile(r"Llama\.generate: full prompt already cached")
    _PROMPT = re.compile(r"prompt eval time =\s*[\d.]+ ms /\s*(\d+) tokens")
    _EVAL = re.compile(r"\beval time =\s*[\d.]+ ms /\s*(\d+) runs")

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def requests(self) -> list[dict]:
        """(prompt, cached, completion) tokens of every request finished since the last mark()."""
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            text = f.read().decode("utf-8", "replace")
        out, hit = [], 0
        for line in text.splitlines():
            if m := self._HIT.search(line):
                hit = int(m.group(1))
            elif self._FULL.search(line):
                hit = -1  # the whole prompt: the next "prompt eval" line says 0 or 1 tokens
            elif m := self._PROMPT.search(line):
                evaluated = int(m.group(1))
                out.append({"prompt": evaluated + max(hit, 0), "cached": max(hit, 0), "evaluated": evaluated})
                hit = 0
            elif (m := self._EVAL.search(line)) and out and "completion" not in out[-1]:
                out[-1]["completion"] = int(m.group(1))
        return out


def bench_llm(parts, n_turns: int, max_tokens: int):
    from chatrec.events import Cards, Notice, TextChunk
    from chatrec.llm import OpenAICompatibleLLM
    from tests.fixtures.llama_server import _skip_reason, gguf_path, start_llama_server

    reason = _skip_reason()
    if reason:
        print(f"llama.cpp part skipped: {reason}")
        return None
    import tempfile

    log_path = Path(tempfile.mkdtemp()) / "server.log"
    server = start_llama_server(gguf_path(), log_path)
    slog = ServerLog(log_path)
    try:
        llm = OpenAICompatibleLLM(base_url=server.base_url, api_key="", model="local", max_tokens=max_tokens,
                                  timeout_s=120, max_retries=1)
        list(llm.stream([("user", "hi")], max_tokens=4))  # warm the server
        eng = engine_for(parts, llm=llm, llm_backend="openai", rerank="llm", llm_max_tokens=max_tokens)
        res = {k: [] for k in ("raw", "progress", "cards", "first", "end", "calls", "structured_s", "stream_s",
                               "stream_first_s", "prompt", "cached", "completion", "fallback", "notices")}
        for i in range(n_turns):
            t = time.perf_counter()
            it = llm.stream([("user", SCRIPT[i % len(SCRIPT)][1])], max_tokens=8)
            next(it)
            res["raw"].append(time.perf_counter() - t)
            for _ in it:
                pass
        calls: list[str] = []
        orig_stream, orig_structured = llm.stream, llm.structured

        def stream(*a, **k):
            t0, first = time.perf_counter(), None
            calls.append("stream")
            try:
                for piece in orig_stream(*a, **k):
                    if first is None:
                        first = time.perf_counter() - t0
                        res["stream_first_s"].append(first)
                    yield piece
            finally:
                res["stream_s"].append(time.perf_counter() - t0)

        def structured(*a, **k):
            t0 = time.perf_counter()
            calls.append("structured")
            try:
                return orig_structured(*a, **k)
            finally:
                res["structured_s"].append(time.perf_counter() - t0)

        llm.stream, llm.structured = stream, structured
        for i in range(n_turns):
            lang, msg = SCRIPT[i % len(SCRIPT)]
            s = eng.new_session(lang)
            calls.clear()
            slog.mark()
            t = time.perf_counter()
            got_first = got_event = got_cards = None
            fell_back = False
            for ev in eng.turn(s, msg):
                now = time.perf_counter() - t
                if got_event is None:
                    got_event = now
                if isinstance(ev, TextChunk) and got_first is None:
                    got_first = now
                if isinstance(ev, Cards) and got_cards is None:
                    got_cards = now
                if isinstance(ev, Notice) and ev.kind == "fallback":
                    fell_back = True
                    res["notices"].append(ev.text)
            res["end"].append(time.perf_counter() - t)
            res["progress"].append(got_event)
            res["first"].append(got_first)
            if got_cards is not None:
                res["cards"].append(got_cards)
            res["calls"].append(len(calls))
            res["fallback"].append(fell_back)
            time.sleep(0.3)  # the server prints a request's counts after answering it
            reqs = slog.requests()
            for key in ("prompt", "cached", "completion"):
                res[key].append(sum(r.get(key, 0) for r in reqs))
        return res
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
            print(f"\n{'llama.cpp SmolLM2-135M (rerank=llm)':<38} {'n':>5} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}")
            print(row("raw server first token (short prompt)", res["raw"]))
            print(row("turn: first event (progress line)", res["progress"]))
            if res["cards"]:
                print(row("turn: cards", res["cards"]))
            print(row("turn: first text chunk", res["first"]))
            print(row("turn: complete", res["end"]))
            for key, name in (("structured_s", "  call: structured (whole call)"),
                              ("stream_first_s", "  call: stream, first piece"), ("stream_s", "  call: stream (whole)")):
                if res[key]:
                    print(row(name, res[key]))
            n = len(res["calls"])
            prompt, cached = sum(res["prompt"]), sum(res["cached"])
            print(f"\nper turn (n={n}): LLM calls mean {np.mean(res['calls']):.2f} / max {max(res['calls'])}; "
                  f"prompt tokens mean {np.mean(res['prompt']):.0f} (p50 {np.median(res['prompt']):.0f}); "
                  f"completion tokens mean {np.mean(res['completion']):.0f}; "
                  f"evaluated prompt tokens mean {np.mean(res['prompt']) - np.mean(res['cached']):.0f}")
            print(f"prefix-cache hit: {cached}/{prompt} prompt tokens = {cached / max(prompt, 1):.1%}; "
                  f"turns with a fallback notice: {sum(res['fallback'])}/{n}")
            for text, count in Counter(res["notices"]).most_common():
                print(f"  {count} × {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
