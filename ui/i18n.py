"""Interface labels and example prompts in Korean and English.

Replies follow the language the user writes in (the engine decides); these strings are only the chrome around
the chat, switched by the KO/EN toggle.
"""
from __future__ import annotations

LANGUAGES = ("ko", "en")

_STRINGS: dict[str, dict[str, str]] = {
    "title": {"ko": "🎬 Chat-REC · 대화형 영화·책 추천", "en": "🎬 Chat-REC · conversational movie & book recommender"},
    "language": {"ko": "언어", "en": "Language"},
    "chat": {"ko": "대화", "en": "Chat"},
    "message": {"ko": "메시지", "en": "Message"},
    "message_placeholder": {
        "ko": "예: 인터스텔라 같은 영화 추천해줘",
        "en": "e.g. Recommend movies like Interstellar",
    },
    "send": {"ko": "보내기", "en": "Send"},
    "reset": {"ko": "대화 초기화", "en": "Reset conversation"},
    "examples": {"ko": "예시 질문", "en": "Try asking"},
    "cards": {"ko": "### 추천 목록", "en": "### Recommendations"},
    "no_cards": {
        "ko": "아직 추천이 없어요. 좋아하는 작품을 고르거나 취향을 말해 주세요.",
        "en": "No recommendations yet. Pick a few favourites or describe what you like.",
    },
    "like": {"ko": "👍 좋아요", "en": "👍 Like"},
    "dislike": {"ko": "👎 별로예요", "en": "👎 Dislike"},
    "seen": {"ko": "👁 봤어요", "en": "👁 Seen"},
    "onboarding": {"ko": "처음이신가요? 좋아하는 작품 고르기", "en": "New here? Pick a few favourites"},
    "onboarding_hint": {
        "ko": "제목을 입력하면 바로 찾아 드려요. 몇 편 고른 뒤 ‘좋아요로 시작’을 누르세요. 아니면 아래 대화창에 취향을 자유롭게 적어 주세요.",
        "en": "Type a title to search as you type, tick a few, then press “Start with these”. "
        "Or just describe your taste in the chat box.",
    },
    "search": {"ko": "제목 검색", "en": "Search titles"},
    "search_placeholder": {"ko": "예: 매트릭스, Toy Story", "en": "e.g. Matrix, 토이 스토리"},
    "picks": {"ko": "검색 결과 (좋아하는 작품을 체크)", "en": "Results (tick your favourites)"},
    "like_picks": {"ko": "👍 좋아요로 시작", "en": "👍 Start with these"},
    "picked_none": {"ko": "먼저 작품을 하나 이상 체크해 주세요.", "en": "Tick at least one title first."},
    "busy": {
        "ko": "앞의 요청을 아직 처리하고 있어요. 잠시 후 다시 시도해 주세요.",
        "en": "Still working on your previous request. Please try again in a moment.",
    },
    "bad_kind": {
        "ko": "피드백 종류는 좋아요, 별로예요, 봤어요 중 하나여야 해요.",
        "en": "The feedback kind must be like, dislike or seen.",
    },
    "not_in_catalog": {"ko": "선택한 작품이 카탈로그에 없어요.", "en": "The picked titles are not in the catalog."},
    "you_liked": {"ko": "좋아하는 작품으로 등록했어요: ", "en": "Noted, you like: "},
    "settings": {"ko": "설정", "en": "Settings"},
    "llm": {"ko": "언어 모델", "en": "Language model"},
    "rerank": {"ko": "재정렬 방식", "en": "Rerank mode"},
    "n_recs": {"ko": "추천 개수", "en": "Number of recommendations"},
    "domain": {"ko": "분야", "en": "Domain"},
    "movies": {"ko": "영화", "en": "Movies"},
    "books": {"ko": "책", "en": "Books"},
    "because": {"ko": "추천 근거", "en": "Why"},
    "taste": {"ko": "내 취향 목록", "en": "My taste"},
    "taste_hint": {
        "ko": "좋아요·별로예요·봤어요로 표시한 작품이에요. 체크하고 ‘표시 취소’를 누르면 되돌려요. 새로고침해도 유지돼요.",
        "en": "What you marked with Like, Dislike or Seen. Tick and press “Undo” to take a mark back. "
        "It stays after a reload.",
    },
    "marks": {"ko": "표시한 작품", "en": "Marked titles"},
    "undo": {"ko": "↩ 표시 취소", "en": "↩ Undo"},
    "undone": {"ko": "표시를 취소했어요: ", "en": "Mark taken back: "},
    "no_marks": {"ko": "아직 표시한 작품이 없어요.", "en": "Nothing marked yet."},
    "export": {"ko": "⬇ 목록 내보내기 (Markdown)", "en": "⬇ Export list (Markdown)"},
    "export_text": {"ko": "내보낸 목록", "en": "Exported list"},
    "journeys": {"ko": "관심 여정", "en": "Interest journeys"},
    "journeys_hint": {"ko": "고르면 다음 추천이 그 방향으로 가요.", "en": "Pick one to steer the next picks."},
    "journey_go": {"ko": "이 방향으로 추천", "en": "Recommend along this"},
    "liked_list": {"ko": "좋아요", "en": "Liked"},
    "disliked_list": {"ko": "별로예요", "en": "Disliked"},
    "seen_list": {"ko": "봤어요", "en": "Seen"},
    "recs_list": {"ko": "추천 목록", "en": "Recommendations"},
    "ratings_n": {"ko": "{n}명 평가", "en": "{n} ratings"},
    "minutes": {"ko": "{n}분", "en": "{n} min"},
    "liked_mark": {"ko": "👍 좋아요 표시함", "en": "👍 You liked this"},
    "aria_like": {"ko": "좋아요: {title}", "en": "Like {title}"},
    "aria_dislike": {"ko": "별로예요: {title}", "en": "Dislike {title}"},
    "aria_seen": {"ko": "봤어요: {title}", "en": "Seen {title}"},
    "poster_of": {"ko": "{title} 포스터", "en": "Poster of {title}"},
    "restored": {"ko": "지난 대화를 이어서 보여 드려요.", "en": "Welcome back: your last conversation is restored."},
    "restore_failed": {
        "ko": "저장된 대화를 읽을 수 없어 새로 시작해요.",
        "en": "The saved conversation could not be read; starting afresh.",
    },
    "by": {"ko": "저자", "en": "by"},
}

