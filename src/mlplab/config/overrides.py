"""The command line's overrides, and the folder names made of them: parsed as Hydra parses them, or split as text
where they are read back from a job's .hydra/overrides.yaml."""

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override

# Sweep jobs and search trials are named after their overrides; a file name may not pass 255 bytes.
NAME_LIMIT = 150


def command_line() -> list[Override]:
    """This command line's overrides, parsed as Hydra parses them (none outside a Hydra app)."""
    if not HydraConfig.initialized():
        return []
    return OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task))


def overridden() -> set[str]:
    """The keys set on this command line."""
    return {override.key_or_group for override in command_line()}


def split(override: str) -> tuple[str, str]:
    """(key, value text) of an override as written: `+trainer.x=1` and `trainer.x=2` set the same key."""
    key, _, value = override.partition("=")
    return key.lstrip("+~"), value


def folder_name(text: str) -> str:
    """A folder name made of overrides, within the file system's limit."""
    return text.replace("/", "_")[:NAME_LIMIT]
