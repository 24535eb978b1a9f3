"""LLM backends behind one small interface: an OpenAI-compatible server (langchain-openai), a local
transformers chat model, or none at all.

Every backend offers `stream(messages)` (text pieces as they are generated) and `structured(messages, schema,
model)` (a JSON object constrained by a JSON schema, validated into a pydantic model). Every failure — timeout,
connection refused, HTTP error, unparsable or schema-violating output — surfaces as one typed `LLMError`, so the
engine can fall back for that step and say so. API keys are never logged or put in error messages.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol, Sequence, TypeVar

from pydantic import BaseModel, ValidationError

from retrieval import rx
from .settings import Settings

log = logging.getLogger(__name__)

Message = tuple[str, str]  # (role, content); role is "system" | "user" | "assistant"
T = TypeVar("T", bound=BaseModel)

STRUCTURED_METHODS = ("json_schema", "function_calling", "json_object", "prompt")


class LLMError(RuntimeError):
    """An LLM step failed. `kind` says how: unavailable | timeout | http | bad_output | config | budget (the turn's
    LLM time budget is spent)."""

    def __init__(self, message: str, kind: str = "unavailable"):
        super().__init__(message)
        self.kind = kind


@dataclass
class LLMCall:
    """What one LLM call cost. Token counts are None where the backend does not report them (llama-cpp-python's
    stream carries no usage: there the completion count is the number of streamed pieces, one per token)."""

    what: str  # "stream", or the structured answer's model name
    seconds: float = 0.0
    first_s: float | None = None  # time to the first streamed piece
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None  # prompt tokens the server reused from its prefix cache, where it says so
    error: str | None = None  # the LLMError kind


class LLM(Protocol):
    """`timeout_s` bounds the call (the turn's remaining budget); `call`, when given, receives the token counts."""

    name: str

    @property
    def enabled(self) -> bool: ...

    def stream(self, messages: Sequence[Message], *, max_tokens: int | None = None, timeout_s: float | None = None,
               call: LLMCall | None = None) -> Iterator[str]: ...

    def structured(self, messages: Sequence[Message], schema: dict, model: type[T], *,
                   max_tokens: int | None = None, check_schema: bool = True, timeout_s: float | None = None,
                   call: LLMCall | None = None) -> T: ...

    def describe(self) -> str: ...


def _validate(data: Any, schema: dict, model: type[T], check_schema: bool = True) -> T:
    """Check the JSON schema (enums, lengths, patterns) and then the pydantic model; either failing is bad output.

    `check_schema=False` keeps only the pydantic check, for callers that repair partial answers themselves
    (the reranker drops ids outside the enum instead of discarding the whole ranking)."""
    import jsonschema

    if data is None:
        raise LLMError("the model returned no structured answer", "bad_output")
    try:
        if check_schema:
            jsonschema.validate(data, schema)
    except jsonschema.ValidationError as e:
        raise LLMError(f"structured answer violates the schema: {e.message[:200]}", "bad_output") from None
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise LLMError(f"structured answer does not fit {model.__name__}: {e.errors()[:2]}", "bad_output") from None


_JSON_OBJ = rx.compile(r"\{.*\}", rx.S)


def parse_json_object(text: str) -> Any:
    """The first {...} block of free text as JSON (for backends without constrained decoding)."""
    m = _JSON_OBJ.search(text or "")
    if not m:
        raise LLMError("the model's answer holds no JSON object", "bad_output")
    try:
        return json.loads(m.group(0))
    except json.JSONDecodeError as e:
        raise LLMError(f"the model's answer is not valid JSON ({e.msg})", "bad_output") from None


def _schema_instruction(schema: dict) -> str:
    return ("Answer with one JSON object only, no other text, matching this JSON schema:\n"
            + json.dumps(schema, ensure_ascii=False))


class NoLLM:
    """No language model: the engine uses rules, score order and templates."""

    name = "none"

    @property
    def enabled(self) -> bool:
        return False

    def stream(self, messages, *, max_tokens=None, timeout_s=None, call=None):
        raise LLMError("no LLM is configured (llm_backend=none)", "config")

    def structured(self, messages, schema, model, *, max_tokens=None, check_schema=True, timeout_s=None, call=None):
        raise LLMError("no LLM is configured (llm_backend=none)", "config")

    def describe(self) -> str:
        return "none"


def autodetect_method(base_url: str | None) -> str:
    """OpenAI's own API takes strict `json_schema`; llama.cpp answers that with HTTP 500, but follows a forced
    tool call with the schema as a grammar (verified 10/10 valid, ids always inside the enum) — as do vLLM and
    Ollama, so function calling is the portable choice for everything that is not api.openai.com."""
    if base_url is None or "api.openai.com" in base_url:
        return "json_schema"
    return "function_calling"


def _is_retryable(exc: BaseException) -> bool:
    import httpx
    import openai

    if isinstance(exc, (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError,
                        httpx.TransportError)):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


def _as_llm_error(exc: BaseException) -> LLMError:
    import httpx
    import openai
    from langchain_core.exceptions import OutputParserException

    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException)):
        return LLMError("the LLM server did not answer in time", "timeout")
    if isinstance(exc, (openai.APIConnectionError, httpx.TransportError)):
        return LLMError("the LLM server cannot be reached", "unavailable")
    if isinstance(exc, openai.AuthenticationError):
        return LLMError("the LLM server refused the API key (check llm_api_key)", "config")
    if isinstance(exc, openai.APIStatusError):
        return LLMError(f"the LLM server answered HTTP {exc.status_code}", "http")
    if isinstance(exc, (OutputParserException, json.JSONDecodeError)):
        return LLMError("the LLM's structured answer could not be parsed", "bad_output")
    return LLMError(f"LLM call failed: {type(exc).__name__}", "unavailable")


