"""Which differences between configurations are real: intervals over seeds, paired tests against the best.

Runs of two configurations with the same seed share their initialisation (for the same architecture), their batch
order and their validation split, so a paired test over the seeds both have removes most of the noise. Tests use
scipy.stats; p-values against the best are Holm-corrected over every pair of rows, since the best is itself picked
from the data: every pair is one more chance of a fluke.
"""

import math
import statistics
from dataclasses import dataclass
from functools import cache

from scipy import optimize, stats

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
POWER = 0.8  # for the smallest difference that the seeds could have detected


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def mean_interval(values: list[float]) -> Interval | None:
    """Student's t interval of the mean; None with fewer than two values."""
    if len(values) < 2:
        return None
    mean, sem = statistics.fmean(values), stats.sem(values)
    if sem == 0:  # every seed gave the same value
        return Interval(mean, mean)
    low, high = stats.t.interval(CONFIDENCE, len(values) - 1, loc=mean, scale=sem)
    return Interval(float(low), float(high))


MAX_SEEDS = 100  # beyond this a planned seed count is said to be out of reach, not given


@dataclass(frozen=True)
class Paired:
    """A configuration against the best, over the seeds both have: the mean difference (this minus the best)."""

    seeds: int
    difference: float
    interval: Interval
    p: float  # paired t-test, two-sided, before correction
    spread: float  # the standard deviation of the per-seed differences
    wins: int  # seeds at which this configuration beat the best (rliable's probability of improvement: wins / seeds)

    @property
    def detectable(self) -> float:
        """The smallest |difference| that these seeds find with POWER at ALPHA."""
        return detectable_effect(self.seeds) * self.spread

    @property
    def seeds_needed(self) -> int | None:
        """The seeds that would detect the observed difference with POWER at ALPHA, from the spread measured."""
        return seeds_needed(self.difference, self.spread)


def paired(values: dict[int, float], best: dict[int, float]) -> Paired | None:
    """The paired comparison over shared seeds; None with fewer than two."""
    seeds = sorted(values.keys() & best.keys())
    if len(seeds) < 2:
        return None
    differences = [values[s] - best[s] for s in seeds]
    mean, spread = statistics.fmean(differences), statistics.stdev(differences)
    wins = sum(d > 0 for d in differences)
    if spread == 0:  # the same difference at every seed: no noise to test against
        return Paired(len(seeds), mean, Interval(mean, mean), 0.0 if mean else 1.0, 0.0, wins)
    test = stats.ttest_rel([values[s] for s in seeds], [best[s] for s in seeds])
    interval = Interval(*map(float, test.confidence_interval(CONFIDENCE)))
    return Paired(len(seeds), mean, interval, float(test.pvalue), spread, wins)


def seeds_needed(difference: float, spread: float) -> int | None:
    """The fewest seeds (pairs) at which a paired t-test detects `difference` with POWER at ALPHA when the per-seed
    differences spread by `spread`; None beyond MAX_SEEDS (or for no difference at all)."""
    if spread == 0:
        return 2 if difference else None
    if difference == 0 or detectable_effect(MAX_SEEDS) * spread > abs(difference):
        return None
    low, high = 2, MAX_SEEDS  # detectable_effect falls with n: the first n whose detectable difference is small enough
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if detectable_effect(middle) * spread <= abs(difference) else (middle + 1, high)
    return low


@cache
def detectable_effect(n: int) -> float:
    """The effect (difference / its standard deviation) that a two-sided paired t-test over n pairs detects with
    probability POWER at level ALPHA, from the noncentral t distribution."""
    df = n - 1
    critical = stats.t.ppf(1 - ALPHA / 2, df)

    def power(effect: float) -> float:
        shift = effect * math.sqrt(n)
        wrong_side = stats.nct.cdf(-critical, df, shift)  # negligible; scipy returns NaN for it at large shifts
        return stats.nct.sf(critical, df, shift) + (0.0 if math.isnan(wrong_side) else wrong_side) - POWER

    return optimize.brentq(power, 1e-9, 100)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down correction, in the order given (no scipy function applies it)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    corrected, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        corrected[i] = running
    return corrected


def against_best(values: list[dict[int, float]], best: int) -> list[tuple[Paired | None, float]]:
    """Each row's paired comparison with row `best` (None for the best and rows without two shared seeds) and its p,
    Holm-corrected over every pair of rows: the best is chosen from the data, so any pair may be the one compared,
    and correcting over the rows compared with it alone lets false verdicts through (3 equal rows: 6.3% of sweeps at
    α 5%, 4 rows: 7.8%; mlplab.experiments.sequential.simulate)."""
    comparisons = [paired(v, values[best]) if i != best else None for i, v in enumerate(values)]
    pairs = {(i, j): paired(values[i], values[j]) for i in range(len(values)) for j in range(i + 1, len(values))}
    tested = [pair for pair, c in pairs.items() if c is not None]
    corrected = dict(zip(tested, holm([pairs[pair].p for pair in tested]), strict=True))
    return [(c, corrected.get((min(i, best), max(i, best)), math.nan)) for i, c in enumerate(comparisons)]


def verdict(seeds: int, comparison: Paired | None, p: float | None, is_best: bool) -> str:
    """In words, against the best configuration."""
    if is_best:
        return "best"
    if seeds < 2:
        return f"{seeds} seed: no interval"
    if comparison is None:
        return "no seeds shared with the best: no paired test"
    if p is not None and p < ALPHA:
        return f"worse (p={p:.2g})"
    return f"not distinguishable from the best with {comparison.seeds} seeds"
