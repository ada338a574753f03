"""The small language of ranges that the config's rules are written in: `within("[0, 1)")`, `one_of("step", "epoch")`,
`optional(...)`, `list_of(...)`. A rule names a key, a test, what is allowed (completing "must be ...") and a value it
refuses, which the tests check it does.

An option of a library's class (a torch optimizer, a scheduler, Lightning's Trainer) writes its ranges beside its keys,
as text in its config's `_ranges_` (`lr: (0, inf)`, `nesterov: true or false`, `betas: list of 2 [0, 1)`): `parse`
reads them, and `without_ranges` leaves them out of what is built. The lab's own classes declare `RULES` instead.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omegaconf import OmegaConf

from mlplab.errors import InputError

RANGES = "_ranges_"  # an option's ranges, beside its keys: not an argument of its class


def number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def within(interval: str, kind: str = "number") -> tuple[Callable[[Any], bool], str]:
    """(test, allowed text) of a number (or an integer) in an interval written as in mathematics: '[0, 1)'."""
    low, high = _bounds(interval)
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
    names = list(dict.fromkeys(_written(choice) for choice in choices))  # 32 and "32": once
    allowed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    return lambda value: any(value == choice and type(value) is type(choice) for choice in choices), allowed


def _written(choice: Any) -> str:
    """A choice as YAML and the command line write it: null, true, 0.5."""
    return "null" if choice is None else str(choice).lower() if isinstance(choice, bool) else str(choice)


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


@dataclass(frozen=True)
class Rule:
    key: str  # a dotted config key, checked where the composed config has it (an option's own keys)
    ok: Callable[[Any], bool]
    allowed: str  # completes "must be ..."
    refused: Any  # a value outside the range: an example for the reader, which the tests check is refused

    def check(self, value: Any, key: str | None = None) -> None:
        """Raise InputError when `value` breaks the rule, naming it as `key` (the rule's own key by default)."""
        if not self.ok(value):
            raise InputError(f"{key or self.key}={value}: must be {self.allowed}")


def parse(text: str, named: dict[str, Rule] | None = None) -> tuple[Callable[[Any], bool], str, Any]:
    """(test, allowed text, a refused value) of a range written as text: `(0, inf)`, `integer [1, inf)`,
    `true or false`, `a path`, `one of cos, linear`, `list of 2 [0, 1)`, `null or ...`, or a name of `named`."""
    text = text.strip()
    if named and text in named:
        rule = named[text]
        return rule.ok, rule.allowed, rule.refused
    if text.startswith("null or "):
        ok, allowed, refused = parse(text.removeprefix("null or "), named)
        return (*optional((ok, allowed)), refused)
    if text == "true or false":
        return (*FLAG, "yes")
    if text == "a path":
        return (*PATH, 1)
    if text.startswith("one of "):
        words = [word.strip() for word in text.removeprefix("one of ").split(",")]
        return (*one_of(*(_word(word) for word in words)), "bad")
    if text.startswith("list of "):
        rest = text.removeprefix("list of ")
        count, _, item = rest.partition(" ") if rest[0].isdigit() else ("", "", rest)
        ok, allowed, refused = parse(item, named)
        return (*list_of((ok, allowed), int(count) if count else None), [refused] * (int(count) if count else 1))
    kind, interval = ("integer", text.removeprefix("integer ")) if text.startswith("integer ") else ("number", text)
    return (*within(interval, kind), _outside(interval, kind))


def _bounds(interval: str) -> tuple[float, float]:
    low, high = (float(end.strip(" [()]")) for end in interval.split(","))
    return low, high


def _word(word: str) -> Any:
    return {"null": None, "true": True, "false": False}.get(word, word)


def _outside(interval: str, kind: str) -> int | float:
    """A value just outside the interval: its upper end (or past it), else its lower end (or below it)."""
    low, high = _bounds(interval)
    step = 1 if kind == "integer" else 0.5
    if high != math.inf:
        value = high if interval[-1] == ")" else high + step
    else:
        value = low if interval[0] == "(" else low - step
    return int(value) if kind == "integer" or value == int(value) else value


def ranges(node: Any, prefix: str, named: dict[str, Rule] | None = None) -> list[Rule]:
    """The rules that an option's `_ranges_` writes, by their dotted keys under `prefix`."""
    written = node.get(RANGES) or {}
    return [Rule(f"{prefix}{key}", *parse(str(text), named)) for key, text in written.items()]


def without_ranges(node: Any) -> Any:
    """A plain copy of a config or one of its nodes (resolved), without the options' `_ranges_`: what is built from
    it, and what a run records."""
    if OmegaConf.is_config(node):
        node = OmegaConf.to_container(node, resolve=True)
    if isinstance(node, dict):
        return {key: without_ranges(value) for key, value in node.items() if key != RANGES}
    if isinstance(node, list):
        return [without_ranges(value) for value in node]
    return node