class OpenAICompatibleLLM:
    """Any OpenAI-compatible chat server (OpenAI, vLLM, Ollama, llama.cpp) through langchain-openai."""

    name = "openai"

    def __init__(self, *, base_url: str | None, api_key: str, model: str, timeout_s: float = 60.0,
                 max_retries: int = 2, max_tokens: int = 512, temperature: float = 0.2,
                 structured_method: str = "auto"):
        from langchain_openai import ChatOpenAI

        if structured_method == "auto":
            structured_method = autodetect_method(base_url)
        if structured_method not in STRUCTURED_METHODS:
            raise ValueError(f"structured_method must be 'auto' or one of {STRUCTURED_METHODS}")
        self.base_url = base_url
        self.model = model
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.max_retries = max(0, int(max_retries))
        self.structured_method = structured_method
        # Local servers need some key string; a missing real key for api.openai.com fails with a clear config error.
        # stream_usage asks for the token counts in the last streamed chunk (servers that do not know the option
        # ignore it).
        self._chat = ChatOpenAI(
            base_url=base_url, api_key=api_key or "not-needed", model=model, timeout=timeout_s,
            max_retries=0,  # retries are ours (tenacity), bounded and with backoff
            temperature=temperature, stream_usage=True,
        )

    @property
    def enabled(self) -> bool:
        return True

    def describe(self) -> str:
        where = self.base_url or "api.openai.com"
        return f"openai-compatible · {self.model} @ {where} · structured={self.structured_method}"

    def _bound(self, max_tokens: int | None, timeout_s: float | None = None):
        # `max_tokens=` alone is sent as max_completion_tokens, which llama.cpp ignores: send the classic field too.
        n = int(max_tokens or self.max_tokens)
        # A per-call timeout travels to the openai client as a request option: the turn's remaining budget, never
        # more than the configured per-request timeout.
        extra = {} if timeout_s is None else {"timeout": max(0.1, min(float(timeout_s), self.timeout_s))}
        if self._official():
            return self._chat.bind(max_tokens=n, **extra)
        return self._chat.bind(extra_body={"max_tokens": n}, **extra)

    def _official(self) -> bool:
        return self.base_url is None or "api.openai.com" in (self.base_url or "")

    def _retrying(self, timeout_s: float | None = None):
        from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_after_delay, wait_exponential

        stop = stop_after_attempt(self.max_retries + 1)
        if timeout_s is not None:  # a budgeted call: no retry starts after its time is up
            stop = stop | stop_after_delay(timeout_s)
        return Retrying(stop=stop, wait=wait_exponential(0.5, max=4.0), retry=retry_if_exception(_is_retryable),
                        reraise=True)

    @staticmethod
    def _attempt_timeout(deadline: float | None) -> float | None:
        return None if deadline is None else deadline - time.monotonic()

    def stream(self, messages: Sequence[Message], *, max_tokens: int | None = None, timeout_s: float | None = None,
               call: LLMCall | None = None) -> Iterator[str]:
        """Yield text pieces. Connection failures before the first piece are retried; later ones raise LLMError."""
        msgs = [tuple(m) for m in messages]
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        started = False
        pieces = 0
        usage = None
        chunks = None
        try:
            for attempt in self._retrying(timeout_s):
                with attempt:
                    it = self._bound(max_tokens, self._attempt_timeout(deadline)).stream(msgs)
                    first = next(it, None)  # connection errors surface here, while a retry is still harmless
            started = True
            chunks = it if first is None else _prepend(first, it)
            for chunk in chunks:
                usage = getattr(chunk, "usage_metadata", None) or usage
                if chunk.content:
                    pieces += 1
                    yield str(chunk.content)
        except GeneratorExit:
            raise
        except Exception as e:  # every transport / HTTP failure becomes one typed error
            err = _as_llm_error(e)
            if started:
                err = LLMError(f"{err} (the stream stopped midway)", err.kind)
            raise err from None
        finally:
            if chunks is not None:
                chunks.close()  # a consumer that stops early (the turn's budget) closes the HTTP stream now
            if call is not None:
                _count(call, usage, completion=pieces)

    def structured(self, messages: Sequence[Message], schema: dict, model: type[T], *,
                   max_tokens: int | None = None, check_schema: bool = True, timeout_s: float | None = None,
                   call: LLMCall | None = None) -> T:
        from langchain_core.output_parsers import JsonOutputParser

        schema = dict(schema)
        schema.setdefault("title", model.__name__)
        schema.setdefault("description", f"{model.__name__} answer")
        msgs = [tuple(m) for m in messages]
        if self.structured_method == "prompt":
            msgs = [("system", _schema_instruction(schema))] + msgs
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            for attempt in self._retrying(timeout_s):
                with attempt:
                    out = self._structured_runnable(self._bound(max_tokens, self._attempt_timeout(deadline)),
                                                    schema).invoke(msgs)
        except Exception as e:
            raise _as_llm_error(e) from None
        # Every method answers {"raw": AIMessage, "parsed": ..., "parsing_error": ...}: the raw message has the usage.
        if call is not None:
            _count(call, getattr(out["raw"], "usage_metadata", None))
        if self.structured_method == "json_object":
            try:
                parsed = JsonOutputParser().parse(str(out["raw"].content))
            except Exception as e:  # OutputParserException and friends: the answer is not JSON
                raise _as_llm_error(e) from None
        elif self.structured_method == "function_calling":
            calls = getattr(out["raw"], "tool_calls", None) or []
            parsed = calls[0]["args"] if calls else None
        else:  # prompt, json_schema: the first JSON object of the answer
            parsed = parse_json_object(str(out["raw"].content))
        return _validate(parsed, schema, model, check_schema)

    def _structured_runnable(self, bound, schema: dict):
        from langchain_core.runnables import RunnableLambda
        from langchain_core.utils.function_calling import convert_to_openai_function

        raw = RunnableLambda(lambda msg: {"raw": msg, "parsed": None, "parsing_error": None})
        if self.structured_method == "json_object":
            return bound.bind(response_format={"type": "json_object", "schema": schema}) | raw
        if self.structured_method == "prompt":
            return bound | raw
        if self.structured_method == "function_calling":
            # A forced tool call, bound on top of `bound`: with_structured_output would start again from the bare
            # model and drop the per-call max_tokens and timeout.
            return bound.bind(tools=[{"type": "function", "function": {
                "name": schema["title"], "description": schema["description"], "parameters": schema}}],
                tool_choice={"type": "function", "function": {"name": schema["title"]}}) | raw
        # OpenAI's strict json_schema, bound on top of `bound` for the same reason; langchain's converter makes
        # the schema strict (additionalProperties false everywhere), as with_structured_output would.
        function = convert_to_openai_function(schema, strict=True)
        function["schema"] = function.pop("parameters")
        return bound.bind(response_format={"type": "json_schema", "json_schema": function}) | raw


