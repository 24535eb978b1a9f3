"""The language toolkit: scripts, one Korean morphology model, and the lexicons of what people say about films.

Everything that reads Korean or English words lives here, so the understanding rules, the title resolver and the
lexical search agree on what a genre, a country, a cue or an everyday word is:

- script: `has_hangul`, `hangul_share`, `detect_language`;
- Korean morphology: one shared Kiwi (`tokens`), thread-safe;
- lexicons, in both languages: genres, tones (soft wishes such as "lighter"), themes (keywords such as
  "superhero"), countries of origin, period words, polarity cues, references to what is on screen;
- `find_terms(text, lexicon)`: every lexicon word in a text, on word boundaries, longest first;
- `is_common_english(word)` / `KO_STOP_NOUNS`: everyday words that are titles only on strong evidence.
"""
from __future__ import annotations

import bisect
import functools
import threading
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from . import lexicon, rx

# ------------------------------------------------------------------------------------------------ script

_HANGUL_RX = rx.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")


def has_hangul(text: str) -> bool:
    return bool(_HANGUL_RX.search(text))


def hangul_share(text: str) -> float | None:
    """Share of Hangul among letters, a syllable block weighing two Latin letters (it carries about as much);
    None when the text has no letters at all (emoji, digits)."""
    hangul = 2 * len(_HANGUL_RX.findall(text))
    letters = hangul + sum(1 for ch in text if ch.isalpha() and ch.isascii())
    return None if letters == 0 else hangul / letters


def detect_language(text: str, default: str = "en") -> str:
    share = hangul_share(text)
    if share is None:
        return default
    return "ko" if share >= 0.3 else "en"


# ------------------------------------------------------------------------------------------------ Korean morphology

@dataclass(frozen=True)
class Tok:
    form: str
    tag: str
    start: int
    end: int
    score: float = 0.0


_KIWI_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def kiwi():
    """The one Kiwi of the process (loading its model takes ~2-5 s, so it happens once, on first use)."""
    from kiwipiepy import Kiwi

    return Kiwi()


@functools.lru_cache(maxsize=8192)
def _tokens_cached(text: str) -> tuple[Tok, ...]:
    with _KIWI_LOCK:  # Kiwi's tokenizer is not documented as thread-safe; the web app serves users in threads
        toks = kiwi().tokenize(text)
    return tuple(Tok(t.form, str(t.tag), t.start, t.start + t.len, t.score) for t in toks)


def tokens(text: str) -> list[Tok]:
    return list(_tokens_cached(text))


_LEX = lexicon.load()
# Nouns that frame a request in chat ("…같은 영화 추천") and never are a title.
KO_STOP_NOUNS = frozenset(_LEX.words.ko_stop_nouns)
# Alias names that are also everyday words: inside a message they count only with a comparison or list cue after
# them ("괴물 같은", "대부랑") or in quotes; resolve() on the bare word still maps them.
KO_COMMON_ALIASES = frozenset(_LEX.words.ko_common_aliases)
# Particles and endings right after a name that show it is used as a title (comparison, list, topic).
KO_TITLE_CUES = _LEX.words.ko_title_cues


# ------------------------------------------------------------------------------------------------ English words

# Function and chat words that are never a title on their own, whatever their frequency.
EN_STOP = frozenset(_LEX.words.en_stop)
_ZIPF_COMMON = 4.0  # wordfreq Zipf value from which an English word counts as everyday ("heat" 4.7, "inception" 2.9)


@functools.lru_cache(maxsize=65536)
def english_zipf(word: str) -> float:
    """How common an English word is (wordfreq's Zipf scale: 7 for "the", 3 for a rare word, 0 unknown)."""
    from wordfreq import zipf_frequency

    return zipf_frequency(word.lower(), "en")


def is_common_english(word: str) -> bool:
    w = word.lower().strip("'’.:-")
    if not w:
        return True
    if w in EN_STOP or w.isdigit():
        return True
    return english_zipf(w) >= _ZIPF_COMMON


