"""Every config group composes, builds its objects, and means what the README says."""

from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn

from mlplab.config.checks import check_config
from mlplab.data import MNISTDataModule
from mlplab.errors import InputError
from mlplab.losses import SoftmaxMSELoss
from mlplab.module import Classifier
from mlplab.training import build

from conftest import CONF_DIR, SYNTHETIC

# conf/hydra/ holds settings for Hydra's own groups (hydra/launcher=slurm, hydra/output=mlplab), not groups of ours.
GROUPS = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "hydra")
OPTIONS = [
    (g, p.stem)
    for g in GROUPS
    for p in sorted((CONF_DIR / g).glob("*.yaml"))
    if (g, p.stem) != ("debug", "default") and not p.stem.startswith("search_")  # search_*: written by searches
]


def test_every_group_is_covered():
    assert set(GROUPS) == {
        "callbacks", "data", "debug", "experiment", "logger", "loss", "model", "optimizer", "regularization",
        "scheduler", "sweep", "trainer",
    }  # fmt: skip


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_and_builds(make_cfg, group, option):
    # A model option is built as its own config says, without the synthetic runs' MLP widths.
    base = [o for o in SYNTHETIC if not o.startswith("model.")] if group == "model" else SYNTHETIC
    cfg = make_cfg(*base, f"{group}={option}", synthetic=False)
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():  # trainer=gpu, trainer=ddp
        with pytest.raises(
            InputError, match=r"^trainer.accelerator=gpu: no CUDA GPU is available here; use trainer=cpu"
        ):
            check_config(cfg)
        return
    datamodule, module, trainer = build(cfg)
    assert isinstance(datamodule, MNISTDataModule)
    assert isinstance(module, Classifier)
    assert module.net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert any(isinstance(c, ModelCheckpoint) for c in trainer.callbacks)


def test_the_default_run_is_the_lessons_recipe(make_cfg):
    default = make_cfg(synthetic=False)
    assert default == make_cfg("experiment=lesson", synthetic=False)
    assert default.seed == 0 and default.data.batch_size == 64 and default.trainer.max_epochs == 10
    assert list(default.model.hidden_dims) == [512, 256] and default.model.activation == "relu"
    assert default.model.dropout == 0 and not default.model.batch_norm
    assert default.loss._target_ == "torch.nn.CrossEntropyLoss" and default.scheduler is None
    _, module, _ = build(default)
    widths = [(m.in_features, m.out_features) for m in module.net.modules() if isinstance(m, nn.Linear)]
    assert widths == [(784, 512), (512, 256), (256, 10)]
    optimizer = module.configure_optimizers()
    assert type(optimizer) is torch.optim.SGD
    assert optimizer.defaults["lr"] == 0.01 and optimizer.defaults["momentum"] == 0.9


