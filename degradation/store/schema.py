"""The tables' contracts shared by training, sweeps, collection and figures: names, columns, statuses.

Errors are stored as fractions in [0, 1] (metric "error"); figures and tables show percent. What a run folder
holds is degradation/store/runs.py's; this module is the columns every table and curve part is written with.
"""

from __future__ import annotations

import enum

import pyarrow as pa

SCHEMA_VERSION = 1

# Collected tables: results/curves.parquet, results/runs.parquet, results/responses.parquet
CURVES_TABLE = "curves.parquet"
RUNS_TABLE = "runs.parquet"
RESPONSES_TABLE = "responses.parquet"
LAYERS_TABLE = "layers.parquet"
LESION_TABLE = "lesion.parquet"

# The columns that say which run a row belongs to: first in every table.
RUN_IDENTITY: dict[str, str] = {
    "run_id": "string",
    "arch": "string",        # plain | resnet
    "depth": "int64",
    "shortcut": "string",    # A | B | C | none (plain)
    "dataset": "string",     # cifar10 | cifar100 | synthetic | imagenet | imagefolder
    "preset": "string",      # paper | quick | demo | smoke | imagenet | imagenet_quick | imagenet_smoke
    "seed": "int64",
}

# Long-format curves: one row per (run, step, split, metric).
CURVE_COLUMNS: dict[str, str] = {
    **RUN_IDENTITY,
    "step": "int64",         # iteration count after which the value holds (1-based, the paper's x axis)
    "epoch": "float64",      # step * batch_size / train_size
    "split": "string",       # train | val | test
    "metric": "string",      # error (fraction) | loss | lr
    "value": "float64",
    "wall_s": "float64",     # training seconds since the run started, across resumes
}
SPLITS = ("train", "val", "test")
METRICS = ("error", "loss", "lr")
class RunStatus(str, enum.Enum):
    """A run's state in run.json and runs.parquet ("new": planned, no folder yet). A str, so it is written,
    compared and printed as its value."""

    NEW = "new"
    RUNNING = "running"
    PARTIAL = "partial"  # stopped before its last iteration; the next sweep resumes it
    DONE = "done"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value

    __hash__ = str.__hash__  # Enum hashes the name: "done" and RunStatus.DONE must be one key of a dict or set


RUN_STATUSES = tuple(s.value for s in RunStatus)

# Figure 7's table: one row per (run, layer).
RESPONSE_COLUMNS: dict[str, str] = {
    **RUN_IDENTITY,
    "layer_index": "int64",  # 1-based, network order
    "layer": "string",       # module name of the BN after that 3x3 conv
    "std": "float64",
}

# Gradient flow (train/layers.py): one row per (run, step, layer, metric); written in every run's layers/ parts.
LAYER_COLUMNS: dict[str, str] = {
    **RUN_IDENTITY,
    "step": "int64",         # the logging window's last iteration; values are means over the window
    "layer_index": "int64",  # 1-based, network order (every conv and the fc)
    "layer": "string",       # module name, e.g. stage1.0.conv1
    "stage": "string",       # stem | stage1 | stage2 | stage3 | fc
    "metric": "string",      # grad_norm | update_ratio
    "value": "float64",
}

# Lesion study (analysis/lesion.py): one row per (run, lesion).
LESION_COLUMNS: dict[str, str] = {
    **RUN_IDENTITY,
    "kind": "string",        # none | single | random
    "k": "int64",            # blocks removed (0 for the intact net)
    "draw": "int64",         # which seeded draw of k blocks (0 for none / single)
    "removed": "string",     # block names removed, space-separated ("" for the intact net)
    "block_index": "int64",  # 1-based position of the single block removed (0 otherwise)
    "test_error": "float64", # fraction
    "images": "int64",       # test images it was measured on (the whole test set unless --images caps it)
    "skipped": "string",     # why nothing was measured (a plain block whose shape changes), else ""
}

# runs.parquet: one row per run (the contract's columns, plus where its log is and when it last wrote).
RUN_COLUMNS: dict[str, str] = {
    **RUN_IDENTITY,
    "variant": "string",  # the result-changing settings without the seed, hashed: runs pooled as seeds share it
    "arch_label": "string",  # the network's legend name (ResNet, a plug-in's YAML label)
    "settings": "string",  # those settings as JSON (dotted keys), to name what differs between variants
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
    "tencrop_top1_error": "float64",  # image folders: 10-crop val errors of the final weights (Tables 2-3)
    "tencrop_top5_error": "float64",
    "warmup": "string",  # none | on | ended at N | cap at N (train/schedule.describe_warmup)
    "warmup_ended_at": "int64",
    "wall_s": "float64",
    "images_per_s": "float64",
    "device": "string",
    "git_revision": "string",
    "run_dir": "string",
    "log_path": "string",
    "updated_at": "string",
}

_ARROW = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64()}


def arrow_schema(columns: dict[str, str]) -> pa.Schema:
    """The parquet schema of a table, stamped with SCHEMA_VERSION (readers check it)."""
    return pa.schema(
        [pa.field(name, _ARROW[kind]) for name, kind in columns.items()],
        metadata={b"schema_version": str(SCHEMA_VERSION).encode()},
    )


CURVES_SCHEMA = arrow_schema(CURVE_COLUMNS)   # curves.parquet and every run's curve parts
RUNS_SCHEMA = arrow_schema(RUN_COLUMNS)
LAYERS_SCHEMA = arrow_schema(LAYER_COLUMNS)   # layers.parquet and every run's layers parts
LESION_SCHEMA = arrow_schema(LESION_COLUMNS)