# ------------------------------------------------------------------------------------------------ lexicons

@dataclass(frozen=True)
class Term:
    """One lexicon entry: the words that say it (either language) and what it means."""

    key: str
    words: tuple[str, ...]


GENRES = lexicon.MOVIELENS_GENRES
GENRE_KO = {**{k: g.name_ko for k, g in _LEX.genres.items() if g.name_ko}, **_LEX.genre_names_ko}
# A word may stand for several genres at once ("rom-com" is Romance and Comedy): keys joined by "+".
GENRE_TERMS = tuple(Term(k, g.words) for k, g in _LEX.genres.items())


@dataclass(frozen=True)
class Tone:
    """A soft wish: preferred genres, genres it rules out, and English words for the knowledge search."""

    key: str
    words: tuple[str, ...]
    prefer: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()  # hard: a "lighter" pick is never a war film
    demote: tuple[str, ...] = ()  # soft
    search: str = ""
    demote_keywords: tuple[str, ...] = ()  # item keywords/tags that go against the wish
    core: tuple[str, ...] = ()  # the genres that answer the tone on its own (default: `prefer`)
    label_en: str = ""
    label_ko: str = ""

    @property
    def core_genres(self) -> tuple[str, ...]:
        return self.core or self.prefer


TONES = tuple(Tone(k, t.words, t.prefer, t.avoid, t.demote, t.search, t.demote_keywords, t.core, t.label_en,
                   t.label_ko) for k, t in _LEX.tones.items())
TONE_TERMS = tuple(Term(t.key, t.words) for t in TONES)
TONE_BY_KEY = {t.key: t for t in TONES}

# Themes: what a film is about, matched against item keywords and tags ("superhero" is no MovieLens genre).
THEME_TERMS = tuple(Term(k, t.words) for k, t in _LEX.themes.items())
# What a theme looks like in item keywords / tags (lower case substrings).
THEME_KEYWORDS: Mapping[str, tuple[str, ...]] = {k: t.keywords for k, t in _LEX.themes.items()}

# Countries of origin (ISO 3166 codes, as TMDB writes production countries) and original languages.
COUNTRY_TERMS = tuple(Term(k, c.words) for k, c in _LEX.countries.items())
COUNTRY_LANGUAGE = {k: c.language for k, c in _LEX.countries.items()}
COUNTRY_NAMES = {k: (c.name_en, c.name_ko) for k, c in _LEX.countries.items()}
INDUSTRY_WORDS = frozenset(w.lower() for c in _LEX.countries.values() for w in c.industry)

DOMAIN_BOOK_WORDS = _LEX.domain_words["book"].words
DOMAIN_MOVIE_WORDS = _LEX.domain_words["movie"].words


# ------------------------------------------------------------------------------------------------ cues

