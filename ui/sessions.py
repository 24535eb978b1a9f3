"""Server-side session lifetime: anonymous sessions expire when idle, and their number is capped.

Gradio keeps one `SessionState` per session hash (a copy of the page's component config plus the gr.State values,
~170 kB here) until 10,000 sessions are held; a client opening sessions in a loop would grow the server by gigabytes.
Three bounds:
- the conversation state (`gr.State`) lives `idle_s` after its last update (Gradio's own time-to-live);
- at most `max_sessions` sessions are held; beyond that the least recently used one goes (Gradio's LRU capacity);
- every `sweep_s` a daemon thread drops whole sessions idle for `idle_s`, then returns freed heap to the OS
  (glibc `malloc_trim`), so memory comes back after a burst instead of staying at its peak.
A user whose session expired keeps the conversation saved in the browser: the page restores it on the next load.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import datetime
import gc
import logging
import threading
from dataclasses import dataclass

import gradio as gr

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionLimits:
    idle_s: float = 1800.0
    max_sessions: int = 500
    sweep_s: float = 30.0


def expiring_state(factory, idle_s: float) -> gr.State:
    """gr.State living `idle_s` after its last update, whose page config does not publish its delete callback
    (Gradio writes the callback's repr, a function address, into /config). An instance override, not a subclass:
    Gradio's component metaclass writes a .pyi file beside the module of every component subclass at import."""
    state = gr.State(factory, time_to_live=idle_s)
    base = state.get_config

    def get_config(*args, **kwargs):
        config = base(*args, **kwargs)
        config.pop("delete_callback", None)
        return config

    state.get_config = get_config
    return state


def joined(blocks, session_hash: str) -> bool:
    """Has this session hash joined the queue of `blocks` (so its event stream exists)?"""
    queue = getattr(blocks, "_queue", None)
    return queue is not None and session_hash in queue.pending_messages_per_session


def drop_idle(state_holder, idle_s: float, now: datetime.datetime | None = None) -> int:
    """Remove the sessions not used for `idle_s` from Gradio's state holder; how many went."""
    now = now or datetime.datetime.now()
    cutoff = now - datetime.timedelta(seconds=idle_s)
    with state_holder.lock:
        idle = [sid for sid, t in state_holder.time_last_used.items() if t < cutoff]
        for sid in idle:
            session = state_holder.session_data.pop(sid, None)
            state_holder.time_last_used.pop(sid, None)
            if session is not None:
                for component, value, _ in session.state_components:
                    component.delete_callback(value)
    return len(idle)


def _trim_heap() -> None:
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the memory stays with the process until reused
        log.debug("malloc_trim is not available here")


def start_sweeper(blocks, limits: SessionLimits) -> threading.Thread:
    """A daemon thread that drops idle sessions of `blocks` (a launched gr.Blocks) every `limits.sweep_s`."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(limits.sweep_s):
            holder = getattr(blocks, "state_holder", None)
            if holder is None:
                continue
            n = drop_idle(holder, limits.idle_s)
            if n:
                gc.collect()
                _trim_heap()
                log.info("dropped %d idle sessions (%d held)", n, len(holder.session_data))

    t = threading.Thread(target=run, name="session-sweeper", daemon=True)
    t.stop = stop  # type: ignore[attr-defined]
    t.start()
    return t
