"""The Optuna search: runs, writes its study, results and best configuration, resumes, prunes, rejects bad input."""

import csv
import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mlplab.config.checks import check_without_validation
from mlplab.errors import InputError
from mlplab.experiments.search.space import distribution
from mlplab.training import train

from conftest import CONF_DIR, REPO, SYNTHETIC, compose_train, data_overrides, run_entry

FAST = [*SYNTHETIC, "trainer.max_epochs=2", "logger=none", "search.confirm.top_k=0"]  # confirmed: test_confirm


def search(*args: str) -> subprocess.CompletedProcess:
    """`python src/search.py ARGS` from the checkout, run in this process."""
    status, out, err = run_entry("src/search.py", list(args), REPO)
    return subprocess.CompletedProcess(["search.py", *args], status, out, err)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_study(folder: Path) -> optuna.Study:
    return optuna.load_study(study_name="mlp", storage=f"sqlite:///{folder}/study.db")


def trials(folder: Path) -> list[optuna.trial.FrozenTrial]:
    return load_study(folder).trials


def trial_folder(folder: Path, number: int) -> Path:
    [found] = folder.glob(f"{number}_*")
    return found


@pytest.fixture(scope="module")
def study(synthetic_mnist, tmp_path_factory) -> SimpleNamespace:
    """A 3-trial search, then the same command asking for 5; with what the first call left behind.

    Between the calls a hopeless configuration is queued in the study (plain SGD at the lowest lr): the median
    pruner, free to prune after any epoch here, must stop it after its first epoch."""
    root = tmp_path_factory.mktemp("search")
    folder, conf = root / "study", root / "conf"
    args = [
        *FAST,
        *data_overrides(synthetic_mnist),
        f"hydra.run.dir={folder}",
        f"search.experiment_dir={conf}/experiment",
        "search.pruner.n_warmup_steps=0",
    ]
    first = search(*args, "search.n_trials=3")
    assert first.returncode == 0, first.stderr
    after_first = SimpleNamespace(
        trials=trials(folder),
        rows=read_csv(folder / "results.csv"),
        table=(folder / "results.md").read_text(encoding="utf-8"),
    )
    load_study(folder).enqueue_trial({"optimizer": "sgd", "optimizer.lr": 1e-4})
    second = search(*args, "search.n_trials=5")
    return SimpleNamespace(folder=folder, conf=conf, first=first, after_first=after_first, second=second)


@pytest.mark.slow
def test_a_search_writes_its_study_results_and_best_configuration(study):
    folder, first, first_trials, rows = study.folder, study.first, study.after_first.trials, study.after_first.rows
    assert [t.state for t in first_trials] == [optuna.trial.TrialState.COMPLETE] * 3
    # model.hidden_dims is set on the command line (SYNTHETIC), so not searched; the other three keys are.
    assert "not searched: model.hidden_dims (set on the command line)" in first.stdout
    assert len(rows) == 3 and {r["status"] for r in rows} == {"ok"}
    for trial in first_trials:
        job = trial_folder(folder, trial.number)
        # The searched values come last, floats rounded to 3 significant digits.
        lr, dropout = (float(f"{trial.params[key]:.3g}") for key in ("optimizer.lr", "model.dropout"))
        searched = [f"model.dropout={dropout}", f"optimizer={trial.params['optimizer']}", f"optimizer.lr={lr}"]
        assert OmegaConf.load(job / ".hydra" / "overrides.yaml")[-3:] == searched
        metrics = json.loads((job / "metrics.json").read_text(encoding="utf-8"))
        assert metrics["val/acc_best"] == trial.value and metrics["epochs"] == 2
        row = next(r for r in rows if r["optimizer.lr"] == str(lr))
        assert float(row["val/acc_best mean"]) == pytest.approx(trial.value)
    assert study.after_first.table in first.stdout

    best = max(first_trials, key=lambda t: t.value)  # the first of equals, as Optuna picks
    best_yaml = (folder / "best.yaml").read_text(encoding="utf-8")
    assert best_yaml.startswith("# @package _global_\n")
    config = OmegaConf.create(best_yaml)
    assert config.defaults == [
        {"override /logger": "none"},
        {"override /optimizer": best.params["optimizer"]},
        {"override /model": "search_mlp"},  # the model keys in a model config of their own, not the experiment's
    ]
    assert config.optimizer.lr == float(f"{best.params['optimizer.lr']:.3g}")
    assert "model" not in config and config.trainer.max_epochs == 2
    assert (study.conf / "experiment" / "search_mlp.yaml").read_text(encoding="utf-8") == best_yaml
    model_yaml = (folder / "best_model.yaml").read_text(encoding="utf-8")
    model = OmegaConf.create(model_yaml)
    assert model.defaults == ["mlp", "_self_"] and model.hidden_dims == [64, 32]
    assert model.dropout == float(f"{best.params['model.dropout']:.3g}")
    assert (study.conf / "model" / "search_mlp.yaml").read_text(encoding="utf-8") == model_yaml
    assert "train it: python src/train.py experiment=search_mlp" in first.stdout


