"""Fault injection on a REAL llama.cpp server (tests/fixtures/llama_server.py, SmolLM2-135M).

Faults llama.cpp produces itself: the server going away (a disposable server is killed). Faults it cannot produce on
demand — HTTP 500, a truncated body, candidate ids rewritten to ids outside the candidates, a stream that stalls
midway, a request never answered, an HTML error page with status 200 — come from tests/reliability/fault_proxy.py
sitting between the engine and the real server (damaged bodies are the server's own answers, recorded by the proxy
in the first test and replayed, so CI does not wait on the 135M model for every fault). Every turn must still be
answered, with cards from the catalog and a fallback notice; the session stays usable afterwards.
"""
from __future__ import annotations

import logging

import pytest

from .common import engine_with_llm, logged_exceptions, problems, run
from .fault_proxy import BOGUS_ID, FaultProxy

pytestmark = pytest.mark.llm_server

SLOW_TIMEOUT_S = 120.0  # real calls through the proxy (2 shared cores): must not time out by accident
FAST_TIMEOUT_S = 6.0  # for the stall / no-answer faults: the client's timeout is what ends them
MESSAGES = {"en": "Recommend sci-fi movies like The Matrix", "ko": "The Matrix 같은 SF 영화 추천해 줘"}
FAULTS = [("http500", "en"), ("truncate", "ko"), ("rewrite_ids", "en"), ("garbage", "ko"), ("stall", "en"),
          ("timeout", "ko")]


@pytest.fixture(scope="module")
def proxy(llama_server):
    px = FaultProxy(llama_server.base_url, stall_s=FAST_TIMEOUT_S + 4, replay=True).start()
    try:
        yield px
    finally:
        px.stop()


def _llm_settings(url: str, timeout_s: float) -> dict:
    return dict(llm_backend="openai", llm_base_url=url, llm_api_key="not-needed", llm_model="local",
                rerank="llm", llm_timeout_s=timeout_s, llm_max_retries=0, llm_max_tokens=96,
                n_candidates=6, n_recs=3,  # a short ranking prompt keeps the real model's answers quick
                # The faults must reach both calls (ranking, intro stream): the turn budget is not what ends them.
                llm_turn_budget_s=4 * SLOW_TIMEOUT_S)


@pytest.fixture(scope="module")
def engines(parts, proxy):
    return {"slow": engine_with_llm(parts, **_llm_settings(proxy.base_url, SLOW_TIMEOUT_S)),
            "fast": engine_with_llm(parts, **_llm_settings(proxy.base_url, FAST_TIMEOUT_S))}


def _no_turn_crash(records) -> list[str]:
    # LLM failures are logged at INFO/WARNING by design; a caught crash of the whole turn is logged with a trace.
    return [r for r in logged_exceptions(records) if "turn failed" in r or "feedback failed" in r]


def test_real_server_through_the_proxy_answers(parts, engines, proxy, caplog):
    proxy.set_mode("pass")
    session = engines["slow"].new_session(language="en")
    with caplog.at_level(logging.INFO):
        out = run(engines["slow"].turn(session, MESSAGES["en"]))
    assert not _no_turn_crash(caplog.records)
    assert not problems(out, parts.catalog, need_cards=True), out.text[:300]
    assert proxy.count("pass") >= 1, "the engine never called the LLM server"


@pytest.mark.parametrize("mode,lang", FAULTS, ids=[m for m, _ in FAULTS])
def test_fault_still_answers_with_a_fallback_notice(parts, engines, proxy, mode, lang, caplog):
    engine = engines["fast" if mode in ("stall", "timeout") else "slow"]
    session = engine.new_session(language=lang)
    before = proxy.count(mode)
    proxy.set_mode(mode)
    try:
        with caplog.at_level(logging.INFO):
            out = run(engine.turn(session, MESSAGES[lang]))
    finally:
        proxy.set_mode("pass")
    injected = proxy.count(mode) - before
    assert injected >= 1, f"no request hit the {mode} fault"
    assert not _no_turn_crash(caplog.records)
    assert not problems(out, parts.catalog, need_cards=True), (problems(out, parts.catalog, need_cards=True),
                                                               out.text[:300])
    assert any(n.kind == "fallback" for n in out.notices), f"{mode}: no fallback notice in {out.notices}"
    assert BOGUS_ID not in {c.item_id for c in out.cards}
    # The session is still usable: the next turn answers too (the server still failing, fast).
    proxy.set_mode("http500")
    try:
        with caplog.at_level(logging.INFO):
            out2 = run(engine.turn(session, "more like that" if lang == "en" else "비슷한 거 더 보여줘"))
    finally:
        proxy.set_mode("pass")
    assert not problems(out2, parts.catalog, need_cards=True), out2.text[:300]
    assert not ({c.item_id for c in out2.cards} & {c.item_id for c in out.cards}), "cards repeated"
    print(f"\n{mode}: {injected} request(s) damaged, turn {out.latency_s:.1f} s, notices "
          f"{[n.kind for n in out.notices]}")


def test_llm_server_killed_mid_session(parts, llama_server_disposable, caplog):
    engine = engine_with_llm(parts, **_llm_settings(llama_server_disposable.base_url, SLOW_TIMEOUT_S))
    session = engine.new_session(language="ko")
    liked = parts.built.movies.catalog.ids[0]
    run(engine.feedback(session, liked, "like"))  # the session has history before the server goes away
    assert llama_server_disposable.alive()
    llama_server_disposable.stop()
    with caplog.at_level(logging.INFO):
        out = run(engine.turn(session, "다른 SF 영화도 추천해 줘"))
    assert not _no_turn_crash(caplog.records)
    assert not problems(out, parts.catalog, need_cards=True), out.text[:300]
    assert any(n.kind == "fallback" for n in out.notices), out.notices
    assert not ({c.item_id for c in out.cards} & set(session.disliked))