_FEEDBACK_DONE = {
    "like": {"ko": "👍 반영했어요: ", "en": "👍 Noted, you liked "},
    "dislike": {"ko": "👎 빼 드렸어요: ", "en": "👎 Removed "},
    "seen": {"ko": "👁 본 작품으로 표시했어요: ", "en": "👁 Marked as seen: "},
}

RERANK_LABELS = {
    "llm": {"ko": "LLM 재정렬", "en": "LLM rerank"},
    "score": {"ko": "점수 순서", "en": "Score order"},
    "lm": {"ko": "LM 제목 점수 (LMRecSys)", "en": "LM title scores (LMRecSys)"},
}

EXAMPLES = {
    "ko": (
        "인터스텔라 같은 영화 추천해줘",
        "우주를 배경으로 한 잔잔한 SF 영화 있어?",
        "해리 포터를 좋아하는데 비슷한 책 추천해 줘",
    ),
    "en": (
        "Recommend movies like The Matrix",
        "A feel-good comedy from the 90s, please",
        "I loved Pride and Prejudice; which books should I read?",
    ),
}


def t(key: str, lang: str) -> str:
    """The label `key` in `lang` ("ko" | "en"); unknown languages fall back to English."""
    entry = _STRINGS[key]
    return entry.get(lang) or entry["en"]


def feedback_done(kind: str, lang: str) -> str:
    entry = _FEEDBACK_DONE[kind]
    return entry.get(lang) or entry["en"]


def rerank_label(mode: str, lang: str) -> str:
    entry = RERANK_LABELS.get(mode, {"en": mode})
    return entry.get(lang) or entry["en"]


def normalise_language(lang: str | None) -> str:
    """Browser locales ("ko-KR", "en-US") and our codes → "ko" | "en"."""
    return "ko" if (lang or "").lower().startswith("ko") else "en"
