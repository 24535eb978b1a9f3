"""Load on the web app: N concurrent sessions × T chat turns through the Gradio API, no LLM, loopback only.

Starts `app.py` in a child process on a free loopback port (score order, no LLM, the test suite's reduced
knowledge index), then every session sends its turns one after another while all sessions run at once. Prints
turns/s and the p50/p95/max turn latency (submit → last streamed update), plus failures (errors, empty replies,
timeouts).

Two clients: `--client http` (default) speaks Gradio's queue protocol (join, then the event stream) from one
asyncio loop, so the load generator stays light on the machine it shares with the app, as browsers on other
machines would; `--client gradio` runs one gradio_client per session in threads (heavier: on 2 cores it takes
about as much CPU as the app it is measuring).

    python -m benchmarks.load                               # 50 sessions × 5 turns
    python -m benchmarks.load --baseline-dir /tmp/before    # the same load first on another checkout: ratios

Bounded: every call has a timeout, the whole run has a deadline, and the app is stopped at the end (also on ^C).
The numbers depend on the machine and on other load on it: compare within one run (--baseline-dir).
"""
from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
TITLES = ("The Matrix", "Toy Story", "Interstellar", "Forrest Gump", "Pulp Fiction", "Jurassic Park", "Fargo",
          "Alien", "Heat", "Up")
EN = ("Recommend movies like {t}", "something funnier please", "more please", "I didn't like the first one",
      "a feel-good comedy from the 90s")
KO = ("{t} 같은 영화 추천해줘", "좀 더 웃긴 걸로", "다른 거 더 추천해줘", "첫 번째는 별로야", "90년대 코미디 영화 추천해줘")


