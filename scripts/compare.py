"""Compare two runs or two sweeps: `python scripts/compare.py A B [--markdown]`.

A and B are run folders (metrics.json and run.json, as `python src/train.py` leaves them) or sweep folders. Printed:
the config keys that differ (paths within each folder left out), the metrics side by side with B minus A, and, for
sweeps, per configuration both hold, the paired verdict over the seeds both have (the sweeps' own test, uncorrected:
one comparison). Exit status 2 for a folder that is neither.
"""

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from mlplab.config.diff import differences, relocated
from mlplab.experiments.comparison import ALPHA, paired
from mlplab.experiments.sweep import load_jobs, row_label, summarize

METRICS = ("val/acc_best", "test/acc", "test/loss", "epochs", "train_time_s")
NOT_COMPARED = ("paths", "logger", "ckpt_path", "sweep")  # where a run is and how it is logged or continued


def recorded(folder: Path) -> dict[str, Any]:
    """A run's recorded config, its own folder written as <run> so that two folders compare."""
    config = json.loads((folder / "run.json").read_text(encoding="utf-8"))["config"]
    return relocated(config, config["paths"]["output_dir"], "<run>")


def config_lines(a: Path, b: Path) -> list[str]:
    differ = differences(recorded(a), recorded(b), ignored=NOT_COMPARED)
    return [f"- {key}: {old} in A, {new} in B" for key, old, new in differ] or ["- none"]


def shown(name: str, value: float) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return f"{value * 100:.2f}" if name.endswith(("acc", "acc_best")) else f"{value:.4g}"


def metric_rows(a: dict[str, Any], b: dict[str, Any], suffix: str = "") -> list[list[str]]:
    """name, A, B, B - A for each metric both have."""
    rows = []
    for name in METRICS:
        old, new = a.get(name + suffix, a.get(name)), b.get(name + suffix, b.get(name))
        if isinstance(old, int | float) and isinstance(new, int | float):
            rows.append([name, shown(name, old), shown(name, new), shown(name, new - old)])
    return rows


def table(header: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
            "| " + " | ".join(r) + " |" for r in rows
        ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    return [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)) for row in [header, *rows]
    ]


def verdict(a_row: dict[str, Any], b_row: dict[str, Any]) -> str:
    """B against A on val/acc_best, paired over the seeds both have."""
    comparison = paired(b_row["val/acc_best"], a_row["val/acc_best"])
    if comparison is None:
        return "no two seeds in common: no paired verdict"
    diff, low, high = (100 * v for v in (comparison.difference, comparison.interval.low, comparison.interval.high))
    told = "B is better" if comparison.difference > 0 else "B is worse"
    said = (
        told
        if comparison.p < ALPHA
        else f"not distinguishable (these seeds detect ≥ {comparison.detectable * 100:.2f} points)"
    )
    return (
        f"val/acc_best B - A {diff:+.2f} points [{low:+.2f}, {high:+.2f}], p={comparison.p:.2g} over "
        f"{comparison.seeds} seeds; B beat A in {comparison.wins} of them: {said}"
    )


def compare(a: Path, b: Path, markdown: bool = False) -> list[str]:
    kinds = {folder: kind(folder) for folder in (a, b)}
    if None in kinds.values() or len(set(kinds.values())) > 1:
        raise ValueError(
            ", ".join(f"{folder} is {kinds[folder] or 'neither a run nor a sweep folder'}" for folder in kinds)
        )
    if kinds[a] == "run":
        metrics = [json.loads((f / "metrics.json").read_text(encoding="utf-8")) for f in (a, b)]
        return [f"A: {a}", f"B: {b}", "", "Config keys that differ:", *config_lines(a, b), "",
                *table(["metric", "A", "B", "B - A"], metric_rows(*metrics), markdown)]  # fmt: skip
    (swept_a, rows_a), (swept_b, rows_b) = (summarize(load_jobs(f)) for f in (a, b))
    by_label = {row_label(swept_a, row): row for row in rows_a}
    pairs = [(row_label(swept_b, row), by_label.get(row_label(swept_b, row)), row) for row in rows_b]
    if len(rows_a) == len(rows_b) == 1:  # one configuration each: those two, whatever their labels
        pairs = [(f"{row_label(swept_a, rows_a[0])} / {row_label(swept_b, rows_b[0])}", rows_a[0], rows_b[0])]
    lines = [f"A: {a}", f"B: {b}"]
    for name, row_a, row_b in pairs:
        if row_a is None:
            lines += ["", f"{name}: only in B"]
            continue
        lines += ["", f"{name} ({row_a['seeds']} seeds in A, {row_b['seeds']} in B):"]
        lines += ["Config keys that differ:", *config_lines(row_a["jobs"][0], row_b["jobs"][0])]
        lines += table(["metric (mean)", "A", "B", "B - A"], metric_rows(row_a, row_b, " mean"), markdown)
        lines.append(verdict(row_a, row_b))
    return lines


def kind(folder: Path) -> str | None:
    if (folder / "metrics.json").is_file() and (folder / "run.json").is_file():
        return "run"
    return "sweep" if load_jobs(folder) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="a run folder or a sweep folder")
    parser.add_argument("b", type=Path, help="another of the same kind")
    parser.add_argument("--markdown", action="store_true", help="tables in Markdown, to paste into a report")
    args = parser.parse_args()
    try:
        print("\n".join(compare(args.a, args.b, args.markdown)))
    except ValueError as error:
        print(f"error: {error}: give two run folders or two sweep folders", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
