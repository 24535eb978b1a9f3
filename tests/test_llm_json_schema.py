"""The strict `json_schema` path (OpenAI's own API) on the wire: what the request carries and that the per-call
timeout holds. OpenAI cannot be reached from tests and llama.cpp refuses strict json_schema, so a loopback server
answers in OpenAI's chat-completions format; the real-server paths are in test_engine_llm_server.py."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chatrec.llm import LLMError, OpenAICompatibleLLM
from chatrec.rerank import _RankingAnswer, ranking_schema


class ChatCompletions:
    """A loopback /v1/chat/completions that records each request body and answers `content` after `delay_s`."""

    def __init__(self, content: str, delay_s: float = 0.0):
        self.content, self.delay_s, self.bodies = content, delay_s, []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return

            def do_POST(self):
                owner.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                time.sleep(owner.delay_s)
                body = json.dumps({
                    "id": "c1", "object": "chat.completion", "created": 0, "model": "m",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": owner.content}}],
                    "usage": {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49}}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (the timeout test): nothing left to answer
                    return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server(request):
    s = ChatCompletions(*request.param)
    yield s
    s.close()


def _llm(url: str) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(base_url=url, api_key="k", model="m", timeout_s=30, max_retries=0,
                               structured_method="json_schema")


@pytest.mark.parametrize("server", [('{"picks": [3, 1]}',)], indirect=True)
def test_json_schema_request_is_strict_and_keeps_max_tokens(server):
    schema = ranking_schema(5, 2)
    out = _llm(server.url).structured([("user", "rank")], schema, _RankingAnswer, max_tokens=17, timeout_s=5)
    assert out.picks == [3, 1]
    body = server.bodies[-1]
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["additionalProperties"] is False
    assert fmt["json_schema"]["schema"]["properties"] == schema["properties"]
    assert 17 in (body.get("max_tokens"), body.get("max_completion_tokens"))


@pytest.mark.parametrize("server", [('{"picks": [1, 2]}', 3.0)], indirect=True)
def test_json_schema_call_stops_at_its_timeout(server):
    t0 = time.monotonic()
    with pytest.raises(LLMError) as e:
        _llm(server.url).structured([("user", "rank")], ranking_schema(5, 2), _RankingAnswer, timeout_s=0.5)
    assert time.monotonic() - t0 < 2.5
    assert e.value.kind in ("timeout", "unavailable", "budget")


@pytest.mark.parametrize("server", [("not json at all",)], indirect=True)
def test_json_schema_answer_that_is_not_json_is_a_typed_error(server):
    with pytest.raises(LLMError) as e:
        _llm(server.url).structured([("user", "rank")], ranking_schema(5, 2), _RankingAnswer, timeout_s=5)
    assert e.value.kind == "bad_output"
