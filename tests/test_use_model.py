"""Using a trained model: evaluate a checkpoint, classify image files, export; in-process and from the command line."""

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict
from PIL import Image, ImageDraw, ImageOps

from mlplab.errors import InputError
from mlplab.idx import MEAN, STD
from mlplab.mnist import REPO_DATA_DIR
from mlplab.training import train
from mlplab.use.evaluation import evaluate
from mlplab.use.export import FORMATS, export_model
from mlplab.use.inference import frame, grayscale, predict, preprocess
from mlplab.use.trained import load_trained

from conftest import CONF_DIR, REPO, SYNTHETIC, compose_train, real_data, run_entry

BLACK, WHITE = (0 - MEAN) / STD, (1 - MEAN) / STD  # normalized paper and full ink


def compose_use(config_name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """conf/<config_name>.yaml as its command line composes it, writing into output_dir."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def cli(script: str, *args: str, cwd: Path) -> tuple[int, str, str]:
    """`python src/SCRIPT ARGS` from the folder `cwd`, run in this process: (exit status, stdout, stderr)."""
    return run_entry(f"src/{script}", list(args), cwd)


@pytest.fixture(scope="module")
def trained(synthetic_mnist, tmp_path_factory) -> dict:
    """The metrics of a 1-epoch run on the synthetic data: its one validation is also its best checkpoint's."""
    run_dir = tmp_path_factory.mktemp("trained")
    metrics, _ = train(compose_train([*SYNTHETIC, "trainer.max_epochs=1", "logger=none"], run_dir, synthetic_mnist))
    return metrics


# --- loading a checkpoint ------------------------------------------------------------------------------------


def test_checkpoint_gives_the_network_in_eval_mode_its_loss_and_its_data_settings(trained, synthetic_mnist):
    network, criterion, data = load_trained(trained["best_checkpoint"])
    widths = [layer.out_features for layer in network.modules() if isinstance(layer, torch.nn.Linear)]
    assert not network.training and widths == [64, 32, 10]
    assert type(criterion) is torch.nn.CrossEntropyLoss
    assert data["data_dir"] == str(synthetic_mnist[0]) and data["val_size"] == 200


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: None, "ckpt_path is required: give ckpt_path=PATH to a checkpoint of a training run"),
        (lambda tmp: tmp / "missing.ckpt", "missing.ckpt: no such file"),
        (lambda tmp: _write(tmp / "notes.ckpt", b"hello"), "notes.ckpt: not a PyTorch checkpoint file"),
        (lambda tmp: _save(tmp / "other.pt", {"state_dict": {}}), "other.pt: not written by `python src/train.py`"),
        (  # another Lightning program's checkpoint, with a datamodule of its own
            lambda tmp: _save(
                tmp / "theirs.ckpt",
                {
                    "state_dict": {},
                    "hyper_parameters": {"lr": 0.1, "hidden_size": 64},
                    "datamodule_hyper_parameters": {},
                },
            ),
            "theirs.ckpt: not a checkpoint of this lab's classifier (another program's?): its hyperparameters are lr, "
            "hidden_size, where this lab's are model, loss, optimizer and their settings",
        ),
        (  # this lab's, its network's widths edited by hand
            lambda tmp: _save(tmp / "edited.ckpt", _edited(LEGACY, hidden_dims=[32])),
            "edited.ckpt: its weights do not fit the network its hyperparameters describe (size mismatch for "
            "layers.1.weight: copying a param with shape torch.Size([16, 784])",
        ),
    ],
)
def test_bad_checkpoints_are_named_in_one_line(tmp_path, make, message):
    with pytest.raises(InputError, match=re.escape(message)) as error:
        load_trained(make(tmp_path))
    assert "\n" not in str(error.value)


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


LEGACY = Path(__file__).parent / "data" / "v0.1.0_mlp16_l2_dropout_onecycle.ckpt"


def _edited(path: Path, **model: object) -> dict:
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["hyper_parameters"]["model"].update(model)
    return checkpoint


