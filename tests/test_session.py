"""Session: mutation helpers keep lists consistent; JSON round trip; bad saved sessions give typed errors."""
import pytest

from chatrec.session import Clarification, Session


def test_like_dislike_are_exclusive_and_deduplicated():
    s = Session()
    s.like("mls:1")
    s.like("mls:1")
    assert s.liked == ["mls:1"]
    s.dislike("mls:1")
    assert s.liked == [] and s.disliked == ["mls:1"]
    s.like("mls:1")
    assert s.liked == ["mls:1"] and s.disliked == []


def test_excluded_covers_every_list():
    s = Session()
    s.like("a")
    s.dislike("b")
    s.mark_seen("c")
    s.show(["d", "e"])
    assert s.excluded() == {"a", "b", "c", "d", "e"}
    assert s.last_cards == ["d", "e"]


def test_json_round_trip_keeps_everything():
    s = Session(language="ko")
    s.add_turn("user", "인터스텔라 같은 영화")
    s.like("mls:109487")
    s.add_wish("SF")
    s.pending = Clarification("matrix", ["mls:2571", "mls:6365"], "like", "movie")
    s.card_notes = {"mls:1": ["reason", "source"]}
    back = Session.from_json(s.to_json())
    assert back == s
    assert isinstance(back.pending, Clarification)
    assert "인터스텔라" in s.to_json()  # not escaped: readable when saved


def test_history_is_bounded():
    s = Session()
    for i in range(100):
        s.add_turn("user", str(i))
    assert len(s.history) == 40 and s.history[-1].text == "99"


def test_evidence_key_changes_with_evidence():
    s = Session()
    k0 = s.evidence_key()
    s.like("x")
    assert s.evidence_key() != k0


def test_copy_is_independent_and_replace_with_commits():
    s = Session()
    w = s.copy()
    w.like("x")
    assert s.liked == []
    s.replace_with(w)
    assert s.liked == ["x"]


@pytest.mark.parametrize("text,msg", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"version": 99}', "version"),
    ('{"bogus": 1}', "unknown fields"),
    ('{"language": "fr"}', "language"),
])
def test_bad_saved_sessions_raise_value_error(text, msg):
    with pytest.raises(ValueError, match=msg):
        Session.from_json(text)


def test_restore_drops_unknown_ids_caps_lists_and_bad_state():
    from chatrec.session import MAX_SAVED_LIST, restore

    s = Session(language="ko")
    s.liked = [f"mls:{i}" for i in range(2000)] + ["evil:1"]
    s.disliked = ["mls:1999", "evil:2"]  # also liked: a forged state cannot make both true
    s.last_cards = ["mls:5", "evil:3"]
    s.card_notes = {"mls:5": ["why", "src", "extra"], "evil:3": ["x", "y"]}
    s.state = {"not_a_wish_field": 1}
    s.focus = "evil:4"
    s.add_turn("user", "x" * 10_000)
    known = lambda i: i.startswith("mls:")  # noqa: E731
    r = restore(s.to_json(), known)
    assert 0 < len(r.liked) <= MAX_SAVED_LIST and all(known(i) for i in r.liked)
    assert r.disliked == []
    assert r.last_cards == ["mls:5"] and r.card_notes == {"mls:5": ["why", "src"]}
    assert r.state == {} and r.focus is None
    assert len(r.history[0].text) <= 4000


@pytest.mark.parametrize("saved", [None, 42, "", "not json", '{"version": 1}', '{"liked": "mls:1"}', "x" * 300_000])
def test_restore_refuses_what_is_not_a_saved_session(saved):
    from chatrec.session import restore

    with pytest.raises(ValueError):
        restore(saved, lambda i: True)


def test_unmark_takes_back_any_mark():
    s = Session()
    s.like("a")
    s.mark_seen("b")
    s.show(["b"])
    assert s.unmark("a") and s.unmark("b") and not s.unmark("c")
    assert s.liked == [] and s.seen == [] and "b" not in s.excluded()


def test_restore_bounds_the_saved_wish_and_question():
    """A saved wish with a tone key this version lacks, a junk polarity or an endless query must not make every later
    turn apologise (issue 24): unknown words go, strings and lists are capped, a bad question is dropped."""
    import json

    from chatrec.session import MAX_WISH_TEXT, restore

    known = lambda i: i.startswith("mls:")  # noqa: E731
    s = Session(state={"genres": ["Comedy", "Nonsense"], "tones": ["light", "ecstatic"], "query": "x" * 50_000,
                       "anchors": ["mls:1", "evil:1"], "origins": ["KR", "ZZ"]},
                pending=Clarification(text="Titanic" * 100, options=["mls:1", "mls:2"], polarity="weird"))
    s2 = Session(pending=Clarification(text="t", options=["mls:1"], polarity="like",
                                       request={"intent": "recommend", "wish": {"tones": ["nope"]}}))
    got = restore(s.to_json(), known)
    assert got.state["genres"] == ["Comedy"] and got.state["tones"] == ["light"] and got.state["origins"] == ["KR"]
    assert len(got.state["query"]) == MAX_WISH_TEXT and got.state["anchors"] == ["mls:1"]
    assert got.pending is None  # "weird" is no polarity
    got2 = restore(json.dumps(json.loads(s2.to_json())), known)
    assert got2.pending is not None and got2.pending.request["wish"]["tones"] == []


def test_snapshot_stays_under_the_body_cap_in_bytes():
    from chatrec.session import MAX_SNAPSHOT_BYTES, restore

    s = Session(language="ko")
    for n in range(40):
        s.add_turn("user", "가" * 3900)  # Korean: three bytes a character
    s.like("mls:1")
    snap = s.snapshot()
    assert len(snap.encode("utf-8")) <= MAX_SNAPSHOT_BYTES
    back = restore(snap, lambda i: True)
    assert back.liked == ["mls:1"] and back.history  # the newest turns and every mark survive