@dataclass
class Result:
    name: str
    wall_s: float
    latencies: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=dict)  # "en turn 1", "ko turn 3", ...
    failures: list[str] = field(default_factory=list)
    turns: int = 0
    load_avg: float = 0.0  # 1-minute load average when the run started (other work on the machine)
    server_cpu_s: float = 0.0  # CPU seconds the app used during the timed phase
    client_cpu_s: float = 0.0  # CPU seconds this process (the load clients) used meanwhile
    warmup_s: float = 0.0  # one English and one Korean session before the clock (first-use model loads)

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.wall_s if self.wall_s else 0.0

    def record(self, session: int, turn: int, message: str, ok: bool, took: float, why: str = "") -> None:
        """One timed turn: a latency when the reply came, a failure (with why) when it did not."""
        self.turns += 1
        if ok:
            self.latencies.append(took)
            self.by_kind.setdefault(f"{'ko' if session % 2 else 'en'} turn {turn}", []).append(took)
        else:
            self.failures.append(f"session {session}: {message!r}: {why or 'empty reply'}")

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(app_dir: Path, args: argparse.Namespace, extra: list[str] = ()) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "app.py", "--data-dir", str(args.data_dir), "--cache-dir", str(args.cache_dir),
           "--no-allow-download", "--index-limit", str(args.index_limit), "--llm-backend", "none",
           "--rerank", "score", "--port", str(port), "--log-level", "WARNING", *extra]
    if args.concurrency:
        cmd += ["--concurrency", str(args.concurrency)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATREC_", "OPENAI_", "CHROMA_", "GRADIO_"))}
    env["PYTHONPATH"] = str(app_dir)
    log = open(args.log_dir / f"app-{port}.log", "w")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(cmd, cwd=app_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + args.start_timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(url + "config", timeout=5):
                return proc, url
        except OSError:
            if time.monotonic() > deadline:
                stop(proc)
                raise RuntimeError(f"the app did not answer within {args.start_timeout} s; see {log.name}")
            time.sleep(1)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def session_messages(i: int, turns: int) -> list[str]:
    script = KO if i % 2 else EN
    title = TITLES[i % len(TITLES)]
    return [script[n % len(script)].format(t=title) for n in range(turns)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(name: str, url: str, args: argparse.Namespace, pid: int) -> Result:
    return (run_load_http if args.client == "http" else run_load_gradio)(name, url, args, pid)


def chat_payloads(url: str, args: argparse.Namespace) -> tuple[int, dict[str, list]]:
    """The /chat endpoint's fn_index and the queue payload of every message (defaults and State slots filled in
    the way gradio_client does), resolved once before the clock starts."""
    from gradio_client import Client
    from gradio_client.utils import construct_args

    c = Client(url, verbose=False, analytics_enabled=False, download_files=False)
    try:
        endpoint = c.endpoints[c._infer_fn_index("/chat", None)]  # noqa: SLF001 - the client's own lookup
        messages = {m for i in range(args.sessions) for m in session_messages(i, args.turns)}
        return endpoint.fn_index, {m: list(endpoint.insert_empty_state(
            *construct_args(endpoint.parameters_info, (), {"message": m}))) for m in messages}
    finally:
        c.close()


async def http_turn(http, url: str, session_hash: str, fn_index: int, data: list) -> tuple[bool, str]:
    """One event through Gradio's queue: join, then read the session's event stream until it completes.
    Returns (ok, error or reply text)."""
    import json

    joined = await http.post(url + "gradio_api/queue/join", json={
        "data": data, "fn_index": fn_index, "session_hash": session_hash, "event_data": None, "trigger_id": None})
    joined.raise_for_status()
    event_id = joined.json()["event_id"]
    async with http.stream("GET", url + "gradio_api/queue/data", params={"session_hash": session_hash}) as resp:
        resp.raise_for_status()
        async for line in resp.aiter_lines():
            if not line.startswith("data:"):
                continue
            msg = json.loads(line[5:])
            if msg.get("event_id") != event_id or msg.get("msg") != "process_completed":
                continue
            if not msg.get("success", False):
                return False, str(msg.get("output", {}).get("error"))[:120]
            history = msg["output"]["data"][1] or []
            reply = history[-1]["content"] if history and history[-1]["role"] == "assistant" else ""
            return bool(str(reply).strip()), str(reply)
    return False, "the event stream ended before the turn completed"


def run_load_http(name: str, url: str, args: argparse.Namespace, pid: int) -> Result:
    import asyncio
    import uuid

    import httpx

    fn_index, payloads = chat_payloads(url, args)
    res = Result(name, 0.0)
    bar = tqdm(total=args.sessions * args.turns, desc=f"{name}: turns", unit="turn", leave=False)

    async def session(http, i: int, stop_at: float, timed: bool) -> None:
        sid = uuid.uuid4().hex[:11]
        for n, msg in enumerate(session_messages(i, args.turns), 1):
            if time.monotonic() > stop_at:
                res.failures.append(f"session {i}: deadline reached")
                return
            t0 = time.perf_counter()
            try:
                ok, said = await asyncio.wait_for(http_turn(http, url, sid, fn_index, payloads[msg]),
                                                  args.call_timeout)
            except Exception as e:  # a failed call is a result of the benchmark, counted and shown
                ok, said = False, f"{type(e).__name__}: {str(e)[:120]}"
            if timed:
                res.record(i, n, msg, ok, time.perf_counter() - t0, "" if ok else said)
                bar.update()

    async def main() -> None:
        limits = httpx.Limits(max_connections=2 * args.sessions + 8, max_keepalive_connections=2 * args.sessions)
        async with httpx.AsyncClient(timeout=args.call_timeout, limits=limits) as http:
            t0 = time.perf_counter()
            # The first turns of each kind load models once per process (see run_load_gradio): before the clock.
            await asyncio.gather(*(session(http, i, time.monotonic() + args.deadline, False) for i in (0, 1)))
            res.warmup_s = time.perf_counter() - t0
            stop_at = time.monotonic() + args.deadline
            t0, server0, client0 = time.perf_counter(), cpu_seconds(pid), time.process_time()
            await asyncio.gather(*(session(http, i, stop_at, True) for i in range(args.sessions)))
            res.wall_s = time.perf_counter() - t0
            res.server_cpu_s, res.client_cpu_s = cpu_seconds(pid) - server0, time.process_time() - client0

    asyncio.run(main())
    bar.close()
    return res


def run_load_gradio(name: str, url: str, args: argparse.Namespace, pid: int) -> Result:
    from gradio_client import Client

    def connect(_):
        return Client(url, verbose=False, analytics_enabled=False, download_files=False,
                      httpx_kwargs={"timeout": args.call_timeout})

    with ThreadPoolExecutor(8) as pool:
        clients = list(pool.map(connect, range(args.sessions)))
    res = Result(name, 0.0)
    # The first turns of each kind load models once per process (the Korean morphology model for knowledge
    # search takes seconds, under a lock): one English and one Korean session run their script before the clock.
    t0 = time.perf_counter()
    for i in (0, 1):
        warm = connect(None)
        for msg in session_messages(i, args.turns):
            warm.submit(message=msg, api_name="/chat").result(timeout=args.call_timeout)
        warm.close()
    res.warmup_s = time.perf_counter() - t0
    lock = threading.Lock()
    stop_at = time.monotonic() + args.deadline
    bar = tqdm(total=args.sessions * args.turns, desc=f"{name}: turns", unit="turn", leave=False)

    def session(i: int) -> None:
        for n, msg in enumerate(session_messages(i, args.turns), 1):
            if time.monotonic() > stop_at:
                with lock:
                    res.failures.append(f"session {i}: deadline reached")
                return
            t0 = time.perf_counter()
            try:
                out = clients[i].submit(message=msg, api_name="/chat").result(timeout=args.call_timeout)
                took = time.perf_counter() - t0
                history = out[1] or []
                reply = history[-1]["content"] if history and history[-1]["role"] == "assistant" else ""
                ok = bool(str(reply).strip())
                why = ""
            except Exception as e:  # a failed call is a result of the benchmark, counted and shown
                took, ok, why = time.perf_counter() - t0, False, f"{type(e).__name__}: {str(e)[:120]}"
            with lock:
                res.record(i, n, msg, ok, took, why)
            bar.update()

    t0, server0, client0 = time.perf_counter(), cpu_seconds(pid), time.process_time()
    with ThreadPoolExecutor(args.sessions) as pool:
        futures = [pool.submit(session, i) for i in range(args.sessions)]
        wait(futures, timeout=args.deadline + args.call_timeout)
    res.wall_s = time.perf_counter() - t0
    res.server_cpu_s, res.client_cpu_s = cpu_seconds(pid) - server0, time.process_time() - client0
    bar.close()
    for c in clients:
        c.close()
    return res


def measure(name: str, app_dir: Path, args: argparse.Namespace) -> Result:
    proc, url = start_app(app_dir, args)
    try:
        load_avg = os.getloadavg()[0]
        res = run_load(name, url, args, proc.pid)
        res.load_avg = load_avg
        return res
    finally:
        stop(proc)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sessions", type=int, default=50)
    p.add_argument("--turns", type=int, default=5)
    p.add_argument("--concurrency", type=int, default=None, help="the app's --concurrency (default: its own)")
    p.add_argument("--client", choices=("http", "gradio"), default="http",
                   help="http: one asyncio loop speaking Gradio's queue protocol (light); gradio: gradio_client "
                        "per session in threads (heavy on the shared machine)")
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "chatrec-ci" / "app")
    p.add_argument("--index-limit", type=int, default=1500)
    p.add_argument("--baseline-dir", type=Path, default=None,
                   help="another checkout of the app (e.g. `git archive` of an older commit) to load first")
    p.add_argument("--call-timeout", type=float, default=120.0)
    p.add_argument("--deadline", type=float, default=600.0, help="seconds for all turns of one run")
    p.add_argument("--start-timeout", type=float, default=300.0)
    p.add_argument("--log-dir", type=Path, default=Path(tempfile.gettempdir()) / "chatrec-load")
    args = p.parse_args(argv)
    args.log_dir.mkdir(parents=True, exist_ok=True)

    runs = []
    if args.baseline_dir is not None:
        runs.append(measure("baseline", args.baseline_dir.resolve(), args))
    runs.append(measure("this tree", ROOT, args))

    print(f"\n{args.sessions} sessions × {args.turns} turns, no LLM, loopback, {args.client} client; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"{'run':<12} {'turns ok':>9} {'failed':>7} {'wall s':>8} {'turns/s':>8} {'p50 s':>7} {'p95 s':>7} "
          f"{'max s':>7} {'app CPU s':>10} {'client CPU s':>13} {'warm-up s':>10} {'load':>6}")
    for r in runs:
        print(f"{r.name:<12} {len(r.latencies):>9} {len(r.failures):>7} {r.wall_s:>8.1f} {r.throughput:>8.2f} "
              f"{r.pct(50):>7.2f} {r.pct(95):>7.2f} {max(r.latencies, default=float('nan')):>7.2f} "
              f"{r.server_cpu_s:>10.1f} {r.client_cpu_s:>13.1f} {r.warmup_s:>10.1f} {r.load_avg:>6.1f}")
    print("app CPU s / wall s near the core count means the app was CPU-bound; load = 1-min load average at the "
          "start of a run (other work on this shared machine)")
    if len(runs) == 2:
        b, a = runs
        print(f"ratio this/baseline: turns/s ×{a.throughput / b.throughput:.2f}, "
              f"p50 ×{a.pct(50) / b.pct(50):.2f}, p95 ×{a.pct(95) / b.pct(95):.2f}")
    for r in runs:
        parts = [f"{k} {np.percentile(v, 50):.1f}/{np.percentile(v, 95):.1f}" for k, v in sorted(r.by_kind.items())]
        print(f"  {r.name}: p50/p95 s by turn: " + ", ".join(parts))
    for r in runs:
        for f in r.failures[:5]:
            print(f"  {r.name}: {f}")
    return 0 if all(not r.failures for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
