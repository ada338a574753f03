"""The contract of every network in conf/model/: a new model file and its config pass these with no other edits.

What a network declares about itself (mlplab.models.network.Network's hooks) is recomputed here from the built
network, as torchvision's tests recompute every model's declared metadata.
"""

import re

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from PIL import Image, ImageDraw
from test_use_model import compose_use
from torch import nn

from mlplab.config.checks import check_config
from mlplab.errors import InputError
from mlplab.experiments.lr_find import lr_find
from mlplab.models.network import Network
from mlplab.module import Classifier
from mlplab.training import train
from mlplab.use.evaluation import evaluate
from mlplab.use.export import FORMATS, example_images, export_model
from mlplab.use.inference import predict, preprocess
from mlplab.use.trained import load_trained

from conftest import CONF_DIR, SYNTHETIC, compose_train

MODELS = sorted(path.stem for path in (CONF_DIR / "model").glob("*.yaml"))
GROUPS = ("optimizer", "scheduler", "loss", "model", "regularization")
OPTIONS = [(group, path.stem) for group in GROUPS for path in sorted((CONF_DIR / group).glob("*.yaml"))]
WEIGHTED = (nn.Linear, nn.modules.conv._ConvNd, nn.RNNBase)  # the layers whose weights are "weights"
# The synthetic runs' settings without their MLP widths: each network trains as its own config builds it.
BASE = [override for override in SYNTHETIC if not override.startswith("model.")]


def model_config(name: str, *overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"model={name}", *overrides])
    return cfg.model


def network(name: str, *overrides: str) -> Network:
    torch.manual_seed(0)
    try:
        return instantiate(model_config(name, *overrides), _convert_="all")
    except InstantiationException as error:  # Hydra's wrapper around the network's own InputError
        raise error.__cause__ from None


def test_the_lab_has_the_three_mappings_of_the_lesson():
    assert {"mlp", "cnn", "rnn"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_images_in_logits_out(name):
    net = network(name)
    assert isinstance(net, Network)
    assert net(torch.randn(3, 1, 28, 28)).shape == (3, net.num_classes)


@pytest.mark.parametrize("name", MODELS)
def test_weights_are_every_layers_weight_and_no_bias_or_normalization(name):
    net = network(name, *(["model.batch_norm=true"] if "batch_norm" not in refused_options(name) else []))
    expected = {
        f"{prefix}.{parameter}" if prefix else parameter
        for prefix, module in net.named_modules()
        if isinstance(module, WEIGHTED)
        for parameter, _ in module.named_parameters(recurse=False)
        if parameter.startswith("weight")
    }
    assert expected and set(net.weights()) == expected
    named = dict(net.named_parameters())
    assert all(net.weights()[name] is named[name] for name in expected)  # the parameters themselves: penalized


@pytest.mark.parametrize("name", MODELS)
def test_first_layer_images_are_the_first_layers_weights(name):
    net = network(name)
    images = net.first_layer_images()
    assert images is not None and images.ndim == 3
    first = next(iter(net.weights().values()))  # the first weighted layer's weight, in the order layers run
    assert torch.equal(images.flatten(), first.flatten())


@pytest.mark.parametrize("name", MODELS)
def test_unit_layers_give_units_on_dim_1_for_every_image(name):
    net = network(name)
    outputs = []
    hooks = [layer.register_forward_hook(lambda m, i, out: outputs.append(out)) for layer in net.unit_layers()]
    net(torch.randn(5, 1, 28, 28))
    for hook in hooks:
        hook.remove()
    assert len(outputs) == len(net.unit_layers()) and all(out.shape[0] == 5 and out.ndim >= 2 for out in outputs)


def refused_options(name: str) -> set[str]:
    """The model arguments of the regularization convention (dropout, batch_norm) that this network refuses."""
    refused = set()
    for option, value in (("dropout", 0.2), ("batch_norm", True)):
        try:
            network(name, f"model.{option}={str(value).lower()}")
        except InputError:
            refused.add(option)
    return refused


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    ("option", "layer"), [("dropout", nn.Dropout), ("batch_norm", nn.modules.batchnorm._BatchNorm)]
)
def test_regularization_options_apply_or_are_refused_in_one_line_naming_both(name, option, layer, make_cfg):
    cfg = make_cfg(*BASE, f"model={name}", f"regularization={option}", synthetic=False)
    try:
        check_config(cfg)
    except InputError as error:
        assert re.fullmatch(rf"regularization={option} \(model.{option}\): not for model={name}, .+", str(error))
        return
    net = instantiate(cfg.model, _convert_="all")
    assert any(isinstance(module, layer) for module in net.modules())


def test_the_rnn_refuses_batch_norm():
    assert refused_options("rnn") == {"batch_norm"} and not refused_options("cnn") and not refused_options("mlp")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=cnn", "model.channels=[6,0]"], r"model.channels=\[6, 0\]: must be a list of one or more integers"),
        (["model=cnn", "model.kernel_size=4"], r"model.kernel_size=4: must be an odd integer >= 1"),
        (["model=cnn", "model.channels=[2,2,2,2,2,2]"], r"model.channels=\[2, 2, 2, 2, 2, 2\]: 6 pooling stages"),
        (["model=rnn", "model.cell=lstn"], r"model.cell=lstn: must be gru or lstm$"),
        (["model=rnn", "model.hidden_dims=[0]"], r"model.hidden_dims=\[0\]: must be a list of one or more integers"),
        (["model=cnn", "++model.width=3"], r"model.width=3: refused by mlplab.models.cnn.CNN \(.*'width'"),
        (["+loss.label_smoothing=1.5"], r"loss.label_smoothing=1.5: must be a number in \[0, 1\]$"),
        (["+loss.reduction=avg"], r"loss.reduction=avg: refused by torch.nn.CrossEntropyLoss \(.*"),
    ],
)
def test_bad_model_and_loss_arguments_are_named_before_training(overrides, message, make_cfg):
    with pytest.raises(InputError, match=f"^{message}") as error:
        check_config(make_cfg(*overrides))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(("group", "option"), OPTIONS)
