"""SLIM-style grounded explanations: the user's evidence → a shared attribute → the item.

Evidence is a liked title or a stated wish; the attribute (director, writer/author, actor, keyword, genre, year)
must literally occur in the recommended item's knowledge document (retrieval.documents.document_text, the same
text the knowledge store indexes), so a reason never states a fact the item's document does not hold. Reasons
never come from an LLM: the LLM ranks and writes the intro; every card's reason is one of these templates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from retrieval.documents import document_text
from retrieval.types import Item

from retrieval.lang import COUNTRY_NAMES, THEME_KEYWORDS

from . import prompts
from .request import TONE_EN, TONE_KO, Wish

_PRIORITY = ("director", "writer", "author", "actor", "keyword", "genre")
# Formats and listings, not genres: never shown as one, never a reason.
_NOT_GENRES = {"IMAX", "(no genres listed)"}

# Korean for the tags and keywords that reasons rest on most often (MovieLens tags, TMDB keywords). A keyword
# without an entry is not shown to a Korean session: the reason falls back to the next attribute.
KEYWORD_KO = {
    "atmospheric": "분위기 있는", "funny": "유쾌한", "superhero": "슈퍼히어로", "surreal": "초현실적인",
    "thought-provoking": "생각할 거리", "sci-fi": "SF", "disney": "디즈니", "quirky": "기발한", "religion": "종교",
    "dark comedy": "블랙 코미디", "black comedy": "블랙 코미디", "dark humor": "블랙 유머", "suspense": "서스펜스",
    "psychology": "심리", "psychological": "심리", "twist ending": "반전 결말", "visually appealing": "아름다운 영상",
    "visually stunning": "압도적인 영상", "politics": "정치", "music": "음악", "dark": "어두운 분위기",
    "time travel": "시간 여행", "high school": "고등학교", "mental illness": "정신 질환", "aliens": "외계인",
    "alien": "외계인", "space": "우주", "outer space": "우주", "space travel": "우주 여행", "spaceship": "우주선",
    "dreamlike": "몽환적인", "mafia": "마피아", "holocaust": "홀로코스트", "disturbing": "충격적인",
    "shakespeare": "셰익스피어", "emotional": "감동적인", "journalism": "언론", "heist": "강탈", "classic": "고전",
    "anime": "애니메", "satire": "풍자", "court": "법정", "courtroom": "법정", "christmas": "크리스마스",
    "comic book": "만화 원작", "based on comic": "만화 원작", "ghosts": "유령", "ghost": "유령",
    "bittersweet": "씁쓸하고 달콤한", "adolescence": "청소년기", "coming of age": "성장", "adultery": "불륜",
    "boxing": "권투", "drugs": "마약", "drug": "마약", "robots": "로봇", "robot": "로봇", "cinematography": "촬영",
    "remake": "리메이크", "philosophical": "철학적인", "philosophy": "철학", "revenge": "복수", "world war ii": "제2차 세계대전",
    "stylized": "스타일리시한", "murder": "살인", "hallucinatory": "환각적인", "military": "군대", "tense": "긴장감",
    "creepy": "으스스한", "sexuality": "성", "racism": "인종차별", "heartwarming": "훈훈한", "family": "가족",
    "sequel": "속편", "police": "경찰", "violence": "폭력", "divorce": "이혼", "martial arts": "무술",
    "serial killer": "연쇄살인", "animal movie": "동물", "movie business": "영화계", "spoof": "패러디",
    "inspirational": "영감을 주는", "clever": "영리한", "witty": "재치 있는", "social commentary": "사회 비판",
    "magic": "마법", "cult film": "컬트", "assassination": "암살", "kidnapping": "납치", "prostitution": "성매매",
    "disability": "장애", "death": "죽음", "wedding": "결혼식", "gothic": "고딕", "pixar": "픽사",
    "great soundtrack": "멋진 음악", "soundtrack": "음악", "dystopia": "디스토피아", "future": "미래",
    "black and white": "흑백", "artificial intelligence": "인공지능", "virtual reality": "가상 현실",
    "post-apocalyptic": "종말 이후", "zombie": "좀비", "zombies": "좀비", "vampire": "뱀파이어", "vampires": "뱀파이어",
    "dinosaur": "공룡", "dinosaurs": "공룡", "pirate": "해적", "pirates": "해적", "spy": "스파이", "espionage": "첩보",
    "sport": "스포츠", "sports": "스포츠", "true story": "실화", "based on true story": "실화",
    "based on a true story": "실화", "disaster": "재난", "prison": "감옥", "dog": "강아지", "friendship": "우정",
    "love": "사랑", "romance": "로맨스", "war": "전쟁", "nostalgic": "향수", "dialogue": "대사", "nonlinear": "비선형 구성",
    "non-linear": "비선형 구성", "mindbending": "반전", "plot twist": "반전", "cyberpunk": "사이버펑크",
    "hacker": "해커", "computers": "컴퓨터", "memory": "기억", "dreams": "꿈", "dream": "꿈", "survival": "생존",
    "road trip": "로드 트립", "small town": "작은 마을", "new york city": "뉴욕", "new york": "뉴욕",
    "los angeles": "로스앤젤레스", "paris": "파리", "london": "런던", "japan": "일본", "korea": "한국",
    "vietnam": "베트남", "india": "인도", "england": "영국", "australia": "호주", "fairy tale": "동화",
    "based on novel": "소설 원작", "based on novel or book": "소설 원작", "based on a novel": "소설 원작",
    "based on book": "소설 원작", "biography": "전기", "father son relationship": "부자 관계",
    "mother daughter relationship": "모녀 관계", "teenager": "십대", "school": "학교", "wizard": "마법사",
    "witch": "마녀", "dragon": "용", "monster": "괴물", "gangster": "갱스터", "detective": "탐정",
    "investigation": "수사", "corruption": "부패", "hitman": "청부살인", "conspiracy": "음모", "terrorism": "테러",
    "nuclear war": "핵전쟁", "mars": "화성", "moon": "달", "astronaut": "우주비행사", "time loop": "타임 루프",
    "parallel universe": "평행 우주", "gritty": "거친", "cerebral": "지적인", "intelligent": "지적인",
    "beautiful": "아름다운", "feel-good": "기분 좋은", "cute": "귀여운", "slow": "느린 호흡", "epic": "대서사",
    "fantasy world": "판타지 세계", "toys": "장난감", "toy": "장난감", "animals": "동물", "friends": "친구",
}


def display_title(item: Item, lang: str) -> str:
    """The title a reader of `lang` knows the film by: the Korean release title in Korean sessions when known."""
    return item.title_ko if lang == "ko" and item.title_ko else item.title


def display_genres(genres: Iterable[str], lang: str) -> list[str]:
    """Genres in the session's language; formats (IMAX) and genres without a name in it are left out."""
    out = []
    for g in genres:
        if g in _NOT_GENRES:
            continue
        name = prompts.genre_name(g, lang)
        if lang == "ko" and name == g and g.isascii():
            continue
        out.append(name)
    return out


