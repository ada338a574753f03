"""Sweep tables' statistics against values computed here by hand, for made-up sweep folders."""

import json
import math
import statistics
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from mlplab.experiments.comparison import detectable_effect, holm, seeds_needed
from mlplab.experiments.sweep import load_jobs, markdown, summarize, write_results

from conftest import REPO


def make_sweep(folder, runs: dict[str, dict[int, float | None]]) -> None:
    """One job per (optimizer, seed): val/acc_best as given (None: a failed job), test metrics derived from it."""
    number = 0
    for optimizer, seeds in runs.items():
        for seed, value in seeds.items():
            job = folder / f"{number}_optimizer={optimizer},seed={seed}"
            (job / ".hydra").mkdir(parents=True)
            (job / ".hydra" / "overrides.yaml").write_text(
                f"- optimizer={optimizer}\n- seed={seed}\n", encoding="utf-8"
            )
            if value is None:
                metrics = {"status": "failed", "error": "boom"}
            else:
                metrics = {"val/acc_best": value, "test/acc": value - 0.001, "test/loss": 1 - value}
                metrics |= {"status": "ok", "epochs": 3, "train_time_s": 1.0}
            (job / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
            number += 1


def rows_by_optimizer(folder) -> dict[str, dict]:
    _, rows = summarize(load_jobs(folder))
    return {row["optimizer"]: row for row in rows}


def t_interval(values: list[float]) -> tuple[float, float]:
    mean, sd, n = statistics.fmean(values), statistics.stdev(values), len(values)
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return mean - half, mean + half


def paired_p(differences: list[float]) -> float:
    n = len(differences)
    t = statistics.fmean(differences) / (statistics.stdev(differences) / math.sqrt(n))
    return 2 * stats.t.sf(abs(t), n - 1)


def test_a_clear_winner(tmp_path):
    good = {0: 0.980, 1: 0.982, 2: 0.979}
    bad = {0: 0.950, 1: 0.953, 2: 0.951}
    make_sweep(tmp_path, {"adam": good, "sgd": bad})
    _, rows = summarize(load_jobs(tmp_path))
    best, worse = rows
    assert best["optimizer"] == "adam" and best["verdict"] == "best"
    assert (best["val/acc_best ci_low"], best["val/acc_best ci_high"]) == pytest.approx(t_interval(list(good.values())))
    differences = [bad[s] - good[s] for s in range(3)]
    assert worse["val/acc_best diff"] == pytest.approx(statistics.fmean(differences))
    assert (worse["val/acc_best diff_low"], worse["val/acc_best diff_high"]) == pytest.approx(t_interval(differences))
    p = paired_p(differences)
    assert p < 0.01 and worse["val/acc_best p"] == pytest.approx(p)  # one comparison: Holm changes nothing
    assert worse["verdict"] == f"worse (p={p:.2g})" and math.isnan(worse["detectable"])
    table = markdown(["optimizer"], rows)
    assert f"| sgd | 3 | 95.13 ± 0.15 [{t_interval(list(bad.values()))[0] * 100:.2f}, " in table
    assert f"| -2.90 [{t_interval(differences)[0] * 100:+.2f}, " in table and f"worse (p={p:.2g})" in table


def test_pure_noise_is_not_distinguishable_and_says_what_the_seeds_could_detect(tmp_path):
    rng = np.random.default_rng(1)
    noise = {name: dict(enumerate(0.97 + 0.002 * rng.standard_normal(4))) for name in ("adam", "sgd")}
    make_sweep(tmp_path, noise)
    rows = rows_by_optimizer(tmp_path)
    best, other = sorted(rows.values(), key=lambda r: -r["val/acc_best mean"])
    differences = [other["val/acc_best"][s] - best["val/acc_best"][s] for s in range(4)]
    assert other["val/acc_best p"] == pytest.approx(paired_p(differences)) and other["val/acc_best p"] > 0.05
    assert other["verdict"] == "not distinguishable from the best with 4 seeds"
    assert other["detectable"] == pytest.approx(detectable_effect(4) * statistics.stdev(differences))
    assert "(they detect ≥ " in markdown(["optimizer"], list(rows.values()))


def test_detectable_effect_has_the_power_it_claims():
    # Independently, by simulation: a paired t-test over n pairs whose differences are effect + standard normal.
    rng = np.random.default_rng(0)
    for n in (3, 5, 10):
        effect = detectable_effect(n)
        samples = effect + rng.standard_normal((100_000, n))
        t = samples.mean(axis=1) / (samples.std(axis=1, ddof=1) / math.sqrt(n))
        power = (np.abs(t) > stats.t.ppf(0.975, n - 1)).mean()
        assert power == pytest.approx(0.8, abs=0.01), n


def test_unpaired_seeds_get_no_paired_test_and_partly_shared_ones_are_paired_over_those(tmp_path):
    make_sweep(
        tmp_path,
        {"adam": {0: 0.98, 1: 0.981, 2: 0.979}, "sgd": {3: 0.95, 4: 0.951, 5: 0.949}, "rmsprop": {1: 0.96, 2: 0.962}},
    )
    rows = rows_by_optimizer(tmp_path)
    assert rows["sgd"]["verdict"] == "no seeds shared with the best: no paired test"
    assert math.isnan(rows["sgd"]["val/acc_best p"])
    differences = [0.96 - 0.981, 0.962 - 0.979]  # seeds 1 and 2
    assert rows["rmsprop"]["val/acc_best diff"] == pytest.approx(statistics.fmean(differences))
    assert rows["rmsprop"]["val/acc_best comparison"].seeds == 2


def test_a_failed_job_leaves_the_others_compared(tmp_path):
    make_sweep(tmp_path, {"adam": {0: 0.98, 1: 0.982, 2: 0.979}, "sgd": {0: 0.95, 1: 0.953, 2: None}})
    rows = rows_by_optimizer(tmp_path)
    assert rows["sgd"]["seeds"] == 3 and rows["sgd"]["status"] == "1 failed, 2 ok"
    assert rows["sgd"]["val/acc_best comparison"].seeds == 2
    assert rows["sgd"]["val/acc_best p"] == pytest.approx(paired_p([0.95 - 0.98, 0.953 - 0.982]))


def test_single_seeds_say_that_no_interval_exists(tmp_path):
    make_sweep(tmp_path, {"adam": {0: 0.98}, "sgd": {0: 0.95}})
    write_results(tmp_path)
    rows = rows_by_optimizer(tmp_path)
    assert rows["sgd"]["verdict"] == "1 seed: no interval" and math.isnan(rows["sgd"]["val/acc_best ci_low"])
    table = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "| sgd | 1 | 95.00 (1 seed) |" in table and "± " not in table.split("\n\n")[0]


def test_holm_multiplies_the_sorted_p_values_and_keeps_their_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])  # 3 x 0.01; max(2 x 0.03, .); 1 x 0.04 < 0.06
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_holm_is_applied_over_every_pair_of_rows(tmp_path):
    values = {"adam": [0.980, 0.982, 0.979], "sgd": [0.950, 0.953, 0.951], "rmsprop": [0.975, 0.980, 0.972]}
    make_sweep(tmp_path, {name: dict(enumerate(v)) for name, v in values.items()})
    rows = rows_by_optimizer(tmp_path)
    pairs = [("sgd", "adam"), ("rmsprop", "adam"), ("sgd", "rmsprop")]  # the best is picked from the data: every pair
    raw = [paired_p([a - b for a, b in zip(values[x], values[y], strict=True)]) for x, y in pairs]
    corrected = holm(raw)
    assert [rows["sgd"]["val/acc_best p"], rows["rmsprop"]["val/acc_best p"]] == pytest.approx(corrected[:2])