def test_every_options_checkpoint_reloads_weights_only_and_tests(group, option, make_cfg):
    """A few batches of training with each option of each group; the checkpoints then load with weights_only=True
    (train() tests the best one that way) and give the trained network back."""
    short = ["trainer.max_epochs=1", "++trainer.limit_train_batches=4", "logger=none"]
    cfg = make_cfg(*BASE, f"{group}={option}", *short, synthetic=False)
    metrics, objects = train(cfg)
    assert metrics["status"] == "ok" and 0 <= metrics["test/acc"] <= 1
    reloaded = Classifier.load_from_checkpoint(metrics["best_checkpoint"], weights_only=True).eval()
    trained = objects["module"].eval()
    images = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(images), trained(images))


@pytest.mark.parametrize("name", MODELS)
def test_each_network_takes_the_learning_rate_range_test(name, synthetic_mnist, tmp_path):
    settings = ["lr_find.min_lr=1e-3", "lr_find.max_lr=10", "lr_find.steps=40", "logger=none"]
    result = lr_find(compose_train([*BASE, f"model={name}", *settings], tmp_path, synthetic_mnist, "lr_find"))
    assert result["steps"] >= 10 and result["optimizer"] == "SGD"
    assert 1e-3 <= result["suggestions"]["steepest"] <= 10


@pytest.fixture(scope="module", params=[name for name in MODELS if name != "mlp"])
def trained(request, synthetic_mnist, tmp_path_factory) -> dict:
    """Three epochs of Adam for each network but the lesson's (tests/test_use_model.py uses that one), with both
    penalties and four batches an execution."""
    run_dir = tmp_path_factory.mktemp(request.param)
    overrides = [*BASE, f"model={request.param}", "optimizer=adam", "optimizer.lr=0.01", "regularization=[l1,l2]"]
    metrics, _ = train(compose_train(overrides, run_dir, synthetic_mnist))
    return metrics


def test_each_network_learns_the_synthetic_digits_with_penalties_on_all_its_weights(trained):
    assert trained["status"] == "ok" and trained["test/acc"] > 0.5
    assert trained["train/l1_penalty"] > 0 and trained["train/l2_penalty"] > 0


def test_each_network_evaluates_as_it_was_tested(trained, tmp_path):
    result = evaluate(compose_use("eval", [f"ckpt_path={trained['best_checkpoint']}"], tmp_path))
    assert result["test/acc"] == pytest.approx(trained["test/acc"], abs=1e-6)


@pytest.mark.filterwarnings("ignore:`torch\\.jit\\.\\w+` is deprecated:FutureWarning")  # torchscript is deprecated
@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.slow
def test_each_network_exports_to_every_format(trained, fmt, tmp_path):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    result = export_model(compose_use("export", [f"ckpt_path={trained['best_checkpoint']}", f"format={fmt}"], tmp_path))
    module = load_trained(trained["best_checkpoint"]).network
    with torch.no_grad():
        largest = module(example_images(64, seed=1)).abs().max().item()  # the images export_model compares on
    assert result["max_abs_diff"] < 1e-5 * max(largest, 1.0)  # float32 rounding of logits of that size


def test_each_network_classifies_an_image_file_as_its_forward_pass_does(trained, tmp_path):
    image = Image.new("L", (120, 120), "white")
    ImageDraw.Draw(image).line((60, 15, 60, 105), fill="black", width=12)  # a "1"
    image.save(tmp_path / "one.png")
    overrides = [f"ckpt_path={trained['best_checkpoint']}", f"input={tmp_path / 'one.png'}", "top_k=3"]
    [prediction], failed = predict(compose_use("predict", overrides, tmp_path / "run"))
    module = load_trained(trained["best_checkpoint"]).network
    with torch.no_grad():
        expected = module(preprocess(image)[None]).softmax(dim=1)[0].topk(3)
    assert not failed and prediction.digits == expected.indices.tolist()


def test_channels_last_trains_the_cnn_to_the_same_numbers_up_to_rounding():
    """model.channels_last changes how activations lie in memory, not what is computed: from the same start, ten
    SGD steps give the same logits to float32 rounding (the convolutions add in another order)."""
    from mlplab.models.cnn import CNN

    images, labels = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    logits = []
    for channels_last in (False, True):
        torch.manual_seed(0)
        net = CNN(channels_last=channels_last)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        for _ in range(10):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(images), labels).backward()
            optimizer.step()
        assert net.features[3].weight.is_contiguous(memory_format=torch.channels_last) == channels_last  # conv 2
        logits.append(net(images).detach())
    assert torch.allclose(logits[0], logits[1], atol=1e-4, rtol=1e-4)
