"""How many updates a chat turn sends to the page. Every update costs the server a postprocess of all the page's
outputs, so a fast turn goes out once; a slow one (an LLM writing) shows its progress line, cards and words as they
come. The event source is scripted here to control timing; the real engine and app are in test_ui_api.py."""
from __future__ import annotations

import time
from types import SimpleNamespace

from chatrec.events import Cards, Notice, TextChunk
from ui.gradio_app import STREAM_INTERVAL_S, ChatController, UIConfig


class TimedEvents:
    """An engine whose turn yields scripted (delay_s, event) pairs."""

    def __init__(self, script):
        self.script = script

    def new_session(self, language="en"):
        return SimpleNamespace(language=language, liked=[])

    def turn(self, session, message, *, domain=None):
        for delay, ev in self.script:
            time.sleep(delay)
            yield ev

    def item(self, item_id):
        return None


def updates(script, llm="none") -> list[str]:
    ctl = ChatController(TimedEvents(script), UIConfig(llm_choices=(llm,)))
    conv = ctl.new_conversation("en")
    return [out[1][-1]["content"] for out in ctl.respond("hello", conv, "en")]


def test_a_fast_turn_is_one_update():
    out = updates([(0, TextChunk("Here are ")), (0, TextChunk("five picks.")), (0, Cards(()))])
    assert len(out) == 1 and "five picks." in out[0]


def test_a_slow_turn_streams_its_progress_cards_and_words():
    gap = STREAM_INTERVAL_S * 1.5
    script = [(0, Notice("Looking…", "progress")), (gap, Cards(())), (gap, TextChunk("One ")),
              (gap, TextChunk("two ")), (gap, TextChunk("three."))]
    out = updates(script, llm="openai")
    assert "Looking…" in out[0]  # the progress line first, at once
    assert len(out) >= 5  # progress, cards, then the words as they come, then the final text
    assert out[-1].endswith("three.") and "Looking…" not in out[-1]
    assert any(o.endswith("One") or o.endswith("One ") for o in out[1:-1])


class PageEngine(TimedEvents):
    def status(self, language="en"):
        return "ready"

    def search_titles(self, prefix, k=10):
        return []


def test_the_queue_keeps_no_event_history():
    """Gradio rebuilds a pandas summary of its kept events after every event (for /monitoring, which is off)."""
    from ui.gradio_app import build_ui

    demo = build_ui(PageEngine([]), UIConfig())
    assert demo._queue.ANALYTICS_MAX_EVENTS == 1
