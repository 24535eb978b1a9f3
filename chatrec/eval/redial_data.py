"""ReDial dev cases (`redial-dev/` in the data dir): loading, and the gold title mentions in the seeker's lines.

A case is one recommender message that suggests movies; its context is the dialogue before it, with every `@id`
already written out as "Title (Year)". The raw dialogues say where those mentions are, so each seeker line carries
its gold mentions: the text span and, when the film is in the catalog, its id. Which catalog id a ReDial title is
comes from the case itself: `context_*_ids` lists the catalog ids of every movie in the context, and a title is
paired with the one of those ids whose title and year agree (a handful per case, so the pairing is unambiguous).
"""
from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from rapidfuzz import fuzz

from retrieval.titles import normalise_title, title_key
from retrieval.types import Catalog

CASE_FILES = {"ml-latest-small": ("cases_mllatest.jsonl", "mllatest", "mls"),
              "ml-1m": ("cases_ml1m.jsonl", "ml1m", "ml1m")}
# redial-ko-dev: the same 100 dialogues in Korean and in their English originals (ml-latest-small ids only).
KO_CASE_FILES = {"ko": "cases_mllatest_ko.jsonl", "en-ko": "cases_mllatest_en.jsonl"}
_MENTION = re.compile(r"@(\d+)")
_YEAR = re.compile(r"\((\d{4})\)\s*$")


class RedialDataError(FileNotFoundError):
    """The redial-dev folder or one of its files is missing; the message says where it was looked for."""


@dataclass(frozen=True)
class GoldMention:
    start: int
    end: int
    title: str  # as ReDial writes it, "Title (Year)"
    item_id: str | None  # catalog id, None when the film is not in the catalog


@dataclass(frozen=True)
class Line:
    role: str  # "User" (the seeker) or "Recommender"
    text: str
    mentions: tuple[GoldMention, ...] = ()


@dataclass(frozen=True)
class RedialCase:
    dialogue_id: str
    turn_index: int
    lines: tuple[Line, ...]
    targets: tuple[str, ...]
    liked: tuple[str, ...]  # questionnaire likes so far (an oracle, not what a live user gives)
    context_ids: tuple[str, ...]  # every catalog movie mentioned in the context: removed before scoring
    target_titles: tuple[str, ...]

    @property
    def seeker_lines(self) -> tuple[Line, ...]:
        return tuple(ln for ln in self.lines if ln.role == "User")

    @property
    def seeker_text(self) -> str:
        return "\n".join(ln.text for ln in self.seeker_lines)


def redial_dir(data_dir: Path) -> Path:
    d = Path(data_dir) / "redial-dev"
    if not (d / "dialogues.jsonl").is_file():
        raise RedialDataError(f"redial-dev not found in {data_dir}; pass --data-dir pointing at the shared data "
                              "folder (it must hold redial-dev/dialogues.jsonl and the cases files)")
    return d


def _render(text: str, mentions: dict[str, str]) -> tuple[str, list[tuple[int, int, str]]]:
    """A raw ReDial message with `@id` written out as titles and whitespace collapsed, as the cases do, plus the
    span of every mention in the rendered text."""
    out, spans, pos = [], [], 0
    for m in _MENTION.finditer(text):
        out.append(text[pos:m.start()])
        title = mentions.get(m.group(1))
        if title is None:
            out.append(m.group(0))
        else:
            title = " ".join(title.split())
            spans.append((len("".join(out)), title))
            out.append(title)
        pos = m.end()
    out.append(text[pos:])
    raw = "".join(out)
    # Collapse whitespace and shift the spans with it.
    collapsed, mapping = [], []
    prev_space = True
    for i, ch in enumerate(raw):
        if ch.isspace():
            if prev_space:
                continue
            ch, prev_space = " ", True
        else:
            prev_space = False
        mapping.append(i)
        collapsed.append(ch)
    text2 = "".join(collapsed).rstrip()
    where = {orig: new for new, orig in enumerate(mapping)}
    out_spans = []
    for start, title in spans:
        s = where.get(start)
        if s is not None:
            out_spans.append((s, s + len(title), title))
    return text2, out_spans