def _save(path: Path, obj: object) -> Path:
    torch.save(obj, path)
    return path


# --- eval ----------------------------------------------------------------------------------------------------


def test_eval_reproduces_the_training_runs_test_metrics(trained, tmp_path, capsys):
    result = evaluate(compose_use("eval", [f"ckpt_path={trained['best_checkpoint']}"], tmp_path))
    assert result["test/acc"] == pytest.approx(trained["test/acc"], abs=1e-6)
    assert result["test/loss"] == pytest.approx(trained["test/loss"], rel=1e-6)
    assert result["images"] == 300 and result["split"] == "test"
    assert json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8")) == result
    assert f"test/acc {trained['test/acc']:.2%}  test/loss {trained['test/loss']:.4f}" in capsys.readouterr().out


def test_eval_on_the_val_split_reproduces_the_training_runs_validation(trained, tmp_path):
    cfg = compose_use("eval", [f"ckpt_path={trained['best_checkpoint']}", "data.split=val"], tmp_path)
    result = evaluate(cfg)
    assert result["val/acc"] == pytest.approx(trained["val/acc"], abs=1e-6) == trained["val/acc_best"]
    assert result["val/loss"] == pytest.approx(trained["val/loss"], rel=1e-6)
    assert result["images"] == 200 and result["split"] == "val"


def test_eval_data_overrides_replace_the_checkpoints_settings(trained, synthetic_mnist, tmp_path):
    # A damaged copy of the data proves that data.data_dir was read from the override.
    moved = tmp_path / "moved"
    shutil.copytree(synthetic_mnist[0], moved)
    (moved / "MNIST" / "raw" / "t10k-images-idx3-ubyte").write_bytes(b"damaged")
    cfg = compose_use("eval", [f"ckpt_path={trained['best_checkpoint']}", f"data.data_dir={moved}"], tmp_path)
    with pytest.raises(InputError, match=re.escape(f"{moved}/MNIST/raw/t10k-images-idx3-ubyte: md5 is")):
        evaluate(cfg)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.split=train", "data.split=train: choose test (the official test images) or val"),
        ("++data.colour=red", "data.colour: not a data setting; choose from data_dir, batch_size,"),
        ("data.eval_batch_size=0", "data.eval_batch_size=0: must be an integer >= 1"),
        ("++data.val_size=-5", "data.val_size=-5: must be an integer >= 0 (0: no validation set)"),
        ("accelerator=tpu", "accelerator=tpu: choose auto, cpu, gpu, cuda, mps"),
        ("precision=64-true", "precision=64-true: choose 32-true, bf16-mixed, 16-mixed"),
    ],
)
def test_eval_rejects_unknown_settings(trained, tmp_path, override, message):
    cfg = compose_use("eval", [f"ckpt_path={trained['best_checkpoint']}", override], tmp_path)
    with pytest.raises(InputError, match=re.escape(message)):
        evaluate(cfg)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU: nothing to refuse")
def test_eval_on_a_gpu_that_is_not_there_says_so(trained, tmp_path):
    cfg = compose_use("eval", [f"ckpt_path={trained['best_checkpoint']}", "accelerator=gpu"], tmp_path)
    with pytest.raises(InputError, match=re.escape("accelerator=gpu: no CUDA GPU is available here; use")):
        evaluate(cfg)


def test_eval_in_bfloat16_stays_near_the_float32_result(trained, tmp_path):
    cfg = compose_use("eval", [f"ckpt_path={trained['best_checkpoint']}", "precision=bf16-mixed"], tmp_path)
    result = evaluate(cfg)
    # bfloat16 keeps 8 bits of mantissa: logits move by about 1%, so a digit near a tie can flip, the loss shifts.
    assert result["test/acc"] == pytest.approx(trained["test/acc"], abs=0.02)
    assert result["test/loss"] == pytest.approx(trained["test/loss"], rel=0.05)
    assert result["test/loss"] != trained["test/loss"]  # the arithmetic did change


