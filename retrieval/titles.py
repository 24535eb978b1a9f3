"""Title normalisation: "Shawshank Redemption, The (1994)" → ("The Shawshank Redemption", 1994).

MovieLens writes English articles (and some foreign ones) at the end after a comma, and appends the year;
users type "the shawshank redemption" or "shawshank". `normalise_title` gives the display form, `title_key`
the lowercase, punctuation-free form used for matching.
"""
from __future__ import annotations

import bisect
import unicodedata

from . import rx
from .textnorm import fold_for_matching

# Articles MovieLens moves to the end ("Matrix, The"); foreign ones appear in ML titles too.
_ARTICLES = ("The", "A", "An", "Les", "Le", "La", "L'", "Il", "El", "Der", "Die", "Das", "Los", "Las", "Un", "Une", "I")
_YEAR_RE = rx.compile(r"\s*\((\d{4})(?:[-–]\d{0,4})?\)\s*$")
_ALT_RE = rx.compile(r"\s*\(([^()]*)\)\s*$")  # trailing "(a.k.a. X)" or foreign title in parentheses
_TRAIL_ARTICLE_RE = rx.compile(r"^(?P<head>.+), (?P<art>" + "|".join(rx.escape(a) for a in _ARTICLES) + r")$")


def split_year(raw: str) -> tuple[str, int | None]:
    """Strip a trailing "(1994)" and return (rest, 1994)."""
    raw = raw.strip()
    m = _YEAR_RE.search(raw)
    if not m:
        return raw, None
    return raw[: m.start()].rstrip(), int(m.group(1))


def _move_article(part: str) -> str:
    m = _TRAIL_ARTICLE_RE.match(part.strip())
    if not m:
        return part.strip()
    art = m.group("art")
    sep = "" if art.endswith("'") else " "
    return f"{art}{sep}{m.group('head')}"


def normalise_title(raw: str) -> tuple[str, int | None, tuple[str, ...]]:
    """Return (display title, year, alternative titles) for a MovieLens-style raw title.

    "City of Lost Children, The (Cité des enfants perdus, La) (1995)"
      → ("The City of Lost Children", 1995, ("La Cité des enfants perdus",))
    """
    rest, year = split_year(raw)
    alts: list[str] = []
    # Peel trailing parenthesised alternative titles ("(a.k.a. Foo)", foreign original titles).
    while True:
        m = _ALT_RE.search(rest)
        if not m or m.start() == 0:
            break
        alt = m.group(1).strip()
        if alt.lower().startswith("a.k.a. "):
            alt = alt[7:]
        if alt:
            alts.append(_move_article(alt))
        rest = rest[: m.start()].rstrip()
    title = _move_article(rest)
    return title, year, tuple(alts)


def title_key(text: str) -> str:
    """Lowercase ASCII-folded key without punctuation or a leading article: for fuzzy matching.

    Look-alike letters are folded first, so "Mаtrix" typed with a Cyrillic "а" keys as "matrix"."""
    text = unicodedata.normalize("NFKD", fold_for_matching(text))
    text = text.lower().replace("&", " and ")
    # Punctuation becomes a space, runs of spaces one space (string methods: this runs for every word n-gram of a
    # message, where a regex call per step costs more than the work).
    text = " ".join("".join(ch if ch.isalnum() or ch == "_" else " " for ch in text
                            if not unicodedata.combining(ch)).split())
    for article in ("the ", "a ", "an "):
        if text.startswith(article):
            return text[len(article):]
    return text


class KeyIndex:
    """Catalog ids by title key, sorted, so the titles that go on from a name ("avengers" → "avengers age of
    ultron") are found by binary search instead of a scan of the whole catalog per lookup. Results come in the
    order the pairs were given (catalog order), as a scan would give them."""

    def __init__(self, pairs):
        self._pairs = sorted((k, n, i) for n, (k, i) in enumerate(pairs))
        self._keys = [k for k, _, _ in self._pairs]

    def starting(self, prefix: str) -> list[tuple[str, str]]:
        """(key, id) of every title whose key is `prefix` or starts with it."""
        lo = bisect.bisect_left(self._keys, prefix)
        hi = bisect.bisect_left(self._keys, prefix + "\U0010ffff", lo)
        return [(k, i) for k, _, i in sorted(self._pairs[lo:hi], key=lambda p: p[1])]

    def series(self, base: str) -> list[tuple[str, str]]:
        """Keys equal to `base` or going on from it as whole words ("alien" → "alien 3", not "aliens")."""
        return [(k, i) for k, i in self.starting(base) if k == base or k.startswith(base + " ")]