# Cues are regular expressions anchored at the mention: *_BEFORE must match the text right before it (EN word
# order), *_AFTER the text right after it (Korean is head-final: the verb follows the title).
_W = r"(?:\s+\w+){0,3}?"  # up to three words in between ("I really did not like", "loved the movie")
CUES_BEFORE_EN = {
    "unseen": rx.compile(r"\b(?:have(?:n'?t| not)|never|not yet|didn'?t|did not|haven'?t ever)\s+(?:ever\s+|yet\s+|"
                         r"actually\s+|really\s+)?(?:seen|watched|see|watch)(?:\s+the\s+(?:movie|film))?\s*$", rx.I),
    "dislike": rx.compile(r"\b(?:did(?:n'?t| not)|do(?:n'?t| not)|does(?:n'?t| not)|could(?:n'?t| not)|can'?t|never)\s+"
                          r"(?:really\s+|much\s+|particularly\s+)?(?:like|love|enjoy|stand|get into|care for)"
                          r"(?:\s+the\s+(?:movie|film|book))?\s*$"
                          r"|\b(?:hated?|disliked?|loathed?|not a (?:big )?fan of|not into|bored by|sick of|tired of|"
                          r"overrated|disappointed by|disappointed with)(?:\s+the\s+(?:movie|film|book))?\s*$", rx.I),
    "exclude": rx.compile(r"(?:\bnot|\bno|\bnothing like|\bexcept(?: for)?|\bother than|\bbesides|\bapart from|"
                          r"\bbut not|\banything but|\binstead of|\brather than|\bexcluding|\bwithout|\bskip|"
                          r"\bavoid|\bno more|\bnot another|\bnot the|\bnothing from)(?:\s+(?:the|a|an|any|more))?"
                          r"\s*$", rx.I),
    "details": rx.compile(r"(?:\btell me (?:more )?about|\bwhat(?:'s| is) the (?:plot|story) of|\bwhat(?:'s| is)|"
                          r"\bwho directed|\bwho(?:'s| is) in|\bwho stars in|\bwho wrote|\binfo on|\binformation on|"
                          r"\bdetails (?:on|about|of)|\bplot of|\bsynopsis of|\bis)\s*$", rx.I),
    "seen": rx.compile(r"^\s*(?:already\s+|also\s+)?(?:seen|watched|saw)\s+$|"
                       r"\b(?:i(?:'ve| have)?\s+(?:already\s+|just\s+|recently\s+|also\s+)?(?:seen|watched|saw)|"
                       r"already\s+(?:seen|watched|saw)|just\s+(?:saw|watched)|i\s+watched|i\s+saw|"
                       r"we\s+(?:saw|watched))(?:\s+the\s+(?:movie|film))?\s*$", rx.I),
    "like": rx.compile(r"(?:\bi\s+(?:really\s+|also\s+|just\s+|absolutely\s+|totally\s+)*(?:liked?|loved?|enjoyed|"
                       r"adored?|dig|dug)|\bloved|\bliked|\benjoyed|\bfavou?rites? (?:is|are|was|were|include)|"
                       r"\bfavou?rite(?: movie| film)?(?: is| was)?|\bbig fan of|\bfan of|\blike|\bsimilar to|"
                       r"\bsuch as|\bin the vein of|\balong the lines of|\breminds? me of|\bas good as|\bmore like|"
                       r"\bkind of like|\bsort of like|\bsomething like|\banything like|\bmovies? like|"
                       r"\bfilms? like|\bbooks? like|\bfans? of|\bcomparable to|\blike the)"
                       r"(?:\s+the\s+(?:movie|film|book))?\s*$", rx.I),
}
CUES_AFTER_EN = {
    "dislike": rx.compile(r"^\s*(?:\(\d{4}\))?\s*[,;]?\s*(?:(?:it|that|which)\s+)?(?:was|is|were|seemed|seems|looks|"
                          r"looked|sounds|sounded)\s+(?:really\s+|so\s+|pretty\s+|kind of\s+|kinda\s+|too\s+|a bit\s+)?"
                          r"(?:bad|boring|terrible|awful|overrated|meh|dull|lame|slow|stupid|not (?:good|great|for me|"
                          r"my thing|that good))|^\s*(?:sucked|bored me|wasn'?t (?:good|great|for me|that good))", rx.I),
    "like": rx.compile(r"^\s*(?:\(\d{4}\))?\s*[,;]?\s*(?:(?:it|that|which)\s+)?(?:was|is|were)\s+(?:really\s+|so\s+|"
                       r"pretty\s+|super\s+|just\s+|truly\s+|still\s+)?(?:great|amazing|awesome|good|fantastic|"
                       r"excellent|brilliant|incredible|wonderful|fun|hilarious|funny|a masterpiece|one of (?:my|the)\s+"
                       r"(?:all[\s-]time\s+|absolute\s+|top\s+)?(?:favou?rites?|best)|my (?:all[\s-]time\s+)?favou?rite|"
                       r"a favou?rite)|^\s*(?:rocks|rocked)", rx.I),
}
_KO_P = r"(?:은|는|이|가|을|를|도|랑|이랑|하고|과|와|건|게|걸|거는|거|것은|것도|시리즈(?:는|도|를)?|편은|편도)?\s*(?:둘\s*다|다|모두|전부|" \
        r"정말|진짜|너무|완전|되게|엄청|좀|아주|이미|벌써|예전에|최근에)?\s*"
