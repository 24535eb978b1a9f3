"""The LLM parser fills the same typed Request as the rules: scripted fakes for behaviour, the real llama.cpp server
for wiring (schema accepted, answer parsed, grounded through the resolver).

What must hold whatever the LLM says: titles only through the resolver (an invented or unknown title is dropped),
cards only by a valid position, genres only from the catalog's genre list, the rules' reading kept where the LLM
says nothing, and any failure leaves the rules' request in place with the failure kind reported.
"""
from __future__ import annotations

import pytest

from chatrec.llm import LLMError, OpenAICompatibleLLM
from chatrec.request import Wish
from chatrec.session import Session
from chatrec.understand import Understander, request_schema
from retrieval.people import PeopleIndex
from retrieval.title_resolver import TitleResolver
from retrieval.types import Catalog, Item
from tests.test_llm_parsing import ScriptedLLM

CATALOG = Catalog([
    Item(id="t:1", title="The Matrix", year=1999, genres=("Action", "Sci-Fi")),
    Item(id="t:2", title="Groundhog Day", year=1993, genres=("Comedy", "Romance")),
    Item(id="t:3", title="Inception", year=2010, genres=("Action", "Sci-Fi", "Thriller")),
    Item(id="t:4", title="Alien", year=1979, genres=("Horror", "Sci-Fi"), directors=("Ridley Scott",)),
], "tiny")


def _answer(**kw):
    base = {"intent": "recommend", "domain": "same", "titles": [], "card": 0, "genres": [], "exclude_genres": [],
            "people": [], "year_from": None, "year_to": None, "tones": [], "follow_up": False, "query": ""}
    base.update(kw)
    return base


def _und(llm):
    return Understander(CATALOG, TitleResolver(CATALOG, aliases=None), llm, people=PeopleIndex([CATALOG]))


def test_llm_titles_go_through_the_resolver_and_invented_ones_are_dropped():
    llm = ScriptedLLM(_answer(titles=[{"title": "inception", "polarity": "like"},
                                      {"title": "Hackers 2: Zero Cool Returns", "polarity": "like"},
                                      {"title": "The Matrix", "polarity": "seen"}],
                              genres=["Sci-Fi", "Horror"], exclude_genres=["Horror"], tones=["dark"]))
    msg = "something in the spirit of inception or hackers 2 zero cool returns, dark please"
    req, fails = _und(llm).understand(msg, Session())
    assert llm.calls == 1 and not fails and req.via == "llm"
    assert [(r.item_id, r.polarity) for r in req.refs] == [("t:3", "like")]
    assert req.wish.anchors == ["t:3"]
    assert req.wish.genres == ["Sci-Fi"] and req.wish.exclude_genres == ["Horror"] and "dark" in req.wish.tones
    assert any("not resolved" in n for n in req.notes)
    assert any("not in the message" in n for n in req.notes)  # The Matrix was never said: no seen mark


def test_the_rules_reading_stays_where_the_llm_is_silent():
    llm = ScriptedLLM(_answer())
    req, _ = _und(llm).understand("I loved The Matrix, a 90s comedy please", Session())
    assert ("t:1", "like") in {(r.item_id, r.polarity) for r in req.refs}
    assert req.wish.genres == ["Comedy"] and req.wish.year_from == 1990


def test_a_card_reference_must_be_a_card_on_screen():
    s = Session(last_cards=["t:2", "t:4"])
    msg = "something in the style of the spooky one you showed"
    req, _ = _und(ScriptedLLM(_answer(card=2, follow_up=True))).understand(msg, s)
    assert ("t:4", "like") in {(r.item_id, r.polarity) for r in req.refs}
    req, _ = _und(ScriptedLLM(_answer(card=9))).understand(msg, Session(last_cards=["t:2"]))
    assert not req.refs


def test_the_llm_can_name_off_topic_but_not_override_the_rules_titles():
    req, _ = _und(ScriptedLLM(_answer(intent="off_topic"))).understand("what is the capital of France", Session())
    assert req.intent == "off_topic"
    req, _ = _und(ScriptedLLM(_answer(intent="off_topic"))).understand("I loved The Matrix so much", Session())
    assert req.intent == "recommend" and req.liked == ["t:1"]


@pytest.mark.parametrize("error", [LLMError("down", "unavailable"), LLMError("slow", "timeout"),
                                   LLMError("bad", "bad_output")])
def test_failures_keep_the_rules_request_and_say_why(error):
    req, fails = _und(ScriptedLLM(error)).understand("a funny sci-fi movie like The Matrix", Session())
    assert fails == [error.kind] and req.via == "rules"
    assert set(req.wish.genres) == {"Comedy", "Sci-Fi"} and req.liked == ["t:1"]


def test_malformed_json_is_a_failure_not_a_crash():
    req, fails = _und(ScriptedLLM('{"intent": "recommend", "titles": [')).understand("a funny sci-fi movie", Session())
    assert fails and req.wish.genres


def test_not_asked_when_the_rules_are_sure():
    llm = ScriptedLLM(_answer())
    und = _und(llm)
    und.understand("hi", Session())
    und.understand("more", Session(state=Wish(genres=["Comedy"]).model_dump()))
    und.understand("tell me about Alien", Session())
    assert llm.calls == 0


@pytest.mark.llm_server
def test_real_server_fills_the_request_schema(llama_server):
    """Wiring with llama.cpp: the schema is accepted, the answer parses, and whatever the small model says is
    grounded (only catalog titles, only catalog genres)."""
    llm = OpenAICompatibleLLM(base_url=llama_server.base_url, api_key="", model="local", max_tokens=220,
                              timeout_s=120, max_retries=0)
    und = _und(llm)
    req, fails = und.understand("I loved The Matrix. Recommend a dark sci-fi movie from the 90s.", Session())
    assert not fails, fails
    assert req.via == "llm"
    assert all(r.item_id in CATALOG for r in req.refs)
    assert set(req.wish.genres) <= {"Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary",
                                    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
                                    "Sci-Fi", "Thriller", "War", "Western"}
    assert ("t:1", "like") in {(r.item_id, r.polarity) for r in req.refs}  # the rules' reading is kept
    assert request_schema()["required"]
