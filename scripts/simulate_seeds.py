"""How well `sweep.seeds=auto` keeps its promises, on synthetic sweeps: `python scripts/simulate_seeds.py`.

For 2 and 3 configurations, with no difference between them (the share of sweeps with a false "worse" verdict,
which should be at most α = 5%) and with one configuration worse by one spread of a paired difference (the share of
sweeps that find it, and the seeds spent), for the sequential design and for the fixed design at the most seeds.
"""

import argparse

from scipy import stats

from mlplab.experiments.sequential import simulate


def interval(rate: float, sweeps: int) -> str:
    """The rate in % with its 95% Clopper-Pearson interval."""
    found = round(rate * sweeps)
    low, high = stats.binomtest(found, sweeps).proportion_ci(0.95)
    return f"{rate:.2%} [{low:.2%}, {high:.2%}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=10_000, help="simulated sweeps per setting")
    parser.add_argument("--min-seeds", type=int, default=3)
    parser.add_argument("--max-seeds", type=int, default=12)
    parser.add_argument("--difference", type=float, default=1.0, help="in spreads of a paired difference")
    args = parser.parse_args()
    print(
        f"{args.sweeps} simulated sweeps per row; seeds {args.min_seeds} at a time up to {args.max_seeds}; "
        f"the worse configuration {args.difference:g} spread below the others\n"
    )
    print(
        "| configurations | false verdicts, auto | false verdicts, fixed | power, auto | power, fixed "
        "| seeds, auto | seeds, fixed | saved |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for rows in (2, 3):
        r = simulate(args.sweeps, rows, args.min_seeds, args.max_seeds, args.difference)
        saved = 1 - r.seeds / r.fixed_seeds
        print(
            f"| {rows} | {interval(r.false_verdicts, args.sweeps)} | {interval(r.fixed_false_verdicts, args.sweeps)} "
            f"| {r.power:.1%} | {r.fixed_power:.1%} | {r.seeds:.1f} | {r.fixed_seeds} | {saved:.0%} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
