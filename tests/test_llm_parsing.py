"""Parsing edge cases of LLM answers with a scripted fake LLM (the real server is in test_engine_llm_server.py)."""
from __future__ import annotations

import pytest
from pydantic import BaseModel

from chatrec.candidates_turn import Candidate, CandidateSet
from chatrec.llm import LLMError, NoLLM, _validate, autodetect_method, make_llm, parse_json_object
from chatrec.rerank import ranking_schema, llm_rerank, _RankingAnswer
from chatrec.settings import Settings
from retrieval.types import Item


class ScriptedLLM:
    """Returns canned structured answers (dicts are validated like a real backend would), or raises."""

    name = "scripted"
    enabled = True

    def __init__(self, answer):
        self.answer = answer
        self.calls = 0

    def describe(self):
        return "scripted"

    def stream(self, messages, *, max_tokens=None, timeout_s=None, call=None):
        yield from ["Hello ", "there."]

    def structured(self, messages, schema, model, *, max_tokens=None, check_schema=True, timeout_s=None, call=None):
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        if isinstance(self.answer, str):
            return _validate(parse_json_object(self.answer), schema, model, check_schema)
        return _validate(self.answer, schema, model, check_schema)


def _cands(n=8) -> CandidateSet:
    items = [Item(id=f"t:{i}", title=f"Title {i}", year=2000 + i, genres=("Drama",)) for i in range(n)]
    return CandidateSet(tuple(Candidate(it, float(n - i), ("als",)) for i, it in enumerate(items)))


def _rank(answer, k=3):
    return llm_rerank(ScriptedLLM(answer), _cands(), k, profile="", request="something", lang="en")


def test_valid_answer_is_used_in_order():
    r = _rank({"picks": [6, 3, 1]})
    assert r.ids == ("t:5", "t:2", "t:0") and r.method == "llm" and r.fallback is None


def test_the_llm_chooses_among_the_best_scored_k_plus_3():
    llm = ScriptedLLM({"picks": [1, 2, 3]})
    seen = {}

    def structured(messages, schema, model, **kw):
        seen["prompt"], seen["schema"] = messages[-1][1], schema
        return ScriptedLLM.structured(llm, messages, schema, model, **kw)

    llm.structured = structured
    llm_rerank(llm, _cands(), 3, profile="", request="something", lang="en")
    assert seen["schema"]["properties"]["picks"]["items"]["enum"] == [1, 2, 3, 4, 5, 6]
    assert "6. Title 5 (2005); Drama" in seen["prompt"] and "Title 6" not in seen["prompt"]
    assert "t:" not in seen["prompt"]  # numbers, not ids: fewer tokens, and nothing to misspell


def test_unknown_and_duplicate_numbers_are_dropped_and_filled_in_score_order():
    r = _rank({"picks": [99, 5, 5]})
    assert r.ids == ("t:4", "t:0", "t:1") and r.dropped == 2 and r.method == "llm"


def test_only_unknown_numbers_falls_back_to_score_order():
    r = _rank({"picks": [0, -2]})
    assert r.ids == ("t:0", "t:1", "t:2") and r.method == "score" and r.fallback == "bad_output"


@pytest.mark.parametrize("answer", [
    "not json at all",
    '{"picks": [1, 2',
    "",
    '{"unexpected": true, "picks": "nope"}',
])
def test_bad_json_falls_back_to_score_order(answer):
    r = _rank(answer)
    assert r.method == "score" and r.fallback == "bad_output" and r.ids == ("t:0", "t:1", "t:2")


def test_empty_output_falls_back():
    r = _rank({"picks": []})
    assert r.method == "score" and r.fallback == "bad_output"


@pytest.mark.parametrize("kind", ["timeout", "unavailable", "http", "budget"])
def test_transport_errors_fall_back_with_their_kind(kind):
    r = _rank(LLMError("boom", kind))
    assert r.method == "score" and r.fallback == kind


def test_schema_restricts_numbers_and_length():
    s = ranking_schema(3, k=5)
    picks = s["properties"]["picks"]
    assert picks["minItems"] == picks["maxItems"] == 3
    assert picks["items"]["enum"] == [1, 2, 3]


def test_strict_validation_rejects_enum_violation():
    s = ranking_schema(2, k=1)
    with pytest.raises(LLMError) as e:
        _validate({"picks": [7]}, s, _RankingAnswer)
    assert e.value.kind == "bad_output"


@pytest.mark.parametrize("text,expected", [
    ('Sure! {"a": 1} hope that helps', {"a": 1}),
    ('```json\n{"a": [1, 2]}\n```', {"a": [1, 2]}),
])
def test_parse_json_object_finds_the_object(text, expected):
    assert parse_json_object(text) == expected


@pytest.mark.parametrize("text", ["", "no braces", "{not: json}"])
def test_parse_json_object_errors_are_typed(text):
    with pytest.raises(LLMError) as e:
        parse_json_object(text)
    assert e.value.kind == "bad_output"


def test_none_answer_is_bad_output():
    class M(BaseModel):
        x: int
    with pytest.raises(LLMError):
        _validate(None, {"type": "object"}, M)


def test_method_autodetect():
    assert autodetect_method(None) == "json_schema"
    assert autodetect_method("https://api.openai.com/v1") == "json_schema"
    assert autodetect_method("http://127.0.0.1:8080/v1") == "function_calling"


def test_make_llm_none_and_config_errors():
    llm = make_llm(Settings())
    assert isinstance(llm, NoLLM) and not llm.enabled
    with pytest.raises(LLMError) as e:
        list(llm.stream([("user", "hi")]))
    assert e.value.kind == "config"
    with pytest.raises(LLMError, match="llm_base_url"):
        make_llm(Settings(llm_backend="openai"))
    with pytest.raises(LLMError, match="local_model"):
        make_llm(Settings(llm_backend="transformers"))


def test_api_key_never_in_description_or_errors():
    llm = make_llm(Settings(llm_backend="openai", llm_base_url="http://127.0.0.1:9/v1", llm_api_key="sk-SECRET123",
                            llm_max_retries=0, llm_timeout_s=2))
    assert "SECRET" not in llm.describe()
    with pytest.raises(LLMError) as e:
        list(llm.stream([("user", "hi")]))
    assert "SECRET" not in str(e.value) and e.value.kind == "unavailable"


