"""Read the collected tables once, with one-line errors a user can act on.

Figures, Table 6 and the summary all start here, so an empty, corrupt or missing results folder fails the
same way everywhere. When only run folders exist (no curves.parquet yet), they are collected first.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from degradation.errors import UsageError
from degradation.store.results import collect, load_curves, load_runs
from degradation.store.runs import run_folders
from degradation.store.schema import (
    CURVE_COLUMNS,
    CURVES_TABLE,
    RESPONSE_COLUMNS,
    RESPONSES_TABLE,
    RUNS_TABLE,
    RunStatus,
)

# What the figures need from runs.parquet (the rest is carried along when present).
RUN_NEEDS = ("run_id", "arch", "depth", "shortcut", "dataset", "preset", "seed", "status")


def _read(path: Path, what: str, fix: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged or foreign file
        raise UsageError(f"{path} is not a readable {what} table ({type(exc).__name__}); {fix}") from None


def _check(frame: pd.DataFrame, needs: tuple[str, ...] | list[str], path: Path) -> pd.DataFrame:
    missing = [c for c in needs if c not in frame.columns]
    if missing:
        raise UsageError(f"{path} lacks columns {', '.join(missing)}; rerun `degradation collect`")
    if frame.empty:
        raise UsageError(f"{path} has no rows; run `degradation sweep` first (or pass --results)")
    return frame


def no_curves(runs: pd.DataFrame, shown: int = 3) -> str:
    """Nothing to draw although runs exist: name them with their status and reason (every one failed, or none
    has logged yet), so the fix is in the message rather than "curves.parquet has no rows"."""
    parts = []
    for row in runs.head(shown).itertuples(index=False):
        reason = getattr(row, "reason", None)
        log = getattr(row, "log_path", None)
        text = f"{row.run_id} {row.status}" + (f": {reason}" if isinstance(reason, str) and reason else "")
        parts.append(text + (f" (log: {log})" if isinstance(log, str) and row.status == RunStatus.FAILED else ""))
    more = f"; and {len(runs) - shown} more (`degradation status`)" if len(runs) > shown else ""
    statuses = set(runs["status"].astype(str))
    failed = statuses == {RunStatus.FAILED}
    what = "every run failed before logging a curve" if failed else "no run has logged a curve yet"
    return f"nothing to plot: {what}: {'; '.join(parts)}{more}"


def _collect_if_needed(results_dir: Path) -> None:
    """curves.parquet missing but run folders present: collect them (the sweep normally does this)."""
    if (results_dir / CURVES_TABLE).is_file() and (results_dir / RUNS_TABLE).is_file():
        return
    if not run_folders(results_dir, with_run_json=True):
        raise UsageError(
            f"no results in {results_dir}: no {CURVES_TABLE} and no run folders; "
            "run `degradation sweep` first (or pass --results)"
        )
    collect(results_dir)


def load_results(results_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(curves, runs) of a results folder, checked: UsageError when missing, empty or corrupt."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UsageError(
            f"results folder {results_dir} does not exist; run `degradation sweep` first (or pass --results)"
        )
    _collect_if_needed(results_dir)
    curves, runs = load_curves(results_dir), load_runs(results_dir)
    runs = _check(runs, RUN_NEEDS, results_dir / RUNS_TABLE)
    if curves.empty and {"run_id", "status"} <= set(curves.columns) | set(runs.columns):
        raise UsageError(no_curves(runs))
    curves = _check(curves, list(CURVE_COLUMNS), results_dir / CURVES_TABLE)
    return _tidy(curves, results_dir / CURVES_TABLE), _tidy(runs, results_dir / RUNS_TABLE)


def _tidy(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """NumPy dtypes whatever the writer used: text as object (None for missing), nullable ints as int64 or float."""
    frame = frame.copy()
    for col in frame.columns:
        series = frame[col]
        if pd.api.types.is_string_dtype(series.dtype) or series.dtype == object:
            frame[col] = series.astype(object).where(series.notna(), None)
        elif pd.api.types.is_integer_dtype(series.dtype) or pd.api.types.is_float_dtype(series.dtype):
            if col in ("depth", "seed", "step", "layer_index"):
                if series.isna().any():
                    raise UsageError(f"{path} has rows without {col}; rebuild it (`degradation collect`)")
                frame[col] = series.astype("int64")
            elif series.isna().any() or pd.api.types.is_float_dtype(series.dtype):
                frame[col] = series.astype("float64")
            else:
                frame[col] = series.astype("int64")
    return frame


def load_responses(results_dir: str | Path) -> pd.DataFrame | None:
    """responses.parquet, or None when there is none yet; UsageError when it is corrupt."""
    path = Path(results_dir) / RESPONSES_TABLE
    if not path.is_file():
        return None
    frame = _read(path, "responses", "rebuild it with `degradation responses`")
    missing = [c for c in RESPONSE_COLUMNS if c not in frame.columns]
    if missing:
        raise UsageError(f"{path} lacks columns {', '.join(missing)}; rebuild it with `degradation responses`")
    return _tidy(frame, path)
