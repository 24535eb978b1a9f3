"""The engine against a real llama.cpp OpenAI-compatible server (SmolLM2-135M-Instruct GGUF).

The model is tiny: these tests prove wiring, schema-constrained output, streaming and fallbacks, not quality.
They skip cleanly without llama-cpp-python[server] or the GGUF (tests/fixtures/llama_server.py); CI has both.
"""
from __future__ import annotations

import pytest

from chatrec.candidates_turn import Candidate, CandidateSet
from chatrec.llm import LLMError, OpenAICompatibleLLM
from chatrec.rerank import llm_rerank
from tests.conftest import SHARED_DATA, has_data
from tests.test_engine import check_reply, make_engine, mentions, run_turn

MAX_TOKENS = 48  # keep generations short: the tests are about formats and control flow


def _llm(server, **kw) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(base_url=server.base_url, api_key="", model="local", max_tokens=MAX_TOKENS,
                               timeout_s=60, max_retries=1, **kw)


def _engine(llm):
    # Three picks out of eight candidates: short prompts and answers keep the module within a few minutes on 2 cores.
    # A generous turn budget: these tests are about wiring, and a loaded machine must not turn them into fallbacks.
    return make_engine(llm=llm, llm_backend="openai", rerank="llm", n_candidates=8, n_recs=3,
                       llm_max_tokens=MAX_TOKENS, llm_turn_budget_s=120)


def _counted(llm, calls: list[str]):
    """`llm` with every stream/structured call appended to `calls`."""
    for name in ("stream", "structured"):
        def call(*a, _orig=getattr(llm, name), _name=name, **k):
            calls.append(_name)
            return _orig(*a, **k)
        setattr(llm, name, call)
    return llm


needs_data = pytest.mark.skipif(not has_data("ml-latest-small", "goodbooks-10k"),
                                reason=f"needs ml-latest-small and goodbooks-10k in {SHARED_DATA}")


def test_stream_yields_several_chunks(llama_server):
    chunks = list(_llm(llama_server).stream([("user", "Say hello in one short sentence.")], max_tokens=24))
    assert len(chunks) > 1 and "".join(chunks).strip()


@pytest.mark.parametrize("method", ["function_calling", "json_object"])
def test_structured_rerank_stays_inside_the_candidates(llama_server, method):
    from retrieval.types import Item

    items = [Item(id=f"mls:{i}", title=t, year=1990 + i, genres=("Drama",)) for i, t in
             enumerate(["Heat", "Fargo", "Casino", "Se7en", "Clueless", "Babe", "Jumanji"], 1)]
    cands = CandidateSet(tuple(Candidate(it, 1.0 / n, ("als",)) for n, it in enumerate(items, 1)))
    r = llm_rerank(_llm(llama_server, structured_method=method), cands, 3, profile="Likes crime films",
                   request="a crime movie", lang="en", max_tokens=200)
    assert len(r.ids) == 3 and len(set(r.ids)) == 3 and set(r.ids) <= set(cands.ids)
    assert r.method in ("llm", "score")
    if r.method == "score":
        assert r.fallback == "bad_output"


@needs_data
def test_english_conversation_streams_and_respects_dislikes(llama_server):
    eng = _engine(_llm(llama_server))
    s = eng.new_session("en")
    multi_chunk_turns = 0
    disliked_title = None
    for msg in ["I loved The Matrix, recommend something similar", "Something from the 90s please",
                "I didn't like {first}", "more please"]:
        if "{first}" in msg:
            disliked_title = last.cards[0].title
            msg = msg.format(first=disliked_title)
        last = run_turn(eng, s, msg)
        check_reply(eng, s, last, "en")
        assert last.cards and len(last.cards) == eng.settings.n_recs
        multi_chunk_turns += len(last.chunks) > 1
        assert last.order[0] == "Progress"  # the user sees at once that the LLM is working
        if disliked_title and not msg.startswith("I didn't"):
            assert not mentions(last.text, disliked_title)
            assert disliked_title not in {c.title for c in last.cards}
    assert multi_chunk_turns >= 1
    assert s.profile  # ONCE profile written (by the LLM, or the rule fallback)


