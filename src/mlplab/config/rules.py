"""The small language of ranges that the config's rules are written in: `within("[0, 1)")`, `one_of("step", "epoch")`,
`optional(...)`, `list_of(...)`. A rule names a key, a test, what is allowed (completing "must be ...") and a value it
refuses, which the tests check it does."""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def within(interval: str, kind: str = "number") -> tuple[Callable[[Any], bool], str]:
    """(test, allowed text) of a number (or an integer) in an interval written as in mathematics: '[0, 1)'."""
    low, high = (float(end.strip(" [()]")) for end in interval.split(","))
    closed_low, closed_high = interval[0] == "[", interval[-1] == "]"

    def ok(value: Any) -> bool:
        if not (integer(value) if kind == "integer" else number(value)):
            return False
        return (low <= value if closed_low else low < value) and (value <= high if closed_high else value < high)

    article = "an" if kind == "integer" else "a"
    if high == math.inf:
        return ok, f"{article} {kind} {'>=' if closed_low else '>'} {low:g}"
    return ok, f"{article} {kind} in {interval}"


def one_of(*choices: Any) -> tuple[Callable[[Any], bool], str]:
    """(test, allowed text) of a value among choices (None: null)."""
    names = list(dict.fromkeys("null" if choice is None else str(choice) for choice in choices))  # 32 and "32": once
    allowed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    return lambda value: any(value == choice and type(value) is type(choice) for choice in choices), allowed


def optional(rule: tuple[Callable[[Any], bool], str]) -> tuple[Callable[[Any], bool], str]:
    """The rule, or null (the library's default, or 'none' where the config says so)."""
    ok, allowed = rule
    return lambda value: value is None or ok(value), f"null or {allowed}"


def list_of(rule: tuple[Callable[[Any], bool], str], length: int | None = None) -> tuple[Callable[[Any], bool], str]:
    """A non-empty list (of `length` items, when given) whose every item passes the rule."""
    ok, allowed = rule

    def ok_list(value: Any) -> bool:
        if not isinstance(value, list):
            return False
        return (len(value) == length if length else len(value) >= 1) and all(map(ok, value))

    kind, condition = allowed.split(" ", 2)[1:]  # "an integer >= 1": a list of integers >= 1
    return ok_list, f"a list of {length or 'one or more'} {kind}s {condition}"


FLAG = (lambda value: isinstance(value, bool), "true or false")
PATH = (lambda value: isinstance(value, str) and value != "", "a path")
SEED = (lambda value: integer(value) and 0 <= value < 2**32, "an integer from 0 to 4294967295")
BATCHES = (  # Lightning's counts of batches: a number of them, or a fraction of the epoch's
    lambda value: (integer(value) and value >= 1) or (isinstance(value, float) and 0 < value <= 1),
    "a number of batches (an integer >= 1) or a fraction of the epoch in (0, 1]",
)
# Lightning's precisions, e.g. 32-true, 16-mixed, bf16-mixed: its type hint of Trainer(precision=), the one list.


@dataclass(frozen=True)
class Rule:
    key: str  # a dotted config key, checked where the composed config has it (an option's own keys)
    ok: Callable[[Any], bool]
    allowed: str  # completes "must be ..."
    refused: Any  # a value outside the range: an example for the reader, which the tests check is refused
