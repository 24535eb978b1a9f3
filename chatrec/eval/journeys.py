"""`chatrec-eval journeys`: what recommending across interest journeys does to accuracy, diversity and coverage.

    chatrec-eval journeys --dataset ml-100k --protocol chatrec,loo --seeds 3

For every evaluated user, the liked items of their training history (rating ≥ 4) are clustered into 1–4 named
journeys (chatrec.journeys); ALS (the tuned setup of `chatrec-eval offline`) ranks candidates as usual; the
across-journey list takes the k picks from ALS's top `depth` spread over the journeys by size. Compared with ALS
alone on the same splits: accuracy (Chat-REC protocol: P@5, NDCG@5; leave-one-out: R@10, NDCG@10; the issue allows
a relative drop of at most 2 %), intra-list diversity (mean pairwise cosine distance of the items' sentence
embeddings, and of their genre sets) and catalogue coverage (distinct items recommended / catalog size).
Also prints named journeys for a few real users in English and Korean. Writes report.md with plots under --out.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from retrieval.datasets import Dataset, DatasetError, load_dataset
from retrieval.documents import embedding_text
from retrieval.embeddings import make_embedder
from retrieval.types import Catalog, Scored

from ..journeys import JourneyConfig, journeys, precomputed_embedder, recommend_across_journeys
from .data_flags import add_data_flags, locator_for, settings_for
from .metrics import evaluate_ranking, hit_matrix, mean_std
from .offline import DEFAULT_ALS, TUNED_ALS, GeneratorSpec, rank
from .protocols import LIKED, Split, chatrec_split, loo_split
from .report import Report, markdown_table

log = logging.getLogger(__name__)

PROTOCOLS = ("chatrec", "loo")
K = {"chatrec": 5, "loo": 10}
ACCURACY = {"chatrec": ("P@5", "NDCG@5"), "loo": ("R@10", "NDCG@10")}
MAX_DROP = 0.02  # the allowance: accuracy may fall by at most 2 % relative to ALS alone


def catalog_embeddings(catalog: Catalog, cache_dir: Path, spec: str = "use-multilingual") -> np.ndarray:
    """[len(catalog), d] vectors of every item's `embedding_text`, encoded once and cached by content hash."""
    texts = [embedding_text(it) for it in catalog]
    key = hashlib.sha256(("\n".join(texts) + spec).encode("utf-8")).hexdigest()[:20]
    path = Path(cache_dir) / "journeys" / f"{catalog.name}-{key}.npy"
    if path.is_file():
        return np.load(path)
    emb = make_embedder(spec)
    vecs = np.concatenate([emb.encode(texts[s:s + 256]) for s in tqdm(range(0, len(texts), 256), unit="batch",
                                                                      desc="embedding the catalog", file=sys.stderr)])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def intra_list_diversity(lists: Sequence[Sequence[int]], vecs: np.ndarray) -> float:
    """Mean over lists of the mean pairwise cosine distance (1 − cos) between the list's items."""
    out = []
    for rows in lists:
        rows = [r for r in rows if r >= 0]
        if len(rows) < 2:
            continue
        v = vecs[rows]
        s = v @ v.T
        n = len(rows)
        out.append(float((n * n - s.sum()) / (n * (n - 1))))  # unit rows: diagonal of s is 1
    return float(np.mean(out)) if out else 0.0


def genre_diversity(lists: Sequence[Sequence[int]], catalog: Catalog) -> float:
    """Mean pairwise Jaccard distance of the items' genre sets."""
    out = []
    for rows in lists:
        gs = [set(catalog.items[r].genres) for r in rows if r >= 0]
        d = [1 - len(a & b) / max(len(a | b), 1) for i, a in enumerate(gs) for b in gs[i + 1:]]
        if d:
            out.append(float(np.mean(d)))
    return float(np.mean(out)) if out else 0.0


