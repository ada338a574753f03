"""The differences between two configs: a resumed checkpoint's against the composed one, a sweep job folder's recorded
config against this command's, a study's stored overrides against this search's, two runs'; and a recorded config's
paths made those of the folder where it is now."""

import inspect
import os
from typing import Any

from hydra.utils import get_class

_NO_DEFAULT = object()


def differences(before: dict[str, Any], after: dict[str, Any], ignored: tuple[str, ...] = ()) -> list[tuple]:
    """(dotted key, value before, value after) of each value that differs between two nested configs, sorted by key,
    but for the `ignored` keys and those under them; a key missing on one side shows as '-'.

    A key that one side lacks and the other holds at its default is no difference: a later version that adds an
    argument with a default to an option's config leaves earlier checkpoints and sweep folders comparable."""
    old, new = flat(before), flat(after)
    keys = sorted(key for key in old.keys() | new.keys() if not _ignored(key, ignored) and not _same(key, old, new))
    return [(key, old.get(key, "-"), new.get(key, "-")) for key in keys]


def _ignored(key: str, ignored: tuple[str, ...]) -> bool:
    return any(key == name or key.startswith(f"{name}.") for name in ignored)


def _same(key: str, old: dict[str, Any], new: dict[str, Any]) -> bool:
    if key in old and key in new:
        return old[key] == new[key]
    present = old.get(key, new.get(key))
    return present == default(key, {**old, **new})


def default(key: str, values: dict[str, Any]) -> Any:
    """The default of an option's argument, by its dotted key, from the signature of the class its node's `_target_`
    names (in the flat `values`); _NO_DEFAULT where there is none."""
    node, _, name = key.rpartition(".")
    target = values.get(f"{node}._target_" if node else "_target_")
    try:
        parameter = inspect.signature(get_class(target)).parameters.get(name) if target else None
    except Exception:  # a target that no longer imports has no default to offer
        return _NO_DEFAULT
    return parameter.default if parameter and parameter.default is not inspect.Parameter.empty else _NO_DEFAULT


def flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config values by their dotted keys."""
    values: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            values.update(flat(value, f"{prefix}{key}."))
        else:
            values[f"{prefix}{key}"] = value
    return values


def relocated(value: Any, old: str, new: str) -> Any:
    """A recorded config (or any value in it) with every path in the folder `old` made a path in `new`."""
    if isinstance(value, dict):
        return {key: relocated(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [relocated(item, old, new) for item in value]
    if isinstance(value, str) and (value == old or value.startswith(old + os.sep)):
        return new + value[len(old) :]
    return value
