"""One turn's LLM use: how many calls, within which time budget, and the cards before the intro.

TurnLLM with a scripted backend and a fake clock (no data needed); the engine with a scripted, counting LLM on real
data (the real llama.cpp server is in test_engine_llm_server.py)."""
from __future__ import annotations

import logging
import time

import pytest

from chatrec.llm import LLMCall, LLMError, TurnLLM
from chatrec.rerank import _RankingAnswer
from tests.conftest import SHARED_DATA, has_data


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class CountingLLM:
    """Ranks by picking numbers 2, 1, 3, ...; writes a two-sentence intro; optional delay per call (seconds of the
    clock it is given, or of real time) honouring the timeout it is passed, as a real backend does."""

    name = "counting"
    enabled = True

    def __init__(self, clock=None, delay=0.0, intro="Here are a few picks for you. Enjoy them tonight."):
        self.clock, self.delay, self.intro = clock, delay, intro
        self.log: list[tuple[str, float | None]] = []

    def describe(self):
        return "counting"

    def _wait(self, timeout_s):
        wait = self.delay if timeout_s is None else min(self.delay, timeout_s)
        if self.clock is not None:
            self.clock.t += wait
        else:
            time.sleep(wait)
        if timeout_s is not None and self.delay > timeout_s:
            raise LLMError("slow", "timeout")

    def structured(self, messages, schema, model, *, max_tokens=None, check_schema=True, timeout_s=None, call=None):
        self.log.append((model.__name__, timeout_s))
        self._wait(timeout_s)
        if call is not None:
            call.prompt_tokens, call.completion_tokens = len(messages[-1][1]) // 4, 12
        if model is _RankingAnswer:
            n = schema["properties"]["picks"]["maxItems"]
            return model(picks=[2, 1, *range(3, n + 1)][:n])
        return model.model_validate({})

    def stream(self, messages, *, max_tokens=None, timeout_s=None, call=None):
        self.log.append(("stream", timeout_s))
        self._wait(timeout_s)
        for word in self.intro.split(" "):
            yield word + " "


# ---------------------------------------------------------------------------------------------------------------
# TurnLLM

def test_every_call_is_recorded_with_its_time_and_tokens():
    clock = Clock()
    turn = TurnLLM(CountingLLM(clock, delay=0.5), budget_s=5, clock=clock)
    turn.structured([("user", "x" * 400)], {"properties": {"picks": {"maxItems": 3}}}, _RankingAnswer)
    assert "".join(turn.stream([("user", "hi")])).strip()
    assert [c.what for c in turn.calls] == ["_RankingAnswer", "stream"]
    assert turn.calls[0].seconds == pytest.approx(0.5) and turn.calls[0].prompt_tokens == 100
    assert turn.calls[1].first_s == pytest.approx(0.5) and turn.left_s == pytest.approx(4.0)
    assert "2 LLM calls" in turn.summary()


def test_each_call_gets_the_budget_that_is_left_and_none_starts_past_it():
    clock = Clock()
    llm = CountingLLM(clock, delay=1.5)
    turn = TurnLLM(llm, budget_s=2, clock=clock)
    turn.structured([("user", "x")], {"properties": {"picks": {"maxItems": 1}}}, _RankingAnswer)
    with pytest.raises(LLMError) as e:  # 0.5 s left, the call needs 1.5: the backend times out at 0.5
        list(turn.stream([("user", "hi")]))
    assert e.value.kind == "budget"
    assert [t for _, t in llm.log] == [2, pytest.approx(0.5)]
    with pytest.raises(LLMError) as e:
        turn.structured([("user", "x")], {}, _RankingAnswer)
    assert e.value.kind == "budget" and len(llm.log) == 2  # not even sent


def test_a_stream_past_the_budget_stops_after_the_piece_it_was_on():
    clock = Clock()

    class Slow(CountingLLM):
        def stream(self, messages, **kw):
            for word in ["One. ", "Two. ", "Three. "]:
                clock.t += 1.0
                yield word

    turn = TurnLLM(Slow(clock), budget_s=1.5, clock=clock)
    got = []
    with pytest.raises(LLMError) as e:
        for piece in turn.stream([("user", "hi")]):
            got.append(piece)
    assert e.value.kind == "budget" and got == ["One. ", "Two. "]


