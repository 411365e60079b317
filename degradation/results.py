"""Reading run folders and merging them into results/curves.parquet and results/runs.parquet.

The run folders are the source of truth; the two tables are a cache of them that `collect` rebuilds from all
folders (so runs of earlier sweeps stay, and a partial run shows with its status). A corrupt part or run.json
is skipped with a warning naming it: one bad file never hides the other runs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from degradation.errors import UsageError
from degradation.io import remove_stale_temps, write_atomic, write_json_atomic
from degradation.schema import (
    CURVE_COLUMNS,
    CURVES_DIR,
    CURVES_TABLE,
    LOG_FILE,
    RUN_FILE,
    RUN_IDENTITY,
    RUNS_TABLE,
    SCHEMA_VERSION,
)

FAILURE_FILE = "failure.json"  # written by the sweep when a training process dies without recording why

_ARROW = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64()}
CURVES_SCHEMA = pa.schema(
    [pa.field(name, _ARROW[kind]) for name, kind in CURVE_COLUMNS.items()],
    metadata={b"schema_version": str(SCHEMA_VERSION).encode()},
)
CURVE_KEY = ["run_id", "step", "split", "metric"]

# runs.parquet: one row per run (the contract's columns, plus where its log is and when it last wrote).
RUN_COLUMNS: dict[str, str] = {
    **RUN_IDENTITY,
    "status": "string",
    "reason": "string",
    "iteration": "int64",
    "total_iters": "int64",
    "params": "int64",
    "macs": "int64",
    "final_train_error": "float64",
    "final_test_error": "float64",
    "final_val_error": "float64",
    "best_test_error": "float64",
    "best_test_step": "int64",
    "wall_s": "float64",
    "images_per_s": "float64",
    "device": "string",
    "git_revision": "string",
    "run_dir": "string",
    "log_path": "string",
    "updated_at": "string",
}
RUNS_SCHEMA = pa.schema(
    [pa.field(name, _ARROW[kind]) for name, kind in RUN_COLUMNS.items()],
    metadata={b"schema_version": str(SCHEMA_VERSION).encode()},
)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def runs_root(results_dir: str | os.PathLike) -> Path:
    return Path(results_dir) / "runs"


def run_folders(results_dir: str | os.PathLike) -> list[Path]:
    root = runs_root(results_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


class CorruptFile(Exception):
    """A file of a run folder that cannot be read; the message says which and why."""


class ForeignSchema(CorruptFile):
    """A run folder written under another schema_version: left as it is (never collected nor trained over)."""

    def __init__(self, message: str, version: object) -> None:
        super().__init__(message)
        self.version = version


def check_schema(info: dict, path: Path) -> None:
    """ForeignSchema when run.json names a schema_version other than ours (none named: ours, as written by hand)."""
    version = info.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ForeignSchema(
            f"{path}: schema_version {version}, this tool reads {SCHEMA_VERSION}; left as it is "
            f"(move the folder away, or use the version of the tool that wrote it)",
            version,
        )


def read_run_json(run_dir: str | os.PathLike) -> dict | None:
    """A run's run.json; None when it has none yet; CorruptFile when it cannot be parsed."""
    path = Path(run_dir) / RUN_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CorruptFile(f"{path}: {exc.strerror}") from None
    try:
        info = json.loads(text)
    except ValueError as exc:
        raise CorruptFile(f"{path}: not JSON ({exc})") from None
    if not isinstance(info, dict) or "status" not in info:
        raise CorruptFile(f"{path}: no status field")
    check_schema(info, path)
    return info


def read_failure(run_dir: str | os.PathLike) -> dict | None:
    """What the sweep recorded about a training process that ended without saying why (failure.json)."""
    path = Path(run_dir) / FAILURE_FILE
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    info["mtime"] = path.stat().st_mtime
    return info


def record_failure(run_dir: str | os.PathLike, ids: dict, reason: str) -> None:
    """Note, beside run.json, that the run's process died without recording its end (a crash, a kill, OOM).

    run.json belongs to the training process; this sidecar is the sweep's. A newer run.json supersedes it.
    """
    run_dir = Path(run_dir)
    write_json_atomic(
        run_dir / FAILURE_FILE,
        {**ids, "status": "failed", "reason": reason, "log_path": str(run_dir / LOG_FILE), "run_dir": str(run_dir)},
    )


def effective_status(info: dict, run_dir: str | os.PathLike) -> tuple[str, str | None]:
    """(status, reason) as it stands now: a run.json left at "running" by a process that is gone is partial,
    or failed when the sweep saw that process die (failure.json newer than run.json)."""
    from degradation.lock import owner_alive, pid_alive, read_lock

    status, reason = str(info.get("status")), info.get("reason")
    if status != "running":
        return status, reason
    owner = read_lock(run_dir)
    if owner is not None:
        alive = owner_alive(owner)
    else:
        pid = info.get("pid")
        alive = isinstance(pid, int) and pid_alive(pid)
    if alive:
        return "running", reason
    failure = read_failure(run_dir)
    run_json = Path(run_dir) / RUN_FILE
    if failure and (not run_json.exists() or failure["mtime"] >= run_json.stat().st_mtime):
        return "failed", failure.get("reason")
    iteration = info.get("iteration", 0)
    return "partial", f"stopped at iteration {iteration} (its process is gone); the next sweep resumes it"


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
    return row