def test_eval_command_runs_from_any_folder_and_writes_its_run_folder(trained, tmp_path):
    run_dir = tmp_path / "eval_run"
    status, out, err = cli(
        "eval.py", f"ckpt_path={trained['best_checkpoint']}", f"hydra.run.dir={run_dir}", cwd=tmp_path
    )
    assert status == 0, err
    name = Path(trained["best_checkpoint"]).name
    summary = f"test/acc {trained['test/acc']:.2%}  test/loss {trained['test/loss']:.4f}  ({name} on 300 test images)"
    assert summary in out and f"run folder:  {run_dir}" in out
    assert json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))["test/acc"] == pytest.approx(
        trained["test/acc"]
    )


def test_eval_command_without_checkpoint_prints_one_error_line(tmp_path):
    status, _, err = cli("eval.py", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert status == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error: ckpt_path is required: give ckpt_path=PATH")


# --- preprocessing -------------------------------------------------------------------------------------------


def drawing(ink: int = 255, paper: int = 0) -> Image.Image:
    """A grayscale 'digit' off centre: a thick bar with a heavy foot, so its mass is not its box's centre."""
    image = Image.new("L", (90, 60), paper)
    draw = ImageDraw.Draw(image)
    draw.rectangle((10, 5, 19, 44), fill=ink)  # 10 wide, 40 high
    draw.rectangle((10, 35, 39, 44), fill=ink)  # the foot: 30 wide, 10 high
    return image


def ink_box(field: torch.Tensor) -> tuple[int, int]:
    rows, cols = torch.nonzero(field > 0, as_tuple=True)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def centre_of_mass(field: torch.Tensor) -> tuple[float, float]:
    index = torch.arange(28, dtype=torch.float32)
    mass = field.sum()
    return float(field.sum(1) @ index / mass), float(field.sum(0) @ index / mass)


def test_preprocess_gives_one_normalized_28x28_float_image():
    x = preprocess(drawing().convert("RGB"))
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert x.min().item() == pytest.approx(BLACK) and x.max().item() == pytest.approx(WHITE)


def test_frame_scales_the_longer_side_to_20_and_centres_by_mass():
    field = frame(grayscale(drawing()))
    assert ink_box(field) == (20, 15)  # 40 x 30 pixels of ink, halved, aspect ratio kept
    row, col = centre_of_mass(field)
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5
    # The foot pulls the mass below and left of the box's centre: the box itself sits up and to the right.
    rows, cols = torch.nonzero(field > 0, as_tuple=True)
    assert (rows.min() + rows.max()) / 2 < 13 and (cols.min() + cols.max()) / 2 > 15


def test_dark_ink_on_light_paper_is_inverted():
    light_on_dark = frame(grayscale(drawing()))
    assert torch.equal(frame(grayscale(drawing(ink=0, paper=255))), light_on_dark)
    # Grey paper and grey ink: the paper becomes black and the ink full white, as in MNIST.
    assert torch.allclose(frame(grayscale(drawing(ink=40, paper=200))), light_on_dark, atol=1e-6)


@pytest.mark.parametrize("hidden", [0, 255], ids=["hidden-black", "hidden-white"])
@pytest.mark.parametrize("colour", [0, 255], ids=["dark-ink", "light-ink"])
def test_transparent_pixels_count_as_paper_that_the_ink_stands_out_on(colour, hidden):
    opacity = drawing()  # opaque where the digit is; transparent pixels keep a hidden colour of their own
    shade = drawing(ink=colour, paper=hidden)
    rgba = Image.merge("RGBA", (shade,) * 3 + (opacity,))
    assert torch.equal(preprocess(rgba), preprocess(drawing()))


def test_a_thin_dark_digit_on_a_page_with_transparent_corners_stays_dark_on_light():
    page = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(page).line((100, 40, 100, 160), fill=0, width=2)  # 1% of the page is ink
    opacity = Image.new("L", page.size, 255)
    ImageDraw.Draw(opacity).rectangle((0, 0, 9, 9), fill=0)  # a see-through corner, hidden colour white
    framed = frame(grayscale(Image.merge("LA", (page, opacity))))
    assert torch.equal(framed, frame(grayscale(page)))


@pytest.mark.parametrize("margin", [10, 100], ids=["narrow", "wide"])
def test_opaque_paper_in_a_transparent_margin_stays_paper(margin):
    # A transparent margin (hidden colour black) around a white page with a dark digit; wide: the page covers 7%
    # of the image.
    canvas = Image.new("LA", (90 + 2 * margin, 60 + 2 * margin), (0, 0))
    canvas.paste(Image.merge("LA", (drawing(ink=0, paper=255), Image.new("L", (90, 60), 255))), (margin, margin))
    assert torch.equal(preprocess(canvas), preprocess(drawing()))


def test_a_lopsided_digit_stays_whole_in_the_field():
    # Nearly all the mass in the top row: centring it would push the stem out at the bottom.
    image = Image.new("L", (40, 40), 0)
    ImageDraw.Draw(image).rectangle((0, 0, 39, 3), fill=255)
    ImageDraw.Draw(image).line((20, 0, 20, 39), fill=255)
    assert ink_box(frame(grayscale(image)))[0] == 20


def test_a_blank_image_has_no_digit():
    with pytest.raises(InputError, match="no digit found: the image is blank"):
        preprocess(Image.new("RGB", (30, 30), "white"))


# --- predict -------------------------------------------------------------------------------------------------


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """Two drawings (a PNG and a colour JPEG) and a file that is not an image."""
    folder = tmp_path / "images"
    folder.mkdir()
    drawing().save(folder / "a.png")
    ImageOps.colorize(drawing(ink=0, paper=255), "navy", "lightyellow").save(folder / "b.jpg")
    (folder / "notes.txt").write_text("not an image\n", encoding="utf-8")
    return folder


def test_predict_reports_top_k_per_image_and_errors_per_bad_file(trained, image_folder, tmp_path, capsys):
    checkpoint = trained["best_checkpoint"]
    cfg = compose_use("predict", [f"ckpt_path={checkpoint}", f"input={image_folder}", "top_k=3"], tmp_path)
    predictions, failed = predict(cfg)
    assert [Path(p.file).name for p in predictions] == ["a.png", "b.jpg"]
    assert failed == {str(image_folder / "notes.txt"): "not an image (Pillow recognises no image format in it)"}

    module = load_trained(checkpoint).network
    with torch.no_grad():
        expected = module(preprocess(Image.open(image_folder / "a.png"))[None]).softmax(dim=1)[0]
    top = expected.topk(3)
    assert predictions[0].digits == top.indices.tolist()
    assert predictions[0].probabilities == pytest.approx(top.values.tolist(), abs=1e-6)

    out, err = capsys.readouterr()
    shown = "  ".join(f"{d} ({p:.1%})" for d, p in zip(top.indices.tolist(), top.values.tolist(), strict=True))
    assert f"{image_folder / 'a.png'}: {shown}\n" in out
    assert err == f"error: {image_folder / 'notes.txt'}: not an image (Pillow recognises no image format in it)\n"
    saved = json.loads((tmp_path / "predictions.json").read_text(encoding="utf-8"))
    assert saved["errors"] == failed and saved["predictions"][1]["file"] == str(image_folder / "b.jpg")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["top_k=11"], "top_k=11: give a whole number from 1 to 10"),
        (["input=null"], "input is required: give input=IMAGE or input=FOLDER"),
        (["input=/no/such/place"], "input=/no/such/place: no such file or folder"),
    ],
)
def test_predict_rejects_bad_settings(trained, image_folder, tmp_path, overrides, message):
    base = [f"ckpt_path={trained['best_checkpoint']}", f"input={image_folder}"]
    with pytest.raises(InputError, match=re.escape(message)):
        predict(compose_use("predict", [*base, *overrides], tmp_path))


