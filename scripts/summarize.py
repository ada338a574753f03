"""Rebuild a sweep's results.csv, results.md and results.png: `python scripts/summarize.py SWEEP_FOLDER`.

Works on any sweep folder of `python src/train.py -m ...`, also one whose sweep was interrupted
(unfinished jobs show as `incomplete`). Exit status 1 when a job did not end ok, 2 for a bad folder.
"""

import argparse
import sys
from pathlib import Path

from mlplab.cli import reported
from mlplab.experiments.sweep import load_jobs, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_folder", type=Path, help="a multirun folder, e.g. outputs/train/multirun/<date_time>")
    folder = parser.parse_args().sweep_folder
    if not load_jobs(folder):
        print(f"error: {folder}: no sweep jobs here (expected subfolders with .hydra/overrides.yaml)", file=sys.stderr)
        sys.exit(2)
    with reported():  # a full disk: one line naming the file
        ok = report(folder)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
