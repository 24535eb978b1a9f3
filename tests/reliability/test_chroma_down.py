"""The knowledge store's server goes away: a real `chroma run` server (our own disposable one, since this test
kills it) serves the engine and is stopped mid-session; every later turn is still answered, with a fallback notice
wherever search was degraded. Starting with no server at all degrades instead of failing start-up.
"""
from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .common import base_settings, logged_exceptions, problems, run

N_INDEXED = 120  # most-rated movies (+ as many books) put into the server: enough for search, quick to embed
# Descriptions without words that are also film titles (the resolver would take those as "I liked X").
DESCRIPTIVE = {"en": "recommend a thriller where a thief steals secrets from people's minds while they sleep",
               "ko": "꿈속의 꿈을 다루는 반전 스릴러 영화 추천해 줘"}
BOOK_REQUEST = "소년 마법사가 마법 학교에 다니는 판타지 소설 추천해 주세요"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chroma_cmd() -> list[str] | None:
    exe = Path(sys.executable).with_name("chroma")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("chroma")
    return [found] if found else None


@pytest.fixture()
def chroma_disposable(tmp_path):
    cmd = _chroma_cmd()
    if cmd is None:
        pytest.skip("the `chroma` command (chromadb package) is not installed")
    port = _free_port()
    log = open(tmp_path / "chroma.log", "wb")
    proc = subprocess.Popen([*cmd, "run", "--path", str(tmp_path / "db"), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chroma run did not start: {(tmp_path / 'chroma.log').read_text()[-1500:]}")
            time.sleep(0.3)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _engine_on(parts, store):
    from chatrec.engine import Engine

    b = parts.built
    return Engine(b.movies.catalog, als=b.als, popularity=b.popularity, knowledge=store, resolver=b.resolver,
                  llm=None, settings=b.settings, books_catalog=b.books.catalog if b.books is not None else None)


class _CountingSearch:
    """Wraps the store's `search` so the test knows which turns really asked the knowledge store."""

    def __init__(self, store):
        self.inner = store.search
        self.calls = 0
        store.search = self

    def __call__(self, *args, **kw):
        self.calls += 1
        return self.inner(*args, **kw)


@pytest.mark.parametrize("vector_search", ["exact", "chroma"])
def test_chroma_server_stopped_mid_session(parts, chroma_disposable, vector_search, caplog):
    """`exact` keeps an in-memory mirror of the vectors, so searches keep working with the server gone (no
    degradation, no notice needed); `chroma` (HNSW on the server, for catalogs too big to mirror) loses vector
    search: every turn that searched must say so with a fallback notice."""
    from chatrec.bootstrap import items_to_index
    from retrieval.embeddings import make_embedder
    from retrieval.knowledge import KnowledgeConfig, KnowledgeStore

    proc, port = chroma_disposable
    cfg = KnowledgeConfig(host="127.0.0.1", port=port, progress=False, vector_search=vector_search)
    store = KnowledgeStore.open(cfg, make_embedder(parts.built.settings.embedder))
    store.index(items_to_index(parts.built.movies, parts.built.books, N_INDEXED))
    counter = _CountingSearch(store)
    engine = _engine_on(parts, store)
    session = engine.new_session(language="en")
    out = run(engine.turn(session, DESCRIPTIVE["en"]))
    assert not problems(out, parts.catalog, need_cards=True)
    assert not any(n.kind == "fallback" for n in out.notices), "fallback while the server was up"

    proc.terminate()
    proc.wait(timeout=10)
    searched = 0
    with caplog.at_level(logging.INFO):
        for msg in (DESCRIPTIVE["en"], DESCRIPTIVE["ko"], BOOK_REQUEST):
            before = counter.calls
            out = run(engine.turn(session, msg))
            assert not problems(out, parts.catalog, need_cards=True), out.text[:300]
            if counter.calls > before:
                searched += 1
                fell_back = any(n.kind == "fallback" for n in out.notices)
                assert fell_back == (vector_search == "chroma"), (msg, out.notices, out.text[:200])
    assert searched >= 2, "the turns never reached the knowledge store: the test proves nothing"
    assert not [r for r in logged_exceptions(caplog.records) if "turn failed" in r]


def test_no_chroma_server_at_start_degrades(parts):
    from chatrec.bootstrap import open_knowledge

    settings = base_settings(chroma_host="127.0.0.1", chroma_port=_free_port())  # nothing listens there
    store, note = open_knowledge(settings, [], progress=False)
    assert store is None and note and "unavailable" in note.lower()
    engine = _engine_on(parts, None)
    out = run(engine.turn(engine.new_session(language="ko"), DESCRIPTIVE["ko"]))
    assert not problems(out, parts.catalog, need_cards=True), out.text[:300]
