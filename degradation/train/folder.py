"""The run folder of one training process: run.json, curves, checkpoint, train.log, lock.

Only rank zero writes files; every rank takes part in saving the checkpoint (Lightning gathers collectively).
Order at a checkpoint: curve part, then checkpoint, then run.json, so a checkpoint never exists without the
curve rows up to its iteration.
"""

from __future__ import annotations

import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from degradation.compute.revision import git_revision
from degradation.conf import resolved_dict, run_id, variant_id
from degradation.errors import UsageError
from degradation.models.registry import network_of, shortcut_of
from degradation.store.io import write_json_atomic, write_text_atomic
from degradation.store.runs import CHECKPOINT, CONFIG_FILE, CURVES_DIR, LOG_FILE, RUN_FILE
from degradation.store.schema import SCHEMA_VERSION, RunStatus
from degradation.train.checkpoint import save_checkpoint
from degradation.train.console import Progress
from degradation.train.curvewriter import CurveWriter
from degradation.train.layers import LayerWriter
from degradation.train.loggers import MetricLogger, make_logger

GRAPH_TAG = ", CUDA graph"  # appended to run.json's device while the step is a replayed CUDA graph
STATUS_EVERY_S = 5.0  # run.json between checkpoints: often enough for `degradation status`, cheap on a GPU
EMPTY_SUMMARY = {
    "final_train_error": None,
    "final_test_error": None,
    "final_val_error": None,
    "best_test_error": None,
    "best_test_step": None,
    "warmup": None,
    "warmup_max_iters": None,
    "warmup_ended_at": None,
    "warmup_ended_by_cap": None,
    "wall_s": 0.0,
    "images_per_s": None,
}


