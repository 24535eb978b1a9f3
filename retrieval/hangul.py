"""Hangul helpers for title matching: jamo decomposition, letter-by-letter romanisation and phonetic keys.

Korean writes foreign titles by sound ("인터스텔라" = Interstellar, "매트릭스" = The Matrix). Matching them needs a
key that Hangul and English spellings share. Revised Romanization libraries (hangul-romanize, korean-romanizer)
spell Korean *as Korean* ("maeteuriseu"), which is far from "matrix"; what works is reducing both sides to coarse
consonant classes, with a V for each vowel group:

    매트릭스 → M V T L V K S        matrix → M V T L V K S

The classes merge sounds that Korean does not tell apart or transcribes interchangeably (r/l, p/b/f/v, k/g/c/q,
s/z/j/ch/sh/th, t/d). Epenthetic ㅡ (the vowel Korean inserts in consonant clusters, "스" in 매트릭스) and English
r after a vowel ("inter", "stellar" → 인터, 스텔라) are dropped because the other side has no counterpart.

`romanise` is plain letter-by-letter Revised Romanization, without sound changes, because that is how MovieLens
spells the original titles of Korean films ("Salinui chueok" = 살인의 추억, "Bakjwi" = 박쥐). Hangul syllables are
decomposed arithmetically (Unicode lays them out as initial × medial × final), so no library is needed.
"""
from __future__ import annotations

import itertools
import unicodedata

from . import rx

_S_BASE, _S_LAST = 0xAC00, 0xD7A3
_N_MEDIAL, _N_FINAL = 21, 28

_RR_INITIAL = ("g", "kk", "n", "d", "tt", "r", "m", "b", "pp", "s", "ss", "", "j", "jj", "ch", "k", "t", "p", "h")
_RR_MEDIAL = ("a", "ae", "ya", "yae", "eo", "e", "yeo", "ye", "o", "wa", "wae", "oe", "yo", "u", "wo", "we", "wi",
              "yu", "eu", "ui", "i")
_RR_FINAL = ("", "k", "kk", "ks", "n", "nj", "nh", "t", "l", "lk", "lm", "lb", "ls", "lt", "lp", "lh", "m", "p",
             "ps", "t", "t", "ng", "t", "t", "k", "t", "p", "t")

# Phonetic classes: K (k g c q), T (t d), P (p b f v), S (s z j ch sh th), L (r l), M, N (n ng), H.
_PH_INITIAL = ("K", "K", "N", "T", "T", "L", "M", "P", "P", "S", "S", "", "S", "S", "S", "K", "T", "P", "H")
# Final ㅅ/ㅆ/ㅈ/ㅊ/ㅌ are all "t" in loanwords (겟 = get, 로봇 = robot); final ㅇ is "ng".
_PH_FINAL = ("", "K", "K", "KS", "N", "NS", "N", "T", "L", "LK", "LM", "LP", "LS", "LT", "LP", "L", "M", "P",
             "PS", "T", "T", "N", "T", "T", "K", "T", "P", "")
_EU = 18  # ㅡ: the epenthetic vowel

_HANGUL_RE = rx.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LATIN_WORD_RE = rx.compile(r"[a-z]+|\d+")
_VOWELS = set("aeiouy")


def is_syllable(ch: str) -> bool:
    return _S_BASE <= ord(ch) <= _S_LAST


def has_hangul(text: str) -> bool:
    return bool(_HANGUL_RE.search(text))


def _parts(ch: str) -> tuple[int, int, int]:
    code = ord(ch) - _S_BASE
    return code // (_N_MEDIAL * _N_FINAL), (code % (_N_MEDIAL * _N_FINAL)) // _N_FINAL, code % _N_FINAL


def jamo(text: str) -> str:
    """Decompose syllables into conjoining jamo, so edit distances count letters, not whole syllables
    ("제왕" vs "재왕" differ by one of six letters rather than one of two characters)."""
    return unicodedata.normalize("NFD", text)


def romanise(text: str) -> str:
    """Letter-by-letter Revised Romanization ("살인의 추억" → "salinui chueok"); other characters pass through."""
    out = []
    for ch in text:
        if is_syllable(ch):
            i, m, f = _parts(ch)
            out.append(_RR_INITIAL[i] + _RR_MEDIAL[m] + _RR_FINAL[f])
        else:
            out.append(ch)
    return "".join(out)


