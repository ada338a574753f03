"""The loggers a run can write besides TensorBoard's, each continuing a resumed run where its checkpoint left off.

- `logger=csv`: csv/metrics.csv in the run folder, one row per logged record (its step, then its values);
- `logger=mlflow`: one MLflow run per run folder, in an MLflow tracking store (a SQLite file in outputs/ by default:
  `mlflow ui --backend-store-uri sqlite:///outputs/mlflow.db` shows them), offline.

Several at once: `logger=[tensorboard,mlflow]`. Each has the optional hook `continue_from(step)`, which
mlplab.training calls before fitting: with 0 for a run that starts (what an earlier attempt in its folder wrote is
cleared: a start-over), or with a resumed checkpoint's step (what was written up to that step is kept). Lightning's
own CSVLogger deletes its metrics.csv when its folder exists, so a resume would lose the rows of the earlier part.
"""

import csv
import io
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from mlplab.engine.runs import atomic_write

FOLDER_TAG = "run_folder"  # the MLflow tag that ties an MLflow run to its run folder


class CSVLogger(Logger):
    """`<save_dir>/csv/metrics.csv`: a `step` column, then one column per metric (empty where a row has none)."""

    def __init__(self, save_dir: str, folder: str = "csv") -> None:
        super().__init__()
        self.path = Path(save_dir) / folder / "metrics.csv"
        self.pending: list[dict[str, Any]] = []  # logged, not yet written
        self.columns: list[str] | None = None  # the file's header, once read or written

    @property
    def name(self) -> str:
        return "csv"

    @property
    def version(self) -> str:
        return ""

    @property
    def log_dir(self) -> str:
        return str(self.path.parent)

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Nothing: the run folder's hparams.yaml holds the whole config."""

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        self.pending.append({"step": step, **{name: float(value) for name, value in metrics.items()}})

    @rank_zero_only
    def continue_from(self, step: int) -> None:
        self._write([row for row in self.rows() if int(row["step"]) <= step] if step else [])

    def rows(self) -> list[dict[str, str]]:
        """The rows written so far, as text."""
        if not self.path.is_file():
            return []
        with self.path.open(encoding="utf-8", newline="") as file:
            return list(csv.DictReader(file))

    @rank_zero_only
    def save(self) -> None:
        if not self.pending:
            return
        if self.columns is None:  # not started by continue_from: the file as an earlier run left it
            earlier = self.rows()
            self.columns = list(earlier[0]) if earlier else []
        if set(self.columns) >= {name for row in self.pending for name in row}:
            with self.path.open("a", encoding="utf-8", newline="") as file:
                csv.DictWriter(file, fieldnames=self.columns, restval="").writerows(self.pending)
        else:  # a new column: the header, and so the whole file, is written again
            self._write([*self.rows(), *self.pending])
        self.pending = []

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.save()

    def _write(self, rows: list[dict[str, Any]]) -> None:
        self.columns = list(dict.fromkeys(name for row in rows for name in row)) or ["step"]  # step first
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=self.columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, lambda file: file.write(text.getvalue().encode("utf-8")))


class MLflowLogger(Logger):
    """Lightning's MLFlowLogger, with one MLflow run per run folder (named after it, tagged with its path).

    A run that starts deletes the MLflow runs that earlier attempts left for its folder; a resumed run logs into the
    MLflow run of its folder again. MLflow keeps every value it was given (it has no way to remove some): the steps
    that a resumed run trains again appear twice in that run's histories, and its parameters stay those of its start
    (MLflow refuses to change a parameter's value).
    """

    def __init__(
        self, run_folder: str, tracking_uri: str, experiment_name: str, artifact_location: str | None = None
    ) -> None:
        super().__init__()
        self.run_folder, self.tracking_uri = str(Path(run_folder).resolve()), tracking_uri
        self.experiment_name, self.artifact_location = experiment_name, artifact_location
        self.resumed = False
        self._logger: Any = None

    @rank_zero_only
    def continue_from(self, step: int) -> None:
        from mlflow import MlflowClient

        if self.tracking_uri.startswith("sqlite:///"):  # SQLite makes the file, not its folder
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        client = MlflowClient(self.tracking_uri)
        experiment = client.get_experiment_by_name(self.experiment_name)
        folder = self.run_folder.replace("'", "\\'")
        earlier = (
            client.search_runs([experiment.experiment_id], filter_string=f"tags.{FOLDER_TAG} = '{folder}'")
            if experiment
            else []
        )
        kept = earlier[0].info.run_id if step and earlier else None
        for run in earlier:
            if run.info.run_id != kept:
                client.delete_run(run.info.run_id)
        self.resumed = kept is not None
        self._logger = self._lightning(kept)

    def _lightning(self, run_id: str | None) -> Any:
        from lightning.pytorch.loggers import MLFlowLogger

        return MLFlowLogger(
            experiment_name=self.experiment_name,
            run_name=Path(self.run_folder).name,
            tracking_uri=self.tracking_uri,
            tags={FOLDER_TAG: self.run_folder},
            artifact_location=self.artifact_location,
            run_id=run_id,
        )

    @property
    def lightning(self) -> Any:
        """The Lightning MLFlowLogger of this run: the MLflow run continue_from chose, or a new one."""
        if self._logger is None:
            self._logger = self._lightning(None)
        return self._logger

    @property
    def name(self) -> str | None:
        return self.lightning.name

    @property
    def version(self) -> str | None:
        return self.lightning.version

    @property
    def experiment(self) -> Any:
        return self.lightning.experiment

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        if not self.resumed:
            self.lightning.log_hyperparams(params)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        self.lightning.log_metrics(metrics, step)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.lightning.finalize(status)
