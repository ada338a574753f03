"""mlplab's Hydra sweepers (conf/hydra/sweeper/): `mlplab`, Hydra's basic sweeper with job folders named by what
varies, and `tune_then_train`, which gives each configuration of a sweep its own best value of one key, chosen on
validation with a short budget, then trains with it on every seed with the full budget.

They live in the hydra_plugins namespace because Hydra instantiates sweepers only from there.
"""

import math
import signal
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from omegaconf import OmegaConf

from mlplab.config.overrides import folder_name, split

CHOSEN_BY = "val/acc_best"


class NamedSweeper(BasicSweeper):
    """Hydra's basic sweeper; a job's folder (and TensorBoard run) is named by the overrides that vary in the sweep,
    `3_optimizer=adam,seed=0`, not by every override in alphabetical order. The sweep folder is held while the jobs
    run, and is the folder of one command (mlplab/experiments/sweep_folder.py); a job that an earlier run of the
    command trained keeps its folder, whatever its number now."""

    def sweep(self, arguments: list[str]) -> Any:
        from mlplab.experiments.sweep_folder import sweeping

        sweep_dir = Path(self.config.hydra.sweep.dir).resolve()
        adding = bool(self.config.get("sweep", {}).get("add", False))
        with sweeping(sweep_dir, [*self._parse_config(), *arguments], adding) as command:
            try:
                returns = self.launch_all(arguments)
            except SystemExit as stop:  # Ctrl-C or SIGTERM in a job (mlplab.cli.job): the table of what finished
                if stop.code not in (128 + signal.SIGINT, 128 + signal.SIGTERM):
                    raise
                command["jobs"] = self.planned_folders(sweep_dir) or command["jobs"]
                interrupted = stop
            else:
                command["jobs"], interrupted = self.job_folders(returns, sweep_dir), None
        if interrupted:  # now that sweep.json lists the jobs
            self.write_table(sweep_dir)
            raise interrupted
        return returns

    def planned_folders(self, sweep_dir: Path) -> list[str]:
        """The folders of this command's jobs that exist (those it reached before it stopped)."""
        from mlplab.experiments.sweep_folder import existing_jobs, job_key

        trained = existing_jobs(sweep_dir)
        planned = [job for batch in getattr(self, "overrides", []) for job in batch]
        return sorted({trained[job_key(job)] for job in planned if job_key(job) in trained})

    @staticmethod
    def write_table(sweep_dir: Path) -> None:
        from mlplab.experiments.sweep import write_results

        write_results(sweep_dir)
        print(f"the table of the jobs that finished: {sweep_dir / 'results.md'}", flush=True)

    def launch_all(self, arguments: list[str]) -> Any:
        if self.config.get("sweep", {}).get("seeds") == "auto":
            return self.in_rounds(arguments)
        from mlplab.experiments.sequential import RECORD

        (Path(self.config.hydra.sweep.dir) / RECORD).unlink(missing_ok=True)  # its verdicts are the fixed design's
        return super().sweep(arguments)

    def in_rounds(self, arguments: list[str]) -> list[list[JobReturn]]:
        """sweep.seeds=auto: seeds in rounds, each configuration until its verdict against the best is decided
        (mlplab/experiments/sequential.py); the presets' own seed list is set aside."""
        from mlplab.engine.runs import read_metrics, write_json
        from mlplab.errors import InputError
        from mlplab.experiments import sequential

        fewest, most = self.config.sweep.min_seeds, self.config.sweep.max_seeds
        if most < fewest:
            raise InputError(f"sweep.max_seeds={most}: must be at least sweep.min_seeds={fewest}")
        params = [p for p in self._parse_config() if split(p)[0] != "seed"]
        overrides = OverridesParser.create(config_loader=self.hydra_context.config_loader).parse_overrides(
            [*params, *arguments]
        )
        if seed := next((o for o in overrides if o.key_or_group == "seed"), None):
            raise InputError(f"{seed.input_line}: sweep.seeds=auto chooses the seeds (0, 1, ...); leave seed off")
        configurations = self.split_arguments(overrides, None)[0]
        plan = sequential.design(fewest, most, len(configurations))
        sweep_dir = Path(self.config.hydra.sweep.dir).resolve()
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        write_json(sweep_dir / sequential.RECORD, {"min_seeds": fewest, "max_seeds": most, "rows": len(configurations)})
        self.overrides = [[[*c, f"seed={s}"] for c in configurations for s in range(most)]]  # for names, Ctrl-C
        names = [_name(c, overrides) for c in configurations]
        values: dict[str, dict[int, float]] = {name: {} for name in names}
        returns, launched = [], 0
        state = sequential.decide(values, plan)
        while state.next_seeds is not None:
            jobs = [
                (i, s)
                for i, n in enumerate(names)
                if n in state.continuing
                for s in range(len(values[n]), state.next_seeds)
            ]
            print(f"seeds {jobs[0][1]}-{state.next_seeds - 1} for {len(state.continuing)} configurations", flush=True)
            batch = [[*configurations[i], f"seed={s}"] for i, s in jobs]
            self.validate_batch_is_legal(batch)
            results = list(self.launcher.launch(self.prepared(batch), initial_job_idx=launched))
            launched += len(results)
            returns.append(results)
            for (i, s), result in zip(jobs, results, strict=True):
                _ = result.return_value  # raises what a job raised (mlplab's jobs record their own failures)
                metrics = read_metrics(Path(result.hydra_cfg.hydra.runtime.output_dir))
                if metrics.get("status") == "ok" and names[i] in values:
                    values[names[i]][s] = metrics[CHOSEN_BY]
                elif names[i] in values:
                    print(f"{names[i]}: seed {s} ended {metrics.get('status')}; no more seeds for it", flush=True)
                    del values[names[i]]
            after = sequential.decide(values, plan)
            for name, decision in after.decided.items():
                if decision.seeds == state.next_seeds and decision.verdict == "worse":
                    print(f"{name}: {sequential.described(decision)}; no more seeds for it", flush=True)
            state = after
        return returns

    def job_folders(self, returns: list[list[JobReturn]], sweep_dir: Path) -> list[str]:
        """The folders (names in sweep_dir) of the jobs this command ran."""
        folders = (Path(job.hydra_cfg.hydra.runtime.output_dir).resolve() for batch in returns for job in batch)
        return sorted({folder.name for folder in folders if folder.parent == sweep_dir})

    def get_job_batch(self) -> list[list[str]]:
        return self.prepared(super().get_job_batch())

    def prepared(self, batch: list[list[str]]) -> list[list[str]]:
        """The jobs named by what varies in the sweep, each in the folder an earlier run of it trained, if any."""
        from mlplab.experiments.sweep_folder import existing_jobs, job_key

        batch = named(batch, [job for batch in self.overrides for job in batch], self.config)
        trained = existing_jobs(Path(self.config.hydra.sweep.dir))
        folders = [trained.get(job_key(job)) for job in batch]
        return [[*job, f"hydra.sweep.subdir={_quoted(f)}"] if f else job for job, f in zip(batch, folders, strict=True)]