def library_versions() -> dict[str, str | None]:
    import importlib.metadata as md

    import torch

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("degradation", "torch", "pytorch-lightning", "hydra-core", "omegaconf", "numpy", "pandas", "pyarrow"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    versions["cuda"] = torch.version.cuda
    versions["cudnn"] = str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else None
    return versions


class RunFolder:
    """Rank zero's writer of one run folder; on other ranks (writer=False) it only joins checkpoint saves."""

    def __init__(self, cfg: DictConfig, path: Path, static: dict[str, Any], writer: bool, progress_mode: str) -> None:
        self.cfg = cfg
        self.path = Path(path)
        self.writer = writer
        self.static = static
        self.state: dict[str, Any] = {"status": RunStatus.RUNNING, "reason": None, "iteration": 0, **EMPTY_SUMMARY}
        self._status_at = 0.0
        model = cfg.model
        self.curves = CurveWriter(
            self.path,
            ids={
                "run_id": static["run_id"],
                "arch": model.arch,
                "depth": int(model.depth),
                "shortcut": static["shortcut"],
                "dataset": cfg.data.name,
                "preset": cfg.schedule.name,
                "seed": int(cfg.seed),
            },
            batch_size=int(cfg.schedule.batch_size),
            train_size=int(static["train_size"]),
        )
        self.layers = LayerWriter(self.path, self.curves.ids)
        self.logger: MetricLogger | None = None  # logger=csv|tensorboard|wandb|mlflow, made by create()
        self.progress = Progress(static["run_id"], int(cfg.schedule.max_iters), self.path / LOG_FILE, progress_mode)

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT

    def create(self) -> None:
        """Make the folder and write config.yaml (rank zero, after every check has passed)."""
        (self.path / CHECKPOINT).parent.mkdir(parents=True, exist_ok=True)
        (self.path / CURVES_DIR).mkdir(exist_ok=True)
        write_text_atomic(self.path / CONFIG_FILE, OmegaConf.to_yaml(self.cfg, resolve=True))
        self.logger = make_logger(self.cfg.get("logger"), self.path, self.static["run_id"], resolved_dict(self.cfg))

    # ---- Recorder protocol (called by TrainModule) --------------------------------------------------------
    def window(self, module, iteration: int, rows: list[tuple[str, str, float]], evaluated: bool) -> None:
        if not self.writer:
            return
        wall = module.wall_s()
        for split, metric, value in rows:
            self.curves.add(iteration, split, metric, value, wall)
        self.layers.add(iteration, getattr(module, "layer_rows", []))
        if self.logger is not None:
            self.logger.log(iteration, rows)
        warm = module.schedule.warmup
        if getattr(module, "warmup_ended_now", False):
            error = f"{module.last['train_error']:.3f}"
            why = (f"the cap (schedule.warmup.max_iters={warm.max_iters}) ended it; training error still {error}"
                   if warm.ended_by_cap else f"train error {error}")
            self.progress.log(f"warm-up ended at iteration {warm.ended_at} ({why})")
        self.progress.update(iteration, module.last["train_error"], module.last["test_error"], evaluated,
                             val_error=module.last.get("val_error"))
        if time.monotonic() - self._status_at >= STATUS_EVERY_S:  # fast GPU runs end a window many times a second
            self.write_status(module, RunStatus.RUNNING)

    def curve_history(self) -> dict | None:
        """Every curve row so far, for the checkpoint (rank zero holds them)."""
        return self.curves.history_state() if self.writer else None

    def restore_curve_history(self, state: dict) -> None:
        self.curves.restore_history(state)

    def checkpoint(self, module, iteration: int) -> None:
        if self.writer:
            self.check_intact()
            self.layers.flush(iteration)  # first: a curve part at a step promises everything up to it
            self.curves.flush(iteration)
        save_checkpoint(module.trainer, self.checkpoint_path)
        if self.writer:
            self.write_status(module, RunStatus.RUNNING)

    def check_intact(self) -> None:
        """Stop when the folder lost its files while the run trained (removed by hand, perhaps half-way): going
        on would end in a "done" run whose earlier curve rows are gone."""
        if not (self.path / CONFIG_FILE).is_file():
            raise UsageError(f"run folder {self.path} lost its files while training (removed?); rerun to start over")

    # ---- run.json ------------------------------------------------------------------------------------------
    def write_status(self, module, status: str, reason: str | None = None) -> dict:
        """Merge the module's numbers into run.json and write it atomically (rank zero)."""
        if module is not None:
            summary = module.summary()
            if summary["images_per_s"] is None:
                summary.pop("images_per_s")  # keep the last session's figure when this one trained nothing
            self.state.update(summary)
        self.state.update(status=status, reason=reason)
        info = {**self.static, **self.state, "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        if self.writer:
            write_json_atomic(self.path / RUN_FILE, info)
            self._status_at = time.monotonic()
        return info

    def log(self, message: str) -> None:
        if self.writer:
            self.progress.log(message)

    def graph_abandoned(self, message: str) -> None:
        """run.json's device stops saying "CUDA graph" (written with the next status); train.log says why."""
        self.static["device"] = self.static["device"].replace(GRAPH_TAG, "")
        self.log(message)

    def close(self) -> None:
        if self.writer:
            self.progress.close()
            if self.logger is not None:
                self.logger.close()
                self.logger = None

    def flush_curves(self, iteration: int) -> None:
        if self.writer:
            self.layers.flush(iteration)
            self.curves.flush(iteration)


def static_info(cfg: DictConfig, path: Path, params: int, macs: int, device: str, train_size: int) -> dict:
    """The run.json keys that do not change while the run trains."""
    model = cfg.model
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id(cfg),
        "variant": variant_id(cfg),  # the run id's identity without the seed: the runs that are seeds of one experiment
        "total_iters": int(cfg.schedule.max_iters),
        "arch": model.arch,
        "depth": int(model.depth),
        "shortcut": shortcut_of(model),
        "arch_label": network_of(model).label,
        "dataset": cfg.data.name,
        "preset": cfg.schedule.name,
        "seed": int(cfg.seed),
        "params": int(params),
        "macs": int(macs),
        "train_size": int(train_size),
        "batch_size": int(cfg.schedule.batch_size),
        "device": device,
        "versions": library_versions(),
        "git_revision": git_revision(),
        "config": resolved_dict(cfg),
        "pid": os.getpid(),
        "log_path": str((Path(path) / LOG_FILE).absolute()),
        "run_dir": str(Path(path).absolute()),
    }