def keyword_name(keyword: str, lang: str) -> str | None:
    """A keyword in the session's language, or None when it has no translation (then it is not shown)."""
    if lang != "ko":
        return keyword
    low = keyword.lower()
    return KEYWORD_KO.get(low) or prompts.THEME_KO.get(low)


def _localizable(kind: str, value: str, lang: str) -> bool:
    if kind == "keyword":
        return keyword_name(value, lang) is not None
    if kind == "genre":
        return bool(display_genres([value], lang))
    return True


@dataclass(frozen=True)
class Explanation:
    reason: str
    source: str  # short card label: "because you liked X" / "matches your request" / "popular"
    evidence: str | None = None  # the liked item id behind it, if any
    attribute: str | None = None  # "director" | "actor" | ... | "wish_genre" | ...


# Tags about formats, releases and viewing lists: true of the item but no theme a reason can rest on.
_NOT_THEMES = {"imax", "3d", "in netflix queue", "netflix queue", "bd-r", "bd-video", "dvd", "dvd-video", "clv",
               "seen", "watched", "seen more than once", "own", "owned", "to see", "mindfuck", "duringcreditsstinger",
               "aftercreditsstinger", "woman director"}


def _keywords(item: Item) -> list[str]:
    kws = list(item.keywords)
    out = kws + [t for t in item.tags if t.lower() not in {k.lower() for k in kws}]
    return [k for k in out if k.lower() not in _NOT_THEMES]


def shared_attributes(src: Item, item: Item, doc: str) -> list[tuple[str, str]]:
    """(kind, value) pairs that `src` and `item` share and that `item`'s document states, strongest first."""
    low = doc.lower()
    out: list[tuple[str, str]] = []

    def add(kind: str, a: Iterable[str], b: Iterable[str]) -> None:
        bset = {x.lower(): x for x in b}
        for x in a:
            if x.lower() in bset and x.lower() in low:
                out.append((kind, bset[x.lower()]))

    add("director", src.directors, item.directors)
    # Cross-domain: a film's writer may be the author of a book (Blade Runner → Philip K. Dick).
    add("writer", src.writers, tuple(item.writers) + tuple(item.authors))
    add("author", src.authors, tuple(item.authors) + tuple(item.writers))
    add("actor", src.actors[:8], item.actors[:8])
    add("keyword", _keywords(src), _keywords(item))
    add("genre", [g for g in src.genres if g not in _NOT_GENRES], item.genres)
    seen: set[tuple[str, str]] = set()
    uniq = [x for x in out if not (x in seen or seen.add(x))]
    return sorted(uniq, key=lambda kv: _PRIORITY.index(kv[0]))


def facts_phrase(item: Item, lang: str, prefer: Sequence[str] = ()) -> str:
    """Genres (the wished-for ones first) and year (or author), as stated in the document."""
    parts = []
    genres = display_genres([g for g in prefer if g in item.genres] + [g for g in item.genres if g not in prefer], lang)
    if genres:
        parts.append("/".join(genres[:3]))
    if item.authors and item.domain == "book":
        parts.append(("by " if lang == "en" else "") + ", ".join(item.authors[:2]) + ("" if lang == "en" else " 작"))
    if item.year:
        parts.append(str(item.year))
    return ", ".join(parts) or display_title(item, lang)