def test_predict_command_reports_good_files_and_fails_for_bad_ones(trained, image_folder, tmp_path):
    run_dir = tmp_path / "predict_run"
    args = [f"ckpt_path={trained['best_checkpoint']}", "input=images", f"hydra.run.dir={run_dir}"]
    status, out, err = cli("predict.py", *args, cwd=tmp_path)
    assert status == 1
    assert re.fullmatch(r"images/a\.png: \d \(\d+\.\d%\)\nimages/b\.jpg: \d \(\d+\.\d%\)\n", out)
    assert err.strip().splitlines()[-1] == (
        "error: images/notes.txt: not an image (Pillow recognises no image format in it)"
    )
    assert len(json.loads((run_dir / "predictions.json").read_text(encoding="utf-8"))["predictions"]) == 2


def render_as_user_images(images: torch.Tensor, labels: torch.Tensor, folder: Path) -> None:
    """MNIST digits as a user might photograph or draw them: inverted, enlarged, off centre, in colour."""
    folder.mkdir()
    for i, (pixels, label) in enumerate(zip(images.numpy(), labels.tolist(), strict=True)):
        digit = Image.fromarray(pixels)
        name = folder / f"{i:03d}_{label}"
        if i % 4 == 0:
            digit.save(f"{name}.png")  # as in MNIST
        elif i % 4 == 1:
            ImageOps.invert(digit).save(f"{name}.png")  # black on white
        else:  # 3x larger, somewhere on a larger sheet of white or coloured paper
            large = ImageOps.invert(digit).resize((84, 84), Image.Resampling.BICUBIC)
            sheet = Image.new("L", (150, 120), 255)
            sheet.paste(large, (10 + i % 50, 5 + i % 30))
            if i % 4 == 2:
                sheet.save(f"{name}.png")
            else:
                ImageOps.colorize(sheet, "darkblue", "lightyellow").save(f"{name}.jpg", quality=90)


