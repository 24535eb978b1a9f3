"""`chatrec-eval dialogue`: scripted KO/EN conversations with per-turn checks, and simulated users.

    chatrec-eval dialogue --scripts tests/dialogues/ --data-dir ../shared/data --out runs/dialogue
    chatrec-eval dialogue --simulate 200 --dataset ml-1m --turns 5 --data-dir ../shared/data --out runs/sim
    chatrec-eval dialogue --simulate 50 --dataset ml-1m --configs score,llm --llm-base-url http://127.0.0.1:8080/v1

Scripts are YAML files (see tests/dialogues/): a language, user turns or feedback steps, and `expect:` checks per turn
(chatrec/eval/expectations.py lists them). Simulated users come from chatrec/eval/simulator.py. Every configuration
in `--configs` gets its own engine (score order without an LLM; LLM rerank when --llm-base-url is given; the LM title
scorer) and one row in the comparison table. Output: report.md with PNG plots, results.json and run.log in --out.
The API key is never written: settings are logged in redacted form and every output is scrubbed of the key.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from tqdm import tqdm

from chatrec.events import Cards
from chatrec.eval.expectations import (Check, DialogueState, Expectations, LeakDetector, TurnOutcome, check_turn,
                                       load_system_prompts)
from chatrec.eval.report import Report
from chatrec.eval.split import PARTS, select
from chatrec.eval.simulator import SimDialogue, run_dialogue, sample_users, summarize, timed_events
from chatrec.settings import Settings, build_parser, from_args

log = logging.getLogger("chatrec.eval.dialogue")

CONFIGS = ("score", "llm", "lm")


class ScriptError(ValueError):
    """A dialogue script is malformed; the message names the file and the field to fix."""


# ------------------------------------------------------------------------------------------------ scripts
class FeedbackStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["like", "dislike", "seen"]
    card: int | None = None  # 1-based position in the cards shown by the previous turn
    title: str | None = None  # or a title: looked up among shown cards first, then in the catalog

    @model_validator(mode="after")
    def _one_target(self):
        if (self.card is None) == (self.title is None):
            raise ValueError("feedback needs exactly one of `card` (1-based) or `title`")
        if self.card is not None and self.card < 1:
            raise ValueError("feedback `card` is 1-based")
        return self


class ScriptTurn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    user: str | None = None
    feedback: FeedbackStep | None = None
    expect: Expectations = Expectations()

    @model_validator(mode="after")
    def _one_action(self):
        if (self.user is None) == (self.feedback is None):
            raise ValueError("each turn needs exactly one of `user:` (a message) or `feedback:`")
        return self


class Script(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    language: Literal["ko", "en"]
    covers: str = ""
    category: str = ""  # behaviour-suite group (titles, negation, genres, follow-ups, references, people, …)
    description: str = ""
    turns: tuple[ScriptTurn, ...]

    @model_validator(mode="after")
    def _has_turns(self):
        if not self.turns:
            raise ValueError("a script needs at least one turn")
        return self


def load_script(path: Path) -> Script:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ScriptError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ScriptError(f"{path}: expected a mapping with name, language and turns")
    try:
        return Script.model_validate(data)
    except ValidationError as e:
        raise ScriptError(f"{path}: {e}") from None


def load_scripts(folder: Path | str, names: Sequence[str] | None = None) -> list[Script]:
    """All *.yaml scripts in `folder` (sorted by file name), or only those whose `name` is in `names`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ScriptError(f"script folder {folder} does not exist; pass --scripts DIR with *.yaml dialogue scripts")
    scripts = [load_script(p) for p in sorted(folder.glob("*.yaml"))]
    if names:
        wanted = set(names)
        scripts = [s for s in scripts if s.name in wanted]
        missing = wanted - {s.name for s in scripts}
        if missing:
            raise ScriptError(f"no script named {sorted(missing)} in {folder}")
    if not scripts:
        raise ScriptError(f"no *.yaml scripts in {folder}")
    return scripts


@dataclass
class TurnResult:
    index: int
    action: str  # the user message, or "feedback dislike #1"
    reply: str
    cards: list[str]
    notices: list[str]
    latency_s: float
    checks: list[Check]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