CUES_AFTER_KO = {
    "exclude": rx.compile(r"^\s*(?:은|는|이|가|을|를|류|시리즈(?:는|를)?|같은\s*거|같은\s*건|종류|건|거)?\s*(?:말고|빼고|"
                          r"제외|외에|아닌|아니고|대신|이외|만\s*빼)"),
    "unseen": rx.compile(r"^\s*" + _KO_P + r"(?:아직\s*)?(?:안\s*봤|못\s*봤|본\s*적\s*(?:이\s*)?없|안\s*본|못\s*본|"
                         r"보지\s*(?:않|못))"),
    "dislike": rx.compile(r"^\s*" + _KO_P + r"(?:정말\s*|진짜\s*|너무\s*|좀\s*|완전\s*)?"
                          r"(?:별로|싫|재미\s*없|재미없|지루|노잼|실망|최악|안\s*좋|안\s*맞|별루|그저\s*그|취향이\s*아니|"
                          r"취향\s*아니|과대평가|안\s*끌)"),
    "details": rx.compile(r"^\s*(?:은|는|이|가|에\s*대해|에\s*대해서)?\s*(?:어떤\s*(?:영화|작품|책|내용)|무슨\s*(?:영화|내용)|"
                          r"줄거리|내용|감독|누가\s*(?:감독|나와|출연)|출연|정보|자세히|알려|설명)"),
    "seen": rx.compile(r"^\s*" + _KO_P + r"(?:이미\s*|벌써\s*|예전에\s*|최근에\s*)?(?:봤|본\s*적\s*(?:이\s*)?있|"
                       r"봤던|봤는데|봤어|봤다|봤지|봤고|봤음|봐서)"),
    "like": rx.compile(r"^\s*" + _KO_P + r"(?:처럼|같이)?\s*(?:정말\s*|진짜\s*|너무\s*|완전\s*|되게\s*|엄청\s*|재밌게\s*|"
                       r"재미있게\s*|인상\s*깊게\s*)?(?:같은|같이|처럼|비슷한|비슷하게|류의|류|스타일|느낌|좋아|좋았|"
                       r"재밌|재미있|최고|인상\s*깊|감명|명작|사랑|좋던|좋은|맘에\s*들|마음에\s*들|즐겨|감동|인생\s*영화)"),
}
# "not X" only counts as an exclusion when X is what follows the cue (not "it's not bad, X is great").
NEGATION_EN = rx.compile(r"\b(?:no|not|without|except|but not|anything but|nothing|other than|instead of|rather than|"
                         r"avoid|skip|excluding|no more|hate|hates|don'?t like|do not like|don'?t want|do not want|"
                         r"not into|sick of|tired of|can'?t stand|aren'?t|isn'?t|wasn'?t|weren'?t|ain'?t|never|"
                         r"dislike|dislikes|(?:don'?t|do\s+not|doesn'?t)\s+(?:really\s+|much\s+|particularly\s+|"
                         r"actually\s+|even\s+)?(?:like|love|enjoy|want|care\s+for|dig)|"
                         r"(?:not|no)\s+(?:a\s+|the\s+|really\s+a\s+)?(?:big\s+|huge\s+|great\s+)?fan\s+of|"
                         r"not\s+(?:really|too|that|so)\s+(?:into|big\s+on|keen\s+on)|not\s+big\s+on)\b"
                         r"(?:\s+\w+){0,2}?\s*$", rx.I)
