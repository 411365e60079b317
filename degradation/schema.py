"""File contracts shared by training, sweeps, collection and figures: names, columns, statuses.

Errors are stored as fractions in [0, 1] (metric "error"); figures and tables show percent.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

# A run folder: results/runs/<run_id>/
RUN_FILE = "run.json"          # status, progress, final numbers, provenance (written atomically)
CONFIG_FILE = "config.yaml"    # the resolved config of the run
CURVES_DIR = "curves"          # part-<last step, 9 digits>.parquet, each written atomically
CHECKPOINT = "checkpoints/last.ckpt"
LOG_FILE = "train.log"
LOCK_FILE = ".lock"            # held by the process training the run (pid inside)

# Collected tables: results/curves.parquet, results/runs.parquet, results/responses.parquet
CURVES_TABLE = "curves.parquet"
RUNS_TABLE = "runs.parquet"
RESPONSES_TABLE = "responses.parquet"

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
RUN_STATUSES = ("new", "running", "partial", "done", "failed")

# Figure 7's table: one row per (run, layer).
RESPONSE_COLUMNS: dict[str, str] = {
    **RUN_IDENTITY,
    "layer_index": "int64",  # 1-based, network order
    "layer": "string",       # module name of the BN after that 3x3 conv
    "std": "float64",
}