def squeeze(text: str) -> str:
    """Runs of one character as one ("interstellar" → "interstelar")."""
    return "".join(ch for ch, _ in itertools.groupby(text))


def _collapse(key: str) -> str:
    """Merge repeats of a class ("LL" → "L"): doubled letters and ㄹㄹ are one sound."""
    return squeeze(key)


def _hangul_word_key(word: str) -> str:
    out = []
    for ch in word:
        if not is_syllable(ch):
            continue
        i, m, f = _parts(ch)
        out.append(_PH_INITIAL[i])
        if m != _EU:
            out.append("V")
        out.append(_PH_FINAL[f])
    return "".join(out)


def _english_word_key(word: str) -> str:
    if word.isdigit():
        return word
    if word == "the":  # "back to the future" → 백 투 더 퓨처: a stop, not the "th" of "three"
        return "TV"
    w = squeeze(word)  # "interstellar" → "interstelar"
    if len(w) > 3 and w.endswith("e") and w[-2] not in _VOWELS:
        w = w[:-1]  # silent final e: "game" → 게임
    out: list[str] = []
    i, n = 0, len(w)
    while i < n:
        c = w[i]
        nxt = w[i + 1] if i + 1 < n else ""
        two = w[i:i + 2]
        if w.startswith("tion", i) or w.startswith("tian", i):
            out.append("SVN"); i += 4; continue  # "-tion", "martian" → 션
        if w.startswith("tch", i):
            out.append("S"); i += 3; continue
        if w.startswith("sch", i):
            out.append("SK"); i += 3; continue
        if two == "ch":
            out.append("K" if w[i + 2:i + 3] == "r" else "S"); i += 2; continue
        if two in ("sh", "th"):
            out.append("S"); i += 2; continue
        if two == "ph":
            out.append("P"); i += 2; continue
        if two == "gh":
            out.append("K" if i == 0 else ""); i += 2; continue
        if two in ("ck", "qu"):
            out.append("K"); i += 2; continue
        if two == "wh":
            i += 2; continue  # "whiplash" → 위플래쉬
        if two == "kn" and i == 0:
            out.append("N"); i += 2; continue
        if two == "ng" and (i + 2 >= n or w[i + 2] not in _VOWELS):
            out.append("N"); i += 2; continue
        if c in "aeiou":
            out.append("V")
        elif c == "y":
            out.append("" if nxt in _VOWELS else "V")
        elif c == "w":
            pass  # a glide: Korean folds it into the vowel (워, 와)
        elif c == "r":
            # English r after a vowel and before a consonant or the end is silent in Korean transcription.
            if i > 0 and w[i - 1] in _VOWELS and (not nxt or nxt not in _VOWELS):
                pass
            else:
                out.append("L")
        elif c == "l":
            out.append("L")
        elif c == "x":
            out.append("KS")
        elif c == "c":
            out.append("S" if nxt in ("e", "i", "y") else "K")
        elif c == "g":
            # soft before e/y inside a word ("avengers" → 어벤져스); "gi" is as often hard ("begins") as soft
            out.append("S" if i > 0 and nxt in ("e", "y") else "K")
        elif c in "kq":
            out.append("K")
        elif c in "td":
            out.append("T")
        elif c in "pbfv":
            out.append("P")
        elif c in "sjz":
            out.append("S")
        elif c == "h":
            # silent after a vowel unless a vowel follows ("john" → 존, "ahead" keeps it)
            if not (i > 0 and w[i - 1] in _VOWELS and nxt not in _VOWELS):
                out.append("H")
        elif c in "mn":
            out.append(c.upper())
        elif c.isdigit():
            out.append(c)
        i += 1
    return "".join(out)


def phonetic_key(text: str) -> str:
    """Consonant classes with "V" per vowel group, for English, Hangul or mixed text ("매트릭스 reloaded").

    Spaces are dropped: Korean spacing of transcribed titles is unreliable ("토이스토리" / "토이 스토리").
    """
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = unicodedata.normalize("NFC", text)
    parts: list[str] = []
    for token in rx.findall(r"[\uac00-\ud7a3]+|[a-z]+|\d+", text):
        parts.append(_hangul_word_key(token) if is_syllable(token[0]) else _english_word_key(token))
    return _collapse("".join(parts))


def skeleton(key: str) -> str:
    """A phonetic key without its vowels: tolerant to the vowel spellings Korean and English disagree on."""
    return _collapse(key.replace("V", ""))