def coverage(lists: Sequence[Sequence[int]], n_items: int) -> float:
    seen = {int(r) for rows in lists for r in rows if r >= 0}
    return len(seen) / n_items


@dataclass(frozen=True)
class RunResult:
    protocol: str
    seed: int
    variant: str  # "als" or "journeys@depth"
    metrics: dict
    n_journeys: float


def liked_rows(split: Split) -> list[np.ndarray]:
    """Per evaluated user: training items rated ≥ LIKED (all training items if none is), oldest first."""
    tr = split.train
    out = []
    for u in split.users:
        mine = np.flatnonzero(tr.user == u)
        mine = mine[np.argsort(tr.timestamp[mine], kind="stable")]
        liked = mine[tr.rating[mine] >= LIKED]
        out.append(tr.item[liked if len(liked) else mine])
    return out


def evaluate_split(protocol: str, split: Split, seed: int, als_setup, vecs: np.ndarray, depths: Sequence[int],
                   cfg: JourneyConfig, js_per_user: list | None = None) -> tuple[list[RunResult], list]:
    """ALS alone and the across-journey variants on one split; journeys are computed unless given (they depend
    on the split only, so leave-one-out seeds, which vary just ALS's initialisation, share them)."""
    k = K[protocol]
    gen = GeneratorSpec("als", als=als_setup).build(split, seed)
    top = rank(gen, split, max(depths))
    catalog = split.catalog
    embed = precomputed_embedder(catalog, vecs)
    liked = liked_rows(split)
    ks = (k,)
    results = []
    base = top[:, :k]
    base_hits = hit_matrix(base, split.truth, k).any(axis=1)
    results.append(RunResult(protocol, seed, "als", _metrics(base, split, ks, vecs, catalog, base_hits), 1.0))
    if js_per_user is None:
        js_per_user = [journeys(catalog.ids_of(rows), catalog, embed=embed, config=cfg)
                       for rows in tqdm(liked, desc=f"journeys ({protocol}, seed {seed})", unit="user",
                                        file=sys.stderr)]
    for depth in depths:
        if depth <= k:
            continue
        lists = np.full((len(split.users), k), -1, dtype=np.int64)
        for n, (js, cand) in enumerate(zip(js_per_user, top)):
            cand = cand[cand >= 0]
            picks = recommend_across_journeys(Scored(catalog.ids_of(cand), -np.arange(len(cand), dtype=np.float32)),
                                              js, catalog, k, embed=embed, depth=depth, config=cfg)
            lists[n, : len(picks)] = catalog.rows([p.item_id for p in picks])
        results.append(RunResult(protocol, seed, f"journeys@{depth}",
                                 _metrics(lists, split, ks, vecs, catalog, base_hits),
                                 float(np.mean([len(js) for js in js_per_user]))))
    return results, js_per_user


def _metrics(lists: np.ndarray, split: Split, ks, vecs, catalog, base_hits: np.ndarray) -> dict:
    m = evaluate_ranking(lists, split.truth, ks)
    hits = hit_matrix(lists, split.truth, ks[0]).any(axis=1)
    m["gained"] = int((hits & ~base_hits).sum())  # users with a hit that ALS alone missed
    m["lost"] = int((base_hits & ~hits).sum())
    m["ILD"] = intra_list_diversity(lists, vecs)
    m["ILD-genre"] = genre_diversity(lists, catalog)
    m["coverage"] = coverage(lists, len(catalog))
    return m


