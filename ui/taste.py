"""The taste panel's content: what the user marked (liked / disliked / seen) as choices to undo, and the Markdown
export of the cards on screen and those lists. Pure functions of the session and a catalog lookup."""
from __future__ import annotations

from typing import Any, Callable, Sequence

from chatrec.explain import display_title

from .i18n import t

MARK_ICONS = {"liked": "👍", "disliked": "👎", "seen": "👁"}
MAX_SHOWN_MARKS = 200  # entries listed in the panel (the session keeps its own capped lists)


def _label(item: Any, lang: str) -> str:
    title = display_title(item, lang)
    return f"{title} ({item.year})" if item.year else title


def marked_choices(session: Any, item_of: Callable[[str], Any], lang: str) -> list[tuple[str, str]]:
    """(label, item id) for every marked title, most recent first within each list: "👍 매트릭스 (1999)"."""
    out: list[tuple[str, str]] = []
    for name, icon in MARK_ICONS.items():
        for item_id in reversed(getattr(session, name)):
            it = item_of(item_id)
            if it is not None and len(out) < MAX_SHOWN_MARKS:
                out.append((f"{icon} {_label(it, lang)}", item_id))
    return out


def _md(text: str) -> str:
    """Text safe inside a Markdown list item: no markup characters take effect."""
    return "".join("\\" + ch if ch in "\\`*_[]<>#|" else ch for ch in " ".join(text.split()))


def export_markdown(cards: Sequence[Any], session: Any, item_of: Callable[[str], Any], lang: str) -> str:
    """The recommendations on screen (with their reasons and links) and the marked lists, as Markdown."""
    lines = ["# Chat-REC", "", f"## {t('recs_list', lang)}", ""]
    for n, c in enumerate(cards, 1):
        it = item_of(c.item_id)
        title = _label(it, lang) if it is not None else c.label
        links = []
        if it is not None and it.tmdb_id:
            links.append(f"[TMDB](https://www.themoviedb.org/movie/{it.tmdb_id})")
        if it is not None and it.imdb_id:
            links.append(f"[IMDb](https://www.imdb.com/title/{it.imdb_id}/)")
        lines.append(f"{n}. **{_md(title)}** — {_md(c.reason)}" + (f" ({' · '.join(links)})" if links else ""))
    for name, key in (("liked", "liked_list"), ("disliked", "disliked_list"), ("seen", "seen_list")):
        ids = [i for i in getattr(session, name) if item_of(i) is not None]
        if ids:
            lines += ["", f"## {MARK_ICONS[name]} {t(key, lang)}", ""]
            lines += [f"- {_md(_label(item_of(i), lang))}" for i in ids]
    return "\n".join(lines) + "\n"
