"""Seeds spent where they decide (`sweep.seeds=auto`): a group-sequential design over rounds of seeds.

Every configuration gets `sweep.min_seeds` seeds; after each round ("look"), a configuration whose paired difference
from the best is decided stops getting seeds, and the undecided ones get `min_seeds` more, up to `sweep.max_seeds`.
Testing again after every round at 0.05 would find "differences" that are not there far more often than 5% of the
time; a group-sequential design spends the error rate over the looks instead, so that over all of them together it
stays at α:

- Lan & DeMets (1983) α-spending with Pocock's spending function α·ln(1 + (e - 1)·t), t the share of the most
  seeds seen so far. Pocock's spends much of α early, which suits seeds: at 3 seeds a paired t-test has 2 degrees of
  freedom, and O'Brien-Fleming's early boundary would stop nothing.
- The boundaries are the paired t statistic's own, from its joint law over the looks under no difference (drawn:
  t_boundaries), rather than z boundaries turned into t ones look by look (Jennison & Turnbull 2000, section
  3.8), which at 3 seeds let too many false verdicts through.
- The best configuration is chosen from the data at each look, so a row may be compared with any other: the error
  rate is split over every pair of rows (Bonferroni), which bounds the chance of any false verdict in the sweep by α
  whichever row turns out best.

`simulate` measures the error rate, the power and the seeds saved on synthetic numbers (tests/test_sequential.py;
scripts/simulate_seeds.py prints them).
"""

import math
import statistics
from dataclasses import dataclass
from functools import cache

import numpy as np

from mlplab.experiments.comparison import ALPHA, against_best

RECORD = "sequential.json"  # in the sweep folder: the design's settings, so that its table gives the design's verdicts
PATHS = 1_000_000  # null sequences drawn for the boundaries: about 2,400 crossings at α 0.0024, the 7-row share


@dataclass(frozen=True)
class Design:
    """Seeds at each look and the |t| that decides a paired comparison there."""

    looks: tuple[int, ...]
    critical: tuple[float, ...]
    alpha: float  # each pair's share of ALPHA

    @property
    def max_seeds(self) -> int:
        return self.looks[-1]


