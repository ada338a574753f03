"""Running an entry point: bad input and early stops end in one line on stderr and a non-zero exit."""

import logging
import os
import re
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, OverrideParseException
from hydra.types import RunMode
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mlplab import distributed
from mlplab.errors import InputError, Interrupted, RunStopped, SweepRefused, one_line
from mlplab.overrides import NAME_LIMIT
from mlplab.runs import record_failure

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


def _no_advert(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("💡")


def _event_writer_quiet(args: threading.ExceptHookArgs) -> None:
    # TensorBoard's event file writer thread keeps its error (a full disk) for the run's next write into the file,
    # which raises it (user_error names the file): its traceback here would be a second report.
    from_writer = type(args.thread).__module__ == "tensorboard.summary.writer.event_file_writer"
    if not (from_writer and isinstance(args.exc_value, OSError)):
        threading.__excepthook__(args)


def _unknown_option(message: str) -> str | None:
    found = re.search(r"Could not find '([^']+)/([^']+)'", message)
    options = re.search(r"Available options in '[^']+':\n((?:\t\S+\n?)+)", message)
    if not (found and options):
        return None
    return f"{found[1]}={found[2]}: unknown option; choose one of {', '.join(options[1].split())}"


def _written_file(error: OSError) -> str | None:
    """The file that a library failed to write (a full disk) with an error that does not name it, from the frames
    of its writer: Hydra's .hydra/*.yaml (a plain open), TensorBoard's event file (whose writer's thread keeps the
    error for the next write or flush into the file, anywhere in a run; the name is a private attribute)."""
    for frame, _ in traceback.walk_tb(error.__traceback__):
        code, local = frame.f_code, frame.f_locals
        if code.co_name == "_save_config" and f"{os.sep}hydra{os.sep}" in code.co_filename:
            return os.path.join(local["output_dir"], local["filename"])
        if type(local.get("self")).__name__ == "EventFileWriter" and hasattr(local["self"], "_file_name"):
            return local["self"]._file_name
    return None


def user_error(error: BaseException) -> str | None:
    """The one-line message for an error caused by the user's input, or None for a genuine bug."""
    for cause in (error, error.__cause__):
        if isinstance(cause, InputError):
            return str(cause)
    if isinstance(error, OverrideParseException):
        message = f"{error.override}: cannot parse this override ({one_line(error.message.split(chr(10))[0])})"
        key, _, value = str(error.override).partition("=")
        if "=" in value or "," in value:  # e.g. the path of a sweep job's checkpoint: 2_optimizer=adam,seed=0/...
            message += f"; a value with = or , in it goes in quotes: \"{key}='{value}'\""
        return message
    if isinstance(error, HydraException | OmegaConfBaseException):
        message = str(error).split("\nConfig search path:")[0]
        return _unknown_option(message) or one_line(f"{message} {error.__cause__ or ''}")
    from_hydra = any(
        f"{os.sep}hydra{os.sep}" in frame.filename for frame in traceback.extract_tb(error.__traceback__)[-3:]
    )
    if isinstance(error, OSError) and error.errno and not error.filename and (written := _written_file(error)):
        return f"{written}: {error.strerror}"
    if isinstance(error, OSError) and error.filename:
        if from_hydra:
            return f"hydra.run.dir={error.filename}: cannot create the run folder ({error.strerror})"
        return f"{error.filename}: {error.strerror}"
    if isinstance(error, ValueError) and from_hydra:  # a misuse of Hydra's own flags, e.g. -m with --cfg
        return one_line(str(error))
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
        distributed.release()


def run(main: Callable[[], object]) -> None:
    """Calls a @hydra.main function; HYDRA_FULL_ERROR=1 shows full tracebacks instead of one line."""
    quiet_libraries()
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra then raises its composition errors, formatted here
    with reported():
        main()
