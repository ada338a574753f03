"""Running an entry point: bad input and early stops end in one line on stderr and a non-zero exit."""

import logging
import os
import sys
import sysconfig
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mlplab.config.overrides import NAME_LIMIT
from mlplab.engine.runs import claimed, record_failure
from mlplab.errors import InputError, Interrupted, RunStopped, SweepRefused, one_line

# Sweep job folders are named after their overrides. Registered on import, not by the entry points: a joblib or
# submitit worker imports this module but runs no entry point, and resolves its job's folder name with it.
OmegaConf.register_new_resolver("clip", lambda text: text[:NAME_LIMIT], replace=True)


def quiet_libraries() -> None:
    """Silences what the libraries print that a user cannot act on (idempotent: every job calls it)."""
    # Lightning 2.6 calls a pytree API that torch 2.14 deprecates.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # Lightning advertises its cloud services in every run's output: noise in an offline lab.
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if _no_advert not in logger.filters:
        logger.addFilter(_no_advert)
    threading.excepthook = _event_writer_quiet


def lightning_console() -> None:
    """Lightning's loggers write to the console themselves, as Lightning sets them up when it is imported before
    logging is configured. src/train.py imports it only once it trains, after Hydra has set up the job's logging:
    set up here first, Lightning's records stay out of Hydra's handlers (its train.log) whichever comes first."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        if logger.propagate:  # else Lightning, imported first, has done it
            logger.addHandler(logging.StreamHandler())
            logger.propagate = False


def _no_advert(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("💡")


def _event_writer_quiet(args: threading.ExceptHookArgs) -> None:
    # TensorBoard's event file writer thread keeps its error (a full disk) for the run's next write into the file,
    # which raises it (user_error names the file): its traceback here would be a second report.
    from_writer = type(args.thread).__module__ == "tensorboard.summary.writer.event_file_writer"
    if not (from_writer and isinstance(args.exc_value, OSError)):
        threading.__excepthook__(args)


# Hydra's misuses of its own flags, which it raises as plain ValueErrors: known by their text alone.
HYDRA_FLAG_MISUSES = (
    "The --resolve flag can only be used in conjunction with --cfg or --help",
    "Only one of --run, --multirun, --cfg, --info and --shell_completion can be specified",
)


def user_error(error: BaseException) -> str | None:
    """The one-line message for an error caused by the user's input, or None for a genuine bug."""
    for cause in (error, error.__cause__):  # a cause: raised in a constructor that Hydra's instantiate called
        if isinstance(cause, InputError):
            return str(cause)
    if (message := hydra_error(error)) is not None:
        return message
    if isinstance(error, OSError) and error.filename:
        return f"{error.filename}: {error.strerror}"
    if isinstance(error, OSError) and error.errno and (written := _event_file(error)):
        return f"{written}: {error.strerror}"
    return None


def hydra_error(error: BaseException) -> str | None:
    """The one line for an error that Hydra or OmegaConf raised on the user's command line or config, or None.

    Known by type: a bad override, an unknown group option, Hydra's and OmegaConf's other config errors. Known by
    where they were raised (Hydra's run_job, which makes the run folder and writes .hydra/): an OSError. Known by
    text: HYDRA_FLAG_MISUSES, the only errors Hydra gives as a plain ValueError."""
    if isinstance(error, OverrideParseException):
        message = f"{error.override}: cannot parse this override ({one_line(error.message.split(chr(10))[0])})"
        key, _, value = str(error.override).partition("=")
        if "=" in value or "," in value:  # e.g. the path of a sweep job's checkpoint: 2_optimizer=adam,seed=0/...
            message += f"; a value with = or , in it goes in quotes: \"{key}='{value}'\""
        elif odd := [char for char in value if not char.isascii() or char.isspace()]:
            # Hydra's lexer takes ASCII letters, digits and a few signs unquoted: a Chinese folder name, a space.
            message += (
                f"; a value with {'spaces' if odd[0].isspace() else repr(odd[0])} in it goes in quotes, inside the "
                f"override and around it: '{key}=\"{value}\"' (in cmd.exe: \"{key}='{value}'\")"
            )
        return message
    if isinstance(error, MissingConfigException) and error.options and error.missing_cfg_file:
        group, _, option = error.missing_cfg_file.rpartition("/")
        return f"{group}={option}: unknown option; choose one of {', '.join(error.options)}"
    if isinstance(error, HydraException | OmegaConfBaseException):
        message = str(error).split("\nConfig search path:")[0]
        return one_line(f"{message} {error.__cause__ or ''}")
    if isinstance(error, ValueError) and str(error) in HYDRA_FLAG_MISUSES:
        return str(error)
    if isinstance(error, OSError) and (job := _hydra_run_job(error)) is not None:
        if error.filename:
            return f"hydra.run.dir={error.filename}: cannot create the run folder ({error.strerror})"
        if job.f_code.co_name == "_save_config":  # .hydra/*.yaml, written with a plain open: the error names no file
            return f"{os.path.join(job.f_locals['output_dir'], job.f_locals['filename'])}: {error.strerror}"
    return None


