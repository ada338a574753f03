"""The from-scratch NumPy math against finite differences, torch autograd and torch.optim, then on the real MNIST."""

import importlib.util
import inspect
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mlplab.exercises.checking import numerical_gradient  # the exercises' gradient check, CS231n's
from mlplab.scratch.network import (
    SoftmaxMLP,
    TwoLayerNet,
    binary_cross_entropy,
    binary_cross_entropy_grad,
    cross_entropy,
    evaluate,
    mse,
    mse_grad,
    neuron,
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    softmax,
    tanh,
    tanh_grad,
    train_epoch,
)
from mlplab.scratch.optim import Adam, GradientDescent, Momentum, Optimizer, RMSProp

from conftest import REPO, idx_bytes, real_data

SCRIPT = REPO / "scripts" / "from_scratch.py"
LESSON_PAGE = (REPO / "docs" / "lesson.md").read_text(encoding="utf-8")


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b)))


def small_problem(kind: str, seed: int = 0):
    """A float64 network of the given kind with a batch of 8 inputs and its targets."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((8, 6))
    if kind == "binary":
        return TwoLayerNet(6, 5, rng, np.float64), X, rng.integers(0, 2, (8, 1)).astype(np.float64)
    return SoftmaxMLP((6, 5, 4, 3), rng, np.float64), X, rng.integers(0, 3, 8)


def torch_loss(kind: str, params: dict[str, torch.Tensor], X: np.ndarray, y: np.ndarray) -> torch.Tensor:
    """The same network and loss written with torch operations, for autograd to differentiate."""
    a = torch.from_numpy(X)
    layers = len(params) // 2
    for layer in range(1, layers + 1):
        z = a @ params[f"W{layer}"] + params[f"b{layer}"]
        a = torch.relu(z) if layer < layers else z
    if kind == "binary":
        return F.binary_cross_entropy(torch.sigmoid(a), torch.from_numpy(y))
    return F.cross_entropy(a, torch.from_numpy(y))


def test_neuron_and_activations_give_the_lessons_values():
    x, w, b = np.array([1.0, 2.0]), np.array([0.5, -1.0]), 0.25  # w.x + b = -1.25
    assert neuron(x, w, b, relu) == 0.0
    assert neuron(x, w, b, sigmoid) == pytest.approx(1 / (1 + np.exp(1.25)), rel=1e-15)
    z = np.linspace(-40, 40, 81).reshape(9, 9)
    np.testing.assert_allclose(sigmoid(z), torch.sigmoid(torch.from_numpy(z)).numpy(), rtol=1e-14)
    np.testing.assert_allclose(softmax(z), torch.softmax(torch.from_numpy(z), dim=1).numpy(), rtol=1e-12)
    assert np.allclose(softmax(z).sum(axis=1), 1) and np.isfinite(sigmoid(np.float32([-1e4, 1e4]))).all()


@pytest.mark.parametrize(("f", "f_grad"), [(relu, relu_grad), (sigmoid, sigmoid_grad), (tanh, tanh_grad)])
def test_activation_derivatives_match_finite_differences(f, f_grad):
    z = np.random.default_rng(1).standard_normal(50) * 3
    h = 1e-6
    numerical = (f(z + h) - f(z - h)) / (2 * h)
    assert rel_error(f_grad(z), numerical) < 1e-8


def test_loss_gradients_match_finite_differences_and_torch():
    rng = np.random.default_rng(2)
    y_hat, y = rng.uniform(0.05, 0.95, (10, 1)), rng.integers(0, 2, (10, 1)).astype(np.float64)
    assert rel_error(mse_grad(y_hat, y), numerical_gradient(lambda: mse(y_hat, y), y_hat)) < 1e-8
    bce_numerical = numerical_gradient(lambda: binary_cross_entropy(y_hat, y), y_hat)
    assert rel_error(binary_cross_entropy_grad(y_hat, y), bce_numerical) < 1e-8
    y_hat_t, y_t = torch.from_numpy(y_hat), torch.from_numpy(y)
    assert mse(y_hat, y) == pytest.approx(F.mse_loss(y_hat_t, y_t).item(), rel=1e-14)
    assert binary_cross_entropy(y_hat, y) == pytest.approx(F.binary_cross_entropy(y_hat_t, y_t).item(), rel=1e-14)
    logits, labels = rng.standard_normal((10, 4)), rng.integers(0, 4, 10)
    expected = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item()
    assert cross_entropy(softmax(logits), labels) == pytest.approx(expected, rel=1e-14)


def test_bce_through_the_sigmoid_is_the_lessons_y_hat_minus_y():
    rng = np.random.default_rng(3)
    z, y = rng.standard_normal((10, 1)) * 3, rng.integers(0, 2, (10, 1)).astype(np.float64)
    chain_rule = binary_cross_entropy_grad(sigmoid(z), y) * sigmoid_grad(z)
    np.testing.assert_allclose(chain_rule, (sigmoid(z) - y) / len(y), rtol=1e-12)


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_backward_matches_finite_differences(kind):
    net, X, y = small_problem(kind)
    grads = net.backward(net.forward(X), y)
    assert grads.keys() == net.params.keys()
    for name, param in net.params.items():
        numerical = numerical_gradient(lambda: net.loss(net.forward(X), y), param)
        assert grads[name].shape == param.shape
        assert np.abs(numerical).max() > 1e-4, f"{name}: a zero gradient would make the check vacuous"
        assert rel_error(grads[name], numerical) < 1e-6, name


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_backward_equals_torch_autograd(kind):
    net, X, y = small_problem(kind)
    output = net.forward(X)
    grads = net.backward(output, y)
    params = {name: torch.tensor(p, requires_grad=True) for name, p in net.params.items()}
    loss = torch_loss(kind, params, X, y)
    loss.backward()
    assert net.loss(output, y) == pytest.approx(loss.item(), rel=1e-13)
    for name, p in params.items():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-10, atol=1e-15, err_msg=name)


# Not the defaults: a large eps shows where it is added, non-default betas that each is used where it belongs.
OPTIMIZER_PAIRS = [
    (GradientDescent, torch.optim.SGD, {"lr": 0.1}),
    (Momentum, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    (RMSProp, torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.9, "eps": 1e-3}),
    (Adam, torch.optim.Adam, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-3}),
]


@pytest.mark.parametrize(("ours", "theirs", "hyper"), OPTIMIZER_PAIRS, ids=["gd", "momentum", "rmsprop", "adam"])
def test_optimizer_follows_the_torch_optim_trajectory(ours: type[Optimizer], theirs, hyper):
    """100 full-batch steps on the binary network: by-hand gradients and our rule against autograd and torch's."""
    net, X, y = small_problem("binary", seed=4)
    params = {name: torch.tensor(p, requires_grad=True) for name, p in net.params.items()}
    optimizer, torch_optimizer = ours(**hyper), theirs(params.values(), **hyper)
    first_loss = net.loss(net.forward(X), y)
    for step in range(100):
        optimizer.step(net.params, net.backward(net.forward(X), y))
        torch_optimizer.zero_grad()
        torch_loss("binary", params, X, y).backward()
        torch_optimizer.step()
        for name, p in params.items():
            assert rel_error(net.params[name], p.detach().numpy()) < 1e-6, f"step {step}, {name}"
    assert net.loss(net.forward(X), y) < 0.5 * first_loss  # the 100 steps really moved the weights