@pytest.mark.slow
def test_a_second_call_resumes_to_the_asked_number_of_trials(study):
    folder, first_trials, second = study.folder, study.after_first.trials, study.second
    assert second.returncode == 0, second.stderr
    assert "study mlp: 3 of 5 trials done" in second.stdout
    resumed = trials(folder)
    assert [t.number for t in resumed] == [0, 1, 2, 3, 4]
    assert [t.params for t in resumed[:3]] == [t.params for t in first_trials]  # kept, not run again
    assert "trial 3 (4/5)" in second.stdout and "trial 0 (" not in second.stdout
    # The sampler is seeded anew on resume: the new trials do not repeat the first call's values.
    assert len({json.dumps(t.params, sort_keys=True) for t in resumed}) == 5
    assert len(read_csv(folder / "results.csv")) == 5


@pytest.mark.slow
def test_the_best_configuration_trains_as_an_experiment(study, tmp_path):
    folder, conf = study.folder, study.conf
    best = load_study(folder).best_trial
    expected = json.loads((trial_folder(folder, best.number) / "metrics.json").read_text(encoding="utf-8"))
    cfg = compose_train([f"hydra.searchpath=[file://{conf}]", "experiment=search_mlp"], tmp_path / "run")
    metrics, _ = train(cfg)
    # The same config and seed on the CPU: the very numbers of the best trial.
    assert metrics["val/acc_best"] == expected["val/acc_best"] == best.value
    assert metrics["test/loss"] == expected["test/loss"]


@pytest.mark.slow
def test_unpromising_trials_are_pruned_after_a_validation_epoch(study):
    folder = study.folder
    hopeless = trials(folder)[3]  # the queued one: plain SGD at lr 1e-4
    assert hopeless.params == {
        "optimizer": "sgd",
        "optimizer.lr": 1e-4,
        "model.dropout": hopeless.params["model.dropout"],
    }
    assert hopeless.state == optuna.trial.TrialState.PRUNED and list(hopeless.intermediate_values) == [0]
    accuracy = hopeless.intermediate_values[0]
    assert accuracy < 0.5
    metrics = json.loads((trial_folder(folder, 3) / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["status"] == "pruned" and metrics["epochs"] == 1 < 2  # FAST: trainer.max_epochs=2
    assert metrics["val/acc_best"] == accuracy and len(metrics["history"]["val/acc"]) == 1
    assert metrics["error"] == f"MedianPruner stopped it after epoch 0 (val/acc_best {accuracy:.4f})"
    assert f"pruned: trial 3: {metrics['error']}" in study.second.stderr
    rows = {r["optimizer.lr"]: r for r in read_csv(folder / "results.csv")}
    assert rows["0.0001"]["status"] == "1 pruned" and rows["0.0001"]["optimizer"] == "sgd"


@pytest.mark.slow
def test_bad_input_is_one_line_before_any_trial(tmp_path):
    result = search(f"hydra.run.dir={tmp_path}", "+search.space={model.widht:{type:int,low:64,high:512}}")
    assert result.returncode == 1
    assert result.stderr == (
        "error: search.space.model.widht: not a key or group of the train config (see: python src/train.py --cfg job)\n"
    )
    assert not (tmp_path / "study.db").exists()


def test_a_search_without_a_validation_set_is_refused():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="search", overrides=["data.val_size=0"])
    with pytest.raises(InputError) as error:
        check_without_validation(cfg)
    assert str(error.value) == (
        "data.val_size=0: the search picks on val/acc_best, and there is no validation set; keep one"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "gauss"}, "search.space.x.type=gauss: unknown distribution; choose one of categorical, float, int"),
        (
            {"type": "float", "lo": 0, "high": 1},
            "search.space.x: a float needs high, low and may have log, step; got high, lo",
        ),
        (
            {"type": "float", "low": 0, "high": 1, "log": True},
            "search.space.x: `low > 0` must hold for `log=True`, but got (low=0, high=1).",
        ),
        ({"type": "categorical", "choices": "sgd"}, "search.space.x: choices must be a list, not 'sgd'"),
    ],
)
def test_bad_distributions_are_named(spec, message):
    with pytest.raises(InputError) as error:
        distribution("x", OmegaConf.create(spec))
    assert str(error.value) == message


def test_distributions_of_the_default_space():
    space = OmegaConf.load(REPO / "conf" / "search.yaml").search.space
    built = {key: distribution(key, spec) for key, spec in space.items()}
    assert built["optimizer.lr"] == optuna.distributions.FloatDistribution(1e-4, 0.3, log=True)
    assert built["model.hidden_dims"].choices == ("[128]", "[256,128]", "[512,256]", "[1024,512]")