@dataclass
class ScriptResult:
    script: Script
    turns: list[TurnResult] = field(default_factory=list)

    @property
    def checks(self) -> list[Check]:
        return [c for t in self.turns for c in t.checks]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


def _titles_index(catalog) -> dict[str, list[str]]:
    from retrieval.titles import title_key

    idx: dict[str, list[str]] = {}
    for it in catalog:
        idx.setdefault(title_key(it.title), []).append(it.id)
    return idx


def _feedback_target(step: FeedbackStep, last_cards: Sequence, catalog, titles: dict[str, list[str]]) -> str:
    from retrieval.titles import title_key

    if step.card is not None:
        if step.card > len(last_cards):
            raise ScriptError(f"feedback on card {step.card} but the previous turn showed {len(last_cards)} cards")
        return last_cards[step.card - 1].item_id
    key = title_key(step.title)
    for c in last_cards:
        if title_key(c.title) == key:
            return c.item_id
    ids = titles.get(key)
    if not ids:
        raise ScriptError(f"feedback title {step.title!r} is not in the catalog; fix the script")
    return ids[0]


def run_script(engine, script: Script, catalog, leak: LeakDetector, titles: dict[str, list[str]] | None = None
               ) -> ScriptResult:
    """Play one script against the engine and judge every turn."""
    titles = titles if titles is not None else _titles_index(catalog)
    state = DialogueState(catalog=catalog, leak=leak, catalog_titles=tuple(titles_display(catalog)))
    session = engine.new_session(language=script.language)
    result = ScriptResult(script)
    last_cards: tuple = ()
    for i, turn in enumerate(script.turns, start=1):
        if turn.user is not None:
            action = turn.user
            events = engine.turn(session, turn.user)
        else:
            try:
                item_id = _feedback_target(turn.feedback, last_cards, catalog, titles)
            except ScriptError as e:
                result.turns.append(TurnResult(i, f"feedback {turn.feedback.kind}", "", [], [], 0.0,
                                               [Check("feedback_target", False, str(e))]))
                continue
            action = f"feedback {turn.feedback.kind} {item_id}"
            if turn.feedback.kind == "dislike":
                state.disliked.add(item_id)
            events = engine.feedback(session, item_id, turn.feedback.kind)
        got, err, total, first = timed_events(events)
        out = TurnOutcome.from_events(got, error=err, latency_s=total, first_event_s=first)
        state.prev_cards = tuple(last_cards)
        checks = check_turn(turn.expect, out, state, session)
        if any(isinstance(e, Cards) for e in got):
            last_cards = out.cards
            if turn.user is not None:
                state.shown.extend(c.item_id for c in out.cards)
        result.turns.append(TurnResult(i, action, out.text, [c.item_id for c in out.cards],
                                       [f"{n.kind}: {n.text}" for n in out.notices], total, checks))
    return result


def titles_display(catalog) -> list[str]:
    return [it.title for it in catalog]


def run_scripts(engine, scripts: Sequence[Script], catalog, progress: bool = True) -> list[ScriptResult]:
    leak = LeakDetector(load_system_prompts())
    titles = _titles_index(catalog)
    return [run_script(engine, s, catalog, leak, titles)
            for s in tqdm(scripts, desc="dialogue scripts", unit="script", disable=not progress)]


# ------------------------------------------------------------------------------------------------ engines
@dataclass
class BuiltEngine:
    name: str
    engine: object
    catalog: object  # movies (+ books) catalog: card ids are checked against it
    movies: object  # the movie Dataset (simulated users come from its ratings)
    settings: Settings


def config_settings(base: Settings, name: str) -> Settings:
    """The settings of one compared configuration."""
    if name == "score":
        return base.replace(rerank="score", llm_backend="none")
    if name == "llm":
        if not base.llm_base_url:
            raise ValueError("config 'llm' needs --llm-base-url (an OpenAI-compatible server such as llama.cpp)")
        return base.replace(rerank="llm", llm_backend="openai" if base.llm_backend == "none" else base.llm_backend)
    if name == "lm":
        return base.replace(rerank="lm")
    raise ValueError(f"unknown config {name!r}; choose from {CONFIGS}")


