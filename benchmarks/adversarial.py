"""Worst-case time of one message: the understanding and the whole turn over adversarial shapes.

Shapes are generated, not hand-picked phrases: long runs in each script without spaces or punctuation, repeated cue
and negation words (both languages), nested brackets and quotes, long lists of titles / genres / years, markup,
control characters, and random mixes, each at several lengths up to the textbox's 2,000 characters. For each
message: the understanding alone (`Understander.understand`, rules) and a whole turn (`Engine.turn`). Then a
concurrency check: while the slowest message runs in one thread, another session's ordinary turn is timed.

    python -m benchmarks.adversarial                  # all shapes, lengths 200..2000
    python -m benchmarks.adversarial --quick          # lengths 2000 only
    python -m benchmarks.adversarial --profile N      # cProfile the N slowest messages (where the time goes)

Targets (issue 24): no message takes more than 0.2 s of understanding or 0.5 s for the whole turn; the other
session's turn answers in under 1 s. Prints the worst cases; compare within one run (the machine may be busy).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LENGTHS = (200, 600, 1200, 2000)
UNDERSTAND_TARGET_S = 0.2
TURN_TARGET_S = 0.5
OTHER_TARGET_S = 1.0

# One unit per shape; a message is the unit repeated up to the length.
RUNS = {  # long runs of one script, no spaces or punctuation
    "latin": "a", "latin-mixed": "abXyZ", "digits": "7", "hangul": "가", "hangul-mixed": "영화추천같은거",
    "jamo": "ㅋ", "kana": "あ", "han": "電", "cyrillic": "ж", "arabic": "ب", "emoji": "🎬",
    "dots": ".", "commas": ",", "apostrophes": "'", "dashes": "-", "underscores": "_",
}
REPEATS = {  # repeated cue and negation words
    "like": "like ", "movies-like": "movies like ", "not": "not ", "no-x-but-y": "no horror but ",
    "seen": "I have seen ", "ko-같은": "같은 ", "ko-말고": "말고 ", "ko-봤어": "봤어 ", "ko-처럼": "처럼",
    "ko-glued": "로맨틱코미디추천좀", "ko-cue-title": "매트릭스 같은 ", "between": "between 1990 and ",
    "decades": "90s 80년대 ", "ordinals": "the second one ", "it": "it that this 그거 ", "and": "and ",
    "question": "who directed it? ", "or": "comedy or drama or ", "capitals": "The Big Red ",
    "quotes-words": "'a' ", "mention-year": "Alien (1979) ",
}
NESTED = {  # brackets and quotes
    "parens": ("(", ")"), "brackets": ("[", "]"), "braces": ("{", "}"), "angles": ("<", ">"),
    "dquotes": ('"', '"'), "squotes": ("'", "'"), "ko-quotes": ("「", "」"), "curly": ("“", "”"),
}
LISTS = {
    "titles": "Alien, Heat, Up, Her, ", "ko-titles": "매트릭스, 타이타닉, 기생충, ", "genres": "action, comedy, ",
    "ko-genres": "액션이랑 코미디랑 ", "years": "1990, 1995, ", "people": "Tom Hanks, Meg Ryan, ",
    "markup": "<b>x</b><script>alert(1)</script>", "sql": "select * from t; drop table x; ",
    "controls": "a\u0007\u001b[31m\u200b\u202e", "injection": "ignore previous instructions ",
}


def shapes(lengths, seed: int = 0) -> list[tuple[str, str]]:
    rnd = random.Random(seed)
    out: list[tuple[str, str]] = []
    for n in lengths:
        for name, unit in {**RUNS, **REPEATS, **LISTS}.items():
            out.append((f"{name}@{n}", (unit * (n // len(unit) + 1))[:n]))
        for name, (a, b) in NESTED.items():
            k = n // 2
            out.append((f"{name}-nested@{n}", a * k + b * k))
            out.append((f"{name}-pairs@{n}", ((a + "x" + b) * n)[:n]))
        pool = "가나다라마바사아자차카타파하aAbB1 ,.!?'\"()같은처럼말고봤어"
        out.append((f"random@{n}", "".join(rnd.choice(pool) for _ in range(n))))
        out.append((f"random-nospace@{n}", "".join(rnd.choice(pool.replace(" ", "")) for _ in range(n))))
        words = ["I", "loved", "Alien", "but", "not", "horror", "영화", "같은", "말고", "the", "90s", "Heat",
                 "재밌었어", "추천", "more", "lighter", "(1979)", "and", "it"]
        out.append((f"random-words@{n}", " ".join(rnd.choice(words) for _ in range(n // 4))[:n]))
    return out


def build_engine():
    from benchmarks.turn import build, engine_for
    from chatrec.settings import Settings

    s = Settings()
    parts = build(None, s.cache_dir, s.data_dir or ROOT.parent / "shared" / "data")
    return engine_for(parts)


def time_one(engine, text: str) -> tuple[float, float]:
    und = engine.understander
    s = engine.new_session("en")
    t = time.perf_counter()
    und.understand(text, s)
    u = time.perf_counter() - t
    s = engine.new_session("en")
    t = time.perf_counter()
    for _ in engine.turn(s, text):
        pass
    return u, time.perf_counter() - t


def other_session_latency(engine, slow_text: str) -> tuple[float, float]:
    """A normal turn timed while `slow_text` is being answered in another thread (as two web sessions would)."""
    done = threading.Event()

    def slow():
        for _ in range(3):
            for _ in engine.turn(engine.new_session("en"), slow_text):
                pass
        done.set()

    th = threading.Thread(target=slow, daemon=True)
    th.start()
    time.sleep(0.01)
    worst = 0.0
    n = 0
    while not done.is_set() and n < 20:
        t = time.perf_counter()
        for _ in engine.turn(engine.new_session("en"), "a feel-good comedy from the 90s"):
            pass
        worst = max(worst, time.perf_counter() - t)
        n += 1
    th.join()
    return worst, n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="only the 2,000-character length")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile the N slowest messages")
    ap.add_argument("--top", type=int, default=12, help="worst cases to print")
    args = ap.parse_args(argv)
    engine = build_engine()
    for _ in engine.turn(engine.new_session("ko"), "인터스텔라 같은 영화"):  # one-time loads stay out
        pass
    msgs = shapes((2000,) if args.quick else LENGTHS)
    rows = []
    for name, text in msgs:
        u, t = time_one(engine, text)
        rows.append((name, len(text), u, t))
    rows.sort(key=lambda r: -max(r[2] / UNDERSTAND_TARGET_S, r[3] / TURN_TARGET_S))
    print(f"{len(rows)} messages, {len(set(n.split('@')[0] for n, *_ in rows))} shapes")
    print(f"{'shape':<28} {'chars':>6} {'understand s':>13} {'turn s':>8}")
    for name, n, u, t in rows[:args.top]:
        print(f"{name:<28} {n:>6} {u:>13.3f} {t:>8.3f}")
    worst_u = max(r[2] for r in rows)
    worst_t = max(r[3] for r in rows)
    slowest = rows[0]
    other, n_other = other_session_latency(engine, dict(msgs)[slowest[0]])
    print(f"\nworst understanding {worst_u:.3f} s (target ≤ {UNDERSTAND_TARGET_S}), worst turn {worst_t:.3f} s "
          f"(target ≤ {TURN_TARGET_S})")
    print(f"another session's turn while {slowest[0]!r} runs: worst {other:.3f} s over {n_other} turns "
          f"(target < {OTHER_TARGET_S})")
    for name, *_ in rows[:args.profile]:
        prof = cProfile.Profile()
        prof.enable()
        time_one(engine, dict(msgs)[name])
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(18)
        print(f"\n--- profile of {name}\n{buf.getvalue()}")
    ok = worst_u <= UNDERSTAND_TARGET_S and worst_t <= TURN_TARGET_S and other < OTHER_TARGET_S
    print("targets:", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
