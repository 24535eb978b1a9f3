"""`chatrec-eval understanding`: the dialogue-act model, learned and measured on labelled lines.

    chatrec-eval understanding --data-dir ../shared/data                 # grouped CV + held-out, report
    chatrec-eval understanding --data-dir ../shared/data --ship          # also write chatrec/data/acts.npz

Data (annotations/acts, GUIDE.md says how it was labelled): ReDial seeker lines (text joined from redial-dev), the
same lines as Korean users write them, the behaviour suite's lines and app-style lines written for the project.
An English line and its Korean version share a group, so cross-validation never trains on one and tests on the
other. Reported per language: macro-F1 over the seven acts with the confusion matrix, in 5-fold cross-validation
grouped by dialogue on the dev part, and on the held-out part (annotations/SPLIT.md) for a model trained on the
dev part only; the shipped model is that one.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from chatrec.acts import ACTS, MODEL_PATH, SUB_LABELS, SUBS, ActContext, ActModel, featurize
from chatrec.eval.report import Report, markdown_table
from chatrec.eval.split import heldout

log = logging.getLogger("chatrec.eval.understanding")

ROOT = Path(__file__).resolve().parents[2]
ANNOTATIONS = ROOT / "annotations" / "acts"
BEHAVIOUR = ROOT / "tests" / "behaviour"
_MENTION = re.compile(r"@(\d+)")


@dataclass(frozen=True)
class Labelled:
    group: str  # the dialogue (or invented conversation, or script) the line belongs to
    lang: str
    source: str  # redial | redial-ko | extra | behaviour
    text: str
    act: str
    sub: str
    context: ActContext

    @property
    def sub_label(self) -> str:
        return f"{self.act}/{self.sub}"


def _redial_contexts(data_dir: Path) -> dict[tuple[str, str], tuple[str, ActContext]]:
    """(dialogue id, message id) → (rendered seeker text, the context an app would know at that line)."""
    out = {}
    path = Path(data_dir) / "redial-dev" / "dialogues.jsonl"
    for line in path.open(encoding="utf-8"):
        if not line.strip():
            continue
        d = json.loads(line)
        names = d.get("movieMentions") or {}
        seeker = d["initiatorWorkerId"]
        said = cards = asked = False
        for m in d["messages"]:
            text = _MENTION.sub(lambda g: " ".join(str(names.get(g.group(1), g.group(0))).split()), m["text"])
            if m["senderWorkerId"] == seeker:
                out[(str(d["conversationId"]), str(m["messageId"]))] = (
                    " ".join(text.split()), ActContext(first_turn=not said, cards_on_screen=cards, asked=asked))
                said = True
                asked = False
            else:
                cards = cards or bool(_MENTION.search(m["text"]))
                asked = "?" in m["text"]
    return out


def _app_contexts(rows: list[dict], group_key: str) -> list[ActContext]:
    """Context for lines written as app conversations: cards are on screen once a request was made; the app asked
    before an answer (that is what the line answers)."""
    out, seen_request, prev_group = [], False, None
    for r in rows:
        if r[group_key] != prev_group:
            seen_request, first = False, True
        else:
            first = False
        out.append(ActContext(first_turn=first, cards_on_screen=seen_request, asked=r["act"] == "answer"))
        seen_request = seen_request or r["act"] in ("request", "feedback")
        prev_group = r[group_key]
    return out


def _tsv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def load_labelled(data_dir: Path | None, annotations: Path = ANNOTATIONS) -> list[Labelled]:
    rows: list[Labelled] = []
    if data_dir is not None and (Path(data_dir) / "redial-dev" / "dialogues.jsonl").is_file():
        ctx = _redial_contexts(Path(data_dir))
        for r in _tsv(annotations / "redial_en.tsv"):
            text, c = ctx[(r["dialogue_id"], r["message_id"])]
            rows.append(Labelled(f"redial:{r['dialogue_id']}", "en", "redial", text, r["act"], r["sub"], c))
        for r in _tsv(annotations / "redial_ko.tsv"):
            _, c = ctx[(r["dialogue_id"], r["message_id"])]
            rows.append(Labelled(f"redial:{r['dialogue_id']}", "ko", "redial-ko", r["text"], r["act"], r["sub"], c))
    else:
        log.warning("redial-dev not found: training on the project's own lines only")
    for path in sorted(annotations.glob("extra*.tsv")):  # lines written for the project, in invented conversations
        extra = _tsv(path)
        for r, c in zip(extra, _app_contexts(extra, "group")):
            rows.append(Labelled(f"extra:{r['group']}", r["lang"], "extra", r["text"], r["act"], r["sub"], c))
    beh = _tsv(annotations / "behaviour.tsv")
    texts = {}
    for path in BEHAVIOUR.glob("*.yaml"):
        turns = yaml.safe_load(path.read_text(encoding="utf-8")).get("turns", [])
        for i, t in enumerate(turns):
            if "user" in t:
                texts[(path.stem, str(i))] = str(t["user"])
    for r, c in zip(beh, _app_contexts(beh, "script")):
        text = texts.get((r["script"], r["turn"]))
        if text is not None:
            rows.append(Labelled(f"behaviour:{r['script']}", r["lang"], "behaviour", text, r["act"], r["sub"], c))
    bad = [r for r in rows if r.act not in ACTS or r.sub not in SUBS[r.act]]
    if bad:
        raise ValueError(f"unknown act/sub in annotations: {[(b.group, b.act, b.sub) for b in bad[:5]]}")
    return rows


def is_heldout(r: Labelled) -> bool:
    return heldout(r.group.split(":", 1)[1])


# ------------------------------------------------------------------------------------------------ model


def _design(rows: Sequence[Labelled], encoder):
    from scipy.sparse import csr_matrix, hstack

    dense, sparse = featurize([r.text for r in rows], [r.context for r in rows], encoder)
    return hstack([csr_matrix(dense), sparse]).tocsr(), dense.shape[1]


def fit(rows: Sequence[Labelled], encoder, c: float = 16.0, x=None) -> ActModel:
    from sklearn.linear_model import LogisticRegression

    if x is None:
        x, n_dense = _design(rows, encoder)
    else:
        x, n_dense = x
    heads = {}
    for name, labels, y in (("act", ACTS, [r.act for r in rows]), ("sub", SUB_LABELS, [r.sub_label for r in rows])):
        clf = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
        clf.fit(x, y)
        w = np.zeros((len(labels), x.shape[1]), dtype=np.float32)
        b = np.full(len(labels), -30.0, dtype=np.float32)  # a label with no training line is never predicted
        for k, lab in enumerate(clf.classes_):
            w[labels.index(lab)] = clf.coef_[k]
            b[labels.index(lab)] = clf.intercept_[k]
        heads[f"{name}_dense"], heads[f"{name}_sparse"], heads[f"{name}_bias"] = w[:, :n_dense], w[:, n_dense:], b
    meta = {"acts": list(ACTS), "subs": list(SUB_LABELS), "C": c, "n_lines": len(rows),
            "trained_on": dict(Counter(r.source for r in rows))}
    return ActModel(heads, meta, encoder)


def predict_rows(model: ActModel, rows: Sequence[Labelled]) -> list[tuple[str, str]]:
    """(act, sub) per line, read as a whole message (line by line) like the app does."""
    return [(p.act, p.sub) for p in (model.predict(r.text, r.context) for r in rows)]


def macro_f1(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> float:
    from sklearn.metrics import f1_score

    present = [lab for lab in labels if lab in set(gold)]
    return float(f1_score(gold, pred, labels=present, average="macro", zero_division=0))


def grouped_cv(rows: Sequence[Labelled], encoder, folds: int = 5, c: float = 16.0) -> list[tuple[str, str]]:
    from sklearn.model_selection import GroupKFold

    out: list[tuple[str, str] | None] = [None] * len(rows)
    groups = [r.group for r in rows]
    for train, test in GroupKFold(n_splits=folds).split(rows, groups=groups):
        model = fit([rows[i] for i in train], encoder, c)
        for i, p in zip(test, predict_rows(model, [rows[i] for i in test])):
            out[i] = p
    return out  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------------ report


def scores(rows: Sequence[Labelled], preds: Sequence[tuple[str, str]]) -> dict:
    out = {}
    for lang in ("en", "ko"):
        idx = [i for i, r in enumerate(rows) if r.lang == lang]
        if not idx:
            continue
        gold = [rows[i].act for i in idx]
        pred = [preds[i][0] for i in idx]
        same_act = [i for i in idx if preds[i][0] == rows[i].act]
        out[lang] = {"n": len(idx), "macro_f1": macro_f1(gold, pred, ACTS),
                     "accuracy": float(np.mean([g == p for g, p in zip(gold, pred)])),
                     "sub_accuracy": float(np.mean([preds[i][1] == rows[i].sub for i in same_act])) if same_act else 0.0,
                     "per_act_f1": {a: macro_f1(gold, pred, [a]) for a in ACTS if a in gold}}
    return out


def confusion(rows: Sequence[Labelled], preds: Sequence[tuple[str, str]], lang: str) -> list[list]:
    m = Counter((r.act, p[0]) for r, p in zip(rows, preds) if r.lang == lang)
    return [[a] + [m.get((a, b), 0) for b in ACTS] for a in ACTS]


def _score_rows(name: str, sc: dict) -> list[list]:
    return [[name, lang, s["n"], f"{s['macro_f1']:.3f}", f"{s['accuracy']:.3f}", f"{s['sub_accuracy']:.3f}"]
            for lang, s in sc.items()]


def main(argv: Sequence[str] | None = None) -> int:
    from chatrec.settings import from_env

    ap = argparse.ArgumentParser(prog="chatrec-eval understanding", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=from_env().data_dir, help="shared data folder (redial-dev)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--c", type=float, nargs="+", default=[16.0],
                    help="inverse regularisation; several values are compared in CV on the dev part")
    ap.add_argument("--ship", action="store_true", help=f"write the dev-trained model to {MODEL_PATH}")
    ap.add_argument("--out", type=Path, default=Path("runs/understanding"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from chatrec.acts import _default_encoder

    encoder = _default_encoder()
    rows = load_labelled(args.data_dir)
    dev = [r for r in rows if not is_heldout(r)]
    held = [r for r in rows if is_heldout(r)]
    print(f"{len(rows)} labelled lines ({dict(Counter(r.source for r in rows))}); dev {len(dev)}, held out {len(held)}")
    best_c, best = args.c[0], -1.0
    cv_by_c = {}
    for c in args.c:
        preds = grouped_cv(dev, encoder, args.folds, c)
        sc = scores(dev, preds)
        cv_by_c[c] = (preds, sc)
        mean = float(np.mean([s["macro_f1"] for s in sc.values()]))
        print(f"C={c}: grouped CV macro-F1 " + ", ".join(f"{lang} {s['macro_f1']:.3f}" for lang, s in sc.items()))
        if mean > best:
            best_c, best = c, mean
    preds, cv = cv_by_c[best_c]
    model = fit(dev, encoder, best_c)
    held_preds = predict_rows(model, held)
    ho = scores(held, held_preds)
    headers = ["evaluation", "lang", "lines", "act macro-F1", "act accuracy", "sub-act accuracy"]
    table = _score_rows(f"grouped {args.folds}-fold CV, dev (C={best_c})", cv) + _score_rows("held out", ho)
    print(markdown_table(headers, table))
    rep = Report("Dialogue acts: learned from labelled lines")
    rep.add(f"{len(rows)} labelled lines: " + ", ".join(f"{k} {v}" for k, v in Counter(r.source for r in rows).items())
            + f". Dev {len(dev)} lines, held out {len(held)} (annotations/SPLIT.md). Features: USE-multilingual "
            "embedding, hashed character 2-5-grams and word 1-3-grams, dialogue context; multinomial logistic "
            "regression, balanced classes; a message of several lines is read line by line.")
    rep.add_table(headers, table, "Act macro-F1 over the seven acts")
    for name, rs, ps in (("CV", dev, preds), ("held out", held, held_preds)):
        for lang in ("en", "ko"):
            rep.add_table(["gold \\ predicted", *ACTS], confusion(rs, ps, lang), f"Confusion, {name}, {lang}")
    per = [[a] + [f"{cv[lang]['per_act_f1'].get(a, float('nan')):.3f}" for lang in cv] for a in ACTS]
    rep.add_table(["act", *cv], per, "Per-act F1 (CV)")
    wrong = [(r.lang, r.text[:90], r.act, p[0]) for r, p in zip(dev, preds) if r.act != p[0]]
    rep.add_table(["lang", "line", "gold", "predicted"], wrong[:60], "Some CV errors")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, lang in zip(axes, ("en", "ko")):
        m = np.array([row[1:] for row in confusion(dev, preds, lang)], dtype=float)
        m = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(ACTS)), ACTS, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(ACTS)), ACTS, fontsize=7)
        ax.set_title(f"CV confusion ({lang}), row-normalised")
    fig.tight_layout()
    rep.add_figure(fig, "confusion", "Where the acts are confused (CV, dev part)")
    out = rep.write(args.out)
    (args.out / "results.json").write_text(json.dumps({"cv": cv, "heldout": ho, "C": best_c}, indent=2))
    print(f"report: {out}")
    if args.ship:
        model.meta.update({"cv_macro_f1": {k: v["macro_f1"] for k, v in cv.items()},
                           "heldout_macro_f1": {k: v["macro_f1"] for k, v in ho.items()}})
        model.save(MODEL_PATH)
        print(f"wrote {MODEL_PATH} ({MODEL_PATH.stat().st_size // 1024} KiB)")
    return 0