def test_a_dead_server_is_not_asked_twice_in_a_turn():
    class Down(CountingLLM):
        def structured(self, *a, **kw):
            self.log.append(("structured", None))
            raise LLMError("refused", "unavailable")

    llm = Down()
    turn = TurnLLM(llm, budget_s=5)
    for _ in range(2):
        with pytest.raises(LLMError) as e:
            turn.structured([("user", "x")], {}, _RankingAnswer)
        assert e.value.kind == "unavailable"
    with pytest.raises(LLMError):
        list(turn.stream([("user", "hi")]))
    assert len(llm.log) == 1 and [c.error for c in turn.calls] == ["unavailable"] * 3


def test_llm_call_defaults():
    assert LLMCall("stream").prompt_tokens is None


# ---------------------------------------------------------------------------------------------------------------
# the engine

needs_data = pytest.mark.skipif(not has_data("ml-latest-small", "goodbooks-10k"),
                                reason=f"needs ml-latest-small and goodbooks-10k in {SHARED_DATA}")


def _engine(llm, **kw):
    from tests.test_engine import make_engine

    return make_engine(llm=llm, llm_backend="openai", rerank="llm", **kw)


@needs_data
@pytest.mark.parametrize("lang,message", [("en", "I loved The Matrix, recommend something similar"),
                                          ("en", "a feel-good comedy from the 90s"),
                                          ("ko", "인터스텔라 같은 영화 추천해줘")])
def test_a_recommendation_turn_is_two_calls_with_the_cards_before_the_intro(lang, message, caplog):
    from tests.test_engine import check_reply, run_turn

    llm = CountingLLM()
    eng = _engine(llm)
    s = eng.new_session(lang)
    with caplog.at_level(logging.DEBUG, logger="chatrec.engine"):
        r = run_turn(eng, s, message)
    logged = [rec.getMessage() for rec in caplog.records if "LLM calls" in rec.getMessage()]
    assert len(logged) == 1 and "2 LLM calls" in logged[0] and "cards at" in logged[0], logged
    check_reply(eng, s, r, lang)
    assert [what for what, _ in llm.log] == ["_RankingAnswer", "stream"]  # the rules' reading is trusted
    assert r.order[:3] == ["Progress", "Cards", "TextChunk"]
    assert "Here are a few picks for you." in r.text
    assert len(r.cards) == eng.settings.n_recs and not [n for n in r.notices if n.kind == "fallback"]
    assert s.profile  # the rule profile, without a call


@needs_data
def test_the_understanding_llm_is_asked_only_when_the_rules_are_unsure():
    from chatrec.understand import rules_unsure

    eng = _engine(CountingLLM())
    s = eng.new_session("en")
    sure = eng.understander.rules("I loved The Matrix, recommend something similar", s)
    vague = eng.understander.rules("what should I watch tonight?", s)
    assert not rules_unsure(sure) and rules_unsure(vague)
    llm = CountingLLM()
    eng = _engine(llm)
    list(eng.turn(eng.new_session("en"), "what should I watch tonight?"))
    assert [what for what, _ in llm.log][0] == "_LLMRequest" and len(llm.log) <= 3


@needs_data
@pytest.mark.parametrize("lang,words", [("en", "ran out of time"), ("ko", "시간")])
def test_past_the_budget_the_turn_ends_with_score_order_cards_and_says_so(lang, words):
    from tests.test_engine import check_reply, run_turn

    llm = CountingLLM(delay=0.4)
    eng = _engine(llm, llm_turn_budget_s=0.2)
    s = eng.new_session(lang)
    message = "I loved The Matrix" if lang == "en" else "매트릭스 좋아해 비슷한 영화 추천해줘"
    r = run_turn(eng, s, message)
    check_reply(eng, s, r, lang)
    assert [what for what, _ in llm.log] == ["_RankingAnswer"]  # timed out; no intro call after it
    assert len(r.cards) == eng.settings.n_recs
    from tests.test_engine import make_engine

    plain = make_engine()  # no LLM: score order
    r0 = run_turn(plain, plain.new_session(lang), message)
    assert [c.item_id for c in r.cards] == [c.item_id for c in r0.cards]  # score order
    fb = [n for n in r.notices if n.kind == "fallback"]
    assert len(fb) == 1 and words in fb[0].text and "0.2" in fb[0].text


def test_the_budget_is_a_setting():
    from chatrec.settings import Settings, from_env

    assert Settings().llm_turn_budget_s > 0
    assert from_env({"CHATREC_LLM_TURN_BUDGET_S": "2.5"}).llm_turn_budget_s == 2.5
    with pytest.raises(ValueError):
        Settings(llm_turn_budget_s=0)
