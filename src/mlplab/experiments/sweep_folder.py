"""A sweep folder's writer and the commands that made it (sweep.json), so that its table is its command's.

- One process at a time: a second `-m ... hydra.sweep.dir=<a folder another process sweeps into>` is refused in one
  line before any job starts (a job's .hydra/ included).
- The same command again continues the folder (mlplab/experiments/continuation.py); with more or fewer seeds too,
  the seeds already trained are kept. A job is found by its overrides, not its number: `3_optimizer=adam,seed=0`
  stays the folder of optimizer=adam, seed=0 when more seeds renumber the jobs.
- Another command (other values, other keys) is refused, naming what differs, unless `sweep.add=true`: then its jobs
  join the folder and the table says which command made each row.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from mlplab.config.overrides import split
from mlplab.engine.runs import claimed, write_json
from mlplab.errors import InputError

RECORD = "sweep.json"
# How a sweep chooses and continues its jobs: its seed count, the statuses it trains again, additions to its table.
SWEEP_CONTROLS = ("sweep.seeds", "sweep.min_seeds", "sweep.max_seeds", "sweep.rerun", "sweep.add")
# How a job is chosen, continued and recorded, not what it computes: a resumed job records its checkpoint, the
# loggers and the console only write down what it computes.
NOT_COMPUTED = (*SWEEP_CONTROLS, "ckpt_path", "logger", "verbose")
# Keys that do not make another sweep: its seeds (more seeds reuse those trained), and the keys above.
NOT_A_DIFFERENT_SWEEP = ("seed", *NOT_COMPUTED)


def command_of(overrides: list[str]) -> dict[str, str]:
    """A sweep's command as compared: key -> value text of its overrides, but the keys of NOT_A_DIFFERENT_SWEEP."""
    pairs = (split(override) for override in overrides)
    return dict(sorted((key, value) for key, value in pairs if key not in NOT_A_DIFFERENT_SWEEP))


def read_record(sweep_dir: Path) -> list[dict[str, Any]] | None:
    """The commands that made the folder, each {"command": [overrides], "jobs": [folder names]}; None before
    this record was kept (a folder of an earlier version: all its jobs count)."""
    path = sweep_dir / RECORD
    return json.loads(path.read_text(encoding="utf-8"))["commands"] if path.exists() else None


@contextmanager
def sweeping(sweep_dir: Path, overrides: list[str], add: bool) -> Iterator[dict[str, Any]]:
    """Holds the sweep folder while its jobs run and checks that this command is the folder's (or is added); yields
    this command's entry, whose "jobs" the caller sets to the folders it launched, written when the block ends."""
    with claimed(sweep_dir, "is sweeping into this folder; wait for it to end, or sweep into another hydra.sweep.dir"):
        commands = read_record(sweep_dir) or []
        now = command_of(overrides)
        entry = next((c for c in commands if command_of(c["command"]) == now), None)
        if entry is None and commands and not add:
            raise InputError(refusal(sweep_dir, commands[-1]["command"], overrides))
        if entry is None:
            entry = {"command": overrides, "jobs": []}
            commands.append(entry)
        entry["command"] = overrides  # this one's seeds
        write_json(sweep_dir / RECORD, {"commands": commands})
        try:
            yield entry
        finally:
            write_json(sweep_dir / RECORD, {"commands": commands})


def refusal(sweep_dir: Path, earlier: list[str], now: list[str]) -> str:
    """The line that refuses another command into a sweep folder, with the keys whose values differ."""
    before, after = command_of(earlier), command_of(now)
    differ = [key for key in sorted(before.keys() | after.keys()) if before.get(key) != after.get(key)]
    unset = "(not set)"
    shown = "; ".join(f"{key}={before.get(key, unset)} there, {after.get(key, unset)} now" for key in differ)
    return (
        f"hydra.sweep.dir={sweep_dir}: this folder holds the sweep of another command ({shown}); give that command "
        "again to continue it, another hydra.sweep.dir for a new sweep, or sweep.add=true to add this command's jobs "
        "to its table"
    )


def existing_jobs(sweep_dir: Path) -> dict[frozenset[str], str]:
    """The job folders already in a sweep folder, by their overrides (seed included; sweep.seeds, which renumbers
    the jobs, and how the sweep is continued left out)."""
    found = {}
    for overrides_file in sweep_dir.glob("*/.hydra/overrides.yaml"):
        found[job_key(list(OmegaConf.load(overrides_file)))] = overrides_file.parents[1].name
    return found


def job_key(overrides: list[str]) -> frozenset[str]:
    ignored = set(NOT_A_DIFFERENT_SWEEP) - {"seed"}  # a job's seed tells it apart from its configuration's others
    return frozenset(o for o in overrides if split(o)[0] not in ignored and not o.startswith("hydra."))


def commands_by_job(sweep_dir: Path) -> dict[str, list[int]] | None:
    """Job folder name -> the numbers (from 1) of the commands that ran it; None for a folder without the record."""
    commands = read_record(sweep_dir)
    if commands is None:
        return None
    made: dict[str, list[int]] = {}
    for number, entry in enumerate(commands, start=1):
        for job in entry["jobs"]:
            made.setdefault(job, []).append(number)
    return made
