"""A sweep's jobs gathered into one answer: results.csv, results.md and results.png in the sweep folder."""

import csv
import io
import json
import math
import statistics
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from mlplab.config.overrides import split
from mlplab.engine.hparams import sweep_hparams
from mlplab.engine.runs import REPORTED_METRICS, atomic_write, read_metrics, write_text
from mlplab.experiments import sequential
from mlplab.experiments.comparison import (
    ALPHA,
    CONFIDENCE,
    MAX_SEEDS,
    POWER,
    against_best,
    mean_interval,
    verdict,
)
from mlplab.experiments.sweep_folder import SWEEP_CONTROLS, commands_by_job, read_record

# Keys that tell apart jobs of one configuration (seed), or name the preset that made them: never columns.
NOT_SWEPT = {"seed", "sweep", *SWEEP_CONTROLS}


@dataclass
class Job:
    folder: Path
    overrides: dict[str, str]
    metrics: dict[str, Any]
    seed: int
    commands: list[int]  # the numbers of the commands that ran it (sweep.json), from 1


def _seed(folder: Path, overrides: dict[str, str]) -> int:
    """The job's seed: from its overrides, else from its composed config (an experiment may set it)."""
    if "seed" in overrides:
        return int(overrides["seed"])
    config = folder / ".hydra" / "config.yaml"
    return int(OmegaConf.load(config).get("seed", 0)) if config.exists() else 0


def load_jobs(sweep_dir: Path) -> list[Job]:
    """The jobs of a sweep folder's commands (sweep.json; every job under a folder without it), finished or not."""
    made = commands_by_job(sweep_dir)
    jobs = []
    for overrides_file in sweep_dir.glob("*/.hydra/overrides.yaml"):
        folder = overrides_file.parents[1]
        if made is not None and folder.name not in made:
            continue  # a job of a command that is no longer the folder's (e.g. a seed of a larger count)
        overrides = dict(split(o) for o in OmegaConf.load(overrides_file) if "=" in o)
        commands = made[folder.name] if made else [1]
        jobs.append(Job(folder, overrides, read_metrics(folder), _seed(folder, overrides), commands))
    return sorted(jobs, key=lambda j: int(j.folder.name.split("_")[0]) if j.folder.name[0].isdigit() else 0)


def _over_seeds(name: str, values: list[float]) -> dict[str, float]:
    """A metric's mean, standard deviation and confidence interval over the seeds (NaN where there are too few)."""
    interval = mean_interval(values)
    return {
        f"{name} mean": statistics.fmean(values) if values else math.nan,
        f"{name} std": statistics.stdev(values) if len(values) > 1 else math.nan,
        f"{name} ci_low": interval.low if interval else math.nan,
        f"{name} ci_high": interval.high if interval else math.nan,
    }


def summarize(jobs: list[Job]) -> tuple[list[str], list[dict[str, Any]]]:
    """(swept keys, one row per configuration): jobs that differ only by seed form one row, with mean, std and
    confidence interval of each metric, and its difference from the best configuration (chosen on validation)."""
    keys = {k for job in jobs for k in job.overrides} - NOT_SWEPT
    swept = sorted(k for k in keys if len({job.overrides.get(k) for job in jobs}) > 1)
    groups: dict[tuple, list[Job]] = defaultdict(list)
    for job in jobs:
        groups[tuple(job.overrides.get(k, "") for k in swept)].append(job)
    rows = []
    for values, members in groups.items():
        finished = [job for job in members if job.metrics.get("status") == "ok"]
        row: dict[str, Any] = dict(zip(swept, values, strict=True))
        row["seeds"] = len(members)
        for name in REPORTED_METRICS:
            by_seed = {job.seed: job.metrics[name] for job in finished if name in job.metrics}
            row[name] = by_seed  # for compare_with_best
            row.update(_over_seeds(name, list(by_seed.values())))
        ok = [job.metrics for job in finished]
        row["epochs"] = statistics.fmean(m["epochs"] for m in ok) if ok else math.nan
        row["train_time_s"] = statistics.fmean(m["train_time_s"] for m in ok) if ok else math.nan
        statuses = Counter(job.metrics.get("status", "incomplete") for job in members)
        row["status"] = "ok" if set(statuses) == {"ok"} else ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
        row["error"] = next((job.metrics["error"] for job in members if job.metrics.get("error")), "")
        row["jobs"] = [job.folder for job in members]
        row["commands"] = ", ".join(map(str, sorted({n for job in members for n in job.commands})))
        rows.append(row)
    # Chosen by validation accuracy only: the test set is for reporting, never for picking.
    rows.sort(key=lambda r: -r["val/acc_best mean"] if not math.isnan(r["val/acc_best mean"]) else math.inf)
    compare_with_best(rows)
    return swept, rows


