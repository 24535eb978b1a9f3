"""Resolve user-typed movie titles, English or Korean-written, to catalog ids without an LLM.

    resolver = TitleResolver.for_dataset(load_dataset("ml-latest-small"))
    resolver.resolve("인터스텔라").best.item_id          → "mls:109487"
    resolver.resolve("Psycho").status                      → "ambiguous" (1960 and 1998: ask which year)
    resolver.find_mentions("기생충이랑 올드보이 좋아했어")   → [Mention("올드보이", …)]  (기생충 = Parasite (2019): not in the catalog)

How a query is matched, by script:
- English: exact `title_key` of titles and alternative titles, then rapidfuzz WRatio; a trailing year
  ("matrix (1999)", "The Matrix 1999") filters the candidates.
- Korean: the packaged alias table (Korean release titles of the most-rated films and of the Korean films in the
  catalog: `data/ko_aliases.yaml`), exact or fuzzy on jamo; phonetic keys against English titles for loanwords
  (`hangul.phonetic_key`); letter-by-letter romanisation against the romanised original titles MovieLens keeps
  for Korean films ("Salinui chueok"). Particles and trailing phrases ("같은 영화", "처럼") are cut with kiwipiepy.
- Anything still unmatched: the optional `embed_search(text, k) -> Scored` (multilingual embeddings).

Popularity only breaks near-ties: a match's score is 0.95·similarity + 0.05·popularity (log rating count scaled
to 0..1), plus a small bonus for exact and alias hits, clipped to 1.
"""
from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Literal, Mapping, Sequence

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from rapidfuzz import fuzz, process

from . import rx
from . import lang
from .hangul import has_hangul, jamo, phonetic_key, romanise, skeleton
from .mentions import MentionFinder, MentionScan, looks_native
from .titles import normalise_title, title_key
from .types import Catalog, Scored

if TYPE_CHECKING:  # imported for typing only: the resolver works on any Catalog
    from .datasets import Dataset

Via = Literal["exact", "fuzzy", "alias", "phonetic", "embedding"]
Status = Literal["matched", "ambiguous", "unknown"]

# The curated table first (it wins where the two disagree), then the generated one for the most-rated films.
DEFAULT_ALIASES = (Path(__file__).with_name("data") / "ko_aliases.yaml",
                   Path(__file__).with_name("data") / "ko_aliases_generated.yaml")
# Scaled popularity (log rating count over the catalog's largest) under which a catalog film of the same title as a
# well-known one the catalog lacks is not what people mean: about 5 ratings where the top film has 330.
OBSCURE = 0.3

# Similarity (0..1) a candidate needs, per way of matching, to count as a match rather than a guess. Phonetic keys
# are coarse, so they need less string similarity than spelling does but more than embeddings' cosine.
THRESHOLDS: Mapping[str, float] = {"exact": 1.0, "alias": 0.85, "fuzzy": 0.86, "phonetic": 0.85, "embedding": 0.5}
POPULARITY_WEIGHT = 0.05
# Phonetic keys are coarse, so several titles share near-equal scores ("데드풀": Deadpool, The Dead Pool, Tadpole):
# there popularity has to decide more of the order.
PHONETIC_POPULARITY_WEIGHT = 0.15
EXACT_BONUS = 0.03
_MAX_HEAD = 24  # longest phonetic-key head compared in prefix matching
MAX_QUERY_CHARS = 200  # a title is short; longer resolve() input is cut (find_mentions handles whole messages)
MAX_MESSAGE_CHARS = 4000
N_GUESSES = 3

_YEAR_RE = rx.compile(r"^(?P<rest>.*?)[\s,(\[]*(?P<year>(?:18|19|20)\d{2})\s*년?[)\]]?\s*$")


class AliasFileError(ValueError):
    """The alias YAML is missing or malformed; the message names the file and the entry."""


