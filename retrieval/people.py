"""People of film and books: who made what, and finding their names in a message (English or Korean).

Credits come from the item data (directors, actors, writers, authors) and from the packaged table
`data/people.yaml` (Korean spellings, the short names people use, and filmographies where the item data has no
credits). `find(text)` returns the people named in a message with the role the words around the name suggest
("봉준호 감독" → director; "starring Tom Hanks" → actor); `works(name, role)` the catalog ids of their work.

A full name ("Tom Hanks", "봉준호") is enough evidence. A short name ("Nolan", "놀란") counts only when the table
lists it and the words around it make it a person ("Nolan films", "놀란 감독", "by Nolan"), so "surprised"
(놀란) or the common word "Bong" are not people. A name misspelt by about a letter ("tarantno movies", "jane austin
books") is that person when the words around it make it a person, one of its words is no everyday English word,
and no other person is as close.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from rapidfuzz import fuzz, process

from . import lang, rx
from .titles import split_year, title_key
from .types import Catalog

log = logging.getLogger(__name__)

DEFAULT_PEOPLE = Path(__file__).with_name("data") / "people.yaml"
ROLES = ("director", "actor", "writer", "author")
FUZZY_SCORE = 85  # rapidfuzz ratio of a misspelt name to the real one: about one letter in seven
FUZZY_MARGIN = 4  # the closest name must be this much closer than the next one of another person
FUZZY_MIN_CHARS = 6
FUZZY_BETTER_KNOWN = 3  # of people about as close, one with this many times the works of the others is meant
# Words of a misspelt name: one rarer than the first, none as common as the second ("feel good", "kill bill" are
# everyday words, not a misspelt actor).
FUZZY_RARE_ZIPF = 4.5
FUZZY_COMMON_ZIPF = 5.5
FUZZY_TITLE_WORDS = 4  # a misspelt name is never the first words of a title ("dark knight" is no Mark Knight)


class PeopleFileError(ValueError):
    """The people table is missing or malformed; the message names the file and the entry."""


class PersonEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    ko: list[str] = []
    aliases: list[str] = []
    roles: list[str]
    films: list[str] = []
    genres: list[str] = []  # what an author writes (books in the catalog carry no genres)


def load_people(path: str | Path) -> tuple[PersonEntry, ...]:
    path = Path(path)
    if not path.is_file():
        raise PeopleFileError(f"people table {path} not found; pass people=None to use only the item data")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise PeopleFileError(f"people table {path} is not valid YAML: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("people"), list):
        raise PeopleFileError(f"people table {path} must be a mapping with a 'people' list")
    out = []
    for n, raw in enumerate(doc["people"]):
        try:
            e = PersonEntry.model_validate(raw)
        except ValidationError as err:
            raise PeopleFileError(f"people table {path}, entry {n} ({raw!r}): {err}") from err
        bad = [r for r in e.roles if r not in ROLES]
        if bad:
            raise PeopleFileError(f"people table {path}, entry {e.name!r}: unknown roles {bad}; use {ROLES}")
        out.append(e)
    return tuple(out)


@dataclass(frozen=True)
class PersonHit:
    start: int
    end: int
    name: str  # canonical (as the item data writes it)
    role: str  # "director" | "actor" | "writer" | "author" | "any": what the words around the name say
    text: str


_EN_WORD = rx.compile(r"[A-Za-z][A-Za-z.'’-]*")
_ROLE_AFTER_KO = (("director", rx.compile(r"^\s*(?:의\s*)?(?:감독|연출)")),
                  ("actor", rx.compile(r"^\s*(?:이|가|은|는)?\s*(?:나오는|나온|출연|주연|배우|연기|나왔|나오)")),
                  ("author", rx.compile(r"^\s*(?:의\s*)?(?:작가|소설|책|글)")))
_ROLE_BEFORE_EN = (("director", rx.compile(r"\b(?:directed by|director|filmmaker|helmed by|made by)\s*$", rx.I)),
                   ("actor", rx.compile(r"\b(?:starring|stars|with|featuring|actor|actress|played by)\s*$", rx.I)),
                   ("author", rx.compile(r"\b(?:written by|author|novelist)\s*$", rx.I)),
                   ("any", rx.compile(r"\bby\s*$", rx.I)))
_ROLE_AFTER_EN = (("director", rx.compile(r"^(?:'s)?\s*(?:-?directed|direct(?:ed|s)|as director)\b", rx.I)),
                  ("actor", rx.compile(r"^\s*(?:is in|stars|starred|plays|played|acts|acted)\b", rx.I)),
                  ("any", rx.compile(r"^(?:'s|’s)?\s*(?:films?|movies?|work|books?|novels?|flicks?)\b", rx.I)))
_KO_STRONG_CUE_AFTER = rx.compile(r"^\s*(?:의\s*)?(?:감독|배우|나오는|나온|출연|주연|작가|연출|필모)")
_KO_CUE_AFTER = rx.compile(r"^\s*(?:의|이|가|은|는)?\s*(?:감독|배우|영화|작품|나오는|나온|출연|주연|작가|소설|책|연출|"
                           r"필모|스타일|같은)")


class PeopleIndex:
    def __init__(self, catalogs: Iterable[Catalog], table: str | Path | None = DEFAULT_PEOPLE):
        self._credits: dict[str, dict[str, set[str]]] = {}  # canonical name → role → item ids
        self._by_item: dict[str, dict[str, list[str]]] = {}  # item id → role → canonical names
        self._canon: dict[str, str] = {}  # lower-case name → canonical
        catalogs = [c for c in catalogs if c is not None]
        self._title_starts = {" ".join(words[a:a + n]) for it in (it for c in catalogs for it in c)
                              for words in [title_key(it.title).split()] for a in (0, 1)
                              for n in range(1, FUZZY_TITLE_WORDS + 1) if len(words) >= a + n}
        for cat in catalogs:
            for it in cat:
                for role, names in (("director", it.directors), ("actor", it.actors), ("writer", it.writers),
                                    ("author", it.authors)):
                    for name in names:
                        self._credit(name, role, it.id)
        self._en: dict[str, str] = {}  # normalised full name (2+ words) → canonical
        self._en_short: dict[str, str] = {}  # table short names ("nolan") → canonical; need a cue
        for name in list(self._credits):
            key = _name_key(name)
            if len(key.split()) >= 2:
                self._en.setdefault(key, name)
        ko_terms: list[lang.Term] = []
        self._ko_short: set[str] = set()
        if table is not None:
            by_title: dict[tuple[str, int | None], list[str]] = {}
            for cat in catalogs:
                for it in cat:
                    if it.domain == "movie":
                        by_title.setdefault((title_key(it.title), it.year), []).append(it.id)
            for e in load_people(table):
                role = e.roles[0]
                self._canon.setdefault(e.name.lower(), e.name)
                self._credits.setdefault(e.name, {})
                for film in e.films:
                    t, year = split_year(film)
                    for dy in (0, -1, 1):
                        ids = by_title.get((title_key(t), None if year is None else year + dy))
                        if ids:
                            for i in ids:
                                for r in e.roles:
                                    self._credit(e.name, r, i)
                            break
                for alias in [e.name, *e.aliases]:
                    key = _name_key(alias)
                    (self._en if len(key.split()) >= 2 else self._en_short)[key] = e.name
                for ko in e.ko:
                    ko_terms.append(lang.Term(e.name, (ko,)))
                    if len(ko.replace(" ", "")) <= 2:  # "놀란" is also "surprised", "공유" also "sharing"
                        self._ko_short.add(ko)
                if role not in ROLES:
                    raise PeopleFileError(f"{e.name}: unknown role {role!r}")
        self._ko_terms = tuple(ko_terms)
        # Names by word count, for the misspelling lookup (a misspelt name keeps its number of words).
        self._by_words: dict[int, dict[str, str]] = {}
        for table_keys in (self._en, self._en_short):
            for key, name in table_keys.items():
                self._by_words.setdefault(len(key.split()), {}).setdefault(key, name)
        self._author_genres = {e.name.lower(): tuple(e.genres) for e in (load_people(table) if table else ())
                               if e.genres}

    def _credit(self, name: str, role: str, item_id: str) -> None:
        canon = self._canon.setdefault(name.lower(), name)
        self._credits.setdefault(canon, {}).setdefault(role, set()).add(item_id)
        names = self._by_item.setdefault(item_id, {}).setdefault(role, [])
        if canon not in names:
            names.append(canon)

    def people_of(self, item_id: str, role: str) -> list[str]:
        """Who directed / stars in / wrote an item, as far as the item data and the table know."""
        return list(self._by_item.get(item_id, {}).get(role, ()))

    # ---------------------------------------------------------------------------------------------------- lookups
    def works(self, name: str, role: str = "any") -> set[str]:
        by_role = self._credits.get(self._canon.get(name.lower(), name), {})
        if role == "any":
            return set().union(*by_role.values()) if by_role else set()
        return set(by_role.get(role, ()))

    def book_genres(self, authors: Sequence[str]) -> tuple[str, ...]:
        """Genres a book most likely has, from what its authors write (empty when none of them is known)."""
        out: list[str] = []
        for a in authors:
            out += [g for g in self._author_genres.get(a.lower(), ()) if g not in out]
        return tuple(out)

    def roles_of(self, name: str) -> list[str]:
        by_role = self._credits.get(self._canon.get(name.lower(), name), {})
        return sorted(by_role, key=lambda r: -len(by_role[r]))

    def credited(self, item_id: str, name: str, role: str = "any") -> bool:
        return item_id in self.works(name, role)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._canon

    # ---------------------------------------------------------------------------------------------------- finding
    def find(self, text: str) -> list[PersonHit]:
        """People named in `text`, in text order, with the role their context suggests."""
        hits: list[PersonHit] = []
        taken: list[tuple[int, int]] = []
        if lang.has_hangul(text):
            for h in lang.find_terms(text, self._ko_terms):
                after = text[h.end:h.end + 12]
                if h.word in self._ko_short and not (_KO_STRONG_CUE_AFTER.match(after) or (
                        _KO_CUE_AFTER.match(after) and not _is_verb_at(text, h.start))):
                    continue
                role = next((r for r, cue in _ROLE_AFTER_KO if cue.match(after)), "any")
                hits.append(PersonHit(h.start, h.end, h.key, role, text[h.start:h.end]))
                taken.append((h.start, h.end))
        words = [(m.group(0).rstrip(".'’"), m.start()) for m in _EN_WORD.finditer(text)]
        words = [(w[:-2] if w.lower().endswith(("'s", "’s")) else w, s) for w, s in words]
        i = 0
        while i < len(words):
            hit = None
            for n in range(min(4, len(words) - i), 0, -1):
                s = words[i][1]
                e = words[i + n - 1][1] + len(words[i + n - 1][0])
                key = _name_key(text[s:e])
                name = self._en.get(key) if n >= 2 else None
                if name is None and key in self._en_short:
                    cap = words[i][0][:1].isupper()
                    before, after = text[max(0, s - 30):s], text[e:e + 20]
                    cued = any(cue.search(before) for _, cue in _ROLE_BEFORE_EN) or any(
                        cue.match(after) for _, cue in _ROLE_AFTER_EN)
                    # Lower case is fine when the next word says what it is ("hitchcock films", "nolan's movies").
                    film_next = bool(rx.match(r"^(?:'s|’s)?\s*(?:films?|movies?|flicks?|books?|novels?)\b", after, rx.I))
                    if cued and (cap or film_next):
                        name = self._en_short[key]
                if name is None and (n >= 2 or key not in self._en_short):
                    name = self._misspelt(key, n, text[max(0, s - 30):s], text[e:e + 20])
                if name is not None and not lang.overlaps((s, e), taken):
                    before, after = text[max(0, s - 30):s], text[e:e + 30]
                    role = next((r for r, cue in _ROLE_BEFORE_EN if cue.search(before)), None) or next(
                        (r for r, cue in _ROLE_AFTER_EN if cue.match(after)), "any")
                    hit = PersonHit(s, e, name, role, text[s:e])
                    i += n
                    break
            if hit is None:
                i += 1
            else:
                hits.append(hit)
        return sorted(hits, key=lambda h: h.start)


    def _misspelt(self, key: str, n: int, before: str, after: str) -> str | None:
        """The one person whose name `key` misspells, when the words around it make it a person."""
        if len(key.replace(" ", "")) < FUZZY_MIN_CHARS or not (
                any(cue.search(before) for _, cue in _ROLE_BEFORE_EN) or any(cue.match(after) for _, cue in _ROLE_AFTER_EN)):
            return None
        zipfs = [lang.english_zipf(w) for w in key.split()]
        if min(zipfs) >= FUZZY_RARE_ZIPF or max(zipfs) >= FUZZY_COMMON_ZIPF or key in self._title_starts:
            return None
        names = self._by_words.get(n)
        if not names:
            return None
        close = process.extract(key, names.keys(), scorer=fuzz.ratio, limit=3, score_cutoff=FUZZY_SCORE - FUZZY_MARGIN)
        if not close or close[0][1] < FUZZY_SCORE:
            return None
        near = list(dict.fromkeys(names[k] for k, score, _ in close if score > close[0][1] - FUZZY_MARGIN))
        if len(near) == 1:
            return near[0]
        # People about as close: the one with far more works is meant ("jane austin" is Jane Austen, not an actress
        # of one film), as for titles; else none of them.
        works = sorted(((len(self.works(p)), p) for p in near), reverse=True)
        return works[0][1] if works[0][0] >= FUZZY_BETTER_KNOWN * max(works[1][0], 1) else None


def _is_verb_at(text: str, start: int) -> bool:
    """"깜짝 놀란 영화": the short name is a verb form here (놀라다), not a person."""
    return any(t.start == start and t.tag.startswith(("VV", "VA", "XR")) for t in lang.tokens(text))


def _name_key(name: str) -> str:
    return title_key(name)  # already without punctuation, one space between words


def people_of(item, index: PeopleIndex | None, names: Sequence[str]) -> list[str]:
    """Which of `names` made or star in `item` (item data first, then the index)."""
    out = []
    own = {n.lower() for n in (*item.directors, *item.actors, *item.writers, *item.authors)}
    for n in names:
        if n.lower() in own or (index is not None and index.credited(item.id, n)):
            out.append(n)
    return out
