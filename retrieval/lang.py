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

from . import rx

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


# Nouns that frame a request in chat ("…같은 영화 추천") and never are a title.
KO_STOP_NOUNS = frozenset(
    "영화 작품 추천 거 것 걸 게 좀 이거 그거 저거 이것 그것 느낌 장르 스릴러 코미디 공포 액션 드라마 애니 애니메이션 로맨스 "
    "멜로 감독 배우 시리즈 편 요즘 최근 오늘 주말 친구 사람 하나 뭐 무엇 이야기 내용 비슷 종류 분위기 정도 때 번 개 중 "
    "제일 가장 정말 진짜 너무 완전 다른 다음 처음 마지막 재미 감동 결말 스토리 주인공 장면 음악 연기 평점 리뷰 명작 "
    "걸작 수작 대작 신작 고전 sf 에스에프 가족 아이 아이들 어른 커플 연인 혼자 같이 함께 저 나 너 우리 제 내 한국 국내 "
    "외국 해외 일본 미국 중국 영국 프랑스 판타지 미스터리 추리 범죄 전쟁 서부 모험 뮤지컬 다큐 다큐멘터리 히어로 좀비 "
    "소설 책 도서 시간 여행 우주 감성 분위기 취향 장면 주제 소재 배경 시대 년대 이번 저번 아까 방금 상영 개봉 극장 대박 "
    "부탁 요청 질문 생각 기분 얘기 최애 인생 조합 정도 추천작 리스트 목록 둘 셋 모두 전부 제목".split()
)
# Alias names that are also everyday words: inside a message they count only with a comparison or list cue after
# them ("괴물 같은", "대부랑") or in quotes; resolve() on the bare word still maps them.
KO_COMMON_ALIASES = frozenset(
    "괴물 대부 도망자 업 빅 그리스 박쥐 아저씨 아가씨 이창 추격자 히트 스피드 마스크 트래픽 빈집 졸업 콘택트 세븐 "
    "스크림 크로우 스팅 네트 카지노 마더 오아시스 황해 사이코 장고 주노 데이브 도그마 그린 마일 레퀴엠 마녀 곡성 "
    "베테랑 암살 변호인 기생충 신세계 추격자 마약왕 범죄도시 극한직업 명량".split()
)
# Particles and endings right after a name that show it is used as a title (comparison, list, topic).
KO_TITLE_CUES = ("같", "처럼", "이랑", "랑", "하고", "과", "와", "보다", "비슷", "만큼", "류", "스타일")


# ------------------------------------------------------------------------------------------------ English words

# Function and chat words that are never a title on their own, whatever their frequency.
EN_STOP = frozenset(
    """a an the i me my we you your he she it its they them this that these those is are was were be been am do does
    did have has had will would can could should may might must want wants need like likes liked love loved loves
    enjoy enjoyed watch watched see saw seen movie movies film films show shows something anything nothing everything
    please thanks thank yes no not but and or so because if then than when where what which who why how whatever
    about with without from into over under up down out in on at by for of to as just really very too also still
    again ever never always maybe one ones ok okay sure cool great good nice awesome""".split()
)
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


def _lex(d: Mapping[str, Sequence[str]]) -> tuple[Term, ...]:
    return tuple(Term(k, tuple(v)) for k, v in d.items())


GENRES = ("Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
          "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")

GENRE_KO = {
    "Action": "액션", "Adventure": "모험", "Animation": "애니메이션", "Children": "가족", "Comedy": "코미디",
    "Crime": "범죄", "Documentary": "다큐멘터리", "Drama": "드라마", "Fantasy": "판타지", "Film-Noir": "누아르",
    "Horror": "공포", "IMAX": "IMAX", "Musical": "뮤지컬", "Mystery": "미스터리", "Romance": "로맨스",
    "Sci-Fi": "SF", "Thriller": "스릴러", "War": "전쟁", "Western": "서부",
}

