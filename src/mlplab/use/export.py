"""export_model(cfg): write a checkpoint's network as a standalone model file, and check it against the checkpoint.

The exported model takes images as training gives them, (N, 1, 28, 28) float32 normalized with
mlplab.data.MEAN/STD (mlplab.use.inference.preprocess makes them from any image), and returns (N, 10) logits.
"""

import importlib.util
import io
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from mlplab.engine.runs import atomic_write
from mlplab.errors import InputError
from mlplab.idx import MEAN, STD
from mlplab.use.trained import load_trained

Model = Callable[[Tensor], Tensor]


def example_images(n: int, seed: int = 0) -> Tensor:
    """n random images in the network's input range, for tracing and for checking an export."""
    pixels = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    return (pixels - MEAN) / STD


def _batch_dynamic() -> tuple[dict[int, Any], ...]:
    # Traced with one batch size, the file must still accept any other.
    return ({0: torch.export.Dim("batch")},)


def _onnx_bytes(net: nn.Module) -> bytes:
    # At INFO (Hydra's level) the ONNX optimizer narrates each of its passes.
    for name in ("onnx_ir", "onnxscript"):
        logging.getLogger(name).setLevel(logging.WARNING)
    program = torch.onnx.export(
        net, (example_images(2),), input_names=["images"], output_names=["logits"],
        dynamic_shapes=_batch_dynamic(), verbose=False,
    )  # fmt: skip
    return program.model_proto.SerializeToString()


def _onnx_load(path: Path) -> Model:
    import onnxruntime  # optional: only this format needs it

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return lambda images: torch.from_numpy(session.run(None, {"images": images.numpy()})[0])


def _torchscript_bytes(net: nn.Module) -> bytes:
    buffer = io.BytesIO()
    # format=torchscript is chosen by name, and conf/export.yaml says that torch deprecates it: no need for
    # three warnings from torch's internals on every export.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
        torch.jit.save(torch.jit.script(net), buffer)
    return buffer.getvalue()


def _torch_export_bytes(net: nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.export.save(torch.export.export(net, (example_images(2),), dynamic_shapes=_batch_dynamic()), buffer)
    return buffer.getvalue()


# format: (file suffix, the file's bytes, loader that runs the written file). Serialized in memory, then written
# beside the target and renamed: torch's writers report a full disk without the file's name, and leave half a file.
FORMATS: dict[str, tuple[str, Callable[[nn.Module], bytes], Callable[[Path], Model]]] = {
    "onnx": (".onnx", _onnx_bytes, _onnx_load),
    "torchscript": (".pt", _torchscript_bytes, torch.jit.load),
    "torch_export": (".pt2", _torch_export_bytes, lambda path: torch.export.load(path).module()),
}
# What each format needs beyond torch (pip install -e ".[export]").
REQUIRES = {"onnx": ("onnx", "onnxscript", "onnxruntime")}


def export_model(cfg: DictConfig) -> dict[str, Any]:
    """Write cfg.ckpt_path's network in cfg.format, print where; return {path, format, max_abs_diff}.

    max_abs_diff is the largest difference between the file's logits and the checkpoint's on 64 random images.
    """
    if cfg.format not in FORMATS:
        raise InputError(f"format={cfg.format}: choose one of {', '.join(FORMATS)}")
    missing = [name for name in REQUIRES.get(cfg.format, ()) if importlib.util.find_spec(name) is None]
    if missing:
        raise InputError(f"format={cfg.format} needs {', '.join(missing)}: pip install -e '.[export]'")
    net = load_trained(cfg.ckpt_path, cfg.trusted_modules).network
    suffix, serialize, load = FORMATS[cfg.format]
    default = Path(cfg.paths.output_dir) / Path(cfg.ckpt_path).with_suffix(suffix).name
    path = Path(cfg.output).expanduser() if cfg.output else default

    content = serialize(net)
    atomic_write(path, lambda f: f.write(content))
    images = example_images(64, seed=1)
    with torch.inference_mode():
        difference = (load(path)(images) - net(images)).abs().max().item()
    print(f"wrote {path} ({cfg.format}); largest logit difference from the checkpoint: {difference:.2g}", flush=True)
    return {"path": path, "format": cfg.format, "max_abs_diff": difference}
