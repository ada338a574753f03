"""A sweep's jobs gathered into one answer: results.csv, results.md and results.png in the sweep folder."""

import csv
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

from mlplab.runs import REPORTED_METRICS

# Keys that tell apart jobs of one configuration (seed), or name the preset that made them: never columns.
NOT_SWEPT = {"seed", "sweep", "sweep.seeds"}


@dataclass
class Job:
    folder: Path
    overrides: dict[str, str]
    metrics: dict[str, Any]


def load_jobs(sweep_dir: Path) -> list[Job]:
    """The jobs under a sweep folder, finished or not (a job without metrics.json is `incomplete`)."""
    jobs = []
    for overrides_file in sweep_dir.glob("*/.hydra/overrides.yaml"):
        folder = overrides_file.parents[1]
        overrides = dict(o.lstrip("+~").split("=", 1) for o in OmegaConf.load(overrides_file) if "=" in o)
        metrics_file = folder / "metrics.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {"status": "incomplete"}
        jobs.append(Job(folder, overrides, metrics))
    return sorted(jobs, key=lambda j: int(j.folder.name.split("_")[0]) if j.folder.name[0].isdigit() else 0)


def _mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan


def summarize(jobs: list[Job]) -> tuple[list[str], list[dict[str, Any]]]:
    """(swept keys, one row per configuration): jobs that differ only by seed form one row, with mean and std."""
    keys = {k for job in jobs for k in job.overrides} - NOT_SWEPT
    swept = sorted(k for k in keys if len({job.overrides.get(k) for job in jobs}) > 1)
    groups: dict[tuple, list[Job]] = defaultdict(list)
    for job in jobs:
        groups[tuple(job.overrides.get(k, "") for k in swept)].append(job)
    rows = []
    for values, members in groups.items():
        ok = [job.metrics for job in members if job.metrics.get("status") == "ok"]
        row: dict[str, Any] = dict(zip(swept, values, strict=True))
        row["seeds"] = len(members)
        for name in REPORTED_METRICS:
            row[f"{name} mean"], row[f"{name} std"] = _mean_std([m[name] for m in ok if name in m])
        row["epochs"] = statistics.fmean(m["epochs"] for m in ok) if ok else math.nan
        row["train_time_s"] = statistics.fmean(m["train_time_s"] for m in ok) if ok else math.nan
        statuses = Counter(job.metrics.get("status", "incomplete") for job in members)
        row["status"] = "ok" if set(statuses) == {"ok"} else ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
        row["error"] = next((job.metrics["error"] for job in members if job.metrics.get("error")), "")
        row["jobs"] = [job.folder for job in members]
        rows.append(row)
    # Chosen by validation accuracy only: the test set is for reporting, never for picking.
    rows.sort(key=lambda r: -r["val/acc_best mean"] if not math.isnan(r["val/acc_best mean"]) else math.inf)
    return swept, rows


def _cell(name: str, mean: float, std: float) -> str:
    if math.isnan(mean):
        return "-"
    scale, digits = (100, 2) if name.endswith("acc") or name.endswith("acc_best") else (1, 4)
    text = f"{mean * scale:.{digits}f}"
    return text if math.isnan(std) else f"{text} ± {std * scale:.{digits}f}"


def markdown(swept: list[str], rows: list[dict[str, Any]]) -> str:
    """The results as a Markdown table: accuracies in %, mean ± std over seeds."""
    header = [*swept, "seeds", "val/acc_best %", "test/acc %", "test/loss", "epochs", "time (s)", "status"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(row[k]) for k in swept] + [str(row["seeds"])]
        cells += [_cell(name, row[f"{name} mean"], row[f"{name} std"]) for name in REPORTED_METRICS]
        cells += ["-" if math.isnan(row["epochs"]) else f"{row['epochs']:g}"]
        cells += ["-" if math.isnan(row["train_time_s"]) else f"{row['train_time_s']:.1f}", row["status"]]
        lines.append("| " + " | ".join(cells) + " |")
    errors = [f"- {', '.join(str(r[k]) for k in swept) or 'run'}: {r['error']}" for r in rows if r["error"]]
    return "\n".join(lines + (["", "Errors:", *errors] if errors else [])) + "\n"


def _label(swept: list[str], row: dict[str, Any]) -> str:
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
            json.loads((job / "metrics.json").read_text()).get("history", {}).get("val/acc", [])
            for job in row["jobs"]
            if (job / "metrics.json").exists()
        ]
        curves = [c for c in curves if c]
        if not curves:
            continue
        length = max(map(len, curves))
        mean = [statistics.fmean(c[i] for c in curves if i < len(c)) * 100 for i in range(length)]
        axes.plot(range(length), mean, marker="o", label=_label(swept, row))
    axes.set(xlabel="epoch", ylabel="val/acc (%)", title="Validation accuracy (mean over seeds)")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    if axes.lines:
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_results(sweep_dir: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """Writes results.csv, results.md and results.png into sweep_dir and returns the table."""
    swept, rows = summarize(load_jobs(sweep_dir))
    columns = [*swept, "seeds", *(f"{m} {s}" for m in REPORTED_METRICS for s in ("mean", "std"))]
    columns += ["epochs", "train_time_s", "status", "error"]
    with (sweep_dir / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (sweep_dir / "results.md").write_text(markdown(swept, rows))
    plot(swept, rows, sweep_dir / "results.png")
    return swept, rows


def report(sweep_dir: Path) -> bool:
    """Writes and prints a sweep's results; True when every job ended ok."""
    swept, rows = write_results(sweep_dir)
    print(f"\n{markdown(swept, rows)}\nresults: {sweep_dir}/results.{{csv,md,png}}", flush=True)
    return all(row["status"] == "ok" for row in rows)


class SummarizeSweep(Callback):
    """Hydra callback: when a multirun ends, write and print its results; exit 1 if any job did not end ok."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not report(Path(config.hydra.sweep.dir)):
            sys.exit(1)