def compare_with_best(rows: list[dict[str, Any]]) -> None:
    """Each row's paired difference from the first (the best on validation), Holm-corrected p, and a verdict in
    words on val/acc_best, the metric the best was chosen by."""
    best = rows[0] if rows and not math.isnan(rows[0]["val/acc_best mean"]) else None
    for name in REPORTED_METRICS:
        compared = against_best([row[name] for row in rows], 0) if best else [(None, math.nan)] * len(rows)
        for row, (comparison, p) in zip(rows, compared, strict=True):
            row[f"{name} comparison"] = comparison
            row[f"{name} diff"] = comparison.difference if comparison else math.nan
            row[f"{name} diff_low"] = comparison.interval.low if comparison else math.nan
            row[f"{name} diff_high"] = comparison.interval.high if comparison else math.nan
            row[f"{name} p"] = p
    for row in rows:
        comparison, p = row["val/acc_best comparison"], row["val/acc_best p"]
        if math.isnan(row["val/acc_best mean"]):
            row["verdict"] = "no finished run"
        else:
            row["verdict"] = verdict(len(row["val/acc_best"]), comparison, None if math.isnan(p) else p, row is best)
        # The smallest difference these seeds could have told apart, for rows that are not told apart.
        row["detectable"] = comparison.detectable if comparison and p >= ALPHA else math.nan
        # In how many seeds it beat the best, and how many seeds the difference it showed would take.
        row["wins"] = comparison.wins if comparison else ""
        needed = comparison.seeds_needed if comparison else None
        row["seeds_needed"] = needed if needed is not None else (f">{MAX_SEEDS}" if comparison else "")


def _scale(name: str) -> tuple[int, int]:
    """Accuracies in percent with 2 decimals, losses as they are with 4."""
    return (100, 2) if name.endswith(("acc", "acc_best")) else (1, 4)


def _cell(name: str, row: dict[str, Any]) -> str:
    """mean ± std [95% interval] over the seeds."""
    mean, std, low, high = (row[f"{name} {part}"] for part in ("mean", "std", "ci_low", "ci_high"))
    if math.isnan(mean):
        return "-"
    scale, digits = _scale(name)
    if math.isnan(std):
        return f"{mean * scale:.{digits}f} (1 seed)"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f} [{low * scale:.{digits}f}, {high * scale:.{digits}f}]"


def _difference(name: str, row: dict[str, Any]) -> str:
    """The paired difference from the best [95% interval], Holm-corrected p."""
    if row[f"{name} comparison"] is None:
        return "-"
    scale, digits = _scale(name)
    diff, low, high = (row[f"{name} {part}"] * scale for part in ("diff", "diff_low", "diff_high"))
    return f"{diff:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}] p={row[f'{name} p']:.2g}"


def _verdict(row: dict[str, Any]) -> str:
    if math.isnan(row["detectable"]):
        return row["verdict"]
    return f"{row['verdict']} (they detect ≥ {row['detectable'] * 100:.2f} points)"


def _by_seed(row: dict[str, Any]) -> str:
    """In how many of the paired seeds the row beat the best, and the seeds its difference would need."""
    comparison = row["val/acc_best comparison"]
    if comparison is None:
        return "-"
    needed = row["seeds_needed"]
    plan = f"{needed} seeds tell it apart" if isinstance(needed, int) else f"more than {MAX_SEEDS} seeds to tell apart"
    return f"beat it in {comparison.wins} of {comparison.seeds} seeds; {plan}"


COMPARED = ("val/acc_best", "test/acc")  # shown against the best in the Markdown table; results.csv has all


def markdown(
    swept: list[str], rows: list[dict[str, Any]], commands: list[list[str]] | None = None, in_rounds: bool = False
) -> str:
    """The results as a Markdown table: accuracies in %, mean ± std [95% interval] over seeds, the differences from
    the best row (paired over shared seeds) and a verdict; with several `commands` (sweep.add), which made each row;
    `in_rounds`: the verdicts are those of sweep.seeds=auto's sequential design."""
    several = len(commands or []) > 1
    header = [*swept, *(["command"] if several else []), "seeds", "val/acc_best %", "test/acc %", "test/loss"]
    header += [f"{name} vs best" for name in COMPARED] + ["by seed", "verdict", "epochs", "time (s)", "status"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(row[k]) for k in swept] + ([row["commands"]] if several else []) + [str(row["seeds"])]
        cells += [_cell(name, row) for name in REPORTED_METRICS]
        cells += [_difference(name, row) for name in COMPARED] + [_by_seed(row), _verdict(row)]
        cells += ["-" if math.isnan(row["epochs"]) else f"{row['epochs']:g}"]
        cells += ["-" if math.isnan(row["train_time_s"]) else f"{row['train_time_s']:.1f}", row["status"]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"mean ± std [{CONFIDENCE:.0%} interval, Student's t] over seeds; vs best: this row's mean minus the best's, "
        "paired over the seeds both have [interval], p of a paired t-test, Holm-corrected over every pair of rows. "
        "The best row is the one with the highest mean val/acc_best; the verdict is on val/acc_best. 'They detect': "
        f"the smallest difference these seeds find with power {POWER:.0%} at α {ALPHA:.2g}. By seed, on val/acc_best: "
        "the seeds at which the row beat the best (rliable's probability of improvement), and the seeds that would "
        f"tell the difference it showed apart with power {POWER:.0%} at α {ALPHA:.2g}, from the spread of its paired "
        "differences (scripts/plan_seeds.py plans for a difference of your choosing).",
    ]
    if in_rounds:
        lines += [
            "",
            "sweep.seeds=auto: seeds were given in rounds, and the verdicts are the sequential design's (a paired t "
            "boundary per round, α spent over the rounds and split over every pair of rows: "
            "mlplab/experiments/sequential.py); the p beside each difference is a single test's over the seeds the "
            "two rows share, for reference.",
        ]
    if several:
        lines += ["", "Commands:", *(f"{n}. `{' '.join(c)}`" for n, c in enumerate(commands or [], start=1))]
    errors = [f"- {', '.join(str(r[k]) for k in swept) or 'run'}: {r['error']}" for r in rows if r["error"]]
    return "\n".join(lines + (["", "Errors:", *errors] if errors else [])) + "\n"


