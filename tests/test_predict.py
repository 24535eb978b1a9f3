""""Would I like X?": session fold-in, interval from the measured error curve, grounded KO/EN reasons."""
from __future__ import annotations

import numpy as np
import pytest

from chatrec.predict import ErrorCurve, Prediction, predict_many, predict_rating, shared_facts
from retrieval.rating_models import BiasedMF, RatingModelError
from retrieval.types import Catalog, Item, Ratings, UnknownItemError
from tests.conftest import requires_data

N_USERS = 60


def _catalog() -> Catalog:
    """Two taste groups (Nolan sci-fi vs romance) plus one film nobody rated."""
    scifi = [Item(f"s:{i}", f"Space {i}", 2000 + i, ("Sci-Fi", "Thriller"),
                  directors=("Christopher Nolan",) if i < 3 else ("Denis Villeneuve",)) for i in range(6)]
    romance = [Item(f"r:{i}", f"Love {i}", 1990 + i, ("Romance", "Drama"), directors=(f"Director {i}",))
               for i in range(6)]
    return Catalog(scifi + romance + [Item("n:0", "Unseen", 2020, ("Documentary",))], "toy")


def _ratings(cat: Catalog) -> Ratings:
    """Half the users love sci-fi and dislike romance, the other half the reverse; the last item is never rated."""
    rng = np.random.default_rng(0)
    users, items, vals = [], [], []
    for u in range(N_USERS):
        fan = u % 2 == 0
        for row in range(12):
            if rng.random() < 0.7:
                good = (row < 6) == fan
                users.append(u)
                items.append(row)
                vals.append(float(np.clip(rng.normal(4.6 if good else 1.8, 0.4), 1, 5)))
    n = len(users)
    return Ratings(np.array(users), np.array(items), np.array(vals, dtype=np.float32), np.arange(n),
                   tuple(f"u{u}" for u in range(N_USERS)))


@pytest.fixture(scope="module")
def setup():
    cat = _catalog()
    model = BiasedMF(n_factors=4, n_epochs=60, lr_all=0.02, reg_all=0.05, seed=0).fit(_ratings(cat), len(cat))
    return cat, model


def test_liking_one_side_predicts_high_there_and_low_on_the_other(setup):
    cat, model = setup
    liked, disliked = ["s:0", "s:1", "s:3"], ["r:0", "r:1"]
    fan = predict_rating(model, cat, liked, disliked, {}, "s:2")
    other = predict_rating(model, cat, liked, disliked, {}, "r:2")
    assert fan.rating > fan.average > other.rating and other.rating < other.average
    assert 1.0 <= fan.low <= fan.rating <= fan.high <= 5.0
    assert fan.n_evidence == 5 and fan.confidence == "medium" and fan.item_known
    assert 0 <= other.match < fan.match <= 100


def test_reason_names_the_shared_director_in_both_languages(setup):
    cat, model = setup
    p = predict_rating(model, cat, ["s:0"], [], {}, "s:1")
    assert p.evidence[0].item_id == "s:0" and ("director", "Christopher Nolan") in p.evidence[0].shared
    assert "directed by Christopher Nolan" in p.reason("en") and "Space 0 (2000)" in p.reason("en")
    assert "Christopher Nolan 감독" in p.reason("ko") and "좋아하신 Space 0 (2000)" in p.reason("ko")
    assert p.confidence == "low" and "only 1 title" in p.reason("en") and "1편뿐" in p.reason("ko")


def test_the_interval_narrows_as_the_session_tells_more(setup):
    cat, model = setup
    one = predict_rating(model, cat, ["s:0"], [], {}, "s:5")
    many = predict_rating(model, cat, ["s:0", "s:1", "s:2", "s:3", "s:4"], ["r:0", "r:1", "r:2", "r:3", "r:4"], {},
                          "s:5")
    assert (many.high - many.low) < (one.high - one.low)
    assert many.confidence == "high"


def test_nothing_known_gives_the_average_and_says_so(setup):
    cat, model = setup
    p = predict_rating(model, cat, [], [], {}, "s:4")
    assert p.rating == pytest.approx(p.average) and p.n_evidence == 0 and p.confidence == "low"
    assert "don't know your taste" in p.reason("en") and "취향을 몰라서" in p.reason("ko")


