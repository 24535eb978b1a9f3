"""The typed request: what a user turn asks for. Every step after understanding reads this, never the raw text.

Two parts:
- `Wish`: what the items should be like (domain, genres as a conjunction, excluded genres, people, origin,
  period, tone, themes, free text, items to leave out, items the request is about). It is also the dialogue
  state: the session keeps the last effective Wish, and a follow-up refines it (chatrec/state.py).
- `Request`: the turn itself: intent, references to items with a polarity (like / dislike / seen / unseen /
  exclude / details / compare), whether it refines, pages or starts over, what could not be found, and the
  decisions taken while reading it (logged, for tuning from data).
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from retrieval.lang import COUNTRY_NAMES, GENRE_KO, TONE_BY_KEY, TONES

Intent = Literal["recommend", "feedback", "details", "compare", "answer", "chitchat", "greeting", "off_topic",
                 "injection", "empty", "emoji", "predict"]
Polarity = Literal["like", "dislike", "seen", "unseen", "exclude", "details", "compare", "neutral"]
Domain = Literal["movie", "book"]
Role = Literal["director", "actor", "writer", "author", "any"]
Question = Literal["director", "cast", "plot", "year", "runtime", "genre", "similar"]

TONE_KO = {t.key: t.label_ko for t in TONES}
TONE_EN = {t.key: t.label_en for t in TONES}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ItemRef(_Model):
    """An item the user talked about, resolved to a catalog id."""

    item_id: str
    polarity: Polarity = "neutral"
    via: Literal["title", "ordinal", "focus", "option", "ui"] = "title"
    text: str = ""  # the words that named it (sanitised)
    series: bool = False  # "the Avengers series": the whole franchise


class PersonRef(_Model):
    name: str  # as the item data writes it ("Bong Joon-ho")
    role: Role = "any"
    exclude: bool = False


class Wish(_Model):
    domain: Domain = "movie"
    genres: list[str] = Field(default_factory=list)  # all of these
    genres_any: list[str] = Field(default_factory=list)  # at least one of these ("comedy or drama")
    exclude_genres: list[str] = Field(default_factory=list)
    soft_genres: list[str] = Field(default_factory=list)  # a taste stated along the way: weighs, never filters
    people: list[PersonRef] = Field(default_factory=list)
    soft_people: list[str] = Field(default_factory=list)  # liked along the way ("I love Adam Sandler!"): weighs only
    origins: list[str] = Field(default_factory=list)  # ISO country codes, any of them
    exclude_origins: list[str] = Field(default_factory=list)
    year_from: int | None = None
    year_to: int | None = None
    period_label: str = ""  # as the user said it ("1990s", "90년대", "recent")
    tones: list[str] = Field(default_factory=list)  # keys of retrieval.lang.TONES
    themes: list[str] = Field(default_factory=list)  # keys of retrieval.lang.THEME_TERMS
    exclude_themes: list[str] = Field(default_factory=list)
    query: str = ""  # what is left of the wish in the user's words, for the knowledge search
    exclude_ids: list[str] = Field(default_factory=list)  # left out on request ("not the Avengers")
    anchors: list[str] = Field(default_factory=list)  # the items this request is about ("like X")

    @property
    def year_range(self) -> tuple[int, int] | None:
        if self.year_from is None and self.year_to is None:
            return None
        return (self.year_from or 1800, self.year_to or 2100)

    @property
    def has_filters(self) -> bool:
        """Hard constraints on the items (beyond the domain)."""
        return bool(self.genres or self.genres_any or self.exclude_genres or self.year_range or self.origins
                    or self.exclude_origins or self.people or self.themes or self.avoid_genres)

    @property
    def has_any(self) -> bool:
        return self.has_filters or bool(self.tones or self.anchors or self.soft_genres or self.soft_people)

    @property
    def avoid_genres(self) -> tuple[str, ...]:
        """Genres ruled out: asked to exclude, or against a tone ("lighter" rules out war films)."""
        out = list(self.exclude_genres)
        for t in self.tones:
            out += [g for g in TONE_BY_KEY[t].avoid if g not in out and g not in self.genres]
        return tuple(out)

    @property
    def prefer_genres(self) -> tuple[str, ...]:
        out: list[str] = list(self.soft_genres)
        for t in self.tones:
            out += [g for g in TONE_BY_KEY[t].prefer if g not in out]
        return tuple(out)

    @property
    def demote_genres(self) -> tuple[str, ...]:
        out: list[str] = []
        for t in self.tones:
            out += [g for g in TONE_BY_KEY[t].demote if g not in out and g not in self.genres]
        return tuple(out)

    def search_text(self) -> str:
        """English words for the knowledge search: the free text, genres, themes and tone words."""
        words = [self.query] + list(self.genres) + list(self.themes)
        words += [TONE_BY_KEY[t].search for t in self.tones if TONE_BY_KEY[t].search]
        return " ".join(w for w in words if w).strip()

    def labels(self, lang: str) -> list[str]:
        """Human-readable wishes (the session keeps them; explanations quote them)."""
        ko = lang == "ko"
        out = [GENRE_KO.get(g, g) if ko else g for g in self.genres]
        out += [(TONE_KO if ko else TONE_EN).get(t, t) for t in self.tones]
        out += [COUNTRY_NAMES.get(c, (c, c))[1 if ko else 0] for c in self.origins]
        out += [p.name for p in self.people if not p.exclude]
        if self.period_label:
            out.append(self.period_label)
        return out


class Clarification(_Model):
    """A question we asked back: which of `options` (item ids) did the user mean by `text`?"""

    text: str
    options: list[str]
    polarity: Polarity = "like"
    domain: Domain = "movie"
    request: dict | None = None  # the request waiting for the answer (Request.model_dump), completed once answered


class Request(_Model):
    intent: Intent
    language: Literal["en", "ko"] = "en"
    refs: list[ItemRef] = Field(default_factory=list)
    wish: Wish = Field(default_factory=Wish)
    domain_set: bool = False  # the user (or the UI) chose the domain this turn
    refine: bool = False  # a follow-up that changes the last request
    new_topic: bool = False  # starts over
    page: bool = False  # "more" / "다른 거": the same request, next page
    replace: bool = False  # "comedy instead": the turn's genres replace the earlier ones instead of narrowing them
    question: Question | None = None  # what a details turn asks ("who directed it?")
    which_card: bool = False  # a verdict on "that one" with several cards on screen and none in focus: ask which
    unknown: list[str] = Field(default_factory=list)  # title-like words we could not find (sanitised)
    missing: list[str] = Field(default_factory=list)  # titles we know of that the catalog lacks
    clarify: Clarification | None = None
    via: Literal["rules", "llm", "ui"] = "rules"
    act: str = ""  # the dialogue act the learned model read (chatrec/acts.py), "" when it was not asked
    act_sub: str = ""
    unsure: bool = False  # an in-domain line nothing could place: keep the cards and ask how to go on
    # Likes the rules assumed from an item named or pointed at in a request, with no verdict word ("more like the
    # second one", "Aliens?"): a line the act model reads as a question about them takes them back.
    assumed: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)  # decisions taken while reading the turn

    def ids(self, *polarities: str) -> list[str]:
        return [r.item_id for r in self.refs if r.polarity in polarities]

    @property
    def liked(self) -> list[str]:
        return self.ids("like")

    @property
    def disliked(self) -> list[str]:
        return self.ids("dislike")
