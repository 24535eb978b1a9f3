"""Markdown reports with matplotlib PNG plots, shared by every harness command."""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: reports are written on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402


def fmt(v: Any, digits: int = 4) -> str:
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4) -> str:
    head = "| " + " | ".join(headers) + " |"
    sep = "|" + "|".join("---" for _ in headers) + "|"
    body = ["| " + " | ".join(fmt(c, digits) for c in r) + " |" for r in rows]
    return "\n".join([head, sep, *body])


@dataclass
class Report:
    """Collects Markdown sections and figures; `write(out_dir)` saves report.md and the PNGs beside it."""

    title: str
    sections: list[str] = field(default_factory=list)
    _figures: list[tuple[Any, str]] = field(default_factory=list)

    def add(self, markdown: str) -> None:
        self.sections.append(markdown.strip())

    def add_table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = "", digits: int = 4):
        self.add((f"{caption}\n\n" if caption else "") + markdown_table(headers, rows, digits))

    def add_figure(self, fig, name: str, caption: str = "") -> None:
        """`name` is the PNG file name without extension (letters, digits, '-', '_')."""
        self._figures.append((fig, name))
        self.add(f"![{caption or name}]({name}.png)" + (f"\n\n*{caption}*" if caption else ""))

    def write(self, out_dir: Path | str) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for fig, name in self._figures:
            fig.savefig(out / f"{name}.png", dpi=110, bbox_inches="tight")
            plt.close(fig)
        stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
        text = f"# {self.title}\n\n_generated {stamp}_\n\n" + "\n\n".join(self.sections) + "\n"
        path = out / "report.md"
        path.write_text(text, encoding="utf-8")
        return path
