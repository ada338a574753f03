"""The ways a run ends early that the command line reports in one line instead of a traceback."""


def one_line(text: str) -> str:
    """A library's message, which may span lines, as one line of an error report."""
    return " ".join(text.split())


class InputError(Exception):
    """Bad input from the user (a config value, a data file, a checkpoint), found before training."""


class AlreadyFinished(InputError):
    """A resume of a run that had nothing left to train."""


class SweepRefused(InputError):
    """A sweep that cannot go on (a job folder holding a run of another config, a bad sweep.rerun): the sweep stops,
    and nothing is written into the job's folder, whose earlier results stay."""


class RunStopped(Exception):
    """Training ended early; `status` is recorded in metrics.json, `exit_code` is the process's."""

    status = "stopped"
    exit_code = 1


class Diverged(RunStopped):
    """The training loss became NaN or infinite."""

    status = "diverged"


class Interrupted(RunStopped):
    """Ctrl-C or SIGTERM: training stopped after a checkpoint to resume from was saved."""

    status = "interrupted"

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum  # the shell's convention for "ended by signal N"