# Korean states the verdict after the word, often after a short reason ("공포는 무서워서 못 보고", "전쟁 영화는 싫어요").
# What may sit between the word and the verdict: a noun for the kind, an adjective ending with 것 ("잔인한 건"), a
# particle.
_NEG_KO_HEAD = (r"^\s*(?:영화|장르|쪽|계열|류|물|같은\s*거|같은\s*건|거|한\s*(?:건|거|것|영화)|운\s*(?:건|거|것|영화))?\s*"
                r"(?:은|는|이|가|을|를|도)?\s*")
_NEG_KO_VERDICT = (r"(?:말고|빼고|빼\s*주|빼줘|빼\s*줘|빼면|빼요|제외|싫|별로|아닌|아니고|없는|안\s*좋|대신|이외|외에|는\s*빼|"
                   r"못\s*보|못\s*봐|안\s*봐|안\s*볼|"
                   r"무서워서|질색|노노|사절|패스)")
_NEG_KO_NEAR = rx.compile(_NEG_KO_HEAD + _NEG_KO_VERDICT)
# One word may sit between the name and the verdict ("공포는 무서워서 못 보고"), unless it asks for something.
_NEG_KO_ONE_WORD = rx.compile(_NEG_KO_HEAD + r"(\S+)\s*" + _NEG_KO_VERDICT)
_ASKS = rx.compile(r"추천|보여|알려|찾아|있어|없어")


def negated_ko_after(after: str) -> bool:
    """Does the Korean text right after a word rule it out ("공포는 빼고", "로맨스는 싫어요", "공포는 무서워서 못 보고")?"""
    if _NEG_KO_NEAR.match(after):
        return True
    m = _NEG_KO_ONE_WORD.match(after)
    return bool(m) and not _ASKS.search(m.group(1))

# References to what is on screen or was just discussed.
ORDINALS = (
    (rx.compile(r"\b(?:first|1st)\b|첫\s*번째|첫번째|첫\s*번|1\s*번", rx.I), 0),
    (rx.compile(r"\b(?:second|2nd)\b|두\s*번째|둘째|2\s*번", rx.I), 1),
    (rx.compile(r"\b(?:third|3rd)\b|세\s*번째|셋째|3\s*번", rx.I), 2),
    (rx.compile(r"\b(?:fourth|4th)\b|네\s*번째|넷째|4\s*번", rx.I), 3),
    (rx.compile(r"\b(?:fifth|5th)\b|다섯\s*번째|다섯째|5\s*번", rx.I), 4),
    (rx.compile(r"\b(?:last)\s+(?:one|movie|film|book|pick)\b|\bthe\s+last\b|마지막\s*(?:거|것|꺼|건|영화|작품|책)?", rx.I), -1),
)
ORDINAL_PHRASE = rx.compile(
    r"(?:\bthe\s+)?\b(?:first|second|third|fourth|fifth|last|1st|2nd|3rd|4th|5th)\s+(?:one|movie|film|book|pick|"
    r"title|card|suggestion|recommendation)s?\b|\b(?:number|no\.?|#)\s*[1-9]\b|(?:첫|두|세|네|다섯)\s*번째\s*(?:거|것|"
    r"영화|작품|책|꺼|건|게|걸)?|[1-9]\s*번(?:째)?\s*(?:거|것|영화|작품|책|꺼|건|게|걸)?|마지막\s*(?:거|것|꺼|영화|작품|책|건|게)",
    rx.I)
# "the first two", "both", "처음 두 개": several cards at once (start index, count)
ORDINAL_RANGE = rx.compile(r"\b(?:the\s+)?(?:first|top)\s+(two|three|2|3)\b|\bboth\s+of\s+(?:them|those)\b|"
                           r"(?:처음|앞에?)\s*(두|세|2|3)\s*(?:개|편|작품)|(?:둘|두\s*개)\s*다|"
                           r"\b(all)\s+(?:of\s+)?(?:them|those|these|the\s+above)\b|\b(?:them|those|these)\s+(all)\b|"
                           r"(전부|모두|다)\s*(?P<verb>봤|본\s*거)", rx.I)  # the verb is read by the polarity: not part of the phrase
