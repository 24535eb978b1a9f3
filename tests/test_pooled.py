"""Pooling MovieLens sets into one ALS input: item joins, user prefixes, weights, the app setting, the eval command."""
from __future__ import annotations

import numpy as np
import pytest

from chatrec.bootstrap import fit_generators
from chatrec.eval import pooling
from chatrec.settings import Settings
from retrieval.datasets import Dataset, load_dataset
from retrieval.pooled import load_pooled, map_items, pool
from retrieval.titles import normalise_title
from retrieval.types import Catalog, Interactions, Item, Ratings
from tests.conftest import SHARED_DATA, requires_data


def _movie(prefix: str, mid: int, raw: str) -> Item:
    title, year, alts = normalise_title(raw)
    return Item(id=f"{prefix}:{mid}", title=title, year=year, extra={"alt_titles": " | ".join(alts)} if alts else {})


def _dataset(name: str, prefix: str, films: dict[int, str], rows: list[tuple[str, int, float]]) -> Dataset:
    """rows: (user id, movie id, rating)."""
    cat = Catalog([_movie(prefix, m, t) for m, t in films.items()], name)
    users = list(dict.fromkeys(u for u, _, _ in rows))
    ratings = Ratings(np.array([users.index(u) for u, _, _ in rows], dtype=np.int64),
                      np.array([cat.row(f"{prefix}:{m}") for _, m, _ in rows], dtype=np.int64),
                      np.array([r for _, _, r in rows], dtype=np.float32),
                      np.arange(len(rows), dtype=np.int64), tuple(users))
    return Dataset(name, cat, ratings)


TARGET_TITLES = [
    "Star Wars: Episode IV - A New Hope (1977)", "Star Wars Holiday Special, The (1978)",
    "Monty Python and the Holy Grail (1975)", "Fear (1996)", "Langoliers, The (1995)",
    "William Shakespeare's Romeo + Juliet (1996)", "Heat (1995)", "Heat (1986)",
    "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
]


def test_title_join_cascade_is_precise():
    target = Catalog([_movie("mls", i + 1, t) for i, t in enumerate(TARGET_TITLES)], "t")
    source = Catalog([_movie("ml100k", i + 1, t) for i, t in enumerate([
        "Star Wars (1977)",  # a piece of the target's title, same year
        "Monty Python and the Holy Grail (1974)",  # year drift by one
        "Fear, The (1995)",  # another film: the article differs, so year ±1 must not join it
        "Stephen King's The Langoliers (1995)",  # possessive prefix
        "William Shakespeare's Romeo and Juliet (1996)",  # near-identical title
        "Heat (1995)",  # exact, although another "Heat" exists in 1986
        "Cité des enfants perdus, La (1995)",  # the target's alternative title
        "Heat (1987)",  # ±1 of the 1986 film only
        "Unknown Film (1990)",
    ])], "s")
    m = map_items(source, target)
    got = [target.id_of(r) if r >= 0 else None for r in m.rows]
    assert got == ["mls:1", "mls:3", None, "mls:5", "mls:6", "mls:7", "mls:9", "mls:8", None]
    assert m.how == {"title part": 2, "year ±1": 2, "near title": 1, "title+year": 2}


def test_ambiguous_titles_do_not_join():
    target = Catalog([_movie("mls", 1, "Heat (1995)"), _movie("mls", 2, "Heat (1997)")], "t")
    source = Catalog([_movie("ml100k", 1, "Heat (1996)")], "s")  # ±1 of both: no way to tell
    assert map_items(source, target).rows.tolist() == [-1]


def test_movielens_ids_join_by_id():
    target = Catalog([_movie("mls", 1, "Toy Story (1995)"), _movie("mls", 5, "Heat (1995)")], "t")
    source = Catalog([_movie("ml1m", 5, "Heat (1995)"), _movie("ml1m", 9, "Sudden Death (1995)")], "s")
    m = map_items(source, target)
    assert m.rows.tolist() == [1, -1] and m.how == {"id": 1}


def _tiny_pool():
    target = _dataset("ml-latest-small", "mls", {1: "A (1990)", 2: "B (1991)", 3: "C (1992)"},
                      [("1", 1, 4.0), ("1", 2, 5.0), ("2", 2, 3.0)])
    ml1m = _dataset("ml-1m", "ml1m", {1: "A (1990)", 99: "Z (1999)", 3: "C (1992)"},
                    [("1", 1, 4.0), ("1", 99, 5.0), ("7", 3, 2.0), ("8", 99, 4.0)])
    return target, ml1m


def test_pool_prefixes_users_weights_values_and_reports():
    target, ml1m = _tiny_pool()
    pooled = pool(target, [(ml1m, 0.5)])
    inter = pooled.interactions(confidence="linear")
    # Target users first with their own ids; ML-1M's user "1" is someone else; user "8" rated only a film the
    # target lacks, so they add nothing.
    assert inter.user_ids == ("1", "2", "ml1m:1", "ml1m:7")
    dense = inter.matrix.toarray()
    assert dense[:2].tolist() == [[5.0, 6.0, 0.0], [0.0, 4.0, 0.0]]
    assert dense[2:].tolist() == [[2.5, 0.0, 0.0], [0.0, 0.0, 1.5]]  # (1 + rating) × 0.5
    (r,) = pooled.reports
    assert (r.ratings, r.users, r.items, r.new_items, r.dropped) == (2, 2, 2, 1, 2)
    assert "+2 ratings, +2 users" in pooled.describe() and pooled.name == "ml-latest-small+ml-1m×0.5"


