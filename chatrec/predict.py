""""Would I like X?" for a chat session: a predicted rating, a grounded reason and an honest uncertainty.

The session is folded into a fitted rating model (retrieval.rating_models) from what it knows: titles the user
liked or disliked (pseudo-ratings `PredictConfig.liked_value` / `disliked_value`) and ratings the user gave. The
answer carries
  - the predicted rating on 1–5 and what an average viewer gives the item (the model with no user evidence);
  - an ~80 % interval from the *measured* error of fold-in predictions with that much evidence (`ErrorCurve`,
    measured on users held out of training), so one liked title honestly gives a wide interval;
  - a reason built only from facts: the item's own genres / director / cast / keywords that it shares with the
    session's evidence, and which evidence pulled the prediction up or down.

Wiring (for the engine/UI): build once per app `model = BiasedMF(scale).fit(dataset.ratings, len(catalog))`
(~3 s on 100k ratings) and `curve = ErrorCurve.measure(...)` (or `ErrorCurve.default()`), then per question
`predict_rating(model, catalog, session.liked, session.disliked, session.ratings, item_id, curve=curve)`;
`predict_many` fills card badges (`Prediction.match`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from retrieval import rx
from retrieval.rating_models import RatingModel, RatingModelError
from retrieval.types import Catalog, Item, Ratings, UnknownItemError

from . import prompts

Z80 = 1.2816  # two-sided 80 % normal quantile: the interval people read as "probably between"


@dataclass(frozen=True)
class PredictConfig:
    liked_value: float = 4.5  # a liked title counts as this rating (MovieLens users' "liked" ≈ 4–5 stars)
    disliked_value: float = 1.5
    medium_evidence: int = 3  # fewer known titles than this: low confidence
    high_evidence: int = 10
    max_evidence_shown: int = 2


@dataclass(frozen=True)
class ErrorCurve:
    """RMSE of fold-in predictions by how many of the user's ratings were folded in (measured, not assumed)."""

    counts: tuple[int, ...]
    rmse: tuple[float, ...]
    source: str = "measured"

    def __post_init__(self):
        if not self.counts or len(self.counts) != len(self.rmse) or list(self.counts) != sorted(set(self.counts)):
            raise ValueError("ErrorCurve needs increasing, distinct counts with one RMSE each")
        if self.counts[0] != 0:
            raise ValueError("ErrorCurve must start at 0 evidence (the no-information error)")

    def at(self, n: int) -> float:
        """The error for n evidence ratings: the measured point at or just below n (never optimistic)."""
        i = int(np.searchsorted(np.asarray(self.counts), max(0, int(n)), side="right")) - 1
        return float(self.rmse[i])

    @classmethod
    def default(cls) -> "ErrorCurve":
        """BiasedMF on ML-100K, 150 users (≥ 45 ratings) held out of training, fold-in penalties (5, 5): the curve
        `chatrec-eval ratings --dataset ml-100k` prints. Measure on the app's own data when it is fitted."""
        return cls((0, 1, 2, 3, 5, 10, 20, 40), (1.0437, 1.0280, 1.0075, 1.0059, 0.9845, 0.9695, 0.9273, 0.9137),
                   "ML-100K default")

    @classmethod
    def measure(cls, make_model: Callable[[], RatingModel], ratings: Ratings, n_items: int, *,
                counts: Sequence[int] = (0, 1, 2, 3, 5, 10, 20, 40), n_users: int = 150, seed: int = 0,
                min_rest: int = 5) -> "ErrorCurve":
        """Fit on all users but `n_users` random ones; fold each held-out user in from `c` random ratings and score
        their remaining ratings. Users need at least max(counts) + min_rest ratings."""
        counts = tuple(sorted(set(int(c) for c in counts)))
        per_user = np.bincount(ratings.user, minlength=ratings.n_users)
        eligible = np.flatnonzero(per_user >= counts[-1] + min_rest)
        if len(eligible) < 2:
            raise RatingModelError(f"too few users with ≥ {counts[-1] + min_rest} ratings to measure an error curve")
        rng = np.random.default_rng(seed)
        held = rng.choice(eligible, size=min(n_users, len(eligible) // 2), replace=False)
        mask = np.isin(ratings.user, held)
        model = make_model().fit(ratings.subset(~mask), n_items)
        order = np.argsort(ratings.user, kind="stable")
        bounds = np.searchsorted(ratings.user[order], np.arange(ratings.n_users + 1))
        sq: dict[int, list[np.ndarray]] = {c: [] for c in counts}
        for u in held:
            idx = rng.permutation(order[bounds[u]:bounds[u + 1]])
            for c in counts:
                ev, rest = idx[:c], idx[c:]
                f = model.fold_in(ratings.item[ev], ratings.rating[ev])
                sq[c].append((model.predict_folded(f, ratings.item[rest]) - ratings.rating[rest]) ** 2)
        rmse = tuple(float(np.sqrt(np.concatenate(sq[c]).mean())) for c in counts)
        # More evidence never makes the *reported* error larger (sampling noise can): keep the curve monotone.
        return cls(counts, tuple(np.minimum.accumulate(rmse).tolist()))


@dataclass(frozen=True)
class Evidence:
    item_id: str
    label: str
    kind: str  # "liked" | "disliked" | "rated"
    value: float
    shared: tuple[tuple[str, str], ...] = ()  # (kind, value): genre/director/actor/keyword the target also has
    effect: float = 0.0  # how much this title moves the prediction (with it − without it), in stars


@dataclass(frozen=True)
class Prediction:
    item_id: str
    label: str
    rating: float  # 1–5
    low: float
    high: float
    average: float  # what the model predicts for someone it knows nothing about
    confidence: str  # "low" | "medium" | "high" | "own" (the user already rated it)
    n_evidence: int  # session titles the model could use
    item_known: bool  # the item has ratings in the model's data
    evidence: tuple[Evidence, ...] = ()
    reasons: Mapping[str, str] = field(default_factory=dict)

    def reason(self, lang: str) -> str:
        return self.reasons["ko" if lang == "ko" else "en"]

    @property
    def match(self) -> int:
        """0–100 for a card badge: where the predicted rating sits on the 1–5 scale."""
        return int(round(100 * (min(5.0, max(1.0, self.rating)) - 1.0) / 4.0))


# --- evidence ---------------------------------------------------------------------------------------------------

def _session_evidence(catalog: Catalog, liked: Sequence[str], disliked: Sequence[str],
                      rated: Mapping[str, float], cfg: PredictConfig) -> list[tuple[str, str, float]]:
    """(id, kind, value) per distinct catalog id; an explicit rating beats a like/dislike, a later list wins."""
    out: dict[str, tuple[str, float]] = {}
    for i in liked:
        out[str(i)] = ("liked", cfg.liked_value)
    for i in disliked:
        out[str(i)] = ("disliked", cfg.disliked_value)
    for i, v in rated.items():
        v = float(v)
        if not np.isfinite(v) or not 0.5 <= v <= 5.0:
            raise RatingModelError(f"rating for {i!r} must be between 0.5 and 5, got {v}")
        out[str(i)] = ("rated", v)
    return [(i, k, v) for i, (k, v) in out.items() if i in catalog]


_NOT_FACTS = {"imax"}  # a screen format, listed as a genre in MovieLens: true of the item, but no reason to like it


def _norm(text: str) -> str:
    return rx.sub(r"[^0-9a-z가-힣]", "", text.lower())


def _keywords(item: Item) -> list[str]:
    """Keywords and tags that say more than the item's genres ("sci-fi" on a Sci-Fi film adds nothing)."""
    genres = {_norm(g) for g in item.genres}
    kws = list(item.keywords)
    out = kws + [t for t in item.tags if t not in kws]
    return [k for k in out if _norm(k) not in genres and _norm(k) not in _NOT_FACTS]


def shared_facts(src: Item, target: Item) -> tuple[tuple[str, str], ...]:
    """What `target` shares with `src`, strongest kind first; values are spelled as the target's facts spell them."""
    out: list[tuple[str, str]] = []
    for kind, a, b in (("director", src.directors, target.directors), ("author", src.authors, target.authors),
                       ("actor", src.actors[:6], target.actors[:6]), ("keyword", _keywords(src), _keywords(target)),
                       ("genre", src.genres, [g for g in target.genres if g.lower() not in _NOT_FACTS])):
        low = {x.lower() for x in a}
        out += [(kind, x) for x in b if x.lower() in low]
    return tuple(out)


def _effects(model: RatingModel, rows: np.ndarray, vals: np.ndarray, trows: np.ndarray, pred: np.ndarray
             ) -> np.ndarray:
    """[n_evidence, n_targets]: how much each piece of evidence moves each prediction (the prediction minus the
    prediction folded in without it) — the model's own account of which title pulled up or down."""
    out = np.zeros((len(rows), len(trows)))
    for j in range(len(rows)):
        keep = np.arange(len(rows)) != j
        out[j] = pred - model.predict_folded(model.fold_in(rows[keep], vals[keep]), trows)
    return out


def _rank_evidence(catalog: Catalog, target: Item, ev: list[tuple[str, str, float]], effects: np.ndarray
                   ) -> list[Evidence]:
    out = [Evidence(i, catalog[i].label, kind, v, shared_facts(catalog[i], target), float(d))
           for (i, kind, v), d in zip(ev, effects)]
    strength = {"director": 5, "author": 5, "actor": 3, "keyword": 2, "genre": 1}
    # The biggest pull first; among equal pulls (e.g. none: an unrated target) the most telling shared fact.
    return sorted(out, key=lambda e: (-round(abs(e.effect), 2), -max((strength[k] for k, _ in e.shared), default=0)))


def _shown(ranked: list[Evidence], n: int) -> tuple[Evidence, ...]:
    """The strongest evidence always (it is the reason); more only when they also move the prediction."""
    return tuple(ranked[:1]) + tuple(e for e in ranked[1:n] if abs(e.effect) >= 0.05)


# --- the prediction ---------------------------------------------------------------------------------------------

def _check_model(model: RatingModel, catalog: Catalog) -> None:
    if getattr(model, "n_items", len(catalog)) != len(catalog):
        raise RatingModelError(f"the rating model was fitted on {getattr(model, 'n_items', '?')} items but the "
                               f"catalog has {len(catalog)}; fit it on this catalog's rows")


def predict_many(model: RatingModel, catalog: Catalog, liked: Sequence[str], disliked: Sequence[str],
                 rated: Mapping[str, float], item_ids: Sequence[str], *, curve: ErrorCurve | None = None,
                 config: PredictConfig = PredictConfig()) -> list[Prediction]:
    """One Prediction per id (fold-in done once). Unknown ids raise UnknownItemError naming the id."""
    _check_model(model, catalog)
    curve = curve or ErrorCurve.default()
    ev = _session_evidence(catalog, liked, disliked, rated, config)
    rows = catalog.rows([i for i, _, _ in ev]) if ev else np.zeros(0, dtype=np.int64)
    vals = np.array([v for _, _, v in ev], dtype=np.float64)
    lo_s, hi_s = model.scale
    vals = np.clip(vals, lo_s, hi_s)
    user = model.fold_in(rows, vals)
    nobody = model.fold_in(np.zeros(0, dtype=np.int64), np.zeros(0))
    n_known = int(sum(model.knows_item(int(r)) for r in rows))
    targets = [catalog[str(i)] for i in item_ids]  # UnknownItemError names a bad id
    trows = catalog.rows([t.id for t in targets]) if targets else np.zeros(0, dtype=np.int64)
    pred = model.predict_folded(user, trows) if len(trows) else np.zeros(0)
    avg = model.predict_folded(nobody, trows) if len(trows) else np.zeros(0)
    effects = _effects(model, rows, vals, trows, pred)
    own = {i: (k, v) for i, k, v in ev}
    out = []
    for n, (t, r, p, a) in enumerate(zip(targets, trows, pred, avg)):
        known = model.knows_item(int(r))
        if t.id in own and own[t.id][0] == "rated":
            v = own[t.id][1]
            out.append(_own(t, v, float(a), known, n_known))
            continue
        err = curve.at(n_known if known else 0)  # unrated item: only the user bias applies, so the widest error
        p = float(np.clip(p, 1.0, 5.0))
        conf = ("low" if n_known < config.medium_evidence or not known else
                "medium" if n_known < config.high_evidence else "high")
        ranked = _rank_evidence(catalog, t, ev, effects[:, n])
        pred_ = Prediction(t.id, t.label, p, max(1.0, p - Z80 * err), min(5.0, p + Z80 * err), float(a), conf,
                           n_known, known, _shown(ranked, config.max_evidence_shown))
        out.append(_with_reasons(pred_, t, own.get(t.id)))
    return out


def predict_rating(model: RatingModel, catalog: Catalog, liked: Sequence[str], disliked: Sequence[str],
                   rated: Mapping[str, float], item_id: str, *, curve: ErrorCurve | None = None,
                   config: PredictConfig = PredictConfig()) -> Prediction:
    """The session's predicted rating for `item_id` with its interval, confidence and grounded reasons (KO, EN)."""
    if str(item_id) not in catalog:
        raise UnknownItemError(f"item {item_id!r} is not in catalog {catalog.name!r}")
    return predict_many(model, catalog, liked, disliked, rated, [str(item_id)], curve=curve, config=config)[0]


def _own(t: Item, v: float, avg: float, known: bool, n: int) -> Prediction:
    reasons = {"en": f"You rated {t.label} {v:g}/5 yourself; the average viewer gives it {avg:.1f}.",
               "ko": f"{t.label}: 직접 {v:g}점을 주셨어요. 보통 관객 평균은 {avg:.1f}점이에요."}
    return Prediction(t.id, t.label, v, v, v, avg, "own", n, known, (), reasons)


# --- reasons (facts only) ---------------------------------------------------------------------------------------

_KIND_EN = {"director": "directed by {}", "author": "by {}", "actor": "with {}"}  # after "Like X, which you liked:"
_KIND_KO = {"director": "{} 감독", "author": "{} 작가", "actor": "{} 출연"}


def _facts(shared: Sequence[tuple[str, str]], lang: str, limit: int = 3) -> str:
    """"directed by X; themes: a, b; Sci-Fi/Thriller" (KO: "X 감독; 주제: a, b; SF·스릴러 장르")."""
    people = [(_KIND_KO if lang == "ko" else _KIND_EN)[k].format(v) for k, v in shared if k in _KIND_EN][:2]
    themes = [v for k, v in shared if k == "keyword"][:2]
    genres = [prompts.genre_name(v, lang) for k, v in shared if k == "genre"][:limit]
    parts = list(people)
    if themes:
        parts.append(("주제: " if lang == "ko" else "themes: ") + ", ".join(themes))
    if genres:
        parts.append(("·" if lang == "ko" else "/").join(genres) + (" 장르" if lang == "ko" else ""))
    return "; ".join(parts[:limit])


def _with_reasons(p: Prediction, t: Item, own: tuple[str, float] | None) -> Prediction:
    en, ko = [], []
    en.append(f"Predicted {p.rating:.1f}/5 for {t.label} (probably {p.low:.1f}–{p.high:.1f}); "
              f"the average viewer gives it {p.average:.1f}.")
    ko.append(f"{t.label} 예상 평점 {p.rating:.1f}/5 (대략 {p.low:.1f}–{p.high:.1f}), 보통 관객 평균은 {p.average:.1f}점이에요.")
    if own is not None:
        word_en = "liked" if own[0] == "liked" else "disliked"
        en.append(f"You already told me you {word_en} it.")
        ko.append("이미 " + ("좋았다고" if own[0] == "liked" else "별로였다고") + " 말씀하신 작품이에요.")
    for e in p.evidence:
        if e.item_id == t.id:
            continue
        verb_en = {"liked": "you liked", "disliked": "you disliked", "rated": f"you rated {e.value:g}/5"}[e.kind]
        verb_ko = {"liked": "좋아하신", "disliked": "별로라고 하신", "rated": f"{e.value:g}점 주신"}[e.kind]
        pull = f" ({e.effect:+.1f})" if abs(e.effect) >= 0.05 else ""
        if e.shared:
            en.append(f"Like {e.label}, which {verb_en}: {_facts(e.shared, 'en')}{pull}.")
            ko.append(f"{verb_ko} {e.label} — 공통점: {_facts(e.shared, 'ko')}{pull}.")
        elif pull:  # no shared fact: the pull comes from how the same viewers rated both
            up = e.effect > 0
            alike = up == (e.value >= 3.0)  # a liked title pulling up, or a disliked one pulling down
            en.append(f"{e.label}, which {verb_en}, {'raises' if up else 'lowers'} it: the same viewers rate the "
                      f"two {'alike' if alike else 'differently'}{pull}.")
            ko.append(f"{verb_ko} {e.label} — 같은 관객들이 두 작품을 {'비슷하게' if alike else '다르게'} 평가해서 "
                      f"예상 점수를 {'올려요' if up else '낮춰요'}{pull}.")
    if not p.item_known:
        en.append("Nobody in the ratings data has rated this title, so this is only your usual rating.")
        ko.append("평점 데이터에 이 작품 평가가 없어서, 평소 주시는 점수로만 추정했어요.")
    elif p.n_evidence == 0:
        en.append("I don't know your taste yet, so this is the average viewer's rating: tell me a few titles you "
                  "liked or disliked.")
        ko.append("아직 취향을 몰라서 평균 관객 기준이에요. 좋았던 작품이나 별로였던 작품을 몇 개 알려 주세요.")
    elif p.confidence == "low":
        en.append(f"Based on only {p.n_evidence} title{'s' if p.n_evidence != 1 else ''} from you: a rough guess.")
        ko.append(f"알려주신 작품이 {p.n_evidence}편뿐이라 대략적인 추정이에요.")
    return Prediction(p.item_id, p.label, p.rating, p.low, p.high, p.average, p.confidence, p.n_evidence,
                      p.item_known, p.evidence, {"en": " ".join(en), "ko": " ".join(ko)})


__all__ = ["ErrorCurve", "Evidence", "PredictConfig", "Prediction", "predict_many", "predict_rating",
           "shared_facts"]