def test_every_code_line_quoted_in_the_lesson_page_is_in_its_function():
    rows = re.findall(r"^\| .+ \| `src/mlplab/([\w/]+)\.py:([\w.]+)` \| `(.+)` \|$", LESSON_PAGE, flags=re.M)
    assert len(rows) > 35
    for module, qualname, line in rows:
        function = importlib.import_module(f"mlplab.{module.replace('/', '.')}")
        for attribute in qualname.split("."):
            function = getattr(function, attribute)
        assert line in inspect.getsource(function), f"docs/lesson.md quotes {line!r} from {module}:{qualname}"


def test_script_help_documents_the_options_and_rejects_bad_ones():
    out = subprocess.run([sys.executable, SCRIPT, "--help"], capture_output=True, text=True, check=True).stdout
    for option in ("--digits", "--hidden", "--optimizer", "--lr", "--batch-size", "--epochs", "--seed", "--limit"):
        assert option in out
    bad = subprocess.run([sys.executable, SCRIPT, "--digits", "3", "3"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--digits 3 3: give two different digits" in bad.stderr


def load_script():
    spec = importlib.util.spec_from_file_location("from_scratch", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@real_data
@pytest.mark.slow
def test_binary_network_tells_3_from_8_after_one_epoch():
    (x_train, y_train), _, (x_test, y_test) = load_script().load_mnist([3, 8])
    assert x_train.shape[1] == 784 and set(np.unique(y_test)) == {0.0, 1.0} and len(y_test) == 1984
    rng = np.random.default_rng(0)
    net = TwoLayerNet(784, 32, rng)
    train_epoch(net, Momentum(lr=0.05, momentum=0.9), x_train, y_train, batch_size=64, rng=rng)
    loss, accuracy = evaluate(net, x_test, y_test)
    assert accuracy > 0.95 and loss < 0.15  # chance is about 50%


@real_data
def test_script_trains_the_binary_network_in_a_subprocess():
    command = [sys.executable, SCRIPT, "--digits", "3", "8", "--epochs", "1", "--limit", "5"]
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert "digit 8 (1) against 3 (0): network 784-128-1, optimizer momentum lr 0.05 momentum 0.9" in out
    assert "images: 10999 train, 983 validation, 1984 test" in out and "epoch 1/1  train loss" in out
    test_acc = float(re.search(r"test loss \d+\.\d+ acc (\d+\.\d+)%", out).group(1))
    assert 80 < test_acc < 100  # 5 batches of 128 images already


@real_data
def test_script_trains_the_lessons_mlp_on_a_few_batches(capsys):
    load_script().main(["--epochs", "2", "--limit", "20"])
    out = capsys.readouterr().out
    assert "all ten digits: network 784-512-256-10, optimizer momentum lr 0.05 momentum 0.9, batch 128" in out
    assert "images: 55000 train, 5000 validation, 10000 test" in out
    number = r"(\d+\.\d+)"
    epochs = re.findall(rf"epoch \d/2  train loss {number} acc {number}%  val loss {number} acc {number}%", out)
    assert len(epochs) == 2
    (loss1, _, _, val_acc1), (loss2, _, _, val_acc2) = [tuple(map(float, e)) for e in epochs]
    assert loss2 < loss1 and val_acc2 > val_acc1 > 60  # 2,560 images already teach it most digits
    test_acc = float(re.search(rf"test loss {number} acc {number}%", out).group(2))
    assert 80 < test_acc < 100


@real_data
def test_the_numpy_lesson_runs_without_torch():
    script = (
        "import runpy, sys; sys.argv = ['from_scratch.py', '--epochs', '1', '--limit', '3'];"
        "runpy.run_path('scripts/from_scratch.py', run_name='__main__');"
        "print('torch imported' if 'torch' in sys.modules else 'no torch')"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "no torch" and "test loss" in result.stdout


def test_idx_files_read_with_numpy_match_torchvisions_reading(synthetic_mnist, tmp_path):
    from mlplab.errors import InputError
    from mlplab.idx import normalized, parse_idx, read_mnist
    from mlplab.mnist import load_split, prepare_mnist

    data_dir, md5 = synthetic_mnist
    images, labels = read_mnist(data_dir, train=False, md5=md5)
    prepare_mnist(data_dir, md5)
    tensors, targets = load_split(data_dir, train=False)
    assert np.array_equal(normalized(images)[:, None], tensors.numpy()) and np.array_equal(labels, targets.numpy())
    with pytest.raises(InputError, match="holds 783 values for the shape \\(1, 28, 28\\): truncated or damaged"):
        parse_idx(idx_bytes(np.zeros((1, 28, 28)))[:-1])
    with pytest.raises(InputError, match="not an IDX file of unsigned bytes"):
        parse_idx(b"PK\x03\x04 a zip file")


def test_l2_and_dropout_gradients_equal_torch_autograd_with_the_same_masks():
    rng = np.random.default_rng(3)
    net = SoftmaxMLP((6, 5, 4, 3), rng, np.float64, l2=0.01, dropout=0.5)
    X, y = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
    net.training = True
    output = net.forward(X)
    grads = net.backward(output, y)
    assert sorted(net.masks) == [1, 2] and set(np.unique(net.masks[1])) <= {0.0, 2.0}  # inverted: kept ones x2
    params = {name: torch.tensor(p, requires_grad=True) for name, p in net.params.items()}
    a = torch.from_numpy(X)
    for layer in (1, 2, 3):
        z = a @ params[f"W{layer}"] + params[f"b{layer}"]
        a = torch.relu(z) * torch.from_numpy(net.masks[layer]) if layer < 3 else z
    loss = F.cross_entropy(a, torch.from_numpy(y)) + 0.01 * sum((params[f"W{n}"] ** 2).sum() for n in (1, 2, 3))
    loss.backward()
    assert net.loss(output, y) == pytest.approx(loss.item(), rel=1e-12)
    for name, p in params.items():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-10, atol=1e-15, err_msg=name)
    net.training = False  # evaluation: every unit, no penalty in the reported loss
    probs = net.forward(X)
    assert net.masks == {} and net.loss(probs, y) == pytest.approx(cross_entropy(probs, y))


def test_the_l2_gradient_matches_finite_differences():
    rng = np.random.default_rng(4)
    net = SoftmaxMLP((6, 5, 3), rng, np.float64, l2=0.1)
    X, y = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
    net.training = True
    grads = net.backward(net.forward(X), y)
    for name, param in net.params.items():
        numerical = numerical_gradient(lambda: net.loss(net.forward(X), y), param)
        assert rel_error(grads[name], numerical) < 1e-6, name


def test_the_script_takes_the_lessons_regularization_and_stops_early(tmp_path):
    from_scratch = importlib.util.spec_from_file_location("from_scratch", REPO / "scripts" / "from_scratch.py")
    module = importlib.util.module_from_spec(from_scratch)
    from_scratch.loader.exec_module(module)
    args = module.parse_args(["--l2", "1e-4", "--dropout", "0.2", "--patience", "2"])
    assert (args.l2, args.dropout, args.patience) == (1e-4, 0.2, 2)
    for bad, message in [
        (["--dropout", "1"], "need l2 >= 0 and dropout in [0, 1)"),
        (["--digits", "3", "8", "--l2", "0.1"], "--l2 and --dropout are for the multi-class network"),
        (["--patience", "0"], "--patience 0: must be positive"),
    ]:
        result = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "from_scratch.py"), *bad], capture_output=True, text=True
        )
        assert result.returncode == 2 and message in result.stderr


def test_the_worked_example_on_the_lesson_pages_is_what_the_command_prints():
    printed = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "worked_example.py")], capture_output=True, text=True, check=True
    ).stdout
    assert printed.splitlines()[5] == "y_hat = sigmoid(z2)      = [[0.5622], [0.7311]]"
    for page in ("lesson.md", "lesson.zh-CN.md"):
        assert f"$ python scripts/worked_example.py\n{printed}```" in (REPO / "docs" / page).read_text(
            encoding="utf-8"
        ), page
