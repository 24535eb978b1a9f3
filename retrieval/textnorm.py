"""Text that enters from outside, made safe twice over: once for display and storage, once for matching.

`clean_text` keeps what the user wrote but makes it valid, printable text: lone surrogates become U+FFFD (one of
them in a stored message made every later response of that session fail to encode), line-breaking controls
become spaces, invisible fillers and bidi/zero-width format characters go. It never changes letters.

`fold_for_matching` is for comparing, never for showing: NFKC (full-width "Ｍａｔｒｉｘ" → "Matrix", ligatures,
compatibility forms) plus a fold of Greek and Cyrillic letters that look Latin, where the text around them is
Latin ("Mаtrix" with a Cyrillic "а" → "Matrix"; a Russian word stays Russian).
"""
from __future__ import annotations

import unicodedata

from . import rx

REPLACEMENT = "\ufffd"

# Controls and separators that break a line or a page: a word boundary, so they become a space, not nothing.
_SPACE_LIKE = {ord(c): " " for c in "\t\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029"}
_SPACE_LIKE.update({ord("\r"): "\n"})
# Letters and symbols that render as nothing (Hangul fillers, braille blank) and are used to fake empty names.
_FILLERS = {ord(c): None for c in "\u115f\u1160\u3164\uffa0\u2800\u180e"}
_CLEAN_TABLE = {**_SPACE_LIKE, **_FILLERS}

# Greek and Cyrillic letters that render like a Latin letter (Unicode confusables, the unambiguous subset).
_CONFUSABLES = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ү": "y",
    "һ": "h", "ɡ": "g", "ո": "n", "ս": "u", "օ": "o",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "Х": "X", "У": "Y", "І": "I", "Ј": "J", "Ѕ": "S", "Ԛ": "Q", "Ԝ": "W", "Ү": "Y", "Ӏ": "I",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "α": "a", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "υ": "u", "χ": "x", "ϲ": "c", "ϳ": "j",
    # Latin look-alikes outside ASCII
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɩ": "i", "ʏ": "y",
})
_CONFUSABLE_CHARS = frozenset(chr(k) for k in _CONFUSABLES)
_WORD = rx.compile(r"\w+")
_ASCII_LETTER = rx.compile(r"[A-Za-z]")
_GREEK_CYRILLIC = rx.compile(r"[\u0370-\u03ff\u0400-\u052f]")


def valid_text(value: object) -> str:
    """Any value → a str that encodes as UTF-8: lone surrogates become U+FFFD, a valid pair becomes its character."""
    text = "" if value is None else value if isinstance(value, str) else str(value)
    if text.isascii():
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


# Terminal escape sequences, whole: DCS / SOS / PM / APC strings (sixel graphics) and OSC up to their terminator,
# CSI with its parameters, and two-character escapes; the C1 forms of the same introducers.
_TERMINAL_ESCAPE = rx.compile(r"(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?"
                              r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
                              r"|(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
                              r"|\x1b[\x20-\x7e]?")


def clean_text(value: object) -> str:
    """Display-safe text: valid Unicode (NFC), no invisible or control characters but newlines; spacing kept."""
    text = valid_text(value)
    if "\x1b" in text or any("\x80" <= ch <= "\x9f" for ch in text):
        text = _TERMINAL_ESCAPE.sub("", text)  # a pasted escape sequence is no words (a sixel "#1" is no card)
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n")).translate(_CLEAN_TABLE)
    if text.isascii() and text.isprintable():
        return text
    # Remaining controls (NUL, DEL, C1), format characters (zero-width, bidi overrides), private use, unassigned.
    return "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch)[0] != "C")


def fold_for_matching(text: str) -> str:
    """NFKC plus a Latin fold of look-alike letters. For matching only, never display.

    A word is folded when it mixes Latin and look-alike letters ("Mаtrix"), or when it is made only of look-alikes
    in a text that is otherwise Latin ("Тоу Story"); a text with other Greek or Cyrillic letters ("Матрица") is
    left as written."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", valid_text(text))
    if not _CONFUSABLE_CHARS.intersection(text):
        return text
    latin_text = bool(_ASCII_LETTER.search(text)) and not any(
        _GREEK_CYRILLIC.match(ch) and ch not in _CONFUSABLE_CHARS for ch in text)

    def fold(m) -> str:
        word = m.group(0)
        if _ASCII_LETTER.search(word) or (latin_text and all(ch.isascii() or ch in _CONFUSABLE_CHARS
                                                               for ch in word)):
            return word.translate(_CONFUSABLES)
        return word

    return _WORD.sub(fold, text)