# A word may stand for several genres at once ("rom-com" is Romance and Comedy): keys joined by "+".
GENRE_TERMS = _lex({
    "Action": ("action", "action-packed", "액션"),
    "Adventure": ("adventure", "adventures", "모험", "어드벤처"),
    "Animation": ("animation", "animated", "animations", "cartoon", "cartoons", "pixar", "애니메이션", "애니",
                  "만화영화", "만화", "픽사"),
    "Children": ("kids movie", "kids movies", "kids' movie", "kid movie", "children's movie", "children's movies",
                 "children's film", "for kids", "for children", "for my kids", "for my children", "for the kids",
                 "for my son", "for my daughter", "for a kid", "어린이", "아동", "키즈", "애들 영화", "아이들 영화",
                 "애들 볼", "아이들 볼", "애들이 볼", "아이가 볼"),
    "Comedy": ("comedy", "comedies", "funny", "funnier", "hilarious", "laugh", "laughs", "코미디", "코메디", "코믹",
               "웃긴", "웃기", "웃음", "개그"),
    "Crime": ("crime", "gangster", "gangsters", "mafia", "mob", "범죄", "갱스터", "마피아", "조폭", "누아르", "느와르"),
    "Documentary": ("documentary", "documentaries", "docu", "다큐", "다큐멘터리"),
    "Drama": ("drama", "dramas", "드라마"),
    "Fantasy": ("fantasy", "fantasies", "magic", "magical", "판타지", "마법"),
    "Film-Noir": ("noir", "film-noir", "film noir"),
    "Horror": ("horror", "horrors", "scary", "terrifying", "slasher", "creepy", "공포", "호러", "무서운", "무섭",
               "귀신", "오컬트"),
    "Musical": ("musical", "musicals", "뮤지컬"),
    "Mystery": ("mystery", "mysteries", "whodunit", "whodunnit", "detective", "미스터리", "미스테리", "추리", "탐정"),
    "Romance": ("romance", "romances", "romantic", "love story", "love stories", "로맨스", "로맨틱", "멜로", "연애",
                "사랑 이야기"),
    "Romance+Comedy": ("rom-com", "romcom", "rom com", "rom-coms", "romcoms", "rom coms", "rom. coms", "rom. com",
                       "chick flick", "chick flicks", "로코"),
    "Sci-Fi": ("sci-fi", "scifi", "sci fi", "science fiction", "science-fiction", "SF", "공상과학", "에스에프"),
    "Thriller": ("thriller", "thrillers", "suspense", "suspenseful", "스릴러", "서스펜스"),
    "War": ("war", "war movie", "war movies", "war film", "전쟁"),
    "Western": ("western", "westerns", "cowboy", "cowboys", "서부", "서부극", "카우보이"),
})


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

    @property
    def core_genres(self) -> tuple[str, ...]:
        return self.core or self.prefer


TONES = (
    Tone("light", ("lighter", "light-hearted", "lighthearted", "light", "easy watch", "easy to watch", "breezy",
                   "not too heavy", "not so heavy", "less heavy", "less serious", "less dark", "가벼운", "가볍게",
                   "가볍고", "부담 없는", "부담없는", "킬링타임", "편하게 볼", "머리 식힐"),
         prefer=("Comedy", "Animation", "Adventure", "Romance", "Children"), avoid=("Horror", "War"),
         demote=("Drama", "Crime", "Thriller", "Documentary", "Film-Noir"), search="light-hearted fun easy"),
    Tone("dark", ("dark", "darker", "gritty", "bleak", "disturbing", "heavy", "heavier", "어두운", "암울", "무거운",
                  "묵직한"),
         prefer=("Crime", "Thriller", "Drama"), demote=("Children", "Animation", "Musical", "Comedy"),
         search="dark gritty"),
    Tone("feel-good", ("feel-good", "feel good", "uplifting", "heartwarming", "heart-warming", "cheerful", "wholesome",
                       "cozy", "happy", "cheer me up", "cheer up", "pick-me-up", "pick me up", "mood booster",
                       "기분 좋", "기분 전환", "기분전환", "힐링", "따뜻한", "훈훈", "유쾌", "밝은"),
         prefer=("Comedy", "Romance", "Children", "Animation"), avoid=("Horror",), demote=("War", "Crime", "Thriller"),
         search="uplifting heartwarming feel-good"),
    Tone("sad", ("sad", "tearjerker", "tear-jerker", "moving", "emotional", "cry", "슬픈", "감동", "눈물", "울고 싶",
                 "여운"),
         prefer=("Drama", "Romance"), search="emotional moving"),
    Tone("mind-bending", ("mind-bending", "mind bending", "twist", "twists", "cerebral", "clever", "puzzle", "반전",
                          "두뇌", "머리 쓰는", "복잡한"),
         prefer=("Mystery", "Thriller"), search="mind-bending plot twist"),
    Tone("exciting", ("exciting", "thrilling", "adrenaline", "epic", "신나는", "짜릿", "박진감", "스케일"),
         prefer=("Action", "Adventure"), search="exciting epic"),
    Tone("calm", ("calm", "quiet", "slow-paced", "slow paced", "gentle", "peaceful", "low-key", "잔잔한", "잔잔하고",
                  "잔잔", "조용한", "차분한", "느긋한", "담담한", "fall asleep", "falling asleep", "relaxing",
                  "unwind", "잠들기", "잠 잘 때", "편안한"),
         prefer=("Drama", "Romance"), avoid=("Horror", "War"), demote=("Action", "Thriller", "Crime"),
         search="quiet gentle slow-paced"),
    Tone("less-violent", ("less violent", "not violent", "not too violent", "non-violent", "nonviolent", "no violence",
                          "without violence", "not gory", "no gore", "less gore", "less gory", "not so violent",
                          "덜 폭력", "폭력적이지 않", "잔인하지 않", "안 잔인", "덜 잔인", "폭력 없는", "피 안 나오"),
         avoid=("Horror", "War"), demote=("Crime", "Thriller", "Action", "Film-Noir"),
         demote_keywords=("violence", "gore", "murder", "serial killer", "torture", "brutality", "massacre",
                          "shootout", "blood", "war", "rape", "prison", "neo-nazi", "revenge")),
    Tone("family", ("family-friendly", "family friendly", "for the family", "whole family", "with my kids",
                    "with the kids", "with kids", "with my family", "family movie", "family movies", "family film",
                    "my kids", "for kids", "kid-friendly", "kid friendly", "my children", "for children", "my son",
                    "my daughter", "for the kids", "아이들", "애들", "우리 아이", "아들이랑", "딸이랑",
                    "가족이랑", "가족과", "가족끼리", "가족 영화", "가족영화", "온 가족", "아이랑", "아이들이랑", "아이와",
                    "애들이랑", "애들하고", "아이들과", "조카랑"),
         prefer=("Children", "Animation", "Comedy", "Adventure", "Fantasy"),
         avoid=("Horror", "War", "Crime", "Thriller", "Film-Noir"), search="family friendly",
         core=("Children", "Animation")),  # an action comedy may be "preferred", but it is no film for the kids
)
TONE_TERMS = tuple(Term(t.key, t.words) for t in TONES)
TONE_BY_KEY = {t.key: t for t in TONES}

