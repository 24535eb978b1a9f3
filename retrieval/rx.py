"""Regular expressions over user text, in linear time: Python `re` syntax, matched by RE2 (google-re2).

Python's `re` backtracks: one pattern with nested repeats took a minute on a 2,000-character message and held the
GIL, so every other session waited. RE2 matches in time linear in the text whatever the pattern, so every pattern
that sees a user's words is compiled here (tests/test_linear_patterns.py checks that no module does otherwise).

`compile(pattern, flags)` takes the patterns as they were written for `re` and translates the parts whose meaning
differs in RE2, so a pattern means what it meant before:
- `re.I` / `re.S` / `re.M` become inline flags;
- `\\w \\d \\s` (and their negations) are Unicode-aware in Python and ASCII in RE2: they become Unicode classes
  (Hangul is a word character, as in Python);
- `\\uXXXX` escapes become `\\x{XXXX}`; `\\Z` becomes `\\z`.
What RE2 cannot do — look-arounds and back-references, the features that make backtracking necessary — raises
`PatternError`: such a pattern is rewritten, not run slowly. `\\b` stays RE2's ASCII word boundary, which agrees
with Python's next to Latin letters and digits; a pattern must not put `\\b` next to a Hangul letter (it would
never match there), which `compile` also rejects.
"""
from __future__ import annotations

import functools
import re as _re
from typing import Callable, Iterator

import re2

IGNORECASE = I = _re.IGNORECASE
DOTALL = S = _re.DOTALL
MULTILINE = M = _re.MULTILINE
escape = _re.escape  # Python's escaping is valid RE2 syntax (a backslash before any non-word character)

_WORD = r"\p{L}\p{N}\p{M}_"
_SPACE = r"\t\n\v\f\r\x{1c}-\x{1f}\p{Z}\x{85}"
_OUTSIDE = {"w": f"[{_WORD}]", "W": f"[^{_WORD}]", "d": r"\p{Nd}", "D": r"\P{Nd}", "s": f"[{_SPACE}]",
            "S": f"[^{_SPACE}]", "Z": r"\z"}
_INSIDE = {"w": _WORD, "d": r"\p{Nd}", "D": r"\P{Nd}", "s": _SPACE}
_HANGUL = _re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")


class PatternError(ValueError):
    """The pattern uses what RE2 cannot match in linear time (look-around, back-reference), or `\\b` next to
    Hangul (never a boundary in RE2)."""


def translate(pattern: str) -> str:
    """Python `re` syntax → RE2 syntax with the same meaning (see the module docstring)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt in "uU":
                width = 4 if nxt == "u" else 8
                out.append("\\x{" + pattern[i + 2:i + 2 + width] + "}")
                i += 2 + width
                continue
            if nxt.isdigit() and nxt != "0" and not in_class:
                raise PatternError(f"back-reference \\{nxt} in {pattern[:80]!r}")
            if nxt == "b" and not in_class:
                before = pattern[max(0, i - 1):i]
                after = pattern[i + 2:i + 3]
                if _HANGUL.match(before) or _HANGUL.match(after):
                    raise PatternError(f"\\b next to Hangul in {pattern[:80]!r}")
            table = _INSIDE if in_class else _OUTSIDE
            if nxt in table:
                out.append(table[nxt])
            elif in_class and nxt in "WS":
                raise PatternError(f"\\{nxt} inside a character class in {pattern[:80]!r}")
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]" and not (out and out[-1] in ("[", "[^")):
                in_class = False
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            if pattern.startswith("[^", i):
                out.append("[^")
                i += 2
            else:
                out.append("[")
                i += 1
            if i < n and pattern[i] == "]":  # a literal ] first in a class
                out.append("\\]")
                i += 1
            continue
        if ch == "(" and pattern.startswith(("(?=", "(?!", "(?<=", "(?<!"), i):
            raise PatternError(f"look-around in {pattern[:80]!r}")
        out.append(ch)
        i += 1
    return "".join(out)


def _options() -> "re2.Options":
    opts = re2.Options()
    opts.log_errors = False
    opts.max_mem = 64 << 20  # long alternations of lexicon words need more than the default 8 MB
    return opts


@functools.lru_cache(maxsize=4096)
def compile(pattern: str, flags: int = 0):  # noqa: A001 (the `re` name, on purpose)
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be str, got {type(pattern).__name__}")
    inline = "".join(c for f, c in ((IGNORECASE, "i"), (DOTALL, "s"), (MULTILINE, "m")) if flags & f)
    unknown = flags & ~(IGNORECASE | DOTALL | MULTILINE | _re.UNICODE)
    if unknown:
        raise PatternError(f"flags {unknown} have no RE2 equivalent")
    source = (f"(?{inline})" if inline else "") + translate(pattern)
    try:
        return re2.compile(source, _options())
    except re2.error as e:
        raise PatternError(f"RE2 cannot compile {pattern[:80]!r}: {e}") from None


def search(pattern: str, text: str, flags: int = 0):
    return compile(pattern, flags).search(text)


def match(pattern: str, text: str, flags: int = 0):
    return compile(pattern, flags).match(text)


def fullmatch(pattern: str, text: str, flags: int = 0):
    return compile(pattern, flags).fullmatch(text)


def finditer(pattern: str, text: str, flags: int = 0) -> Iterator:
    return compile(pattern, flags).finditer(text)


def findall(pattern: str, text: str, flags: int = 0) -> list:
    return compile(pattern, flags).findall(text)


def sub(pattern: str, repl: str | Callable, text: str, count: int = 0, flags: int = 0) -> str:
    return compile(pattern, flags).sub(repl, text, count)


def split(pattern: str, text: str, maxsplit: int = 0, flags: int = 0) -> list[str]:
    return compile(pattern, flags).split(text, maxsplit)


def finditer_where(pattern, text: str, ok: Callable) -> Iterator:
    """The matches of a compiled `pattern` for which `ok(match)` holds. After a rejected match the search goes on one
    character later, so an overlapping match is not lost: this is how a look-around is written as a check on the
    characters around a match (`ok` may read `match.string` outside the match)."""
    pos, n = 0, len(text)
    while pos <= n:
        m = pattern.search(text, pos)
        if m is None:
            return
        if ok(m):
            yield m
            pos = m.end() if m.end() > m.start() else m.end() + 1
        else:
            pos = m.start() + 1


def _word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def has_word(text: str, word: str, word_char: Callable[[str], bool] = _word_char) -> bool:
    """Does `word` occur in `text` with no word character right before or after it (Python's `(?<!\\w)word(?!\\w)`)?"""
    if not word:
        return False
    i = text.find(word)
    while i >= 0:
        j = i + len(word)
        if (i == 0 or not word_char(text[i - 1])) and (j == len(text) or not word_char(text[j])):
            return True
        i = text.find(word, i + 1)
    return False


def word_char(ch: str) -> bool:
    """A word character as Python's `\\w` sees it (letters and digits of any script, and "_")."""
    return _word_char(ch)