DEMONSTRATIVE = rx.compile(
    r"\b(?:that|this)\s+(?:one|movie|film|book)\b|\bthe\s+(?:same|above)\s+(?:one|movie|film)\b|\bit\b|\bthat\b"
    r"|그거|그것|그건|그걸|그\s*(?:영화|작품|책)|이거|이것|이건|이걸|이\s*(?:영화|작품|책)|저거|저건|저\s*(?:영화|작품)|"
    r"방금\s*(?:그|말한)|아까\s*그",
    rx.I)

PERIOD_WORDS = rx.compile(
    r"(?:'|’)?\b\d{2,4}\s*'?s\b|\d{2,4}\s*년대?\S*|\b(?:fifties|sixties|seventies|eighties|nineties|decade|era|years?|"
    r"recent|newer|latest|modern|classic|classics|older|oldies|vintage|before|after|since|until)\b"
    r"|최근|요즘|최신|신작|고전|옛날|오래된|이전|이후|부터|까지", rx.I)


# ------------------------------------------------------------------------------------------------ matching

@dataclass(frozen=True)
class Hit:
    start: int
    end: int
    key: str
    word: str


def _syllable(ch: str) -> bool:
    return "\uac00" <= ch <= "\ud7a3"


def _latin_word_char(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "-")


@dataclass(frozen=True)
class _WordPattern:
    """One lexicon word as a pattern plus the check on the characters around it. Korean: the word starts a word or
    a morpheme (Kiwi), so glued words read ("로맨틱코미디추천좀" → 로맨틱, 코미디) but 한국 is not in 대한민국, and it may
    carry particles. Latin: only Latin letters, digits and hyphens end a word, because Korean particles attach
    straight to Latin words ("SF는 빼고")."""

    pattern: object
    korean: bool
    upper: bool = False  # an upper-case word ("SF"): in lower case only where Korean is glued to it ("90년대sf영화")

    def finditer(self, text: str):
        starts = _morpheme_starts(text) if self.korean else frozenset()

        def ok(m) -> bool:
            s, e = m.start(), m.end()
            if self.korean:
                return s == 0 or not _syllable(text[s - 1]) or s in starts
            if self.upper and not m.group(0).isupper() and not (
                    s > 0 and _syllable(text[s - 1]) or e < len(text) and _syllable(text[e])):
                return False
            return (s == 0 or not _latin_word_char(text[s - 1])) and (e == len(text) or not _latin_word_char(text[e]))

        return rx.finditer_where(self.pattern, text, ok)


@functools.lru_cache(maxsize=64)  # every Korean lexicon word of every lexicon asks for the same text's starts
def _morpheme_starts(text: str) -> frozenset[int]:
    return frozenset(t.start for t in tokens(text))


def _latin_body(word: str) -> str:
    """A listed English word as a pattern: spaces as any whitespace, a listed plural also matching its singular
    ("for my kids" reads "for my kid")."""
    parts = []
    for w in word.split(" "):
        body = rx.escape(w)
        parts.append(body + "?" if len(w) >= 4 and w.endswith("s") and not w.endswith("ss") else body)
    return r"\s+".join(parts)


@functools.lru_cache(maxsize=4096)
def _compiled(word: str) -> _WordPattern:
    if has_hangul(word):
        return _WordPattern(rx.compile(rx.escape(word).replace(r"\ ", r"\s*")), True)
    # "SF" upper-case in English text ("sf" is rare and ambiguous there), any case glued to Korean.
    return _WordPattern(rx.compile(_latin_body(word), rx.I), False, upper=word.isupper() and len(word) > 1)


_ASCII_WORD = rx.compile(r"[A-Za-z]{4,}")
_TYPO_MIN_RATIO = 85  # "funy" → funny 89, "comedys" → comedy 92, "thriler" → thriller 93
_TYPO_MAX_ZIPF = 3.0  # a real English word is not a typo of another ("crimes", "prime")


