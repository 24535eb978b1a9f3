"""The vocabulary as data: retrieval/data/lexicon.yaml, validated by one schema and loaded once.

retrieval/lang.py builds its lexicons (genres, tones, themes, countries, domain and filler words) from this; no
word list lives in code.
"""
from __future__ import annotations

import functools
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

LEXICON_PATH = Path(__file__).with_name("data") / "lexicon.yaml"
MOVIELENS_GENRES = ("Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
                    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War",
                    "Western")


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    en: tuple[str, ...] = ()
    ko: tuple[str, ...] = ()

    @property
    def words(self) -> tuple[str, ...]:
        return self.en + self.ko

    @field_validator("en", "ko")
    @classmethod
    def _no_blank(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if any(not w.strip() for w in v):
            raise ValueError("blank word")
        return v


class Genre(_Entry):
    name_ko: str = ""


class Tone(_Entry):
    label_en: str
    label_ko: str
    prefer: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()
    demote: tuple[str, ...] = ()
    core: tuple[str, ...] = ()
    search: str = ""
    demote_keywords: tuple[str, ...] = ()


class Theme(_Entry):
    keywords: tuple[str, ...]


class Country(_Entry):
    industry: tuple[str, ...] = ()  # names of the country's film industry: films by themselves ("Bollywood")
    language: str

    @property
    def words(self) -> tuple[str, ...]:
        return self.en + self.ko + self.industry
    name_en: str
    name_ko: str


class Words(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ko_stop_nouns: tuple[str, ...]
    ko_common_aliases: tuple[str, ...]
    ko_title_cues: tuple[str, ...]
    en_stop: tuple[str, ...]
    ko_filler: tuple[str, ...]
    en_filler: tuple[str, ...]


class Lexicon(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    genres: dict[str, Genre]
    tones: dict[str, Tone]
    themes: dict[str, Theme]
    countries: dict[str, Country]
    domain_words: dict[str, _Entry]
    genre_names_ko: dict[str, str] = Field(default_factory=dict)
    words: Words

    @field_validator("genres")
    @classmethod
    def _known_genres(cls, v: dict[str, Genre]) -> dict[str, Genre]:
        bad = [k for k in v for g in k.split("+") if g not in MOVIELENS_GENRES]
        if bad:
            raise ValueError(f"not MovieLens genres: {bad}")
        return v

    @field_validator("tones")
    @classmethod
    def _tone_genres(cls, v: dict[str, Tone]) -> dict[str, Tone]:
        for key, t in v.items():
            bad = [g for g in t.prefer + t.avoid + t.demote + t.core if g not in MOVIELENS_GENRES]
            if bad:
                raise ValueError(f"tone {key}: not MovieLens genres: {bad}")
        return v


@functools.lru_cache(maxsize=2)
def load(path: Path = LEXICON_PATH) -> Lexicon:
    return Lexicon.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