def build_engine(settings: Settings, name: str = "default", *, index_limit: int | None = None,
                 progress: bool = True) -> BuiltEngine:
    from chatrec.bootstrap import bootstrap

    built = bootstrap(settings, index_limit=index_limit, progress=progress)
    catalog = built.movies.catalog
    if built.books is not None:
        catalog = catalog.merged(built.books.catalog)
    for note in built.notes:
        log.warning("%s: %s", name, note)
    return BuiltEngine(name, built.engine, catalog, built.movies, settings)


# ------------------------------------------------------------------------------------------------ report
def _scrub(text: str, secrets: Sequence[str]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


CATEGORY_COLUMNS = ["category", "scripts passed", "checks passed", "script pass rate"]


def category_rows(results: Sequence[ScriptResult]) -> list[list]:
    """One row per script `category` (scripts without one count as "-"), sorted by name, then an "all" row."""
    groups: dict[str, list[ScriptResult]] = {}
    for r in results:
        groups.setdefault(r.script.category or "-", []).append(r)

    def row(label: str, rs: Sequence[ScriptResult]) -> list:
        n_pass = sum(r.passed for r in rs)
        checks = [c for r in rs for c in r.checks]
        return [label, f"{n_pass}/{len(rs)}", f"{sum(c.passed for c in checks)}/{len(checks)}",
                f"{n_pass / len(rs):.3f}" if rs else "-"]

    return [row(k, groups[k]) for k in sorted(groups)] + [row("all", list(results))]


def scripts_section(report: Report, name: str, results: Sequence[ScriptResult]) -> None:
    rows = []
    for r in results:
        checks = r.checks
        failed = [c for c in checks if not c.passed]
        rows.append([r.script.name, r.script.language, r.script.covers, len(r.script.turns),
                     f"{len(checks) - len(failed)}/{len(checks)}", "PASS" if not failed else "FAIL",
                     "; ".join(sorted({c.name for c in failed}))])
    n_pass = sum(r.passed for r in results)
    n_checks = sum(len(r.checks) for r in results)
    n_ok = sum(c.passed for r in results for c in r.checks)
    ko = sum(r.script.language == "ko" for r in results)
    report.add(f"## Scripted dialogues — {name}\n\n{n_pass}/{len(results)} scripts pass "
               f"({ko} Korean, {len(results) - ko} English); {n_ok}/{n_checks} checks pass.")
    if any(r.script.category for r in results):
        report.add_table(CATEGORY_COLUMNS, category_rows(results), caption="By category:")
    report.add_table(["script", "lang", "covers", "turns", "checks", "result", "failed checks"], rows)
    details = []
    for r in results:
        for t in r.turns:
            for c in t.checks:
                if not c.passed:
                    reply = " ".join(t.reply.split())[:160]
                    details.append(f"- **{r.script.name}** turn {t.index} `{c.name}`: {c.detail} — "
                                   f"reply: {reply!r}")
    if details:
        report.add("<details><summary>failed checks</summary>\n\n" + "\n".join(details) + "\n\n</details>")


SIM_COLUMNS = ["config", "users", "success@1", "success@3", "success@5", "avg turns to success", "hallucinated ids",
               "repeats", "disliked violations", "language match", "fallback rate", "turns without cards", "errors",
               "latency p50 s", "latency p95 s"]


def sim_row(name: str, m: dict) -> list:
    return [name, m["users"], m["success@1"], m["success@3"], m["success@5"], m["avg_turns_to_success"],
            m["hallucinated_ids"], m["repeats"], m["disliked_violations"], m["language_match"], m["fallback_rate"],
            m["empty_card_turns"], m["errors"], m["latency_p50_s"], m["latency_p95_s"]]


def sim_section(report: Report, metrics: dict[str, dict], turns: int, k: int, dataset: str, cumulative: bool,
                unavailable: dict[str, str]) -> None:
    import matplotlib.pyplot as plt

    n = max((m["users"] for m in metrics.values()), default=0)
    report.add(f"## Simulated users — {dataset}\n\nUp to {n} users per configuration (the `users` column; the "
               f"model configs may run on the first users only), at most {turns} turns, success = the "
               f"hidden target among the first k cards (k ≤ {k}). Each turn reveals one more attribute "
               f"(genre → era → director → actor → plot), {'restating all so far' if cumulative else 'one at a time'}; "
               "a miss dislikes the top card. The user accepts at rank ≤ k, so success@1 / @3 count dialogues whose "
               "accepted target was at rank ≤ 1 / ≤ 3. Half the users speak Korean, half English (Korean users' "
               "plot hints quote the English plot text). ALS was fitted on ratings that include the target (small "
               "leak; the session itself never sees the user's id).")
    report.add_table(SIM_COLUMNS, [sim_row(name, m) for name, m in metrics.items()], digits=3)
    for name, why in unavailable.items():
        report.add(f"- config `{name}` not run: {why}")
    per_turn = [[name, *(f"{v:.3f}" for v in m["success_by_turn"])] for name, m in metrics.items()]
    report.add_table(["config", *(f"turn {t}" for t in range(1, turns + 1))], per_turn,
                     caption="Success by turn (cumulative share of users whose target has appeared):")
    key = f"recall@{k}_by_turn"
    per_turn_r = [[name, *("-" if math.isnan(v) else f"{v:.3f}" for v in m[key])] for name, m in metrics.items()]
    report.add_table(["config", *(f"turn {t}" for t in range(1, turns + 1))], per_turn_r,
                     caption=f"Recall@{k} at turn t among users still searching at t:")
    if not metrics:
        return
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for name, m in metrics.items():
        ax.plot(range(1, turns + 1), m["success_by_turn"], marker="o", label=name)
    ax.set_xlabel("turn")
    ax.set_ylabel(f"success@{k} (cumulative)")
    ax.set_ylim(0, 1)
    ax.set_xticks(range(1, turns + 1))
    ax.grid(alpha=0.3)
    ax.legend()
    report.add_figure(fig, "success_by_turn", "Share of simulated users whose target appeared, by turn")
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for name, m in metrics.items():
        ax.hist(m["latencies"], bins=30, alpha=0.6, label=name)
    ax.set_xlabel("seconds per turn")
    ax.set_ylabel("turns")
    ax.legend()
    report.add_figure(fig, "latency_hist", "Latency per turn (all turns of all simulated users)")


# ------------------------------------------------------------------------------------------------ CLI
def _parser() -> argparse.ArgumentParser:
    p = build_parser(prog="chatrec-eval dialogue")
    p.description = __doc__.split("\n\n")[0]
    g = p.add_argument_group("dialogue harness")
    g.add_argument("--scripts", type=Path, help="folder of *.yaml dialogue scripts")
    g.add_argument("--only", nargs="*", help="run only the scripts with these names")
    g.add_argument("--part", choices=PARTS, default="all",
                   help="the scripts of one part (annotations/SPLIT.md, by file name): dev, heldout or all")
    g.add_argument("--simulate", type=int, default=0, metavar="N", help="number of simulated users")
    g.add_argument("--model-users", type=int, default=None, metavar="N",
                   help="simulate only the first N users for the llm / lm configs (a real LLM is slow on CPU)")
    g.add_argument("--turns", type=int, default=5, help="turns per simulated user")
    g.add_argument("--k", type=int, default=5, help="success when the target is among the first k cards")
    g.add_argument("--cumulative", action="store_true", help="simulated users restate every revealed attribute")
    g.add_argument("--no-dislike", action="store_true", help="simulated users do not dislike the top card on a miss")
    g.add_argument("--configs", default=None,
                   help="comma-separated configurations to compare: score,llm,lm (default: score, plus llm "
                        "when --llm-base-url is given, plus lm when --scorer-model is given)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--index-limit", type=int, default=None, help="index only the N most-rated movies (+N books)")
    g.add_argument("--out", type=Path, default=Path("runs/dialogue"), help="output folder for report.md")
    g.add_argument("--no-progress", action="store_true")
    return p


def _default_configs(s: Settings) -> list[str]:
    names = ["score"]
    if s.llm_base_url:
        names.append("llm")
    if s.scorer_model:
        names.append("lm")
    return names


def _setup_logging(out: Path, level: str) -> logging.Handler:
    out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out / "run.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    settings, ns = from_args(argv, parser=parser)
    if not ns.scripts and ns.simulate <= 0:
        parser.error("nothing to do: pass --scripts DIR and/or --simulate N")
    configs = [c.strip() for c in ns.configs.split(",")] if ns.configs else _default_configs(settings)
    progress = not ns.no_progress
    handler = _setup_logging(ns.out, settings.log_level)
    secrets = [settings.llm_api_key.get_secret_value()]
    try:
        log.info("settings: %s", json.dumps(settings.redacted(), default=str))
        scripts = select(load_scripts(ns.scripts, ns.only), lambda x: x.name, ns.part) if ns.scripts else []
        report = Report(f"Dialogue evaluation — {settings.dataset}")
        report.add(f"Configurations: {', '.join(configs)}. Dataset: {settings.dataset}. "
                   f"LLM server: {'given' if settings.llm_base_url else 'none'}.")
        results: dict = {"settings": settings.redacted(), "scripts": {}, "simulation": {}}
        metrics: dict[str, dict] = {}
        unavailable: dict[str, str] = {}
        all_ok = True
        for name in configs:
            try:
                cs = config_settings(settings, name)
                built = build_engine(cs, name, index_limit=ns.index_limit, progress=progress)
            except Exception as e:  # one configuration failing to build must not hide the others' results
                log.exception("config %s could not be built", name)
                unavailable[name] = f"{type(e).__name__}: {e}"
                continue
            if scripts:
                t0 = time.perf_counter()
                sr = run_scripts(built.engine, scripts, built.catalog, progress)
                log.info("%s: %d scripts in %.1f s", name, len(sr), time.perf_counter() - t0)
                scripts_section(report, name, sr)
                all_ok &= all(r.passed for r in sr)
                results["scripts"][name] = [
                    {"name": r.script.name, "language": r.script.language, "passed": r.passed,
                     "turns": [{**{k: v for k, v in asdict(t).items() if k != "checks"},
                                "checks": [asdict(c) for c in t.checks]} for t in r.turns]} for r in sr]
            if ns.simulate > 0:
                users = sample_users(built.movies, ns.simulate, seed=ns.seed)
                if name != "score" and ns.model_users:
                    users = users[: ns.model_users]
                dialogues: list[SimDialogue] = []
                for u in tqdm(users, desc=f"simulated users ({name})", unit="user", disable=not progress):
                    dialogues.append(run_dialogue(built.engine, u, built.catalog, turns=ns.turns, k=ns.k,
                                                  cumulative=ns.cumulative, dislike_top=not ns.no_dislike))
                m = summarize(dialogues, turns=ns.turns, ks=sorted({1, 3, ns.k}))
                metrics[name] = m
                if name == "score" and ns.model_users and ns.model_users < len(dialogues):
                    # The same first users the model configs play: the like-for-like comparison row.
                    metrics[f"score (first {ns.model_users})"] = summarize(
                        dialogues[: ns.model_users], turns=ns.turns, ks=sorted({1, 3, ns.k}))
                log.info("%s: %s", name, {k: v for k, v in m.items() if k != "latencies"})
                results["simulation"][name] = {
                    "metrics": {k: v for k, v in m.items() if k != "latencies"},
                    "dialogues": [{"user": asdict(d.user), "success_turn": d.success_turn,
                                   "turns": [asdict(t) for t in d.turns]} for d in dialogues]}
        if ns.simulate > 0:
            sim_section(report, metrics, ns.turns, ns.k, settings.dataset, ns.cumulative, unavailable)
        elif unavailable:
            report.add("\n".join(f"- config `{n}` not run: {why}" for n, why in unavailable.items()))
        path = report.write(ns.out)
        path.write_text(_scrub(path.read_text(encoding="utf-8"), secrets), encoding="utf-8")
        (ns.out / "results.json").write_text(
            _scrub(json.dumps(results, ensure_ascii=False, indent=1, default=str), secrets), encoding="utf-8")
        print(f"report: {path}")
        for name, m in metrics.items():
            print(f"{name}: " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in m.items() if not isinstance(v, list)))
        if unavailable:
            for name, why in unavailable.items():
                print(f"config {name} not run: {why}", file=sys.stderr)
            return 1
        return 0 if all_ok else 1
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


if __name__ == "__main__":
    sys.exit(main())
