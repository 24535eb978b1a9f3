"""`chatrec-eval SUBCOMMAND ...`: dispatch to the harness modules (each has its own argparse `main(argv)`)."""
from __future__ import annotations

import importlib
import sys

SUBCOMMANDS = {
    "offline": ("chatrec.eval.offline", "classical recommenders on published protocols"),
    "tune": ("chatrec.eval.tune", "tune ALS on a validation split carved from training data"),
    "pooled": ("chatrec.eval.pooling", "ALS on pooled MovieLens sets: per-source weights on the target's users"),
    "lmrecsys": ("chatrec.eval.lmrecsys", "LMRecSys zero-shot title scoring on ML-1M"),
    "cllm4rec": ("chatrec.eval.cllm4rec", "CLLM4Rec soft-token LM vs Popularity, item-kNN, tuned ALS"),
    "dialogue": ("chatrec.eval.dialogue", "scripted KO/EN dialogues and simulated users"),
    "redial": ("chatrec.eval.redial", "real recommendation dialogues (redial-dev), per-target recall"),
    "understanding": ("chatrec.eval.understanding", "the dialogue-act model: grouped CV and held-out macro-F1, ship it"),
    "ranker": ("chatrec.eval.ranker", "learn the fusion ranker (grouped cross-validation on redial-dev), ship it"),
    "ratings": ("chatrec.eval.ratings", "rating prediction (RMSE/MAE): classical models, the LM path, a blend"),
    "journeys": ("chatrec.eval.journeys", "interest journeys: accuracy, diversity and coverage"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SUBCOMMANDS:
        print("usage: chatrec-eval {" + ",".join(SUBCOMMANDS) + "} [options]\n")
        for name, (_, helptext) in SUBCOMMANDS.items():
            print(f"  {name:10s} {helptext}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
