"""The collected study as TensorBoard event files: `tensorboard --logdir results/tb` browses every run at once.

One TensorBoard run per run id (results/tb/<run_id>/): its curves (error/train, error/test, loss/train,
lr/train, ...), its layer statistics (grad_norm/<layer>, update_ratio/<layer> from layers.parquet) and its config
as hparams (the run's identity and recorded result-changing settings), with the final errors as the hparams
metrics, so the HParams tab compares runs by setting. A run's folder is written beside the old one and swapped
in, so an export stopped half-way never leaves a run with half its events, and a second export replaces, not
doubles, the first.
"""

from __future__ import annotations

import json
import math
import shutil
from datetime import datetime
from pathlib import Path

import pandas as pd

from degradation.analysis.load import load_results
from degradation.errors import UsageError
from degradation.store.results import load_layers

TB_DIR = "tb"
IDENTITY = ("arch", "depth", "shortcut", "dataset", "preset", "seed", "variant", "status")


def _writer_parts():
    try:  # deferred: tensorboard is an optional extra; torch's writer imports it
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams
    except ImportError:
        raise UsageError("the TensorBoard export needs the tensorboard package: "
                         "pip install 'degradation[tensorboard]' (or pip install tensorboard)") from None
    return SummaryWriter, hparams


def hparam_dict(run: pd.Series) -> dict[str, str | float | int | bool]:
    """The run's identity and recorded settings in the types the HParams plugin takes (lists and None as text)."""
    out: dict[str, str | float | int | bool] = {}
    try:
        settings = json.loads(run["settings"]) if isinstance(run.get("settings"), str) else {}
    except ValueError:
        settings = {}
    for key, value in {**{k: run.get(k) for k in IDENTITY}, **settings}.items():
        number = isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value))
        if isinstance(value, (bool, str)) or number:
            out[key] = value
        elif hasattr(value, "item"):  # numpy scalars from the table
            out[key] = value.item()
        else:
            out[key] = json.dumps(value, default=str)
    return out


def _start(run: pd.Series, curve: pd.DataFrame) -> float:
    """Unix time the run started (updated_at less its training seconds), so wall times read as when it trained."""
    try:
        end = datetime.fromisoformat(str(run.get("updated_at"))).timestamp()
    except ValueError:
        return 0.0
    wall = curve["wall_s"].max() if len(curve) else 0.0
    return end - (float(wall) if pd.notna(wall) else 0.0)


def _write_run(folder: Path, run: pd.Series, curve: pd.DataFrame, layers: pd.DataFrame | None) -> int:
    """One run's event file in `folder`; returns the number of scalars written."""
    summary_writer, hparams = _writer_parts()
    start = _start(run, curve)
    writer = summary_writer(log_dir=str(folder))
    written = 0
    try:
        for row in curve.itertuples(index=False):
            wall = start + row.wall_s if pd.notna(row.wall_s) else None
            writer.add_scalar(f"{row.metric}/{row.split}", float(row.value), int(row.step), walltime=wall)
            written += 1
        if layers is not None:
            for row in layers.itertuples(index=False):
                writer.add_scalar(f"{row.metric}/{int(row.layer_index):03d}_{row.layer}", float(row.value),
                                  int(row.step))
                written += 1
        metrics = {f"final/{k}_error": float(run[f"final_{k}_error"]) for k in ("train", "test")
                   if pd.notna(run.get(f"final_{k}_error"))}
        final_step = int(run["iteration"]) if pd.notna(run.get("iteration")) else 0
        for tag, value in metrics.items():
            writer.add_scalar(tag, value, final_step)
        for summary in hparams(hparam_dict(run), metrics):
            writer.file_writer.add_summary(summary)
    finally:
        writer.close()
    return written


def export_tensorboard(results_dir: str | Path, out: str | Path | None = None) -> list[Path]:
    """Write <results>/tb/<run_id>/ for every collected run; return the run folders written."""
    results_dir = Path(results_dir)
    _writer_parts()  # before anything is read: a missing package is the first thing said
    curves, runs = load_results(results_dir)
    try:
        layers = load_layers(results_dir)
    except UsageError:  # no layer statistics collected: the curves alone
        layers = None
    root = Path(out) if out is not None else results_dir / TB_DIR
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write TensorBoard files to {root}: {exc.strerror}; pass a writable --out") from None
    for stale in root.glob(".*.partial"):  # what an export stopped half-way left
        shutil.rmtree(stale, ignore_errors=True)
    by_run = dict(tuple(curves.groupby("run_id", sort=False)))
    layer_runs = dict(tuple(layers.groupby("run_id", sort=False))) if layers is not None else {}
    written = []
    for _, run in runs.drop_duplicates("run_id", keep="last").iterrows():
        run_id = str(run["run_id"])
        partial, final = root / f".{run_id}.partial", root / run_id
        shutil.rmtree(partial, ignore_errors=True)
        curve = by_run.get(run_id, curves.iloc[0:0]).sort_values(["metric", "split", "step"])
        _write_run(partial, run, curve, layer_runs.get(run_id))
        if final.exists():
            shutil.rmtree(final)
        partial.rename(final)
        written.append(final)
    return written
