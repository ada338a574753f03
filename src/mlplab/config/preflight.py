"""Values that only the libraries know to be wrong, found before training: the network (on the meta device, without
memory), the loss, the optimizer, the scheduler and the trainer are built once on stand-ins, and a refusal is
reported by the config key that caused it; the network's memory is estimated against what the machine has.

One mechanism for every argument: the key to blame is the one whose reset to the library's default (or, for an
argument without a default, the one the command line set) makes the object build.
"""

import inspect
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import psutil
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

from mlplab.config.overrides import overridden
from mlplab.config.rules import without_ranges
from mlplab.engine.hparams import class_name
from mlplab.errors import InputError, one_line

BYTES_PER_VALUE = 4  # float32
# Values kept per weight: the weight, its gradient, and the optimizer's state (momentum, Adam's two moments).
STATE_PER_WEIGHT = {"SGD": 1, "RMSprop": 2, "Adam": 2, "AdamW": 2, "NAdam": 2, "Adagrad": 1}


def preflight(cfg: DictConfig) -> None:
    """Raise InputError for a value that a library would refuse once training had started, or for a network that
    cannot fit in memory."""
    keys = overridden()
    # What training builds: the options' ranges left out.
    built = OmegaConf.create({part: without_ranges(cfg[part]) for part in ("model", "loss", "optimizer", "trainer")})
    net = refused("model", built.model, build_network, keys)
    refused("loss", built.loss, partial(run_loss, net.num_classes), keys)
    check_memory(cfg, net, keys)
    optimizer = refused("optimizer", built.optimizer, build_optimizer, keys)
    if cfg.scheduler:
        scheduler = OmegaConf.create(without_ranges(cfg.scheduler.scheduler))
        refused("scheduler.scheduler", scheduler, partial(run_scheduler, optimizer), keys)
    refused("trainer", built.trainer, partial(build_trainer, cfg.steps_per_execution), keys)


