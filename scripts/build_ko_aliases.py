"""Build retrieval/data/ko_aliases_generated.yaml: Korean titles for the catalog's most-rated films, checked.

    python scripts/build_ko_aliases.py --data-dir ../shared/data PROPOSALS.tsv [...]

PROPOSALS.tsv (movielens_id, ko, kind, confidence) are generated proposals: the Korean release title of each of
the 2,500 most-rated ml-latest-small films, one or more forms separated by " | ", whether it transliterates the
English title or translates it, and how sure the proposer was. This script keeps what passes the checks and says
what it dropped and why:
- a translated title proposed with low confidence is dropped (a guessed translation would invent a film name);
- every form must contain Hangul (a number such as "1408" or "2012" is read as a year or a count, and the English
  title finder already knows it);
- a form the curated table (ko_aliases.yaml) already gives to another film is dropped: the curated table wins;
- a form two proposed films share goes to the more-rated one only, unless they share the English title too (the
  remakes *It* 1990 / 2017 are both 그것: the year typed after it chooses);
- a form that is one everyday Korean word (a common noun in Kiwi's dictionary that reads as Korean: 괴물, 개미, 영웅) is marked
  `common`, so inside a message it counts only with a title cue after it ("괴물 같은", "인질 봤어").
"""
from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter, defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from retrieval import lang  # noqa: E402
from retrieval.hangul import is_syllable  # noqa: E402
from retrieval.mentions import looks_native  # noqa: E402
from retrieval.title_resolver import DEFAULT_ALIASES, alias_key, load_aliases  # noqa: E402
from retrieval.titles import normalise_title  # noqa: E402

OUT = ROOT / "retrieval" / "data" / "ko_aliases_generated.yaml"
HEADER = """# Korean titles of the catalog's most-rated films, generated and checked (scripts/build_ko_aliases.py says how):
# proposals of each film's Korean release title, kept when they pass the checks; the curated ko_aliases.yaml wins
# where the two disagree. `common: true` marks a name that is also an everyday word (a title only with a cue).
# Facts about Korean releases, written by the project; keyed by MovieLens movieId (ml-latest-small).
"""


def everyday_word(form: str) -> bool:
    """One common noun in Kiwi's dictionary (NNG) that reads as a Korean word, not a loanword's sound (괴물, 개미,
    영웅; not 콘헤드)."""
    toks = lang.tokens(form)
    return " " not in form.strip() and len(toks) == 1 and toks[0].tag == "NNG" and looks_native(form)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("proposals", nargs="+", type=Path)
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args(argv)
    movies = {int(r["movieId"]): r["title"] for r in
              csv.DictReader((args.data_dir / "ml-latest-small" / "movies.csv").open(encoding="utf-8"))}
    ratings = Counter(int(r["movieId"]) for r in
                      csv.DictReader((args.data_dir / "ml-latest-small" / "ratings.csv").open(encoding="utf-8")))
    curated = load_aliases(DEFAULT_ALIASES[0])
    curated_ids = {e.movielens_id for e in curated if e.movielens_id}
    taken = {alias_key(k): e.movielens_id for e in curated for k in e.ko}
    dropped: Counter = Counter()
    proposals: dict[int, list[str]] = {}
    for path in args.proposals:
        for r in csv.DictReader(path.open(encoding="utf-8"), delimiter="\t", quoting=csv.QUOTE_NONE):
            mid = int(r["movielens_id"])
            if mid in curated_ids or mid not in movies:
                dropped["already curated or not in the catalog"] += 1
                continue
            if r["kind"] != "translit" and r["confidence"] == "low":
                dropped["translated title proposed with low confidence"] += 1
                continue
            forms = [f.strip() for f in r["ko"].split("|") if f.strip()]
            ok = [f for f in forms if any(is_syllable(ch) for ch in f)]
            dropped["form without Hangul"] += len(forms) - len(ok)
            proposals[mid] = ok
    owners: dict[str, list[int]] = defaultdict(list)
    for mid, forms in proposals.items():
        for f in forms:
            owners[alias_key(f)].append(mid)
    entries = []
    for mid in sorted(proposals, key=lambda m: -ratings[m]):
        forms = []
        for f in proposals[mid]:
            k = alias_key(f)
            if k in taken and taken[k] != mid:
                dropped["the curated table names another film so"] += 1
            elif (max(owners[k], key=lambda m: ratings[m]) != mid
                  and not any(normalise_title(movies[o])[0] == normalise_title(movies[mid])[0] for o in owners[k]
                              if o != mid)):
                dropped["shared with a more-rated film"] += 1
            elif f not in forms:
                forms.append(f)
        if not forms:
            continue
        title, year, _ = normalise_title(movies[mid])
        e = {"movielens_id": mid, "title": title, "year": year, "ko": forms}
        if all(everyday_word(f) for f in forms):
            e["common"] = True
        entries.append(e)
    OUT.write_text(HEADER + yaml.safe_dump({"aliases": entries}, allow_unicode=True, sort_keys=False, width=118),
                   encoding="utf-8")
    print(f"kept {len(entries)} films ({sum(len(e['ko']) for e in entries)} names, "
          f"{sum(1 for e in entries if e.get('common'))} everyday-word names) → {OUT}")
    for why, n in dropped.most_common():
        print(f"  dropped {n}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