def row_label(swept: list[str], row: dict[str, Any]) -> str:
    return ", ".join(f"{k}={row[k]}" for k in swept) or "run"


def plot(swept: list[str], rows: list[dict[str, Any]], path: Path) -> None:
    """Validation accuracy per epoch, one line per configuration (the mean over its seeds)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(figsize=(8, 5))
    for row in rows:
        curves = [
            json.loads((job / "metrics.json").read_text(encoding="utf-8")).get("history", {}).get("val/acc", [])
            for job in row["jobs"]
            if (job / "metrics.json").exists()
        ]
        curves = [c for c in curves if c]
        if not curves:
            continue
        length = max(map(len, curves))
        mean = [statistics.fmean(c[i] for c in curves if i < len(c)) * 100 for i in range(length)]
        axes.plot(range(length), mean, marker="o", label=row_label(swept, row))
    axes.set(xlabel="epoch", ylabel="val/acc (%)", title="Validation accuracy (mean over seeds)")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    if axes.lines:
        axes.legend(fontsize="small")
    figure.tight_layout()
    atomic_write(path, lambda f: figure.savefig(f, format="png", dpi=100))
    plt.close(figure)


def sequential_verdicts(sweep_dir: Path, swept: list[str], rows: list[dict[str, Any]]) -> bool:
    """For a sweep.seeds=auto sweep, each finished row's verdict is the sequential design's; True if it is one."""
    record = sweep_dir / sequential.RECORD
    if not record.exists():
        return False
    settings = json.loads(record.read_text(encoding="utf-8"))
    plan = sequential.design(settings["min_seeds"], settings["max_seeds"], settings["rows"])
    finished = {row_label(swept, row): row["val/acc_best"] for row in rows if row["status"] == "ok"}
    decided = sequential.decide(finished, plan).decided
    for row in rows:
        if decision := decided.get(row_label(swept, row)):
            row["verdict"], row["detectable"] = sequential.described(decision), math.nan
    return True


def write_results(sweep_dir: Path) -> tuple[list[dict[str, Any]], str]:
    """Writes results.csv, results.md and results.png into sweep_dir; returns the rows and the Markdown table."""
    swept, rows = summarize(load_jobs(sweep_dir))
    in_rounds = sequential_verdicts(sweep_dir, swept, rows)
    commands = [entry["command"] for entry in read_record(sweep_dir) or []]
    parts = ("mean", "std", "ci_low", "ci_high", "diff", "diff_low", "diff_high", "p")
    columns = [*swept, *(["commands"] if len(commands) > 1 else []), "seeds"]
    columns += [f"{m} {part}" for m in REPORTED_METRICS for part in parts]
    columns += ["verdict", "detectable", "wins", "seeds_needed", "epochs", "train_time_s", "status", "error"]
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    # Written whole or not at all (a full disk: the earlier table stays), and the failure names the file.
    write_text(sweep_dir / "results.csv", table.getvalue())
    table = markdown(swept, rows, commands, in_rounds)
    write_text(sweep_dir / "results.md", table)
    plot(swept, rows, sweep_dir / "results.png")
    return rows, table


def report(sweep_dir: Path) -> bool:
    """Writes and prints a sweep's results; True when every job ended ok."""
    rows, table = write_results(sweep_dir)
    print(f"\n{table}\nresults: {sweep_dir}/results.{{csv,md,png}}", flush=True)
    return all(row["status"] == "ok" for row in rows)


class SummarizeSweep(Callback):
    """Hydra callback: when a multirun ends, write its HParams columns, write and print its results; exit 1 if any
    job did not end ok."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_hparams(Path(config.hydra.sweep.dir))
        if not report(Path(config.hydra.sweep.dir)):
            sys.exit(1)
