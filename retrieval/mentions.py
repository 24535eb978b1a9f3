"""Title mentions inside a chat message, accepted only on evidence (precision first).

A wrongly accepted title is worse than a missed one: it becomes a "like" that shapes every later turn. So a span of
the message is a title only when something says so, and every candidate is logged with the decision and its reason
(`MentionScan.decisions`), so thresholds can be tuned from data:

- `Title (Year)`: the strongest evidence. The longest run of words before the year that names a catalog title of
  that year (±1) is the mention; when none does, the whole run is one unknown title ("Avengers: Infinity War
  (2018)" is reported as not in the catalog, never split into *Infinity* and *The War*).
- quotes: a quoted span is resolved as a whole.
- Korean: alias names (the packaged table) on token boundaries; everyday-word aliases need a cue after them
  ("괴물 같은"); loanword noun runs by sound, when they are not everyday Korean words.
- English: an exact full title, when its words are not everyday words, or when capitalisation, a cue ("like X",
  "loved X", "seen X") or a following verdict ("X was great") says it is a title. Single everyday words ("No",
  "Whatever", "Seconds") are titles only with a cue and a capital letter.
- typos after a cue ("something like interstelar"): a close fuzzy match of a word that is not everyday English.

Spans the caller has already claimed (genre, country, people, period and reference words: "판타지", "한국", "the
second one") are never titles, except inside quotes, before a year, or as part of a longer capitalised title.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Sequence

from rapidfuzz import fuzz

from . import lang, rx
from .hangul import phonetic_key, skeleton
from .titles import title_key

if TYPE_CHECKING:  # the finder works on any resolver with this interface
    from .title_resolver import Mention, Resolution, TitleResolver

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 4000
# Candidate spans looked up per message: a chat line names a handful of titles; a pasted list longer than this is
# read up to here, which keeps the work per message bounded (each lookup scores the catalog's titles).
MAX_CANDIDATES = 16
_WORD = rx.compile(r"[A-Za-z0-9][A-Za-z0-9'’&.:!-]*")
_YEAR_PAREN = rx.compile(r"\(\s*((?:18|19|20)\d\d)\s*\)")
_QUOTE = rx.compile(r"\"([^\"]{2,80})\"|“([^”]{2,80})”|‘([^’]{2,80})’|「([^」]{1,80})」|『([^』]{1,80})』")
_SINGLE_QUOTE = rx.compile(r"'([^']{2,80})'")  # not next to a Latin letter: "don't … it's" quotes nothing
_SENTENCE_DOT = rx.compile(r"\.\s+[A-Z]")
_ABBREVIATION = rx.compile(r"(?:\b(?:Mr|Ms|Dr|St|Jr|Sr|vs|Mrs)|[A-Z])$")
# Lower-case words that may sit inside a capitalised title ("Lord of the Rings", "Fear and Loathing in Las Vegas").
_JOINERS = frozenset("of the a an and in on at to for with from vs vs. de la le du des or by into over under is".split())
_SENTENCE_END = rx.compile(r"(?:^|[.!?\n]|[:;]\s)\s*[\"'“(]?\s*$")
_COMMON_CUE_ZIPF = 4.6  # an everyday word after a cue ("I loved Frozen") still counts below this frequency
_FRANCHISE_ZIPF = 4.5  # a franchise name has a word rarer than this ("potter" 4.1; "what's" 5.2, "up" 6.4)
_VERY_COMMON_ZIPF = 4.5  # lower-case multi-word titles need one word rarer than this ("toy story", not "first date")
_FUZZY_MIN = 0.9


@dataclass(frozen=True)
class Decision:
    """One candidate span and what was decided about it."""

    text: str
    start: int
    end: int
    accepted: bool
    reason: str
    item_id: str | None = None


@dataclass
class MentionScan:
    mentions: list["Mention"] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)

    def log(self) -> None:
        for d in self.decisions:
            log.debug("title %s %r [%d:%d] %s%s", "ACCEPT" if d.accepted else "reject", d.text, d.start, d.end,
                      d.reason, f" → {d.item_id}" if d.item_id else "")


@dataclass(frozen=True)
class _Word:
    text: str
    start: int
    end: int

    @property
    def cap(self) -> bool:
        return self.text[:1].isupper() or self.text[:1].isdigit()


class MentionFinder:
    def __init__(self, resolver: "TitleResolver"):
        self.r = resolver

    # ---------------------------------------------------------------------------------------------------- main
    def find(self, message: str, claimed: Sequence[tuple[int, int]] = ()) -> MentionScan:
        from .title_resolver import Mention

        message = message[:MAX_MESSAGE_CHARS]
        scan = MentionScan()
        taken: list[tuple[int, int]] = []
        claimed = list(claimed)

        def accept(s: int, e: int, res: "Resolution", reason: str, extra_claim: tuple[int, int] | None = None):
            taken.append(extra_claim or (s, e))
            scan.mentions.append(Mention(message[s:e], res, s, e, evidence=reason))
            scan.decisions.append(Decision(message[s:e], s, e, True, reason, res.best.item_id if res.best and
                                           res.status == "matched" else None))

        def reject(s: int, e: int, reason: str, item_id: str | None = None):
            scan.decisions.append(Decision(message[s:e], s, e, False, reason, item_id))

        def full() -> bool:
            return len(scan.decisions) >= MAX_CANDIDATES

        for s, e, res, reason, span in self._year_anchored(message):
            if full():
                break
            if not lang.overlaps((s, e), taken):
                accept(s, e, res, reason, span)
        for s, e, res in self._quoted(message):
            if full():
                break
            if lang.overlaps((s, e), taken):
                continue
            if res.status == "unknown" and not res.not_in_catalog and not res.matches:
                reject(s, e, "quoted, resolves to nothing")
                continue
            accept(s, e, res, "quoted")
        blocked = taken + claimed
        if lang.has_hangul(message) and not full():
            for s, e, res, reason, ok in self._korean(message, blocked):
                if full():
                    break
                if ok and not lang.overlaps((s, e), taken):
                    accept(s, e, res, reason)
                else:
                    reject(s, e, reason, res.best.item_id if res.best else None)
        for s, e, res, reason, ok in (self._english(message, taken, claimed) if not full() else ()):
            if full():
                break
            if ok and not lang.overlaps((s, e), taken):
                accept(s, e, res, reason)
            else:
                reject(s, e, reason, res.best.item_id if res is not None and res.best else None)
        for s, e, res, reason in (self._after_cue(message, taken + claimed) if not full() else ()):
            if full():
                break
            accept(s, e, res, reason)
        scan.mentions.sort(key=lambda m: m.start)
        scan.log()
        return scan

    # ---------------------------------------------------------------------------------------------------- years
    def _year_anchored(self, message: str):
        """`Title (Year)`: the longest word run before the year that names a title of that year."""
        prev_end = 0
        for m in _YEAR_PAREN.finditer(message):
            year = int(m.group(1))
            left = message[prev_end:m.start()]
            cut = max(left.rfind(ch) for ch in "\n!?;") + 1
            # A full stop before a capital ends a sentence, unless it ends an initial or "Mr", "Dr", "vs".
            dot = [d.end() - 1 for d in rx.finditer_where(_SENTENCE_DOT, left, lambda d: not _ABBREVIATION.search(
                left[max(0, d.start() - 4):d.start()]))]
            cut = max([cut] + dot)
            words = [_Word(w.group(0).rstrip(".,:;!-"), prev_end + w.start(), prev_end + w.start()
                           + len(w.group(0).rstrip(".,:;!-"))) for w in _WORD.finditer(left, cut)]
            words = [w for w in words if w.text][-12:]
            prev_end = m.end()
            if not words:
                continue
            found = None
            for k in range(len(words), 0, -1):
                span = words[-k:]
                text = message[span[0].start:span[-1].end]
                rows = self._exact_rows(text)
                near = [r for r in rows if self.r.year_of_row(r) is not None and abs(self.r.year_of_row(r) - year) <= 1]
                if near:
                    found = (span[0].start, text)
                    break
            if found is None:
                # A short name of a subtitled film of that year ("Jumanji (2017)" → Jumanji: Welcome to the Jungle).
                for k in range(len(words), 0, -1):
                    text = message[words[-k].start:words[-1].end]
                    rows = self.r.prefix_rows(title_key(text), year)
                    if len(rows) == 1 and words[-k].cap and (k > 1 or not lang.is_common_english(text)):
                        yield (words[-k].start, m.end(), self.r.resolution_for_row(f"{text} ({year})", rows[0], year),
                               "short name of a subtitled title of that year", (words[-k].start, m.end()))
                        found = ()
                        break
            if found == ():
                continue
            if found is None:
                # No exact title: a close spelling of the capitalised run (ReDial writes "Avengers: Infinity War").
                run = _cap_run(words)
                for k in range(len(run), 0, -1):
                    text = message[run[-k].start:run[-1].end]
                    if len(text) < 3:
                        continue
                    res = self.r.resolve(f"{text} ({year})")
                    b = res.best
                    # A whole-title spelling match, not a partial one ("High" is not High Fidelity).
                    if (res.status == "matched" and b is not None and b.score >= _FUZZY_MIN
                            and fuzz.ratio(title_key(text), title_key(self.r.title_of(b.item_id))) >= 88
                            and self.r.year_of(b.item_id) is not None and abs(self.r.year_of(b.item_id) - year) <= 1):
                        found = (run[-k].start, text)
                        break
            if found is not None:
                s, text = found
                res = self.r.resolve(f"{text} ({year})")
                yield s, m.end(), res, "title with its year", (s, m.end())
            else:
                run = _cap_run(words)
                if not run:
                    # "dune (2021)": a known title typed in lower case, with a year the catalog does not have.
                    for k in range(min(len(words), 6), 0, -1):
                        text = message[words[-k].start:words[-1].end]
                        if self._exact_rows(text) and not lang.is_common_english(text):
                            run = words[-k:]
                            break
                if not run:
                    continue  # "movies from my birth year (1984)": a year, no title
                s = run[0].start
                text = message[s:run[-1].end]
                from .title_resolver import Resolution

                res = Resolution(f"{text} ({year})", "unknown", (), year, (f"{text} ({year})",))
                yield s, m.end(), res, "title with a year that is not in the catalog", (s, m.end())

    def _exact_rows(self, text: str) -> list[int]:
        key = title_key(text)
        return self.r.exact_rows(key)

    # ---------------------------------------------------------------------------------------------------- quotes
    def _quoted(self, message: str):
        for m in _quote_matches(message):
            g = next(i for i in range(1, m.re.groups + 1) if m.group(i) is not None)
            text = m.group(g).strip()
            if not text:
                continue
            yield m.start(g), m.end(g), self.r.resolve(text)

    # ---------------------------------------------------------------------------------------------------- Korean
    def _korean(self, message: str, blocked: list[tuple[int, int]]):
        toks = lang.tokens(message)
        alias_spans: list[tuple[int, int]] = []
        starts = {t.start: t for t in toks}
        for s, e, key in self.r.alias_hits(message, toks):
            first = starts.get(s)
            year = _YEAR_AFTER.match(message, e)
            if first is not None and not first.tag.startswith(_NAME_START_TAGS) and not year:
                # "보고" is no film "고", "그것도" no film "그것" (but "그것(1990)" is): a title starts on a noun or a
                # foreign word, unless its year follows it.
                yield s, e, self.r.resolve(message[s:e]), "alias on a verb ending, particle or pronoun", False
                continue
            # "카지노(1995)": the year says it is a title, and which one.
            res = self.r.resolve(f"{message[s:e]} ({year.group(1)})" if year else message[s:e])
            inside = [(cs, ce) for cs, ce in blocked if s < ce and cs < e]
            cue = bool(year) or _ko_cue_after(e, toks, message) or _quoted_at(message, s, e)
            if _POSSESSIVE_BEFORE.search(message[:s]) and key in self.r.common_alias_keys:
                yield s, e, res, "everyday-word alias inside a longer name (나의 아저씨)", False
                continue
            if inside:
                # A request word is read as a title only on evidence a genre word cannot have: a year, quotes, or a
                # comparison ("괴물 같은"); a verdict or a list particle fits both ("애니는 빼고", "로맨스랑").
                covered = sum(min(e, ce) - max(s, cs) for cs, ce in inside)
                strong = bool(year) or _quoted_at(message, s, e) or _ko_comparison_after(e, toks)
                if covered >= e - s - 1 and not strong:
                    yield s, e, res, "alias made of request words (genre/country/…) without a year, quotes or comparison", False
                    continue
            if key in self.r.common_alias_keys and not cue:
                yield s, e, res, "everyday-word alias without a cue", False
                continue
            alias_spans.append((s, e))
            reason = "Korean alias, not in the catalog" if res.not_in_catalog and res.status == "unknown" \
                else "Korean alias"
            yield s, e, res, reason, True
        # Loanword titles the table lacks ("데드풀처럼 웃긴 영화"): noun runs, split at request words.
        run: list[lang.Tok] = []
        stop = blocked + alias_spans
        for t in toks + [lang.Tok("", "END", len(message), len(message))]:
            if (t.tag in _NOUN_TAGS and t.form.lower() not in lang.KO_STOP_NOUNS and not _JAMO_ONLY.fullmatch(t.form)
                    and not lang.overlaps((t.start, t.end), stop)):
                run.append(t)
                continue
            if run:
                s, e = run[0].start, run[-1].end
                text = message[s:e]
                run = []
                if not lang.has_hangul(text):
                    continue
                res = self.r.resolve(text)
                best = res.best
                if res.status == "unknown" or best is None:
                    continue
                if len(skeleton(phonetic_key(text))) < 3:
                    yield s, e, res, "Korean noun run too short to sound like a title", False
                elif not (_YEAR_AFTER.match(message, e) or _ko_cue_after(e, toks, message) or _quoted_at(message, s, e)):
                    # Sound alone invents films (본드 → Bound, 경기 → Congo): it needs a cue that a title is meant.
                    yield s, e, res, "Korean noun run sounds like a title, but nothing says it is one", False
                elif best.score < 0.85:
                    yield s, e, res, f"Korean noun run sounds only loosely like a title ({best.score:.2f})", False
                elif looks_native(text):
                    yield s, e, res, "everyday Korean word(s), not a transcription", False
                else:
                    yield s, e, res, f"Korean loanword title by sound ({best.score:.2f})", True

    # ---------------------------------------------------------------------------------------------------- English
    def _english(self, message: str, taken: list[tuple[int, int]], claimed: list[tuple[int, int]]):
        words = [_Word(m.group(0).rstrip(".:!-"), m.start(), m.start() + len(m.group(0).rstrip(".:!-")))
                 for m in _WORD.finditer(message)][:400]
        words = [w for w in words if w.text]
        if not words:
            return
        lower_msg = not any(ch.isupper() for ch in message)
        keys = [title_key(w.text) for w in words]
        found: list[tuple[int, int]] = []  # (i, n) accepted or rejected, longest first per start
        for i in range(len(words)):
            for n in range(min(8, len(words) - i), 0, -1):
                if not all(keys[i:i + n]):
                    continue
                s, e = words[i].start, words[i + n - 1].end
                key = title_key(message[s:e])
                rows = self.r.exact_rows(key)
                # "no Harry Potter": a capitalised name that opens several titles names their franchise.
                franchise = (not rows and n >= 2 and "," not in message[s:e]
                             and words[i + n - 1].text.lower() not in _JOINERS and bool(rows := self.r.franchise_rows(key)))
                if not rows:
                    continue
                if lang.overlaps((s, e), taken):
                    break
                ok, reason = self._plausible(message, words, i, n, claimed, lower_msg)
                if franchise:
                    # Only a distinctive name ("Harry Potter"), not an everyday phrase that opens titles ("What's Up").
                    distinct = any(lang.english_zipf(w.text) < _FRANCHISE_ZIPF for w in words[i:i + n])
                    if ok and reason == "capitalised multi-word title":
                        ok, reason = (True, "capitalised name that opens several titles (a franchise)") if distinct \
                            else (False, "everyday phrase that opens several titles")
                    else:
                        ok = False
                    res = self.r.resolution_for_rows(message[s:e], rows)
                else:
                    res = self.r.resolve(message[s:e])
                yield s, e, res, reason, ok
                if ok:
                    taken.append((s, e))
                    break
                # A rejected long span may hide a real shorter title ("the movie Heat" → "Heat"): keep trying.

    def _plausible(self, message: str, words: Sequence[_Word], i: int, n: int, claimed, lower_msg: bool
                   ) -> tuple[bool, str]:
        span = words[i:i + n]
        s, e = span[0].start, span[-1].end
        content = [w for w in span if w.text.lower() not in _JOINERS] or list(span)
        sent_start = bool(_SENTENCE_END.search(message[:s]))
        before = message[:s]
        cue = _cue_before(before) or _cue_after(message[e:]) or _asked_about(before, message[e:])
        cap_inside = any(w.cap for w in span[1:] if w.text.lower() not in _JOINERS) or (span[0].cap and not sent_start)
        # A capitalised Latin-letter name right before a Korean comparison or verdict ("Heat 같은 영화", "Up 봤어").
        ko_cue = span[0].cap and _cue_after(message[e:]) and lang.has_hangul(message[e:e + 12])
        title_case = span[0].cap and all(w.cap for w in content)
        if lang.overlaps((s, e), claimed):
            own = [w for w in content if not lang.overlaps((w.start, w.end), claimed)]
            if n >= 2 and title_case and cap_inside and own and not lower_msg:
                return True, "capitalised title around a request word"
            listed = bool(rx.search(r"(?:,|\band|\bor|&)\s*$", before)) and _cue_in_sentence(before)
            if n == 1 and span[0].cap and not sent_start and not lower_msg and (cue or listed):
                return True, "capitalised title among titles, though also a request word"
            # "Alien 같은 영화": a Latin-letter name with a Korean comparison or verdict right after it is a title,
            # even first in the message (someone who means the creatures writes 외계인); a genre word stays a genre.
            if n == 1 and ko_cue and not lang.find_terms(span[0].text, lang.GENRE_TERMS):
                return True, "capitalised title before a Korean cue, though also a request word"
            if n == 1 and _wh_asked(before, message[e:]) and not lang.find_terms(span[0].text, lang.GENRE_TERMS):
                return True, "the film a question asks about, though also a request word"
            return False, "request word (genre/country/person/reference), not a title"
        if n >= 2:
            if title_case and cap_inside:
                return True, "capitalised multi-word title"
            rare = [w for w in content if lang.english_zipf(w.text) < _VERY_COMMON_ZIPF
                    and w.text.lower() not in lang.EN_STOP]
            if rare and len(content) >= 2:
                return True, "multi-word title with an uncommon word"
            if cue and (lower_msg or title_case) and any(w.text.lower() not in lang.EN_STOP for w in content):
                return True, "multi-word title after a cue"
            return False, "everyday phrase"
        w = span[0]
        low = w.text.lower()
        if w.text.isdigit():
            return False, "bare number"
        if low in lang.EN_STOP:
            # "something like Up", "I loved Her": a capitalised function word right after a title cue.
            if w.cap and not sent_start and _cue_before(before) and not lower_msg and w.text != "I":
                return True, "capitalised short title right after a cue"
            if ko_cue and w.text != "I":
                return True, "capitalised short title before a Korean cue"
            return False, "function word"
        run = _run_around(words, i, message)
        if len(run) > 1 and not lower_msg and not _asked_about(before, message[e:]):  # "Is" opens the question
            return False, "part of a longer capitalised name that is not this title"
        zipf = lang.english_zipf(w.text)
        common = lang.is_common_english(w.text)
        if not common:
            if w.cap and (not sent_start or zipf < 3.0 or cue):
                return True, "uncommon capitalised word"
            if cue:
                return True, "uncommon word after a cue"
            if zipf < 3.0:
                return True, "rare word"
            return False, "uncommon word without capital or cue"
        if cue and (w.cap or lower_msg) and zipf < _COMMON_CUE_ZIPF:
            return True, "everyday word after a cue, written as a title"
        if _wh_asked(before, message[e:]):
            return True, "the film a question asks about"
        if w.cap and not sent_start and cue:
            return True, "capitalised everyday word after a cue"
        if ko_cue:
            return True, "capitalised everyday word before a Korean cue"
        return False, f"everyday word (zipf {zipf:.1f})"

    def _after_cue(self, message: str, blocked: list[tuple[int, int]]):
        """Typos after a cue ("something like interstelar"): a close fuzzy match, never for everyday words."""
        for m in _CUE_RX.finditer(message):
            rest = message[m.end():]
            tail = rx.split(r"[,.;!?\"(]|\s(?:and|or|but|with|because|since|though|that|which|please|for|from|"
                            r"to|in|on|at)\s", rest)[0]
            words = tail.split()[:6]
            if not words:
                continue
            s = m.end() + (len(rest) - len(rest.lstrip()))
            for n in range(len(words), 0, -1):
                part = " ".join(words[:n])
                e = s + len(part)
                if lang.overlaps((s, e), blocked):
                    break
                if len(part) < 4 or not rx.search(r"[A-Za-z]", part):
                    continue
                if all(lang.is_common_english(w) for w in words[:n]):
                    continue
                res = self.r.resolve(part)
                if res.status != "unknown" and res.best is not None and res.best.score >= _FUZZY_MIN:
                    yield s, e, res, f"close spelling after a cue ({res.best.score:.2f})"
                    blocked.append((s, e))
                    break


_NOUN_TAGS = {"NNP", "NNG", "SL", "SN", "NR", "SH", "XPN", "XSN"}
_JAMO_ONLY = rx.compile(r"[\u1100-\u11ff\u3130-\u318f]+")  # "ㅋㅋㅋ", "ㅎㅎ": laughter, never a title
_CUE_RX = rx.compile(r"\b(?:movies?|films?|something|anything)?\s*like\s+|\b(?:loved|liked|enjoyed|watched|saw|"
                     r"seen|love|adore)\s+(?:the\s+movie\s+|the\s+film\s+)?", rx.I)
_CUE_BEFORE = rx.compile(
    r"(?:\b(?:like|liked|love|loved|enjoyed|enjoy|adore|adored|watched|watch|saw|seen|see|similar\s+to|than|"
    r"as\s+good\s+as|such\s+as|reminds?\s+me\s+of|fan\s+of|favou?rite\s+(?:is|was)|hated?|disliked?|about|of|"
    r"called|titled|named|except|not|besides|including|and|or|vs\.?|versus|who\s+(?:directed|made|wrote|stars\s+in|"
    r"starred\s+in|is\s+in|was\s+in))\s+(?:the\s+movie\s+|the\s+film\s+)?)$",
    rx.I)
_CUE_AFTER = rx.compile(r"^\s*(?:\(\d{4}\)\s*)?about\s*\?"  # "what's Alien about?"
                        r"|^\s*(?:\(\d{4}\)\s*)?(?:was|is|were)\s+(?:\w+\s+){0,2}?(?:great|amazing|awesome|good|"
                        r"fantastic|excellent|brilliant|boring|terrible|awful|bad|overrated|one of my|my favou?rite)"
                        # an English title in a Korean sentence: "The Matrix 같은 영화", "Inception 봤어"
                        r"|^\s*(?:\(\d{4}\)\s*)?(?:은|는|이|가|을|를|도|랑|이랑|하고|과|와)?\s*(?:같은|같이|처럼|비슷|좋아|좋았|재밌|"
                        r"재미있|봤|별로|싫|말고|빼고|류|스타일)", rx.I)


def _quote_matches(message: str) -> list:
    """Quoted spans in text order; a single-quoted one only when no Latin letter touches its quotes."""
    def latin(i: int) -> bool:
        return 0 <= i < len(message) and message[i].isascii() and message[i].isalpha()

    single = rx.finditer_where(_SINGLE_QUOTE, message, lambda m: not latin(m.start() - 1) and not latin(m.end()))
    out: list = []
    for m in sorted([*_QUOTE.finditer(message), *single], key=lambda m: m.start()):
        if not out or m.start() >= out[-1].end():
            out.append(m)
    return out


def _cue_in_sentence(text: str) -> bool:
    """A title cue earlier in the same sentence ("I loved Heat, Alien and …")."""
    sentence = rx.split(r"[.!?\n]", text)[-1]
    return bool(_CUE_RX.search(sentence))


def _cue_before(text: str) -> bool:
    return bool(_CUE_BEFORE.search(text[-60:]))


# "Is Inception good?", "Was Heat any good?": a question about one film, opening its sentence.
_ASKED_BEFORE = rx.compile(r"(?:^|[.!?]\s*)(?:is|was|isn'?t)\s+(?:the\s+(?:movie|film)\s+)?$", rx.I)
_ASKED_AFTER = rx.compile(r"^\s*(?:\(\d{4}\)\s*)?(?:any\s+|really\s+|actually\s+|too\s+)?(?:good|worth|ok|okay|"
                          r"scary|funny|sad|violent|long|suitable|appropriate|for\s+kids)\b", rx.I)


# "How long is Inception?", "who directed heat", "when did alien come out?", "what is Heat about?": a question
# word about one film (a bare "what is X?" asks about words as often: "what's up?").
_ASKED_WH_BEFORE = rx.compile(r"(?:^|[.!?,]\s*)(?:how\s+(?:long|old|scary|violent|good)\s+(?:is|was)|who\s+(?:directed|made|"
                              r"wrote|is\s+in|was\s+in|stars\s+in|starred\s+in|plays\s+in)|(?:when|what\s+year)\s+(?:did|was)|"
                              r"tell\s+me\s+(?:more\s+)?about)\s+(?:the\s+(?:movie|film)\s+)?$", rx.I)
_ASKED_WH_AFTER = rx.compile(r"^\s*(?:\(\d{4}\)\s*)?(?:\?|$|come\s+out|released|made\b|rated\b)", rx.I)
_ASKED_WHAT_BEFORE = rx.compile(r"(?:^|[.!?,]\s*)what(?:'s|\s+is|\s+was)\s+(?:the\s+(?:movie|film)\s+)?$", rx.I)
_ASKED_WHAT_AFTER = rx.compile(r"^\s*(?:\(\d{4}\)\s*)?about\b", rx.I)


def _asked_about(before: str, after: str) -> bool:
    return bool(_ASKED_BEFORE.search(before[-40:]) and _ASKED_AFTER.match(after[:40])
                or _wh_asked(before, after))


def _wh_asked(before: str, after: str) -> bool:
    """A wh-question about the one film named here: it is a title however everyday the word ("who directed heat?")."""
    return bool(_ASKED_WH_BEFORE.search(before[-40:]) and _ASKED_WH_AFTER.match(after[:40])
                or _ASKED_WHAT_BEFORE.search(before[-40:]) and _ASKED_WHAT_AFTER.match(after[:40]))


def _cue_after(text: str) -> bool:
    return bool(_CUE_AFTER.match(text[:60]))


def _cap_run(words: Sequence[_Word]) -> list[_Word]:
    """The capitalised run that ends the word list (joiners allowed inside): the title part before a year."""
    run: list[_Word] = []
    for w in reversed(words):
        if w.cap:
            run.insert(0, w)
        elif w.text.lower() in _JOINERS and run:
            run.insert(0, w)
        else:
            break
    while run and not run[0].cap:
        run.pop(0)
    return run


def _run_around(words: Sequence[_Word], i: int, message: str = "") -> list[_Word]:
    """The capitalised run (joiners allowed inside, sentence-initial words too) that contains word i; a comma or
    other punctuation between two words ends it ("Heat, Alien and The Matrix" are three names)."""
    if not words[i].cap:
        return [words[i]]

    def joined(a: _Word, b: _Word) -> bool:
        return not message or message[a.end:b.start].strip(" ") in ("", ":", "-", "&")

    inner = _JOINERS - {"and", "or"}  # "The Matrix and Inception" are two names

    lo = i
    while lo > 0 and (words[lo - 1].cap or (words[lo - 1].text.lower() in inner and lo - 2 >= 0
                                             and words[lo - 2].cap)) and joined(words[lo - 1], words[lo]):
        lo -= 1
    hi = i
    while hi + 1 < len(words) and (words[hi + 1].cap or (words[hi + 1].text.lower() in inner and hi + 2 < len(words)
                                                         and words[hi + 2].cap)) \
            and joined(words[hi], words[hi + 1]):
        hi += 1
    run = list(words[lo:hi + 1])
    # "I" and a sentence-initial capital are not part of a name ("I loved Alien" → run is "Alien").
    return [w for w in run if w.text not in ("I", "I'm", "I've", "I'd")] or [words[i]]


def _quoted_at(message: str, s: int, e: int) -> bool:
    return s > 0 and e < len(message) and message[s - 1] in "\"'“‘「『" and message[e] in "\"'”’」』"


def _ko_cue_after(end: int, toks: Sequence[lang.Tok], message: str = "") -> bool:
    """A comparison or list particle right after a name ("괴물 같은", "대부랑"), or a verdict about it ("괴물은 이미
    봤어"): it is being used as a title."""
    after = [t for t in toks if t.start >= end][:2]
    if any(t.form.startswith(lang.KO_TITLE_CUES) for t in after) or any(
            t.form in ("좋아하", "재밌", "보", "봤") for t in after[:1]):
        return True
    rest = message[end:end + 30]
    return any(lang.CUES_AFTER_KO[k].match(rest) for k in ("seen", "unseen", "dislike", "exclude", "like"))


_KO_COMPARISON = ("같", "처럼", "보다", "비슷", "만큼", "류", "스타일")


def _ko_comparison_after(end: int, toks: Sequence[lang.Tok]) -> bool:
    """ "괴물 같은", "매트릭스처럼": the name is compared with, so it is a title."""
    return any(t.form.startswith(_KO_COMPARISON) for t in [t for t in toks if t.start >= end][:2])


# Where a Korean title may start: a noun (not a pronoun), a number or a foreign word.
_NAME_START_TAGS = ("NNG", "NNP", "NNB", "NR", "SL", "SN", "SH", "XR", "XPN")
_YEAR_AFTER = rx.compile(r"\s*\(\s*((?:18|19|20)\d\d)\s*\)")

_POSSESSIVE_BEFORE = rx.compile(r"(?:나의|너의|우리의|나만의|내|우리|그녀의|그의)\s*$")


_COMMON_WORD_LOGPROB = -12.5  # kiwi's log-probability above which a common noun (NNG) is an everyday word


def looks_native(span: str) -> bool:
    """True when kiwi reads the span as everyday Korean nouns (and particles), not a name or a transcription:
    "바다 여행", "엄마" yes; "인셉션", "토이 스토리", "겟 아웃" no."""
    toks = lang.tokens(span)
    nouns = [t for t in toks if t.tag.startswith(("N", "S"))]
    if not nouns:
        return False
    return all(t.tag in ("NNG", "NP", "NNB") and t.score > _COMMON_WORD_LOGPROB for t in nouns)


def mention_spans(mentions: Iterable["Mention"]) -> list[tuple[int, int]]:
    return [(m.start, m.end) for m in mentions]