def _prepend(first, rest: Iterator) -> Iterator:
    yield first
    yield from rest


def _count(call: LLMCall, usage: dict | None, completion: int | None = None) -> None:
    """Token counts from langchain's usage_metadata (OpenAI, vLLM and llama.cpp's own server report the cached
    prefix as input_token_details.cache_read); `completion` stands in when the server sent no usage."""
    if usage:
        call.prompt_tokens = usage.get("input_tokens")
        call.completion_tokens = usage.get("output_tokens")
        call.cached_tokens = (usage.get("input_token_details") or {}).get("cache_read")
    elif completion is not None:
        call.completion_tokens = completion


class TransformersLLM:
    """A local chat model (folder, model id in the HF cache, or GGUF) with its chat template; greedy decoding."""

    name = "transformers"

    def __init__(self, model: str, *, gguf_file: str | None = None, cache_dir=None, max_tokens: int = 512,
                 temperature: float = 0.0, timeout_s: float = 120.0, download: bool = False):
        from retrieval.lm_loading import load_lm

        self.lm = load_lm(model, gguf_file=gguf_file, kind="causal", cache_dir=cache_dir, download=download)
        if getattr(self.lm.tokenizer, "chat_template", None) is None:
            raise LLMError(f"{model} has no chat template; use an instruct/chat model", "config")
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.timeout_s = timeout_s
        # One generate() at a time: the model is shared by every session and torch is not re-entrant here.
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return True

    def describe(self) -> str:
        return f"transformers · {self.lm.source}"

    def _inputs(self, messages: Sequence[Message]):
        chat = [{"role": r, "content": c} for r, c in messages]
        ids = self.lm.tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt",
                                                    return_dict=True)
        return {k: v.to(self.lm.device) for k, v in ids.items()}

    def stream(self, messages: Sequence[Message], *, max_tokens: int | None = None, timeout_s: float | None = None,
               call: LLMCall | None = None) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(self.lm.tokenizer, skip_prompt=True, skip_special_tokens=True,
                                        timeout=min(self.timeout_s, timeout_s or self.timeout_s))
        errors: list[BaseException] = []
        inputs = self._inputs(messages)
        if call is not None:
            call.prompt_tokens = int(inputs["input_ids"].shape[-1])

        def run():
            try:
                with self._lock:
                    self.lm.model.generate(**inputs, streamer=streamer, do_sample=False,
                                           max_new_tokens=int(max_tokens or self.max_tokens),
                                           pad_token_id=self.lm.tokenizer.eos_token_id)
            except Exception as e:  # reported to the consumer below, never lost in the thread
                errors.append(e)
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        except Exception as e:  # queue.Empty on timeout
            raise LLMError(f"local model stalled: {type(e).__name__}", "timeout") from None
        worker.join(timeout=1.0)
        if errors:
            raise LLMError(f"local model failed: {type(errors[0]).__name__}: {errors[0]}", "unavailable")

    def structured(self, messages: Sequence[Message], schema: dict, model: type[T], *,
                   max_tokens: int | None = None, check_schema: bool = True, timeout_s: float | None = None,
                   call: LLMCall | None = None) -> T:
        # No grammar-constrained decoding here: instruct, parse the first JSON object, validate strictly.
        msgs = [("system", _schema_instruction(schema))] + list(messages)
        text = "".join(self.stream(msgs, max_tokens=max_tokens, timeout_s=timeout_s, call=call))
        return _validate(parse_json_object(text), schema, model, check_schema)