# Themes: what a film is about, matched against item keywords and tags ("superhero" is no MovieLens genre).
THEME_TERMS = _lex({
    "superhero": ("superhero", "superheroes", "super hero", "super-hero", "marvel", "dc comics", "히어로", "슈퍼히어로",
                  "마블", "영웅물"),
    "zombie": ("zombie", "zombies", "좀비"),
    "vampire": ("vampire", "vampires", "뱀파이어", "흡혈귀"),
    "time travel": ("time travel", "time-travel", "time loop", "time machine", "시간 여행", "시간여행", "타임슬립",
                    "타임 루프", "타임루프"),
    "space": ("space", "outer space", "astronaut", "astronauts", "spaceship", "우주", "우주선", "우주비행사"),
    "alien": ("alien", "aliens", "extraterrestrial", "외계인"),
    "robot": ("robot", "robots", "android", "artificial intelligence", "로봇", "인공지능"),
    "dinosaur": ("dinosaur", "dinosaurs", "공룡"),
    "heist": ("heist", "heists", "bank robbery", "하이스트", "강도", "도둑"),
    "revenge": ("revenge", "vengeance", "복수"),
    "serial killer": ("serial killer", "serial killers", "연쇄살인", "연쇄 살인"),
    "dystopia": ("dystopia", "dystopian", "post-apocalyptic", "apocalypse", "디스토피아", "아포칼립스"),
    "pirate": ("pirate", "pirates", "해적"),
    "spy": ("spy", "spies", "espionage", "secret agent", "스파이", "첩보"),
    "sport": ("sports", "sport", "boxing", "baseball", "football", "basketball", "스포츠", "야구", "축구", "농구",
              "권투", "복싱"),
    "martial arts": ("martial arts", "kung fu", "kung-fu", "무술", "쿵푸", "무협"),
    "true story": ("true story", "based on a true story", "real events", "biopic", "실화", "실제 이야기"),
    "disaster": ("disaster", "disasters", "재난"),
    "prison": ("prison", "jail", "감옥", "교도소"),
    "music": ("music", "musician", "band", "음악", "밴드"),
    "high school": ("high school", "teen", "teens", "coming of age", "coming-of-age", "학교", "하이틴", "성장"),
    "dog": ("dog", "dogs", "puppy", "강아지", "개 영화"),
})
# What a theme looks like in item keywords / tags (lower case substrings).
THEME_KEYWORDS: Mapping[str, tuple[str, ...]] = {
    "superhero": ("superhero", "super hero", "marvel", "dc comics", "based on comic", "comic book"),
    "zombie": ("zombie",), "vampire": ("vampire",), "time travel": ("time travel", "time loop", "time machine"),
    "space": ("space", "astronaut", "spacecraft", "spaceship", "outer space"), "alien": ("alien", "extraterrestrial"),
    "robot": ("robot", "android", "artificial intelligence", "cyborg"), "dinosaur": ("dinosaur",),
    "heist": ("heist", "robbery", "bank robber", "thief"), "revenge": ("revenge", "vengeance"),
    "serial killer": ("serial killer",), "dystopia": ("dystopia", "post-apocalyptic", "apocalypse"),
    "pirate": ("pirate",), "spy": ("spy", "espionage", "secret agent", "cia", "mi6"),
    "sport": ("sport", "boxing", "baseball", "football", "basketball", "boxer", "olympic"),
    "martial arts": ("martial arts", "kung fu", "wuxia"), "true story": ("based on true story", "biography",
                                                                         "true story", "based on a true story"),
    "disaster": ("disaster", "natural disaster"), "prison": ("prison", "jail"),
    "music": ("music", "musician", "band", "rock"), "high school": ("high school", "teenager", "coming of age"),
    "dog": ("dog",),
}

