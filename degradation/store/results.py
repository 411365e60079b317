"""Merging run folders into results/curves.parquet and results/runs.parquet, and loading those tables.

The run folders are the source of truth (degradation/store/runs.py reads them); the two tables are a cache of them
that `collect` rebuilds from all folders (so runs of earlier sweeps stay, and a partial run shows with its
status). A corrupt part or run.json is skipped with a warning naming it: one bad file never hides the others.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from degradation.errors import UsageError, first_line
from degradation.store.io import remove_stale_temps, write_atomic
from degradation.store.lock import live_owner
from degradation.store.runs import (
    LAYERS_DIR,
    LOG_FILE,
    CorruptFile,
    effective_status,
    is_foreign,
    part_paths,
    read_failure,
    read_parts,
    read_run_json,
    run_folders,
    runs_root,
    warn,
)
from degradation.store.schema import (
    CURVE_COLUMNS,
    CURVES_SCHEMA,
    CURVES_TABLE,
    LAYER_COLUMNS,
    LAYERS_SCHEMA,
    LAYERS_TABLE,
    RUN_COLUMNS,
    RUNS_SCHEMA,
    RUNS_TABLE,
)
from degradation.store.variants import run_variant
from degradation.train.curvewriter import rebuild_parts
from degradation.train.schedule import describe_warmup

CURVE_KEY = ["run_id", "step", "split", "metric"]


def run_row(info: dict, run_dir: Path) -> dict:
    status, reason = effective_status(info, run_dir)
    row = {name: info.get(name) for name in RUN_COLUMNS}
    row.update(
        run_id=info.get("run_id") or run_dir.name,
        status=status,
        reason=reason,
        run_dir=str(run_dir),
        log_path=info.get("log_path") or str(run_dir / LOG_FILE),
    )
    row.update(run_variant(info, run_dir), warmup=describe_warmup(info))
    return row


def _typed(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    kinds = {"string": "string", "int64": "Int64", "float64": "float64"}
    for name, kind in columns.items():
        if name not in frame:
            frame[name] = None
        frame[name] = frame[name].astype(kinds[kind]) if kind != "float64" else pd.to_numeric(frame[name])
    return frame[list(columns)]


def read_runs(results_dir: str | os.PathLike, *, quiet: bool = False) -> pd.DataFrame:
    """One row per run folder that has a readable run.json, read now (no parquet needed)."""
    rows = []
    for folder in run_folders(results_dir):
        try:
            info = read_run_json(folder)
        except CorruptFile as exc:
            if not quiet:
                warn(f"skipping {exc}")
            continue
        if info is None:  # never wrote run.json: only a failure the sweep recorded shows
            info = read_failure(folder)
        if info is not None:
            rows.append(run_row(info, folder))
    frame = _typed(pd.DataFrame(rows, columns=list(RUN_COLUMNS)), RUN_COLUMNS)
    return frame.sort_values(["arch", "depth", "shortcut", "seed", "run_id"], kind="stable").reset_index(drop=True)


def merge_curves(tables: list[pa.Table]) -> pd.DataFrame:
    """Concatenate parts (oldest first) and keep the last row of each (run_id, step, split, metric)."""
    if not tables:
        return _typed(pd.DataFrame(columns=list(CURVE_COLUMNS)), CURVE_COLUMNS)
    frame = pa.concat_tables(tables).to_pandas()
    frame = frame.drop_duplicates(subset=CURVE_KEY, keep="last")
    frame = frame.sort_values(["run_id", "split", "metric", "step"], kind="stable").reset_index(drop=True)
    return _typed(frame, CURVE_COLUMNS)


def read_layers(folders: list[Path]) -> pd.DataFrame:
    """Every run's layers parts (gradient flow), the last row of each (run, step, layer, metric) kept."""
    tables = []
    for folder in folders:
        for path in part_paths(folder, LAYERS_DIR):
            try:
                tables.append(pq.read_table(path).select(list(LAYER_COLUMNS)).cast(LAYERS_SCHEMA))
            except Exception as exc:  # a truncated or foreign part: skipped, named
                warn(f"skipping {path}: {first_line(exc)}")
    if not tables:
        return _typed(pd.DataFrame(columns=list(LAYER_COLUMNS)), LAYER_COLUMNS)
    frame = pa.concat_tables(tables).to_pandas()
    frame = frame.drop_duplicates(subset=["run_id", "step", "layer_index", "metric"], keep="last")
    return _typed(frame.sort_values(["run_id", "metric", "step", "layer_index"], kind="stable")
                  .reset_index(drop=True), LAYER_COLUMNS)


