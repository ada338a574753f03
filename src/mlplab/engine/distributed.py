"""Lightning's DDP inside Hydra multiruns: each extra process re-runs its own job, not the whole sweep."""

import os
import sys

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_original_cwd, to_absolute_path
from lightning.pytorch.strategies.launchers import subprocess_script

_lightning_command = subprocess_script._hydra_subprocess_cmd


def _job_command(local_rank: int) -> tuple[list[str], str]:
    """The command of DDP process `local_rank`: this job's overrides as a single run into this job's folder.

    Lightning's own command repeats the parent's whole command line: in a multirun (`-m` and the sweep
    lists) every extra process would run the entire sweep by itself, out of step with rank 0.
    """
    hydra = HydraConfig.get()
    if hydra.mode != RunMode.MULTIRUN:
        return _lightning_command(local_rank)
    command = [sys.executable, to_absolute_path(sys.argv[0]), *hydra.overrides.task]
    command += [
        f'hydra.run.dir="{hydra.runtime.output_dir}"',  # quoted: job folder names hold '=' and ','
        "hydra.output_subdir=null",  # rank 0 already wrote this job's .hydra/
        f"hydra.job.name={hydra.job.name}_ddp_rank_{local_rank}",
    ]
    return command, get_original_cwd()


def use_job_commands() -> None:
    """Makes Lightning start DDP processes with _job_command (idempotent)."""
    subprocess_script._hydra_subprocess_cmd = _job_command


def release() -> None:
    """Leaves this process as before its DDP job, so that the next job of a multirun starts its own processes.

    Lightning keeps the process group and its LOCAL_RANK/WORLD_SIZE/MASTER_* variables after fit; the next
    job would take them for an external launcher's and wait for processes that already exited.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    for name in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        os.environ.pop(name, None)
