"""Long-format curve rows of one run, flushed as parquet parts at each checkpoint.

A part is written (atomically) just before the checkpoint of the same step, so every row up to a checkpoint
is on disk when that checkpoint exists, and parts named past the checkpoint hold only rows that a resumed
run will recompute: `runs.trim_parts` deletes them.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from degradation.io import write_atomic
from degradation.runs import CURVES_DIR, part_name
from degradation.schema import CURVES_SCHEMA


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
            for field in CURVES_SCHEMA
        ]
        table = pa.Table.from_arrays(arrays, schema=CURVES_SCHEMA)  # from_arrays: no pandas on the training path
        path = self.dir / part_name(step)
        write_atomic(path, lambda tmp: pq.write_table(table, tmp))
        self.rows.clear()
        return path