@functools.lru_cache(maxsize=64)
def _typo_vocabulary(terms: tuple[Term, ...]) -> dict[str, str]:
    """Single English lexicon words long enough to carry a typo, → their term key."""
    return {w.lower(): t.key for t in terms for w in t.words
            if " " not in w and w.isascii() and w.isalpha() and len(w) >= 5}


def _typo_hits(text: str, terms: tuple[Term, ...], taken: Sequence[Hit]) -> list[Hit]:
    """Rare lower-case words one typo away from a listed word ("comedys", "funy", "horor"); capitalised words are
    left to the title and name finders."""
    from rapidfuzz import fuzz, process

    vocab = _typo_vocabulary(terms)
    if not vocab:
        return []
    out = []
    for m in _ASCII_WORD.finditer(text):
        w = m.group(0)
        low = w.lower()
        if (w[0].isupper() and not w.isupper()) or low in vocab or overlaps(m.span(), [(h.start, h.end) for h in taken]):
            continue
        if english_zipf(low) > _TYPO_MAX_ZIPF:
            continue
        best = process.extractOne(low, list(vocab), scorer=fuzz.ratio, score_cutoff=_TYPO_MIN_RATIO)
        if best is not None and best[0][0] == low[0]:
            out.append(Hit(m.start(), m.end(), vocab[best[0]], best[0]))
    return out


_HANGUL_RUN = rx.compile(r"[가-힣]{3,}")
_KO_TYPO_MIN_SYLLABLES = 3  # two-syllable words have too many real neighbours (공포 / 공부)


