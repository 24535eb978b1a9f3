"""ALS at MovieLens-32M scale on synthetic data, and the streamed ratings.csv reader, measured in one run.

    python benchmarks/als_scale.py                         # fractions 1/32, 1/8, 1/2, 1 of ml-32m's shape
    python benchmarks/als_scale.py --fractions 0.03125,0.125 --iterations 3 --csv-rows 1000000

ml-32m: 200,948 users × 87,585 movies × 32,000,204 ratings (density 0.18 %), every user with ≥ 20 ratings.
A fraction f keeps the catalog and each user's activity distribution and takes f of the users, so nonzeros scale
with f and the per-user sparsity stays that of ml-32m. Users' rating counts are log-normal (floor 20, mean 159 as
in ml-32m); the movie each rating goes to is Zipf-like (a few films hold most ratings, as in MovieLens).

Every scale runs in its own process. Memory is the kernel's peak resident size (VmHWM), reset right before the
step it measures: "fit peak" is what ALSGenerator.fit needs above the process's memory before it (the input
matrix is already there and counted separately). ALS uses the app's settings (chatrec/settings.py: factors,
regularization, alpha, iterations) on implicit's CPU solver with all cores, unless flags say otherwise.

The CSV part writes a synthetic ratings.csv (ml-32m's format) and reads it with retrieval.datasets.read_ratings_csv
(pandas' C parser in 2M-row chunks into numeric arrays), next to the csv-module path the small loaders use (every
row a dict, then Python lists) for the ratio.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ML32M = {"users": 200_948, "items": 87_585, "ratings": 32_000_204}
MIN_PER_USER = 20


def _peak_mb() -> float:
    """Peak resident memory (VmHWM) since the last `_reset_peak`, in MiB."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:  # "5" resets the peak to the current resident size (Linux)
        f.write("5")


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def synthetic(fraction: float, seed: int = 0):
    """(user, item, rating) arrays with ml-32m's shape scaled by `fraction` (unique user-item pairs)."""
    rng = np.random.default_rng(seed)
    n_users = max(1, round(ML32M["users"] * fraction))
    target = round(ML32M["ratings"] * fraction)
    mean = ML32M["ratings"] / ML32M["users"]
    # Log-normal activity above the floor, scaled so the mean matches ml-32m.
    extra = rng.lognormal(mean=0.0, sigma=1.2, size=n_users)
    counts = MIN_PER_USER + np.floor(extra / extra.mean() * (mean - MIN_PER_USER)).astype(np.int64)
    counts = np.minimum(counts, ML32M["items"] // 2)
    pop = 1.0 / np.arange(1, ML32M["items"] + 1) ** 0.9
    pop /= pop.sum()
    perm = rng.permutation(ML32M["items"])  # popular films anywhere in the id range
    # Oversample, drop repeated (user, film) pairs, then trim to the target count.
    draw = (counts * 1.25).astype(np.int64)
    users = np.repeat(np.arange(n_users, dtype=np.int64), draw)
    items = perm[rng.choice(ML32M["items"], size=len(users), p=pop)]
    codes = np.unique(users * ML32M["items"] + items)
    del users, items
    if len(codes) > target:
        codes = np.sort(rng.choice(codes, size=target, replace=False))
    users, items = np.divmod(codes, ML32M["items"])
    stars = rng.choice(np.arange(1, 11) / 2, size=len(codes),
                       p=np.array([1, 2, 2, 5, 4, 12, 12, 24, 14, 24], dtype=np.float64) / 100).astype(np.float32)
    return n_users, users, items, stars


def _data_child(fraction: float, path: str, out: mp.Queue) -> None:
    """Makes the synthetic ALS input and saves it: the fit then runs in a fresh process, so it cannot reuse
    memory that making the data left behind (that would hide what the fit needs)."""
    import scipy.sparse as sp

    from chatrec.settings import Settings

    s = Settings()
    base = _current_rss_mb()
    _reset_peak()
    t0 = time.perf_counter()
    n_users, users, items, stars = synthetic(fraction)
    keep = stars >= s.als_min_rating  # as the app builds its ALS input
    m = sp.csr_matrix((1.0 + stars[keep], (users[keep], items[keep])), shape=(n_users, ML32M["items"]),
                      dtype=np.float32)
    gen_s = time.perf_counter() - t0
    sp.save_npz(path, m, compressed=False)
    out.put({"users": n_users, "nnz": int(m.nnz), "gen_s": gen_s, "gen_peak_mb": _peak_mb() - base,
             "matrix_mb": (m.data.nbytes + m.indices.nbytes + m.indptr.nbytes) / 2**20})


def _fit_child(path: str, iterations: int | None, out: mp.Queue) -> None:
    import scipy.sparse as sp

    from chatrec.settings import Settings
    from retrieval.candidates import ALSConfig, ALSGenerator
    from retrieval.types import Catalog, Interactions, Item

    s = Settings()
    cfg = ALSConfig(factors=s.als_factors, regularization=s.als_regularization, alpha=s.als_alpha,
                    iterations=iterations or s.als_iterations, num_threads=0)
    catalog = Catalog([Item(id=f"syn:{i}", title=str(i)) for i in range(ML32M["items"])], "synthetic")
    m = sp.load_npz(path)
    inter = Interactions(m, [str(u) for u in range(m.shape[0])])
    before_fit = _current_rss_mb()
    _reset_peak()
    t0 = time.perf_counter()
    ALSGenerator(cfg).fit(inter, catalog)
    out.put({"fit_s": time.perf_counter() - t0, "iterations": cfg.iterations, "factors": cfg.factors,
             "fit_extra_mb": _peak_mb() - before_fit})


def _csv_child(path: str, how: str, out: mp.Queue) -> None:
    import pandas  # noqa: F401  imported before the clock starts, for both readers alike

    from retrieval import datasets as d
    from retrieval.types import Catalog, Item

    catalog = Catalog([Item(id=f"ml32m:{i}", title=str(i)) for i in range(1, ML32M["items"] + 1)], "synthetic")
    base = _current_rss_mb()
    _reset_peak()
    t0 = time.perf_counter()
    if how == "streamed":
        r = d.read_ratings_csv(Path(path), catalog, "ml32m")
    else:  # the csv-module path of the small loaders: every row a dict, then Python lists
        rows = ((x["userId"], x["movieId"], x["rating"], x["timestamp"]) for x in d._csv_rows(Path(path)))
        r = d._index_ratings(catalog, "ml32m", rows, Path(path))
    out.put({"how": how, "rows": len(r), "s": time.perf_counter() - t0, "peak_mb": _peak_mb() - base})


def _in_child(target, *args) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    res = q.get()
    p.join()
    return res


def write_csv(path: Path, n_rows: int) -> None:
    import pandas as pd

    fraction = n_rows / ML32M["ratings"]
    _, users, items, stars = synthetic(fraction, seed=1)
    ts = np.random.default_rng(2).integers(789_652_009, 1_697_164_147, size=len(users))
    pd.DataFrame({"userId": users + 1, "movieId": items + 1, "rating": stars, "timestamp": ts}).to_csv(
        path, index=False, float_format="%g")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fractions", default="0.03125,0.125,0.5,1", help="of ml-32m's users and ratings")
    p.add_argument("--iterations", type=int, default=None, help="ALS iterations (default: the app's setting)")
    p.add_argument("--csv-rows", type=int, default=5_000_000, help="rows of the synthetic ratings.csv (0 = skip)")
    p.add_argument("--no-baseline", action="store_true", help="skip the csv-module reader (slow, GBs)")
    args = p.parse_args(argv)
    import implicit
    import threadpoolctl

    print(f"implicit {implicit.__version__}; BLAS {[i['internal_api'] for i in threadpoolctl.threadpool_info()]}; "
          f"{mp.cpu_count()} CPUs")
    rows = []
    for f in (float(x) for x in args.fractions.split(",") if x.strip()):
        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp) / "matrix.npz")
            r = {"fraction": f, **_in_child(_data_child, f, path)}
            r.update(_in_child(_fit_child, path, args.iterations))
        rows.append(r)
        print(f"  fraction {f:g}: {r['users']:,} users, {r['nnz']:,} nnz, data {r['gen_s']:.0f} s "
              f"(+{r['gen_peak_mb']:.0f} MiB), fit {r['fit_s']:.1f} s (+{r['fit_extra_mb']:.0f} MiB)", flush=True)
    print("\nALS fit at ml-32m shape (synthetic; ratings ≥ 3 as the app's ALS input, 87,585 items)")
    print(f"{'fraction':>8} {'users':>9} {'nonzeros':>12} {'data s':>7} {'fit s':>7} {'s/iter':>7} "
          f"{'matrix MiB':>10} {'fit peak MiB':>12} {'ALS total MiB':>13}")
    for r in rows:
        print(f"{r['fraction']:>8g} {r['users']:>9,} {r['nnz']:>12,} {r['gen_s']:>7.1f} {r['fit_s']:>7.1f} "
              f"{r['fit_s'] / r['iterations']:>7.2f} {r['matrix_mb']:>10.0f} {r['fit_extra_mb']:>12.0f} "
              f"{r['matrix_mb'] + r['fit_extra_mb']:>13.0f}")
    if len(rows) >= 2:
        a, b = rows[-2], rows[-1]
        print(f"\nscaling {a['fraction']:g} → {b['fraction']:g}: nonzeros ×{b['nnz'] / a['nnz']:.2f}, "
              f"fit time ×{b['fit_s'] / a['fit_s']:.2f}, fit peak memory ×{b['fit_extra_mb'] / max(a['fit_extra_mb'], 1):.2f}")
    if rows[-1]["fraction"] < 1 and len(rows) >= 2:
        # Each iteration solves every item (87,585 × factors², whatever the users) plus work per nonzero, so
        # time and memory are affine in the nonzeros: fit the line through the two largest runs.
        a, b = rows[-2], rows[-1]
        full = b["nnz"] / b["fraction"]
        for key, unit in (("fit_s", "s fit"), ("fit_extra_mb", "MiB fit peak")):
            slope = (b[key] - a[key]) / (b["nnz"] - a["nnz"])
            print(f"extrapolated to full ml-32m ({full:,.0f} nonzeros): ≈ {b[key] + slope * (full - b['nnz']):.0f} "
                  f"{unit} (affine in nonzeros through the two largest runs; not measured)")
    print(f"({rows[-1]['factors']} factors, {rows[-1]['iterations']} iterations; 'fit peak' = peak resident memory "
          "during ALSGenerator.fit above what the process held before it, the input matrix being already there; "
          "'ALS total' = input matrix + fit peak)")

    if args.csv_rows:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "ratings.csv"
            t0 = time.perf_counter()
            write_csv(path, args.csv_rows)
            print(f"\nratings.csv reader: {args.csv_rows:,} synthetic rows, {path.stat().st_size / 2**20:.0f} MiB "
                  f"(written in {time.perf_counter() - t0:.0f} s)")
            hows = ["streamed"] + ([] if args.no_baseline else ["csv-module"])
            res = {h: _in_child(_csv_child, str(path), h) for h in hows}
            for h, r in res.items():
                print(f"  {h:>10}: {r['s']:6.1f} s, {r['rows'] / r['s'] / 1e6:5.2f} M rows/s, "
                      f"peak +{r['peak_mb']:.0f} MiB")
            if len(res) == 2:
                s, c = res["streamed"], res["csv-module"]
                print(f"  streamed vs csv-module: {c['s'] / s['s']:.1f}x faster, {c['peak_mb'] / s['peak_mb']:.1f}x "
                      "less peak memory")
            r = res["streamed"]
            print(f"  extrapolated to ml-32m's 32,000,204 rows: ≈ {r['s'] * ML32M['ratings'] / r['rows']:.0f} s, "
                  f"≈ {r['peak_mb'] * ML32M['ratings'] / r['rows'] / 1024:.1f} GiB peak (proportional to rows; "
                  "not measured)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