def test_an_unrated_item_and_an_own_rating_are_answered_honestly(setup):
    cat, model = setup
    cold = predict_rating(model, cat, ["s:0", "s:1", "s:2"], [], {}, "n:0")
    assert not cold.item_known and cold.confidence == "low" and "Nobody in the ratings data" in cold.reason("en")
    own = predict_rating(model, cat, ["s:0"], [], {"r:3": 4.0}, "r:3")
    assert own.confidence == "own" and own.rating == own.low == own.high == 4.0 and "직접 4점" in own.reason("ko")
    liked_before = predict_rating(model, cat, ["s:2"], [], {}, "s:2")
    assert "already told me you liked it" in liked_before.reason("en")


def test_bad_input_is_refused_with_a_clear_error(setup):
    cat, model = setup
    with pytest.raises(UnknownItemError, match="not in catalog"):
        predict_rating(model, cat, [], [], {}, "s:99")
    with pytest.raises(RatingModelError, match="between 0.5 and 5"):
        predict_rating(model, cat, [], [], {"s:0": 9}, "s:1")
    small = Catalog(list(cat)[:5], "small")
    with pytest.raises(RatingModelError, match="fitted on 13 items"):
        predict_rating(model, small, [], [], {}, "s:1")
    # Ids outside the catalog (a book while the model covers movies) are not evidence, and do not fail.
    assert predict_rating(model, cat, ["book:1"], [], {}, "s:1").n_evidence == 0


def test_predict_many_matches_one_by_one(setup):
    cat, model = setup
    ids = ["s:1", "r:1", "n:0"]
    many = predict_many(model, cat, ["s:0"], ["r:0"], {"s:3": 5}, ids)
    assert [p.item_id for p in many] == ids and all(isinstance(p, Prediction) for p in many)
    for p in many:
        assert p.rating == pytest.approx(predict_rating(model, cat, ["s:0"], ["r:0"], {"s:3": 5}, p.item_id).rating)


def test_error_curve_lookup_and_measurement(setup):
    c = ErrorCurve((0, 1, 5), (1.0, 0.9, 0.8))
    assert c.at(0) == 1.0 and c.at(3) == 0.9 and c.at(50) == 0.8 and c.at(-2) == 1.0
    with pytest.raises(ValueError, match="start at 0"):
        ErrorCurve((1, 2), (1.0, 0.9))
    cat, model = setup
    measured = ErrorCurve.measure(lambda: BiasedMF(n_factors=4, n_epochs=30, lr_all=0.02, reg_all=0.05),
                                  _ratings(cat), len(cat), counts=(0, 1, 3), n_users=20)
    assert measured.counts == (0, 1, 3) and list(measured.rmse) == sorted(measured.rmse, reverse=True)
    assert measured.rmse[-1] < measured.rmse[0]  # folding in ratings helps on the two-taste toy data


def test_shared_facts_spell_values_as_the_target_does():
    a = Item("a", "A", genres=("Sci-Fi",), directors=("christopher nolan",), extra={"keywords": "dream, heist"})
    b = Item("b", "B", genres=("Sci-Fi", "Action"), directors=("Christopher Nolan",), extra={"keywords": "Heist"})
    assert shared_facts(a, b) == (("director", "Christopher Nolan"), ("keyword", "Heist"), ("genre", "Sci-Fi"))


@requires_data("ml-100k")
def test_star_wars_fans_are_predicted_to_like_the_empire_strikes_back(ml100k):
    cat = ml100k.catalog
    model = BiasedMF().fit(ml100k.ratings, len(cat))
    by_title = {it.label: it.id for it in cat}
    liked = [by_title["Star Wars (1977)"], by_title["Return of the Jedi (1983)"],
             by_title["Raiders of the Lost Ark (1981)"]]
    p = predict_rating(model, cat, liked, [], {}, by_title["The Empire Strikes Back (1980)"])
    assert p.rating > p.average and p.rating >= 4.0 and p.item_known
    assert "Star Wars (1977)" in p.reason("en") or "Return of the Jedi (1983)" in p.reason("en")


def test_evidence_is_ranked_by_how_much_it_moves_the_prediction(setup):
    cat, model = setup
    p = predict_rating(model, cat, ["s:0", "s:4"], ["r:0"], {}, "s:1")
    shown = p.evidence
    assert shown and all(abs(a.effect) >= abs(b.effect) for a, b in zip(shown, shown[1:]))
    # Each effect is the prediction with the title minus the prediction folded in without it.
    for e in shown:
        rest = [i for i in ("s:0", "s:4") if i != e.item_id]
        without = predict_rating(model, cat, rest, [i for i in ("r:0",) if i != e.item_id], {}, "s:1")
        assert e.effect == pytest.approx(p.rating - without.rating, abs=1e-6)
    top = shown[0]
    assert f"({top.effect:+.1f})" in p.reason("en") and f"({top.effect:+.1f})" in p.reason("ko")
