"""A search confirms its winner over seeds: its top trials are trained again on more seeds, the sweeps' table
judges them, and best.yaml is the confirmed winner."""

import json
import re

import pytest

from conftest import SYNTHETIC, data_overrides, run_entry

pytestmark = pytest.mark.slow  # a search and its confirmation


def test_the_top_trials_are_trained_on_more_seeds_and_the_confirmed_winner_is_written(synthetic_mnist, tmp_path):
    folder = tmp_path / "study"
    args = [*SYNTHETIC, "trainer.max_epochs=2", "logger=none", "search.pruner=null", *data_overrides(synthetic_mnist)]
    args += [f"hydra.run.dir={folder}", f"search.experiment_dir={tmp_path / 'conf' / 'experiment'}"]
    args += ["search.n_trials=3", "search.confirm.top_k=2", "search.confirm.seeds=3"]
    status, out, err = run_entry("src/search.py", args)
    assert status == 0, err[-3000:]
    confirm = folder / "confirm"
    jobs = sorted(p.name for p in confirm.iterdir() if p.is_dir())
    assert len(jobs) == 6 and all(re.fullmatch(r"trial=\d+,seed=[012]", job) for job in jobs)
    metrics = {job: json.loads((confirm / job / "metrics.json").read_text(encoding="utf-8")) for job in jobs}
    assert all(m["status"] == "ok" for m in metrics.values())
    for job in jobs:  # seed 0 is the trial's own run: not trained again
        if job.endswith("seed=0"):
            number = re.match(r"trial=(\d+)", job)[1]
            [trial_run] = folder.glob(f"{number}_*/metrics.json")
            assert metrics[job] == json.loads(trial_run.read_text(encoding="utf-8"))
    means = {}
    for job, m in metrics.items():
        means.setdefault(job.split(",")[0].removeprefix("trial="), []).append(m["val/acc_best"])
    winner = max(means, key=lambda n: sum(means[n]) / 3)
    said = re.search(r"confirmed best: trial (\d+), val/acc_best [\d.]+% \[[\d.]+, [\d.]+\] over 3 seeds; "
                     r"(not )?told apart from the runner-up, trial (\d+) \(", out)  # fmt: skip
    assert said and said[1] == winner, out[-2000:]
    table = (confirm / "results.md").read_text(encoding="utf-8")
    assert table.count("| 3 |") >= 2 and f"| {winner} |" in table
    best_yaml = (folder / "best.yaml").read_text(encoding="utf-8")
    assert f"# confirmed best: trial {winner}," in best_yaml
    # The same command again: the study is full and the confirmation finished; nothing is trained again.
    stamps = {job: (confirm / job / "metrics.json").stat().st_mtime_ns for job in jobs}
    status, out, err = run_entry("src/search.py", args)
    assert status == 0, err[-3000:]
    assert {job: (confirm / job / "metrics.json").stat().st_mtime_ns for job in jobs} == stamps
