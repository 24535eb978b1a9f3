"""HTTP hardening in front of the Gradio app (one ASGI middleware, installed through `launch(app_kwargs=...)`).

Gradio's defaults suit a demo, not a shared deployment. This layer:
- answers only to known Host names (loopback ones, plus this machine's names when bound beyond loopback, plus
  --allowed-hosts), which also stops DNS-rebinding pages from reading a loopback app;
- drops X-Forwarded-* headers (unless a proxy is trusted), so no client can rewrite the `root` URL in /config;
- turns away what the app does not use: file uploads, deep links (they write the chat to a file that
  /gradio_api/file= then serves), the monitoring pages, run history;
- caps request bodies (the UI caps messages anyway; a megabyte JSON body is never a real request);
- answers a malformed queue request (an fn_index that does not exist) with 422 instead of an HTTP 500 trace;
- adds X-Frame-Options / CSP frame-ancestors (no clickjacking in a frame), nosniff and no-referrer headers.
"""
from __future__ import annotations

import json
import socket
from typing import Awaitable, Callable, Collection, Iterable
from urllib.parse import parse_qs

Scope = dict
Message = dict
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_BODY_BYTES = 256 * 1024
# Prefixes of routes this app never needs (Gradio serves them by default).
BLOCKED_PREFIXES = (
    "/gradio_api/upload", "/gradio_api/deep_link", "/monitoring", "/gradio_api/run-history", "/gradio_api/runs",
    "/gradio_api/process_recording", "/gradio_api/vibe-", "/gradio_api/undo-vibe-edit", "/gradio_api/dev/",
    "/gradio_api/proxy=", "/gradio_api/stream/",
    # The REST routes beside the queue (the page and gradio_client use the queue only): they answered 500.
    "/gradio_api/call/", "/gradio_api/run/", "/call/", "/run/",
)
SECURITY_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
_BODY_METHODS = {"POST", "PUT", "PATCH"}
_QUEUE_JOIN = "/gradio_api/queue/join"
_QUEUE_DATA = "/gradio_api/queue/data"
MAX_SESSION_HASH = 64  # Gradio's hashes are 11 characters; anything far longer is no browser's


def allowed_hosts_for(bind_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Host names the app answers to when bound to `bind_host`: loopback names, and this machine's names and
    addresses when bound beyond loopback, plus `extra` (e.g. the public name behind a reverse proxy)."""
    names = set(LOOPBACK) | {h.strip().lower() for h in extra if h.strip()}
    if bind_host not in LOOPBACK:
        if bind_host not in ("0.0.0.0", "::", ""):
            names.add(bind_host.lower())
        hostname = socket.gethostname()
        names |= {hostname.lower(), socket.getfqdn().lower()}
        try:
            addresses = socket.gethostbyname_ex(hostname)[2]
        except OSError:  # no resolvable own name (containers): the names above and --allowed-hosts remain
            addresses = []
        names |= set(addresses)
    return frozenset(names)


def host_name(host_header: str) -> str:
    """"example.org:7860" → "example.org", "[::1]:7860" → "::1"."""
    h = host_header.strip().lower()
    if h.startswith("["):
        return h[1:h.find("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


class HTTPGuard:
    """ASGI middleware; `allowed_hosts=None` switches the Host check off (a share link's tunnel host)."""

    def __init__(self, app, *, allowed_hosts: Collection[str] | None, fn_indices: Collection[int] = (),
                 max_body_bytes: int = MAX_BODY_BYTES, trust_forwarded: bool = False,
                 known_session: Callable[[str], bool] | None = None):
        self.app = app
        # Whether a session hash joined the queue (its event stream exists): an unknown one is answered 404 here,
        # not by an exception inside the stream (a 78-line traceback per request).
        self.known_session = known_session
        self.allowed_hosts = None if allowed_hosts is None else frozenset(allowed_hosts)
        self.fn_indices = frozenset(fn_indices)
        self.max_body_bytes = max_body_bytes
        self.trust_forwarded = trust_forwarded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = [(k.lower(), v) for k, v in scope.get("headers", [])]
        host = next((v.decode("latin-1") for k, v in headers if k == b"host"), "")
        if self.allowed_hosts is not None and host_name(host) not in self.allowed_hosts:
            return await _reply(scope, receive, send, 400, "Invalid Host header")
        path = scope.get("path", "")
        if path.startswith(BLOCKED_PREFIXES):
            return await _reply(scope, receive, send, 404, "Not Found")
        if not self.trust_forwarded:
            headers = [(k, v) for k, v in headers if not k.startswith(b"x-forwarded-") and k != b"forwarded"]
        scope = {**scope, "headers": headers}
        if path == _QUEUE_DATA and self.known_session is not None:
            sid = _session_hash(scope)
            if not sid or not self.known_session(sid):
                return await _reply(scope, receive, send, 404, "Unknown session")
        if scope["type"] == "http" and scope.get("method") in _BODY_METHODS:
            length = next((v for k, v in headers if k == b"content-length"), None)
            if length is None:
                return await _reply(scope, receive, send, 411, "Length Required")
            if not length.isdigit() or int(length) > self.max_body_bytes:
                return await _reply(scope, receive, send, 413, "Request body too large")
            if path == _QUEUE_JOIN and self.fn_indices:
                body = await _read_body(receive)
                if not self._valid_join(body):
                    return await _reply(scope, receive, send, 422, "Unknown or missing fn_index or session_hash")
                receive = _replay(body, receive)
        await self.app(scope, receive, _with_headers(send))

    def _valid_join(self, body: bytes) -> bool:
        try:
            doc = json.loads(body)
            fn, sid = doc.get("fn_index"), doc.get("session_hash")
        except (ValueError, AttributeError, RecursionError):
            return False
        return (isinstance(fn, int) and not isinstance(fn, bool) and fn in self.fn_indices
                and isinstance(sid, str) and 0 < len(sid) <= MAX_SESSION_HASH)


def _session_hash(scope: Scope) -> str:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_hash", [""])
    sid = values[0]
    return sid if len(sid) <= MAX_SESSION_HASH else ""


def _with_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            have = {k.lower() for k, _ in message.get("headers", [])}
            extra = [(k, v) for k, v in SECURITY_HEADERS if k not in have]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return wrapped


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then the client's own messages (a disconnect when it goes away)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _reply(scope: Scope, receive: Receive, send: Send, status: int, text: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})
