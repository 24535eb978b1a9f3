"""Title-mention precision and recall on real conversations (redial-dev seeker lines), as the app reads them.

    python -m benchmarks.title_mentions --data-dir ../shared/data [--dataset ml-1m] [--show 20]

Gold: the movies ReDial marked in each seeker line (`@id` mentions), paired with catalog ids through the case's
`context_*_ids` (chatrec/eval/redial_data.py). Precision: accepted titles whose id is among the dialogue's context
movies. Recall: gold mentions of catalog movies that were found with the right id. Each seeker line is read once,
with the understanding's own claimed spans (genre, country, people, reference words), exactly as a turn reads it.
"""
from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from chatrec.eval.redial_data import load_cases, seeker_lines_by_dialogue
from retrieval.datasets import DataLocator, load_dataset
from retrieval.title_resolver import TitleResolver


def measure(cases, catalog, find, show: int = 0) -> dict:
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    p.add_argument("--dataset", default="ml-latest-small", choices=("ml-latest-small", "ml-1m"))
    p.add_argument("--show", type=int, default=0, help="print this many wrong and missed mentions")
    p.add_argument("--resolver-only", action="store_true", help="the resolver without the understanding's claims")
    args = p.parse_args(argv)
    loc = DataLocator(data_dir=args.data_dir, allow_download=False, progress=False)
    ds = load_dataset(args.dataset, loc)
    resolver = TitleResolver.for_dataset(ds)
    cases = load_cases(args.data_dir, ds.catalog, args.dataset)
    if args.resolver_only:
        find = resolver.find_mentions
    else:
        from chatrec.understand import Understander

        und = Understander(ds.catalog, resolver)
        find = und.title_mentions
    resolver.find_mentions("warm up the Korean model 영화")
    r = measure(cases, ds.catalog, find, args.show)
    print(f"{args.dataset}: {r['accepted']} titles accepted in seeker lines, precision {r['precision']:.1%}; "
          f"{r['gold']} gold mentions of catalog movies, recall {r['recall']:.1%}; "
          f"per line p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms")
    print(f"false positives by evidence: {r['fp_by_evidence']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
