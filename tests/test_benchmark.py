"""scripts/benchmark.py: its short version on the synthetic MNIST prints every figure and they add up; the steadiness
line flags a busy machine."""

import argparse
import os
import re
import runpy
import subprocess
import sys

import pytest
import torch

from mlplab.mnist import prepare_mnist

from conftest import REPO, run_entry

NUMBER = r"(-?[0-9][0-9,]*\.?[0-9]*)"  # 1,234.5 or -0.25


def figures(pattern: str, text: str) -> list[float]:
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"no line matches {pattern!r} in:\n{text}"
    return [float(group.replace(",", "")) for group in found.groups()]


@pytest.mark.slow
def test_short_benchmark_prints_positive_consistent_figures(synthetic_mnist):
    data_dir, md5 = synthetic_mnist
    prepare_mnist(data_dir, md5)  # the benchmark reads the decompressed files as they are
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    command = [sys.executable, "scripts/benchmark.py", "--batches", "3", "--repeats", "1", "--data-dir", str(data_dir)]
    result = subprocess.run([*command, "data.val_size=200"], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    out = result.stdout

    # The printed rates are rounded to whole images per second: what is derived from them agrees to about 1%.
    def agrees(value: float, expected: float) -> bool:
        return value == pytest.approx(expected, rel=0.01, abs=0.01)

    rates = {}
    for name, label in (("a", r"\(a\) lesson"), ("b", r"\(b\) plain"), ("c", r"\(c\) mlplab"), ("bound", "FLOP bound")):
        rate, epoch, step = figures(rf"^{label}.*?\s{NUMBER}\s+{NUMBER}\s+{NUMBER}$", out)
        assert rate > 0
        assert agrees(epoch, 60_000 / rate) and agrees(step, 64e3 / rate)  # batch 64
        rates[name] = rate
    (gflops,) = figures(rf"matmul at {NUMBER} GFLOP/s", out)
    assert gflops > 1
    # The lesson's MLP: 2 FLOP per multiply-add forward, 2 backward for the weights and, but in the first layer,
    # 2 for the layer's input: (6 * 535,040 - 2 * 784 * 512) FLOP per image, as FlopCounterMode counts them.
    assert agrees(rates["bound"], gflops * 1e9 / (6 * 535_040 - 2 * 784 * 512))

    c_a, c_b, c_bound, b_bound = figures(
        rf"^c/a {NUMBER}   c/b {NUMBER}   c's epoch / bound {NUMBER}   b's epoch / bound {NUMBER}$", out
    )
    a, b, c, bound = rates["a"], rates["b"], rates["c"], rates["bound"]
    assert agrees(c_a, c / a) and agrees(c_b, c / b) and agrees(c_bound, bound / c) and agrees(b_bound, bound / b)
    (extra,) = figures(rf"^c's extra time per step over b: {NUMBER} ms$", out)
    assert agrees(extra, 64e3 * (1 / c - 1 / b))
    # One round: its median is its best.
    assert figures(rf"^median round against the best: a {NUMBER}   b {NUMBER}   c {NUMBER}$", out) == [1, 1, 1]

    train, bare, difference = figures(
        rf"^start-up to the first training step: python src/train.py {NUMBER} s, bare import {NUMBER} s, "
        rf"difference {NUMBER} s$",
        out,
    )
    # Both children import torch and Lightning: seconds, not milliseconds.
    assert train > 0.5 and bare > 0.5 and difference == pytest.approx(train - bare, abs=0.011)

    step, kernels, share, rate, of_matmul, rest = figures(
        rf"^\(b\)'s step under torch.profiler, 50 steps \(its overhead included\): {NUMBER} ms; FLOP-counted "
        rf"kernels {NUMBER} ms \({NUMBER}%\) at {NUMBER} GFLOP/s \({NUMBER} of the matmul's\); the rest {NUMBER} ms",
        out,
    )
    # The MLP's step is its three matrix products (forward, and two per layer backward) and little else.
    # Each printed to two decimals (the share to a whole percent): what is derived from them agrees to that.
    assert 0 < kernels < step and rest == pytest.approx(step - kernels, abs=0.011)
    assert share == pytest.approx(100 * kernels / step, abs=1) and share > 30
    assert of_matmul == pytest.approx(rate / gflops, abs=0.01)
    assert "aten::mm" in out.split("Largest ops, ms per step:")[1]


def test_steadiness_and_the_busy_machine_hint():
    benchmark = runpy.run_path(str(REPO / "scripts" / "benchmark.py"))
    steady = benchmark["steadiness"]({"a": [10.0, 9.0, 8.0], "b": [100.0, 50.0, 40.0, 100.0], "c": [5.0]})
    assert steady == pytest.approx({"a": 0.9, "b": 0.75, "c": 1.0})  # b's median: (50 + 100) / 2
    args = argparse.Namespace(batch_size=64, batches=None, repeats=4, device="cpu", model="mlp")
    rates = {"a": 10.0, "b": 100.0, "c": 5.0, "bound": 200.0}
    busy = benchmark["report"](args, rates, steady, 100.0, 4.0, 5.0)
    assert "median round against the best: a 0.90   b 0.75   c 1.00   (below 0.9: the machine was busy" in busy
    quiet = benchmark["report"](args, rates, {"a": 0.9, "b": 0.95, "c": 1.0}, 100.0, 4.0, 5.0)
    assert "median round against the best: a 0.90   b 0.95   c 1.00\n" in quiet


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_short_benchmark_on_the_gpu_names_it_and_trains_all_three_there(synthetic_mnist):
    data_dir, md5 = synthetic_mnist
    prepare_mnist(data_dir, md5)
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    command = [sys.executable, "scripts/benchmark.py", "--device", "cuda", "--batches", "3", "--repeats", "1"]
    result = subprocess.run(
        [*command, "--data-dir", str(data_dir), "data.val_size=200"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert f"on {torch.cuda.get_device_name()}" in result.stdout.splitlines()[0]
    assert figures(rf"^\(c\) mlplab.*?\s{NUMBER}\s+{NUMBER}\s+{NUMBER}$", result.stdout)[0] > 0


@pytest.mark.slow
def test_asking_for_a_gpu_where_there_is_none_is_refused_in_one_line():
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    status, _, err = run_entry("scripts/benchmark.py", ["--device", "cuda"], REPO)
    assert status == 1 and err.strip() == "--device cuda: torch sees no CUDA GPU here"


def test_the_speedrun_trains_the_reference_recipes_network_and_optimizer():
    """experiment=speedrun is the published recipe's: the same layers (shapes recomputed here, from the reference
    script's network) and the same optimizer, schedule, batch and data."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from conftest import CONF_DIR

    reference = runpy.run_path(str(REPO / "scripts" / "reference_speedrun.py"))["network"]()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose("train", overrides=["experiment=speedrun"])
    lab = instantiate(cfg.model)
    assert [tuple(p.shape) for p in lab.parameters()] == [tuple(p.shape) for p in reference.parameters()]
    images = torch.randn(2, 1, 28, 28)
    assert lab(images).shape == reference(images).shape == (2, 10)
    assert cfg.optimizer.lr == 0.01 and list(cfg.optimizer.betas) == [0.7, 0.9]
    assert cfg.scheduler.scheduler._target_.endswith("OneCycleLR") and cfg.data.batch_size == 256
    assert cfg.data.val_size == 0 and cfg.trainer.max_epochs == 1


@pytest.mark.slow
def test_the_speedrun_race_prints_both_recipes_seed_by_seed(synthetic_mnist):
    data_dir, md5 = synthetic_mnist
    prepare_mnist(data_dir, md5)
    command = [sys.executable, "scripts/benchmark.py", "--speedrun", "--seeds", "2", "--data-dir", str(data_dir)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rows = re.findall(rf"^\| ([01]) \| {NUMBER} \| {NUMBER} \| {NUMBER}% \| {NUMBER} \| {NUMBER} \| {NUMBER}% \|$",
                      result.stdout, re.MULTILINE)  # fmt: skip
    assert [row[0] for row in rows] == ["0", "1"]
    for row in rows:
        reference_train, reference_process, _, lab_train, lab_process, _ = map(float, row[1:])
        assert 0 < reference_train < reference_process and 0 < lab_train < lab_process  # a process outlasts its loop
    train, process = figures(rf"^lab / reference: train {NUMBER}, process {NUMBER};", result.stdout)
    assert train > 0 and process > 0