@real_data
@pytest.mark.slow
def test_predicts_most_real_digits_rendered_as_user_images(tmp_path):
    # One short epoch: about 93% on the test set, enough to tell the framing works.
    short = ["trainer.max_epochs=1", "++trainer.limit_train_batches=300", "logger=none"]
    metrics, _ = train(compose_train(short, tmp_path / "train"))
    test_set = torchvision.datasets.MNIST(REPO_DATA_DIR, train=False)
    render_as_user_images(test_set.data[:100], test_set.targets[:100], tmp_path / "digits")

    cfg = compose_use("predict", [f"ckpt_path={metrics['best_checkpoint']}", f"input={tmp_path / 'digits'}"], tmp_path)
    predictions, failed = predict(cfg)
    assert not failed and len(predictions) == 100
    right = [p.digits[0] == int(Path(p.file).stem.split("_")[1]) for p in predictions]
    assert sum(right) >= 90, f"{sum(right)}/100 right"
    # Each way of rendering is recognised about as well as the others.
    assert all(sum(right[k::4]) >= 20 for k in range(4)), [sum(right[k::4]) for k in range(4)]


# --- export --------------------------------------------------------------------------------------------------


def run_exported(path: Path, images: torch.Tensor) -> torch.Tensor:
    """The logits of an exported file, run by the runtime each format is meant for."""
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run(["logits"], {"images": images.numpy()})[0])
    if path.suffix == ".pt":
        return torch.jit.load(path)(images)
    return torch.export.load(path).module()(images)


@pytest.mark.filterwarnings("ignore:`torch\\.jit\\.\\w+` is deprecated:FutureWarning")  # torchscript is deprecated
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_exported_model_matches_the_checkpoint(trained, tmp_path, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    checkpoint = trained["best_checkpoint"]
    result = export_model(compose_use("export", [f"ckpt_path={checkpoint}", f"format={fmt}"], tmp_path))
    assert result["path"] == tmp_path / Path(checkpoint).with_suffix(FORMATS[fmt][0]).name
    assert result["max_abs_diff"] < 1e-5
    module = load_trained(checkpoint).network
    images = torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))  # a batch size never seen
    with torch.no_grad():
        assert torch.allclose(run_exported(result["path"], images), module(images), atol=1e-5)


