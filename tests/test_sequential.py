"""sweep.seeds=auto: the group-sequential design keeps its error rate, decides what it can early and spends the
seeds saved on the rows still undecided."""

import csv
import json
import math

import pytest
from scipy import stats
from test_comparison import make_sweep
from test_sweep import FAST, multirun

from mlplab.experiments import sequential
from mlplab.experiments.comparison import ALPHA
from mlplab.experiments.sweep import write_results

from conftest import data_overrides

SWEEPS = 2000


def test_the_looks_come_every_min_seeds_and_the_error_rate_is_split_over_every_pair_of_rows():
    two, four = sequential.design(3, 12, 2), sequential.design(3, 10, 4)
    assert two.looks == (3, 6, 9, 12) and four.looks == (3, 6, 9, 10)
    assert two.alpha == pytest.approx(ALPHA) and four.alpha == pytest.approx(ALPHA / 6)
    # Pocock-type spending: each boundary below the one before, the first far above a single test's at 3 seeds.
    assert list(two.critical) == sorted(two.critical, reverse=True)
    assert two.critical[0] > stats.t.isf(ALPHA / 2, 2) and two.critical[-1] > stats.t.isf(ALPHA / 2, 11)


def test_with_no_difference_its_false_verdicts_stay_within_alpha_where_testing_every_round_does_not():
    result = sequential.simulate(SWEEPS, rows=2, min_seeds=3, max_seeds=12, difference=1.0)
    print(f"\n{SWEEPS} sweeps of 2 rows, 3..12 seeds: {result}")
    # The measured rate is consistent with at most α (a one-sided binomial test does not reject it at 1%).
    false = round(result.false_verdicts * SWEEPS)
    assert stats.binomtest(false, SWEEPS, ALPHA, alternative="greater").pvalue > 0.01
    # A design that tests at α after every round (what a hand-written loop does) is caught by the same test.
    naive = sequential.Design((3, 6, 9, 12), tuple(stats.t.isf(ALPHA / 2, n - 1) for n in (3, 6, 9, 12)), ALPHA)
    caught = sequential.simulate(SWEEPS, 2, 3, 12, 1.0, plan=naive)
    assert stats.binomtest(round(caught.false_verdicts * SWEEPS), SWEEPS, ALPHA, alternative="greater").pvalue < 1e-6
    # Under a real difference of one spread it finds it most of the time, on fewer seeds than the fixed design.
    assert result.power > 0.6 and result.seeds < 0.85 * result.fixed_seeds


@pytest.mark.slow
def test_with_more_rows_the_sweep_as_a_whole_keeps_alpha():
    for rows in (3, 4):
        result = sequential.simulate(SWEEPS, rows, 3, 12, difference=1.5)
        print(f"\n{SWEEPS} sweeps of {rows} rows: {result}")
        for rate in (result.false_verdicts, result.fixed_false_verdicts):  # the fixed table's too
            assert stats.binomtest(round(rate * SWEEPS), SWEEPS, ALPHA, alternative="greater").pvalue > 0.01


def test_a_clearly_worse_row_stops_at_the_first_look_and_close_ones_go_on_to_the_most_seeds():
    plan = sequential.design(3, 9, 3)
    close = [0.970, 0.972, 0.969, 0.973, 0.971, 0.970, 0.968, 0.972, 0.971]
    values = {
        "best": dict(enumerate(close)),
        "close": {s: v - 0.0005 + (0.001 if s % 2 else -0.001) for s, v in enumerate(close)},
        "bad": {s: v - 0.05 + 0.001 * (s % 2) for s, v in enumerate(close[:3])},
    }
    after_three = sequential.decide({k: {s: v[s] for s in range(3)} for k, v in values.items()}, plan)
    assert after_three.decided["bad"].verdict == "worse" and after_three.decided["bad"].seeds == 3
    assert sorted(after_three.continuing) == ["best", "close"] and after_three.next_seeds == 6
    final = sequential.decide(values, plan)
    assert final.next_seeds is None
    assert final.decided["close"] == sequential.Decision(9, "not distinguishable")
    assert final.decided["best"].verdict == "best"


def test_the_table_of_an_auto_sweep_gives_the_designs_verdicts(tmp_path):
    best = [0.970, 0.972, 0.969, 0.973, 0.971, 0.970]
    make_sweep(
        tmp_path,
        {
            "adam": dict(enumerate(best)),
            "sgd": {s: v - 0.05 + 0.001 * (s % 2) for s, v in enumerate(best[:3])},
            "rmsprop": {s: v - 0.0003 * (-1) ** s for s, v in enumerate(best)},
        },
    )
    (tmp_path / "sequential.json").write_text(json.dumps({"min_seeds": 3, "max_seeds": 6, "rows": 3}))
    rows, table = write_results(tmp_path)
    verdicts = {row["optimizer"]: row["verdict"] for row in rows}
    t = (
        sequential.decide(
            {"a": dict(enumerate(best)), "s": {s: v - 0.05 + 0.001 * (s % 2) for s, v in enumerate(best[:3])}},
            sequential.design(3, 6, 3),
        )
        .decided["s"]
        .t
    )
    assert verdicts == {
        "adam": "best",
        "sgd": f"worse: decided after 3 seeds (t={t:.1f}, boundary ±{sequential.design(3, 6, 3).critical[0]:.1f})",
        "rmsprop": "not distinguishable from the best after 6 seeds (sweep.max_seeds)",
    }
    assert (
        "| sgd | 3 |" in table
        and "| rmsprop | 6 |" in table
        and "sweep.seeds=auto: seeds were given in rounds" in table
    )
    assert math.isnan(rows[2]["detectable"])


@pytest.mark.slow
def test_an_auto_sweep_gives_seeds_only_to_the_rows_still_undecided(synthetic_mnist, tmp_path):
    # A learning rate that learns nothing against two that learn the same (their differences: none at all).
    args = [*FAST, *data_overrides(synthetic_mnist), "optimizer=sgd", "optimizer.lr=1e-9,0.05,0.050000001"]
    args += ["sweep.seeds=auto", "sweep.min_seeds=3", "sweep.max_seeds=6", f"hydra.sweep.dir={tmp_path}"]
    result = multirun(*args)
    assert result.returncode == 0, result.stderr
    assert "optimizer.lr=1e-09: worse: decided after 3 seeds" in result.stdout
    rows = {row["optimizer.lr"]: row for row in json_rows(tmp_path)}
    assert {lr: row["seeds"] for lr, row in rows.items()} == {"1e-09": 3, "0.05": 6, "0.050000001": 6}
    # Run again: every job is kept, and the same rows get the same seeds.
    again = multirun(*args)
    assert again.returncode == 0 and again.stdout.count("kept: ") == 15


def json_rows(folder):
    with (folder / "results.csv").open(encoding="utf-8") as f:
        return [{**row, "seeds": int(row["seeds"])} for row in csv.DictReader(f)]