def _pair(title: str, candidates: list[str], catalog: Catalog) -> str | None:
    """The context id that a ReDial "Title (Year)" names, by title similarity with the year as a tie-breaker."""
    m = _YEAR.search(title)
    year = int(m.group(1)) if m else None
    key = title_key(normalise_title(title)[0] if m else title)
    best, best_score = None, 0.0
    for iid in candidates:
        it = catalog.get(iid)
        if it is None:
            continue
        score = max(fuzz.ratio(key, title_key(v)) for v in (it.title, *it.alt_titles) if v)
        if year is not None and it.year is not None:
            score -= 15 * min(abs(it.year - year), 2)
        if score > best_score:
            best, best_score = iid, score
    return best if best_score >= 70 else None


def load_ko_cases(data_dir: Path, which: str = "ko") -> list[RedialCase]:
    """redial-ko-dev: the Korean conversations ("ko") or the same cases in English ("en-ko"); ml-latest-small ids.
    There are no raw dialogues here, so lines carry no gold title spans."""
    if which not in KO_CASE_FILES:
        raise ValueError(f"redial-ko-dev has {sorted(KO_CASE_FILES)}, not {which!r}")
    path = Path(data_dir) / "redial-ko-dev" / KO_CASE_FILES[which]
    if not path.is_file():
        raise RedialDataError(f"{path} not found; pass --data-dir pointing at the shared data folder")
    cases = []
    for line in path.open(encoding="utf-8"):
        if not line.strip():
            continue
        c = json.loads(line)
        cases.append(RedialCase(
            dialogue_id=str(c["dialogue_id"]), turn_index=int(c["turn_index"]),
            lines=tuple(Line(t["role"], t["text"]) for t in c["context"]),
            targets=tuple(f"mls:{i}" for i in c["target_mllatest_ids"]),
            liked=tuple(f"mls:{i}" for i in c["liked_mllatest_ids_so_far"]),
            context_ids=tuple(f"mls:{i}" for i in c["context_mllatest_ids"]),
            target_titles=tuple(c.get("target_titles", ()))))
    return cases


def load_cases(data_dir: Path, catalog: Catalog, dataset: str = "ml-latest-small") -> list[RedialCase]:
    if dataset not in CASE_FILES:
        raise ValueError(f"redial cases exist for {sorted(CASE_FILES)}, not {dataset!r}")
    d = redial_dir(data_dir)
    fname, key, prefix = CASE_FILES[dataset]
    dialogues = {}
    for line in (d / "dialogues.jsonl").open(encoding="utf-8"):
        if line.strip():
            dlg = json.loads(line)
            dialogues[str(dlg["conversationId"])] = dlg
    cases = []
    for line in (d / fname).open(encoding="utf-8"):
        if not line.strip():
            continue
        c = json.loads(line)
        dlg = dialogues.get(str(c["dialogue_id"]))
        ctx_ids = tuple(f"{prefix}:{i}" for i in c[f"context_{key}_ids"])
        lines = []
        if dlg is None:
            lines = [Line(t["role"], t["text"]) for t in c["context"]]
        else:
            seeker = dlg["initiatorWorkerId"]
            for msg, ctx in zip(dlg["messages"][:c["turn_index"]], c["context"]):
                text, spans = _render(msg["text"], dlg.get("movieMentions") or {})
                role = "User" if msg["senderWorkerId"] == seeker else "Recommender"
                if role != ctx["role"] or text != ctx["text"]:
                    spans = []  # the case text differs from our rendering: no gold spans for this line
                    text = ctx["text"]
                    role = ctx["role"]
                gold = tuple(GoldMention(s, e, t, _pair(t, list(ctx_ids), catalog)) for s, e, t in spans)
                lines.append(Line(role, text, gold))
        cases.append(RedialCase(
            dialogue_id=str(c["dialogue_id"]), turn_index=int(c["turn_index"]), lines=tuple(lines),
            targets=tuple(f"{prefix}:{i}" for i in c[f"target_{key}_ids"]),
            liked=tuple(f"{prefix}:{i}" for i in c[f"liked_{key}_ids_so_far"]),
            context_ids=ctx_ids, target_titles=tuple(c.get("target_titles", ())),
        ))
    return cases


def seeker_lines_by_dialogue(cases: list[RedialCase]) -> Iterator[tuple[str, Line]]:
    """Each seeker line once (the longest context of a dialogue contains all earlier ones)."""
    longest: dict[str, RedialCase] = {}
    for c in cases:
        if c.dialogue_id not in longest or c.turn_index > longest[c.dialogue_id].turn_index:
            longest[c.dialogue_id] = c
    for did, c in longest.items():
        for ln in c.seeker_lines:
            yield did, ln


