"""Invariants of the offline protocols on tiny synthetic ratings built here (no data files needed)."""
from __future__ import annotations

import numpy as np
import pytest

from chatrec.eval.protocols import (ProtocolError, chatrec_split, k_core, lmrecsys_split, loo_split, time_order)
from retrieval.datasets import Dataset
from retrieval.types import Catalog, Item, Ratings


def _catalog(n: int) -> Catalog:
    return Catalog([Item(id=f"t:{i}", title=f"Movie {i}") for i in range(n)], name="tiny")


def _ratings(users, items, rating, ts) -> Ratings:
    users = np.asarray(users, dtype=np.int64)
    return Ratings(users, np.asarray(items, dtype=np.int64), np.asarray(rating, dtype=np.float32),
                   np.asarray(ts, dtype=np.int64), tuple(f"u{i}" for i in range(int(users.max()) + 1)))


def _random_ratings(n_users=40, n_items=60, per_user=(8, 30), seed=7) -> Ratings:
    rng = np.random.default_rng(seed)
    u, i, r, t = [], [], [], []
    for user in range(n_users):
        n = int(rng.integers(*per_user))
        items = rng.choice(n_items, size=n, replace=False)
        u += [user] * n
        i += items.tolist()
        r += rng.integers(1, 6, size=n).tolist()
        t += rng.integers(0, 20, size=n).tolist()  # few distinct seconds: many ties
    perm = rng.permutation(len(u))  # file order is not grouped by user
    return _ratings(np.array(u)[perm], np.array(i)[perm], np.array(r)[perm], np.array(t)[perm])


# --- Chat-REC --------------------------------------------------------------------------------------------------

def test_chatrec_split_holds_out_20_percent_of_liked_items():
    r = _random_ratings()
    cat = _catalog(60)
    s = chatrec_split(r, cat, n_users=10, seed=3)
    assert len(s.users) == len(set(s.users.tolist())) == 10
    assert len(s.train) + sum(len(t) for t in s.truth) == len(r)
    for u, truth in zip(s.users, s.truth):
        liked = set(r.item[(r.user == u) & (r.rating >= 4)].tolist())
        train_items = set(s.train.item[s.train.user == u].tolist())
        assert set(truth.tolist()) <= liked
        assert not set(truth.tolist()) & train_items  # ground truth never in train
        assert len(truth) == max(1, round(0.2 * len(liked)))
    # other users' ratings are untouched
    assert (~np.isin(s.train.user, s.users)).sum() == (~np.isin(r.user, s.users)).sum()


def test_chatrec_split_is_deterministic_per_seed():
    r, cat = _random_ratings(), _catalog(60)
    a, b, c = (chatrec_split(r, cat, n_users=10, seed=s) for s in (1, 1, 2))
    assert a.users.tolist() == b.users.tolist()
    assert [t.tolist() for t in a.truth] == [t.tolist() for t in b.truth]
    assert a.users.tolist() != c.users.tolist() or [t.tolist() for t in a.truth] != [t.tolist() for t in c.truth]


def test_chatrec_split_rejects_too_many_users():
    with pytest.raises(ProtocolError, match="at most"):
        chatrec_split(_random_ratings(), _catalog(60), n_users=1000)


# --- time order and leave-one-out -----------------------------------------------------------------------------

def test_time_order_breaks_ties_by_file_line():
    r = _ratings([0, 0, 0, 1, 0], [10, 11, 12, 13, 14], [5] * 5, [9, 5, 9, 1, 9])
    order = time_order(r)
    assert r.item[order].tolist() == [11, 10, 12, 14, 13]


def _loo_ratings() -> Ratings:
    # 6 users x 6 items, everyone rated everything (survives 5-core). User 0 rates items 3, 4 and 5 in the same
    # second, file order 4 → 5 → 3: by the line-order tie-break the last is 3, the second-to-last 5.
    u, i, t = [], [], []
    for user in range(6):
        for item in range(6):
            u.append(user)
            i.append(item)
            t.append(100 + item if user else {0: 1, 1: 2, 2: 3, 4: 50, 5: 50, 3: 50}[item])
    order = [0, 1, 2, 4, 5, 3] + list(range(6, 36))
    return _ratings(np.array(u)[order], np.array(i)[order], [4] * 36, np.array(t)[order])