# Countries of origin (ISO 3166 codes, as TMDB writes production countries) and original languages.
COUNTRY_TERMS = _lex({
    "KR": ("korean", "south korean", "k-movie", "k-movies", "k movie", "korea", "한국", "국내", "국산", "한국산", "韓國"),
    "JP": ("japanese", "japan", "일본", "일본산"),
    "CN": ("chinese", "china", "중국"),
    "HK": ("hong kong", "hongkong", "홍콩"),
    "TW": ("taiwanese", "taiwan", "대만"),
    "FR": ("french", "france", "프랑스"),
    "GB": ("british", "english film", "english movie", "uk film", "uk movie", "영국"),
    "US": ("american", "hollywood", "미국", "할리우드", "헐리우드"),
    "IN": ("indian", "bollywood", "인도", "발리우드"),
    "ES": ("spanish", "spain", "스페인"),
    "IT": ("italian", "italy", "이탈리아"),
    "DE": ("german", "germany", "독일"),
    "TH": ("thai", "thailand", "태국"),
    "MX": ("mexican", "mexico", "멕시코"),
    "SE": ("swedish", "sweden", "스웨덴"),
    "DK": ("danish", "denmark", "덴마크"),
    "RU": ("russian", "russia", "러시아"),
})
COUNTRY_LANGUAGE = {"KR": "ko", "JP": "ja", "CN": "zh", "HK": "cn", "TW": "zh", "FR": "fr", "GB": "en", "US": "en",
                    "IN": "hi", "ES": "es", "IT": "it", "DE": "de", "TH": "th", "MX": "es", "SE": "sv", "DK": "da",
                    "RU": "ru"}
COUNTRY_NAMES = {
    "KR": ("Korean", "한국"), "JP": ("Japanese", "일본"), "CN": ("Chinese", "중국"), "HK": ("Hong Kong", "홍콩"),
    "TW": ("Taiwanese", "대만"), "FR": ("French", "프랑스"), "GB": ("British", "영국"), "US": ("American", "미국"),
    "IN": ("Indian", "인도"), "ES": ("Spanish", "스페인"), "IT": ("Italian", "이탈리아"), "DE": ("German", "독일"),
    "TH": ("Thai", "태국"), "MX": ("Mexican", "멕시코"), "SE": ("Swedish", "스웨덴"), "DK": ("Danish", "덴마크"),
    "RU": ("Russian", "러시아"),
}

DOMAIN_BOOK_WORDS = ("book", "books", "novel", "novels", "paperback", "paperbacks", "to read", "read next",
                     "a read", "good read", "quick read", "beach read", "light read", "great read", "fun read",
                     "something to read", "reading list", "책", "소설", "도서", "읽을", "읽을만한", "읽을 만한")