def test_weight_zero_is_the_target_alone():
    target, ml1m = _tiny_pool()
    alone = Interactions.from_ratings(target.ratings, 3, confidence="linear", min_rating=3.0)
    for pooled in (pool(target, [(ml1m, 0.0)]), pool(target, [(ml1m, 1.0)]).reweighted({"ml-1m": 0.0})):
        inter = pooled.interactions(confidence="linear", min_rating=3.0)
        assert inter.user_ids == alone.user_ids and (inter.matrix != alone.matrix).nnz == 0
        assert pooled.reports[0].note == "weight 0: left out" and pooled.name == "ml-latest-small"
    with pytest.raises(ValueError, match="finite number"):
        pool(target, [(ml1m, -1.0)])


def test_training_part_replaces_the_target_ratings():
    target, ml1m = _tiny_pool()
    pooled = pool(target, [(ml1m, 1.0)])
    train = target.ratings.subset(np.array([True, False, True]))
    inter = pooled.interactions(target=train, confidence="binary")
    assert inter.matrix.toarray()[0].tolist() == [1.0, 0.0, 0.0]  # the held-out rating is not in the input


@requires_data("ml-latest-small", "ml-1m", "ml-100k")
def test_real_sets_pool_into_ml_latest_small(locator, ml_small):
    pooled = load_pooled(ml_small, locator, {"ml-1m": 1.0, "ml-100k": 0.5})
    r1m, r100k = pooled.reports
    assert (r1m.name, r1m.users, r1m.matched_by) == ("ml-1m", 2999, {"id": 2949})
    assert r1m.ratings == 479_566 and r1m.ratings + r1m.dropped == 487_650
    assert r100k.users == 943 and sum(r100k.matched_by.values()) >= 1340 and r100k.ratings > 98_000
    ml100k = load_dataset("ml-100k", locator, with_text=False)
    rows = map_items(ml100k.catalog, ml_small.catalog).rows
    star_wars = rows[ml100k.catalog.row("ml100k:50")]
    assert ml_small.catalog.id_of(star_wars) == "mls:260"  # Star Wars: Episode IV - A New Hope (1977)
    inter = pooled.interactions(confidence="linear", min_rating=3.0)
    assert inter.n_users == 610 + 2999 + 943 and inter.user_ids[:610] == ml_small.ratings.user_ids


@requires_data("ml-latest-small", "ml-1m", "ml-100k")
def test_app_setting_pools_the_als_input_with_its_own_cache(ml_small, tmp_path):
    base = Settings(data_dir=SHARED_DATA, cache_dir=tmp_path, allow_download=False, als_factors=8,
                    als_iterations=2, pool_movielens=False)
    alone, _ = fit_generators(base, ml_small)
    pooled, _ = fit_generators(base.replace(pool_movielens=True), ml_small)
    assert alone.interactions.n_users == 610 and pooled.interactions.n_users == 610 + 2999 + 943
    assert alone.cache_path != pooled.cache_path and pooled.cache_path.is_file()
    again, _ = fit_generators(base.replace(pool_movielens=True), ml_small)
    assert again.loaded_from_cache and again.cache_path == pooled.cache_path
    recs = pooled.recommend_for_items(["mls:260"], 10)  # a new user: folded in against the pooled factors
    assert len(recs) == 10 and "mls:260" not in recs.ids and all(i in ml_small.catalog for i in recs.ids)


def test_weight_grid_parsing():
    grid = pooling.parse_weights("ml-1m=0,1;ml-100k=0.5", "ml-latest-small")
    assert grid == [(("ml-1m", 0.0), ("ml-100k", 0.5)), (("ml-1m", 1.0), ("ml-100k", 0.5))]
    for bad in ("ml-latest-small=1", "netflix=1", "ml-1m=x", "ml-1m=-1"):
        with pytest.raises(ValueError):
            pooling.parse_weights(bad, "ml-latest-small")


@requires_data("ml-latest-small", "ml-100k")
def test_pooled_command_writes_a_report(tmp_path, monkeypatch, capsys):
    # The command takes ALS settings and the data folder from CHATREC_* like the app; small ALS for speed.
    for k, v in {"CHATREC_DATA_DIR": str(SHARED_DATA), "CHATREC_CACHE_DIR": str(tmp_path / "cache"),
                 "CHATREC_ALLOW_DOWNLOAD": "0", "CHATREC_ALS_FACTORS": "8", "CHATREC_ALS_ITERATIONS": "2"}.items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "report"
    assert pooling.main(["--weights", "ml-100k=0,1", "--seeds", "1", "--users", "40", "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "none (the target alone)" in text and "ml-100k 1" in text and "8 factors" in text
    assert (out / "pooled-delta.png").is_file()
    assert "best NDCG@10" in capsys.readouterr().out


def test_default_weights_pool_nothing_into_the_big_sets(tmp_path):
    from retrieval.datasets import DataLocator

    big = _dataset("ml-32m", "ml32m", {1: "A (1990)"}, [("1", 1, 4.0)])
    # Nothing to look up: an empty data folder with downloads off must not matter.
    pooled = load_pooled(big, DataLocator(data_dir=tmp_path, cache_dir=tmp_path, allow_download=False))
    assert pooled.name == "ml-32m" and not pooled.parts
    assert all(r.note == "weight 0: left out" for r in pooled.reports)
