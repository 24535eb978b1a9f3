"""`chatrec-eval redial`: the engine on real recommendation dialogues (redial-dev), scored per target as CRSLab does.

    chatrec-eval redial --data-dir ../shared/data --variants text,replay,likes --out runs/redial
    chatrec-eval redial --dataset ml-1m --data-dir ../shared/data --limit 100

Variants (chatrec/eval/redial_data.py loads the cases):
- `text`: the seeker's lines so far as one message to a fresh session;
- `replay`: the seeker's lines as turns of one session (the engine's own earlier cards are not excluded at the
  last turn: a human recommender may well suggest them);
- `likes`: `text` plus the questionnaire likes as liked items (an oracle: a live user does not give them).

Per (case, target) instance: is the target among the top k of the engine's ranking after the context movies are
removed? Reported: R@1/10/50 with standard errors, per-case any-hit, the popularity floor from the same cases, where
the hits came from (which candidate source ranked them), title-resolution precision/recall on the seeker lines,
and latency. Every setting honours the CHATREC_* environment variables like the app (chatrec/settings.py).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from chatrec.eval.redial_data import RedialCase, load_cases, load_ko_cases, measure_ko_mentions, measure_mentions
from chatrec.eval.split import PARTS, select
from chatrec.eval.report import Report, markdown_table
from chatrec.settings import Settings, build_parser, from_args

log = logging.getLogger("chatrec.eval.redial")

VARIANTS = ("text", "replay", "likes")
KS = (1, 10, 50)


@dataclass
class VariantResult:
    name: str
    hits: dict[int, list[int]] = field(default_factory=lambda: {k: [] for k in KS})  # per instance, 0/1
    case_hits: dict[int, list[int]] = field(default_factory=lambda: {k: [] for k in KS})  # per case, any target
    sources: Counter = field(default_factory=Counter)  # source of each hit@50
    latency: list[float] = field(default_factory=list)
    rankings: dict[str, list[str]] = field(default_factory=dict)  # case key → ranked ids (for the ranker)
    # What the user sees: seeker lines answered with the off-topic reply, and final turns that show no cards.
    lines_sent: int = 0
    lines_refused: int = 0
    last_refused: int = 0
    last_no_cards: int = 0
    refused_examples: list[str] = field(default_factory=list)

    def recall(self, k: int) -> tuple[float, float]:
        xs = self.hits[k]
        p = sum(xs) / max(len(xs), 1)
        return p, math.sqrt(p * (1 - p) / max(len(xs), 1))

    def any_hit(self, k: int) -> float:
        xs = self.case_hits[k]
        return sum(xs) / max(len(xs), 1)


def case_key(c: RedialCase) -> str:
    return f"{c.dialogue_id}:{c.turn_index}"


def score_case(result: VariantResult, case: RedialCase, ranked: Sequence[str], sources: dict[str, tuple]) -> None:
    context = set(case.context_ids)
    ranked = [i for i in ranked if i not in context][:max(KS)]
    pos = {i: n for n, i in enumerate(ranked)}
    for k in KS:
        per = [int(t in pos and pos[t] < k) for t in case.targets]
        result.hits[k] += per
        result.case_hits[k].append(int(any(per)))
    for t in case.targets:
        if t in pos:
            for s in sources.get(t, ("?",)):
                result.sources[s] += 1
    result.rankings[case_key(case)] = ranked


def popularity_ranking(engine, k: int = 200) -> list[str]:
    """All catalog movies by rating count, ties by smaller id (the floor of the redial-dev README)."""
    pop = engine.popularity
    ids = sorted(pop.count, key=lambda i: (-pop.count[i], int(i.split(":")[1]) if i.split(":")[1].isdigit() else 0))
    return ids[:k]


def _reply(engine, session, message: str) -> tuple[str, bool]:
    """The reply text and whether the turn showed cards."""
    from chatrec.events import Cards, TextChunk

    text, cards = [], False
    for ev in engine.turn(session, message):
        if isinstance(ev, TextChunk):
            text.append(ev.text)
        elif isinstance(ev, Cards) and ev.cards:
            cards = True
    return "".join(text), cards


def _refused(engine, reply: str, lang: str) -> bool:
    from chatrec import prompts

    return reply.strip().startswith(prompts.msg("off_topic", lang).strip()[:40])


def run_variant(engine, cases: Sequence[RedialCase], variant: str, progress: bool = True,
                lang: str = "en") -> VariantResult:
    res = VariantResult(variant)
    for case in tqdm(cases, desc=f"redial {variant}", unit="case", disable=not progress):
        lines = [ln.text for ln in case.seeker_lines if ln.text.strip()]
        t0 = time.perf_counter()
        session = engine.new_session(lang)
        if variant == "likes":
            for i in case.liked:
                if engine.item(i) is not None:
                    session.like(i)
        if variant == "replay" and len(lines) > 1:
            for line in lines[:-1]:
                reply, _ = _reply(engine, session, line)
                res.lines_sent += 1
                if _refused(engine, reply, lang):
                    res.lines_refused += 1
                    res.refused_examples.append(line[:100])
            message = lines[-1]
        else:
            message = "\n".join(lines)
        final = session.copy()
        if variant == "replay":
            session.shown = []  # the engine's own earlier picks stay eligible at the last turn
            session.last_cards = []
        cands = engine.rank(session, message, k=max(KS) + len(case.context_ids))
        res.latency.append(time.perf_counter() - t0)
        score_case(res, case, cands.ids, {c.id: c.sources for c in cands.candidates})
        if variant != "likes" and message:
            reply, cards = _reply(engine, final, message)  # what the user would see for the last line
            res.lines_sent += 1
            if _refused(engine, reply, lang):
                res.lines_refused += 1
                res.last_refused += 1
                res.refused_examples.append(message[:100])
            res.last_no_cards += not cards
    return res


def popularity_floor(engine, cases: Sequence[RedialCase]) -> VariantResult:
    res = VariantResult("popularity")
    ranked = popularity_ranking(engine, 400)
    for case in cases:
        score_case(res, case, ranked, {i: ("popular",) for i in ranked})
    return res


# ------------------------------------------------------------------------------------------------ report
def results_table(results: Sequence[VariantResult]) -> tuple[list[str], list[list]]:
    headers = ["variant", "n", "R@1", "R@10", "R@50", "SE@50", "case any@10", "case any@50", "refused lines",
               "refused last", "no cards last", "p50 ms", "p95 ms"]
    rows = []
    for r in results:
        lat = sorted(r.latency) or [0.0]
        n_cases = max(len(r.case_hits[1]), 1)
        policy = ([f"{r.lines_refused / r.lines_sent:.1%}", f"{r.last_refused / n_cases:.1%}",
                   f"{r.last_no_cards / n_cases:.1%}"] if r.lines_sent else ["-", "-", "-"])
        rows.append([r.name, len(r.hits[1]), *(f"{r.recall(k)[0]:.3f}" for k in KS), f"{r.recall(50)[1]:.3f}",
                     f"{r.any_hit(10):.3f}", f"{r.any_hit(50):.3f}", *policy, f"{1000 * lat[len(lat) // 2]:.0f}",
                     f"{1000 * lat[int(len(lat) * 0.95)]:.0f}"])
    return headers, rows


def in_sample_warning(ranker) -> str:
    """A ranker learned from these very cases scores them in-sample: say so wherever its numbers are printed."""
    trained_on = str(getattr(ranker, "meta", {}).get("trained_on", ""))
    if "redial" not in trained_on:
        return ""
    return (f"IN-SAMPLE: the ranker ({trained_on}) was trained on these cases, so these figures overstate it; its "
            "honest estimate is the grouped cross-validation of `chatrec-eval ranker` (or rerun with "
            "--ranker-model none for the weighted sum).")


def write_report(out: Path, dataset: str, results: Sequence[VariantResult], titles: dict, settings: Settings,
                 n_cases: int, warning: str = "") -> Path:
    import matplotlib.pyplot as plt

    rep = Report(f"ReDial dev: conversational recommendation on {dataset}")
    rep.add(f"{n_cases} cases from `redial-dev` mapped to {dataset}; every (case, target) pair is one instance; "
            "context movies are removed from each ranking before scoring (CRSLab / iEvaLM convention). "
            f"Engine: no LLM, score order, {settings.als_factors} ALS factors. Published systems on ReDial's own "
            "item set (indicative only): KGSF .039/.183/.378, UniCRS .050/.215/.413, zero-shot GPT-4 R@10 .201.")
    if warning:
        rep.add(f"**{warning}**")
    headers, rows = results_table(results)
    rep.add_table(headers, rows, "Recall per target (SE: binomial standard error)")
    src_rows = []
    for r in results:
        total = sum(r.sources.values()) or 1
        src_rows.append([r.name] + [f"{r.sources.get(s, 0)} ({r.sources.get(s, 0) / total:.0%})"
                                    for s in ("als", "similar", "search", "people", "theme", "popular")])
    rep.add_table(["variant", "als", "similar", "search", "people", "theme", "popular"], src_rows,
                  "Where the hits@50 came from (a hit counts for every source that ranked it)")
    if titles:
        rep.add_table(["accepted", "precision", "gold", "recall"],
                      [[titles["accepted"], f"{titles['precision']:.1%}", titles["gold"], f"{titles['recall']:.1%}"]],
                      "Title resolution on the seeker lines (benchmarks/title_mentions.py)")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / max(len(results), 1)
    for n, r in enumerate(results):
        vals = [r.recall(k)[0] for k in KS]
        errs = [r.recall(k)[1] for k in KS]
        ax.bar(np.arange(len(KS)) + n * width, vals, width, yerr=errs, label=r.name, capsize=2)
    ax.set_xticks(np.arange(len(KS)) + width * (len(results) - 1) / 2)
    ax.set_xticklabels([f"R@{k}" for k in KS])
    ax.set_ylabel("recall per target")
    ax.legend(fontsize=8)
    ax.set_title(f"redial-dev on {dataset}")
    rep.add_figure(fig, "recall", "Recall@k per variant, with the popularity floor")
    return rep.write(out)


def build_redial_parser() -> argparse.ArgumentParser:
    p = build_parser(prog="chatrec-eval redial")
    g = p.add_argument_group("redial evaluation")
    g.add_argument("--variants", default="text,replay,likes", help=f"comma-separated, from {VARIANTS}")
    g.add_argument("--limit", type=int, default=None, help="evaluate only the first N cases")
    g.add_argument("--cases", choices=("redial", "ko", "en-ko"), default="redial",
                   help="redial-dev (English), or redial-ko-dev in Korean (ko) or in its English originals (en-ko)")
    g.add_argument("--part", choices=PARTS, default="all",
                   help="dev, held-out (annotations/SPLIT.md) or all dialogues")
    g.add_argument("--show-refused", type=int, default=0, metavar="N", help="print N lines that got the off-topic reply")
    g.add_argument("--index-limit", type=int, default=None, help="index only the N most-rated movies (+N books)")
    g.add_argument("--out", type=Path, default=Path("runs/redial"), help="output folder for report.md")
    g.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from chatrec.eval.dialogue import build_engine

    settings, ns = from_args(argv, parser=build_redial_parser())
    variants = [v.strip() for v in ns.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise SystemExit(f"unknown variant(s) {bad}; choose from {VARIANTS}")
    if settings.data_dir is None:
        raise SystemExit("redial needs the shared data folder: pass --data-dir DIR or set CHATREC_DATA_DIR")
    settings = settings.replace(llm_backend="none", rerank="score")
    built = build_engine(settings, "redial", index_limit=ns.index_limit, progress=not ns.no_progress)
    engine = built.engine
    lang = "ko" if ns.cases == "ko" else "en"
    if ns.cases == "redial":
        cases = load_cases(settings.data_dir, built.movies.catalog, settings.dataset)
    else:
        if settings.dataset != "ml-latest-small":
            raise SystemExit("redial-ko-dev is mapped to ml-latest-small only")
        cases = load_ko_cases(settings.data_dir, ns.cases)
    cases = select(cases, lambda c: c.dialogue_id, ns.part)
    if ns.limit:
        cases = cases[:ns.limit]
    print(f"{len(cases)} cases ({ns.cases}, {ns.part} part), session language {lang}")
    results = [popularity_floor(engine, cases)]
    for v in variants:
        results.append(run_variant(engine, cases, v, progress=not ns.no_progress, lang=lang))
    if ns.cases == "ko":
        en_cases = load_ko_cases(settings.data_dir, "en-ko")
        titles = measure_ko_mentions(cases, en_cases, built.movies.catalog, engine.understander.title_mentions)
    else:
        titles = measure_mentions(cases, built.movies.catalog, engine.understander.title_mentions)
    headers, rows = results_table(results)
    print(markdown_table(headers, rows))
    print(f"title resolution: precision {titles['precision']:.1%} recall {titles['recall']:.1%} "
          f"({titles['accepted']} accepted, {titles['gold']} gold)")
    for r in results:
        for line in r.refused_examples[:ns.show_refused]:
            print(f"  refused ({r.name}): {line!r}")
    warning = in_sample_warning(engine.assembler.ranker)
    if warning:
        print(warning)
    out = write_report(ns.out, settings.dataset, results, titles, settings, len(cases), warning)
    (ns.out / "results.json").write_text(json.dumps(
        {r.name: {f"recall@{k}": r.recall(k)[0] for k in KS} | {"n": len(r.hits[1])} for r in results}, indent=2))
    print(f"report: {out}")
    return 0
