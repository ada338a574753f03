"""The best trial written as configs: best.yaml in the study folder and an experiment (and, for model keys, a model
config) that `python src/train.py experiment=search_<study_name>` trains."""

from pathlib import Path
from typing import Any

import optuna
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf
from optuna.trial import FrozenTrial

from mlplab.config.overrides import overridden
from mlplab.config.trust import check_overrides
from mlplab.engine.runs import REPO, write_text
from mlplab.experiments.search.storage import counted


def write_best(study: optuna.Study, cfg: DictConfig, best: FrozenTrial | None = None, confirmed: str = "") -> Path:
    """The best trial (the study's, or `best`, the winner `confirmed` over seeds) as best.yaml in the study folder
    and as an experiment config; returns the experiment file.

    An experiment sets no model keys (they belong to one architecture): the trial's model values become a model
    config of their own, search_<study_name> in the model group beside the experiment folder, which the experiment
    selects (best_model.yaml in the study folder)."""
    settings, study_dir = cfg.search, Path(cfg.paths.output_dir)
    best = best or study.best_trial
    name = f"search_{settings.study_name}"
    header = [
        f"The best trial of the Optuna search {settings.study_name!r} ({study_dir}):",
        f"trial {best.number} of {len(counted(study))}, {settings.metric} {best.value:.4f}.",
        *([f"{confirmed} (confirm/results.md)."] if confirmed else []),
        f"Train it: python src/train.py experiment={name}  (command-line values still win, e.g. trainer.max_epochs=20)",
    ]
    choices = HydraConfig.get().runtime.choices
    # From the storage, which other workers (or whoever shares the database) write: checked like a file's.
    source = f"search.study_name={settings.study_name}: trial {best.number}"
    check_overrides(best.user_attrs["overrides"], source, overridden())  # this command line's own keys are its own
    experiment, model = best_configs(best.user_attrs["overrides"], set(choices), choices["model"], name, header)
    experiment_dir = Path(settings.experiment_dir) if settings.experiment_dir else REPO / "conf" / "experiment"
    for text, saved, group_dir in ((experiment, "best.yaml", experiment_dir), (model, "best_model.yaml", None)):
        if text is None:
            continue
        write_text(study_dir / saved, text)
        write_text((group_dir or experiment_dir.parent / "model") / f"{name}.yaml", text)
    return experiment_dir / f"{name}.yaml"


def best_configs(
    overrides: list[str], groups: set[str], model: str, name: str, header: list[str]
) -> tuple[str, str | None]:
    """(an experiment config like conf/experiment/lesson.yaml, a model config or None) that set what these
    overrides set: the model keys in the model config, on top of the model the trial used."""
    defaults: list[Any] = []
    values, model_values = OmegaConf.create(), OmegaConf.create()
    for override in OverridesParser.create().parse_overrides(overrides):
        key, value = override.key_or_group, override.value()
        if key == "experiment":  # the recipe the trial started from: this file's values come on top of it
            defaults.insert(0, value)
        elif key == "model":
            model = value
        elif key in groups:
            defaults.append({f"override /{key}": value})
        elif key.startswith("model."):
            OmegaConf.update(model_values, key.removeprefix("model."), value, force_add=True)
        else:
            OmegaConf.update(values, key, value, force_add=True)
    comments = "".join(f"# {line}\n" for line in header)
    model_yaml = None
    if model_values:
        model_yaml = comments + OmegaConf.to_yaml(OmegaConf.merge({"defaults": [model, "_self_"]}, model_values))
        model = name
    defaults.append({"override /model": model})
    document = OmegaConf.merge({"defaults": defaults}, values)
    return f"# @package _global_\n{comments}{OmegaConf.to_yaml(document)}", model_yaml
