"""What does the user want this turn? Language, intent, mentioned titles (resolved to catalog ids) and constraints.

Rules first, in both languages: they must carry the whole assistant when no LLM is configured, and they are
what the engine trusts for titles (the resolver) and polarity. The LLM is asked only when the rules find no
intent at all; its structured answer adds intent, genres, period and a search query, never titles on its own.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import BaseModel, Field

from retrieval.titles import title_key
from retrieval.types import Catalog

from . import prompts
from .llm import LLM, LLMError
from .session import Clarification, Session

log = logging.getLogger(__name__)

Intent = Literal["greeting", "recommend", "more_like", "not_like", "seen", "details", "compare", "books",
                 "off_topic", "choose", "injection", "empty", "emoji"]
INTENTS = ("greeting", "recommend", "more_like", "not_like", "seen", "details", "compare", "books", "off_topic",
           "choose", "injection", "empty", "emoji")
GENRES = ("Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
          "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")

# ---------------------------------------------------------------------------------------------------------------
# Language


def hangul_share(text: str) -> float | None:
    """Share of Hangul among letters, a syllable block weighing two Latin letters (it carries about as much);
    None when the text has no letters at all (emoji, digits)."""
    hangul = 2 * sum(1 for ch in text if "\uac00" <= ch <= "\ud7a3" or "\u1100" <= ch <= "\u11ff"
                     or "\u3130" <= ch <= "\u318f")
    letters = hangul + sum(1 for ch in text if ch.isalpha() and ch.isascii())
    return None if letters == 0 else hangul / letters


def detect_language(text: str, default: str = "en") -> str:
    share = hangul_share(text)
    if share is None:
        return default
    return "ko" if share >= 0.3 else "en"


# ---------------------------------------------------------------------------------------------------------------
# Constraints

_GENRE_WORDS: dict[str, tuple[str, ...]] = {
    "Action": ("action", "액션"),
    "Adventure": ("adventure", "adventures", "모험", "어드벤처"),
    "Animation": ("animation", "animated", "anime", "cartoon", "cartoons", "pixar", "애니메이션", "애니", "만화"),
    "Children": ("kids", "children", "family", "family-friendly", "아이", "어린이", "가족"),
    "Comedy": ("comedy", "comedies", "funny", "hilarious", "laugh", "코미디", "코메디", "웃긴", "코믹", "웃음"),
    "Crime": ("crime", "gangster", "gangsters", "heist", "mafia", "범죄", "갱스터", "마피아"),
    "Documentary": ("documentary", "documentaries", "다큐", "다큐멘터리"),
    "Drama": ("drama", "dramas", "드라마"),
    "Fantasy": ("fantasy", "magic", "magical", "판타지", "마법"),
    "Film-Noir": ("noir", "film-noir", "누아르", "느와르"),
    "Horror": ("horror", "scary", "terrifying", "slasher", "공포", "호러", "무서운", "무섭"),
    "Musical": ("musical", "musicals", "뮤지컬"),
    "Mystery": ("mystery", "mysteries", "whodunit", "detective", "미스터리", "미스테리", "추리", "탐정"),
    "Romance": ("romance", "romantic", "love story", "rom-com", "romcom", "로맨스", "로맨틱", "멜로", "사랑"),
    "Sci-Fi": ("sci-fi", "scifi", "science fiction", "science-fiction", "space", "sf", "SF", "공상과학", "우주"),
    "Thriller": ("thriller", "thrillers", "suspense", "스릴러", "서스펜스"),
    "War": ("war", "전쟁"),
    "Western": ("western", "westerns", "cowboy", "서부", "서부극", "카우보이"),
}

# Moods steer the search and softly prefer genres; they never filter.
_MOODS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    # key: (words, soft genres, English search words)
    "feel-good": (("feel-good", "feel good", "uplifting", "heartwarming", "cheerful", "lighthearted", "happy",
                   "cozy", "기분 좋", "힐링", "따뜻한", "유쾌", "밝은", "훈훈"),
                  ("Comedy", "Romance", "Children"), "uplifting heartwarming feel-good"),
    "dark": (("dark", "gritty", "bleak", "disturbing", "어두운", "암울", "무거운"),
             ("Crime", "Thriller", "Drama"), "dark gritty"),
    "sad": (("sad", "tearjerker", "moving", "emotional", "cry", "슬픈", "감동", "눈물", "울고"),
            ("Drama", "Romance"), "emotional moving"),
    "mind-bending": (("mind-bending", "mind bending", "twist", "twists", "clever", "cerebral", "puzzle",
                      "반전", "두뇌", "머리 쓰는", "복잡한"),
                     ("Mystery", "Thriller", "Sci-Fi"), "mind-bending plot twist"),
    "exciting": (("exciting", "thrilling", "adrenaline", "epic", "신나는", "짜릿", "박진감", "스케일"),
                 ("Action", "Adventure"), "exciting epic"),
}

_DECADE_WORDS = {"fifties": 1950, "sixties": 1960, "seventies": 1970, "eighties": 1980, "nineties": 1990}
_NEG_BEFORE = re.compile(r"(?:\bno|\bnot|\bwithout|\bexcept|\bbut not|\bhate|\bavoid|\bnothing|\bskip|\bexcluding)"
                         r"(?:\s+\w+)?\s*$", re.I)
_NEG_AFTER_KO = re.compile(r"^\s*(?:은|는|이|가|을|를|영화|장르)?\s*(?:말고|빼고|제외|싫|별로|아닌|없는|안\s*좋)")


@dataclass(frozen=True)
class Constraints:
    genres: tuple[str, ...] = ()
    exclude_genres: tuple[str, ...] = ()
    year_from: int | None = None
    year_to: int | None = None
    period_label: str = ""  # as the user said it ("1990s", "90년대", "recent"), for explanations
    moods: tuple[str, ...] = ()
    query: str = ""  # free-text wish for the knowledge search

    @property
    def year_range(self) -> tuple[int, int] | None:
        if self.year_from is None and self.year_to is None:
            return None
        return (self.year_from or 1800, self.year_to or 2100)

    @property
    def soft_genres(self) -> tuple[str, ...]:
        out: list[str] = []
        for m in self.moods:
            out += [g for g in _MOODS[m][1] if g not in out]
        return tuple(out)

    @property
    def has_any(self) -> bool:
        return bool(self.genres or self.exclude_genres or self.year_range or self.moods)

    def search_text(self) -> str:
        words = [self.query] + [g for g in self.genres] + [_MOODS[m][2] for m in self.moods]
        return " ".join(w for w in words if w).strip()

    def wishes(self, lang: str) -> list[str]:
        """Human-readable wishes (stored in the session; explanations quote them)."""
        out = [prompts.genre_name(g, lang) for g in self.genres]
        out += list(self.moods)
        if self.period_label:
            out.append(self.period_label)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"genres": list(self.genres), "exclude_genres": list(self.exclude_genres),
                "year_from": self.year_from, "year_to": self.year_to, "period_label": self.period_label,
                "moods": list(self.moods), "query": self.query}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Constraints":
        if not d:
            return cls()
        return cls(genres=tuple(d.get("genres", ())), exclude_genres=tuple(d.get("exclude_genres", ())),
                   year_from=d.get("year_from"), year_to=d.get("year_to"), period_label=d.get("period_label", ""),
                   moods=tuple(m for m in d.get("moods", ()) if m in _MOODS), query=d.get("query", ""))


def _word_hits(text: str, word: str) -> list[int]:
    """Start offsets of `word` in `text`: whole words for Latin script, substrings for Hangul."""
    if any("\uac00" <= ch <= "\ud7a3" for ch in word):
        return [m.start() for m in re.finditer(re.escape(word), text)]
    flags = 0 if word.isupper() else re.I  # "SF" only upper-case: "sf" is rare and ambiguous in English text
    return [m.start() for m in re.finditer(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", text, flags)]


_PERIOD_WORDS = re.compile(
    r"(?:'|’)?\b\d{2,4}\s*'?s\b|\d{2,4}\s*년대?\S*|\b(?:fifties|sixties|seventies|eighties|nineties|decade|era|years?|"
    r"recent|new|newer|latest|modern|classic|classics|old|older|oldies|vintage|before|after|since|until)\b"
    r"|최근|요즘|최신|신작|고전|옛날|오래된|이전|이후|부터|까지", re.I)


def without_constraint_words(text: str) -> str:
    """The text minus genre and period words: what is left describes the wish itself ("slow", "revenge")."""
    for words in _GENRE_WORDS.values():
        for w in words:
            text = re.sub(r"(?<![\w-])" + re.escape(w) + r"\w*", " ", text, flags=0 if w.isupper() else re.I)
    return _PERIOD_WORDS.sub(" ", text)


def parse_constraints(text: str, max_year: int = 2018) -> Constraints:
    genres: list[str] = []
    excluded: list[str] = []
    for genre, words in _GENRE_WORDS.items():
        for w in words:
            for pos in _word_hits(text, w):
                before = text[max(0, pos - 24):pos]
                after = text[pos + len(w):pos + len(w) + 10]
                negative = bool(_NEG_BEFORE.search(before)) or bool(_NEG_AFTER_KO.match(after))
                target = excluded if negative else genres
                if genre not in target:
                    target.append(genre)
    genres = [g for g in genres if g not in excluded]
    # "war" as a genre only when the text talks about war films, not "Star Wars" (the resolver owns titles).
    if "War" in genres and re.search(r"star\s+wars?", text, re.I):
        genres.remove("War")
    moods = [k for k, (words, _, _) in _MOODS.items() if any(_word_hits(text, w) for w in words)]

    y_from = y_to = None
    label = ""
    low = text.lower()
    m = re.search(r"(?:\b(19|20)(\d)0\s*'?s\b)|(?:'(\d)0s\b)|(?:\b(\d)0s\b)", low)
    km = re.search(r"(\d{2,4})\s*년대", text)
    if m:
        if m.group(1):
            start = int(m.group(1) + m.group(2) + "0")
        else:
            d = int(m.group(3) or m.group(4))
            start = (2000 if d <= 2 else 1900) + d * 10
        y_from, y_to, label = start, start + 9, f"{start}s"
    elif km:
        n = int(km.group(1))
        start = n if n >= 1000 else ((2000 + n) if n <= 20 else (1900 + n))
        y_from, y_to, label = start, start + 9, f"{km.group(1)}년대"
    else:
        for word, start in _DECADE_WORDS.items():
            if word in low:
                y_from, y_to, label = start, start + 9, f"{start}s"
    if y_from is None:
        if b := re.search(r"\b(?:before|until|up to|prior to)\s+((?:19|20)\d\d)\b", low):
            y_to, label = int(b.group(1)) - 1, f"before {b.group(1)}"
        elif a := re.search(r"\b(?:after|since|from|newer than)\s+((?:19|20)\d\d)\b", low):
            y_from, label = int(a.group(1)), f"since {a.group(1)}"
        elif kb := re.search(r"((?:19|20)\d\d)\s*년\s*(?:이전|전|까지)", text):
            y_to, label = int(kb.group(1)) - 1, f"{kb.group(1)}년 이전"
        elif ka := re.search(r"((?:19|20)\d\d)\s*년\s*(?:이후|부터|뒤)", text):
            y_from, label = int(ka.group(1)), f"{ka.group(1)}년 이후"
        elif re.search(r"\b(recent|new|newer|latest|modern)\b", low) or re.search(r"최근|요즘|최신|신작", text):
            y_from, label = max_year - 6, "recent" if not re.search(r"[가-힣]", text) else "최근"
        elif re.search(r"\b(classic|old|older|oldies|vintage)\b", low) or re.search(r"고전|옛날|오래된", text):
            y_to, label = 1979, "classic" if not re.search(r"[가-힣]", text) else "고전"
    return Constraints(genres=tuple(genres), exclude_genres=tuple(excluded), year_from=y_from, year_to=y_to,
                       period_label=label, moods=tuple(moods))


# ---------------------------------------------------------------------------------------------------------------
# Intent cues (EN + KO)

_RX = {
    "injection": re.compile(
        r"ignore\s+(?:all\s+|any\s+|the\s+|your\s+)*(?:previous|prior|above|earlier)?\s*(?:instructions|prompts?|rules)"
        r"|system\s*prompt|(?:reveal|print|show|repeat|output)\s+(?:me\s+)?(?:your|the)\s+(?:instructions|prompt|rules)"
        r"|you\s+are\s+now\b|disregard\s+(?:all|previous|the)|jailbreak|developer\s+mode"
        r"|이전\s*(?:의\s*)?(?:지시|명령|지침)|(?:지시|명령|지침)\S*\s*(?:을|를)?\s*무시|시스템\s*프롬프트"
        r"|프롬프트\S*\s*(?:을|를)?\s*(?:출력|보여|알려|공개)", re.I),
    "code": re.compile(r"(?:\b(?:drop|delete|truncate|alter)\s+table\b|\bselect\b.+\bfrom\b|\binsert\s+into\b|"
                       r"\bunion\s+select\b|;\s*--|<\s*/?\s*(?:script|iframe|img|svg|style|object)\b|javascript:)",
                       re.I | re.S),
    "greeting": re.compile(r"^\s*(?:hi|hello|hey|hiya|howdy|yo|good\s+(?:morning|afternoon|evening))\b"
                           r"|^\s*(?:안녕|하이|반가|헬로)", re.I),
    "negative": re.compile(
        r"\b(?:didn'?t|did\s+not|don'?t|do\s+not|doesn'?t|does\s+not)\s+(?:really\s+)?(?:like|love|enjoy|want)\b"
        r"|\b(?:hated?|disliked?|can'?t\s+stand|not\s+a\s+fan|not\s+into|boring|terrible|awful|overrated|"
        r"wasn'?t\s+(?:good|great|for\s+me)|was\s+(?:bad|meh))\b"
        r"|별로|싫|재미\s*없|재미없|지루|노잼|실망|안\s*좋아|최악|안\s*맞", re.I),
    "positive": re.compile(
        r"\b(?:i\s+(?:really\s+)?(?:liked?|loved?|enjoyed|adore)|loved|favou?rite|big\s+fan|fan\s+of|"
        r"was\s+(?:great|amazing|awesome|good))\b"
        r"|재밌게|재미있게|재밌었|재미있었|좋아|좋았|최고|인상\s*깊|감명|명작|사랑해", re.I),
    "similar": re.compile(
        r"\b(?:like|similar\s+to|similar|more\s+like|in\s+the\s+vein\s+of|along\s+the\s+lines\s+of|such\s+as)\b"
        r"|같은|비슷한|처럼|류의|스타일", re.I),
    "seen": re.compile(r"\b(?:i'?ve\s+(?:already\s+)?(?:seen|watched)|already\s+(?:seen|watched)|seen\s+it)\b"
                       r"|이미\s*봤|벌써\s*봤|봤던|본\s*적", re.I),
    "details": re.compile(
        r"\b(?:tell\s+me\s+(?:more\s+)?about|what\s+is\s+.+\s+about|what'?s\s+.+\s+about|who\s+directed|"
        r"who\s+(?:is|stars)\s+in|who\s+wrote|details|plot|synopsis|more\s+info|what\s+kind\s+of\s+(?:movie|film|book)\s+is)"
        r"|줄거리|어떤\s*내용|무슨\s*내용|에\s*대해|감독이\s*누구|누가\s*감독|누가\s*나와|출연진|정보|자세히"
        r"|어떤\s*(?:영화|작품|책)(?:야|이야|인가요?|예요|에요|이에요|임)", re.I),
    "compare": re.compile(r"\b(?:compare|comparison|versus|vs\.?|which\s+(?:one\s+)?is\s+better|difference\s+between)\b"
                          r"|비교|뭐가\s*더|어느\s*(?:게|것이)\s*더|차이", re.I),
    "books": re.compile(r"\b(?:books?|novels?|to\s+read|reading|authors?|paperbacks?)\b|책|소설|도서|읽을", re.I),
    "recommend": re.compile(
        r"\b(?:recommend\w*|suggest\w*|watch|movies?|films?|something|anything|what\s+should|looking\s+for|"
        r"in\s+the\s+mood|show\s+me|give\s+me|more|another|others?|else|picks?|ideas?)\b"
        r"|추천|영화|볼만|보고\s*싶|볼까|뭐\s*볼|더|다른|알려\s*줘|골라", re.I),
}

_ORDINALS = [
    (re.compile(r"\b(?:first|1st)\b|첫\s*번째|첫번째|1\s*번", re.I), 0),
    (re.compile(r"\b(?:second|2nd)\b|두\s*번째|2\s*번", re.I), 1),
    (re.compile(r"\b(?:third|3rd)\b|세\s*번째|3\s*번", re.I), 2),
    (re.compile(r"\b(?:fourth|4th)\b|네\s*번째|4\s*번", re.I), 3),
    (re.compile(r"\b(?:fifth|5th)\b|다섯\s*번째|5\s*번", re.I), 4),
]


_CODE_SPANS = (
    re.compile(r"<\s*(script|style|iframe|object)\b.*?(?:<\s*/\s*\1\s*>|$)", re.I | re.S),
    re.compile(r"<[^>]{0,500}>"),
    re.compile(r"javascript:\S*", re.I),
    re.compile(r"(?:\b(?:drop|delete|truncate|alter|insert|update|union|select)\b[^;]{0,300}(?:;|$))", re.I),
    re.compile(r"--|['\";()]+"),
)


def strip_code(text: str) -> str:
    """The message without markup, script bodies and SQL statements: what is left is what the person wrote."""
    for rx in _CODE_SPANS:
        text = rx.sub(" ", text)
    return re.sub(r"\s+", " ", text).strip()


_YEAR = re.compile(r"(?<!\d)((?:18|19|20)\d\d)(?!\d)")


def ordinal_index(text: str) -> int | None:
    """ "the second one" / "두 번째" / "2" → 1."""
    t = text.strip()
    if re.fullmatch(r"#?\s*(\d{1,2})\s*[.)]?\s*(?:번)?\s*[.!]?", t):
        return int(re.sub(r"\D", "", t)) - 1
    for rx, i in _ORDINALS:
        if rx.search(t):
            return i
    return None


# ---------------------------------------------------------------------------------------------------------------
# Result


@dataclass(frozen=True)
class Understanding:
    language: str
    intent: str
    domain: str = "movie"
    constraints: Constraints = field(default_factory=Constraints)
    liked: tuple[str, ...] = ()  # ids the user says (or implies) they like this turn
    disliked: tuple[str, ...] = ()
    seen: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()  # ids asked about (details / compare)
    clarify: Clarification | None = None
    unknown: tuple[str, ...] = ()  # title-like mentions we could not resolve (sanitised)
    via: str = "rules"


class _LLMUnderstanding(BaseModel):
    intent: str
    domain: str = "movie"
    genres: list[str] = Field(default_factory=list)
    exclude_genres: list[str] = Field(default_factory=list)
    year_from: int | None = None
    year_to: int | None = None
    query: str = ""


def understanding_schema() -> dict:
    text = {"type": "string", "pattern": r'^[^"\\\n\r\t<>]{0,80}$'}
    year = {"type": ["integer", "null"], "minimum": 1900, "maximum": 2030}
    return {
        "type": "object",
        "properties": {
            "intent": {"type": "string", "enum": ["recommend", "books", "greeting", "off_topic"]},
            "domain": {"type": "string", "enum": ["movie", "book"]},
            "genres": {"type": "array", "items": {"type": "string", "enum": list(GENRES)}, "maxItems": 3},
            "exclude_genres": {"type": "array", "items": {"type": "string", "enum": list(GENRES)}, "maxItems": 3},
            "year_from": year, "year_to": year, "query": text,
        },
        "required": ["intent", "domain", "genres", "exclude_genres", "year_from", "year_to", "query"],
    }


def sanitize_fragment(text: str, limit: int = 60) -> str:
    """User text we quote back: no markup characters, one line, bounded length."""
    t = re.sub(r"[<>&\"'`\\{}\[\]]", "", text)
    t = re.sub(r"\s+", " ", t).strip()
    return t[:limit] + ("…" if len(t) > limit else "")


_CUE_EN = re.compile(r"\b(?:i\s+(?:really\s+)?(?:loved|liked|enjoyed|adored)|(?:movies?|films?|something|anything)"
                     r"\s+like|similar\s+to|didn'?t\s+like|hated|fan\s+of)\s+(.+)", re.I)
_CUE_KO = re.compile(r"^\s*(.+?)\s*(?:같은|처럼|비슷한|좋아|재밌게|재미있게|별로|싫)")
_FILLER = {"it", "that", "this", "them", "movies", "movie", "films", "film", "one", "something", "anything", "those",
           "영화", "그거", "이거", "그", "이"}


@dataclass(frozen=True)
class _Guess:
    """An unresolved title-like span (same shape as the resolver's Mention)."""

    text: str
    resolution: Any


class Understander:
    """Turns a message into an Understanding, using the resolver for titles and the LLM only as a fallback."""

    def __init__(self, catalog: Catalog, resolver=None, llm: LLM | None = None, books_catalog: Catalog | None = None):
        self.catalog = catalog
        self.books_catalog = books_catalog
        self.resolver = resolver
        self.llm = llm
        years = [it.year for it in catalog if it.year]
        self.max_year = max(years) if years else 2018

    # -- titles --------------------------------------------------------------------------------------------------
    def _mentions(self, text: str):
        if self.resolver is None or not text.strip():
            return []
        return list(self.resolver.find_mentions(text))

    def _in_catalog(self, item_id: str) -> bool:
        return item_id in self.catalog or (self.books_catalog is not None and item_id in self.books_catalog)

    # -- main ----------------------------------------------------------------------------------------------------
    def understand(self, message: str, session: Session) -> tuple[Understanding, list[str]]:
        """Returns the understanding and notes about fallbacks (e.g. the LLM step failed)."""
        u = self.rules(message, session)
        notes: list[str] = []
        if u.intent == "off_topic" and self.llm is not None and self.llm.enabled and len(message.split()) >= 3:
            try:
                u = self._with_llm(message, session, u)
            except LLMError as e:
                log.info("LLM understanding failed (%s); keeping the rules' answer", e.kind)
                notes.append(e.kind)
        return u, notes

    def _with_llm(self, message: str, session: Session, u: Understanding) -> Understanding:
        hist = [f"{t.role}: {t.text[:200]}" for t in session.recent_dialogue(4)]
        out = self.llm.structured(prompts.understand_messages(message, hist), understanding_schema(),
                                  _LLMUnderstanding, max_tokens=120)
        if out.intent == "off_topic" or out.intent == "greeting":
            return replace(u, intent=out.intent, via="llm")
        c = u.constraints
        lo, hi = out.year_from, out.year_to
        if lo and hi and lo > hi:
            lo, hi = hi, lo
        c = replace(c, genres=tuple(dict.fromkeys(c.genres + tuple(out.genres))),
                    exclude_genres=tuple(dict.fromkeys(c.exclude_genres + tuple(out.exclude_genres))),
                    year_from=c.year_from or lo, year_to=c.year_to or hi,
                    query=sanitize_fragment(out.query, 80) or c.query)
        domain = "book" if (out.domain == "book" or out.intent == "books") and self.books_catalog else u.domain
        return replace(u, intent="books" if domain == "book" else "recommend", domain=domain, constraints=c,
                       via="llm")

    def rules(self, message: str, session: Session) -> Understanding:
        text = message.strip()
        lang = detect_language(text, session.language)
        if not text:
            return Understanding(lang, "empty")
        if not any(ch.isalnum() for ch in text):
            return Understanding(lang, "emoji")
        if _RX["injection"].search(text):
            return Understanding(lang, "injection")
        if _RX["code"].search(text):
            # SQL / markup is no request and its words are never titles; a request written around it still counts.
            text = strip_code(text)
            if not text or not (_RX["recommend"].search(text) or parse_constraints(text, self.max_year).has_any):
                return Understanding(lang, "off_topic")
            lang = detect_language(text, session.language)  # the markup's Latin letters are not the user's language

        # An answer to our question ("which one did you mean?"): a number, an ordinal, or one of the titles.
        if session.pending is not None:
            opts = session.pending.options
            idx = ordinal_index(text)
            if idx is None or not 0 <= idx < len(opts):
                # "The 2002 one" / "2005년 거요": a year that names exactly one of the offered titles.
                by_year = self._by_year(opts, text)
                idx = opts.index(by_year) if by_year else None
            if idx is not None and 0 <= idx < len(opts):
                return self._chosen(lang, session.pending, opts[idx])

        mentions = self._mentions(text)
        matched: list[str] = []
        ambiguous = []
        unknown = []
        for m in mentions:
            res = m.resolution
            if res.status == "matched" and res.matches and self._in_catalog(res.matches[0].item_id):
                if res.matches[0].item_id not in matched:
                    matched.append(res.matches[0].item_id)
            elif res.status == "ambiguous":
                # "Heat (1995)": a year typed with the title settles which one.
                by_year = self._by_year([x.item_id for x in res.matches if self._in_catalog(x.item_id)], text)
                if by_year:
                    if by_year not in matched:
                        matched.append(by_year)
                else:
                    ambiguous.append(m)
            else:
                unknown.append(m)
        if session.pending is not None and not matched:
            # The user may have typed one of the offered titles.
            for m in ambiguous:
                hit = [x.item_id for x in m.resolution.matches if x.item_id in session.pending.options]
                if hit:
                    return self._chosen(lang, session.pending, hit[0])

        # "the first one" refers to the cards on screen
        if not matched and session.last_cards:
            idx = ordinal_index(text)
            if idx is not None and 0 <= idx < len(session.last_cards) and not re.fullmatch(r"\s*\d+\s*", text):
                matched.append(session.last_cards[idx])

        # Constraints come from the words around the titles: "사랑의 블랙홀" (Groundhog Day) is no wish for romance.
        rest = self._query_text(text, mentions)
        constraints = replace(parse_constraints(rest, self.max_year), query=rest)
        negative = bool(_RX["negative"].search(text))
        positive = bool(_RX["positive"].search(text))
        similar = bool(_RX["similar"].search(text))
        seen = bool(_RX["seen"].search(text)) and not positive
        books = bool(_RX["books"].search(text)) and self.books_catalog is not None
        domain = "book" if books else "movie"
        # Titles of the other domain are evidence, not targets: "books for Blade Runner fans" likes a movie.
        common = dict(language=lang, domain=domain, constraints=constraints)

        if _RX["compare"].search(text) and len(matched) >= 2:
            return Understanding(intent="compare", targets=tuple(matched[:2]), **common)
        if _RX["details"].search(text) and matched and not similar:
            return Understanding(intent="details", targets=(matched[0],), **common)
        if negative and matched:
            return Understanding(intent="not_like", disliked=tuple(matched), **common)
        if seen and matched:
            return Understanding(intent="seen", seen=tuple(matched), **common)

        if not matched and not ambiguous and not unknown and (similar or positive or negative):
            guess = self._cued_title(text)
            if guess is not None:
                unknown.append(guess)
        clarify = self._clarify(ambiguous, unknown, lang, domain, "dislike" if negative else "seen" if seen else
                                "like") if not matched else None
        if clarify is not None and books and clarify.polarity == "like" and self._one_series(clarify):
            # "Harry Potter 같은 소설": for books every film of the series is the same evidence; no need to ask.
            matched.append(clarify.options[0])
            clarify = None
        if clarify is not None and (similar or positive or negative or seen or not constraints.has_any):
            return Understanding(intent="more_like", clarify=clarify, unknown=tuple(
                sanitize_fragment(m.text) for m in unknown), **common)
        if matched:
            return Understanding(intent="books" if books else "more_like", liked=tuple(matched), **common)
        if books:
            return Understanding(intent="books", **common)
        if constraints.has_any or _RX["recommend"].search(text):
            return Understanding(intent="recommend", **common)
        if _RX["greeting"].search(text):
            return Understanding(lang, "greeting")
        return Understanding(lang, "off_topic", constraints=constraints)

    def _cued_title(self, text: str):
        """ "I loved Zzyzx Blorp" / "블로프 같은 영화": the words after (EN) or before (KO) a cue look like a title the
        resolver did not find; resolve them for up to three guesses to ask back with."""
        if self.resolver is None:
            return None
        m = _CUE_EN.search(text)
        span = m.group(1) if m else None
        if span is None:
            k = _CUE_KO.search(text)
            span = k.group(1) if k else None
        if not span:
            return None
        span = re.split(r"[,.;!?]|\s(?:and|or|but|because|since|for|from|with|please)\s", span)[0]
        span = " ".join(span.split()[:6]).strip(" '\"“”")
        words = re.findall(r"\w+", span.lower())
        if len(span) < 3 or not words or all(w in _FILLER for w in words):
            return None
        res = self.resolver.resolve(span, k=3)
        return _Guess(span, res)

    def _one_series(self, cl: Clarification) -> bool:
        """Do all offered titles continue what the user typed ("Harry Potter" → "Harry Potter and the …")?"""
        typed = title_key(cl.text)
        titles = [self.catalog.get(i) for i in cl.options]
        return bool(typed) and len(typed) >= 4 and all(it is not None and title_key(it.title).startswith(typed)
                                                      for it in titles)

    def _by_year(self, options: list[str], text: str) -> str | None:
        """The one option released in a year written in the text, or None when none or several fit."""
        years = {int(y) for y in _YEAR.findall(text)}
        if not years:
            return None
        hits = []
        for i in options:
            it = self.catalog.get(i) or (self.books_catalog.get(i) if self.books_catalog is not None else None)
            if it is not None and it.year in years:
                hits.append(i)
        return hits[0] if len(hits) == 1 else None

    def _chosen(self, lang: str, pending: Clarification, item_id: str) -> Understanding:
        domain = pending.domain
        if pending.polarity == "dislike":
            return Understanding(lang, "not_like", domain=domain, disliked=(item_id,))
        if pending.polarity == "seen":
            return Understanding(lang, "seen", domain=domain, seen=(item_id,))
        if pending.polarity == "details":
            return Understanding(lang, "details", domain=domain, targets=(item_id,))
        return Understanding(lang, "choose", domain=domain, liked=(item_id,))

    def _clarify(self, ambiguous, unknown, lang: str, domain: str, pol: str) -> Clarification | None:
        for m in ambiguous + unknown:
            opts = [x.item_id for x in m.resolution.matches if self._in_catalog(x.item_id)][:3]
            if m in ambiguous and not opts:
                continue
            return Clarification(text=sanitize_fragment(m.text), options=opts, polarity=pol, domain=domain)
        return None

    @staticmethod
    def _query_text(text: str, mentions) -> str:
        q = text
        for m in mentions:
            q = q.replace(m.text, " ")
        return re.sub(r"\s+", " ", q).strip()[:300]
