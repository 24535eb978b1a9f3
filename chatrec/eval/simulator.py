"""Simulated users for conversational evaluation (in the spirit of iEvaLM-style attribute-revealing simulators).

Each simulated user is built from a real ML-1M rating history: three of their favourite earlier movies are given to
the system as likes (what the UI's like buttons do), and a later highly-rated movie becomes the hidden *target*.
Each turn the simulator reveals one more attribute of the target — genre, era, director, a lead actor, a plot
hint — in Korean or English, and accepts as soon as the target appears among the first k cards. When it does not,
it dislikes the top card ("not that one"), which also exercises the engine's dislike handling.

Caveat that the report states too: ALS was fitted on ratings that include the target, so collaborative scores
carry a small leak; the simulated user is a fresh session, though, so the engine never sees who they are.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from chatrec.events import Cards
from chatrec.eval.expectations import TurnOutcome, detect_language

ATTRIBUTE_ORDER = ("genre", "era", "director", "actor", "plot")

# ML-1M says "Children's"; the Korean names follow chatrec.prompts.GENRE_KO where it has them.
GENRE_KO = {
    "Action": "액션", "Adventure": "모험", "Animation": "애니메이션", "Children's": "가족", "Children": "가족",
    "Comedy": "코미디", "Crime": "범죄", "Documentary": "다큐멘터리", "Drama": "드라마", "Fantasy": "판타지",
    "Film-Noir": "누아르", "Horror": "공포", "Musical": "뮤지컬", "Mystery": "미스터리", "Romance": "로맨스",
    "Sci-Fi": "SF", "Thriller": "스릴러", "War": "전쟁", "Western": "서부",
}

# Every utterance is phrased as a request about a movie, as a user of a recommender would phrase it.
TEMPLATES = {
    "en": {
        "genre": "Can you recommend a {value} movie?",
        "era": "I'd prefer a movie from the {value}s.",
        "director": "Maybe a film directed by {value}?",
        "actor": "I think {value} plays in the movie.",
        "plot": "The movie's story goes roughly like this: {value}",
    },
    "ko": {
        "genre": "{value} 영화 추천해 주세요.",
        "era": "{value}년대 영화였으면 좋겠어요.",
        "director": "{value} 감독 영화였으면 해요.",
        "actor": "{value} 배우가 나오는 영화였던 것 같아요.",
        "plot": "영화 줄거리는 대충 이래요: {value}",
    },
}
CUMULATIVE_LEAD = {"en": "Let me say it all again: ", "ko": "다시 정리하면, "}


@dataclass(frozen=True)
class Attribute:
    kind: str  # one of ATTRIBUTE_ORDER
    value: str  # in the user's language where a translation exists


@dataclass(frozen=True)
class SimUser:
    """One simulated user: who they are in the data, what they like, what they are looking for."""

    source_user: str
    language: str
    target_id: str
    liked_ids: tuple[str, ...]
    attributes: tuple[Attribute, ...]

    def utterance(self, turn: int, cumulative: bool = False) -> str:
        """What the user says at `turn` (0-based): one new attribute, or all revealed so far."""
        tpl = TEMPLATES[self.language]
        if not cumulative or turn == 0:
            a = self.attributes[min(turn, len(self.attributes) - 1)]
            return tpl[a.kind].format(value=a.value)
        parts = [tpl[a.kind].format(value=a.value) for a in self.attributes[: turn + 1]]
        return CUMULATIVE_LEAD[self.language] + " ".join(parts)


def _plot_hint(item, max_chars: int = 180) -> str:
    """The first sentence(s) of the plot, with the title's own words masked so the hint does not give it away."""
    text = re.split(r"(?<=[.!?])\s+", item.plot.strip())
    hint = ""
    for s in text:
        if len(hint) + len(s) > max_chars and hint:
            break
        hint = f"{hint} {s}".strip()
    if len(hint) > max_chars:
        hint = hint[:max_chars].rsplit(" ", 1)[0] + " …"
    for w in {w for w in re.findall(r"[A-Za-z0-9']+", item.title) if len(w) > 3}:
        hint = re.sub(rf"\b{re.escape(w)}\b", "…", hint, flags=re.I)
    return hint