def test_loo_uses_last_item_by_time_with_line_order_tie_break():
    r, cat = _loo_ratings(), _catalog(6)
    test = loo_split(r, cat, which="test")
    val = loo_split(r, cat, which="validation")
    assert test.truth[0].tolist() == [3] and val.truth[0].tolist() == [5]
    assert all(t.tolist() == [5] for t in test.truth[1:])
    assert all(t.tolist() == [4] for t in val.truth[1:])
    # test training keeps the validation item; validation training drops both
    assert len(test.train) == 36 - 6 and len(val.train) == 36 - 12
    for s in (test, val):
        for u, truth in zip(s.users, s.truth):
            assert truth[0] not in s.train.item[s.train.user == u]


def test_k_core_is_iterated_until_stable():
    # Items 0-4 are rated by users 0-4 (a dense 5x5 block). User 5 rated items 0-4 and 5; item 5 is also rated by
    # users 6-9, who rated nothing else → they fail the user filter, then item 5 (left with 1 rating) fails too.
    u, i = [], []
    for user in range(6):
        for item in range(5):
            u.append(user)
            i.append(item)
    for user in range(5, 10):
        u.append(user)
        i.append(5)
    r = _ratings(u, i, [4] * len(u), range(len(u)))
    keep = k_core(r, 5)
    assert set(r.item[keep].tolist()) == {0, 1, 2, 3, 4}
    assert set(r.user[keep].tolist()) == {0, 1, 2, 3, 4, 5}


def test_k_core_invariant_on_random_data():
    r = _random_ratings(n_users=60, n_items=80, per_user=(2, 15))
    keep = k_core(r, 5)
    kept = r.subset(keep)
    assert (np.bincount(kept.user)[np.unique(kept.user)] >= 5).all()
    assert (np.bincount(kept.item)[np.unique(kept.item)] >= 5).all()
    s = loo_split(r, _catalog(80))
    assert s.n_items == len(np.unique(kept.item)) and len(s.users) == len(np.unique(kept.user))
    assert len(s.train) == keep.sum() - len(s.users)


# --- LMRecSys --------------------------------------------------------------------------------------------------

def test_lmrecsys_split_first_five_predict_sixth():
    r, cat = _random_ratings(n_users=30, per_user=(8, 20)), _catalog(60)
    ds = Dataset("tiny", cat, r)
    res = lmrecsys_split(ds, n_users=10, seed=0)
    cases, train = res  # unpacks as (cases, train interactions)
    assert len(cases) == 10 and train.n_items == 60
    order = time_order(r)
    for case, u in zip(cases, res.split.users):
        seq = r.item[order][r.user[order] == u]
        assert case.user_id == r.user_ids[u]
        assert case.history == cat.ids_of(seq[:5]) and case.target == cat.id_of(seq[5])
        assert sorted(train.items_of(int(u)).tolist()) == sorted(seq[:5].tolist())
    others = [u for u in range(r.n_users) if u not in set(res.split.users.tolist())]
    for u in others:
        assert len(train.items_of(u)) == len(set(r.item[r.user == u].tolist()))
    again = lmrecsys_split(ds, n_users=10, seed=0)
    assert again.cases == res.cases
    everyone = lmrecsys_split(ds)
    assert len(everyone.cases) == 30 and everyone.train.matrix.nnz == 30 * 5


def test_loo_validation_depth_moves_the_target_back():
    r, cat = _loo_ratings(), _catalog(6)
    deep = loo_split(r, cat, which="validation", depth=2)
    assert deep.truth[0].tolist() == [4] and all(t.tolist() == [3] for t in deep.truth[1:])
    assert len(deep.train) == 36 - 18  # the target and everything after it are withheld
    with pytest.raises(ValueError, match="depth"):
        loo_split(r, cat, which="validation", depth=4)
