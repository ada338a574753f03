"""Worked solution of exercise lab.optimizers: how to read a sweep's verdict.

The sweep, from the repository's root (3 seeds of each optimizer, 1 epoch each):

    python src/train.py -m optimizer=sgd,adam seed=0,1,2 trainer.max_epochs=1

This file finds the newest sweep folder under outputs/train/multirun whose table has both optimizers (the folders
are named by date and time, so they sort in time) and reads its verdicts, as a learner reads results.md.
"""

import csv
from pathlib import Path


def verdicts(folder: Path) -> dict[str, str]:
    with open(folder / "results.csv", encoding="utf-8", newline="") as f:
        return {row.get("optimizer", ""): row["verdict"] for row in csv.DictReader(f)}


def answer(verdict: dict[str, str]) -> str:
    # The rows are sorted by val/acc_best (chosen on validation: the test set is for reporting). The best row's
    # verdict is "best"; the other row is compared with it, seed by seed: the same seed means the same initial
    # weights and batch order, so the pairing removes most of the noise. "worse (p=...)": a paired t-test over the
    # shared seeds finds the difference real (p < 0.05). "not distinguishable from the best with 3 seeds (they
    # detect >= x points)": these seeds could not tell; a difference smaller than x may well exist, and more seeds
    # (sweep.seeds=10) would find it. Adam's mean being higher is not enough to call it better.
    adam, sgd = verdict["adam"], verdict["sgd"]
    if adam == "best" and sgd.startswith("worse"):
        return "better"
    if sgd == "best" and adam.startswith("worse"):
        return "worse"
    return "not distinguishable"


sweeps = [p.parent for p in sorted(Path("outputs/train/multirun").glob("*/results.csv"))]
sweeps = [folder for folder in sweeps if {"sgd", "adam"} <= verdicts(folder).keys()]
SWEEP = str(sweeps[-1]) if sweeps else None
ANSWER = answer(verdicts(sweeps[-1])) if sweeps else None
SEEDS = [0, 1, 2]  # the command's seed=0,1,2