def _typed(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    kinds = {"string": "string", "int64": "Int64", "float64": "float64"}
    for name, kind in columns.items():
        if name not in frame:
            frame[name] = None
        frame[name] = frame[name].astype(kinds[kind]) if kind != "float64" else pd.to_numeric(frame[name])
    return frame[list(columns)]


def _foreign(folder: Path) -> bool:
    try:
        read_run_json(folder)
    except ForeignSchema:
        return True
    except CorruptFile:
        pass
    return False


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


def _part_key(path: Path) -> tuple[int, str]:
    stem = path.stem.rsplit("-", 1)[-1]
    return (int(stem), path.name) if stem.isdigit() else (-1, path.name)


def read_parts(run_dir: Path) -> list[pa.Table]:
    """A run's curve parts in step order, each cast to the curves schema; unreadable ones skipped, named."""
    folder = run_dir / CURVES_DIR
    if not folder.is_dir():
        return []
    tables = []
    for path in sorted(folder.glob("part-*.parquet"), key=_part_key):
        try:
            table = pq.read_table(path)
            table = table.select(list(CURVE_COLUMNS)).cast(CURVES_SCHEMA)
        except Exception as exc:  # pyarrow raises several types for a truncated or foreign file
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            warn(f"skipping {path}: {text}")
            continue
        tables.append(table)
    return tables


def merge_curves(tables: list[pa.Table]) -> pd.DataFrame:
    """Concatenate parts (oldest first) and keep the last row of each (run_id, step, split, metric)."""
    if not tables:
        return _typed(pd.DataFrame(columns=list(CURVE_COLUMNS)), CURVE_COLUMNS)
    frame = pa.concat_tables(tables).to_pandas()
    frame = frame.drop_duplicates(subset=CURVE_KEY, keep="last")
    frame = frame.sort_values(["run_id", "split", "metric", "step"], kind="stable").reset_index(drop=True)
    return _typed(frame, CURVE_COLUMNS)


def _write_table(path: Path, frame: pd.DataFrame, schema: pa.Schema) -> None:
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    table = table.replace_schema_metadata(schema.metadata)  # no pandas metadata: readers get plain dtypes
    write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def collect(results_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Merge every run folder into <results>/curves.parquet and <results>/runs.parquet (each written atomically)."""
    results_dir = Path(results_dir)
    folders = run_folders(results_dir)
    if not folders:
        raise UsageError(f"no run folders under {runs_root(results_dir)}; start some with `degradation sweep`")
    for folder in [results_dir, *folders]:  # what writers killed mid-write (a collect, a run) left behind
        remove_stale_temps(folder)
    runs = read_runs(results_dir)
    tables = [table for folder in folders if not _foreign(folder) for table in read_parts(folder)]
    curves = merge_curves(tables)
    curves_path, runs_path = results_dir / CURVES_TABLE, results_dir / RUNS_TABLE
    _write_table(curves_path, curves, CURVES_SCHEMA)
    _write_table(runs_path, runs, RUNS_SCHEMA)
    return curves_path, runs_path


def _load(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise UsageError(f"{path} does not exist; run `degradation collect --results {path.parent}` first")
    try:
        return pq.read_table(path).to_pandas()
    except Exception as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        message = f"{path} is not a readable {what} table ({text}); rebuild it with `degradation collect`"
        raise UsageError(message) from None


def load_curves(results_dir: str | os.PathLike) -> pd.DataFrame:
    """results/curves.parquet (long format, errors as fractions)."""
    return _load(Path(results_dir) / CURVES_TABLE, "curves")


def load_runs(results_dir: str | os.PathLike) -> pd.DataFrame:
    """results/runs.parquet (one row per run)."""
    return _load(Path(results_dir) / RUNS_TABLE, "runs")


def _pct(value: object) -> str:
    return "-" if value is None or pd.isna(value) else f"{100 * float(value):.2f}%"


def _num(value: object, fmt: str = "{:,.0f}") -> str:
    return "-" if value is None or pd.isna(value) else fmt.format(value)


def print_status(results_dir: str | os.PathLike) -> None:
    """The runs table, read from the run folders now: status, iteration, errors, time, throughput."""
    from rich.table import Table

    from degradation.sweep.report import format_duration, make_console

    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UsageError(f"results folder {results_dir} does not exist; start runs with `degradation sweep`")
    runs = read_runs(results_dir)
    console = make_console()
    if runs.empty:
        console.print(f"no runs under {runs_root(results_dir)} yet")
        return
    table = Table(title=f"runs in {results_dir}", title_justify="left")
    for name in ("run id", "status", "iteration", "train err", "test err", "best test", "wall", "img/s", "device"):
        table.add_column(name, justify="left" if name in ("run id", "status", "device") else "right")
    for row in runs.itertuples(index=False):
        status = row.status
        if row.status in ("failed", "partial") and isinstance(row.reason, str):
            status = f"{row.status}: {row.reason}"
        table.add_row(
            row.run_id,
            status,
            f"{_num(row.iteration)}/{_num(row.total_iters)}",
            _pct(row.final_train_error),
            _pct(row.final_test_error),
            _pct(row.best_test_error),
            "-" if pd.isna(row.wall_s) else format_duration(float(row.wall_s)),
            _num(row.images_per_s),
            row.device if isinstance(row.device, str) else "-",  # "cpu 1 threads ...": the count it keeps
        )
    console.print(table)
    counts = runs["status"].value_counts()
    console.print(", ".join(f"{counts[s]} {s}" for s in ("done", "running", "partial", "failed") if s in counts))
