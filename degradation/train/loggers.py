"""Optional loggers people already use (logger=csv|tensorboard|wandb|mlflow, or several: logger=[csv,tensorboard]):
a view, never the record.

They receive the same rows as the curve parts, at the same steps (each logging window: train error, loss
and lr; at evaluations: test/val error and loss), as <split>/<metric>, plus the resolved config once. The
run folder's parquet stays the source of truth: a logger is written by rank zero only, and after a resume
the steps since the last checkpoint are sent again (the parquet keeps the recomputed values; a logger
shows both). The packages are optional extras, imported only when their logger is chosen.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Protocol

from degradation.conf import LOGGERS, OPTIONAL_LOGGERS, chosen_loggers
from degradation.errors import UsageError

LOG_DIR = "logs"  # under the run folder
EXTRA = {name: name for name in OPTIONAL_LOGGERS}  # the pyproject extra that installs each


class MetricLogger(Protocol):
    def log(self, step: int, rows: list[tuple[str, str, float]]) -> None: ...

    def close(self) -> None: ...


def _flat(tree: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, f"{name}."))
        else:
            out[name] = value
    return out


class CsvLogger:
    """logs/metrics.csv (appended: step, split, metric, value) and logs/config.json."""

    def __init__(self, folder: Path, config: dict) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
        path = folder / "metrics.csv"
        fresh = not path.is_file()
        self.file = path.open("a", newline="")
        self.writer = csv.writer(self.file)
        if fresh:
            self.writer.writerow(["step", "split", "metric", "value"])

    def log(self, step: int, rows: list[tuple[str, str, float]]) -> None:
        self.writer.writerows((step, split, metric, repr(float(value))) for split, metric, value in rows)
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class TensorBoardLogger:
    def __init__(self, folder: Path, config: dict) -> None:
        from torch.utils.tensorboard import SummaryWriter  # deferred: optional extra, needs tensorboard

        self.writer = SummaryWriter(log_dir=str(folder / "tensorboard"))
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=1, sort_keys=True) + "\n```", 0)

    def log(self, step: int, rows: list[tuple[str, str, float]]) -> None:
        for split, metric, value in rows:
            self.writer.add_scalar(f"{split}/{metric}", float(value), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    """mode offline (the default: files under logs/wandb, `wandb sync` uploads later) or online (needs a login)."""

    def __init__(self, folder: Path, config: dict, run_id: str, project: str, mode: str = "offline") -> None:
        import wandb  # deferred: optional extra

        folder.mkdir(parents=True, exist_ok=True)
        self.wandb = wandb
        self.run = wandb.init(mode=mode, dir=str(folder), project=project, name=run_id, id=run_id,
                              resume="allow", config=config, reinit=True)

    def log(self, step: int, rows: list[tuple[str, str, float]]) -> None:
        self.run.log({f"{split}/{metric}": float(value) for split, metric, value in rows}, step=step)

    def close(self) -> None:
        self.run.finish()


class MlflowLogger:
    def __init__(self, folder: Path, config: dict, run_id: str, experiment: str) -> None:
        import mlflow  # deferred: optional extra

        self.client = mlflow.tracking.MlflowClient(tracking_uri=(folder / "mlruns").absolute().as_uri())
        found = self.client.get_experiment_by_name(experiment)
        exp_id = found.experiment_id if found else self.client.create_experiment(experiment)
        runs = self.client.search_runs([exp_id], f"tags.run_id = '{run_id}'")
        self.run_id = runs[0].info.run_id if runs else self.client.create_run(
            exp_id, run_name=run_id, tags={"run_id": run_id}).info.run_id
        for key, value in _flat(config).items():
            self.client.log_param(self.run_id, key[:250], str(value)[:500])

    def log(self, step: int, rows: list[tuple[str, str, float]]) -> None:
        for split, metric, value in rows:
            self.client.log_metric(self.run_id, f"{split}/{metric}", float(value), step=step)

    def close(self) -> None:
        pass  # the run stays open for a resume; its metrics are on disk already


class Loggers:
    """Several loggers at once (logger=[csv,tensorboard]): every row goes to each, in the order chosen."""

    def __init__(self, loggers: list[MetricLogger]) -> None:
        self.loggers = loggers

    def log(self, step: int, rows: list[tuple[str, str, float]]) -> None:
        for logger in self.loggers:
            logger.log(step, rows)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


def _one(name: str, options: Any, folder: Path, run_id: str, config: dict) -> MetricLogger:
    options = options or {}
    try:
        if name == "csv":
            return CsvLogger(folder, config)
        if name == "tensorboard":
            return TensorBoardLogger(folder, config)
        if name == "wandb":
            return WandbLogger(folder, config, run_id, str(options.get("project", "degradation")),
                               str(options.get("mode", "offline")))
        return MlflowLogger(folder, config, run_id, str(options.get("experiment", "degradation")))
    except ImportError as exc:
        raise UsageError(f"logger={name} needs the {exc.name or EXTRA[name]} package: "
                         f"pip install 'degradation[{EXTRA[name]}]' (or logger=none)") from None


def make_logger(logger_cfg: Any, run_dir: Path, run_id: str, config: dict) -> MetricLogger | None:
    """The chosen loggers of one run (one, several, or None); a missing package is a one-line UsageError."""
    chosen = chosen_loggers(logger_cfg)
    for name in chosen:
        check_logger(name)
    folder = Path(run_dir) / LOG_DIR
    loggers = [_one(name, options, folder, run_id, config) for name, options in chosen.items()]
    if not loggers:
        return None
    return loggers[0] if len(loggers) == 1 else Loggers(loggers)


def check_logger(name: object) -> str:
    if name not in LOGGERS:
        raise UsageError(f"unknown logger '{name}'; choose from {', '.join(LOGGERS)}")
    return str(name)
