"""`python app.py` as a user runs it: --check end to end, the web server on a free port, and bad configuration."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

from tests.conftest import ROOT, SHARED_DATA, TEST_CACHE
from tests.test_ui_api import INDEX_LIMIT, free_port, needs_data
BASE_ARGS = ["--data-dir", str(SHARED_DATA), "--cache-dir", str(TEST_CACHE / "app"), "--no-allow-download",
             "--index-limit", str(INDEX_LIMIT)]


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without settings that would change what the app does."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CHATREC_", "OPENAI_", "CHROMA_"))}
    env.update(extra)
    return env


def run_app(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, env=clean_env(), capture_output=True,
                          text=True, timeout=timeout)


@needs_data
def test_check_runs_a_scripted_turn():
    proc = run_app(*BASE_ARGS, "--check")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "check: OK" in out
    assert "> Recommend movies like The Matrix" in out and "> 인터스텔라 같은 영화 추천해줘" in out
    assert out.count("\n  - ") >= 6  # card lines of both turns
    # Start-up progress is logged step by step.
    for step in ("loading data", "fitting ALS", "indexing knowledge", "ready in"):
        assert step in proc.stderr
    assert "No LLM" in proc.stderr  # nothing configured: the rule-based mode says so


@needs_data
def test_check_with_own_message_and_books():
    # --check-message alone implies --check: nobody passes a message to check and wants a server instead
    proc = run_app(*BASE_ARGS, "--check-message", "books for someone who loved The Matrix")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "book:" in proc.stdout


@needs_data
def test_web_server_starts_on_loopback():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "app.py", *BASE_ARGS, "--port", str(port)], cwd=ROOT,
                            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            try:
                with urllib.request.urlopen(url + "config", timeout=5) as r:
                    config = r.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline, "the app did not answer within 240 s"
                time.sleep(1)
        assert "No LLM" in config  # the status line, in the page config
        assert '"chat"' in config or "/chat" in config  # the named API endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_unknown_dataset_is_a_clear_error():
    proc = run_app("--dataset", "nope", "--check", "--no-allow-download", timeout=120)
    assert proc.returncode == 2
    assert "unknown dataset 'nope'" in proc.stderr and "ml-latest-small" in proc.stderr


def test_missing_data_says_where_to_put_it(tmp_path):
    proc = run_app("--data-dir", str(tmp_path), "--cache-dir", str(tmp_path / "cache"), "--no-allow-download",
                   "--check", timeout=120)
    assert proc.returncode == 2
    assert "error:" in proc.stderr and str(tmp_path) in proc.stderr


@needs_data
def test_openai_backend_without_url_or_key_is_a_clear_error():
    proc = run_app(*BASE_ARGS, "--llm-backend", "openai", "--check", timeout=300)
    assert proc.returncode == 2
    assert "llm_base_url" in proc.stderr and "llm_api_key" in proc.stderr
