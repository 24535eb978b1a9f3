"""Web-app hardening, the parts that need no data: text at the boundary, secrets in settings, saved sessions,
input checks of the UI controller and the HTTP guard's decisions (issue 15; the app-level checks with the real
engine and a running server are in tests/reliability/test_web_hardening.py)."""
from __future__ import annotations

import json
import math

import pytest

from chatrec.session import Session
from chatrec.settings import Settings, from_args, from_env, redact_urls, safe_url
from retrieval.textnorm import clean_text, fold_for_matching, valid_text
from retrieval.titles import title_key

SECRET_URL = "http://alice:hunter2@127.0.0.1:9/v1?api-key=k3y-SECRET"


# ------------------------------------------------------------------------------------------------ defect 1
def test_base_url_credentials_never_shown():
    s = from_env({"CHATREC_LLM_BASE_URL": SECRET_URL, "OPENAI_API_KEY": "sk-SECRET"})
    assert s.llm_backend == "openai" and s.llm_base_url == SECRET_URL  # the client still gets the real URL
    shown = [repr(s), str(s), json.dumps(s.redacted(), default=str), redact_urls(f"LLM @ {s.llm_base_url} · ok")]
    for text in shown:
        assert "hunter2" not in text and "k3y" not in text and "sk-SECRET" not in text and "alice" not in text
    assert s.redacted()["llm_base_url"] == "http://127.0.0.1:9/v1"
    assert s.llm_api_key.get_secret_value() == "sk-SECRET"


@pytest.mark.parametrize("url,shown", [
    ("http://u:p@host:8080/v1?key=k#frag", "http://host:8080/v1"),
    ("https://api.openai.com/v1", "https://api.openai.com/v1"),
    ("http://[::1]:80/x?token=t", "http://[::1]:80/x"),
    ("http://host:99999/", "<url>"),  # unparseable port: nothing of it is shown
])
def test_safe_url(url, shown):
    assert safe_url(url) == shown


@pytest.mark.parametrize("password", ["pa'ss", "p@ss", 'p"ss', "p`s<s>"])
def test_redact_urls_hides_passwords_of_any_characters(password):
    shown = redact_urls(f"LLM at http://alice:{password}word@127.0.0.1:9/v1?k=1 is down")
    assert shown == "LLM at http://127.0.0.1:9/v1 is down"


def test_bad_setting_is_a_usage_error_without_the_value(capsys):
    with pytest.raises(SystemExit) as e:
        from_args(["--llm-api-key", "sk-SECRET", "--n-recs", "sk-SECRET-too"], env={})
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "n_recs" in err and "SECRET" not in err
    with pytest.raises(ValueError) as e2:
        Settings(llm_base_url=SECRET_URL, llm_api_key="sk-SECRET", rerank="nope")
    assert "hunter2" not in str(e2.value) and "SECRET" not in str(e2.value)


def test_auth_setting():
    assert Settings(auth="ann:pw:with:colons").login() == ("ann", "pw:with:colons")
    assert Settings().login() is None
    assert "pw" not in repr(Settings(auth="ann:pw")) and Settings(auth="ann:pw").redacted()["auth"] == "***"
    with pytest.raises(ValueError, match="user:password"):
        Settings(auth="no-colon")


# ------------------------------------------------------------------------------------------------ defects 2 and 8
def test_lone_surrogates_become_valid_text():
    assert valid_text("I loved Toy Story\ud800") == "I loved Toy Story\ufffd"
    assert valid_text("\ud83d\ude00") == "😀"  # a valid pair written as two code units is one character
    clean_text("x\udfff\ud800y").encode("utf-8")


def test_line_breaking_controls_become_spaces_and_fillers_go():
    assert clean_text("a\x85b\x0bc\x0cd\u2028e") == "a b c d e"
    assert clean_text("\u3164\u3164 인터스텔라\u200b 추천\u202e") == " 인터스텔라 추천"
    assert clean_text("line\r\nbreak\rkept") == "line\nbreak\nkept"
    assert clean_text("NUL\x00 and DEL\x7f gone") == "NUL and DEL gone"


def test_engine_clean_message_uses_the_boundary_cleaner():
    from chatrec.engine import MAX_MESSAGE_CHARS, clean_message

    assert clean_message("Recommend\x85something\ud800")[0] == "Recommend something\ufffd"
    text, cut = clean_message("가" * (10 * MAX_MESSAGE_CHARS))
    assert cut and len(text) == MAX_MESSAGE_CHARS
    assert clean_message(None) == ("", False)