def _quoted(value: str) -> str:
    """A value in quotes for Hydra's parser: a folder name of a sweep job holds = and ,."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def named(batch: list[list[str]], sweep: list[list[str]], config: Any) -> list[list[str]]:
    """The batch's jobs, each told to leave the overrides that all jobs of the sweep share out of its folder name."""
    values: dict[str, set[str]] = {}
    for job in sweep:
        for override in job:
            key, value = split(override)
            values.setdefault(key, set()).add(value)
    shared = [key for key, seen in values.items() if len(seen) == 1 and all(key in _keys(job) for job in sweep)]
    if len(shared) == len(values):  # nothing varies: the names keep every override
        return batch
    excluded = [*config.hydra.job.config.override_dirname.exclude_keys, *shared]
    listed = ",".join(f"'{key}'" for key in excluded)
    return [[*job, f"hydra.job.config.override_dirname.exclude_keys=[{listed}]"] for job in batch]


def _keys(job: list[str]) -> set[str]:
    return {split(override)[0] for override in job}


class TuneThenTrain(NamedSweeper):
    """Phase 1 (folder tune/): every configuration × every value of `grid` for the key `tuned`, once, on seed
    `tune_seed`, with the overrides in `budget`. Phase 2: every configuration with its best value on seeds
    0..seeds-1. A grid point that diverges or fails is recorded and skipped; a configuration with no finished grid
    point gets a failed row of its own in the results."""

    def __init__(
        self,
        tuned: str,
        grid: list[Any],
        budget: list[str],
        seeds: int,
        tune_seed: int = 0,
        max_batch_size: int | None = None,
        params: dict[str, str] | None = None,
    ) -> None:
        super().__init__(max_batch_size, params)
        self.tuned, self.grid, self.budget = tuned, list(grid), list(budget)
        self.seeds, self.tune_seed = seeds, tune_seed
        self.lost: list[str] = []  # folders of the configurations that got no final runs

    def launch_all(self, arguments: list[str]) -> list[list[JobReturn]]:
        from mlplab.errors import InputError
        from mlplab.experiments.sweep import report

        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        for override in overrides:
            if override.key_or_group in (self.tuned, "seed"):
                raise InputError(
                    f"{override.input_line}: this sweep sets {override.key_or_group} itself "
                    f"(the grid: sweep.tune.grid; the seeds: sweep.seeds); leave it off the command line"
                )
        if not isinstance(self.seeds, int):
            raise InputError(f"sweep.seeds={self.seeds}: the tuned comparison trains a number of seeds; give one")
        if not self.grid or self.seeds < 1:
            raise InputError(f"sweep.tune.grid={self.grid}, sweep.seeds={self.seeds}: need one value and one seed")
        configurations = self.split_arguments(overrides, None)[0]
        sweep_dir = Path(self.config.hydra.sweep.dir).resolve()
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")

        tune_dir = sweep_dir / "tune"
        quoted = _quoted(str(tune_dir))  # any folder name is one value to Hydra
        trials = [
            _merged(c, [f"{self.tuned}={v}", f"seed={self.tune_seed}", *self.budget, f"hydra.sweep.dir={quoted}"])
            for c in configurations
            for v in self.grid
        ]
        print(f"tuning {self.tuned} on validation: {len(trials)} runs in {tune_dir}", flush=True)
        tuning = self._launch(trials)
        report(tune_dir)

        final, lost = [], []
        for i, configuration in enumerate(configurations):
            points = tuning[i * len(self.grid) : (i + 1) * len(self.grid)]
            best = _best(points, self.grid)
            name = _name(configuration, overrides)
            if best is None:
                lost.append((configuration, name))
                print(f"{name}: no value of {self.tuned} finished training with a {CHOSEN_BY}; left out", flush=True)
                continue
            value, accuracy = best
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in self.grid)
            at_edge = numeric and len(self.grid) > 1 and value in (min(self.grid), max(self.grid))
            edge = " (at the edge of sweep.tune.grid: widen it)" if at_edge else ""
            print(f"{name}: {self.tuned}={value} ({CHOSEN_BY} {accuracy:.2%}){edge}", flush=True)
            final += [_merged(configuration, [f"{self.tuned}={value}", f"seed={s}"]) for s in range(self.seeds)]
        returns = [tuning, self._launch(final)] if final else [tuning]
        for number, (configuration, name) in enumerate(lost, start=len(final)):
            message = (
                f"no value of {self.tuned} in sweep.tune.grid finished training with a {CHOSEN_BY} "
                f"(see {tune_dir}/results.md)"
            )
            _record_lost(sweep_dir / f"{number}_{folder_name(name)}", configuration, message)
            self.lost.append(f"{number}_{folder_name(name)}")
        return returns

    def job_folders(self, returns: list[list[JobReturn]], sweep_dir: Path) -> list[str]:
        return sorted({*super().job_folders(returns, sweep_dir), *self.lost})  # with the configurations left out

    def _launch(self, batch: list[list[str]]) -> list[JobReturn]:
        batch = named(batch, batch, self.config)
        self.validate_batch_is_legal(batch)
        results = list(self.launcher.launch(batch, initial_job_idx=0))
        for result in results:
            _ = result.return_value  # raises what a job raised (mlplab's jobs record their own failures)
        return results