DOMAIN_MOVIE_WORDS = ("movie", "movies", "film", "films", "flick", "flicks", "영화", "볼만한", "볼 만한")


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
_NEG_KO_HEAD = r"^\s*(?:영화|장르|쪽|계열|류|물|같은\s*거|같은\s*건|거)?\s*(?:은|는|이|가|을|를|도)?\s*"
_NEG_KO_VERDICT = (r"(?:말고|빼고|제외|싫|별로|아닌|아니고|없는|안\s*좋|대신|이외|외에|는\s*빼|못\s*보|못\s*봐|안\s*봐|안\s*볼|"
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
    (rx.compile(r"\b(?:last)\s+(?:one|movie|film|book|pick)\b|\bthe\s+last\b|마지막\s*(?:거|것|영화|작품|책)?", rx.I), -1),
)
ORDINAL_PHRASE = rx.compile(
    r"(?:\bthe\s+)?\b(?:first|second|third|fourth|fifth|last|1st|2nd|3rd|4th|5th)\s+(?:one|movie|film|book|pick|"
    r"title|card|suggestion|recommendation)s?\b|\b(?:number|no\.?|#)\s*[1-9]\b|(?:첫|두|세|네|다섯)\s*번째\s*(?:거|것|"
    r"영화|작품|책|꺼|건|게|걸)?|[1-9]\s*번(?:째)?\s*(?:거|것|영화|작품|책|꺼|건|게|걸)?|마지막\s*(?:거|것|영화|작품|책|건|게)",
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
    """One lexicon word as a pattern plus the check on the characters around it. Korean: the word starts a token
    (not inside another word: 한국 is not in 대한민국) and may carry particles. Latin: only Latin letters, digits and
    hyphens end a word, because Korean particles attach straight to Latin words ("SF는 빼고")."""

    pattern: object
    korean: bool

    def finditer(self, text: str):
        def ok(m) -> bool:
            s, e = m.start(), m.end()
            if self.korean:
                return s == 0 or not _syllable(text[s - 1])
            return (s == 0 or not _latin_word_char(text[s - 1])) and (e == len(text) or not _latin_word_char(text[e]))

        return rx.finditer_where(self.pattern, text, ok)


@functools.lru_cache(maxsize=4096)
def _compiled(word: str) -> _WordPattern:
    if has_hangul(word):
        return _WordPattern(rx.compile(rx.escape(word).replace(r"\ ", r"\s*")), True)
    flags = 0 if word.isupper() else rx.I  # "SF" upper-case only: "sf" is rare and ambiguous in English text
    return _WordPattern(rx.compile(rx.escape(word).replace(r"\ ", r"\s+"), flags), False)


def find_terms(text: str, terms: Iterable[Term]) -> list[Hit]:
    """Every lexicon word found in `text`, longest first where two overlap, in text order."""
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

_KO_FILLER = ("추천", "영화", "다른", "더", "거", "것", "좀", "해줘", "해 줘", "줘", "보여", "알려", "별로", "싫", "재밌",
              "재미", "좋아", "봤", "뭐", "볼", "하나", "또", "그", "이", "저", "요", "작품", "책", "소설", "읽", "있",
              "없", "같은", "비슷", "처럼", "해", "주세요", "부탁", "안녕", "뭔가", "아무", "나", "제", "저한테", "한테",
              "사람", "좋아하는", "친구", "누구", "분", "찾", "원해", "싶", "위주", "쪽", "걸로", "게", "면", "데",
              "말고", "빼고", "중에", "최고", "괜찮은", "정말", "진짜", "완전", "너무", "많이", "요즘", "혹시", "응", "그럼",
              "그러면", "네", "예", "음", "아", "오", "자", "그래", "좋", "어떤", "뭘", "무슨", "다", "시리즈", "다시", "이제",
              "그냥", "한번", "한 번", "로", "으로", "를", "을", "은", "는", "가", "도", "만", "에", "랑", "하고", "과",
              "와", "의", "이런", "그런", "저런", "취향", "뭐가", "어때")
_EN_FILLER = frozenset("""a an the me my i you we something anything some any movie movies film films book books novel
novels recommend recommendation recommendations suggest suggestion please show give want would like to for of with
and or in on watch see read good great best new one ones more another other else that this is it what should could
can about tonight today someone somebody anyone who people person fan fans friend our your their they he she him her
them his didn don doesn t s m ve ll re d not no really so very too also just still was were is are be been liked loved
enjoyed hated hate love enjoy please thanks thank ok okay now then again maybe similar same kind sort type vibe vibes
stuff things from but looking mood feel feeling find pick picks watching reading any some kinda sorta lot lots bit
have has had am do does did get got back again now instead switch hi hello hey tonight weekend wife husband
girlfriend boyfriend partner date night""".split())  # who and when one watches with says nothing about the film


def informative(query: str) -> bool:
    """Does the free text say anything beyond "recommend me another movie" / "다른 거 추천해줘"?"""
    for w in rx.findall(r"\w+", query.lower()):
        if has_hangul(w):
            if not w.startswith(_KO_FILLER):
                return True
        elif w not in _EN_FILLER and len(w) > 1 and not w.isdigit():
            return True
    return False