def summarise(results: Sequence[RunResult], protocol: str) -> list[list]:
    cols = [*ACCURACY[protocol], "ILD", "ILD-genre", "coverage"]
    rows = []
    variants = list(dict.fromkeys(r.variant for r in results if r.protocol == protocol))
    base = {c: mean_std([r.metrics[c] for r in results if r.protocol == protocol and r.variant == "als"])[0]
            for c in cols}
    for v in variants:
        rs = [r for r in results if r.protocol == protocol and r.variant == v]
        row = [v]
        for c in cols:
            m, s = mean_std([r.metrics[c] for r in rs])
            rel = "" if v == "als" else f" ({(m - base[c]) / base[c]:+.1%})"
            row.append(f"{m:.4f} ± {s:.4f}{rel}")
        row.append(f"+{np.mean([r.metrics['gained'] for r in rs]):.1f} / −{np.mean([r.metrics['lost'] for r in rs]):.1f}")
        row.append(f"{np.mean([r.n_journeys for r in rs]):.2f}")
        rows.append(row)
    return rows


def choose_depth(results: Sequence[RunResult], protocol: str) -> str | None:
    """The deepest variant whose every accuracy metric stays within MAX_DROP of ALS (mean over seeds)."""
    acc = ACCURACY[protocol]
    base = {c: np.mean([r.metrics[c] for r in results if r.protocol == protocol and r.variant == "als"]) for c in acc}
    ok = []
    for v in dict.fromkeys(r.variant for r in results if r.protocol == protocol and r.variant != "als"):
        rs = [r for r in results if r.protocol == protocol and r.variant == v]
        if all(np.mean([r.metrics[c] for r in rs]) >= (1 - MAX_DROP) * base[c] for c in acc):
            ok.append(v)
    return max(ok, key=lambda v: int(v.split("@")[1])) if ok else None


def examples(ds: Dataset, split: Split, js_per_user, n: int = 2) -> list[str]:
    """Named journeys of the first `n` evaluated users with at least three journeys (both languages)."""
    out = []
    for u, js in zip(split.users, js_per_user):
        if len(js) < 3:
            continue
        uid = split.train.user_ids[int(u)]
        lines = [f"**{ds.name} user {uid}** ({sum(len(j) for j in js)} liked titles)", ""]
        for j in js:
            titles = ", ".join(ds.catalog[i].label for i in j.item_ids[:3])
            lines.append(f"- {j.name('en')} / {j.name('ko')} — {len(j)} titles, e.g. {titles}")
        out.append("\n".join(lines))
        if len(out) >= n:
            break
    return out