@needs_data
@pytest.mark.parametrize("lang,message", [("en", "I loved The Matrix, recommend something similar"),
                                          ("ko", "인터스텔라 같은 영화 추천해줘")])
def test_a_recommendation_turn_is_at_most_two_calls_with_cards_first(llama_server, lang, message):
    calls: list[str] = []
    eng = _engine(_counted(_llm(llama_server), calls))
    s = eng.new_session(lang)
    r = run_turn(eng, s, message)
    check_reply(eng, s, r, lang)
    assert calls == ["structured", "stream"], calls  # ranking, then the intro; the rules' reading is trusted
    assert r.cards and len(r.cards) == eng.settings.n_recs
    assert r.order.index("Cards") < r.order.index("TextChunk")  # the cards as soon as the ranking is known


@needs_data
def test_korean_conversation(llama_server):
    eng = _engine(_llm(llama_server))
    s = eng.new_session("ko")
    for msg in ["인터스텔라 같은 영화 추천해줘", "90년대 코미디 영화 추천해줘", "{first} 별로였어", "다른 거 더 추천해줘"]:
        if "{first}" in msg:
            first = last.cards[0]
            msg = msg.format(first=first.title)
        last = run_turn(eng, s, msg)
        check_reply(eng, s, last, "ko")
        assert last.cards
    assert first.item_id in s.disliked and first.item_id not in {c.item_id for c in last.cards}
    assert not mentions(last.text, first.title)


@needs_data
def test_server_killed_mid_conversation_falls_back_with_a_notice(llama_server_disposable):
    eng = _engine(_llm(llama_server_disposable))
    s = eng.new_session("en")
    r = run_turn(eng, s, "I loved Alien")
    check_reply(eng, s, r, "en")
    llama_server_disposable.stop()
    r = run_turn(eng, s, "Now something from the 80s")
    check_reply(eng, s, r, "en")
    assert r.cards and len(r.cards) == eng.settings.n_recs
    assert any(n.kind == "fallback" for n in r.notices)
    with pytest.raises(LLMError) as e:
        list(eng.llm.stream([("user", "hi")]))
    assert e.value.kind == "unavailable"
    s2 = eng.new_session("ko")
    r = run_turn(eng, s2, "매트릭스 같은 영화 추천해줘")
    check_reply(eng, s2, r, "ko")
    assert any(n.kind == "fallback" and "언어 모델" in n.text for n in r.notices)


def test_local_transformers_backend_streams_and_parses(tmp_path_factory):
    """The same SmolLM2 GGUF through transformers (no server): streaming and the structured-output contract."""
    from pydantic import BaseModel

    from chatrec.llm import TransformersLLM
    from tests.conftest import TEST_CACHE
    from tests.fixtures.llama_server import gguf_path

    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    if not gguf_path().is_file():
        pytest.skip(f"{gguf_path()} not found")
    llm = TransformersLLM(str(gguf_path()), cache_dir=TEST_CACHE, max_tokens=16)
    chunks = list(llm.stream([("user", "Say hello.")], max_tokens=12))
    assert len(chunks) > 1 and "".join(chunks).strip()

    class Answer(BaseModel):
        genre: str

    schema = {"type": "object", "properties": {"genre": {"type": "string", "enum": ["Drama", "Comedy"]}},
              "required": ["genre"]}
    try:  # a 135M model without constrained decoding may or may not comply; either way the contract holds
        out = llm.structured([("user", "Pick a genre for a funny film.")], schema, Answer, max_tokens=24)
        assert out.genre in ("Drama", "Comedy")
    except LLMError as e:
        assert e.kind == "bad_output"
