"""Memory of anonymous sessions: open N sessions against the app, then let them expire (ui/sessions.py).

Starts `app.py` in a child process (loopback, no LLM, reduced index) with a short idle timeout, measures its
resident memory, opens N sessions (one chat turn each, like a visitor who leaves), measures again, waits for the
sessions to expire, and measures a third time.

    python -m benchmarks.sessions                       # 2,000 sessions, 20 s idle timeout
    python -m benchmarks.sessions --sessions 500 --idle-s 10

Target (issue 24): after expiry the app's memory is back within 10% of where it started. Most of a session's memory
is Gradio's per-session copy of the page config (small objects that fragment the heap), so what bounds the peak is
the app's session cap (`--max-sessions`, least recently used first); the idle timeout frees the rest.
Bounded: every call has a timeout, and the app is stopped at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.load import chat_payloads, http_turn, start_app, stop  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=2000)
    ap.add_argument("--idle-s", type=float, default=20.0)
    ap.add_argument("--parallel", type=int, default=32, help="sessions opened at once")
    ap.add_argument("--max-sessions", type=int, default=0, help="the app's cap (default: the app's own setting)")
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "chatrec-ci" / "app")
    ap.add_argument("--index-limit", type=int, default=1500)
    ap.add_argument("--start-timeout", type=float, default=600)
    ap.add_argument("--call-timeout", type=float, default=60)
    args = ap.parse_args(argv)
    args.log_dir = Path(tempfile.mkdtemp(prefix="chatrec-sessions-"))
    args.concurrency = 8
    args.turns = 1
    extra = ["--session-idle-s", str(args.idle_s)] + (["--max-sessions", str(args.max_sessions)]
                                                       if args.max_sessions else [])
    proc, url = start_app(ROOT, args, extra=extra)
    try:
        import httpx

        fn_index, payloads = chat_payloads(url, argparse.Namespace(sessions=1, turns=1))
        data = next(iter(payloads.values()))

        async def open_sessions(n: int) -> int:
            ok = 0
            sem = asyncio.Semaphore(args.parallel)
            async with httpx.AsyncClient(timeout=args.call_timeout) as http:
                async def one() -> None:
                    nonlocal ok
                    async with sem:
                        good, _ = await asyncio.wait_for(http_turn(http, url, uuid.uuid4().hex[:11], fn_index, data),
                                                         args.call_timeout)
                        ok += good
                await asyncio.gather(*(one() for _ in range(n)))
            return ok

        asyncio.run(open_sessions(4))  # first-use loads stay out of the baseline
        time.sleep(2)
        start = rss_mb(proc.pid)
        t0 = time.perf_counter()
        ok = asyncio.run(open_sessions(args.sessions))
        opened_s = time.perf_counter() - t0
        time.sleep(2)
        peak = rss_mb(proc.pid)
        wait = args.idle_s + 45  # the sweeper runs every 30 s
        time.sleep(wait)
        after = rss_mb(proc.pid)
    finally:
        stop(proc)
    print(f"sessions opened: {ok}/{args.sessions} in {opened_s:.0f} s; idle timeout {args.idle_s:.0f} s")
    print(f"app memory (RSS): start {start:.0f} MB, after opening {peak:.0f} MB "
          f"(+{(peak - start) * 1024 / max(args.sessions, 1):.0f} kB per session), after expiry {after:.0f} MB "
          f"({(after - start) / start:+.1%} of the start; target within 10%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
