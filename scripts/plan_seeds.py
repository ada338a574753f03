"""How many seeds a difference takes: `python scripts/plan_seeds.py SWEEP_FOLDER --difference 0.1`.

For each configuration of a finished sweep compared with its best (on val/acc_best, paired over the seeds both
have), the spread of the per-seed differences it measured, the difference its seeds detect now, and the seeds that
would detect a difference of --difference points with power 80% at α 0.05 (Colas et al. 2018, "How many random
seeds?": a pilot sweep, a power analysis, then the seeds). Exit status 2 for a folder without sweep jobs.
"""

import argparse
import sys
from pathlib import Path

from mlplab.experiments.comparison import ALPHA, MAX_SEEDS, POWER, seeds_needed
from mlplab.experiments.sweep import load_jobs, row_label, summarize


def plan(sweep_dir: Path, difference: float) -> list[str]:
    """The plan as lines of a Markdown table (difference in accuracy points)."""
    swept, rows = summarize(load_jobs(sweep_dir))
    lines = [
        f"Seeds to detect {difference:.2f} points of val/acc_best with power {POWER:.0%} at α {ALPHA:.2g}, paired "
        f"with the best ({row_label(swept, rows[0])}):",
        "",
        "| configuration | seeds now | spread of the differences (points) | they detect now | seeds needed |",
        "|---|---|---|---|---|",
    ]
    for row in rows[1:]:
        comparison, name = row["val/acc_best comparison"], row_label(swept, row)
        if comparison is None:
            lines.append(f"| {name} | {row['seeds']} | - | - | two seeds shared with the best, first |")
            continue
        needed = seeds_needed(difference / 100, comparison.spread)
        spread, detectable = comparison.spread * 100, comparison.detectable * 100
        shown = str(needed) if needed else f"more than {MAX_SEEDS}"
        lines.append(f"| {name} | {comparison.seeds} | {spread:.3f} | {detectable:.2f} | {shown} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_folder", type=Path, help="a finished sweep, e.g. outputs/train/multirun/<date_time>")
    parser.add_argument("--difference", type=float, required=True, help="in accuracy points, e.g. 0.1 (= 0.1%%)")
    args = parser.parse_args()
    if args.difference <= 0:
        sys.exit(f"error: --difference {args.difference}: give a positive number of points, e.g. 0.1")
    if not load_jobs(args.sweep_folder):
        print(f"error: {args.sweep_folder}: no sweep jobs here (no */.hydra/overrides.yaml)", file=sys.stderr)
        sys.exit(2)
    print("\n".join(plan(args.sweep_folder, args.difference)))


if __name__ == "__main__":
    main()
