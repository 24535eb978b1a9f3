import numpy as np
import pytest
import scipy.sparse as sp

from retrieval.types import Catalog, Interactions, Item, Ratings, Scored, UnknownItemError, UnknownUserError


def _catalog():
    return Catalog([Item("t:1", "A", 1999), Item("t:2", "B"), Item("t:3", "C", 2001)], "tiny")


def test_catalog_lookups_and_immutability():
    c = _catalog()
    assert len(c) == 3 and "t:2" in c and "t:9" not in c
    assert c.row("t:3") == 2 and c.id_of(0) == "t:1" and c.ids_of([2, 0]) == ("t:3", "t:1")
    assert c["t:1"].label == "A (1999)" and c["t:2"].label == "B"
    with pytest.raises(UnknownItemError, match="t:9"):
        c.row("t:9")
    with pytest.raises(AttributeError):
        c["t:1"].title = "X"
    with pytest.raises(ValueError, match="duplicate"):
        Catalog([Item("t:1", "A"), Item("t:1", "B")])


def test_interactions_from_ratings_confidence():
    r = Ratings(np.array([0, 0, 1]), np.array([0, 2, 1]), np.array([5, 1, 4], np.float32),
                np.array([1, 2, 3]), ("u1", "u2"))
    lin = Interactions.from_ratings(r, 3, confidence="linear", alpha=1.0)
    assert lin.shape == (2, 3) and lin.matrix[0, 0] == 6.0
    pos = Interactions.from_ratings(r, 3, min_rating=4, confidence="binary")
    assert pos.matrix.nnz == 2 and list(pos.items_of(0)) == [0]
    assert pos.user_row("u2") == 1
    with pytest.raises(UnknownUserError):
        pos.user_row("nobody")
    with pytest.raises(ValueError, match="confidence"):
        Interactions.from_ratings(r, 3, confidence="cubic")
    with pytest.raises(ValueError, match="rows"):
        Interactions(sp.csr_matrix((3, 3)), ["a"])
    with pytest.raises(ValueError):
        pos.matrix.data[0] = 7  # read-only: components cannot mutate shared data


def test_scored():
    s = Scored(["a", "b"], [2.0, 1.0])
    assert list(s) == [("a", 2.0), ("b", 1.0)] and s.top(1).ids == ("a",) and len(Scored.empty()) == 0
    with pytest.raises(ValueError):
        Scored(["a"], [1.0, 2.0])
