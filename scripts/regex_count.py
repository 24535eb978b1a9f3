"""How much of the understanding is written as regular expressions: patterns and alternatives in the code.

    python scripts/regex_count.py [ROOT ...]      # default: this checkout; give another checkout to compare

Counts, in chatrec/ and retrieval/ (the offline eval harness aside), every string literal passed to a regex call
(`re.` or `rx.` compile / search / match / fullmatch / finditer / findall / sub / split) and the `|` alternatives
inside them. Vocabulary kept as data (YAML lexicons) is not counted: that is the point.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

FUNCS = {"compile", "search", "match", "fullmatch", "finditer", "findall", "sub", "split"}


def count(root: Path) -> tuple[int, int, dict[str, int]]:
    patterns = alternatives = 0
    per_file: dict[str, int] = {}
    for d in ("chatrec", "retrieval"):
        for path in sorted((root / d).rglob("*.py")):
            rel = str(path.relative_to(root))
            if rel.startswith("chatrec/eval/"):
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            n = 0
            for node in ast.walk(tree):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in FUNCS
                        and isinstance(node.func.value, ast.Name) and node.func.value.id in ("re", "rx")
                        and node.args):
                    try:
                        value = ast.literal_eval(node.args[0])
                    except ValueError:
                        continue
                    if isinstance(value, str):
                        patterns += 1
                        n += value.count("|")
            if n:
                per_file[rel] = n
            alternatives += n
    return patterns, alternatives, per_file


def main(argv=None) -> int:
    roots = [Path(a) for a in (argv if argv is not None else sys.argv[1:])] or [Path(__file__).resolve().parents[1]]
    for root in roots:
        p, a, per = count(root)
        print(f"{root}: {p} patterns, {a} alternatives")
        for f, n in sorted(per.items(), key=lambda x: -x[1])[:8]:
            print(f"  {n:5d}  {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