def _write_table(path: Path, frame: pd.DataFrame, schema: pa.Schema) -> None:
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    table = table.replace_schema_metadata(schema.metadata)  # no pandas metadata: readers get plain dtypes
    write_atomic(path, lambda tmp: pq.write_table(table, tmp))


ID_FIELDS = ("run_id", "arch", "depth", "shortcut", "dataset", "preset", "seed")


def _parts_repaired(folder: Path) -> list[pa.Table]:
    """The run's curve parts; a damaged one of a run nobody trains is rebuilt from the rows its checkpoint
    carries (train/curves.py), or, when the checkpoint cannot help, named with what to do."""
    tables = read_parts(folder)
    if len(tables) == len(part_paths(folder)) or live_owner(folder) is not None:
        return tables
    try:
        info = read_run_json(folder) or {}
    except CorruptFile:
        info = {}
    repair = rebuild_parts(folder, {k: info.get(k) for k in ID_FIELDS}) if set(ID_FIELDS) <= set(info) else None
    if repair is None:
        warn(f"{folder.name}: a damaged curve part cannot be rebuilt (its checkpoint holds no curve rows); "
             f"its curves have a gap until the run is trained again (delete {folder} and rerun the sweep)")
        return tables
    warn(f"{folder.name}: rebuilt {len(repair.written)} curve part(s) from its checkpoint "
         f"(damaged part(s) kept as {', '.join(p.name for p in repair.set_aside)})")
    return read_parts(folder)


def collect(results_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Merge every run folder into <results>/curves.parquet and <results>/runs.parquet (each written atomically)."""
    results_dir = Path(results_dir)
    folders = run_folders(results_dir)
    if not folders:
        raise UsageError(f"no run folders under {runs_root(results_dir)}; start some with `degradation sweep`")
    for folder in [results_dir, *folders]:  # what writers killed mid-write (a collect, a run) left behind
        remove_stale_temps(folder)
    runs = read_runs(results_dir)
    tables = []
    for folder in folders:
        if not is_foreign(folder):
            tables += _parts_repaired(folder)
    curves = merge_curves(tables)
    curves_path, runs_path = results_dir / CURVES_TABLE, results_dir / RUNS_TABLE
    _write_table(curves_path, curves, CURVES_SCHEMA)
    _write_table(runs_path, runs, RUNS_SCHEMA)
    _write_table(results_dir / LAYERS_TABLE, read_layers([f for f in folders if not is_foreign(f)]), LAYERS_SCHEMA)
    return curves_path, runs_path


def _load(path: Path, what: str, **read) -> pd.DataFrame:
    if not path.is_file():
        raise UsageError(f"{path} does not exist; run `degradation collect --results {path.parent}` first")
    try:
        return pq.read_table(path, **read).to_pandas()
    except Exception as exc:
        message = f"{path} is not a readable {what} table ({first_line(exc)}); rebuild it with `degradation collect`"
        raise UsageError(message) from None


def load_curves(results_dir: str | os.PathLike) -> pd.DataFrame:
    """results/curves.parquet (long format, errors as fractions)."""
    return _load(Path(results_dir) / CURVES_TABLE, "curves")


def load_runs(results_dir: str | os.PathLike) -> pd.DataFrame:
    """results/runs.parquet (one row per run)."""
    return _load(Path(results_dir) / RUNS_TABLE, "runs")


def load_layers(results_dir: str | os.PathLike, metric: str | None = None,
                columns: Sequence[str] | None = None) -> pd.DataFrame:
    """results/layers.parquet (gradient norm and update ratio per layer and logging window); only one metric's
    rows and the named columns when asked (a 100-run study holds about a million rows)."""
    read: dict = {"columns": list(columns)} if columns is not None else {}
    if metric is not None:
        read["filters"] = [("metric", "==", metric)]
    return _load(Path(results_dir) / LAYERS_TABLE, "layers", **read)