OPTIMIZERS = {
    "sgd": (torch.optim.SGD, {"lr": 0.01, "momentum": 0.0, "weight_decay": 0.0}),
    "momentum": (torch.optim.SGD, {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.0}),
    "rmsprop": (torch.optim.RMSprop, {"lr": 0.001, "alpha": 0.99, "momentum": 0.0}),
    "adam": (torch.optim.Adam, {"lr": 0.001, "betas": (0.9, 0.999), "weight_decay": 0.0}),
    "adamw": (torch.optim.AdamW, {"lr": 0.001, "betas": (0.9, 0.999), "weight_decay": 0.01}),
    "adagrad": (torch.optim.Adagrad, {"lr": 0.01, "lr_decay": 0.0, "initial_accumulator_value": 0.0, "eps": 1e-10}),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_option_builds_the_intended_torch_optimizer(make_cfg, name):
    cls, expected = OPTIMIZERS[name]
    _, module, _ = build(make_cfg(f"optimizer={name}"))
    optimizer = module.configure_optimizers()
    assert type(optimizer) is cls
    for key, value in expected.items():
        assert tuple(optimizer.defaults[key]) == value if key == "betas" else optimizer.defaults[key] == value


def test_optimizer_values_override_from_the_command_line(make_cfg):
    _, module, _ = build(make_cfg("optimizer=adam", "optimizer.lr=0.05", "optimizer.weight_decay=0.1"))
    optimizer = module.configure_optimizers()
    assert optimizer.defaults["lr"] == 0.05 and optimizer.defaults["weight_decay"] == 0.1


@pytest.mark.parametrize(
    ("name", "cls", "smoothing"),
    [
        ("cross_entropy", nn.CrossEntropyLoss, 0.0),
        ("label_smoothing", nn.CrossEntropyLoss, 0.1),
        ("mse", SoftmaxMSELoss, None),
    ],
)
def test_loss_option_builds_its_loss(make_cfg, name, cls, smoothing):
    _, module, _ = build(make_cfg(f"loss={name}"))
    assert type(module.criterion) is cls
    assert getattr(module.criterion, "label_smoothing", None) == smoothing


def layer_types(module: Classifier) -> list[type]:
    return [type(m) for m in module.net.layers]


def test_regularization_members_compose_in_any_order(make_cfg):
    forward = make_cfg("regularization=[dropout,batch_norm,l1,l2,early_stopping]")
    backward = make_cfg("regularization=[early_stopping,l2,l1,batch_norm,dropout]")
    assert forward == backward
    assert forward.model.dropout == 0.2 and forward.model.batch_norm
    assert forward.regularization.l1.strength == 1e-5 and forward.regularization.l2.strength == 1e-4
    _, module, trainer = build(forward)
    assert layer_types(module).count(nn.Dropout) == 2 and layer_types(module).count(nn.BatchNorm1d) == 2
    assert {name: penalty.strength for name, penalty in module.penalties.items()} == {"l1": 1e-5, "l2": 1e-4}
    stoppers = [c for c in trainer.callbacks if isinstance(c, EarlyStopping)]
    assert len(stoppers) == 1 and stoppers[0].monitor == "val/loss" and stoppers[0].patience == 2


def test_regularization_is_off_unless_chosen(make_cfg):
    _, module, trainer = build(make_cfg())
    assert nn.Dropout not in layer_types(module) and nn.BatchNorm1d not in layer_types(module)
    assert module.penalties == {} and module.hparams.penalties == {}
    assert not any(isinstance(c, EarlyStopping) for c in trainer.callbacks)


def test_regularization_strengths_override(make_cfg):
    cfg = make_cfg("regularization=[dropout,l1]", "model.dropout=0.3", "regularization.l1.strength=3e-4")
    _, module, _ = build(cfg)
    assert [m.p for m in module.net.modules() if isinstance(m, nn.Dropout)] == [0.3, 0.3]
    assert module.penalties["l1"].strength == 3e-4


def test_model_is_built_from_config(make_cfg):
    _, module, _ = build(make_cfg("model.hidden_dims=[1024,1024,512]", "model.activation=gelu"))
    widths = [(m.in_features, m.out_features) for m in module.net.modules() if isinstance(m, nn.Linear)]
    assert widths == [(784, 1024), (1024, 1024), (1024, 512), (512, 10)]
    assert layer_types(module).count(nn.GELU) == 3 and nn.ReLU not in layer_types(module)


def test_trainer_options(make_cfg):
    assert make_cfg(synthetic=False).trainer.accelerator == "auto"
    _, module, trainer = build(make_cfg("trainer=cpu", "++trainer.limit_train_batches=0.1", "trainer.max_epochs=7"))
    assert type(trainer.accelerator).__name__ == "CPUAccelerator" and trainer.max_epochs == 7
    # Counted in batches by mlplab.engine.execution, not in Lightning's executions.
    assert module.plan.limit_train_batches == 0.1 and trainer.limit_train_batches == 1.0
    # The plan is a constructor argument, in the checkpoint's hyperparameters: a module rebuilt from them has it.
    assert type(module)(**module.hparams).plan == module.plan


def test_batch_size_and_seed_reach_the_datamodule(make_cfg):
    datamodule, _, _ = build(make_cfg("data.batch_size=128", "seed=0"))
    assert datamodule.batch_size == 128 and datamodule.seed == 0
    datamodule, _, _ = build(make_cfg("seed=7"))
    assert datamodule.seed == 7


def test_logger_writes_tensorboard_into_the_run_folder(make_cfg):
    cfg = make_cfg()
    _, _, trainer = build(cfg)
    [logger] = trainer.loggers
    assert isinstance(logger, TensorBoardLogger)
    assert Path(logger.log_dir) == Path(cfg.paths.output_dir)
    _, _, trainer = build(make_cfg("logger=none"))
    assert trainer.loggers == []


@pytest.mark.parametrize(
    ("preset", "setting", "value"),
    [("fast", "fast_dev_run", True), ("overfit", "overfit_batches", 3), ("limit", "limit_train_batches", 0.05)],
)
def test_debug_presets(make_cfg, preset, setting, value):
    cfg = make_cfg(f"debug={preset}")
    assert cfg.task_name == "debug" and cfg.trainer[setting] == value


def test_debug_profile_saves_a_report(make_cfg):
    cfg = make_cfg("debug=profile", synthetic=False)
    _, _, trainer = build(cfg)
    assert trainer.max_epochs == 1
    assert Path(trainer.profiler.dirpath) == Path(cfg.paths.output_dir)