class TurnLLM:
    """One turn's use of the shared LLM: every call is recorded (what, time, tokens), all calls together stay within
    the turn's LLM time budget, and a server found down is not asked again in the same turn.

    Created per turn (the backend itself is shared by all sessions); a call past the budget raises
    LLMError(kind="budget"), and a stream that runs out of budget stops after the piece it was on."""

    _FAIL_FAST = ("unavailable", "budget")

    def __init__(self, llm: LLM, budget_s: float, clock: Callable[[], float] = time.monotonic):
        self.llm = llm
        self.name = llm.name
        self.budget_s = float(budget_s)
        self.calls: list[LLMCall] = []
        self._clock = clock
        self.started = clock()
        self._spent = 0.0
        self._dead: str | None = None  # the error kind that ends this turn's LLM use

    @property
    def enabled(self) -> bool:
        return self.llm.enabled

    def describe(self) -> str:
        return self.llm.describe()

    @property
    def left_s(self) -> float:
        return self.budget_s - self._spent

    def elapsed_s(self) -> float:
        """Seconds since the turn began (for the per-turn log: time to cards, to the first text)."""
        return self._clock() - self.started

    def _open(self, what: str) -> tuple[LLMCall, float]:
        call = LLMCall(what)
        self.calls.append(call)
        if self._dead is None and self.left_s <= 0:
            self._dead = "budget"
        if self._dead is not None:
            call.error = self._dead
            why = "the turn ran out of LLM time" if self._dead == "budget" else "the server is down"
            raise LLMError(f"no LLM call: {why}", self._dead)
        return call, self.left_s

    def _close(self, call: LLMCall, t0: float, error: LLMError | None) -> LLMError | None:
        call.seconds = self._clock() - t0
        self._spent += call.seconds
        if error is None:
            return None
        if error.kind == "timeout" and self.left_s <= 0.05:
            error = LLMError("the turn ran out of LLM time", "budget")
        call.error = error.kind
        if error.kind in self._FAIL_FAST:
            self._dead = error.kind
        return error

    def structured(self, messages: Sequence[Message], schema: dict, model: type[T], *,
                   max_tokens: int | None = None, check_schema: bool = True, **_) -> T:
        call, left = self._open(model.__name__)
        t0 = self._clock()
        try:
            out = self.llm.structured(messages, schema, model, max_tokens=max_tokens, check_schema=check_schema,
                                      timeout_s=left, call=call)
        except LLMError as e:
            raise self._close(call, t0, e) from None
        self._close(call, t0, None)
        return out

    def stream(self, messages: Sequence[Message], *, max_tokens: int | None = None, **_) -> Iterator[str]:
        call, left = self._open("stream")
        t0 = self._clock()
        inner = self.llm.stream(messages, max_tokens=max_tokens, timeout_s=left, call=call)
        error: LLMError | None = None
        try:
            for piece in inner:
                now = self._clock()
                if call.first_s is None:
                    call.first_s = now - t0
                yield piece
                if self._clock() - t0 >= left:
                    error = LLMError("the turn ran out of LLM time", "budget")
                    break
        except LLMError as e:
            error = e
        finally:
            inner.close()  # stops the server's generation too (the HTTP stream is closed)
            error = self._close(call, t0, error)
        if error is not None:
            raise error

    def summary(self) -> str:
        """One log line: per call what it was, seconds, time to first piece, prompt/cached/completion tokens."""
        def n(x):
            return "?" if x is None else str(x)

        parts = [f"{c.what} {c.seconds:.2f}s" + (f" first {c.first_s:.2f}s" if c.first_s is not None else "")
                 + f" tok {n(c.prompt_tokens)}p/{n(c.cached_tokens)}c/{n(c.completion_tokens)}o"
                 + (f" {c.error}" if c.error else "") for c in self.calls]
        return f"{len(self.calls)} LLM calls, {self._spent:.2f}s of {self.budget_s:g}s: " + "; ".join(parts)


