"""What the lab builds from a checkpoint's hyperparameters (eval, predict, export, the digit pad,
`Classifier.load_from_checkpoint`): only classes of the family each key allows, from the lab's own modules, torch or
Lightning, or from packages the user trusts by name (`trusted_modules`). Hydra's `instantiate` calls any importable
callable a `_target_` names, so a shared checkpoint could otherwise run code: every target is checked before anything
is imported from an untrusted module, built or written. Overrides read back from a file (a run's
.hydra/overrides.yaml on resume, a study's best trial) choose options and set values, never what is built. What the
user types on the command line or writes in conf/ stays theirs to choose, and is not checked here.
"""

import importlib
from collections.abc import Iterator
from typing import Any

from mlplab.config.overrides import split
from mlplab.errors import InputError

TRUSTED = ("mlplab", "torch", "lightning")  # the top-level packages whose classes a file may name
# The family of classes that each key of a checkpoint's hyperparameters may build, by the key's pattern ("*": any one
# name); the classes are named by module and class, and imported only to check a target.
FAMILIES = {
    "model": ("mlplab.models.network", "Network"),
    "loss": ("torch.nn", "Module"),
    "optimizer": ("torch.optim", "Optimizer"),
    "scheduler.scheduler": ("torch.optim.lr_scheduler", "LRScheduler"),
    "penalties.*": ("mlplab.penalties", "Penalty"),
}
HYDRA_KEYS = ("_target_", "_args_", "_partial_", "_convert_", "_recursive_")


def family(key: str) -> tuple[str, str] | None:
    """The (module, class) that the node at this dotted key may be an instance of, or None: no target allowed."""
    parts = key.split(".")
    for pattern, allowed in FAMILIES.items():
        expected = pattern.split(".")
        if len(expected) == len(parts) and all(e in ("*", part) for e, part in zip(expected, parts, strict=True)):
            return allowed
    return None


def targets(node: Any, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(dotted key, node) of every node of a nested config that holds a Hydra key (`_target_`, `_args_`, ...)."""
    if isinstance(node, dict):
        if any(key in node for key in HYDRA_KEYS):
            yield prefix.rstrip("."), node
        for key, value in node.items():
            yield from targets(value, f"{prefix}{key}.")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from targets(value, f"{prefix}{index}.")


def check_targets(node: dict[str, Any], source: str, trusted: tuple[str, ...] = ()) -> None:
    """InputError naming `source` (e.g. "ckpt_path=run.ckpt"), the key and the target, for the first node of a
    config read from a file that would build something other than a class of its key's family, from the lab, torch,
    Lightning or a `trusted` module; nothing untrusted is imported."""
    for key, spec in targets(node):
        target = spec.get("_target_")
        shown = f"{key}._target_={target}" if target is not None else f"{key}"
        allowed = family(key)
        if "_args_" in spec or allowed is None or not isinstance(target, str):
            reason = "positional _args_ are not taken from files" if "_args_" in spec else "nothing is built there"
            raise InputError(f"{source}: refused {shown}: {reason}")
        module_name, _, name = target.rpartition(".")
        if module_name.split(".")[0] not in (*TRUSTED, *trusted):
            raise InputError(
                f"{source}: refused {shown}: not a module of mlplab, torch or lightning; if it is a package of "
                "yours that you trust, name it in trusted_modules"
            )
        try:
            found = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError, ValueError):
            raise InputError(f"{source}: refused {shown}: no such class") from None
        base = getattr(importlib.import_module(allowed[0]), allowed[1])
        if not (isinstance(found, type) and issubclass(found, base)):
            raise InputError(f"{source}: refused {shown}: not a subclass of {allowed[0]}.{allowed[1]}")


def check_overrides(overrides: list[str], source: str, typed: set[str] | frozenset[str] = frozenset()) -> None:
    """InputError naming `source` and the override, for the first override read from a file that sets a Hydra key
    (`model._target_=...`, `+callbacks.x._target_=...`, `loss._args_=...`), unless this command line sets that key
    itself (`typed`): the user's own choice then replaces the file's."""
    for override in overrides:
        key = split(override)[0]
        if key not in typed and any(part in HYDRA_KEYS for part in key.split(".")):
            raise InputError(
                f"{source}: refused {override}: overrides read from a file choose options and set values, not what "
                "is built; if it is yours, give it on the command line"
            )
