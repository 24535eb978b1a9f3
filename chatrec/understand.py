"""What does the user want this turn? A typed `Request` (chatrec/request.py), read from the message.

Two parsers, one output. The rules (default; no LLM needed) read the message in this order, each step claiming
the words it understood so that later steps cannot misread them:

1. safety: empty, emoji-only, prompt injection, code/markup around a request;
2. an answer to our last question ("the 2002 one", "2", a title among the options);
3. lexicon words (retrieval/lang.py): genres (with negation and "or"), tones, themes, countries, periods,
   people (retrieval/people.py), references to cards ("the second one", "그거"), domain words;
4. titles (retrieval/mentions.py), accepted only on evidence, never inside the words claimed above;
5. a polarity for every item reference from the cue words of its own clause ("I loved X but hated Y",
   "X 말고", "haven't seen X"), and the intent of the turn.

With an LLM configured, `understand` asks it to fill the same request through structured output; every title it
names goes through the resolver, and the rules fill whatever it leaves out (or replace it when it fails).
Every decision is logged with its reason (`Request.notes`, and the title scan at debug level).
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Callable, Literal, Mapping, Sequence

from bm25s.stopwords import STOPWORDS_EN
from pydantic import BaseModel, Field

from retrieval import lang, rx
from retrieval.documents import lexical_text
from retrieval.lang import GENRES, Hit, detect_language, hangul_share  # noqa: F401 (re-exported for callers)
from retrieval.people import PeopleIndex
from retrieval.textnorm import fold_for_matching
from retrieval.titles import KeyIndex, title_key
from retrieval.types import Catalog

from . import prompts
from .acts import ActContext, ActModel, ActPrediction
from .acts import load as load_acts
from .llm import LLM, LLMError
from .request import ItemRef, PersonRef, Request, Wish
from .session import Clarification, Session

log = logging.getLogger(__name__)



class _Checked:
    """A pattern whose matches must also pass a check on the text around them (what a look-around said, which RE2
    cannot run), optionally or-ed with a plain pattern; `search` gives the leftmost match of either."""

    def __init__(self, pattern, ok: Callable, rest=None):
        self.pattern, self.ok, self.rest = pattern, ok, rest

    def search(self, text: str):
        m = _first(self.pattern, text, self.ok)
        r = self.rest.search(text) if self.rest is not None else None
        if m is None or (r is not None and r.start() < m.start()):
            return r
        return m


def _first(pattern, text: str, ok: Callable):
    """The first match of `pattern` in `text` for which `ok(text, match)` holds, or None."""
    return next(rx.finditer_where(pattern, text, lambda m: ok(text, m)), None)


_ENDS_WHAT_ELSE = rx.compile(r"\b(?:what|else)\s$", rx.I)
_ENDS_THE = rx.compile(r"\bthe\s$", rx.I)
_ASKS_FOR_PICKS = rx.compile(r"\s+(?:of\s+)?(?:any|some|a\s+(?:good|few)|anything|something|others?|more|good|great|"
                             r"movies|films|what\s+(?:I|to))\b", rx.I)
_QUESTION_ENDS = rx.compile(r"[^.!?\n]*\?")
_CLOSES_PAREN = rx.compile(r"\s*\)")
_RANGE_DASH = rx.compile(r"\s*[-–~]")

# ---------------------------------------------------------------------------------------------------------------
# Intent cues (EN + KO)

_RX = {
    "injection": rx.compile(
        r"ignore\s+(?:all\s+|any\s+|the\s+|your\s+)*(?:previous|prior|above|earlier)?\s*(?:instructions|prompts?|rules)"
        r"|system\s*prompt|(?:reveal|print|show|repeat|output)\s+(?:me\s+)?(?:your|the)\s+(?:instructions|prompt|rules)"
        r"|you\s+are\s+now\b|disregard\s+(?:all|previous|the)|jailbreak|developer\s+mode"
        r"|이전\s*(?:의\s*)?(?:지시|명령|지침)|(?:지시|명령|지침)\S*\s*(?:을|를)?\s*무시|시스템\s*프롬프트"
        r"|프롬프트\S*\s*(?:을|를)?\s*(?:출력|보여|알려|공개)", rx.I),
    "code": rx.compile(r"(?:\b(?:drop|delete|truncate|alter)\s+table\b|\bselect\b.+\bfrom\b|\binsert\s+into\b|"
                       r"\bunion\s+select\b|;\s*--|<\s*/?\s*[A-Za-z][\w:-]*(?:\s[^<>]{0,500})?/?\s*>|javascript:)",
                       rx.I | rx.S),
    "recommend": rx.compile(
        r"\b(?:recommend\w*|suggest\w*|watch|movies?|films?|something|anything|what\s+should|looking\s+for|"
        r"in\s+the\s+mood|show\s+me|give\s+me|more|another|others?|else|picks?|ideas?|any\s+good|options?|"
        r"read|books?|novels?|similar)\b|추천|영화|볼만|볼 만|보고\s*싶|볼까|뭐\s*볼|알려\s*줘|골라|찾아|있어\?|없어\?|없을까|"
        r"보여\s*줘|보여\s*주|비슷한|좋을까|뭐가\s*좋|뭐\s*없|어떤\s*게\s*좋|볼\s*거|\bwhat\s+(?:would|should|could|can)\s+"
        r"(?:i|you)\b|\bwhich\s+(?:one|movie|film|book)\b|\bany\s+(?:ideas|suggestions|recs)\b|"
        r"있을까|읽을|책|소설", rx.I),
    # "which one is scarier?", "which is more fun": any comparative after "which (one) is".
    "compare": rx.compile(r"\b(?:compare|comparison|versus|vs\.?|which\s+(?:one\s+)?is\s+(?:\w+er|more\s+\w+|better|"
                          r"worse)|difference\s+between|better\s*,?\s*\w*\s*or)\b|비교|뭐가\s*더|어느\s*(?:게|것이|쪽이)\s*더|"
                          r"차이|(?:어떤|어느)\s*(?:게|거|것)\s*더", rx.I),
    # "would I like Heat?" asks about a film; "what would I like?" / "would I like it?" do not name one.
    "predict": _Checked(rx.compile(r"\b(?:would|will|do\s+you\s+think)\s+i\s+(?:like|love|enjoy)\s+(\w+)", rx.I),
                        lambda t, m: not _ENDS_WHAT_ELSE.search(t[max(0, m.start() - 12):m.start()])
                        and m.group(1).lower() not in ("it", "them", "next", "more"),
                        rx.compile(r"\bis\s+.+\s+(?:worth\s+(?:it|watching|a\s+watch)|for\s+me)\b|좋아할까|"
                                   r"좋아할\s*것\s*같|재밌을까|재미있을까|볼\s*만할까|볼만할까|취향일까|맞을까", rx.I)),
    "page": rx.compile(r"^\s*(?:(?:show|give)\s+me\s+)?(?:some\s+)?(?:more|others?|another(?:\s+one)?|next|"
                       r"something\s+else|anything\s+else|different\s+ones?|other\s+ones?|other\s+options?|"
                       r"more\s+(?:please|like\s+(?:these|those|that|this))|more\s+suggestions?|keep\s+going)"
                       r"\b(?:\s+(?:please|pls|ones|options|picks|suggestions|recommendations|movies|films|books))*"
                       r"\s*[.!?]*\s*$"
                       r"|^\s*(?:다른\s*(?:거|것|걸|작품|영화|책|추천)?|또|더|더\s*(?:보여|추천|알려)\w*|다음|"
                       r"다른\s*것도|또\s*(?:없어|있어|추천)\w*|더\s*없어\w*)(?:\s*(?:줘|주세요|해줘|해\s*줘|해주세요|"
                       r"요|좀|있어\??|없어\??|\?))*\s*[.!?]*\s*$", rx.I),
    "new_topic": rx.compile(r"\b(?:something\s+(?:completely\s+)?different|change\s+of\s+pace|start\s+over|"
                            r"new\s+topic|forget\s+(?:that|it|those|about\s+(?:that|it))|never\s*mind|scratch\s+that|"
                            r"not\s+(?:that|those|these)\s*[,.!]?\s+(?:just|rather|instead)|actually\s*,?\s+just)\b|"
                            r"아예\s*다른|완전히\s*다른|처음부터|새로\s*추천|다른\s*장르|(?:그거|그건|이거|저거|그런\s*거)\s*말고|"
                            r"아니\s*그냥", rx.I),
    "help": rx.compile(r"\bwhat\s+can\s+you\s+do\b|\bwho\s+are\s+you\b|\bwhat\s+are\s+you\b|\bhow\s+does\s+this\s+"
                       r"work\b|\bare\s+you\s+(?:a\s+)?(?:human|bot|robot|real|ai)\b|\bwhat(?:'s|\s+is)\s+your\s+name\b|"
                       r"^\s*help\b|너\s*(?:뭐야|누구|뭐\s*할\s*수)|이름이\s*뭐|사람이야|로봇이야|봇이야|뭘\s*할\s*수|뭐\s*할\s*수\s*있|"
                       r"어떻게\s*쓰|사용법|도움말", rx.I),
    "refine": rx.compile(r"\b(?:more|less|lighter|darker|instead|rather|only|just|but|also|too|prefer|better|"
                         r"what\s+about|how\s+about|maybe|make\s+it|ones?|that\s+are|with|without|preferably|"
                         r"ideally|if\s+possible|newer|older|shorter)\b|좀\s*더|더\s|덜\s|이면|면\s*더|으로\s*$|로\s*$|"
                         r"으로\s*(?:줘|해|부탁|추천)|로\s*(?:줘|해|부탁|추천)|대신|말고|는\s*어때|은\s*어때|도\s*있|"
                         r"만\s|였으면|였음|이었으면|으면\s*좋|면\s*좋", rx.I),
    "books": rx.compile(r"\b(?:books?|novels?|paperbacks?|something\s+to\s+read|to\s+read|reading|read\s+next|"
                        r"should\s+i\s+read|(?:a|good|great|quick|light|beach|fun|easy)\s+read)\b|책|소설|도서|읽을",
                        rx.I),
    "movies": rx.compile(r"\b(?:movies?|films?|flicks?|cinema)\b|영화", rx.I),
    "not_request_book": rx.compile(r"\b(?:the|that|this|read\s+the)\s+(?:book|novel)\b|\bbook\s+(?:and|&)\s+(?:the\s+)?"
                                   r"(?:movie|film)|\bbased\s+on\s+(?:a|the)\s+(?:book|novel)|원작\s*(?:소설|책)|"
                                   r"(?:책|소설)(?:이|을|를|도)\s*(?:재밌었|좋았|읽었)|(?:책|소설)(?:은|는)?\s*(?:됐|그만|말고|"
                                   r"빼고|패스)|\b(?:no|not|enough|without)\s+(?:a\s+|an\s+|any\s+|more\s+)?(?:books?|novels?)\b|"
                                   r"\b(?:books?|novels?)\s+(?:are\s+)?(?:enough|done)\b", rx.I),
}
_QUESTION = {
    "director": rx.compile(r"\bwho\s+directed|\bwho(?:'s|\s+is|\s+was)\s+the\s+director|\bdirector\s+of\b|\bwho\s+made\b|"
                           r"감독(?:이|은|이\s*누구|\s*누구)|누가\s*(?:감독|만들|연출)", rx.I),
    "cast": rx.compile(r"\bwho(?:'s|\s+is|\s+was)\s+in\b|\bwho\s+stars?\b|\bwho\s+starred|\bcast\b|\bactors?\b.*\?|"
                       r"누가\s*(?:나와|나오|출연)|출연진|배우(?:는|가)?\s*누구|주연", rx.I),
    "plot": rx.compile(r"\bwhat(?:'s|\s+is|\s+was)\s+(?:it|that|this|.+)\s+about\b|\bplot\b|\bsynopsis\b|\bstory\b.*\?|"
                       r"\btell\s+me\s+(?:more\s+)?about\b|\btell\s+me\s+more\b|\bmore\s+(?:info|details)\b|\bdetails\b|줄거리|무슨\s*내용|"
                       r"어떤\s*내용|내용이\s*뭐|어떤\s*(?:영화|작품|책)(?:야|이야|인가요?|예요|에요|이에요|임|인지)|"
                       r"에\s*대해|자세히|설명해|\bhave\s+you\s+(?:heard\s+of|seen)\b|"
                       r"\bwhat\s+do\s+you\s+think\s+(?:of|about)\b|"
                       r"알아\s*\??\s*$|아세요|아니\s*\?|들어\s*봤|어때\s*\??\s*$|괜찮아\s*\?|볼\s*만해\s*\?|"
                       r"재(?:밌|미있)(?:어|나|나요|어요|을까|을까요|니)\s*\?", rx.I),
    # "do you know Heat?" asks about a film; "do you know any good ones?" asks for picks.
    "plot-know": _Checked(rx.compile(r"\bdo\s+you\s+know\b", rx.I),
                          lambda t, m: not _ASKS_FOR_PICKS.match(t[m.end():m.end() + 40])),
    # "is it scary?" / "was Heat any good?": a question (a "?" closes the sentence), not "it is good".
    "plot-judge": _Checked(rx.compile(r"\b(?:is|was)\s+(?:it|that|this|.{2,40})\s+(?:any\s+|really\s+|too\s+)?"
                                      r"(?:good|worth\s+(?:it|watching|a\s+watch)|ok|okay|scary|violent|appropriate|"
                                      r"suitable)\b", rx.I),
                           lambda t, m: bool(_QUESTION_ENDS.match(t[m.end():]))),
    "year": rx.compile(r"\bwhen\s+(?:was|did|were)\s+(?:\S+\s+){0,5}?(?:come\s+out|released|made)|\bwhat\s+year\b|"
                       r"언제\s*(?:나왔|개봉|만들)|몇\s*년", rx.I),
    "runtime": rx.compile(r"\bhow\s+long\s+is\b|\bruntime\b|\brunning\s+time\b|\bhow\s+many\s+(?:minutes|hours)\b|"
                          r"몇\s*분|러닝\s*타임|상영\s*시간|얼마나\s*길", rx.I),
    "genre": rx.compile(r"\bwhat\s+(?:kind|genre|type)\s+of\s+(?:movie|film|book)\s+is\b|무슨\s*장르|장르가\s*뭐", rx.I),
    "similar": rx.compile(r"\b(?:something|anything|movies?|films?|books?|more|others?)\s+(?:similar|like\s+(?:it|that|"
                          r"this|that\s+one|this\s+one|them))\b|\bsimilar\s+(?:ones?|movies?|films?|to\s+(?:it|that|"
                          r"this))\b|\bmore\s+like\s+(?:it|that|this)\b|비슷한|같은\s*(?:거|것|영화|작품|류)|처럼", rx.I),
}
_OR_BETWEEN = rx.compile(r"^\s*(?:or|/|or\s+maybe|either|나|이나|아니면|또는|혹은)\s*$", rx.I)
# The joints of a comma list of genres ("action, comedy, and chick flicks"): a taste, any of them will do.
_LIST_JOINT = rx.compile(r"^\s*(?:,\s*(?:and|or|&)?|and|or|&)\s*(?:movies?|films?)?\s*$", rx.I)
_ANIME = rx.compile(r"\banime\b|재패니메이션|일본\s*애니|아니메", rx.I)
_SERIES = rx.compile(r"^\s*(?:the\s+)?(?:series|franchise|movies|films|saga|trilogy|sequels?)\b|^\s*(?:시리즈|편들|"
                     r"시리즈물|속편)", rx.I)
_NEWER_ONE = rx.compile(r"\bthe\s+(?:new|newer|newest|latest|recent|more\s+recent)\s+(?:one|version|movie|film)\b|"
                        r"\bthe\s+(?:sequel|remake|reboot)\b|새로\s*나온\s*(?:거|것|편)|최신작|속편|리메이크(?:판|작)?", rx.I)
# "An older one", "something older", "좀 더 옛날 거": older than the films on screen (no year of its own). "The older
# one" is the older version of a title (`_newer_one`'s counterpart), not a period.
_OLDER = _Checked(rx.compile(r"\b(?:an?\s+|some\s+)?older\s+(?:one|ones|movies?|films?|stuff|picks?|titles?)\b", rx.I),
                  lambda t, m: not _ENDS_THE.search(t[max(0, m.start() - 5):m.start()]), rx.compile(
                    r"\b(?:something|anything|ones?)\s+(?:a\s+(?:bit|little)\s+)?older\b|"
                    r"\bolder\s*(?:please|pls|maybe|instead|[.!?]|$)|\bless\s+recent\b|\bnot\s+(?:so|that|as)\s+"
                    r"(?:new|recent)\b|더\s*(?:오래된|옛날|예전)|좀\s*(?:오래된|옛날)\s*(?:거|것|걸|영화|작품)", rx.I))
OLDER_BY = 5  # "something older": at least this many years before the middle of the cards' years
_REPLACE = rx.compile(r"\binstead\b|\brather\b|\bswitch\s+to\b|대신|(?:으로|로)\s*바꿔|말고\s+\S+\s*(?:으로|로)\b", rx.I)
_LESS_SCARY = rx.compile(r"\bless\s+scary\b|\bnot\s+(?:too\s+|so\s+)?scary\b|덜\s*무서|안\s*무서|무섭지\s*않", rx.I)
# "They terrify me", "too scary for my kids": horror is out, unless horror is what this request asks for.
_SCARES_ME = rx.compile(r"\btoo\s+scary\b|\b(?:terrify|terrifies|scare|scares|frighten|frightens)\s+me\b|"
                        r"\b(?:scared|afraid|terrified)\s+of\s+(?:horror|scary)|너무\s*무서워|무서운\s*(?:건|거)\s*(?:못|싫)", rx.I)
_OF_THE_FILM = rx.compile(r"^\s*(?:\(\s*(?:18|19|20)\d\d\s*\))?\s*,?\s*(?:with|starring|featuring)\s+$", rx.I)
_ONE_WITH = rx.compile(r"\b(?:the|that)\s+(?:(?:18|19|20)\d\d\s+)?(?:one|version|movie|film)\s+(?:with|starring)\s+$",
                       rx.I)  # "the 1997 one with DiCaprio": which film, not a wish for his films
# "it is a comedy movie", "that's a horror": a genre said of a film, not asked for.
_SAID_OF_A_FILM = rx.compile(r"\b(?:it|that|this|which)\s*(?:\s+is|\s+was|'s|’s|\s+seems|\s+sounds)\s+(?:like\s+)?"
                             r"(?:a|an|more\s+of\s+a|kind\s+of\s+a)\s+(?:\w+\s+)?$", rx.I)
_CUED_EN = rx.compile(r"\b(?:movies?|films?|something|anything|shows?|books?)\s+(?:like|similar\s+to)\s+"
                      r"((?:the\s+)?[A-Z0-9][\w'’:&.-]*(?:\s+(?:[A-Z0-9][\w'’:&.-]*|of|the|and|a|in)){0,5})")
# A Korean comparison cue ("X 같은 거", "X처럼"), followed by a space; the name before it is found by `_ko_cued_span`.
_KO_CUE = rx.compile(r"(?:같은|처럼|비슷한)\s")
_NONSPACE = rx.compile(r"\S+")
_KO_CUE_LOOKBACK = 60  # characters before a cue that may hold the name (a title of up to three words)
_FUNCTION_WORDS = frozenset({"the", "of", "and", "a", "an", "in", "on", "to", "for", "at", "with", "from", "vs"})
_KO_VERDICT = rx.compile(r"(?P<unseen>안\s*봤|못\s*봤|본\s*적\s*(?:이\s*)?없)|(?P<dislike>별로(?:\s*(?:[^없\s]|$))|싫|재미\s*없|재미없|"
                         r"지루|노잼|실망|최악|과대평가)|(?P<seen>이미\s*(?:다\s*)?(?:봤|본)|벌써\s*(?:다\s*)?(?:봤|본)|봤어|봤는데|봤다|봤지|봤음|봤던|본\s*거(?:야|예요|에요|임|다|라서))|"
                         r"(?P<like>좋아해|좋아했|좋았|재밌었|재미있었|최고|인생\s*영화|명작|사랑해)")
_LIST_SEP = rx.compile(r"\s*(?:,|,?\s*and|,?\s*or|&|/|이랑|랑|하고|와|과|,?\s*그리고)?\s*(?:the\s+)?", rx.I)
_DECADE_WORDS = {"fifties": 1950, "sixties": 1960, "seventies": 1970, "eighties": 1980, "nineties": 1990}


def sanitize_fragment(text: str, limit: int = 60) -> str:
    """User text we quote back: no markup characters, one line, bounded length."""
    t = rx.sub(r"[<>&\"'`\\{}\[\]]", "", text)
    t = rx.sub(r"\s+", " ", t).strip()
    return t[:limit] + ("…" if len(t) > limit else "")


def _ko_cued_span(text: str) -> tuple[int, int] | None:
    """The name right before the first Korean comparison cue: up to three words of the same clause ("나의 아저씨
    같은 잔잔한 거" → "나의 아저씨"), the last one possibly glued to the cue ("아저씨같은"). A bounded look-back per
    cue keeps this linear in the message (a regex with nested repeats here took a minute on 2,000 characters)."""
    for m in _KO_CUE.finditer(text):
        lo = max(0, m.start() - _KO_CUE_LOOKBACK)
        window = text[lo:m.start()]
        cut = max(window.rfind(c) for c in ",.!?") + 1
        words = [(lo + w.start(), lo + w.end()) for w in _NONSPACE.finditer(window, cut)]
        if words and cut == 0 and lo > 0 and words[0][0] == lo and not text[lo - 1].isspace():
            words = words[1:]  # the look-back cut a word in two
        if words:
            return words[-3:][0][0], words[-1][1]
    return None


_CODE_SPANS = (
    rx.compile("|".join(rf"<\s*{tag}\b.*?(?:<\s*/\s*{tag}\s*>|$)" for tag in ("script", "style", "iframe", "object")),
               rx.I | rx.S),
    rx.compile(r"<[^>]{0,500}>"),
    rx.compile(r"javascript:\S*", rx.I),
    rx.compile(r"(?:\b(?:drop|delete|truncate|alter|insert|update|union|select)\b[^;]{0,300}(?:;|$))", rx.I),
    rx.compile(r"--|['\";()]+"),
)


def strip_code(text: str) -> str:
    """Remove markup tags, script bodies and SQL statements: what is left is what the person wrote."""
    for pattern in _CODE_SPANS:
        text = pattern.sub(" ", text)
    return rx.sub(r"\s+", " ", text).strip()


_YEAR = rx.compile(r"(?:18|19|20)\d\d")


def years_in(text: str) -> list[int]:
    """Four-digit years 1800-2099 that are not part of a longer number."""
    return [int(m.group(0)) for m in rx.finditer_where(_YEAR, text, lambda m: not (
        m.start() > 0 and text[m.start() - 1].isdigit() or m.end() < len(text) and text[m.end()].isdigit()))]


def ordinal_index(text: str) -> int | None:
    """ "the second one" / "두 번째" / "2" → 1; "the last one" → -1."""
    t = text.strip()
    if rx.fullmatch(r"#?\s*(\d{1,2})\s*[.)]?\s*(?:번)?\s*[.!]?", t):
        return int(rx.sub(r"\D", "", t)) - 1
    for pattern, i in lang.ORDINALS:
        if pattern.search(t):
            return i
    return None


# ---------------------------------------------------------------------------------------------------------------
# Period

@dataclass(frozen=True)
class _Span:
    year: str
    span: tuple[int, int]
    year_end: int


@dataclass(frozen=True)
class Period:
    year_from: int | None = None
    year_to: int | None = None
    label: str = ""
    span: tuple[int, int] | None = None


def parse_period(text: str, max_year: int = 2018) -> Period:
    """Decades ("90s", "90년대", "early 2000s"), ranges ("before 2000", "2010년 이후", "between 1990 and 1995"),
    "recent" and "classic". A year in parentheses belongs to a title ("Heat (1995)"), not to the period."""
    low = text.lower()
    ko = lang.has_hangul(text)

    def dec(s: str) -> int:
        n = int(s)
        return n if n >= 1000 else ((2000 + n) if n <= 20 else (1900 + n))

    m = rx.search(r"\b(early|mid|late)[\s-]*((?:19|20)?\d0)\s*'?s\b", low)
    if m:
        start = dec(m.group(2))
        lo, hi = {"early": (0, 4), "mid": (3, 7), "late": (5, 9)}[m.group(1)]
        return Period(start + lo, start + hi, f"{m.group(1)} {start}s", m.span())
    # "90년대 말" is the late 90s; "90년대 말고" is "not the 90s".
    m = _first(rx.compile(r"((?:19|20)?\d0)\s*년대\s*(초반|중반|후반|말)"), text,
               lambda t, m: not (m.group(2) == "말" and t[m.end():m.end() + 1] in ("고", "구")))
    if m:
        start = dec(m.group(1))
        lo, hi = {"초반": (0, 4), "중반": (3, 7), "후반": (5, 9), "말": (7, 9)}[m.group(2)]
        return Period(start + lo, start + hi, m.group(0), m.span())
    m = rx.search(r"\bbetween\s+((?:19|20)\d\d)\s+and\s+((?:19|20)\d\d)\b", low) or rx.search(
        r"((?:19|20)\d\d)\s*년?\s*(?:-|–|~|to|부터|에서)\s*((?:19|20)\d\d)\s*(?:년|까지)?", text)
    if m:
        a, b = sorted((int(m.group(1)), int(m.group(2))))
        return Period(a, b, f"{a}–{b}", m.span())
    m = rx.search(r"(?:\b((?:19|20)\d)0\s*['’]?s\b)|(?:['’](\d)0['’]?s\b)|(?:\b(\d)0['’]?s\b)", low)
    if m:
        if m.group(1):
            start = int(m.group(1) + "0")
        else:
            d = int(m.group(2) or m.group(3))
            start = (2000 if d <= 2 else 1900) + d * 10
        return Period(start, start + 9, f"{start}s", m.span())
    m = rx.search(r"(\d{2,4})\s*년대", text)
    if m:
        start = dec(m.group(1))
        return Period(start, start + 9, f"{m.group(1)}년대", m.span())
    for word, start in _DECADE_WORDS.items():
        w = rx.search(rf"\b{word}\b", low)
        if w:
            return Period(start, start + 9, f"{start}s", w.span())
    m = rx.search(r"\b(?:nothing|no|not|none)\s+(?:\w+\s+)?(?:older\s+than|before|earlier\s+than|prior\s+to)\s*"
                  r"((?:19|20)\d\d)\b", low)
    if m:
        return Period(int(m.group(1)), None, f"since {m.group(1)}", m.span())
    m = rx.search(r"\b(?:nothing|no|not|none)\s+(?:\w+\s+)?(?:newer\s+than|after|later\s+than)\s*((?:19|20)\d\d)\b",
                  low)
    if m:
        return Period(None, int(m.group(1)), f"up to {m.group(1)}", m.span())
    m = rx.search(r"\b(?:before|until|up\s+to|prior\s+to|older\s+than|pre-?)\s*((?:19|20)\d\d)\b", low)
    if m:
        return Period(None, int(m.group(1)) - 1, f"before {m.group(1)}", m.span())
    m = _first(rx.compile(r"\b(?:after|since|from|newer\s+than|post-?)\s*((?:19|20)\d\d)\b"), low,
               lambda t, m: not _CLOSES_PAREN.match(t[m.end():]))  # "from (1999)" is a title's year
    if m:
        return Period(int(m.group(1)), None, f"since {m.group(1)}", m.span())
    # "movies from 1995" is one year; "movies from 1995 - 2000" is a range (read above).
    m = _first(rx.compile(r"\b(?:movies?|films?|something|anything|ones?|comed(?:y|ies)|dramas?|thrillers?|horrors?|"
                          r"westerns?|musicals?|stuff)\s+(?:from|in|of|released\s+in|made\s+in)\s+(?:the\s+year\s+)?\(?"
                          r"((?:19|20)\d\d)\)?|\byear\s*\(((?:19|20)\d\d)\)|\b((?:19|20)\d\d)\s+(?:movies|films)\b"),
               low, lambda t, m: m.group(1) is None or not _RANGE_DASH.match(t[m.end():])) or rx.search(r"((?:19|20)\d\d)\s*년\s*(?:에|도|작|개봉|영화|산|작품|에\s*나온|도에)", text)
    if m:
        g = next(i for i in range(1, (m.lastindex or 1) + 1) if m.group(i))
        m = _Span(m.group(g), m.span(), m.end(g))
    if m and not rx.search(r"년\s*(?:이전|전|까지|이후|부터|뒤|후)", text[m.year_end:m.year_end + 8]):
        y = int(m.year)
        return Period(y, y, str(y) if not ko else f"{y}년", m.span)
    m = rx.search(r"((?:19|20)\d\d)\s*년\s*(?:이전|전|까지)", text)
    if m:
        return Period(None, int(m.group(1)) - 1, f"{m.group(1)}년 이전", m.span())
    m = rx.search(r"((?:19|20)\d\d)\s*년\s*(?:이후|부터|뒤|후)", text)
    if m:
        return Period(int(m.group(1)), None, f"{m.group(1)}년 이후", m.span())
    m = rx.search(r"\b(?:recent|recently\s+released|latest|newer|modern|new\s+(?:releases?|movies|films)|"
                  r"from\s+the\s+last\s+few\s+years|this\s+decade)\b", low) or rx.search(r"최근|요즘|최신|신작|근래",
                                                                                          text)
    if m and not rx.search(r"\b(?:the|that|this)\s+(?:new|newer|latest)\s+(?:one|version)\b", low):
        return Period(max_year - 6, None, "최근" if ko else "recent", m.span())
    m = rx.search(r"\bclassic\s+(?:movies?|films?|ones?|cinema|hollywood|westerns?|horror|comed(?:y|ies)|noir|"
                  r"romance|musicals?)\b|\b(?:classics|old\s+(?:movies|films|ones)|older\s+(?:movies|films|ones)|oldies|"
                  r"vintage|golden\s+age)\b", low) or \
        rx.search(r"고전|옛날|오래된|올드", text)
    if m and not rx.search(r"\b(?:the|that|this)\s+(?:old|older)\s+(?:one|version)\b", low):
        return Period(None, 1979, "고전" if ko else "classic", m.span())
    return Period()


# ---------------------------------------------------------------------------------------------------------------
# LLM structured output


class _LLMTitle(BaseModel):
    title: str
    polarity: Literal["like", "dislike", "seen", "unseen", "exclude", "details", "neutral"] = "neutral"


class _LLMRequest(BaseModel):
    intent: Literal["recommend", "details", "compare", "feedback", "chitchat", "greeting", "off_topic"]
    domain: Literal["movie", "book", "same"] = "same"
    titles: list[_LLMTitle] = Field(default_factory=list)
    card: int = 0  # 1-based card referred to ("the second one"), 0 when none
    genres: list[str] = Field(default_factory=list)
    exclude_genres: list[str] = Field(default_factory=list)
    people: list[str] = Field(default_factory=list)
    year_from: int | None = None
    year_to: int | None = None
    tones: list[str] = Field(default_factory=list)
    follow_up: bool = False
    query: str = ""


def request_schema() -> dict:
    text = {"type": "string", "pattern": r'^[^"\\\n\r\t<>]{0,80}$'}
    year = {"type": ["integer", "null"], "minimum": 1900, "maximum": 2030}
    genre = {"type": "string", "enum": list(GENRES)}
    return {
        "type": "object",
        "properties": {
            "intent": {"type": "string", "enum": ["recommend", "details", "compare", "feedback", "chitchat",
                                                  "greeting", "off_topic"]},
            "domain": {"type": "string", "enum": ["movie", "book", "same"]},
            "titles": {"type": "array", "maxItems": 4, "items": {
                "type": "object", "properties": {
                    "title": text,
                    "polarity": {"type": "string", "enum": ["like", "dislike", "seen", "unseen", "exclude",
                                                            "details", "neutral"]}},
                "required": ["title", "polarity"]}},
            "card": {"type": "integer", "minimum": 0, "maximum": 10},
            "genres": {"type": "array", "items": genre, "maxItems": 3},
            "exclude_genres": {"type": "array", "items": genre, "maxItems": 3},
            "people": {"type": "array", "items": text, "maxItems": 2},
            "year_from": year, "year_to": year,
            "tones": {"type": "array", "items": {"type": "string", "enum": [t.key for t in lang.TONES]},
                      "maxItems": 2},
            "follow_up": {"type": "boolean"},
            "query": text,
        },
        "required": ["intent", "domain", "titles", "card", "genres", "exclude_genres", "people", "year_from",
                     "year_to", "tones", "follow_up", "query"],
    }


# ---------------------------------------------------------------------------------------------------------------
# The rules


@dataclass
class _Lexicon:
    """The request words found in a message, and the spans they claim (no title may overlap them)."""

    genres: list[str] = field(default_factory=list)
    genres_any: list[str] = field(default_factory=list)
    exclude_genres: list[str] = field(default_factory=list)
    soft_genres: list[str] = field(default_factory=list)  # a taste stated before the request
    soft_people: list[str] = field(default_factory=list)  # people liked before the request, or said of a film
    tones: list[str] = field(default_factory=list)
    themes: list[str] = field(default_factory=list)
    exclude_themes: list[str] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    exclude_origins: list[str] = field(default_factory=list)
    people: list[PersonRef] = field(default_factory=list)
    period: Period = field(default_factory=Period)
    ordinals: list[tuple[int, int, int]] = field(default_factory=list)  # (start, end, index)
    demonstratives: list[tuple[int, int]] = field(default_factory=list)
    claims: list[tuple[int, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def has_wish(self) -> bool:
        return bool(self.genres or self.genres_any or self.exclude_genres or self.tones or self.themes
                    or self.exclude_themes or self.origins or self.exclude_origins or self.people
                    or self.period.label)


_FILM_CONTEXT_AFTER = rx.compile(
    r"^\W{0,3}(?:\w+\W+){0,3}?(?:movies?|films?|flicks?|cinema|ones?|stuff|titles?|picks?|thrillers?|comed(?:y|ies)|"
    r"horrors?|dramas?|romances?|animations?|anime|noir|westerns?|action|classics?|directors?|actors?|novels?|books?)\b"
    r"|^\s*(?:산|의)?\s*(?:\S+\s*){0,2}?(?:영화|작품|애니|드라마|공포|호러|로맨스|멜로|스릴러|코미디|액션|범죄|누아르|감독|배우|"
    r"소설|책|sf|SF)", rx.I)
_FILM_CONTEXT_BEFORE = rx.compile(r"\b(?:from|made\s+in|set\s+in|out\s+of|in)\s+$", rx.I)


def _comma_list(text: str, hits: Sequence[Hit]) -> list[Hit]:
    """Three or more genres in a comma list ("horror, rom-coms, and thrillers") name a taste, not one film that is
    all of them at once ("a funny sci-fi movie" and "action and comedy" stay a conjunction)."""
    if len(hits) < 3 or any(not _LIST_JOINT.match(text[a.end:b.start]) for a, b in zip(hits, hits[1:])):
        return []
    if "," not in text[hits[0].end:hits[-1].start]:
        return []
    return list(hits)


def _sentence_of(text: str, pos: int) -> int:
    return len(rx.findall(r"[.!?\n]+\s*", text[:pos]))


def _about_films(text: str, h: Hit) -> bool:
    """ "Korean thrillers", "한국 공포영화", "a movie from France", "Bollywood": a country of origin. "What is the capital
    of France?" or "I'm Korean" says nothing about films."""
    if h.word.lower() in lang.INDUSTRY_WORDS:
        return True
    return bool(_FILM_CONTEXT_AFTER.match(text[h.end:h.end + 40]) or _FILM_CONTEXT_BEFORE.search(text[:h.start])
                and rx.search(r"\b(?:movies?|films?|something|anything|recommend)\b|영화|추천", text, rx.I))


# The gap between two members of a list ("horror or romance", "로맨스랑 애니는", "zombies, vampires and ghosts").
# Korean lists nouns with 이랑 / 하고 / 이나 … and adjectives with 거나 / 고 ("무섭거나 잔인한 건 빼주세요").
_LIST_GAP = rx.compile(r"^\s*,?\s*(?:(?:and|or|nor|&|/)\s+)?(?:(?:the|any|more)\s+)?$|"
                       r"^\s*(?:이랑|랑|하고|와|과|이나|나|거나|고|,)\s*$", rx.I)
_CONJUNCTION = rx.compile(r"\b(?:and|or|nor)\b|&|/|이랑|랑|하고|와|과|이나|나|고", rx.I)


def _negated_spans(text: str, hits: Sequence[Hit]) -> set[tuple[int, int]]:
    """The lexicon words ruled out, a list sharing its verdict: "로맨스랑 애니는 빼고" leaves out both, as does "no
    zombies or vampires"; "comedy, not romance" only romance."""
    hits = sorted(hits, key=lambda h: h.start)
    out = {(h.start, h.end) for h in hits if _negated(text, h.start, h.end)}
    chains: list[list[Hit]] = []
    for h in hits:
        if chains and _LIST_GAP.match(text[chains[-1][-1].end:h.start]):
            chains[-1].append(h)
        else:
            chains.append([h])
    for chain in chains:
        joined = any(_CONJUNCTION.search(text[a.end:b.start]) for a, b in zip(chain, chain[1:]))
        if joined and any((h.start, h.end) in out for h in chain):
            out |= {(h.start, h.end) for h in chain}
    return out


# A verdict after an English word that rules it out ("musicals aren't really my thing", "horror is too much").
_NOT_FOR_ME = rx.compile(r"^\s*(?:is|are|was|were)(?:n'?t|\s+not)\s+(?:really\s+|exactly\s+|quite\s+)?(?:my\s+(?:thing|"
                         r"style|cup\s+of\s+tea|kind\s+of\s+thing|jam|genre)|for\s+me)|^\s*(?:is|are)\s+too\s+much|"
                         r"^\s*(?:bores?|scares?)\s+me", rx.I)


def _negated(text: str, start: int, end: int) -> bool:
    """Is the word at [start, end) ruled out ("no horror", "not Korean", "공포 말고", "로맨스는 싫어")?"""
    cs, ce = lang.clause_bounds(text, start)
    before = text[max(cs, start - 40):start]
    after = text[end:min(ce, end + 24)]
    return bool(lang.NEGATION_EN.search(before)) or lang.negated_ko_after(after) or bool(_NOT_FOR_ME.match(after))


class Understander:
    """Message → Request. Holds only read-only lexicons built from the catalogs (shared by all users)."""

    def __init__(self, catalog: Catalog, resolver=None, llm: LLM | None = None, books_catalog: Catalog | None = None,
                 people: PeopleIndex | None = None, popularity: Mapping[str, float] | None = None,
                 book_resolver=None, acts: ActModel | None = None):
        self.catalog = catalog
        self.books_catalog = books_catalog
        self.resolver = resolver
        self.llm = llm
        self.people = people
        self.book_resolver = book_resolver  # titles of the books catalog, read when a turn asks for books
        self.popularity = popularity  # item id → number of users who rated it (settles "which Titanic?")
        self.acts = acts if acts is not None else load_acts()  # what a line asks for, learned (chatrec/acts.py)
        years = [it.year for it in catalog if it.year]
        self.max_year = max(years) if years else 2018
        self._series_keys = KeyIndex((title_key(it.title), it.id) for it in catalog)

    # -- public ----------------------------------------------------------------------------------------------------
    def understand(self, message: str, session: Session, *, domain: str | None = None, llm: LLM | None = None,
                   trust_rules: bool = False) -> tuple[Request, list[str]]:
        """The request, and the kinds of LLM failures met on the way (the rules' answer stands in for them).

        `llm` stands in for the shared one in this call (the engine's per-turn, budgeted view of it). With
        `trust_rules` the LLM is asked only when the rules are unsure (`rules_unsure`): a round trip costs seconds."""
        llm = llm or self.llm
        req = self.rules(message, session, domain=domain)
        notes: list[str] = []
        if self._llm_worth_asking(req, message, llm) and not (trust_rules and not rules_unsure(req)):
            try:
                req = self._with_llm(message, session, req, llm)
            except LLMError as e:
                log.info("LLM understanding failed (%s); keeping the rules' request", e.kind)
                notes.append(e.kind)
        return req, notes

    def title_mentions(self, text: str):
        """The titles the rules accept in a message (for measuring precision and recall on real dialogues)."""
        text = fold_for_matching(text)
        lex = self._lexicon(text)
        if self.resolver is None:
            return []
        return self.resolver.find_mentions(text, claimed=lex.claims)

    # -- rules -----------------------------------------------------------------------------------------------------
    def rules(self, message: str, session: Session, *, domain: str | None = None) -> Request:
        raw = message.strip()
        lng = detect_language(raw, session.language)
        if not raw:
            return Request(intent="empty", language=lng)
        if not any(ch.isalnum() for ch in raw):
            return Request(intent="emoji", language=lng)
        text = fold_for_matching(raw)
        if _RX["injection"].search(text):
            return Request(intent="injection", language=lng)
        if _RX["code"].search(text):
            # SQL / markup is no request and its words are never titles; a request written around it still counts.
            text = strip_code(text)
            lng = detect_language(text, session.language)
            if not text or not (_RX["recommend"].search(text) or self._lexicon(text).has_wish):
                return Request(intent="off_topic", language=lng, notes=["only code or markup"])

        if session.pending is not None:
            ans = self._answer(text, lng, session)
            if ans is not None:
                return ans

        lex = self._lexicon(text)
        scan = self.resolver.scan_mentions(text, claimed=lex.claims) if self.resolver is not None else None
        mentions = scan.mentions if scan is not None else []
        dom, domain_set = self._domain(text, session, domain)
        if dom == "book" and self.book_resolver is not None:
            # Books named while asking for books ("I loved The Name of the Wind, what should I read next?").
            taken = [(m.start, m.end) for m in mentions if m.resolution.status != "unknown"]
            for m in self.book_resolver.scan_mentions(text, claimed=lex.claims + taken).mentions:
                if m.resolution.status == "matched":
                    mentions = [x for x in mentions if not lang.overlaps((x.start, x.end), [(m.start, m.end)])] + [m]
            mentions.sort(key=lambda m: m.start)
        if mentions:
            # A title with strong evidence ("Alien (1979)", a quoted name) wins over the lexicon words inside it.
            lex = self._lexicon(text, skip=[(m.start, m.end) for m in mentions])
        self._older_than_cards(text, lex, session)
        notes = list(lex.notes)
        refs: list[ItemRef] = []
        unknown: list[str] = []
        missing: list[str] = []
        ambiguous = []
        spans = [(m.start, m.end) for m in mentions]
        placed: list[tuple[int, ItemRef]] = []  # where each title ref was named (for "... and loved it")
        for m in mentions:
            res = m.resolution
            pol = self._polarity(text, m.start, m.end, spans)
            series = bool(_SERIES.match(text[m.end:m.end + 14]))
            if res.status == "matched" and res.best is not None and self._in_catalog(res.best.item_id):
                for iid in self._franchise_pick(res.best.item_id, m.text):
                    if iid not in [r.item_id for r in refs]:
                        refs.append(ItemRef(item_id=iid, polarity=pol, via="title", text=sanitize_fragment(m.text),
                                            series=series))
                        placed.append((m.end, refs[-1]))
                        notes.append(f"title {m.text!r} → {iid} ({m.evidence}; {pol})")
            elif res.status == "ambiguous":
                opts = [x.item_id for x in res.matches if self._in_catalog(x.item_id)]
                by_year = self._by_year(opts, text) or self._dominant(opts)
                if by_year:
                    refs.append(ItemRef(item_id=by_year, polarity=pol, text=sanitize_fragment(m.text), series=series))
                    placed.append((m.end, refs[-1]))
                    notes.append(f"ambiguous {m.text!r}: took {by_year} (year typed, or far better known)")
                elif pol in ("exclude",) or series:
                    # "no Batman movies": every one of them is left out; no need to ask which.
                    for o in opts:
                        refs.append(ItemRef(item_id=o, polarity="exclude", text=sanitize_fragment(m.text),
                                            series=series))
                elif opts:
                    ambiguous.append((m, pol))
            elif res.not_in_catalog:
                missing.extend(res.not_in_catalog)
                notes.append(f"title {m.text!r} known but not in the catalog: {res.not_in_catalog[0]}")
            else:
                unknown.append(sanitize_fragment(m.text))
                if res.matches:
                    ambiguous.append((m, pol))
        refs += self._card_refs(text, lex, session, refs)
        refs += self._referred_back(text, lex, placed)
        refs += self._newer_one(text, refs, session)
        refs += self._series_refs(refs)

        # Words that are not titles, people or lexicon words: the free-text wish for the knowledge search. A title
        # the catalog lacks stays in it: its name is the best description of what the user wants.
        unknown_spans = [(m.start, m.end) for m in mentions if m.resolution.status == "unknown"
                         and not m.resolution.matches]
        query = self._query_text(text, [sp for sp in spans + lex.claims if sp not in unknown_spans])
        query = rx.sub(r"\(\s*(?:18|19|20)\d\d\s*\)", " ", query).strip()
        wish = Wish(genres=lex.genres, genres_any=lex.genres_any, exclude_genres=lex.exclude_genres,
                    soft_genres=lex.soft_genres, soft_people=lex.soft_people,
                    people=lex.people, origins=lex.origins, exclude_origins=lex.exclude_origins,
                    year_from=lex.period.year_from, year_to=lex.period.year_to, period_label=lex.period.label,
                    tones=lex.tones, themes=lex.themes, exclude_themes=lex.exclude_themes, query=query)
        wish.domain = dom
        guess = self._cued_unknown(text, [(m.start, m.end) for m in mentions] + lex.claims)
        if guess is not None and not refs:
            unknown.append(sanitize_fragment(guess.text))
            if guess.resolution.best is not None and guess.resolution.best.score >= 0.8:
                ambiguous.append((guess, "like"))  # a close guess: ask "did you mean …?"
            notes.append(f"{guess.text!r} reads as a title (a cue follows or precedes it) but is not in the catalog")
        for m in mentions:
            if m.resolution.status == "unknown" and not m.resolution.matches and dom == "movie":
                # A namesake is another film ("Parasite" 1982 for the 2019 one), not the series of the one meant.
                namesakes = {title_key(x.rsplit(" (", 1)[0]) for x in m.resolution.not_in_catalog}
                alts = [i for i in self.alternatives_for(m.text) if title_key(self._item(i).title) not in namesakes]
                wish.anchors += [i for i in alts if i not in wish.anchors]
                if alts:
                    notes.append(f"{m.text!r} is not in the catalog: its series as alternatives {alts}")
        req = Request(intent="recommend", language=lng, refs=refs, wish=wish, domain_set=domain_set,
                      unknown=unknown, missing=missing, notes=notes)
        return self._with_act(self._intent(req, text, session, lex, ambiguous), text, session, lex)

    # -- pieces ----------------------------------------------------------------------------------------------------
    def _in_catalog(self, item_id: str) -> bool:
        return item_id in self.catalog or (self.books_catalog is not None and item_id in self.books_catalog)

    def _item(self, item_id: str):
        it = self.catalog.get(item_id)
        if it is None and self.books_catalog is not None:
            it = self.books_catalog.get(item_id)
        return it

    def _lexicon(self, text: str, skip: Sequence[tuple[int, int]] = ()) -> _Lexicon:
        lex = _Lexicon()
        claims = lex.claims
        claims.extend(skip)  # spans already taken by titles: no lexicon word inside them
        # People first: a name may contain a genre or country word ("Park Chan-wook" no, "Will Smith" no, but be safe).
        person_at: list[tuple[int, PersonRef]] = []
        if self.people is not None:
            for h in self.people.find(text):
                if self._title_cued_person(text, h) or lang.overlaps((h.start, h.end), claims):
                    continue
                ref = PersonRef(name=h.name, role=h.role, exclude=_negated(text, h.start, h.end))
                claims.append((h.start, h.end))
                if not ref.exclude and (any(_OF_THE_FILM.match(text[e:h.start]) for _, e in skip if e <= h.start)
                                        or _ONE_WITH.search(text[max(0, h.start - 40):h.start])):
                    lex.soft_people.append(h.name)  # "Jumanji (1995) with Robin Williams": who is in it, no wish
                    continue
                lex.people.append(ref)
                person_at.append((h.start, ref))
                lex.notes.append(f"person {h.text!r} → {h.name} ({h.role})")
        genre_hits = [h for h in lang.find_terms(text, lang.GENRE_TERMS) if not lang.overlaps((h.start, h.end), claims)]
        negated = _negated_spans(text, genre_hits + [h for h in lang.find_terms(text, lang.THEME_TERMS + lang.COUNTRY_TERMS)
                                                     if not lang.overlaps((h.start, h.end), claims)])
        # Genres named in one sentence are a conjunction ("a romantic comedy"); named in different sentences they
        # are a taste and then a request ("I like horror. Any comedies?"): the last sentence's genres filter, the
        # earlier ones only weigh.
        # "it is a comedy movie" says what a film is; "too scary" is no wish for horror (`_SCARES_ME` below).
        said_of_film = [h for h in genre_hits if _SAID_OF_A_FILM.search(text[max(0, h.start - 40):h.start])
                        or h.key == "Horror" and rx.search(r"\btoo\s+$", text[max(0, h.start - 5):h.start], rx.I)]
        claims.extend((h.start, h.end) for h in said_of_film)
        genre_hits = [h for h in genre_hits if h not in said_of_film]
        positive = [h for h in genre_hits if (h.start, h.end) not in negated]
        # A period inside a genre word ("Rom. Coms") ends no sentence.
        chars = list(text)
        for h in genre_hits:
            chars[h.start:h.end] = text[h.start:h.end].replace(".", " ")
        plain = "".join(chars)
        last_sentence = _sentence_of(plain, positive[-1].start) if positive else None
        listed = _comma_list(text, [h for h in positive if _sentence_of(plain, h.start) == last_sentence])
        prev: Hit | None = None
        for h in genre_hits:
            claims.append((h.start, h.end))
            genres = h.key.split("+")
            if (h.start, h.end) in negated:
                lex.exclude_genres += [g for g in genres if g not in lex.exclude_genres]
            elif _sentence_of(plain, h.start) != last_sentence:
                lex.soft_genres += [g for g in genres if g not in lex.soft_genres]
            elif h in listed:
                lex.genres_any += [g for g in genres if g not in lex.genres_any]
            elif prev is not None and _OR_BETWEEN.match(text[prev.end:h.start]) and not _negated(text, prev.start,
                                                                                                   prev.end):
                # "comedy or drama": either will do
                for g in prev.key.split("+") + genres:
                    if g in lex.genres:
                        lex.genres.remove(g)
                    if g not in lex.genres_any:
                        lex.genres_any.append(g)
            else:
                lex.genres += [g for g in genres if g not in lex.genres]
            prev = h
        scares = _SCARES_ME.search(text) and "Horror" not in lex.genres + lex.genres_any
        if (_LESS_SCARY.search(text) or scares) and "Horror" not in lex.exclude_genres:
            lex.exclude_genres.append("Horror")
            if "Horror" in lex.genres:
                lex.genres.remove("Horror")
        lex.genres = [g for g in lex.genres if g not in lex.exclude_genres]
        lex.soft_genres = [g for g in lex.soft_genres if g not in lex.exclude_genres and g not in lex.genres]
        if last_sentence is not None:
            # Like genres: a person liked in an earlier sentence than the request is a taste ("I love Adam Sandler!
            # ... any other good 90's comedies?"), not a filter.
            for pos, ref in person_at:
                if not ref.exclude and _sentence_of(plain, pos) < last_sentence:
                    lex.people.remove(ref)
                    lex.soft_people.append(ref.name)
        m = _ANIME.search(text)
        if m and not lang.overlaps(m.span(), claims):
            claims.append(m.span())
            if _negated(text, m.start(), m.end()):
                lex.exclude_genres += ["Animation"] if "Animation" not in lex.exclude_genres else []
            else:
                if "Animation" not in lex.genres:
                    lex.genres.append("Animation")
                lex.origins.append("JP")
        for h in lang.find_terms(text, lang.TONE_TERMS):
            if lang.overlaps((h.start, h.end), claims):
                continue
            claims.append((h.start, h.end))
            if h.key not in lex.tones:
                lex.tones.append(h.key)
        if "light" in lex.tones and "dark" in lex.tones:
            lex.tones.remove("dark")  # "not too dark" / "less dark" reads both; the wish is for lighter
        for h in lang.find_terms(text, lang.THEME_TERMS):
            if lang.overlaps((h.start, h.end), claims):
                continue
            claims.append((h.start, h.end))
            target = lex.exclude_themes if (h.start, h.end) in negated else lex.themes
            if h.key not in target:
                target.append(h.key)
        for h in lang.find_terms(text, lang.COUNTRY_TERMS):
            if lang.overlaps((h.start, h.end), claims) or not _about_films(text, h):
                continue
            claims.append((h.start, h.end))
            target = lex.exclude_origins if (h.start, h.end) in negated else lex.origins
            if h.key not in target:
                target.append(h.key)
        period = parse_period(text, self.max_year)
        masked = text
        for _ in range(3):  # "90년대 말고 2000년대로": a period ruled out gives way to the next one named
            if period.span is None or not _negated(masked, *period.span):
                break
            lex.notes.append(f"period {period.label!r} ruled out")
            a, b = period.span
            masked = masked[:a] + " " * (b - a) + masked[b:]
            period = parse_period(masked, self.max_year)
        if period.span is not None and not lang.overlaps(period.span, claims):
            claims.append(period.span)
            lex.period = period
        for m in lang.ORDINAL_PHRASE.finditer(text):
            idx = ordinal_index(m.group(0))
            if idx is not None and not lang.overlaps(m.span(), claims):
                lex.ordinals.append((m.start(), m.end(), idx))
                claims.append(m.span())
        for m in lang.DEMONSTRATIVE.finditer(text):
            if not lang.overlaps(m.span(), claims):
                lex.demonstratives.append(m.span())
                claims.append(m.span())
        for w in lang.find_terms(text, [lang.Term("book", lang.DOMAIN_BOOK_WORDS),
                                        lang.Term("movie", lang.DOMAIN_MOVIE_WORDS)]):
            claims.append((w.start, w.end))
        return lex

    def _older_than_cards(self, text: str, lex: _Lexicon, session: Session) -> None:
        """ "An older one" with cards on screen: films before the middle of the cards' years. Without cards it says
        no year, and "older movies" stays the classics `parse_period` reads."""
        m = _OLDER.search(text)
        own = lex.period.span is not None and lang.overlaps(lex.period.span, [m.span()]) if m else False
        if m is None or lang.overlaps(m.span(), [c for c in lex.claims if c != lex.period.span]):
            return
        years = sorted(y for y in (getattr(self._item(i), "year", None) for i in session.last_cards) if y)
        if not years or (lex.period.label and not own):
            return  # "older than 2000" / "90s" said its own years
        # Noticeably older than the typical card: a year older is no answer to "something older".
        pivot = years[len(years) // 2] - OLDER_BY
        lex.period = Period(None, pivot - 1, f"{pivot}년 이전" if lang.has_hangul(text) else f"before {pivot}",
                            m.span())
        lex.notes.append(f"{m.group(0).strip()!r}: older than the cards on screen (before {pivot})")

    def _title_cued_person(self, text: str, h) -> bool:
        """ "I loved Ed Wood": a name that is also a catalog title, right after a title cue, is the film."""
        if self.resolver is None or not self.resolver.exact_rows(title_key(h.text)):
            return False
        return bool(rx.search(r"\b(?:loved|liked|enjoyed|watched|saw|seen|like|love)\s+$", text[:h.start], rx.I))

    def _polarity(self, text: str, start: int, end: int, spans: Sequence[tuple[int, int]] = ()) -> str:
        """like / dislike / seen / unseen / exclude / details / neutral for the item named at [start, end), from the
        cue words of its own clause. A list shares one verdict: "I loved Alien, Aliens and Predator" (the cue before
        the first member), "매트릭스랑 터미네이터 2 둘 다 좋아해요" (the verdict after the last one)."""
        cs, ce = lang.clause_bounds(text, start)
        ordered = sorted(spans)
        first, last = start, end
        while True:  # walk back over list members
            prev = [(s, e) for s, e in ordered if e <= first and s >= cs and _LIST_SEP.fullmatch(text[e:first])]
            if not prev:
                break
            first = prev[-1][0]
        while True:  # and forward
            nxt = [(s, e) for s, e in ordered if s >= last and e <= ce and _LIST_SEP.fullmatch(text[last:s])]
            if not nxt:
                break
            last = nxt[0][1]
        before = text[cs:first]
        after = text[last:ce]
        for pol in ("unseen", "dislike", "exclude", "seen", "details", "like"):
            if lang.CUES_BEFORE_EN[pol].search(before):
                after_pol = next((p for p, cue in lang.CUES_AFTER_EN.items() if cue.match(after)), None)
                if pol == "seen" and after_pol in ("like", "dislike"):
                    return after_pol  # "I saw X, it was great"
                if pol == "details" and not rx.search(r"\?|about|누구|뭐", after + before, rx.I):
                    continue
                return pol
        for pol, cue in lang.CUES_AFTER_EN.items():
            if cue.match(after):
                return pol
        for pol, cue in lang.CUES_AFTER_KO.items():
            if cue.match(after):
                return pol
        if lang.has_hangul(after):
            # Korean gives the verdict at the end of the clause, often after a reason ("…는 너무 잔인해서 별로였어").
            m = _KO_VERDICT.search(after[:40])
            if m:
                return next(k for k, v in m.groupdict().items() if v)
        return "neutral"

    def _fit_standing(self, liked: Sequence[str], session: Session) -> bool:
        """Are the liked films themselves of the standing wish's genres (all of `genres`, one of `genres_any`)?"""
        st = session.state or {}
        need, any_of = set(st.get("genres") or ()), set(st.get("genres_any") or ())
        if not (need or any_of):
            return False
        items = [self._item(i) for i in liked]
        return all(it is not None and need <= set(it.genres) and (not any_of or any_of & set(it.genres))
                   for it in items)

    @staticmethod
    def _verdict(text: str) -> str | None:
        """like / dislike / seen said of an item without naming it ("I've seen that one", "그건 별로였어")."""
        m = _KO_VERDICT.search(text)
        if m:
            kind = next(k for k, v in m.groupdict().items() if v)
            return None if kind == "unseen" else kind
        m = rx.search(r"\b(?:(?P<seen>seen|saw|watched)|(?P<like>loved|liked|enjoyed)|(?P<dislike>hated|disliked))\b",
                      text, rx.I)
        if m is None or rx.search(r"\b(?:not|never|n't|haven'?t|didn'?t|hasn'?t)\s+(?:\w+\s+)?$",
                                  text[:m.start()], rx.I):
            return None  # "I haven't seen that": nothing to mark
        return next(k for k, v in m.groupdict().items() if v)

    def _franchise_pick(self, item_id: str, typed: str) -> list[str]:
        """ "The Lord of the Rings" names the 1978 cartoon exactly, but people mean the trilogy: when the films whose
        titles go on from the typed name are each far better known (4x the users), they are what was meant."""
        it = self._item(item_id)
        if it is None or it.domain != "movie" or not self.popularity or rx.search(r"\(\s*(?:18|19|20)\d\d\s*\)", typed):
            return [item_id]
        key = title_key(it.title)
        own = self.popularity.get(item_id, 0.0)
        better = [i for k, i in self._series_keys.starting(key + " ")
                  if self.popularity.get(i, 0.0) >= max(20.0, 4 * own)]
        return better[:4] or [item_id]

    def alternatives_for(self, typed: str) -> list[str]:
        """Catalog films of the series a missing title belongs to ("Avengers: Endgame (2019)" → the Avengers films
        the catalog has), best known first: anchors for honest alternatives, never likes."""
        name = rx.sub(r"\(\s*(?:18|19|20)\d\d\s*\)", "", typed)
        base = title_key(rx.split(r"\s*[:\-–]\s*|\s+(?:part|chapter|episode)\b|\s+\d+\b", name)[0])
        if len(base) < 4:
            return []
        ids = [i for _, i in self._series_keys.series(base)]
        pop = self.popularity or {}
        return sorted(ids, key=lambda i: -pop.get(i, 0.0))[:3]

    def _series_refs(self, refs: list[ItemRef]) -> list[ItemRef]:
        """ "스타워즈 시리즈는 다 봤어": every film of the series is seen; "not the Avengers series": all left out."""
        out = []
        have = {(r.item_id, r.polarity) for r in refs}
        for r in list(refs):
            if r.polarity not in ("seen", "exclude", "dislike"):
                continue
            # "해리포터 말고" / "not Harry Potter": a franchise's name (not one film's full title) leaves out all of it.
            franchise = r.polarity == "exclude" and not r.series and self._names_franchise(r)
            if not r.series and not franchise:
                continue
            pol = "seen" if r.polarity == "seen" else "exclude"
            for i in (self.franchise_of(r.item_id) if franchise else self.series_of(r.item_id)):
                if (i, pol) not in have:
                    out.append(ItemRef(item_id=i, polarity=pol, via="title", text=r.text, series=True))
                    have.add((i, pol))
        return out

    def _one_series(self, typed: str, options: Sequence[str]) -> bool:
        """Do all offered titles continue what the user typed ("Harry Potter" → "Harry Potter and the …")?"""
        key = title_key(typed)
        titles = [self._item(i) for i in options]
        return len(key) >= 4 and bool(titles) and all(it is not None and title_key(it.title).startswith(key)
                                                      for it in titles)

    def _cued_unknown(self, text: str, taken: Sequence[tuple[int, int]]):
        """A name the user treats as a title that nothing matched: "나의 아저씨 같은 잔잔한 거", "something like
        Zzyzx Blorp". Returned as an unresolved mention (with the resolver's guesses) so the reply can say so."""
        from retrieval.title_resolver import Mention

        if self.resolver is None:
            return None
        span = None
        m = _CUED_EN.search(text)
        if m:
            span = (m.start(1), m.start(1) + len(m.group(1).rstrip(" ,.!?")))
        else:
            k = _ko_cued_span(text)
            if k:
                s, e = k
                toks = [t for t in lang.tokens(text) if s <= t.start and t.end <= e]
                named = any(t.tag in ("NNP", "SL") for t in toks) or any(t.tag == "JKG" for t in toks)
                nouns = [t for t in toks if t.tag.startswith(("NN", "SL")) and t.form not in lang.KO_STOP_NOUNS]
                if named and nouns:
                    span = (s, e)
        if span is None or span[1] - span[0] < 2 or lang.overlaps(span, taken):
            return None
        name = text[span[0]:span[1]].strip()
        return Mention(name, self.resolver.resolve(name, k=3), span[0], span[1], evidence="cued, unresolved")

    def _dominant(self, options: Sequence[str]) -> str | None:
        """Among same-named films, the one almost everybody means ("Titanic" → 1997): rated by at least 4x as many
        users as the next one. Otherwise None: ask which."""
        if not self.popularity or len(options) < 2:
            return None
        counts = sorted(((self.popularity.get(i, 0.0), i) for i in options), reverse=True)
        (top, iid), (second, _) = counts[0], counts[1]
        return iid if top >= 20 and top >= 4 * max(second, 1.0) else None

    def _referred_back(self, text: str, lex: _Lexicon, placed: list[tuple[int, ItemRef]]) -> list[ItemRef]:
        """ "I have seen The Notebook though, and loved it" / "not The Godfather, i've seen it already": "it" after
        a title in the same message is that title, with the verdict of its own clause."""
        out = []
        for s, e in lex.demonstratives:
            before = [(end, r) for end, r in placed if end <= s]
            if not before:
                continue
            target = before[-1][1]
            pol = self._polarity(text, s, e)
            if pol == "exclude":
                out.append(ItemRef(item_id=target.item_id, polarity="exclude", via="focus", text=target.text,
                                   series=target.series))
            elif pol in ("like", "dislike", "seen", "unseen") and pol != target.polarity:
                if target.polarity in ("neutral", "seen") and pol in ("like", "dislike"):
                    target.polarity = pol  # "I have seen X, and loved it": a like (the seen part is implied)
                    if pol == "like":
                        out.append(ItemRef(item_id=target.item_id, polarity="seen", via="focus", text=target.text))
                else:
                    out.append(ItemRef(item_id=target.item_id, polarity=pol, via="focus", text=target.text))
        return out

    def _newer_one(self, text: str, refs: list[ItemRef], session: Session) -> list[ItemRef]:
        """ "Blade Runner … is the new one any good?": the newest film of the series of the title just named."""
        m = _NEWER_ONE.search(text)
        if not m:
            return []
        base = next((r.item_id for r in refs if r.via == "title"), None) or session.focus
        it = self._item(base) if base else None
        if it is None or it.year is None:
            return []
        later = [(self._item(i).year or 0, i) for i in self.series_of(base) if (self._item(i).year or 0) > it.year]
        if not later:
            return []
        newest = max(later)[1]
        pol = self._polarity(text, m.start(), m.end())
        return [ItemRef(item_id=newest, polarity="details" if pol == "neutral" else pol, via="focus",
                        text=sanitize_fragment(m.group(0)))]

    def _card_refs(self, text: str, lex: _Lexicon, session: Session, refs: list[ItemRef]) -> list[ItemRef]:
        """ "the second one" → the card at that position; "it" / "그거" → the item in focus (only when the turn is
        about an item: a question, a comparison, a like or dislike)."""
        out: list[ItemRef] = []
        have = {r.item_id for r in refs}
        cards = list(session.last_cards)
        rng = lang.ORDINAL_RANGE.search(text)
        if rng and cards:
            word = next((g for g in rng.groups() if g), "")
            # "the first two" → 2; "all of them" / "다 봤어" → every card; "both of them" / "둘 다" → 2
            count = {"two": 2, "three": 3, "2": 2, "3": 3, "두": 2, "세": 3}.get(word.lower()) or (
                len(cards) if word else 2)
            verb = rng.re.groupindex["verb"]  # "다 봤어": the verb is the verdict, read by the polarity
            end = rng.start(verb) if rng.group(verb) else rng.end()
            pol = self._polarity(text, rng.start(), end)
            for iid in cards[:count]:
                if iid not in have:
                    out.append(ItemRef(item_id=iid, polarity=pol, via="ordinal", text=rng.group(0)))
                    have.add(iid)
        for s, e, idx in lex.ordinals:
            if cards and -len(cards) <= idx < len(cards):
                iid = cards[idx]
                if iid not in have:
                    pol = self._polarity(text, s, e)
                    out.append(ItemRef(item_id=iid, polarity=pol, via="ordinal", text=text[s:e]))
                    have.add(iid)
        if not out and not refs and lex.demonstratives:
            focus = session.focus or (cards[0] if len(cards) == 1 else None)
            if focus and self._in_catalog(focus):
                s, e = lex.demonstratives[0]
                pol = self._polarity(text, s, e)
                item_talk = pol != "neutral" or any(rx.search(text) for rx in _QUESTION.values())
                if item_talk:
                    out.append(ItemRef(item_id=focus, polarity=pol, via="focus", text=text[s:e]))
        return out

    def _domain(self, text: str, session: Session, ui_domain: str | None) -> tuple[str, bool]:
        """The domain this turn asks for, and whether the turn chose it (else the session's stays)."""
        current = (session.state or {}).get("domain", session.domain or "movie")
        wants_books = bool(_RX["books"].search(text)) and not _RX["not_request_book"].search(text)
        wants_movies = bool(rx.search(r"\b(?:movies?|films?|flicks?)\b|영화", text, rx.I))
        if wants_books and self.books_catalog is not None and not (wants_movies and rx.search(
                r"\b(?:movies?|films?)\s+(?:like|for|based)\b|영화\s*(?:같은|처럼)", text, rx.I) and not rx.search(
                r"\bbooks?\s+(?:like|for|about)|책\s*추천|소설\s*추천|(?:같은|처럼)\s*(?:책|소설)", text, rx.I)):
            return "book", True
        if wants_books and self.books_catalog is None:
            return "book", True  # the engine says books are not loaded
        if ui_domain in ("movie", "book") and ui_domain != current:
            return ui_domain, True
        if wants_movies and current == "book" and not wants_books:
            return "movie", True
        return (ui_domain or current), False

    def _intent(self, req: Request, text: str, session: Session, lex: _Lexicon, ambiguous) -> Request:
        refs = req.refs
        notes = req.notes
        item_refs = [r for r in refs if r.polarity != "exclude"]
        question = next((q.split("-")[0] for q, p in _QUESTION.items() if p.search(text)), None)

        # Exclusions are part of the wish: the item and, for a series, its siblings.
        for r in refs:
            if r.polarity == "exclude":
                for i in [r.item_id] + self.series_of(r.item_id):
                    if i not in req.wish.exclude_ids:
                        req.wish.exclude_ids.append(i)

        if _RX["predict"].search(text) and item_refs:
            req.intent = "predict"
            req.refs = [ItemRef(**{**item_refs[0].model_dump(), "polarity": "details"})]
            return req
        if _RX["compare"].search(text) and len(item_refs) >= 2:
            req.intent = "compare"
            req.refs = [ItemRef(**{**r.model_dump(), "polarity": "compare"}) for r in item_refs[:2]]
            return req
        if question in ("director", "cast", "plot", "year", "runtime", "genre") and item_refs and not (
                question == "plot" and rx.search(r"\b(?:something|movies?|films?)\b.*\babout\b", text, rx.I)):
            target = next((r for r in item_refs if r.polarity in ("details", "neutral")), item_refs[0])
            req.intent = "details"
            req.question = question
            req.refs = [ItemRef(**{**target.model_dump(), "polarity": "details"})] + [
                r for r in refs if r is not target and r.polarity in ("like", "dislike", "seen")]
            return req
        if question in ("director", "cast", "year", "runtime", "genre") and not item_refs and not lex.has_wish:
            # "감독이 누구야?" right after a details answer: about the item in focus; with none, ask for the title.
            req.intent = "details"
            req.question = question
            req.refs = [ItemRef(item_id=session.focus, polarity="details", via="focus")] if session.focus else []
            return req
        if question == "similar" and not item_refs and not lex.has_wish and not lex.ordinals:
            if session.focus:
                # "recommend something similar" after a details answer: the item in focus is the anchor.
                req.refs = [ItemRef(item_id=session.focus, polarity="like", via="focus")]
                item_refs = req.refs
                notes.append(f"'similar' refers to the item in focus {session.focus}")
            elif session.state:
                req.page = True  # "more like these": the same request, the next picks
                return req

        for r in item_refs:
            if r.polarity in ("neutral", "details") and (_RX["recommend"].search(text) or question == "similar"
                                                         or r.via == "ordinal"):
                r.polarity = "like"  # "Inception, please" / "more like the second one": the item anchors the request
                req.assumed.append(r.item_id)
        likes = [r.item_id for r in item_refs if r.polarity == "like"]
        req.wish.anchors = likes + [a for a in req.wish.anchors if a not in likes]

        if ambiguous and not likes and req.wish.domain == "book":
            m, pol = ambiguous[0]
            opts = [x.item_id for x in m.resolution.matches if self._in_catalog(x.item_id)]
            if pol in ("like", "neutral") and self._one_series(m.text, opts):
                # "Harry Potter 같은 판타지 소설": for books every film of the series is the same evidence.
                req.refs.append(ItemRef(item_id=opts[0], polarity="like", text=sanitize_fragment(m.text)))
                likes = [opts[0]]
                req.wish.anchors = likes + req.wish.anchors
                ambiguous = []
        if ambiguous and not likes:
            m, pol = ambiguous[0]
            opts = [x.item_id for x in m.resolution.matches if self._in_catalog(x.item_id)][:3]
            if opts:
                pending = req.model_copy(deep=True)
                req.clarify = Clarification(text=sanitize_fragment(m.text), options=opts,
                                            polarity=pol if pol != "neutral" else "like", domain=req.wish.domain,
                                            request=pending.model_dump())
                req.intent = "recommend"
                return req
        feedback_only = bool(item_refs) and not likes and all(
            r.polarity in ("dislike", "seen", "unseen", "neutral") for r in item_refs)
        # Words around a verdict are its reasons ("너무 잔인해서 별로였어"), not a new wish.
        wish_words = lex.has_wish or bool(req.wish.exclude_ids)
        if _RX["new_topic"].search(text):
            req.new_topic = True
        if feedback_only and not wish_words and not _RX["page"].search(text):
            req.intent = "feedback"
            return req
        if likes and not _RX["refine"].search(text) and not req.new_topic and not lex.has_wish and question is None \
                and _standing_wish(session) and (not _RX["recommend"].search(text) or self._fit_standing(likes, session)):
            # "I saw Avengers, that was great" after "I like action movies": a taste told along the way, not a new
            # request; the action wish stands, with the film as its anchor. "Movies like Taken" after "action
            # movies" keeps it too (Taken is one); "something like The Notebook" after "a horror movie" starts over.
            req.refine = True
        elif likes and not _RX["refine"].search(text):
            req.new_topic = True
        elif lex.has_wish and not likes and session.state and _RX["refine"].search(text) and not req.new_topic:
            req.refine = True
        elif lex.has_wish and not likes and session.state and not _RX["recommend"].search(text) and not req.new_topic:
            req.refine = True  # "애니메이션이면 더 좋아", "from the 90s": a bare wish refines what came before
        elif lex.has_wish and not likes:
            req.new_topic = True
        if req.refine and _REPLACE.search(text):
            req.replace = True
        if not lex.has_wish and not likes and not req.wish.exclude_ids and not req.missing and not req.unknown:
            if _RX["page"].search(text) or (rx.search(r"\b(?:more|another|others|else)\b|다른|또|더", text, rx.I)
                                             and _RX["recommend"].search(text)):
                req.page = True
                return req
            if _RX["help"].search(text):
                req.intent = "greeting"  # "what can you do?" / "너 뭐야?": say what the assistant is for
                return req
            if lex.demonstratives and len(session.last_cards) > 1 and self._verdict(text) is not None:
                # "그건 봤어" / "I've seen that one" with five cards and none in focus: ask which, never guess.
                req.intent = "chitchat"
                req.which_card = True
                return req
            if req.wish.soft_people and not _RX["recommend"].search(text):
                # "the 1997 one with DiCaprio": talk about a film (which one was meant).
                req.intent = "chitchat"
            # Otherwise nothing concrete was found: the dialogue-act model decides what the line is (_with_act).
        return req

    # -- the conversation policy: what to do with a line the rules found nothing concrete in ---------------------
    def _with_act(self, req: Request, text: str, session: Session, lex: _Lexicon) -> Request:
        """The rules read titles, verdicts and wishes; the dialogue-act model says what a line asks for when the
        rules found nothing concrete in it. Once there are cards or a conversation, a line is refused as
        off-topic only when the model is sure of it and it says nothing about films; anything else keeps the
        cards and moves the dialogue on."""
        if req.intent in ("empty", "emoji", "injection", "answer") or req.clarify is not None:
            return req
        pred = self.acts.predict(text, act_context(session))
        req.act, req.act_sub = pred.act, pred.sub
        req.notes.append(f"act {pred.act}/{pred.sub} ({pred.confidence:.2f})")
        about_films = self._about_films(req, lex, text)
        if not about_films and pred.act == "off_topic" and pred.p("off_topic") >= OFF_TOPIC_SURE:
            # "내일 날씨 어때?" with a film in focus: no film is named and the model is sure, whatever the rules read.
            req.intent, req.refs, req.question, req.page = "off_topic", [], None, False
            return req
        if self._asks_about_assumed(req, pred, lex):
            return self._question_about(req, pred)
        if self._concrete(req, lex) or (req.intent == "recommend" and pred.act == "request"
                                        and lang.informative(req.wish.query)):
            if (req.intent in ("details", "predict") and pred.act == "request" and pred.p("request") >= ACT_OVERRULES
                    and req.question not in ("director", "cast", "year")):
                # "대부 같은 영화 알아?", "I'm not into demons. Any ideas…?": a request, not a question about the
                # film: a named film anchors it, the film in focus does not.
                req.intent, req.question = "recommend", None
                req.refs = [r.model_copy(update={"polarity": "like"}) for r in req.refs if r.via != "focus"]
                req.wish.anchors = list(dict.fromkeys([r.item_id for r in req.refs] + req.wish.anchors))
                req.new_topic = bool(req.refs)
                req.notes.append("a request in words outranks the question the rules read about a film")
            return req
        if pred.act == "feedback" and pred.sub == "correction" and self._correct(req, text, session, lex):
            return req
        return self._act_decides(req, pred, session, about_films)

    def _correct(self, req: Request, text: str, session: Session, lex: _Lexicon) -> bool:
        """A correction of an earlier verdict ("wait no, I meant I didn't like it", "아 잘못 말했어, 별로였어"): the
        verdict the line states replaces the one on the most recently named item that carries one."""
        marked = {**{i: "seen" for i in session.seen}, **{i: "like" for i in session.liked},
                  **{i: "dislike" for i in session.disliked}}
        target = next((i for i in reversed(session.mentioned) if i in marked), None)
        if target is None:
            return False
        spans = list(lex.demonstratives) or [(len(text), len(text)), (0, 0)]
        pol = next((p for p in (self._polarity(text, s, e) for s, e in spans)
                    if p in ("like", "dislike", "seen", "unseen")), None)
        if pol is None or pol == marked[target]:
            return False
        req.intent = "feedback"
        req.refs = [ItemRef(item_id=target, polarity=pol, via="focus")]
        req.notes.append(f"a correction: {target} is now {pol} (was {marked[target]})")
        return True

    @staticmethod
    def _asks_about_assumed(req: Request, pred: ActPrediction, lex: _Lexicon) -> bool:
        """A line the model is sure asks a question, whose only likes the rules assumed from naming items and
        which states no wish: the items are what the question is about ("is the third one long?", "Alien or
        Aliens, which one is scarier?", "세번째 거 무서워요?"), not a taste."""
        return (req.intent == "recommend" and bool(req.assumed) and pred.act == "question"
                and pred.p("question") >= ACT_OVERRULES and set(req.liked) <= set(req.assumed)
                and not lex.has_wish and not req.wish.exclude_ids and not req.page)

    @staticmethod
    def _question_about(req: Request, pred: ActPrediction) -> Request:
        items = [r for r in req.refs if r.item_id in req.assumed]
        compare = len(items) >= 2
        req.intent = "compare" if compare else "details"
        req.question = None if compare else _ACT_QUESTION.get(pred.sub)
        req.refs = [r.model_copy(update={"polarity": "compare" if compare else "details"}) for r in items[:2]]
        req.wish.anchors = [a for a in req.wish.anchors if a not in req.assumed]
        req.new_topic = req.refine = False
        req.assumed = []
        req.notes.append("a question about the items named, not a taste: no like")
        return req

    @staticmethod
    def _concrete(req: Request, lex: _Lexicon) -> bool:
        """Did the rules find something to act on: a question or verdict on an item, or a wish?"""
        if req.intent in ("details", "compare", "predict", "feedback", "greeting") or req.which_card:
            return True
        if req.intent == "chitchat":
            return bool(req.wish.soft_people)
        # Free words alone ("Hello, how are you?") are no evidence: the act model says whether they ask for films.
        return req.intent == "recommend" and bool(req.refs or req.wish.has_any or req.missing or req.unknown
                                                  or req.page or req.domain_set)

    @staticmethod
    def _about_films(req: Request, lex: _Lexicon, text: str) -> bool:
        """Does the line itself name or describe films (a title, a wish, a film or book word)? The film in focus,
        which "it" may mean, does not count: "is it raining?" names none."""
        named = [r for r in req.refs if r.via != "focus"]
        return bool(named or req.missing or req.unknown or lex.has_wish or lex.ordinals
                    or _RX["movies"].search(text) or _RX["books"].search(text))

    def _act_decides(self, req: Request, pred: ActPrediction, session: Session, about_films: bool) -> Request:
        cards = list(session.last_cards)
        in_domain = bool(cards or session.state or any(t.role == "user" for t in session.history))
        act = pred.act
        if act == "off_topic" and (about_films or pred.p("off_topic") < OFF_TOPIC_SURE):
            act = "unsure"  # not sure enough to refuse, or the line talks about films
        if act == "request":
            req.intent = "recommend"
            req.page = bool(cards) and bool(session.state) and pred.sub in ("more", "refine")
            req.notes.append("the act model reads a request" + (": the next picks" if req.page else ""))
        elif act == "feedback" and pred.sub in ("interested", "correction", "unseen"):
            req.intent = "chitchat"  # "좋아요, 그거 봐볼게요", "I haven't seen that": nothing to mark, keep the cards
        elif act in ("question", "feedback"):
            focus = session.focus or (cards[0] if len(cards) == 1 else None)
            if focus is None:
                req.intent, req.which_card = "chitchat", bool(cards)
                req.unsure = not cards
            elif act == "question":
                req.intent = "details"
                req.question = _ACT_QUESTION.get(pred.sub)
                req.refs = [ItemRef(item_id=focus, polarity="details", via="focus")]
            else:
                req.intent = "feedback"
                req.refs = [ItemRef(item_id=focus, polarity=pred.sub, via="focus")]
        elif act == "greeting":
            req.intent = "chitchat" if cards else "greeting"
        elif act in ("answer", "chitchat"):
            req.intent = "chitchat"
        elif act == "off_topic":
            req.intent = "off_topic"
        else:  # unsure
            req.intent = "chitchat" if in_domain else "greeting"
            req.unsure = in_domain
        return req

    def series_of(self, item_id: str) -> list[str]:
        """Other films of the same series: titles that start with this one's main title ("The Avengers" →
        "Avengers: Age of Ultron", "Avengers: Infinity War")."""
        it = self._item(item_id)
        if it is None or it.domain != "movie":
            return []
        base = rx.split(r"\s*[:\-–(]|\s+(?:part|chapter|episode)\b|\s+\d+\b", title_key(it.title))[0].strip()
        if len(base) < 4:
            return []
        return [i for _, i in self._series_keys.series(base) if i != item_id]

    def _names_franchise(self, ref: ItemRef) -> bool:
        """Did the user write less than the film's own title (so they named its franchise, if it has one)?"""
        it = self._item(ref.item_id)
        def compact(t: str) -> str:
            return "".join(title_key(t).split())  # the fragment lost its apostrophes ("Sorcerers" = "Sorcerer's")

        return it is not None and bool(ref.text) and compact(ref.text) != compact(it.title)

    def franchise_of(self, item_id: str) -> list[str]:
        """The series, plus films whose titles open with the same name of two or more words ("Harry Potter and the
        Sorcerer's Stone" → every "Harry Potter and the …"; "The Dark Knight" → "The Dark Knight Rises"); a shared
        opening that ends in a function word is cut back ("Night of the …" names no franchise)."""
        it = self._item(item_id)
        if it is None or it.domain != "movie":
            return []
        out = dict.fromkeys(self.series_of(item_id))
        words = title_key(it.title).split()
        # Two shared opening words at least: only titles that start with the first two can qualify.
        for key, i in (self._series_keys.starting(" ".join(words[:2])) if len(words) >= 2 else ()):
            if i == item_id or i in out:
                continue
            other = key.split()
            n = 0
            while n < min(len(words), len(other)) and words[n] == other[n]:
                n += 1
            while n and words[n - 1] in _FUNCTION_WORDS:
                n -= 1
            if n >= 2 and len(" ".join(words[:n])) >= 9:
                out[i] = None
        return list(out)

    def _answer(self, text: str, lng: str, session: Session) -> Request | None:
        """The user answers our question: a number, an ordinal, a year, or one of the offered titles."""
        pending = session.pending
        opts = pending.options
        idx = ordinal_index(text)
        if idx is None or not -len(opts) <= idx < len(opts):
            by_year = self._by_year(opts, text)
            idx = opts.index(by_year) if by_year else None
        if idx is None:
            by_words = self._by_description(opts, text)
            idx = opts.index(by_words) if by_words else None
        if idx is None and self.resolver is not None:
            for m in self.resolver.find_mentions(text):
                hit = [x.item_id for x in m.resolution.matches if x.item_id in opts]
                if hit:
                    idx = opts.index(hit[0])
                    break
        if idx is None or not -len(opts) <= idx < len(opts):
            return None
        chosen = opts[idx]
        try:
            base = Request.model_validate(pending.request) if pending.request else Request(intent="recommend")
        except ValueError:  # a saved session with a request this version cannot read: answer the question alone
            base = Request(intent="recommend")
        base.language = lng
        base.clarify = None
        pol = pending.polarity if pending.polarity != "neutral" else "like"
        base.refs = [r for r in base.refs if r.item_id != chosen] + [ItemRef(item_id=chosen, polarity=pol,
                                                                             via="option", text=pending.text)]
        if pol == "like":
            base.wish.anchors = list(dict.fromkeys(base.wish.anchors + [chosen]))
            base.new_topic = True
            base.intent = "recommend"
        elif pol == "details":
            base.intent = "details"
        elif pol in ("dislike", "seen", "unseen"):
            base.intent = "feedback"
        base.notes.append(f"answer to 'which {pending.text}?': {chosen}")
        return base

    def _by_description(self, options: Sequence[str], text: str) -> str | None:
        """The one option that fits best what the answer says of it: a year by its last two digits ("98년도꺼",
        "the '98 one"), its genres, countries and period as the lexicons read them, and the words of its
        description ("the korean monster one"). None when nothing fits or two options fit as well."""
        if len(text.split()) > MAX_ANSWER_WORDS or _RX["recommend"].search(text):
            return None  # a line that asks for something else is no description of an option
        lex = self._lexicon(text)
        short = {int(m.group(1)) for m in rx.finditer(r"(?:^|[^\d])'?(\d{2})(?:[^\d]|$)", text)}
        words = set(self._words(text))
        years = sorted((it.year, i) for i in options if (it := self._item(i)) is not None and it.year)
        by_age = {}
        if years and _ANSWER_NEWER.search(text):
            by_age[years[-1][1]] = 1.5
        elif years and _ANSWER_OLDER.search(text):
            by_age[years[0][1]] = 1.5
        scores = []
        for i in options:
            it = self._item(i)
            if it is None:
                scores.append(0.0)
                continue
            score = 2.0 * (it.year is not None and it.year % 100 in short) + by_age.get(i, 0.0)
            score += len(set(lex.genres + lex.genres_any) & set(it.genres))
            score += len(set(lex.origins) & set(it.countries))
            p = lex.period
            score += bool(p.label and it.year and (p.year_from or 0) <= it.year <= (p.year_to or 9999))
            score += 0.5 * len(words & set(self._words(lexical_text(it))))
            scores.append(score)
        best = max(scores, default=0.0)
        if best <= 0 or scores.count(best) > 1:
            return None
        return options[scores.index(best)]

    @functools.cached_property
    def _stemmer(self):
        import Stemmer

        return Stemmer.Stemmer("english")

    def _words(self, text: str) -> list[str]:
        """Stemmed English content words (the options' documents are English)."""
        return self._stemmer.stemWords([w for w in rx.findall(r"[a-z]{3,}", text.lower()) if w not in _ANSWER_STOP])

    def _by_year(self, options: Sequence[str], text: str) -> str | None:
        """The one option released in a year written in the text, or None when none or several fit."""
        years = set(years_in(text))
        if not years:
            return None
        hits = [i for i in options if (it := self._item(i)) is not None and it.year in years]
        return hits[0] if len(hits) == 1 else None

    @staticmethod
    def _query_text(text: str, spans: Sequence[tuple[int, int]]) -> str:
        out = []
        last = 0
        for s, e in sorted(spans):
            if s > last:
                out.append(text[last:s])
            last = max(last, e)
        out.append(text[last:])
        return rx.sub(r"\s+", " ", " ".join(out)).strip()[:300]

    # -- LLM -------------------------------------------------------------------------------------------------------
    def _llm_worth_asking(self, req: Request, message: str, llm: LLM | None) -> bool:
        if llm is None or not llm.enabled:
            return False
        if req.intent in ("empty", "emoji", "injection", "answer") or req.clarify is not None:
            return False
        # The rules are sure about these; an LLM call would only add seconds.
        if req.intent in ("details", "compare", "predict") or req.page:
            return False
        return len(message.split()) >= 3 or (lang.has_hangul(message) and len(message) >= 6)

    def _with_llm(self, message: str, session: Session, rules: Request, llm: LLM) -> Request:
        hist = [f"{t.role}: {t.text[:160]}" for t in session.recent_dialogue(4)]
        cards = [self._item(i).label for i in session.last_cards if self._item(i) is not None]
        out = llm.structured(prompts.understand_messages(message, hist, cards), request_schema(), _LLMRequest,
                                  max_tokens=220)
        return merge_llm(rules, out, self, session, message)


def _standing_wish(session: Session) -> bool:
    """Does the dialogue state ask for a kind of film (genres, people, period, themes, origin), not only titles?"""
    st = session.state or {}
    return any(st.get(k) for k in ("genres", "genres_any", "people", "year_from", "year_to", "themes", "origins"))


# The refusal ("I can only help with movies and books") needs the act model this sure, and a line with no film
# words, titles or wishes in it; from this probability a request in words outranks a question the rules read.
MAX_ANSWER_WORDS = 8  # a description of one option ("the korean monster one") is short
# Words of an answer that describe no option: function words and the words of the question itself.
_ANSWER_STOP = frozenset(STOPWORDS_EN) | {"one", "movie", "film", "version", "the", "that", "mean", "meant", "original",
                                         "new", "old", "older", "newer"}
_ANSWER_NEWER = rx.compile(r"\b(?:new|newer|newest|recent|latest|remake)\b|최신|최근|요즘|리메이크|새로\s*나온", rx.I)
_ANSWER_OLDER = rx.compile(r"\b(?:old|older|oldest|original|classic)\b|옛날|예전|원작|오리지널|고전", rx.I)
OFF_TOPIC_SURE = 0.85
ACT_OVERRULES = 0.8
_ACT_QUESTION = {"people": "cast", "year": "year", "plot": "plot", "runtime": "runtime"}


def act_context(session: Session) -> ActContext:
    """What the app knows of the dialogue when a line arrives, in the terms the act model was trained on."""
    last = next((t.text for t in reversed(session.history) if t.role == "assistant"), "")
    return ActContext(first_turn=not any(t.role == "user" for t in session.history),
                      cards_on_screen=bool(session.last_cards),
                      asked=session.pending is not None or last.rstrip().endswith(("?", "？")))


def rules_unsure(req: Request) -> bool:
    """The rules' reading leaves something the LLM could settle: title-like words they could not place, or a
    recommendation request in which they found no title, no wish and no searchable words."""
    if req.unknown:
        return True
    if req.intent != "recommend" or req.refs or req.missing or req.page:
        return False
    return not (req.wish.has_any or lang.informative(req.wish.query))


def merge_llm(rules: Request, out: _LLMRequest, und: Understander, session: Session, message: str = "") -> Request:
    """The LLM's reading, grounded: titles through the resolver, cards by position; the rules fill the gaps."""
    req = rules.model_copy(deep=True)
    req.via = "llm"
    if out.intent in ("greeting", "off_topic", "chitchat") and not rules.refs and not rules.wish.has_any:
        req.intent = out.intent
        return req
    have = {r.item_id for r in req.refs}
    said = title_key(message)
    for t in out.titles:
        if und.resolver is None or not t.title.strip():
            continue
        if title_key(t.title) not in said:
            # Small models name titles from the prompt (the cards on screen) as if the user had: only what the
            # user actually wrote may become a like, a dislike or a seen mark.
            req.notes.append(f"LLM title {t.title!r} is not in the message: ignored")
            continue
        res = und.resolver.resolve(t.title)
        if res.status == "matched" and res.best is not None and und._in_catalog(res.best.item_id):
            iid = res.best.item_id
            if iid not in have:
                req.refs.append(ItemRef(item_id=iid, polarity=t.polarity, text=sanitize_fragment(t.title)))
                have.add(iid)
                req.notes.append(f"LLM title {t.title!r} → {iid} ({t.polarity})")
        else:
            req.notes.append(f"LLM title {t.title!r} not resolved: ignored")
    if 1 <= out.card <= len(session.last_cards) and session.last_cards[out.card - 1] not in have:
        req.refs.append(ItemRef(item_id=session.last_cards[out.card - 1], polarity="like", via="ordinal"))
    w = req.wish
    w.genres = list(dict.fromkeys(w.genres + [g for g in out.genres if g in GENRES and g not in w.exclude_genres]))
    w.exclude_genres = list(dict.fromkeys(w.exclude_genres + [g for g in out.exclude_genres if g in GENRES]))
    w.genres = [g for g in w.genres if g not in w.exclude_genres]
    w.tones = list(dict.fromkeys(w.tones + [t for t in out.tones if t in lang.TONE_BY_KEY]))
    if und.people is not None:
        for name in out.people:
            if name in und.people and name not in [p.name for p in w.people]:
                w.people.append(PersonRef(name=und.people._canon.get(name.lower(), name)))  # noqa: SLF001
    lo, hi = out.year_from, out.year_to
    if lo and hi and lo > hi:
        lo, hi = hi, lo
    if w.year_from is None and w.year_to is None and (lo or hi):
        w.year_from, w.year_to = lo, hi
        w.period_label = f"{lo or ''}–{hi or ''}"
    if not w.query and out.query:
        w.query = sanitize_fragment(out.query, 80)
    if out.domain in ("movie", "book") and out.domain != w.domain and not rules.domain_set:
        if out.domain == "movie" or und.books_catalog is not None:
            w.domain = out.domain
            req.domain_set = True
    if rules.intent == "off_topic" and (req.refs or w.has_any or out.intent == "recommend"):
        req.intent = "recommend"
    if out.follow_up and not req.new_topic and session.state:
        req.refine = True
    likes = [r.item_id for r in req.refs if r.polarity == "like"]
    w.anchors = list(dict.fromkeys(w.anchors + likes))
    for r in req.refs:
        if r.polarity == "exclude":
            for i in [r.item_id] + und.series_of(r.item_id):
                if i not in w.exclude_ids:
                    w.exclude_ids.append(i)
    return req


_CUE_WORDS = {
    "unseen": r"\b(?:haven'?t|have\s+not|never|not\s+yet)\s+(?:seen|watched)\b",
    "dislike": r"\b(?:hated?|disliked?|didn'?t\s+like|did\s+not\s+like|not\s+a\s+fan)\b",
    "exclude": r"\b(?:not|no|except|other\s+than|besides|without)\b",
    "seen": r"\b(?:seen|watched|saw)\b",
    "like": r"\b(?:loved?|liked?|enjoyed|adore|favou?rites?|fan\s+of)\b",
}


def _informative(query: str) -> bool:
    from .candidates_turn import informative

    return informative(query)
