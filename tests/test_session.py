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
