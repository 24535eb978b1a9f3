"""Helpers shared by the reliability tests: build the real app parts once, drain turns, judge answers."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

from chatrec.eval.expectations import HTML_TAG, LeakDetector, TurnOutcome, load_system_prompts
from chatrec.eval.simulator import timed_events
from tests.conftest import SHARED_DATA, TEST_CACHE

# Same cache and index size as tests/test_ui_api.py, so the Chroma index built there is reused (and vice versa).
INDEX_LIMIT = 1500
APP_CACHE = TEST_CACHE / "app"


def base_settings(**kw):
    from chatrec.settings import Settings

    defaults = dict(data_dir=SHARED_DATA, cache_dir=APP_CACHE, allow_download=False, llm_backend="none",
                    rerank="score")
    defaults.update(kw)
    return Settings(**defaults)


@dataclass
class Parts:
    """The bootstrapped app (no LLM) plus the catalog every card id is checked against."""

    built: object
    catalog: object

    @property
    def engine(self):
        return self.built.engine


def build_parts(**settings_kw) -> Parts:
    from chatrec.bootstrap import bootstrap

    built = bootstrap(base_settings(**settings_kw), index_limit=INDEX_LIMIT, progress=False)
    catalog = built.movies.catalog
    if built.books is not None:
        catalog = catalog.merged(built.books.catalog)
    return Parts(built, catalog)


def engine_with_llm(parts: Parts, **settings_kw):
    """A second Engine over the same fitted parts, with an LLM configured by `settings_kw`."""
    from chatrec.engine import Engine
    from chatrec.llm import make_llm

    b = parts.built
    settings = b.settings.replace(**settings_kw)
    return Engine(b.movies.catalog, als=b.als, popularity=b.popularity, knowledge=b.knowledge, resolver=b.resolver,
                  llm=make_llm(settings), settings=settings,
                  books_catalog=b.books.catalog if b.books is not None else None)


_LEAK = None


def leak_detector() -> LeakDetector:
    global _LEAK
    if _LEAK is None:
        prompts = load_system_prompts()
        assert prompts, "chatrec.prompts.system_prompts() returned nothing to check replies against"
        _LEAK = LeakDetector(prompts)
    return _LEAK


def run(events: Iterable[object]) -> TurnOutcome:
    """Drain a turn. An exception escaping the engine is re-raised: the engine promises never to raise."""
    got, err, total, first = timed_events(events)
    if err is not None:
        raise AssertionError(f"engine raised: {err}")
    return TurnOutcome.from_events(got, latency_s=total, first_event_s=first)


def problems(out: TurnOutcome, catalog, *, need_cards: bool = False, max_reply_chars: int = 20_000) -> list[str]:
    """Everything wrong with one answer (empty list = fine)."""
    bad = []
    if not (out.text.strip() or any(n.text.strip() for n in out.notices if n.kind != "progress")):
        bad.append("empty answer")
    if need_cards and not out.cards:
        bad.append("no cards")
    m = HTML_TAG.search(out.visible_text)
    if m:
        bad.append(f"HTML in reply: {m.group(0)[:80]!r}")
    leak = leak_detector().find(out.visible_text)
    if leak:
        bad.append(f"system prompt text in reply: {leak!r}")
    stray = [c.item_id for c in out.cards if c.item_id not in catalog]
    if stray:
        bad.append(f"card ids not in catalog: {stray}")
    if len(out.text) > max_reply_chars:
        bad.append(f"reply of {len(out.text):,} chars (echoing the input?)")
    return bad


def logged_exceptions(records: Iterable[logging.LogRecord]) -> list[str]:
    """Exceptions the engine caught and logged (a caught exception is still a bug in the turn)."""
    return [f"{r.name}: {r.getMessage()} ({r.exc_info[0].__name__ if r.exc_info and r.exc_info[0] else ''})"
            for r in records if r.levelno >= logging.ERROR or r.exc_info]