def test_export_writes_where_output_says(trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    overrides = [f"ckpt_path={trained['best_checkpoint']}", "format=torch_export", "output=m/model.pt2"]
    assert export_model(compose_use("export", overrides, tmp_path / "run"))["path"] == Path("m/model.pt2")
    assert (tmp_path / "m" / "model.pt2").is_file() and not (tmp_path / "run").exists()


def test_export_rejects_unknown_formats_and_says_what_onnx_needs(trained, tmp_path, monkeypatch):
    checkpoint = trained["best_checkpoint"]
    with pytest.raises(InputError, match=re.escape("format=tflite: choose one of onnx, torchscript, torch_export")):
        export_model(compose_use("export", [f"ckpt_path={checkpoint}", "format=tflite"], tmp_path))
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "onnxscript" else find_spec(name))
    with pytest.raises(InputError, match=re.escape("format=onnx needs onnxscript: pip install -e '.[export]'")):
        export_model(compose_use("export", [f"ckpt_path={checkpoint}", "format=onnx"], tmp_path))


def test_export_command_prints_where_it_wrote_and_how_close_it_is(trained, tmp_path):
    run_dir = tmp_path / "export_run"
    args = [f"ckpt_path={trained['best_checkpoint']}", "format=torch_export", f"hydra.run.dir={run_dir}"]
    status, out, err = cli("export.py", *args, cwd=tmp_path)
    assert status == 0, err
    written = run_dir / Path(trained["best_checkpoint"]).with_suffix(".pt2").name
    match = re.fullmatch(
        rf"wrote {re.escape(str(written))} \(torch_export\); largest logit difference from the checkpoint: (\S+)\n",
        out,
    )
    assert match and float(match[1]) < 1e-5 and written.is_file()


def test_the_checkpoint_reader_names_the_classifiers_arguments():
    """load_trained checks a checkpoint's hyperparameters without importing the LightningModule: its list of them
    is the Classifier's signature, recomputed here."""
    import inspect

    from mlplab.module import Classifier
    from mlplab.use.trained import HYPERPARAMETERS

    assert tuple(inspect.signature(Classifier).parameters) == HYPERPARAMETERS


def test_the_network_alone_gives_the_modules_logits(trained):
    from mlplab.module import Classifier

    network = load_trained(trained["best_checkpoint"]).network
    module = Classifier.load_from_checkpoint(trained["best_checkpoint"], weights_only=True, map_location="cpu").eval()
    images = torch.randn(4, 1, 28, 28)
    with torch.inference_mode():
        assert torch.equal(network(images), module(images))


def test_eval_predict_and_export_start_without_lightning_torchmetrics_or_torchvision(trained, tmp_path):
    png = tmp_path / "one.png"
    digit = Image.new("L", (28, 28))
    ImageDraw.Draw(digit).line([(14, 5), (14, 23)], fill=255, width=3)
    digit.save(png)
    for entry, arguments in (
        ("src/eval.py", ["data.split=val"]),
        ("src/predict.py", [f"input={png}"]),
        ("src/export.py", ["format=torchscript", f"output={tmp_path / 'net.pt'}"]),
    ):
        argv = [entry, f"ckpt_path={trained['best_checkpoint']}", f"hydra.run.dir={tmp_path / 'run'}", *arguments]
        probe = (
            "import atexit, runpy, sys; heavy = ('lightning', 'torchmetrics', 'torchvision'); "
            "atexit.register(lambda: print('IMPORTED', [m for m in heavy if m in sys.modules])); "
            f"sys.argv = {argv!r}; runpy.run_path({entry!r}, run_name='__main__')"
        )
        result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert "IMPORTED []" in result.stdout, f"{entry}: {result.stdout[-300:]}"