def _figure(results: Sequence[RunResult], protocol: str):
    """Relative change vs ALS alone (mean over seeds) of accuracy, diversity and coverage, per variant."""
    import matplotlib.pyplot as plt

    metrics = [*ACCURACY[protocol], "ILD", "ILD-genre", "coverage"]
    mine = [r for r in results if r.protocol == protocol]
    variants = [v for v in dict.fromkeys(r.variant for r in mine) if v != "als"]
    base = {m: np.mean([r.metrics[m] for r in mine if r.variant == "als"]) for m in metrics}
    fig, ax = plt.subplots(figsize=(9, 3.8))
    width = 0.8 / max(1, len(variants))
    x = np.arange(len(metrics))
    for i, v in enumerate(variants):
        rel = [100 * (np.mean([r.metrics[m] for r in mine if r.variant == v]) / base[m] - 1) for m in metrics]
        ax.bar(x + i * width, rel, width, label=v)
    ax.axhline(-100 * MAX_DROP, color="grey", linestyle="--", label="accuracy allowance (−2 %)")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x + 0.4 - width / 2, metrics)
    ax.set_ylabel("% change vs ALS alone")
    ax.set_title(f"{protocol}: across-journey picks from ALS's top-depth, relative to ALS alone")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def _parse(argv):
    p = argparse.ArgumentParser(prog="chatrec-eval journeys", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument("--protocol", default="chatrec,loo", help="chatrec, loo or both (comma-separated)")
    p.add_argument("--seeds", type=int, default=3, help="chatrec: user samples; loo: ALS initialisations")
    p.add_argument("--depths", default="1.1,1.2,1.4,1.6,2",
                   help="candidate depths as multiples of k (ALS alone is depth 1)")
    p.add_argument("--loo-users", type=int, default=0, help="evaluate a seeded sample of loo users (0 = all)")
    p.add_argument("--out", type=Path, default=Path("reports/journeys"))
    add_data_flags(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    protocols = [p.strip() for p in args.protocol.split(",") if p.strip()]
    if not protocols or any(p not in PROTOCOLS for p in protocols) or args.seeds < 1:
        print(f"error: --protocol must list {', '.join(PROTOCOLS)}; --seeds ≥ 1", file=sys.stderr)
        return 2
    settings = settings_for(args)
    cache_dir = settings.cache_dir
    locator = locator_for(settings)
    try:
        ds = load_dataset(args.dataset, locator)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    t0 = time.time()
    cfg = JourneyConfig()
    report = Report(f"Interest journeys — {args.dataset}")
    report.add(f"- dataset: {ds.describe()}\n- journeys from each user's training items rated ≥ {LIKED:g}; "
               f"names from the items' facts (genres, decade, director, keywords); sentence vectors: multilingual USE "
               f"on `embedding_text` (the knowledge store's view)\n- across-journey list: k picks from ALS's top "
               f"`depth` (= multiple × k), quotas by recency-weighted journey size (at least one per journey), "
               f"picks kept in ALS order; ALS alone = depth k")
    results: list[RunResult] = []
    shown = False
    for protocol in protocols:
        k = K[protocol]
        depths = sorted({k, *(int(round(float(m) * k)) for m in args.depths.split(",") if m.strip())})
        als = TUNED_ALS.get((args.dataset, protocol), DEFAULT_ALS)
        if protocol == "chatrec":
            splits = [(s, chatrec_split(ds.ratings, ds.catalog, seed=s)) for s in range(args.seeds)]
        else:
            base = loo_split(ds.ratings, ds.catalog, which="test")
            if args.loo_users:
                keep = np.sort(np.random.default_rng(0).choice(len(base.users), args.loo_users, replace=False))
                base = Split(base.name, base.catalog, base.train, base.users[keep],
                             tuple(base.truth[i] for i in keep), base.notes)
            splits = [(s, base) for s in range(args.seeds)]
        vecs = catalog_embeddings(splits[0][1].catalog, cache_dir)
        js_per_user = None
        for seed, split in splits:
            rs, js_per_user = evaluate_split(protocol, split, seed, als, vecs, depths, cfg,
                                             js_per_user if protocol == "loo" else None)
            results += rs
            if not shown:
                ex = examples(ds, split, js_per_user)
                if ex:
                    report.add("## Named journeys of real users\n\n" + "\n\n".join(ex))
                    print("\n\n".join(ex))
                    shown = True
        cols = ["variant", *ACCURACY[protocol], "ILD (embedding)", "ILD (genres)", "coverage",
                "users hit: gained / lost vs ALS", "journeys/user"]
        tab = markdown_table(cols, summarise(results, protocol))
        chosen = choose_depth(results, protocol)
        verdict = (f"deepest variant within the {MAX_DROP:.0%} accuracy allowance: **{chosen}**" if chosen else
                   f"no variant stays within the {MAX_DROP:.0%} accuracy allowance")
        report.add(f"## {protocol} protocol (k = {k}, {args.seeds} seed(s), ALS {als.short()})\n\n{tab}\n\n"
                   f"_mean ± std over seeds; (±x %) = relative change vs ALS alone_\n\n{verdict}\n\n"
                   + "\n".join(f"- {n}" for n in splits[0][1].notes))
        report.add_figure(_figure(results, protocol), f"journeys-{protocol}",
                          f"{protocol}: accuracy, diversity and coverage per variant")
        print(f"\n## {protocol} (k = {k})\n\n{tab}\n\n{verdict}")
    report.add(f"Run time: {time.time() - t0:.0f} s. Command: `chatrec-eval journeys "
               f"{' '.join(argv if argv is not None else sys.argv[1:])}`")
    path = report.write(args.out)
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