def build_trainer(steps_per_execution: int, node: DictConfig) -> None:
    """The Trainer alone (devices, precision, strategy, ...), without the run's loggers and callbacks."""
    from mlplab.engine.execution import trainer_arguments

    arguments, _ = trainer_arguments(OmegaConf.to_container(node, resolve=True), steps_per_execution)
    quiet = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level, quiet.level = quiet.level, logging.WARNING  # its "GPU available: ..." lines come with the real one
    try:
        instantiate(arguments, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    finally:
        quiet.setLevel(level)


def build_network(node: DictConfig) -> torch.nn.Module:
    """The network with its parameters on the meta device: its own checks run, no memory is taken."""
    with torch.device("meta"):
        return instantiate(node, _convert_="all")


def run_loss(num_classes: int, node: DictConfig) -> None:
    """The loss built and computed once on stand-in logits: some arguments (label_smoothing) fail only then."""
    instantiate(node, _convert_="all")(torch.zeros(2, num_classes), torch.arange(2) % num_classes)


def build_optimizer(node: DictConfig) -> torch.optim.Optimizer:
    return instantiate(node)([torch.nn.Parameter(torch.zeros(2))])


def run_scheduler(optimizer: torch.optim.Optimizer, node: DictConfig, steps: int = 3) -> None:
    """Builds the scheduler on the stand-in optimizer and steps it, as training would: some values (a step size
    of 0) fail only when the rate is first computed."""
    make = instantiate(node)
    if make.keywords.get("total_steps", 0) is None:  # OneCycleLR: the run's own count, known to the module
        make = partial(make, total_steps=10 * steps)
    scheduler = make(optimizer)
    for _ in range(steps):
        optimizer.step()
        scheduler.step()


def refused(key: str, node: DictConfig, build: Callable[[DictConfig], Any], overrides: set[str]) -> Any:
    """build(node), or InputError naming the argument of `key` that the library refused, its value, and why."""
    try:
        return build(node)
    except InputError:
        raise
    except Exception as error:  # the libraries' own checks: ValueError, TypeError, ZeroDivisionError, ...
        target = node.get("_target_", key)
        if isinstance(error, InstantiationException) and error.__cause__:  # Hydra's wrapper: the library's own
            error = error.__cause__
        if isinstance(error, InputError):  # a network's own check names its key already
            raise error from None
        reason = one_line(f"{type(error).__name__}: {error}" if isinstance(error, ZeroDivisionError) else str(error))
        culprit = _culprit(node, build, {o.removeprefix(f"{key}.") for o in overrides if o.startswith(f"{key}.")})
        if culprit is None:
            raise InputError(f"{key}: {target} refuses these arguments ({reason})") from None
        value = OmegaConf.to_container(node, resolve=True)[culprit]
        raise InputError(f"{key}.{culprit}={value}: refused by {target} ({reason})") from None


def _culprit(node: DictConfig, build: Callable[[DictConfig], Any], overrides: set[str]) -> str | None:
    """The argument whose reset to the library's default makes the object build; else the only one overridden."""
    try:
        signature = inspect.signature(get_object(node._target_))
    except Exception:  # a target that does not import: Hydra's own message says so
        return None
    defaults = {n: p.default for n, p in signature.parameters.items() if p.default is not inspect.Parameter.empty}
    # The keys set on this command line first: of two that would each fix it, blame the one the user chose.
    arguments = sorted((str(n) for n in node if not str(n).startswith("_")), key=lambda n: n not in overrides)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    unknown = [name for name in arguments if name not in signature.parameters and not takes_any]
    if unknown:  # an argument the target does not have at all
        return unknown[0]
    for name in arguments:
        if name not in defaults or node[name] == defaults[name]:
            continue
        trial = node.copy()
        trial[name] = defaults[name]
        try:
            build(trial)
        except Exception:
            continue
        return str(name)
    suspects = [name for name in arguments if name in overrides]
    return suspects[0] if len(suspects) == 1 else None


def available_memory(accelerator: str) -> tuple[int, str]:
    """Bytes of memory a run may use, and where: the GPU's free memory when it trains on one, else the machine's."""
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.cuda.mem_get_info()[0], "GPU memory free"
    # psutil: the same figure on Linux (MemAvailable), macOS and Windows, where os.sysconf does not exist.
    return psutil.virtual_memory().available, "memory available"


def check_memory(cfg: DictConfig, net: torch.nn.Module, overrides: set[str]) -> None:
    """A network, or a batch of its activations, too large for this machine: refused before it is allocated."""
    weights = sum(parameter.numel() for parameter in net.parameters())
    optimizer = class_name(cfg.optimizer._target_)
    state = STATE_PER_WEIGHT.get(optimizer, 2) + 1  # the gradient too
    batch_key = max(("data.batch_size", "data.eval_batch_size"), key=lambda key: OmegaConf.select(cfg, key))
    batch = OmegaConf.select(cfg, batch_key)
    # Each layer's output, its gradient, and what the layer keeps for its backward pass.
    activations = 3 * activations_per_image(net)
    needed = BYTES_PER_VALUE * ((1 + state) * weights + batch * activations)
    available, where = available_memory(cfg.trainer.get("accelerator", "auto"))
    if needed > available:
        # The batch is to blame only if a batch of one image would fit; else the model key the user set.
        alone = BYTES_PER_VALUE * ((1 + state) * weights + activations)
        model_keys = [key for key in overrides if key.startswith("model.")] or ["model"]
        biggest = sorted(model_keys)[0] if alone > available else batch_key
        value = OmegaConf.select(cfg, biggest) if biggest != "model" else cfg.model._target_
        raise InputError(
            f"{biggest}={value}: this network needs about {_size(needed)} "
            f"({weights:,} weights with their gradients and {optimizer} state, and a batch of activations), "
            f"but {_size(available)} of {where} here; use smaller layers or batches"
        )


def activations_per_image(net: torch.nn.Module) -> int:
    """How many values the layers output for one image: a forward pass on the meta device, counted by hooks."""
    counted = [0]

    def count(module: torch.nn.Module, inputs: Any, output: Any) -> None:
        counted[0] += sum(leaf.numel() for leaf in _tensors(output))

    leaves = [module for module in net.modules() if not list(module.children())]
    hooks = [leaf.register_forward_hook(count) for leaf in leaves]
    try:
        net(torch.zeros(2, 1, 28, 28, device="meta"))  # two images: batch norm refuses one in training mode
    finally:
        for hook in hooks:
            hook.remove()
    return counted[0] // 2


def _tensors(output: Any) -> list[torch.Tensor]:
    # A recurrent layer returns (outputs, state), an LSTM's state is a pair itself.
    if isinstance(output, torch.Tensor):
        return [output]
    return [leaf for item in output for leaf in _tensors(item)] if isinstance(output, tuple | list) else []


def _size(count: int) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count / 2**10:.1f} KiB"