def _jamo(word: str) -> str:
    """Hangul syllables as their letters (초성, 중성, 종성), so one wrong vowel is one edit ("로멘스" / "로맨스")."""
    out = []
    for ch in word:
        code = ord(ch) - 0xAC00
        out.append(chr(0x1100 + code // 588) + chr(0x1161 + code % 588 // 28) + (chr(0x11A7 + code % 28) if code % 28 else ""))
    return "".join(out)


@functools.lru_cache(maxsize=64)
def _ko_typo_vocabulary(terms: tuple[Term, ...]) -> dict[str, list[tuple[str, str]]]:
    """Korean lexicon words of three syllables or more by their first syllable → (word, term key)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for t in terms:
        for w in t.words:
            if " " not in w and len(w) >= _KO_TYPO_MIN_SYLLABLES and all(_syllable(c) for c in w):
                out.setdefault(w[0], []).append((w, t.key))
    return out


def _ko_typo_hits(text: str, terms: tuple[Term, ...], taken: Sequence[Hit]) -> list[Hit]:
    """Korean words one letter (jamo) away from a listed word of three syllables or more, a whole word or
    morpheme, with the same first syllable ("로멘스" → 로맨스, "코메디" → 코미디, "스릴라" → 스릴러)."""
    from rapidfuzz.distance import Levenshtein

    vocab = _ko_typo_vocabulary(terms)
    if not vocab:
        return []
    spans = [(h.start, h.end) for h in taken]
    out: list[Hit] = []
    starts = None
    for m in _HANGUL_RUN.finditer(text):
        for s in range(m.start(), m.end()):
            for word, key in vocab.get(text[s], ()):
                n = len(word)
                piece = text[s:s + n]
                # One letter off is one syllable off: compare that syllable's letters only.
                diff = [i for i in range(1, len(piece)) if piece[i] != word[i]]
                if len(piece) < n or len(diff) != 1 or overlaps((s, s + n), spans):
                    continue
                if Levenshtein.distance(_jamo(piece[diff[0]]), _jamo(word[diff[0]]), score_cutoff=1) > 1:
                    continue
                starts = _morpheme_starts(text) if starts is None else starts
                # The word starts and ends a word or a morpheme: "스페이" inside 스페이스 is no 스파이.
                if (s == m.start() or s in starts) and (s + n == m.end() or s + n in starts):
                    out.append(Hit(s, s + n, key, word))
                    spans.append((s, s + n))
    return out


def find_terms(text: str, terms: Iterable[Term]) -> list[Hit]:
    """Every lexicon word found in `text`, longest first where two overlap, in text order; then rare words one
    typo away from a listed English word."""
    terms = tuple(terms)
    hits = []
    for term in terms:
        for w in term.words:
            for m in _compiled(w).finditer(text):
                hits.append(Hit(m.start(), m.end(), term.key, w))
    hits.sort(key=lambda h: (-(h.end - h.start), h.start))
    chosen: list[Hit] = []
    for h in hits:
        if not any(h.start < c.end and c.start < h.end for c in chosen):
            chosen.append(h)
    chosen += _typo_hits(text, terms, chosen)
    if has_hangul(text):
        chosen += _ko_typo_hits(text, terms, chosen)
    return sorted(chosen, key=lambda h: h.start)


def overlaps(span: tuple[int, int], spans: Iterable[tuple[int, int]]) -> bool:
    s, e = span
    return any(s < ce and cs < e for cs, ce in spans)


_CLAUSE_SPLIT = rx.compile(r"[.!?;\n]+|,\s*(?:but|though|although|however|yet)\b|"
                           r"\s(?:though|although|however|whereas|while|yet)\s", rx.I)
# " but " splits too, except in "anything but X" / "all but X" and before "not" ("X but not Y" is one wish).
_BUT = rx.compile(r"\s+but\s+", rx.I)
_BUT_KEEPS = (rx.compile(r"\b(?:anything|all)$", rx.I), rx.compile(r"^not\b", rx.I))
# Korean connective endings close the clause they end ("X는 봤는데 Y는 안 봤어"): the split falls after them.
_CLAUSE_SPLIT_KO = rx.compile(r"(?:지만|는데|은데|인데|던데|니까|어서|아서|었고|았고|했고)\s*")


@functools.lru_cache(maxsize=64)
def _clause_cuts(text: str) -> tuple[tuple[int, int], ...]:
    """Where the clauses of `text` end and the next begin, computed once per text (every word of a long message
    asks for its clause)."""
    cuts = [(m.start(), m.end()) for m in _CLAUSE_SPLIT.finditer(text)]
    cuts += [(m.start(), m.end()) for m in _BUT.finditer(text)
             if not _BUT_KEEPS[0].search(text[max(0, m.start() - 9):m.start()])
             and not _BUT_KEEPS[1].search(text[m.end():m.end() + 4])
             and not overlaps((m.start(), m.end()), cuts)]
    cuts += [(m.end(), m.end()) for m in _CLAUSE_SPLIT_KO.finditer(text)]
    return tuple(sorted(cuts))


def clause_bounds(text: str, pos: int) -> tuple[int, int]:
    """The clause around `pos`: polarity words in one clause do not reach into the next
    ("I loved Alien but hated Prometheus", "X는 재밌었는데 Y는 별로")."""
    cuts = _clause_cuts(text)
    j = bisect.bisect_left(cuts, (pos, pos + 1))  # the first cut that starts at pos or later and ends after it
    end = cuts[j][0] if j < len(cuts) else len(text)
    k = j - 1
    while k >= 0 and cuts[k][1] > pos:  # a cut around pos closes nothing before it
        k -= 1
    return (cuts[k][1] if k >= 0 else 0), end


# ------------------------------------------------------------------------------------------------ filler

_KO_FILLER = _LEX.words.ko_filler
_EN_FILLER = frozenset(_LEX.words.en_filler)  # who and when one watches with says nothing about the film


def informative(query: str) -> bool:
    """Does the free text say anything beyond "recommend me another movie" / "다른 거 추천해줘"?"""
    for w in rx.findall(r"\w+", query.lower()):
        if has_hangul(w):
            if not w.startswith(_KO_FILLER):
                return True
        elif w not in _EN_FILLER and len(w) > 1 and not w.isdigit():
            return True
    return False