def test_each_compared_row_says_in_how_many_seeds_it_beat_the_best_and_the_seeds_its_difference_needs(tmp_path):
    best = {0: 0.970, 1: 0.972, 2: 0.969, 3: 0.973, 4: 0.971}
    close = {0: 0.971, 1: 0.970, 2: 0.968, 3: 0.972, 4: 0.969}  # beats it at seed 0 only
    make_sweep(tmp_path, {"adam": best, "sgd": close})
    rows = rows_by_optimizer(tmp_path)
    differences = [close[s] - best[s] for s in range(5)]
    spread, mean = statistics.stdev(differences), statistics.fmean(differences)
    needed = rows["sgd"]["seeds_needed"]
    # The fewest seeds whose detectable difference (power 80%, α 0.05) is no larger than the one observed.
    assert detectable_effect(needed) * spread <= abs(mean) < detectable_effect(needed - 1) * spread
    assert rows["sgd"]["wins"] == 1 and rows["adam"]["wins"] == ""
    table = markdown(["optimizer"], list(rows.values()))
    assert f"beat it in 1 of 5 seeds; {needed} seeds tell it apart" in table


def test_seeds_needed_has_the_power_it_claims_and_says_when_it_is_out_of_reach():
    rng = np.random.default_rng(0)
    difference, spread = 0.001, 0.002
    n = seeds_needed(difference, spread)
    detected = [
        stats.ttest_rel(difference + spread * rng.standard_normal(n), np.zeros(n)).pvalue < 0.05 for _ in range(4000)
    ]
    assert statistics.fmean(detected) == pytest.approx(0.8, abs=0.03)  # the power it was planned for
    assert seeds_needed(0.00001, 0.01) is None and seeds_needed(0.0, 0.01) is None  # beyond MAX_SEEDS, or never
    assert seeds_needed(0.001, 0.0) == 2