def _merged(*lists: list[str]) -> list[str]:
    """Overrides in order, a later one replacing an earlier one of the same key."""
    merged: dict[str, str] = {}
    for override in (o for overrides in lists for o in overrides):
        merged[split(override)[0]] = override
    return list(merged.values())


def _best(points: list[JobReturn], grid: list[Any]) -> tuple[Any, float] | None:
    """The grid value whose run reached the highest validation accuracy, and that accuracy; None if none ended ok."""
    from mlplab.engine.runs import read_metrics

    finished = []
    for value, point in zip(grid, points, strict=True):
        metrics = read_metrics(Path(point.hydra_cfg.hydra.runtime.output_dir))
        accuracy = metrics.get(CHOSEN_BY, math.nan)
        if metrics.get("status") == "ok" and not math.isnan(accuracy):
            finished.append((accuracy, -grid.index(value), value))
    if not finished:
        return None
    accuracy, _, value = max(finished)  # ties go to the first grid value
    return value, accuracy


def _name(configuration: list[str], overrides: list[Any]) -> str:
    """The configuration by the keys that vary in the sweep, as in the job folders' names."""
    varying = {o.get_key_element() for o in overrides if o.is_sweep_override()}
    return ",".join(sorted(o for o in configuration if split(o)[0] in varying)) or "run"


def _record_lost(folder: Path, configuration: list[str], message: str) -> None:
    """A configuration that got no final runs, as a failed job of the sweep: its table row says why."""
    from mlplab.engine.runs import record_failure

    (folder / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(configuration), folder / ".hydra" / "overrides.yaml")
    record_failure(folder, message)