def explain(item: Item, *, lang: str, liked: Sequence[Item], wish: Wish, sources: Sequence[str] = (),
            doc: str | None = None, made_by: Sequence[str] = ()) -> Explanation:
    """The strongest grounded reason for `item`. `made_by`: the people the user asked for who made or star in
    it (from the item data or the packaged people table, both facts the app holds)."""
    doc = doc if doc is not None else document_text(item)
    # The most recent likes are the freshest evidence.
    best: tuple[int, Item, str, str] | None = None
    for src in reversed(list(liked)):
        attrs = [(k, v) for k, v in shared_attributes(src, item, doc) if _localizable(k, v, lang)]
        if attrs:
            kind, value = attrs[0]
            rank = _PRIORITY.index(kind)
            if best is None or rank < best[0]:
                best = (rank, src, kind, value)
    src_label = lambda s: prompts.source("liked", lang, src=display_title(s, lang))  # noqa: E731

    # A strong personal link (same director/writer/actor/theme) beats a wish; a bare genre match does not.
    if best and best[2] != "genre":
        _, src, kind, value = best
        if kind == "keyword":
            value = keyword_name(value, lang) or value
        return Explanation(prompts.reason(kind, lang, src=display_title(src, lang), attr=value), src_label(src),
                           src.id, kind)

    reason = _wish_reason(item, lang, wish, doc, made_by)
    if reason is not None:
        return reason
    if best:
        _, src, kind, value = best
        return Explanation(prompts.reason("genre", lang, src=display_title(src, lang),
                                          attr=display_genres([value], lang)[0]), src_label(src), src.id, "genre")
    if liked and ("als" in sources or "similar" in sources):
        src = list(liked)[-1]
        key = "similar_book" if item.domain == "book" else "similar"
        return Explanation(prompts.reason(key, lang, src=display_title(src, lang), facts=facts_phrase(item, lang)),
                           src_label(src), src.id, key)
    if "search" in sources:
        return Explanation(prompts.reason("wish_text", lang, facts=facts_phrase(item, lang)),
                           prompts.source("wish", lang), None, "wish_text")
    if "new" in sources and "popular" not in sources:
        # A film from the catalog's last years with few ratings yet: "widely loved" would overstate it.
        return Explanation(prompts.reason("new", lang, facts=facts_phrase(item, lang)),
                           prompts.source("new", lang), None, "new")
    return Explanation(prompts.reason("popular", lang, facts=facts_phrase(item, lang)),
                       prompts.source("popular", lang), None, "popular")


def _wish_reason(item: Item, lang: str, w: Wish, doc: str, made_by: Sequence[str]) -> Explanation | None:
    src = prompts.source("wish", lang)
    low = doc.lower()
    people = [p for p in w.people if not p.exclude and p.name in made_by]
    if people:
        p = people[0]
        key = "wish_director" if p.role == "director" or (p.role == "any" and p.name in item.directors) else "wish_person"
        return Explanation(prompts.reason(key, lang, attr=p.name, facts=facts_phrase(item, lang)), src, None, key)
    wanted = [g for g in w.genres + w.genres_any if g in item.genres and g.lower() in low and display_genres([g], lang)]
    if wanted:
        label = prompts.join_names(display_genres(wanted, lang), lang)
        return Explanation(prompts.reason("wish_genre", lang, attr=label, facts=facts_phrase(item, lang, wanted)),
                           src, None, "wish_genre")
    origin = [c for c in w.origins if c in item.countries]
    if origin:
        name = COUNTRY_NAMES.get(origin[0], (origin[0], origin[0]))[1 if lang == "ko" else 0]
        return Explanation(prompts.reason("wish_origin", lang, attr=name, facts=facts_phrase(item, lang)), src, None,
                           "wish_origin")
    themes = [t for t in w.themes if any(k in low for k in THEME_KEYWORDS.get(t, ()))
              and (lang != "ko" or t in prompts.THEME_KO)]
    if themes:
        return Explanation(prompts.reason("wish_theme", lang, attr=prompts.theme_name(themes[0], lang),
                                          facts=facts_phrase(item, lang)), src, None, "wish_theme")
    preferred = [g for g in w.prefer_genres if g in item.genres and g.lower() in low][:1]
    tone_names = TONE_KO if lang == "ko" else TONE_EN
    if preferred and w.tones and w.tones[0] in tone_names:
        label = tone_names[w.tones[0]]
        return Explanation(prompts.reason("wish_genre", lang, attr=label, facts=facts_phrase(item, lang, preferred)),
                           src, None, "wish_tone")
    rng = w.year_range
    if rng and item.year and rng[0] <= item.year <= rng[1] and str(item.year) in doc:
        return Explanation(prompts.reason("wish_period", lang, attr=w.period_label or f"{rng[0]}–{rng[1]}",
                                          year=item.year), src, None, "wish_period")
    return None