# --- result types ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Match:
    item_id: str
    score: float  # 0..1, best first within a Resolution
    via: Via
    label: str = ""  # "The Matrix (1999)", for asking back without a catalog lookup


@dataclass(frozen=True)
class Resolution:
    """What a typed title refers to.

    matched: `best` is the answer. ambiguous: several films share the title (remakes); `matches` lists them,
    most popular first, so the caller can ask which year. unknown: nothing close enough; `matches` holds up to
    three guesses to ask back with. `not_in_catalog` names films the query certainly means but the catalog lacks.
    """

    query: str
    status: Status
    matches: tuple[Match, ...] = ()
    year: int | None = None
    not_in_catalog: tuple[str, ...] = ()

    @property
    def best(self) -> Match | None:
        return self.matches[0] if self.matches else None

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(m.item_id for m in self.matches)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(m.label for m in self.matches)

    @property
    def is_matched(self) -> bool:
        return self.status == "matched"


@dataclass(frozen=True)
class Mention:
    """A title found inside a message; `start:end` indexes the message."""

    text: str
    resolution: Resolution
    start: int = -1
    end: int = -1
    evidence: str = ""  # why the span was taken for a title ("title with its year", "Korean alias", …)


# --- alias table -------------------------------------------------------------------------------------------------

class AliasEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    movielens_id: int | None
    title: str
    year: int | None
    ko: list[str]
    origin: str | None = None  # ISO country code, for films whose origin the item data may lack
    directors: list[str] = []  # for films the catalog lacks: what honest alternatives can rest on
    genres: list[str] = []
    common: bool = False  # the name is also an everyday word (괴물, 인질): a title in a message only with a cue


def load_aliases(paths: str | Path | Sequence[str | Path]) -> tuple[AliasEntry, ...]:
    """The entries of one alias table, or of several in order."""
    if isinstance(paths, (str, Path)):
        return _load_alias_file(Path(paths))
    return tuple(e for p in paths for e in _load_alias_file(Path(p)))