@cache
def design(min_seeds: int, max_seeds: int, rows: int, alpha: float = ALPHA) -> Design:
    """The design for `rows` configurations: looks at min_seeds, 2·min_seeds, ... and max_seeds."""
    looks = tuple(sorted({*range(min_seeds, max_seeds, min_seeds), max_seeds}))
    per_pair = alpha / max(1, rows * (rows - 1) // 2)
    return Design(looks, t_boundaries(looks, per_pair), per_pair)


def spent(alpha: float, t: float) -> float:
    """Pocock-type spending function (Lan & DeMets 1983): the error rate spent by information fraction t."""
    return alpha * math.log(1 + (math.e - 1) * t)


def t_boundaries(looks: tuple[int, ...], alpha: float) -> tuple[float, ...]:
    """Two-sided boundaries c_k for the paired t statistic at each look such that, with no difference, it first
    reaches |t| >= c_k at look k with probability spent(t_k) - spent(t_k-1), t_k = looks[k] / looks[-1].

    The t statistics' joint law under no difference does not depend on the spread, so it is drawn once (PATHS
    sequences of normal differences, a fixed seed): exact but for the draw, where turning z boundaries into t ones
    look by look is not at 2 degrees of freedom (it let 6.4% of null sweeps through at α 5%, measured)."""
    generator = np.random.default_rng(20261207)
    differences = generator.standard_normal((PATHS, looks[-1]), dtype=np.float32)  # 4 MB per seed
    alive = np.ones(PATHS, dtype=bool)
    boundaries, previous = [], 0.0
    for n in looks:
        sample = differences[:, :n]
        t = np.abs(sample.mean(axis=1) / (sample.std(axis=1, ddof=1) / math.sqrt(n)))
        crossing = round((spent(alpha, n / looks[-1]) - spent(alpha, previous)) * PATHS)
        c = float(np.sort(t[alive])[::-1][max(crossing, 1) - 1]) if crossing else math.inf
        alive &= t < c
        boundaries.append(c)
        previous = n / looks[-1]
    return tuple(boundaries)


@dataclass(frozen=True)
class Decision:
    seeds: int  # the seeds the comparison was decided on (or the most, when it was not)
    verdict: str  # "best", "worse", "not distinguishable"
    t: float = math.nan  # the paired t statistic at that look
    critical: float = math.nan  # the boundary it was held against


@dataclass(frozen=True)
class State:
    decided: dict[str, Decision]  # rows whose verdict is final
    continuing: list[str]  # rows still getting seeds (the best among them)
    next_seeds: int | None  # the seeds each continuing row needs before the next look; None once done


def decide(values: dict[str, dict[int, float]], plan: Design) -> State:
    """Replays the looks over the per-seed values (row -> seed -> metric, higher is better) that exist: which rows
    are decided, and which get seeds up to which count. A row at a look needs seeds 0..n-1."""
    decided: dict[str, Decision] = {}
    continuing = list(values)
    if not continuing:  # every row failed
        return State(decided, [], None)
    for n, critical in zip(plan.looks, plan.critical, strict=True):
        if any(any(s not in values[row] for s in range(n)) for row in continuing):
            return State(decided, continuing, n)  # this look's seeds are not all in yet
        means = {row: statistics.fmean(values[row][s] for s in range(n)) for row in continuing}
        best = max(continuing, key=lambda row: (means[row], -continuing.index(row)))
        for row in [r for r in continuing if r != best]:
            t = _paired_t([values[row][s] - values[best][s] for s in range(n)])
            if abs(t) >= critical:
                decided[row] = Decision(n, "worse", t, critical)
                continuing.remove(row)
        if len(continuing) == 1:
            break
    last = min(n, plan.max_seeds)
    for row in continuing:
        decided[row] = Decision(last, "best" if row == best else "not distinguishable")
    return State(decided, [], None)


def described(decision: Decision) -> str:
    """The verdict in words, for the table and the sweep's log."""
    if decision.verdict == "worse":
        return f"worse: decided after {decision.seeds} seeds (t={decision.t:.1f}, boundary ±{decision.critical:.1f})"
    if decision.verdict == "best":
        return "best"
    return f"not distinguishable from the best after {decision.seeds} seeds (sweep.max_seeds)"


def _paired_t(differences: list[float]) -> float:
    mean, spread = statistics.fmean(differences), statistics.stdev(differences)
    if spread == 0:
        return 0.0 if mean == 0 else math.copysign(math.inf, mean)
    return mean / (spread / math.sqrt(len(differences)))


@dataclass(frozen=True)
class Simulated:
    false_verdicts: float  # share of sweeps with a "worse" verdict where no row differs (sequential design)
    fixed_false_verdicts: float  # the same for the fixed design at max_seeds, the sweeps' table
    power: float  # share of sweeps in which the worse row was found worse (sequential), under `difference`
    fixed_power: float
    seeds: float  # mean seeds per sweep (all rows), sequential
    fixed_seeds: int


def simulate(
    sweeps: int,
    rows: int,
    min_seeds: int,
    max_seeds: int,
    difference: float,
    spread: float = 1.0,
    seed: int = 0,
    plan: Design | None = None,
) -> Simulated:
    """Synthetic sweeps: per-seed values normal around each row's mean, with a seed effect shared by the rows (as
    the lab's seeds share initialisation and batch order). Under the null every row has mean 0; under the
    alternative the last row is `difference` (in units of the spread of a paired difference) below the others.
    `plan`: another design to measure (the lab's by default)."""
    plan, generator = plan or design(min_seeds, max_seeds, rows), np.random.default_rng(seed)
    names = [f"r{i}" for i in range(rows)]

    def one(shift: float) -> tuple[bool, bool, bool, bool, int]:
        shared = generator.normal(0, 3, max_seeds)  # the seed's own effect: paired away
        noise = generator.normal(0, spread / math.sqrt(2), (rows, max_seeds))
        means = [0.0] * (rows - 1) + [-shift]
        values = {n: {s: means[i] + shared[s] + noise[i, s] for s in range(max_seeds)} for i, n in enumerate(names)}
        state = decide(values, plan)
        found = {row for row, d in state.decided.items() if d.verdict == "worse"}
        fixed = _fixed_worse(values)
        used = sum(d.seeds for d in state.decided.values())
        return bool(found), names[-1] in found, bool(fixed), names[-1] in fixed, used

    null = [one(0.0) for _ in range(sweeps)]
    alternative = [one(difference) for _ in range(sweeps)]
    return Simulated(
        false_verdicts=statistics.fmean(r[0] for r in null),
        fixed_false_verdicts=statistics.fmean(r[2] for r in null),
        power=statistics.fmean(r[1] for r in alternative),
        fixed_power=statistics.fmean(r[3] for r in alternative),
        seeds=statistics.fmean(r[4] for r in alternative),
        fixed_seeds=rows * max_seeds,
    )


def _fixed_worse(values: dict[str, dict[int, float]]) -> set[str]:
    """Rows the fixed design calls worse: every row on every seed against the best, as the sweeps' table does."""
    rows = sorted(values, key=lambda row: -statistics.fmean(values[row].values()))
    compared = against_best([values[row] for row in rows], 0)
    return {row for row, (comparison, p) in zip(rows, compared, strict=True) if comparison and p < ALPHA}
