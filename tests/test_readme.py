"""The `python src/train.py ...` commands of the README and the pages compose and build: the documentation stays
true. (The Chinese pages show only commands of their English twins: tests/test_translations.py.)"""

import re
import shlex

import pytest
import torch

from mlplab.training import build

from conftest import ENGLISH_PAGES, REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(
    {
        command.strip()
        for page in ENGLISH_PAGES
        for block in re.findall(r"```bash\n(.*?)```", (REPO / page).read_text(encoding="utf-8"), flags=re.S)
        for command in re.findall(r"python src/train\.py[^&#\n]*", block)
    }
)


def test_readme_documents_every_group_option():
    from test_config import OPTIONS

    for group, option in OPTIONS:
        assert f"`{option}`" in README, f"{group}={option} is not documented in README.md"


def first_job(overrides: list[str]) -> list[str]:
    """A multirun's first job: each swept key at its first value; Hydra's own settings left to Hydra."""
    job = []
    for override in overrides:
        if override.startswith(("-", "hydra/", "hydra.")) or "=" not in override:
            continue  # -m, --cfg job, Hydra's own settings
        key, _, value = override.partition("=")
        depth, cut = 0, len(value)
        for i, char in enumerate(value):
            depth += {"[": 1, "]": -1}.get(char, 0)
            if char == "," and depth == 0:
                cut = i
                break
        job.append(f"{key}={value[:cut]}")
    return job


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_composes_and_builds(make_cfg, command):
    overrides = first_job(shlex.split(command)[2:])
    cfg = make_cfg(*overrides, synthetic=False)
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        pytest.skip("needs a GPU")
    datamodule, module, trainer = build(cfg)
    assert module.net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_the_commands_were_found():
    assert len(COMMANDS) > 40 and "python src/train.py" in COMMANDS