def measure_mentions(cases, catalog, find, show: int = 0) -> dict:
    """Title-mention precision and recall of `find(text) -> mentions` on the seeker lines (each read once)."""
    ctx = {}
    for c in cases:
        ctx.setdefault(c.dialogue_id, set()).update(c.context_ids)
    tp = fp = gold_n = found = 0
    wrong: list[tuple[str, str, str]] = []
    missed: list[tuple[str, str]] = []
    reasons: Counter = Counter()
    times = []
    for did, line in seeker_lines_by_dialogue(cases):
        t0 = time.perf_counter()
        mentions = find(line.text)
        times.append(time.perf_counter() - t0)
        got = {}
        for m in mentions:
            res = m.resolution
            if res.status == "matched" and res.best is not None:
                got[res.best.item_id] = (m.text, m.evidence)
        for iid, (text, ev) in got.items():
            if iid in ctx[did]:
                tp += 1
            else:
                fp += 1
                reasons[ev] += 1
                it = catalog.get(iid)
                wrong.append((text, it.label if it else iid, ev))
        for g in line.mentions:
            if g.item_id is None:
                continue
            gold_n += 1
            if g.item_id in got:
                found += 1
            else:
                missed.append((g.title, line.text[:100]))
    precision = tp / max(tp + fp, 1)
    recall = found / max(gold_n, 1)
    times.sort()
    out = {"accepted": tp + fp, "precision": precision, "gold": gold_n, "recall": recall,
           "p50_ms": 1000 * times[len(times) // 2], "p95_ms": 1000 * times[int(len(times) * 0.95)],
           "fp_by_evidence": dict(reasons.most_common())}
    if show:
        print(f"-- wrong ({len(wrong)}):")
        for w in wrong[:show]:
            print("  ", w)
        print(f"-- missed ({len(missed)}):")
        for m in missed[:show]:
            print("  ", m)
    return out


def measure_ko_mentions(ko_cases: list[RedialCase], en_cases: list[RedialCase], catalog: Catalog, find) -> dict:
    """Title precision / recall on the Korean seeker lines of redial-ko-dev, with the gold taken from the same line
    in English: a context film is named in a seeker line when its title is in the English line (the English lines
    write every film as ReDial's "Title (Year)"). Precision: found films that are in the dialogue's context."""
    en_by = {(c.dialogue_id, c.turn_index): c for c in en_cases}
    longest: dict[str, RedialCase] = {}
    for c in ko_cases:
        if c.dialogue_id not in longest or c.turn_index > longest[c.dialogue_id].turn_index:
            longest[c.dialogue_id] = c
    tp = fp = gold_n = found_n = 0
    missed: list[tuple[str, str]] = []
    wrong: list[tuple[str, str]] = []
    for c in longest.values():
        en = en_by.get((c.dialogue_id, c.turn_index))
        if en is None or len(en.lines) != len(c.lines):
            continue
        keys = {}
        for iid in c.context_ids:
            it = catalog.get(iid)
            if it is not None:
                keys[iid] = [k for k in {title_key(it.title), *(title_key(a) for a in it.alt_titles)} if len(k) >= 2]
        for ko_line, en_line in zip(c.lines, en.lines):
            if ko_line.role != "User":
                continue
            en_key = f" {title_key(en_line.text)} "
            named = {i: max((k for k in ks if f" {k} " in en_key), key=len, default="") for i, ks in keys.items()}
            named = {i: k for i, k in named.items() if k}
            # "Avengers: Infinity War" names that film, not also "The Avengers" inside it.
            gold = {i for i, k in named.items() if not any(k != k2 and f" {k} " in f" {k2} " for k2 in named.values())}
            got = set()
            for m in find(ko_line.text):
                res = m.resolution
                if res.status == "matched" and res.best is not None:
                    got.add(res.best.item_id)
            tp += len(got & set(c.context_ids))
            fp += len(got - set(c.context_ids))
            wrong += [(catalog[i].label if i in catalog else i, ko_line.text[:80]) for i in got - set(c.context_ids)]
            gold_n += len(gold)
            found_n += len(gold & got)
            missed += [(catalog[i].label, ko_line.text[:80]) for i in gold - got]
    return {"accepted": tp + fp, "precision": tp / max(tp + fp, 1), "gold": gold_n,
            "recall": found_n / max(gold_n, 1), "missed": missed, "wrong": wrong}
