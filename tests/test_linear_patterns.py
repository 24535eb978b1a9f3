"""Every pattern that sees user text runs on RE2 (linear time), and the look-arounds it replaced keep their meaning.

The guarantee is structural: the app's modules never import Python's backtracking `re`; they compile through
`retrieval.rx`, which refuses look-arounds and back-references. The timing side (worst message ≤ 0.2 s of
understanding) is measured by `python -m benchmarks.adversarial`, not here.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from retrieval import lang, rx

ROOT = Path(__file__).resolve().parents[1]
# Modules that read only files the project controls (datasets, eval scripts), never a user's words.
OFFLINE = ("chatrec/eval/",)
APP_MODULES = sorted(p for d in ("chatrec", "retrieval", "ui") for p in (ROOT / d).rglob("*.py")
                     if not str(p.relative_to(ROOT)).startswith(OFFLINE) and p.name != "rx.py") + [ROOT / "app.py"]
_RX_FUNCS = {"compile", "search", "match", "fullmatch", "finditer", "findall", "sub", "split"}


def _imports_re(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name in ("re", "regex") for a in node.names):
            lines.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and node.module in ("re", "regex"):
            lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("path", APP_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_app_modules_use_linear_patterns_only(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert not _imports_re(tree), f"{path.name} imports the backtracking re module; use retrieval.rx"


def _literal_patterns(tree: ast.AST):
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _RX_FUNCS
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "rx" and node.args):
            try:
                yield node.lineno, ast.literal_eval(node.args[0])
            except ValueError:
                continue  # built at run time (an escaped word): compiled when used


def test_every_literal_pattern_compiles_on_re2():
    found = 0
    for path in APP_MODULES:
        for line, pattern in _literal_patterns(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(pattern, str):
                rx.compile(pattern)  # raises PatternError for a look-around or back-reference
                found += 1
    assert found > 100  # the scan really saw the app's patterns


@pytest.mark.parametrize("pattern", [r"(?<!a)b", r"a(?=b)", r"(?!x)y", r"(.)\1", r"\b영화", r"영화\b"])
def test_rx_refuses_what_re2_cannot_run_in_linear_time(pattern):
    with pytest.raises(rx.PatternError):
        rx.compile(pattern)


@pytest.mark.parametrize("pattern, text", [
    (r"\w+", "영화 abc_1 ÉTÉ"), (r"[^\w\s]", "영화, abc! 가?"), (r"\d+", "12 ٣٤"), (r"\s+", "a \u3000 b\u00a0c"),
    (r"[\uac00-\ud7a3]+", "abc 가나다"), (r"\bmovies?\b", "movies movie x"), (r"(?:a|b)+c", "aabac"),
    (r"[\]a]+", "a]a"),
])
def test_rx_means_what_re_means(pattern, text):
    assert [m.span() for m in rx.compile(pattern).finditer(text)] == [m.span() for m in re.finditer(pattern, text)]


def test_case_flags_are_kept():
    assert rx.search(r"sci-fi", "SCI-FI movies", rx.I)
    assert not rx.search(r"SF", "sf movies")


def test_finditer_where_finds_a_match_that_overlaps_a_rejected_one():
    # "aXa" with the check "not preceded by X": the second "a" is found although the first search was rejected
    pattern = rx.compile("Xa|a")
    got = [m.group(0) for m in rx.finditer_where(pattern, "Xa", lambda m: m.group(0) == "a")]
    assert got == ["a"]


def test_has_word():
    assert rx.has_word("i loved heat.", "heat")
    assert not rx.has_word("theater", "heat")
    assert rx.has_word("heatwave heat", "heat")


# The look-arounds rewritten as checks, against the patterns they replaced (kept here as the oracle).
_OLD_TERM_EN = r"(?<![A-Za-z0-9-]){}(?![A-Za-z0-9-])"
_OLD_TERM_KO = r"(?<![\uac00-\ud7a3]){}"


@pytest.mark.parametrize("text", ["sci-fi and non-action, action-packed", "action!action", "액션영화 대한국 한국 영화",
                                  "SF는 빼고 sf", "comedies comedy-drama comedy"])
def test_lexicon_words_match_as_before(text):
    for term in lang.GENRE_TERMS + lang.COUNTRY_TERMS:
        for w in term.words:
            ko = lang.has_hangul(w)
            flags = 0 if (ko or w.isupper()) else re.I
            body = re.escape(w).replace(r"\ ", r"\s*" if ko else r"\s+")
            old = re.compile((_OLD_TERM_KO if ko else _OLD_TERM_EN).format(body), flags)
            got = [m.span() for m in lang._compiled(w).finditer(text)]
            before = [m.span() for m in old.finditer(text)]
            if ko or w.endswith("s"):
                # Korean also matches where a morpheme starts, a listed plural also its singular: more, never less
                assert set(before) <= set(got), w
            else:
                assert got == before, w


_OLD_NEG_KO = re.compile(r"^\s*(?:영화|장르|쪽|계열|류|물|같은\s*거|같은\s*건|거)?\s*(?:은|는|이|가|을|를|도)?\s*"
                         r"(?:(?!\S*(?:추천|보여|알려|찾아|있어|없어))\S+\s*)?(?:말고|빼고|제외|싫|별로|아닌|아니고|없는|안\s*좋|"
                         r"대신|이외|외에|는\s*빼|못\s*보|못\s*봐|안\s*봐|안\s*볼|무서워서|질색|노노|사절|패스)")


@pytest.mark.parametrize("after", ["는 빼고", "는 무서워서 못 보고", " 영화는 싫어요", "는 추천 말고", " 좋아", "는 좀 별로",
                                   "추천해줘 말고", " 말고 코미디", "는 너무 싫어", ""])
def test_korean_negation_after_a_word_as_before(after):
    assert lang.negated_ko_after(after) == bool(_OLD_NEG_KO.match(after))


def test_years_are_whole_numbers():
    from chatrec.understand import years_in

    assert years_in("Alien (1979) or 1986, not 19999 or 21999; 2001a") == [1979, 1986, 2001]
