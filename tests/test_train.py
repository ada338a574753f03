"""End-to-end training runs on the synthetic data (and one short one on the real MNIST)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mlplab.module import Classifier
from mlplab.training import train

from conftest import REPO, SYNTHETIC, compose_train, data_overrides, real_data, run_entry


@pytest.fixture(scope="module")
def trained(synthetic_mnist, tmp_path_factory):
    """One default run (2 epochs) on the synthetic data, shared by the tests that inspect its results."""
    run_dir = tmp_path_factory.mktemp("trained")
    cfg = compose_train([*SYNTHETIC, "trainer.max_epochs=2", "regularization=[l1,l2]"], run_dir, synthetic_mnist)
    metrics, objects = train(cfg)
    return run_dir, metrics, objects


def test_run_reports_sane_metrics(trained):
    run_dir, metrics, _ = trained
    assert metrics["status"] == "ok" and metrics["epochs"] == 2
    for key in ("train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best", "test/loss", "test/acc"):
        assert key in metrics
    assert metrics["val/acc_best"] >= metrics["val/acc"] > 0.9  # the synthetic digits are easy
    assert metrics["test/acc"] > 0.9 and 0 < metrics["test/loss"] < 1
    assert metrics["train/l1_penalty"] > 0 and metrics["train/l2_penalty"] > 0
    assert metrics["train_time_s"] > 0
    assert json.loads((run_dir / "metrics.json").read_text(encoding="utf-8")) == metrics


def test_run_folder_holds_best_and_last_checkpoints_and_tensorboard_events(trained):
    run_dir, metrics, _ = trained
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert checkpoints == [Path(metrics["best_checkpoint"]).name, "last.ckpt"]
    events = EventAccumulator(str(run_dir))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss_step", "train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best"} <= tags
    assert {"test/loss", "test/acc", "train/l1_penalty", "train/l2_penalty"} <= tags
    assert events.Scalars("test/acc")[-1].value == pytest.approx(metrics["test/acc"])


def test_best_checkpoint_reloads_with_no_arguments_and_reproduces_test_accuracy(trained):
    _, metrics, objects = trained
    # Lightning loads with weights_only=True here: only plain hyperparameters are in the file.
    module = Classifier.load_from_checkpoint(metrics["best_checkpoint"], weights_only=True)
    assert module.hparams.optimizer["_target_"] == "torch.optim.SGD"
    assert module.hparams.penalties["l1"] == {"_target_": "mlplab.penalties.L1", "strength": 1e-5}
    # The data settings travel too, so a checkpoint alone can rebuild its validation and test splits.
    data = torch.load(metrics["best_checkpoint"], weights_only=True)["datamodule_hyper_parameters"]
    assert data["val_size"] == 200 and data["split_seed"] == 0 and data["md5"] == objects["datamodule"].md5
    images, labels = objects["datamodule"].splits["test"]
    module.eval()
    with torch.no_grad():
        accuracy = (module(images).argmax(dim=1) == labels).float().mean().item()
    assert accuracy == pytest.approx(metrics["test/acc"], abs=1e-6)


def test_metrics_json_keeps_every_epoch_when_an_early_epoch_is_tested(make_cfg):
    # Testing a checkpoint restores the callbacks to its epoch; the run's history must not shrink with them.
    metrics, _ = train(make_cfg("callbacks.model_checkpoint.mode=min", "logger=none"))  # the worst val/acc: epoch 0
    assert Path(metrics["best_checkpoint"]).name == "epoch_000.ckpt"
    saved = json.loads((Path(metrics["best_checkpoint"]).parents[1] / "metrics.json").read_text(encoding="utf-8"))
    assert {name: len(values) for name, values in saved["history"].items()} == {
        "val/acc": 3,
        "val/loss": 3,
        "train/acc": 3,
        "train/loss": 3,
    }
    assert saved["history"]["val/acc"][-1] == pytest.approx(saved["val/acc"])  # the last epoch's, not the tested one's


def test_early_stopping_stops_before_max_epochs_on_a_plateau(make_cfg):
    # A min_delta no epoch can reach makes every epoch a plateau: stop after `patience` epochs.
    cfg = make_cfg("regularization=early_stopping", "callbacks.early_stopping.min_delta=100", "trainer.max_epochs=10")
    metrics, _ = train(cfg)
    assert metrics["epochs"] == 1 + cfg.callbacks.early_stopping.patience < 10


def test_mse_loss_trains(make_cfg):
    metrics, _ = train(make_cfg("loss=mse", "optimizer=adam"))
    assert metrics["test/acc"] > 0.8


@pytest.mark.parametrize(
    ("scheduler", "overrides", "final_lr"),
    [
        ("cosine", [], 0.0),  # T_max = max_epochs: annealed to 0 at the end
        ("step", ["scheduler.scheduler.step_size=1", "scheduler.scheduler.gamma=0.5"], 0.01 * 0.5**3),
    ],
)
def test_epoch_schedulers_shape_the_learning_rate(make_cfg, scheduler, overrides, final_lr):
    _, objects = train(make_cfg(f"scheduler={scheduler}", *overrides, "logger=none"))
    [optimizer] = objects["trainer"].optimizers
    assert optimizer.param_groups[0]["lr"] == pytest.approx(final_lr, abs=1e-12)


@pytest.mark.parametrize(
    ("overrides", "steps"),
    [
        ([], 3 * 16),  # 3 epochs of 16 batches, in executions of 4
        (["steps_per_execution=5"], 3 * 16),  # executions of 5, 5, 5 and 1
        (["steps_per_execution=5", "++trainer.limit_train_batches=7"], 3 * 7),  # 7 batches per epoch: 5 and 2
        (["++trainer.limit_train_batches=0.5"], 3 * 8),  # half of each epoch's 16 batches
        (["++trainer.max_steps=21"], 21),  # the run ends inside an execution
        (["++trainer.accumulate_grad_batches=3"], 3 * 6),  # a step every 3 batches, and at each epoch's end
    ],
)
def test_onecycle_spans_exactly_the_runs_optimizer_steps(make_cfg, overrides, steps):
    _, objects = train(make_cfg("scheduler=onecycle", "logger=none", *overrides))
    trainer = objects["trainer"]
    [config] = trainer.lr_scheduler_configs
    assert config.scheduler.total_steps == trainer.global_step == config.scheduler.last_epoch == steps
    assert max(config.scheduler.get_last_lr()) < 0.01 / 50  # annealed far below the peak (optimizer.lr)


EPOCH_TAGS = ("train/loss", "train/acc", "train/l1_penalty", "val/loss", "val/acc", "val/acc_best", "test/acc")
STEP_TAGS = ("train/loss_step", "train/acc_step", "train/l1_penalty_step", "train/lr")  # every log_every_n_steps


def test_steps_per_execution_changes_the_speed_only(make_cfg, tmp_path):
    runs = []
    for steps in (1, 5):
        cfg = make_cfg(
            f"steps_per_execution={steps}",
            "regularization=[dropout,batch_norm,l1,l2]",
            "data.augment={rotate:10,scale:0.1,shift:2,elastic:1}",
            "scheduler=cosine",
        )
        cfg.paths.output_dir = str(tmp_path / f"steps{steps}")
        metrics, objects = train(cfg)
        events = EventAccumulator(cfg.paths.output_dir)
        events.Reload()
        # Sorted: the HParams session adds a val/acc_best point from another event file, in either order.
        curves = {tag: sorted((e.step, e.value) for e in events.Scalars(tag)) for tag in EPOCH_TAGS + STEP_TAGS}
        saved = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text(encoding="utf-8"))
        runs.append((saved, objects["module"].net.state_dict(), objects["trainer"].global_step, curves))
    (one, weights_one, steps_one, curves_one), (five, weights_five, steps_five, curves_five) = runs
    assert steps_one == steps_five == 3 * 16
    for name, value in weights_one.items():
        assert torch.equal(weights_five[name], value), name  # the same steps in the same order: the same bits
    different = {"train_time_s", "best_checkpoint"}  # the time, and the folder
    assert {k: v for k, v in five.items() if k not in different} == {k: v for k, v in one.items() if k not in different}
    assert Path(five["best_checkpoint"]).name == Path(one["best_checkpoint"]).name
    # TensorBoard: the same values at the same optimizer steps, those of every epoch and those of every second step
    # (log_every_n_steps=2, which falls inside executions of 5): the batch that took the step, as Lightning logs it.
    assert curves_five == curves_one and [step for step, _ in curves_one["val/acc"]] == [16, 32, 48]
    assert [step for step, _ in curves_one["train/loss_step"]] == list(range(2, 49, 2))


def test_same_seed_gives_identical_metrics_and_another_seed_differs(make_cfg, tmp_path):
    runs = []
    for seed in (0, 0, 1):
        cfg = make_cfg(f"seed={seed}", "trainer.max_epochs=1", "logger=none")
        cfg.paths.output_dir = str(tmp_path / f"seed{seed}_{len(runs)}")
        runs.append(train(cfg)[0])
    assert runs[0]["test/loss"] == runs[1]["test/loss"] and runs[0]["val/loss"] == runs[1]["val/loss"]
    assert runs[0]["test/loss"] != runs[2]["test/loss"]


def test_debug_fast_runs_one_batch_and_tests_the_final_weights(make_cfg):
    metrics, objects = train(make_cfg("debug=fast"))
    assert metrics["best_checkpoint"] == "" and metrics["epochs"] == 1
    assert objects["trainer"].global_step == 1 and 0 <= metrics["test/acc"] <= 1


LIGHTNING_INTERNALS = ("GPU available", "Trainable params", "`Trainer.fit` stopped", "Restoring states")


@pytest.mark.parametrize("verbose", [False, True])
def test_the_first_lines_say_what_is_trained_and_lightnings_internals_wait_for_verbose(
    make_cfg, capfd, caplog, verbose
):
    train(make_cfg("trainer.max_epochs=1", "optimizer=adam", "regularization=l2", f"verbose={verbose}"))
    out, err = capfd.readouterr()
    lines = out.splitlines()
    first = lines.index(next(line for line in lines if line.startswith("network ")))
    assert [line.split()[0] for line in lines[first : first + 5]] == [
        "network",
        "loss",
        "optimizer",
        "data",
        "training",
    ]
    network = lines[first]
    assert network.startswith("network    MLP input_dim=784, hidden_dims=[64, 32], num_classes=10, activation=relu")
    assert network.endswith(f": {784 * 64 + 64 + 64 * 32 + 32 + 32 * 10 + 10:,} parameters")
    assert lines[first + 1] == "loss       CrossEntropyLoss + L2 strength=0.0001"
    assert lines[first + 2].startswith("optimizer  Adam lr=0.001") and lines[first + 2].endswith("; a constant lr")
    assert " training images in batches of " in lines[first + 3] and "(x - 0.1307) / 0.3081" in lines[first + 3]
    assert lines[first + 4] == "training   1 epoch on CPU, seed 0"
    # Lightning logs to the terminal through its own handler, which pytest's logging capture replaces.
    shown = [internal for internal in LIGHTNING_INTERNALS if internal in out + err + caplog.text]
    assert shown == (list(LIGHTNING_INTERNALS) if verbose else [])
    if not verbose:  # the summary comes first: nothing of Lightning's before it
        assert first == 0


def test_a_resumed_run_says_from_which_step(make_cfg, capsys):
    train(make_cfg("trainer.max_epochs=1", "logger=none"))
    capsys.readouterr()
    last = Path(make_cfg().paths.output_dir) / "checkpoints" / "last.ckpt"
    train(make_cfg("trainer.max_epochs=2", "logger=none", f"ckpt_path={last}"))
    # 16 batches of the synthetic data per epoch (SYNTHETIC): one epoch done, the second to go.
    assert "\ntraining   2 epochs on CPU, seed 0, resumed at step 16\n" in capsys.readouterr().out


def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "src" / "train.py"), *args], cwd=cwd, capture_output=True, text=True
    )


@pytest.mark.slow
def test_command_line_run_writes_a_complete_run_folder(synthetic_mnist, tmp_path):
    run_dir = tmp_path / "run"
    result = cli(*SYNTHETIC, *data_overrides(synthetic_mnist), "trainer.max_epochs=2", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr
    # What is trained comes first, with nothing of Lightning's (verbose=false) on either stream.
    assert result.stdout.startswith("network    MLP input_dim=784") and "\noptimizer  SGD lr=0.01" in result.stdout
    assert not [internal for internal in LIGHTNING_INTERNALS if internal in result.stdout + result.stderr]
    # Not a terminal: one line per epoch instead of a progress bar, then the summary.
    assert "epoch 0 (1/2)  train/loss" in result.stdout and "epoch 1 (2/2)" in result.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert f"test/acc {metrics['test/acc']:.2%}  test/loss {metrics['test/loss']:.4f}" in result.stdout
    assert f"run folder:  {run_dir}" in result.stdout
    assert f"TensorBoard: tensorboard --logdir {run_dir}" in result.stdout
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and Path(metrics["best_checkpoint"]).is_file()
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert (run_dir / ".hydra" / "config.yaml").is_file() and (run_dir / ".hydra" / "overrides.yaml").is_file()


def test_command_line_reports_a_corrupted_data_file_in_one_line(synthetic_mnist, tmp_path):
    data_dir, md5 = synthetic_mnist
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in md5:
        (raw / name).write_bytes(b"not an MNIST file")
    overrides = data_overrides((tmp_path / "data", md5))
    status, _, err = run_entry("src/train.py", [*SYNTHETIC, *overrides, f"hydra.run.dir={tmp_path / 'run'}"])
    assert status == 1
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "train-images-idx3-ubyte: md5 is " in last
    assert f"expected {md5['train-images-idx3-ubyte']}" in last


@real_data
def test_one_short_epoch_on_real_mnist_is_far_above_chance(tmp_path):
    cfg = compose_train(["trainer.max_epochs=1", "++trainer.limit_train_batches=300", "logger=none"], tmp_path)
    metrics, _ = train(cfg)
    assert metrics["val/acc"] > 0.9 and metrics["test/acc"] > 0.9


@pytest.mark.parametrize(("overrides", "total"), [([], 4), (["++trainer.val_check_interval=6"], 5)])
def test_the_progress_bar_counts_the_epochs_executions(make_cfg, overrides, total):
    from lightning.pytorch import Callback

    from mlplab.engine.execution import ProgressBar

    class Totals(Callback):
        def on_train_epoch_start(self, trainer, module):
            [bar] = [c for c in trainer.callbacks if isinstance(c, ProgressBar)]
            self.total = bar.total_train_batches

    totals = Totals()
    # 16 batches in executions of 4; ending at batches 6 and 12 too (validations): 4, 2, 4, 2, 4
    cfg = make_cfg("trainer.max_epochs=1", "logger=none", *overrides)
    cfg.trainer.enable_progress_bar = True  # as on a terminal
    train(cfg, [totals])
    assert totals.total == total


def test_without_a_validation_set_every_training_image_trains_and_the_final_model_is_tested(
    synthetic_mnist, tmp_path, capsys
):
    """data.val_size=0: the lesson's own recipe, all of the training set and the last epoch's model."""
    cfg = compose_train(
        [*SYNTHETIC, "data.val_size=0", "trainer.max_epochs=2", "logger=none"], tmp_path, synthetic_mnist
    )
    metrics, objects = train(cfg)
    splits = objects["datamodule"].splits
    assert len(splits["train"][1]) == 1000 and len(splits["val"][1]) == 0
    assert metrics["status"] == "ok" and metrics["best_checkpoint"] == "" and metrics["epochs"] == 2
    assert not [name for name in metrics if name.startswith("val/")]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["last.ckpt"]
    assert "(final weights; no validation set; 2 epochs in" in capsys.readouterr().out


@pytest.mark.slow
def test_a_sweep_without_a_validation_set_is_refused(synthetic_mnist, tmp_path):
    from test_sweep import multirun

    result = multirun(
        *SYNTHETIC,
        *data_overrides(synthetic_mnist),
        "data.val_size=0",
        "seed=0,1",
        "logger=none",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert result.returncode == 1
    assert "failed: data.val_size=0: a sweep picks its best configuration on validation" in result.stderr


@pytest.mark.parametrize(
    ("overrides", "differs"),
    [
        (["model.hidden_dims=[32]"], "model.hidden_dims=[64, 32] in the checkpoint, [32] now"),
        (["model=cnn"], "model._target_=mlplab.models.mlp.MLP in the checkpoint, mlplab.models.cnn.CNN now"),
        (["loss=mse"], "loss._target_=torch.nn.CrossEntropyLoss in the checkpoint, mlplab.losses.SoftmaxMSELoss now"),
        (["optimizer=adam"], "optimizer._target_=torch.optim.SGD in the checkpoint, torch.optim.Adam now"),
    ],
)
def test_resuming_another_network_loss_or_optimizer_is_refused_naming_what_differs(
    trained, make_cfg, overrides, differs
):
    from mlplab.config.checks import check_config
    from mlplab.engine.checkpoints import load_checkpoint
    from mlplab.errors import InputError

    run_dir, *_ = trained
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    with pytest.raises(InputError, match=r"^ckpt_path=.*last.ckpt: the checkpoint's run trained another network") as e:
        check_config(
            make_cfg(f"ckpt_path={checkpoint}", "trainer.max_epochs=4", *overrides), load_checkpoint(checkpoint)
        )
    assert differs in str(e.value) and "\n" not in str(e.value)
    new_lr = make_cfg(f"ckpt_path={checkpoint}", "trainer.max_epochs=4", "optimizer.lr=0.02")
    check_config(new_lr, load_checkpoint(checkpoint))  # a new lr fits