def test_fold_for_matching():
    assert fold_for_matching("Ｒｅｃｏｍｍｅｎｄ ｍｏｖｉｅｓ ｌｉｋｅ Ｉｎｔｅｒｓｔｅｌｌａｒ") == \
        "Recommend movies like Interstellar"
    assert fold_for_matching("Mаtrix") == "Matrix"  # Cyrillic а inside a Latin word
    assert fold_for_matching("ΜΑΤRIX") == "MATRIX"  # Greek capitals mixed with Latin ones
    assert fold_for_matching("Матрица") == "Матрица"  # one script: what it looks like is what it is
    assert fold_for_matching("인터스텔라") == "인터스텔라"


def test_title_key_folds_look_alikes():
    assert title_key("The Mаtrix") == title_key("The Matrix") == "matrix"
    assert title_key("Ｉｎｔｅｒｓｔｅｌｌａｒ") == "interstellar"
    assert title_key("Тоу Story") == "toy story"  # Cyrillic Т, о, у next to Latin words


# ------------------------------------------------------------------------------------------------ defect 7
@pytest.mark.parametrize("bad", [
    '{"liked": [["mls:1"]]}',  # accepted before, after which every turn failed
    '{"history": [1]}',  # TypeError before
    '{"pending": {"text": "x", "options": [1]}}',
    "[" * 100_000 + "]" * 100_000,  # RecursionError before
    '{"liked": ["\\ud800"]}',  # a lone surrogate that could never be saved again
    '{"liked": "mls:1"}',
    '{"nope": 1}',
    '{"version": 999}',
    '{"language": "fr"}',
    "not json",
    123,
    None,
])
def test_session_from_json_raises_only_value_error(bad):
    with pytest.raises(ValueError):
        Session.from_json(bad)


def test_session_round_trip():
    s = Session(language="ko")
    s.add_turn("user", "인터스텔라 같은 영화 😀")
    s.like("mls:1")
    s.dislike("mls:2")
    saved = s.to_json()
    back = Session.from_json(saved)
    assert back.to_json() == saved and back.history[0].text == "인터스텔라 같은 영화 😀"


# ------------------------------------------------------------------------------------------------ UI boundary
def test_ui_input_checks():
    from ui.gradio_app import MAX_PICKS, id_input, ids_input, language_input, text_input

    assert text_input("hi\ud800", 10) == "hi\ufffd" and text_input(123, 10) == "" and text_input(["x"], 10) == ""
    assert len(text_input("x" * 10_000_000, 50)) == 50
    assert id_input("mls:1") == "mls:1" and id_input("mls:1,mls:2 ") == "mls:1,mls:2"
    assert id_input("x" * 65) == "" and id_input("a b") == "" and id_input(None) == "" and id_input(7) == ""
    assert ids_input(["mls:1"] * 10_000) == ["mls:1"]
    assert len(ids_input([f"mls:{i}" for i in range(10_000)])) == MAX_PICKS
    assert ids_input("mls:1") == [] and ids_input({"a": 1}) == []
    assert language_input("ko-KR") == "ko" and language_input(5) == "en" and language_input(None) == "en"


def test_prefs_ignore_nan_and_wrong_types():
    from chatrec.session import Session as S
    from ui.gradio_app import ChatController, Conversation, Prefs, UIConfig

    ctl = ChatController(engine=None, config=UIConfig(domains=("movie", "book")))
    conv = Conversation(session=S(), prefs=Prefs(n_recs=5))
    for bad in (math.nan, math.inf, -math.inf, "7", None, True, [3]):
        ctl.apply_prefs(conv, bad, ["book"], {"x": 1}, 3)
        assert conv.prefs == Prefs(n_recs=5)
    ctl.apply_prefs(conv, 99, "book", None, None)
    assert conv.prefs.n_recs == 10 and conv.prefs.domain == "book"


def test_conversation_copies_get_their_own_lock():
    import copy

    from ui.gradio_app import Conversation

    a = Conversation(session=Session())
    assert a.lock.acquire(timeout=0)
    b = copy.deepcopy(a)  # what gr.State does with an initial value
    assert b.lock.acquire(timeout=0), "a copy shares the original's lock"
    a.lock.release()
    b.lock.release()


# ------------------------------------------------------------------------------------------------ defect 9 (unit)
def test_host_names():
    from ui.http_guard import allowed_hosts_for, host_name

    assert host_name("Example.org:7860") == "example.org" and host_name("[::1]:7860") == "::1"
    assert host_name("127.0.0.1") == "127.0.0.1"
    loop = allowed_hosts_for("127.0.0.1")
    assert loop == {"127.0.0.1", "localhost", "::1"}
    wide = allowed_hosts_for("0.0.0.0", ["chat.example.org", " "])
    assert loop < wide and "chat.example.org" in wide and "evil.example" not in wide
