"""Long-format curve rows of one run, flushed as parquet parts at each checkpoint.

A part is written (atomically) just before the checkpoint of the same step, so every row up to a checkpoint
is on disk when that checkpoint exists, and parts named past the checkpoint hold only rows that a resumed
run will recompute: `trim_parts` deletes them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from degradation.io import write_atomic
from degradation.schema import CURVE_COLUMNS, CURVES_DIR, SCHEMA_VERSION

_ARROW_TYPES = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64()}
SCHEMA = pa.schema(
    [pa.field(name, _ARROW_TYPES[kind]) for name, kind in CURVE_COLUMNS.items()],
    metadata={b"schema_version": str(SCHEMA_VERSION).encode()},
)
_PART = re.compile(r"^part-(\d{9})\.parquet$")


def part_name(step: int) -> str:
    return f"part-{step:09d}.parquet"


def part_step(path: Path) -> int | None:
    match = _PART.match(path.name)
    return int(match.group(1)) if match else None


class CurveWriter:
    """Collects rows in memory (a few per logging window) and writes them as one part per checkpoint."""

    def __init__(self, run_dir: Path, ids: dict, batch_size: int, train_size: int) -> None:
        self.dir = Path(run_dir) / CURVES_DIR
        self.ids = ids  # run_id, arch, depth, shortcut, dataset, preset, seed
        self.images_per_step = batch_size / train_size
        self.rows: list[tuple] = []

    def add(self, step: int, split: str, metric: str, value: float, wall_s: float) -> None:
        self.rows.append((step, step * self.images_per_step, split, metric, float(value), float(wall_s)))

    def flush(self, step: int) -> Path | None:
        """Write the pending rows as curves/part-<step>.parquet (atomically); nothing when there are none."""
        if not self.rows:
            return None
        n = len(self.rows)
        names = ("step", "epoch", "split", "metric", "value", "wall_s")
        columns = dict(zip(names, zip(*self.rows, strict=True), strict=True))
        arrays = [
            pa.array([self.ids[field.name]] * n if field.name in self.ids else columns[field.name], type=field.type)
            for field in SCHEMA
        ]
        table = pa.Table.from_arrays(arrays, schema=SCHEMA)  # from_arrays: no pandas import on the training path
        path = self.dir / part_name(step)
        write_atomic(path, lambda tmp: pq.write_table(table, tmp))
        self.rows.clear()
        return path


def trim_parts(run_dir: Path, step: int) -> list[Path]:
    """Delete parts past `step` (the checkpoint's iteration) and temp files a kill left; return what went."""
    folder = Path(run_dir) / CURVES_DIR
    removed = []
    if not folder.is_dir():
        return removed
    for path in sorted(folder.iterdir()):
        at = part_step(path)
        if (at is not None and at > step) or path.name.endswith(".tmp"):
            path.unlink()
            removed.append(path)
    return removed


def missing_windows(run_dir: Path, step: int, log_every: int) -> list[int]:
    """Logging windows up to `step` without a training row in a readable part: a part lost or damaged after
    its checkpoint was written. Resuming from that checkpoint would leave the gap in the curves for good."""
    seen: set[int] = set()
    for path in (Path(run_dir) / CURVES_DIR).glob("part-*.parquet"):
        at = part_step(path)
        if at is None or at > step:
            continue
        try:
            table = pq.read_table(path, columns=["step", "split"])
        except Exception:  # a truncated or foreign file: its rows count as missing
            continue
        seen.update(s for s, split in zip(table["step"].to_pylist(), table["split"].to_pylist(), strict=True)
                    if split == "train")
    return [s for s in range(log_every, step + 1, log_every) if s not in seen]


def read_curves(run_dir: Path):
    """All parts of one run as a pandas DataFrame sorted by step (for tests and quick looks)."""
    import pandas as pd

    parts = sorted(p for p in (Path(run_dir) / CURVES_DIR).glob("part-*.parquet") if part_step(p) is not None)
    if not parts:
        return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in CURVE_COLUMNS.items()})
    frame = pd.concat([pq.read_table(p).to_pandas() for p in parts], ignore_index=True)
    return frame.sort_values(["step", "split", "metric"], kind="stable").reset_index(drop=True)