def _load_alias_file(path: Path) -> tuple[AliasEntry, ...]:
    if not path.is_file():
        raise AliasFileError(f"alias table {path} not found; pass aliases=None to run without Korean aliases")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise AliasFileError(f"alias table {path} is not valid YAML: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("aliases"), list):
        raise AliasFileError(f"alias table {path} must be a mapping with an 'aliases' list")
    out = []
    for n, raw in enumerate(doc["aliases"]):
        try:
            out.append(AliasEntry.model_validate(raw))
        except ValidationError as e:
            raise AliasFileError(f"alias table {path}, entry {n} ({raw!r}): {e}") from e
    return tuple(out)


def alias_key(text: str) -> str:
    """Syllable-level key for Korean names: lowercase, letters and digits only ("장화, 홍련" → "장화홍련")."""
    text = unicodedata.normalize("NFC", text).lower()
    return "".join(ch for ch in text if ch.isalnum())


# --- Korean morphology ------------------------------------------------------------------------------------------

# Tags that end a title inside a phrase: verbs, adjectives, endings, derivational suffixes, roots, adverbs.
_STOP_TAG_PREFIXES = ("VV", "VA", "VX", "VCP", "VCN", "E", "XS", "XR", "MAG", "MAJ", "IC", "SF")


# --- the resolver ------------------------------------------------------------------------------------------------

@dataclass
class _Cand:
    sim: float
    via: Via


class TitleResolver:
    """Typed title → catalog ids. Build once per catalog (~1 s for 10k titles); `resolve` takes milliseconds."""

    def __init__(
        self,
        catalog: Catalog,
        popularity: Mapping[str, float] | None = None,
        aliases: str | Path | Sequence[str | Path] | None = DEFAULT_ALIASES,
        embed_search: Callable[[str, int], Scored] | None = None,
    ):
        self.catalog = catalog
        self.embed_search = embed_search
        items = catalog.items
        self._labels = [it.label for it in items]
        self._years = [it.year for it in items]
        self._main_key = [title_key(it.title) for it in items]

        pop = np.zeros(len(items), dtype=np.float64)
        if popularity:
            for iid, v in popularity.items():
                r = catalog._row.get(iid)  # noqa: SLF001 - O(1) lookup without raising on foreign ids
                if r is not None and v > 0:
                    pop[r] = math.log1p(float(v))
            if pop.max() > 0:
                pop /= pop.max()
        self._pop = pop

        # Every spelling of every title: display title and alternative (original-language / a.k.a.) titles.
        keys: list[str] = []
        owner: list[int] = []
        self._exact: dict[str, list[int]] = {}
        for r, it in enumerate(items):
            for variant in self._variants(it):
                k = title_key(variant)
                for k in dict.fromkeys((k, _arabic(k))):  # "part ii" is also typed "part 2"
                    if not k:
                        continue
                    keys.append(k)
                    owner.append(r)
                    rows = self._exact.setdefault(k, [])
                    if r not in rows:
                        rows.append(r)
        self._keys = keys
        # "oldboy" for "Old Boy", "spiderman" for "Spider-Man": the same key without spaces.
        self._nospace: dict[str, list[int]] = {}
        for k, rows in self._exact.items():
            if len(k) >= 5:
                lst = self._nospace.setdefault(k.replace(" ", ""), [])
                lst.extend(r for r in rows if r not in lst)
        self._owner = np.asarray(owner, dtype=np.int64)
        self._ph = [phonetic_key(k) for k in keys]
        self._skel = [skeleton(p) for p in self._ph]
        # Heads of longer keys, by length, so prefix matching is one C-speed ratio pass (None: key too short).
        self._ph_heads = {n: [p[:n] if len(p) > n else None for p in self._ph] for n in range(5, _MAX_HEAD + 1)}
        # Word → keys containing it: WRatio (partial and token matching) is too slow for all 11k keys per query.
        self._word_keys: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            for w in set(k.split()):
                self._word_keys.setdefault(w, []).append(i)
        self._title_year: dict[tuple[str, int | None], list[int]] = {}
        for r, it in enumerate(items):
            self._title_year.setdefault((self._main_key[r], it.year), []).append(r)

        self._alias_rows: dict[str, list[int]] = {}  # alias_key → catalog rows
        self._alias_missing: dict[str, str] = {}  # alias_key → "Parasite (2019)" for films the catalog lacks
        # Alias names that are also everyday words: the packaged list plus the tables' `common` entries.
        self.common_alias_keys: set[str] = {alias_key(w) for w in lang.KO_COMMON_ALIASES}
        self._missing_title: dict[str, tuple[int, str]] = {}  # title_key → (year, "Parasite (2019)"), the same films
        self.missing_films: dict[str, AliasEntry] = {}  # "Parasite (2019)" → its entry (director, genres, origin)
        if aliases is not None:
            self._index_aliases(load_aliases(aliases))
        self._alias_keys = list(self._alias_rows)
        self._alias_jamo = [jamo(k) for k in self._alias_keys]

    # -- construction helpers --

    @classmethod
    def for_dataset(cls, dataset: "Dataset", **kw) -> "TitleResolver":
        """A resolver whose popularity is each item's rating count in `dataset` (if it has ratings)."""
        popularity = None
        if dataset.ratings is not None and len(dataset.ratings):
            counts = np.bincount(dataset.ratings.item, minlength=len(dataset.catalog))
            popularity = {dataset.catalog.id_of(r): float(c) for r, c in enumerate(counts) if c}
        return cls(dataset.catalog, popularity=popularity, **kw)

    @staticmethod
    def _variants(item) -> list[str]:
        variants = [item.title, *item.alt_titles]
        if not item.alt_titles and item.raw_title:
            variants += list(normalise_title(item.raw_title)[2])
        return variants

    def _index_aliases(self, entries: Sequence[AliasEntry]) -> None:
        prefixes = {iid.split(":", 1)[0] for iid in self.catalog.ids[:50] if ":" in iid}
        present: set[str] = set()  # title keys of table films the catalog has
        for e in entries:
            rows = self._alias_target(e, prefixes)
            if rows:
                present.add(title_key(e.title))
            for name in e.ko:
                k = alias_key(name)
                if not k:
                    continue
                if e.common:
                    self.common_alias_keys.add(k)
                if rows:
                    lst = self._alias_rows.setdefault(k, [])
                    lst.extend(r for r in rows if r not in lst)
                elif e.year is not None:
                    self._alias_missing.setdefault(k, f"{e.title} ({e.year})")
                    self.missing_films.setdefault(f"{e.title} ({e.year})", e)
                    self._missing_title.setdefault(title_key(e.title), (e.year, f"{e.title} ({e.year})"))
        # An English title names the missing film only when no film of that title in the tables is in the catalog
        # ("The Avengers" is the 2012 film the catalog has, not the 1998 one it lacks).
        for k in present:
            self._missing_title.pop(k, None)

    def _alias_target(self, e: AliasEntry, prefixes: set[str]) -> list[int]:
        key = title_key(e.title)
        if e.movielens_id is not None:
            # "mls:" and "ml1m:" share MovieLens ids; check the title so a foreign id scheme can't alias wrongly.
            for p in ("mls", "ml1m"):
                if p in prefixes:
                    r = self.catalog._row.get(f"{p}:{e.movielens_id}")  # noqa: SLF001
                    if r is not None and fuzz.ratio(self._main_key[r], key) >= 80:
                        return [r]
        for dy in (0, -1, 1):  # ML-1M / ML-100K years drift by one against latest-small
            rows = self._title_year.get((key, None if e.year is None else e.year + dy))
            if rows:
                return list(rows)
        return []

    # -- public API --

    def resolve(self, text: str, k: int = 5) -> Resolution:
        """The catalog items `text` most likely names, as a Resolution (see its docstring for the statuses)."""
        if not isinstance(text, str):
            raise TypeError(f"resolve() takes the typed title as str, got {type(text).__name__}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        query = " ".join(text.split())[:MAX_QUERY_CHARS]
        if not query:
            return Resolution(query, "unknown")
        year, stripped = _split_year(query)
        cands: dict[int, _Cand] = {}
        missing: list[str] = []
        pinned: list[int] = []

        if has_hangul(query):
            spans = self._korean_spans(stripped)
            for span in sorted(spans, key=len, reverse=True):
                key = alias_key(span)
                if key in self._alias_rows:
                    pinned = list(self._alias_rows[key])
                    break
                if key in self._alias_missing:
                    missing.append(self._alias_missing[key])
                    break
            if not pinned and not missing:
                # An alias inside the phrase counts when it covers the title part ("악마를 보았다 같은 영화"), not
                # when the title goes on past it ("매트릭스 reloaded" is not 매트릭스).
                head = stripped.find(spans[0])
                head_end = head + len(spans[0])
                for s, e, key in self._scan_aliases(stripped):
                    if s <= head and e >= head_end:
                        if key in self._alias_rows:
                            pinned = list(self._alias_rows[key])
                        else:
                            missing.append(self._alias_missing[key])
                        break
            if pinned and year is not None and not any(
                    self._years[r] is not None and abs(self._years[r] - year) <= 1 for r in pinned):
                # "툼 레이더(2018)": the alias names the 2001 film; the typed year asks for another one.
                pinned = []
            for r in pinned:
                _add(cands, r, 1.0, "alias")
            if not pinned and not missing:
                for span in spans:
                    self._score_alias_fuzzy(span, cands)
                    self._score_phonetic(span, cands)
                    self._score_romanised(span, cands)
        else:
            queries = [stripped] + ([query] if year is not None else [])
            for q in queries:
                self._score_english(q, cands)
            if not cands:  # Hanja or another script: nothing to spell-match; phonetics can't help either
                self._score_phonetic(stripped, cands)
            key = title_key(stripped)
            famous = self._missing_title.get(key)
            if famous and year in (None, famous[0]) and all(self._pop[r] < OBSCURE for r in self.exact_rows(key)):
                # "Parasite" is Bong Joon-ho's film, which the catalog lacks, not the 1982 one nobody rated.
                missing.append(famous[1])
                cands = {r: c for r, c in cands.items() if self._main_key[r] != key}

        if not pinned:
            self._digits_penalty(stripped, cands)
        if self.embed_search is not None and not missing and not self._confident(cands):
            self._score_embedding(stripped, cands, k)
        return self._decide(query, year, cands, pinned, missing, k)

    def find_mentions(self, message: str, claimed: Sequence[tuple[int, int]] = ()) -> list[Mention]:
        """Titles mentioned inside a chat message (English or Korean), in message order, accepted only on evidence
        (retrieval/mentions.py says what counts). `claimed` spans (genre, country, people words…) are no titles."""
        return self.scan_mentions(message, claimed).mentions

    def scan_mentions(self, message: str, claimed: Sequence[tuple[int, int]] = ()) -> "MentionScan":
        """find_mentions plus every candidate span that was considered, with the reason it was kept or not."""
        if not isinstance(message, str):
            raise TypeError(f"find_mentions() takes the message as str, got {type(message).__name__}")
        return MentionFinder(self).find(message, claimed)

    # -- lookups used by mention finding --

    def exact_rows(self, key: str) -> list[int]:
        """Catalog rows whose title (or alternative title) has exactly this title_key."""
        rows = list(self._exact.get(key, ())) or list(self._exact.get(_arabic(key), ()))
        if len(key) >= 5:
            rows += [r for r in self._nospace.get(key.replace(" ", ""), ()) if r not in rows]
        return rows

    def resolution_for_row(self, query: str, row: int, year: int | None = None) -> Resolution:
        """A matched Resolution naming one catalog row (when the caller has settled the title by other evidence)."""
        return Resolution(query, "matched", (Match(self.catalog.id_of(row), 1.0, "exact", self._labels[row]),), year)

    def prefix_rows(self, key: str, year: int, slack: int = 1) -> list[int]:
        """Rows of that year (±slack) whose title starts with `key` and goes on ("jumanji" → "Jumanji: Welcome to
        the Jungle (2017)"): the short name people give a film with a subtitle."""
        if len(key) < 4:
            return []
        out: list[int] = []
        for i in self._word_keys.get(key.split()[0], ()):
            r = int(self._owner[i])
            if (self._keys[i].startswith(key + " ") and self._years[r] is not None
                    and abs(self._years[r] - year) <= slack and r not in out):
                out.append(r)
        return out

    def franchise_rows(self, key: str) -> list[int]:
        """Rows of two or more titles that open with `key` and go on ("harry potter" → every "Harry Potter and
        the …"), most popular first: the name of a franchise, which is no single film's title."""
        if len(key) < 8 or len(key.split()) < 2:
            return []
        out: list[int] = []
        for i in self._word_keys.get(key.split()[0], ()):
            r = int(self._owner[i])
            if self._keys[i].startswith(key + " ") and r not in out:
                out.append(r)
        return sorted(out, key=lambda r: -self._pop[r]) if len(out) >= 2 else []

    def resolution_for_rows(self, query: str, rows: Sequence[int]) -> Resolution:
        """An ambiguous Resolution over catalog rows the caller found (most popular first, as `resolve` orders)."""
        matches = tuple(Match(self.catalog.id_of(r), 1.0, "exact", self._labels[r]) for r in rows)
        return Resolution(query, "ambiguous", matches)

    def year_of_row(self, row: int) -> int | None:
        return self._years[row]

    def title_of(self, item_id: str) -> str:
        it = self.catalog.get(item_id)
        return it.title if it is not None else ""

    def year_of(self, item_id: str) -> int | None:
        r = self.catalog._row.get(item_id)  # noqa: SLF001
        return None if r is None else self._years[r]

    def alias_hits(self, text: str, toks: Sequence[lang.Tok] | None = None) -> list[tuple[int, int, str]]:
        """Korean alias names inside `text` on token boundaries, longest first, not overlapping."""
        return self._scan_aliases(text, toks)

    # -- scoring --

    def _score_english(self, q: str, cands: dict[int, _Cand]) -> None:
        key = _arabic(title_key(q))
        if not key:
            return
        exact = self._exact.get(key, ())
        for r in exact:
            _add(cands, r, 1.0, "exact")
        if exact:
            return  # the spelled-out title: fuzzy neighbours would only add noise (and 15 ms)
        # Typos: plain ratio over every key. Partial titles ("star wars", "harry potter"): WRatio over the keys
        # that share a word with the query (common words with huge posting lists don't narrow anything: skipped).
        for _, score, i in process.extract(key, self._keys, scorer=fuzz.ratio, limit=30, score_cutoff=55):
            _add(cands, int(self._owner[i]), score / 100.0, "fuzzy")
        subset: set[int] = set()
        for w in key.split():
            posting = self._word_keys.get(w, ())
            if len(posting) <= 1500:
                subset.update(posting)
        if subset:
            idx = sorted(subset)
            choices = [self._keys[i] for i in idx]
            for _, score, j in process.extract(key, choices, scorer=fuzz.WRatio, limit=30, score_cutoff=55):
                _add(cands, int(self._owner[idx[j]]), score / 100.0, "fuzzy")

    def _score_alias_fuzzy(self, span: str, cands: dict[int, _Cand]) -> None:
        if not self._alias_keys:
            return
        q = jamo(alias_key(span))
        if len(q) < 4:
            return
        for _, score, i in process.extract(q, self._alias_jamo, scorer=fuzz.ratio, limit=10, score_cutoff=70):
            for r in self._alias_rows[self._alias_keys[i]]:
                _add(cands, r, score / 100.0, "alias")

    def _score_phonetic(self, span: str, cands: dict[int, _Cand]) -> None:
        qk = phonetic_key(span)
        qs = skeleton(qk)
        if len(qk) < 2 or not qs:
            return
        hits: set[int] = set()
        for _, _, i in process.extract(qk, self._ph, scorer=fuzz.ratio, limit=40, score_cutoff=50):
            hits.add(i)
        for _, _, i in process.extract(qs, self._skel, scorer=fuzz.ratio, limit=40, score_cutoff=50):
            hits.add(i)
        head = len(qk) + 1
        if len(qs) >= 4 and head in self._ph_heads:
            # Korean often names a film by the head of a longer title ("킹스맨" for "Kingsman: The Secret Service").
            for _, _, i in process.extract(qk, self._ph_heads[head], scorer=fuzz.ratio, limit=40, score_cutoff=80):
                hits.add(i)
        # Everyday Korean words sound like some English title ("엄마" ~ Emma): offer them as guesses, never matches.
        cap = THRESHOLDS["phonetic"] - 0.01 if looks_native(span) else 1.0
        for i in hits:
            ph, sk = self._ph[i], self._skel[i]
            sim = 0.5 * fuzz.ratio(qk, ph) + 0.5 * fuzz.ratio(qs, sk)
            if len(qs) >= 4 and len(sk) > len(qs):
                sim = max(sim, 0.9 * (0.5 * _prefix_ratio(qk, ph) + 0.5 * _prefix_ratio(qs, sk)))
            _add(cands, int(self._owner[i]), min(sim / 100.0, cap), "phonetic")

    def _score_romanised(self, span: str, cands: dict[int, _Cand]) -> None:
        # MovieLens keeps Korean films' original titles romanised ("Salinui chueok"): match them letter by letter.
        key = title_key(romanise(span))
        if len(key) < 4:
            return
        for _, score, i in process.extract(key, self._keys, scorer=fuzz.ratio, limit=10, score_cutoff=75):
            _add(cands, int(self._owner[i]), score / 100.0, "phonetic")

    def _score_embedding(self, text: str, cands: dict[int, _Cand], k: int) -> None:
        scored = self.embed_search(text, max(k, N_GUESSES))
        if not isinstance(scored, Scored):
            raise TypeError(f"embed_search must return Scored, got {type(scored).__name__}")
        for iid, s in scored:
            r = self.catalog._row.get(iid)  # noqa: SLF001
            if r is not None:  # the knowledge store may hold other domains; ignore what this catalog lacks
                _add(cands, r, float(min(max(s, 0.0), 1.0)), "embedding")

    def _digits_penalty(self, query: str, cands: dict[int, _Cand]) -> None:
        """A sequel number the query names and the title lacks ("아이언맨 2" vs Iron Man), or the reverse, costs
        10%: otherwise the first film of a series outranks the sequel the user typed."""
        want = set(rx.findall(r"\d+", query))
        for r, c in cands.items():
            have = set(rx.findall(r"\d+", _arabic(self._main_key[r])))
            if want != have and (want - have or (have and not want and c.via != "exact")):
                cands[r] = _Cand(c.sim * 0.9, c.via)

    def _confident(self, cands: Mapping[int, _Cand]) -> bool:
        return any(c.sim >= THRESHOLDS[c.via] for c in cands.values())

    def _rank(self, r: int, c: _Cand) -> float:
        bonus = EXACT_BONUS if (c.via in ("exact", "alias") and c.sim >= 1.0) else 0.0
        w = PHONETIC_POPULARITY_WEIGHT if c.via == "phonetic" else POPULARITY_WEIGHT
        return (1 - w) * c.sim + w * float(self._pop[r]) + bonus

    def _decide(self, query, year, cands, pinned, missing, k) -> Resolution:
        drift: dict[int, float] = {}
        if year is not None and cands:
            near = {r: c for r, c in cands.items() if self._years[r] is not None and abs(self._years[r] - year) <= 1}
            if near:
                cands = near
                # An exact year outranks a one-off one (MovieLens releases drift by a year between datasets), but
                # a one-off year is still a match.
                drift = {r: 0.02 for r in near if self._years[r] != year}
        else:
            drift = {}
        order = sorted(cands, key=lambda r: -(self._rank(r, cands[r]) - drift.get(r, 0.0)))
        good = [r for r in order if cands[r].sim >= THRESHOLDS[cands[r].via]]
        order = good + [r for r in order if r not in set(good)]  # a match outranks any popular guess
        if not good:
            return Resolution(query, "unknown", self._matches(order[:N_GUESSES], cands), year, tuple(missing))
        if pinned and len(pinned) > 1:
            first = [r for r in order if r in pinned]
            rest = [r for r in order if r not in pinned]
            return Resolution(query, "ambiguous", self._matches((first + rest)[:k], cands), year)
        if pinned:
            return Resolution(query, "matched", self._matches(order[:k], cands), year)
        top = good[0]
        same = [r for r in good if self._main_key[r] == self._main_key[top] and cands[r].sim >= cands[top].sim - 0.02]
        if len(same) > 1 and year is None:
            rest = [r for r in order if r not in same]
            return Resolution(query, "ambiguous", self._matches((same + rest)[:max(k, len(same))], cands), year)
        return Resolution(query, "matched", self._matches(order[:k], cands), year)

    def _matches(self, rows: Iterable[int], cands: Mapping[int, _Cand]) -> tuple[Match, ...]:
        return tuple(
            Match(self.catalog.id_of(r), round(float(min(1.0, max(0.0, self._rank(r, cands[r])))), 4), cands[r].via,
                  self._labels[r])
            for r in rows
        )

    # -- Korean text --

    def _korean_spans(self, text: str) -> list[str]:
        """Title candidates in a Korean phrase: the phrase cut before its first verb/ending, trailing particles and
        frame nouns dropped ("인터스텔라 같은 영화" → "인터스텔라"), then the whole phrase (titles with verbs:
        "악마를 보았다")."""
        toks = lang.tokens(text)
        kept: list[lang.Tok] = []
        for t in toks:
            if t.tag.startswith(_STOP_TAG_PREFIXES):
                break
            kept.append(t)
        while kept and (kept[-1].tag.startswith(("J", "S")) and kept[-1].tag not in ("SL", "SN", "SH")
                        or kept[-1].form in lang.KO_STOP_NOUNS):
            kept.pop()
        spans = []
        if kept:
            spans.append(text[kept[0].start:kept[-1].end])
        trimmed = text
        while toks and (toks[-1].tag.startswith(("J", "E", "SF")) or toks[-1].form in lang.KO_STOP_NOUNS):
            trimmed = text[:toks[-1].start].rstrip()
            toks = toks[:-1]
        for s in (trimmed, text):
            if s and s not in spans:
                spans.append(s)
        return spans

    def _scan_aliases(self, text: str, toks: Sequence[lang.Tok] | None = None) -> list[tuple[int, int, str]]:
        """Alias names inside `text` on token boundaries (so 대부 is not found in 대부분), longest first and not
        overlapping, as (start, end, alias key)."""
        keys = self._alias_keys + list(self._alias_missing)
        if not keys:
            return []
        toks = lang.tokens(text) if toks is None else toks
        starts = {t.start for t in toks}
        ends = {t.end for t in toks}
        pos = [i for i, ch in enumerate(text) if ch.isalnum()]
        flat = "".join(text[i].lower() for i in pos)
        hits: list[tuple[int, int, str]] = []
        for key in keys:
            at = flat.find(key)
            while at >= 0:
                s, e = pos[at], pos[at + len(key) - 1] + 1
                if s in starts and e in ends:
                    hits.append((s, e, key))
                at = flat.find(key, at + 1)
        hits.sort(key=lambda h: (-(h[1] - h[0]), h[0]))
        chosen: list[tuple[int, int, str]] = []
        for s, e, key in hits:
            if any(s < ce and cs < e for cs, ce, _ in chosen):
                continue
            chosen.append((s, e, key))
        return chosen


# --- small helpers -----------------------------------------------------------------------------------------------

def _add(cands: dict[int, _Cand], r: int, sim: float, via: Via) -> None:
    cur = cands.get(r)
    if cur is None or sim > cur.sim:
        cands[r] = _Cand(sim, via)


def _prefix_ratio(q: str, choice: str, *, processor=None, score_cutoff: float | None = None) -> float:
    if len(choice) <= len(q):
        return 0.0
    return fuzz.ratio(q, choice[: len(q) + 1], score_cutoff=score_cutoff or 0)


_ROMAN = {"ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "vii": "7", "viii": "8", "ix": "9", "x": "10"}


def _arabic(key: str) -> str:
    """Sequel numerals as digits ("godfather part ii" → "godfather part 2"); a lone "x" or "v" word is left alone
    unless it follows "part"/"episode" (so "X-Men", "V for Vendetta" keep their letters)."""
    words = key.split()
    out = []
    for i, w in enumerate(words):
        if w in _ROMAN and (len(w) > 1 or (i > 0 and words[i - 1] in ("part", "episode", "chapter"))):
            out.append(_ROMAN[w])
        else:
            out.append(w)
    return " ".join(out)


def _split_year(query: str) -> tuple[int | None, str]:
    """("The Matrix 1999") → (1999, "The Matrix"); a query that is only a year ("1984") keeps it as the title."""
    m = _YEAR_RE.match(query)
    if not m or not m.group("rest").strip(" ,(-"):
        return None, query
    return int(m.group("year")), m.group("rest").strip(" ,(-")