def make_llm(settings: Settings, *, structured_method: str = "auto") -> LLM:
    """The backend named by settings.llm_backend. Raises LLMError(kind="config") when it cannot be built."""
    if settings.llm_backend == "none":
        return NoLLM()
    if settings.llm_backend == "openai":
        if not settings.llm_base_url and not settings.llm_api_key:
            raise LLMError("llm_backend=openai needs llm_base_url (local server) or llm_api_key (OpenAI)", "config")
        return OpenAICompatibleLLM(
            base_url=settings.llm_base_url, api_key=settings.llm_api_key, model=settings.llm_model,
            timeout_s=settings.llm_timeout_s, max_retries=settings.llm_max_retries,
            max_tokens=settings.llm_max_tokens, temperature=settings.llm_temperature,
            structured_method=structured_method)
    if settings.llm_backend == "transformers":
        if not settings.local_model:
            raise LLMError("llm_backend=transformers needs local_model (a folder, .gguf file or model id)", "config")
        from retrieval.lm_loading import ModelLoadError

        try:
            return TransformersLLM(settings.local_model, gguf_file=settings.local_model_file,
                                   cache_dir=settings.cache_dir, max_tokens=settings.llm_max_tokens,
                                   timeout_s=settings.llm_timeout_s, download=settings.allow_download)
        except ModelLoadError as e:
            raise LLMError(str(e), "config") from e
    raise LLMError(f"unknown llm_backend {settings.llm_backend!r}", "config")
