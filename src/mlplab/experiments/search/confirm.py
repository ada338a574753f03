"""The search's winner confirmed over seeds: the top search.confirm.top_k trials trained again on
search.confirm.seeds seeds each (the trial's own run is its first seed), in the study folder's confirm/, laid out as a
sweep folder, so that the sweeps' table gives each finalist its interval and a Holm-corrected verdict against the
best. One seed picks the winner where the winner's curse is worst: at the top of a search.

The worker that writes the study's table runs it; a job already finished is kept, an interrupted one resumed (as a
sweep's jobs are), so the same command continues a confirmation that was stopped.
"""

from pathlib import Path
from typing import Any

import optuna
from hydra import compose
from omegaconf import DictConfig, OmegaConf, open_dict
from optuna.trial import FrozenTrial, TrialState

from mlplab.config.overrides import overridden
from mlplab.config.trust import check_overrides
from mlplab.engine.runs import read_metrics, write_json, write_text
from mlplab.experiments.continuation import newest_checkpoint, resume
from mlplab.experiments.sweep import load_jobs, report, summarize
from mlplab.training import train


def finalists(study: optuna.Study, top_k: int) -> list[FrozenTrial]:
    """The study's top_k completed trials, best first."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(done, key=lambda t: t.value, reverse=study.direction.name == "MAXIMIZE")[:top_k]


def confirm(study: optuna.Study, cfg: DictConfig) -> tuple[FrozenTrial, str]:
    """Trains the finalists on the other seeds, writes confirm/results.{csv,md,png}, and returns the confirmed
    winner (the highest mean val/acc_best) with the line that says whether it is told apart from the runner-up."""
    settings, study_dir = cfg.search, Path(cfg.paths.output_dir)
    folder = study_dir / "confirm"
    top = finalists(study, settings.confirm.top_k)
    own_seed = int(cfg.seed)
    seeds = [own_seed + i for i in range(settings.confirm.seeds)]
    print(f"\nconfirming the top {len(top)} trials over seeds {seeds[0]}..{seeds[-1]} in {folder}", flush=True)
    for trial in top:
        for seed in seeds:
            job = folder / f"trial={trial.number},seed={seed}"
            write_text(job / ".hydra" / "overrides.yaml", OmegaConf.to_yaml([f"trial={trial.number}", f"seed={seed}"]))
            if read_metrics(job).get("status") == "ok":
                continue  # finished by an earlier call
            if seed == own_seed:  # the trial's own run: the same config and seed, already trained
                trained = next(study_dir.glob(f"{trial.number}_*"), None)
                if trained is not None and (own := read_metrics(trained)).get("status") == "ok":
                    write_json(job / "metrics.json", own)
                    continue
            _train(cfg, trial, seed, job)
    report(folder)
    _, rows = summarize(load_jobs(folder))
    if len(top) == 1:  # nothing to tell apart: the table has one row, without a trial column
        rows[0]["trial"] = top[0].number
    winner = next(t for t in top if t.number == int(rows[0]["trial"]))
    return winner, _said(rows)


def _train(cfg: DictConfig, trial: FrozenTrial, seed: int, job: Path) -> dict[str, Any]:
    """The trial's overrides with another seed, trained into `job` (resumed from its newest checkpoint if any)."""
    overrides = trial.user_attrs["overrides"]
    # From the storage, which other workers (or whoever shares the database) write: checked like a file's.
    check_overrides(overrides, f"search.study_name={cfg.search.study_name}: trial {trial.number}", overridden())
    job_cfg = compose(config_name="train", overrides=[*overrides, f"seed={seed}"])
    with open_dict(job_cfg):
        job_cfg.paths.output_dir = str(job)
    print(f"trial {trial.number}, seed {seed}", flush=True)
    checkpoint = newest_checkpoint(job)
    return (resume(job_cfg, checkpoint) if checkpoint else train(job_cfg))[0]


def _said(rows: list[dict[str, Any]]) -> str:
    """The confirmed winner and its verdict against the runner-up, in words."""
    best = rows[0]
    mean, low, high = (best[f"val/acc_best {part}"] * 100 for part in ("mean", "ci_low", "ci_high"))
    line = f"confirmed best: trial {best['trial']}, val/acc_best {mean:.2f}% [{low:.2f}, {high:.2f}]"
    line += f" over {best['seeds']} seeds"
    if len(rows) < 2:
        return line
    runner = rows[1]
    told = "told apart from" if runner["verdict"].startswith("worse") else "not told apart from"
    return f"{line}; {told} the runner-up, trial {runner['trial']} ({runner['verdict']})"
