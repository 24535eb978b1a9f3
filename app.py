"""Chat-REC web app — the composition root: settings → bootstrap (data, ALS, knowledge, LLM, engine) → UI → launch.

    python app.py                                  # http://127.0.0.1:7860, no LLM (rule-based mode)
    python app.py --llm-base-url http://127.0.0.1:8080/v1 --llm-model local   # any OpenAI-compatible server
    OPENAI_API_KEY=... python app.py --llm-backend openai --llm-model gpt-4o-mini
    python app.py --check                          # build everything, run a scripted turn in the terminal, exit

Every setting is a flag here and a CHATREC_* environment variable (see chatrec/settings.py).
"""
from __future__ import annotations

import logging
import sys
import time
from typing import Sequence

from chatrec.settings import Settings, build_parser, from_args, redact_urls

CHECK_MESSAGES = ("Recommend movies like The Matrix", "인터스텔라 같은 영화 추천해줘")


def parse(argv: Sequence[str] | None):
    parser = build_parser("app.py")
    extra = parser.add_argument_group("app")
    extra.add_argument("--check", action="store_true",
                       help="build everything, run scripted turns in the terminal (replies + card titles) and exit")
    extra.add_argument("--check-message", action="append", default=None, metavar="TEXT",
                       help="run --check with this message (repeatable; default: one English and one Korean request)")
    extra.add_argument("--index-limit", type=int, default=None, metavar="N",
                       help="index only the N most-rated movies and N most popular books in Chroma (quick demos)")
    return from_args(argv, parser=parser)


def ui_config(built):
    """What the page shows about this configuration."""
    from ui.gradio_app import UIConfig

    s: Settings = built.settings
    # Shown to every visitor (and eight times in /config): a base URL may carry user:password or ?api-key=.
    llm_choices = (redact_urls(f"{s.llm_backend} · {built.llm.describe()}"), "none") if s.llm_enabled else ("none",)
    modes = ["score"]
    if s.llm_enabled:
        modes.insert(0, "llm")
    if s.scorer_model:
        modes.append("lm")
    if s.rerank == "cllm" and built.scorer is not None:  # the CLLM4Rec model loaded (bootstrap._load_cllm)
        modes.append("cllm")
    if s.rerank in modes:  # the configured mode first = the default on the page
        modes.remove(s.rerank)
        modes.insert(0, s.rerank)
    domains = ("movie", "book") if built.books is not None else ("movie",)
    return UIConfig(llm_choices=tuple(llm_choices), rerank_modes=tuple(modes), n_recs=min(s.n_recs, 10),
                    domains=domains, notes=tuple(built.notes))


def run_check(engine, messages: Sequence[str]) -> int:
    """One scripted conversation in the terminal: prints the streamed reply and the card titles of each turn."""
    from chatrec.events import Cards, Notice, TextChunk

    session = engine.new_session(language="en")
    ok = True
    for msg in messages:
        print(f"\n> {msg}")
        t0 = time.perf_counter()
        cards = ()
        for ev in engine.turn(session, msg):
            if isinstance(ev, TextChunk):
                print(ev.text, end="", flush=True)
            elif isinstance(ev, Notice):
                print(f"\n[{ev.kind}] {ev.text}", end="")
            elif isinstance(ev, Cards):
                cards = ev.cards
        print(f"\n({time.perf_counter() - t0:.1f} s, {len(cards)} cards)")
        for c in cards:
            print(f"  - {c.label} [{c.item_id}] — {c.source}")
        ok &= bool(cards)
    print("\ncheck:", "OK" if ok else "FAILED (a turn produced no recommendations)")
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    settings, ns = parse(argv)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.log_level.upper() != "DEBUG":
        # HTTP clients log every LLM request at INFO, which would bury the app's own lines.
        for noisy in ("httpx", "httpx2", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    log = logging.getLogger("app")
    log.info("settings: %s", settings.redacted())

    from chatrec.bootstrap import bootstrap
    from chatrec.llm import LLMError
    from retrieval.datasets import DatasetError

    t0 = time.perf_counter()
    try:
        built = bootstrap(settings, index_limit=ns.index_limit)
    except (DatasetError, LLMError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    log.info("status: %s", redact_urls(built.engine.status()))
    if ns.check or ns.check_message:
        return run_check(built.engine, ns.check_message or CHECK_MESSAGES)

    from ui.gradio_app import build_ui, launch_ui
    from ui.sessions import SessionLimits

    limits = SessionLimits(idle_s=settings.session_idle_s, max_sessions=settings.max_sessions)
    demo = build_ui(built.engine, ui_config(built), concurrency=settings.concurrency, engine_for=built.engine_for,
                    limits=limits)
    log.info("ready in %.1f s: open http://%s:%d", time.perf_counter() - t0, settings.host, settings.port)
    launch_ui(demo, host=settings.host, port=settings.port, share=settings.share, auth=settings.login(), limits=limits,
              allowed_hosts=[h for h in settings.allowed_hosts.split(",") if h.strip()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
