"""Title-mention precision and recall on real conversations (redial-dev seeker lines), as the app reads them.

    python -m benchmarks.title_mentions --data-dir ../shared/data [--dataset ml-1m] [--show 20]

Gold: the movies ReDial marked in each seeker line (`@id` mentions), paired with catalog ids through the case's
`context_*_ids` (chatrec/eval/redial_data.py). Precision: accepted titles whose id is among the dialogue's context
movies. Recall: gold mentions of catalog movies that were found with the right id. Each seeker line is read once,
with the understanding's own claimed spans (genre, country, people, reference words), exactly as a turn reads it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from chatrec.eval.redial_data import load_cases, measure_mentions
from retrieval.datasets import DataLocator, load_dataset
from retrieval.title_resolver import TitleResolver


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
    r = measure_mentions(cases, ds.catalog, find, args.show)
    print(f"{args.dataset}: {r['accepted']} titles accepted in seeker lines, precision {r['precision']:.1%}; "
          f"{r['gold']} gold mentions of catalog movies, recall {r['recall']:.1%}; "
          f"per line p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms")
    print(f"false positives by evidence: {r['fp_by_evidence']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