def test_plan_seeds_answers_for_a_difference_the_user_names(tmp_path):
    rng = np.random.default_rng(3)
    make_sweep(tmp_path, {name: dict(enumerate(0.97 + 0.002 * rng.standard_normal(4))) for name in ("adam", "sgd")})
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "plan_seeds.py"), str(tmp_path), "--difference", "0.1"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows = rows_by_optimizer(tmp_path)
    other = max(rows.values(), key=lambda r: r["val/acc_best mean"] if r["verdict"] != "best" else -1)
    spread = other["val/acc_best comparison"].spread
    assert f"| optimizer={other['optimizer']} | 4 | {spread * 100:.3f} | " in result.stdout
    assert result.stdout.strip().endswith(f"| {seeds_needed(0.001, spread) or 'more than 100'} |")


def test_compare_two_runs_and_two_sweeps(tmp_path):
    for name, lr, acc in (("a", 0.01, 0.95), ("b", 0.1, 0.97)):
        folder = tmp_path / name
        folder.mkdir()
        config = {"optimizer": {"lr": lr}, "paths": {"output_dir": str(folder)}, "seed": 0}
        (folder / "run.json").write_text(json.dumps({"config": config}), encoding="utf-8")
        metrics = {"val/acc_best": acc, "test/acc": acc, "test/loss": 1 - acc, "epochs": 3, "train_time_s": 1.0}
        (folder / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    compare = [sys.executable, str(REPO / "scripts" / "compare.py")]
    runs = subprocess.run([*compare, str(tmp_path / "a"), str(tmp_path / "b")], capture_output=True, text=True)
    assert runs.returncode == 0, runs.stderr
    assert "- optimizer.lr: 0.01 in A, 0.1 in B" in runs.stdout and "paths" not in runs.stdout
    assert "val/acc_best  95.00  97.00  2.00" in runs.stdout

    for name, shift in (("sweep_a", 0.0), ("sweep_b", 0.002)):
        make_sweep(tmp_path / name, {"adam": {s: 0.97 + shift + 0.001 * (s % 2) for s in range(4)}})
        for job in (tmp_path / name).iterdir():
            config = {"optimizer": {"lr": 0.01 + shift}, "paths": {"output_dir": str(job)}}
            (job / "run.json").write_text(json.dumps({"config": config}), encoding="utf-8")
    sweeps = subprocess.run(
        [*compare, str(tmp_path / "sweep_a"), str(tmp_path / "sweep_b"), "--markdown"], capture_output=True, text=True
    )
    assert sweeps.returncode == 0, sweeps.stderr
    assert "| val/acc_best | 97.05 | 97.25 | 0.20 |" in sweeps.stdout
    assert "val/acc_best B - A +0.20 points [+0.20, +0.20], p=0 over 4 seeds; B beat A in 4 of them: B is better" in (
        sweeps.stdout
    )
    mixed = subprocess.run([*compare, str(tmp_path / "a"), str(tmp_path / "sweep_b")], capture_output=True, text=True)
    assert mixed.returncode == 2 and "give two run folders or two sweep folders" in mixed.stderr
