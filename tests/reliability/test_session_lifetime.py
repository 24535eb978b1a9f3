"""Anonymous sessions do not pile up in the server (issue 24): idle ones expire, and their number is capped.

The real app (real engine, reduced index, no LLM) runs in-process; sessions are opened through gradio_client as a
browser would, and the server's own session table is read. Memory per session is measured by
`python -m benchmarks.sessions`, not here.
"""
from __future__ import annotations

import time

import pytest

from tests.conftest import SHARED_DATA, TEST_CACHE, has_data
from tests.test_ui_api import INDEX_LIMIT, free_port
from ui.sessions import SessionLimits

pytestmark = pytest.mark.skipif(not has_data("ml-latest-small", "goodbooks-10k"),
                                reason=f"needs ml-latest-small and goodbooks-10k in {SHARED_DATA}")


@pytest.fixture(scope="module")
def app():
    from app import ui_config
    from chatrec.bootstrap import bootstrap
    from chatrec.settings import Settings
    from ui.gradio_app import build_ui, launch_ui

    settings = Settings(data_dir=SHARED_DATA, cache_dir=TEST_CACHE / "app", allow_download=False,
                        llm_backend="none", rerank="score", concurrency=4)
    built = bootstrap(settings, index_limit=INDEX_LIMIT, progress=False)
    limits = SessionLimits(idle_s=2.0, max_sessions=3, sweep_s=0.5)
    demo = build_ui(built.engine, ui_config(built), concurrency=4, limits=limits)
    port = free_port()
    launch_ui(demo, host="127.0.0.1", port=port, block=False, quiet=True, limits=limits)
    try:
        yield f"http://127.0.0.1:{port}/", demo
    finally:
        demo.close()


def open_session(url: str) -> None:
    from gradio_client import Client

    c = Client(url, verbose=False, analytics_enabled=False, download_files=False)
    try:
        c.predict("hello", api_name="/chat")
    finally:
        c.close()


def test_sessions_are_capped_and_expire_when_idle(app):
    url, demo = app
    for _ in range(5):
        open_session(url)
    assert 0 < len(demo.state_holder.session_data) <= 3  # least recently used ones went first
    deadline = time.monotonic() + 15
    while demo.state_holder.session_data and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not demo.state_holder.session_data  # idle 2 s: dropped by the sweeper


def test_a_new_session_works_after_the_others_expired(app):
    url, demo = app
    open_session(url)
    assert len(demo.state_holder.session_data) >= 1
