"""A fault-injecting HTTP proxy on loopback, in front of a REAL llama.cpp server.

llama.cpp cannot be told to fail on demand, so this proxy forwards every request to it and then damages the answer
the way real deployments fail: HTTP 500, a body cut in half, candidate ids rewritten to ids that do not exist, a
stream that stalls after its first bytes (streaming requests only; others pass), a request that is never answered,
a 200 with an HTML error page. Mode `pass` forwards untouched, so a test can show the same engine works through
the proxy when nothing is wrong.

With `replay=True` the damaging modes (truncate, rewrite_ids, stall) reuse the last real answer the server gave to
the same kind of request (streamed reply / tool call / other) instead of asking it again: the damaged bytes are
still llama.cpp's own output, but a fault test no longer waits a minute for a 135M model on a busy CI machine.

Every sleep is bounded (`stall_s`) and wakes early on `stop()`, so a test never hangs on the proxy.
"""
from __future__ import annotations

import http.client
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

MODES = ("pass", "http500", "truncate", "rewrite_ids", "stall", "timeout", "garbage")
ITEM_ID = re.compile(r"\b(mls|ml1m|ml100k|book):\d+")
BOGUS_ID = "mls:987654321"


@dataclass
class Seen:
    method: str
    path: str
    mode: str
    authorization: str
    status: int | None = None


@dataclass
class FaultProxy:
    upstream: str  # e.g. "http://127.0.0.1:PORT/v1" (the path part is ignored; requests keep theirs)
    mode: str = "pass"
    stall_s: float = 5.0
    replay: bool = False
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self):
        u = urlsplit(self.upstream)
        self._host, self._port = u.hostname, u.port
        self._stop = threading.Event()
        self._recorded: dict[str, tuple[int, str, bytes]] = {}
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: a damaged answer never poisons the next

            def log_message(self, *args):  # keep pytest output clean; `seen` records what happened
                return

            def do_GET(self):
                proxy._handle(self, "GET")

            def do_POST(self):
                proxy._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> "FaultProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        with self._lock:
            self.mode = mode

    def count(self, mode: str) -> int:
        """How many requests were answered in `mode` (a fault counts only if a request actually hit it)."""
        with self._lock:
            return sum(s.mode == mode for s in self.seen)

    # -- one request -----------------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        with self._lock:
            mode = self.mode
            if mode == "stall" and b'"stream":true' not in body.replace(b" ", b""):
                mode = "pass"  # only a stream can stall midway; other calls go through
            rec = Seen(method, h.path, mode, h.headers.get("Authorization", ""))
            self.seen.append(rec)
        if mode == "http500":
            rec.status = 500
            return self._send(h, 500, b'{"error": {"message": "injected server error", "code": 500}}',
                              "application/json")
        if mode == "timeout":
            self._stop.wait(self.stall_s)  # never answer; the client's timeout has to fire
            return
        if mode == "garbage":
            rec.status = 200
            return self._send(h, 200, b"<html><body>502 Bad Gateway</body></html>", "application/json")
        kind = _request_kind(body)
        with self._lock:
            recorded = self._recorded.get(kind) if self.replay and mode != "pass" else None
        if recorded is not None:
            status, ctype, data = recorded
        else:
            status, ctype, data = self._forward(method, h.path, body, h.headers)
            if status == 200 and method == "POST":
                with self._lock:
                    self._recorded[kind] = (status, ctype, data)
        rec.status = status
        if mode == "rewrite_ids":
            data = ITEM_ID.sub(BOGUS_ID, data.decode("utf-8", "replace")).encode("utf-8")
        if mode == "truncate":
            # Promise the full length, deliver half: the client sees a cut JSON body / SSE stream.
            return self._send(h, status, data[: max(1, len(data) // 2)], ctype, claimed=len(data))
        if mode == "stall":
            head = data[: max(1, len(data) // 3)]
            try:
                h.send_response(status)
                h.send_header("Content-Type", ctype)
                h.send_header("Content-Length", str(len(data)))
                h.end_headers()
                h.wfile.write(head)
                h.wfile.flush()
            except OSError:
                return
            self._stop.wait(self.stall_s)  # the rest never comes
            return
        self._send(h, status, data, ctype)

    def _forward(self, method: str, path: str, body: bytes, headers) -> tuple[int, str, bytes]:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=120)
        try:
            fwd = {k: v for k, v in headers.items() if k.lower() in ("content-type", "authorization", "accept")}
            conn.request(method, path, body=body or None, headers=fwd)
            r = conn.getresponse()
            return r.status, r.getheader("Content-Type", "application/json"), r.read()
        finally:
            conn.close()

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, data: bytes, ctype: str, claimed: int | None = None) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(claimed if claimed is not None else len(data)))
            h.end_headers()
            h.wfile.write(data)
            h.wfile.flush()
        except OSError:  # the client gave up first (its timeout fired): nothing left to tell it
            return


def _request_kind(body: bytes) -> str:
    compact = body.replace(b" ", b"")
    if b'"stream":true' in compact:
        return "stream"
    return "tools" if b'"tools":' in compact else "other"