def _hydra_run_job(error: BaseException) -> FrameType | None:
    """The innermost frame outside the standard library that the error came through, if it is Hydra's run_job
    (which makes the run folder) or its _save_config; else None."""
    stdlib = sysconfig.get_paths()["stdlib"]
    frames = [frame for frame, _ in traceback.walk_tb(error.__traceback__)]
    ours = [frame for frame in frames if not frame.f_code.co_filename.startswith(stdlib)]
    if not ours or f"{os.sep}hydra{os.sep}" not in ours[-1].f_code.co_filename:
        return None
    return ours[-1] if ours[-1].f_code.co_name in ("run_job", "_save_config") else None


def _event_file(error: OSError) -> str | None:
    """TensorBoard's event file, when its writer failed (a full disk): the writer's thread keeps the error for the
    run's next write or flush into the file, anywhere in a run, and the error names no file (a private attribute
    of the writer does)."""
    for frame, _ in traceback.walk_tb(error.__traceback__):
        writer = frame.f_locals.get("self")
        if type(writer).__name__ == "EventFileWriter" and hasattr(writer, "_file_name"):
            return writer._file_name
    return None


def failure(error: Exception) -> str:
    """The one line that records a failed job or trial: the user's error, or a bug's (whose traceback is printed)."""
    message = user_error(error)
    if message is None:  # a bug: its traceback is worth seeing
        traceback.print_exc()
        message = one_line(f"{type(error).__name__}: {error}")
    return message


_full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"


@contextmanager
def reported() -> Iterator[None]:
    """Ends the process with one line on stderr for bad input or an early stop; other errors propagate.

    Used around the body of a Hydra task function, so that Hydra adds no lines of its own, and by run().
    """
    try:
        yield
    except RunStopped as stop:
        if _full_error:
            raise
        print(f"{stop.status}: {stop}", file=sys.stderr)
        sys.exit(stop.exit_code)
    except Exception as error:
        message = user_error(error)
        if _full_error or message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)


def job(task: Callable[[], object], output_dir: str | Path) -> None:
    """Runs one job of a Hydra app. Alone, it ends like reported(). In a multirun a failed job is recorded in
    its metrics.json and printed, and the sweep goes on (the sweep's summary sets the exit status), except on
    Ctrl-C or SIGTERM, which stop the whole sweep."""
    quiet_libraries()
    lightning_console()
    if HydraConfig.get().mode != RunMode.MULTIRUN:
        with reported():
            task()
        return
    try:
        task()
    except RunStopped as stop:  # metrics.json already holds its status
        print(f"{stop.status}: {stop}", file=sys.stderr)
        if isinstance(stop, Interrupted):
            sys.exit(stop.exit_code)
    except SweepRefused as error:  # recording a failure in the job's folder would lose an earlier run's results
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except Exception as error:
        message = failure(error)
        print(f"failed: {message}", file=sys.stderr)
        record_failure(Path(output_dir), message)
    finally:
        from mlplab.engine import distributed  # here: it imports Lightning, which eval and predict do without

        distributed.release()


class FolderNotHeld(Callback):
    """Hydra callback of `python src/train.py`: a run into a folder that another process trains in is refused
    before Hydra rewrites the folder's .hydra/ (a sweep's folder: its sweeper, mlplab.experiments.sweep_folder)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        folder = Path(config.hydra.run.dir)
        if folder.is_dir():
            with reported(), claimed(folder):  # Hydra would turn an exception here into a warning, and go on
                pass


def run(main: Callable[[], object]) -> None:
    """Calls a @hydra.main function; HYDRA_FULL_ERROR=1 shows full tracebacks instead of one line."""
    quiet_libraries()
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra then raises its composition errors, formatted here
    with reported():
        main()