def attributes_of(item, language: str) -> tuple[Attribute, ...] | None:
    """The five attributes in reveal order, or None if the item lacks one (it then cannot be a target)."""
    if not (item.genres and item.year and item.directors and item.actors and len(item.plot) >= 60):
        return None
    genre = item.genres[0]
    values = {
        "genre": GENRE_KO.get(genre, genre) if language == "ko" else genre,
        "era": str(item.year // 10 * 10),
        "director": item.directors[0],
        "actor": item.actors[0],
        "plot": _plot_hint(item),
    }
    return tuple(Attribute(k, values[k]) for k in ATTRIBUTE_ORDER)


def sample_users(dataset, n: int, *, seed: int = 0, n_liked: int = 3, languages: Sequence[str] = ("ko", "en"),
                 min_ratings: int = 20) -> list[SimUser]:
    """`n` simulated users from a dataset's real histories; languages alternate so both are covered equally.

    Target: a random movie the user rated ≥ 4 in the last fifth of their history (by time). Likes: their
    `n_liked` highest-rated movies from before that point (ties: most recent first).
    """
    if n <= 0:
        raise ValueError("n must be positive")
    r = dataset.ratings
    if r is None or len(r) == 0:
        raise ValueError(f"dataset {dataset.name!r} has no ratings; simulated users need real histories (use ml-1m)")
    cat = dataset.catalog
    rng = np.random.default_rng(seed)
    order = np.lexsort((r.timestamp, r.user))
    users, starts = np.unique(r.user[order], return_index=True)
    bounds = list(starts) + [len(order)]
    candidates = rng.permutation(len(users))
    out: list[SimUser] = []
    for ui in candidates:
        if len(out) == n:
            break
        rows = order[bounds[ui]:bounds[ui + 1]]
        if len(rows) < min_ratings:
            continue
        cut = int(len(rows) * 0.8)
        late = [x for x in rows[cut:] if r.rating[x] >= 4]
        early = rows[:cut]
        if not late or len(early) < n_liked:
            continue
        language = languages[len(out) % len(languages)]
        rng.shuffle(late)
        target = attrs = None
        for x in late:
            item = cat.items[int(r.item[x])]
            attrs = attributes_of(item, language)
            if attrs is not None:
                target = item
                break
        if target is None:
            continue
        ranked = sorted(early, key=lambda x: (-float(r.rating[x]), -int(r.timestamp[x])))
        liked = tuple(dict.fromkeys(cat.id_of(int(r.item[x])) for x in ranked))[:n_liked]
        out.append(SimUser(r.user_ids[int(users[ui])], language, target.id, liked, attrs))
    if len(out) < n:
        raise ValueError(f"only {len(out)} of {n} users in {dataset.name!r} qualify as simulated users "
                         f"(need ≥ {min_ratings} ratings and a fully described late favourite); ask for fewer")
    return out


# ------------------------------------------------------------------------------------------------ running dialogues
@dataclass(frozen=True)
class SimTurn:
    index: int
    utterance: str
    card_ids: tuple[str, ...]
    text: str
    reply_language: str
    notices: tuple[str, ...]  # notice kinds
    latency_s: float
    first_event_s: float | None
    error: str | None
    target_rank: int | None  # 1-based rank of the target among the cards, None if absent
    hallucinated: tuple[str, ...]  # card ids not in the catalog
    repeats: tuple[str, ...]  # card ids already shown in an earlier turn
    disliked_shown: tuple[str, ...]  # card ids the user had disliked before this turn


@dataclass
class SimDialogue:
    user: SimUser
    turns: list[SimTurn] = field(default_factory=list)
    success_turn: int | None = None  # 1-based turn at which the target appeared in the first k cards
    feedback_errors: int = 0
    feedback_hallucinated: int = 0


def timed_events(events: Iterable[object]) -> tuple[list[object], str | None, float, float | None]:
    """Drain an engine event iterator: (events, error, total seconds, seconds to the first event)."""
    t0 = time.perf_counter()
    got: list[object] = []
    first = None
    error = None
    try:
        for ev in events:
            if first is None:
                first = time.perf_counter() - t0
            got.append(ev)
    except Exception as e:  # the engine promises never to raise; record it as a failure instead of dying
        error = f"{type(e).__name__}: {e}"
    return got, error, time.perf_counter() - t0, first


Utterer = Callable[[SimUser, int, str], str]  # (user, turn, templated text) -> what the user says


def run_dialogue(engine, user: SimUser, catalog, *, turns: int = 5, k: int = 5, cumulative: bool = False,
                 dislike_top: bool = True, utterer: Utterer | None = None) -> SimDialogue:
    """Play one simulated user against the engine for at most `turns` turns."""
    dlg = SimDialogue(user)
    session = engine.new_session(language=user.language)
    for item_id in user.liked_ids:
        evs, err, _, _ = timed_events(engine.feedback(session, item_id, "like"))
        dlg.feedback_errors += err is not None
        dlg.feedback_hallucinated += _bad_ids(evs, catalog)
    shown: set[str] = set()
    disliked: set[str] = set()
    for t in range(turns):
        text = user.utterance(t, cumulative)
        if utterer is not None:
            text = utterer(user, t, text)
        evs, err, total, first = timed_events(engine.turn(session, text))
        out = TurnOutcome.from_events(evs, error=err, latency_s=total, first_event_s=first)
        ids = tuple(c.item_id for c in out.cards)
        rank = ids.index(user.target_id) + 1 if user.target_id in ids else None
        dlg.turns.append(SimTurn(
            index=t + 1, utterance=text, card_ids=ids, text=out.text, reply_language=detect_language(out.text),
            notices=tuple(n.kind for n in out.notices), latency_s=total, first_event_s=first, error=err,
            target_rank=rank, hallucinated=tuple(i for i in ids if i not in catalog),
            repeats=tuple(i for i in ids if i in shown), disliked_shown=tuple(i for i in ids if i in disliked)))
        shown.update(ids)
        if rank is not None and rank <= k:
            dlg.success_turn = t + 1
            break
        if dislike_top:
            top = next((i for i in ids if i != user.target_id and i in catalog), None)
            if top is not None:
                evs, err, _, _ = timed_events(engine.feedback(session, top, "dislike"))
                dlg.feedback_errors += err is not None
                dlg.feedback_hallucinated += _bad_ids(evs, catalog)
                disliked.add(top)
    return dlg


def _bad_ids(events: Iterable[object], catalog) -> int:
    return sum(c.item_id not in catalog for e in events if isinstance(e, Cards) for c in e.cards)


# ------------------------------------------------------------------------------------------------ metrics
def summarize(dialogues: Sequence[SimDialogue], *, turns: int, ks: Sequence[int] = (1, 3, 5)) -> dict:
    """Aggregate metrics over dialogues (see the module docstring for definitions)."""
    n = len(dialogues)
    if n == 0:
        raise ValueError("no dialogues to summarise")
    all_turns = [t for d in dialogues for t in d.turns]
    lat = np.array([t.latency_s for t in all_turns]) if all_turns else np.zeros(1)
    first = np.array([t.first_event_s for t in all_turns if t.first_event_s is not None] or [0.0])
    out: dict = {"users": n, "turns_played": len(all_turns)}
    for k in ks:
        hit = [any(t.target_rank is not None and t.target_rank <= k for t in d.turns) for d in dialogues]
        out[f"success@{k}"] = float(np.mean(hit))
    kmax = max(ks)
    succ = [d.success_turn for d in dialogues if d.success_turn is not None]
    out["avg_turns_to_success"] = float(np.mean(succ)) if succ else float("nan")
    # success by turn (cumulative) and Recall@k at turn t among users still searching at t
    out["success_by_turn"] = [float(np.mean([d.success_turn is not None and d.success_turn <= t for d in dialogues]))
                              for t in range(1, turns + 1)]
    per_turn = []
    for t in range(1, turns + 1):
        at = [d.turns[t - 1] for d in dialogues if len(d.turns) >= t]
        per_turn.append(float(np.mean([x.target_rank is not None and x.target_rank <= kmax for x in at]))
                        if at else float("nan"))
    out[f"recall@{kmax}_by_turn"] = per_turn
    out["hallucinated_ids"] = sum(len(t.hallucinated) for t in all_turns) + sum(d.feedback_hallucinated
                                                                                 for d in dialogues)
    out["repeats"] = sum(len(t.repeats) for t in all_turns)
    out["disliked_violations"] = sum(len(t.disliked_shown) for t in all_turns)
    out["language_match"] = float(np.mean([t.reply_language == d.user.language
                                           for d in dialogues for t in d.turns])) if all_turns else float("nan")
    out["fallback_rate"] = float(np.mean([("fallback" in t.notices) for t in all_turns])) if all_turns else 0.0
    out["errors"] = sum(t.error is not None for t in all_turns) + sum(d.feedback_errors for d in dialogues)
    out["empty_card_turns"] = sum(not t.card_ids for t in all_turns)
    out["latency_p50_s"] = float(np.percentile(lat, 50))
    out["latency_p95_s"] = float(np.percentile(lat, 95))
    out["first_event_p50_s"] = float(np.percentile(first, 50))
    out["latencies"] = lat.tolist()
    return out
