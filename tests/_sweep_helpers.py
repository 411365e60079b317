"""Shared bits of the sweep and results tests: tiny sweeps, hand-made run folders, a stand-in trainer."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from degradation.store.schema import CURVES_SCHEMA

# Extra overrides that make a real run take about a second: 64 synthetic images, batch 16, 12 iterations.
TINY = ["data.train_size=64", "data.test_size=32", "trainer.threads=1", "trainer.accelerator=cpu"]


def sweep_args(results: Path, *flags: str, extra: tuple[str, ...] = ()) -> list[str]:
    """`degradation sweep` arguments for a tiny synthetic smoke sweep of depth 8 nets."""
    base = ["sweep", "--data", "synthetic", "--preset", "smoke", "--depths", "8", "--results", str(results)]
    return [*base, *flags, "--", *TINY, *extra]


def checkpointed_runs(results: Path, low: int, high: int) -> int:
    """Runs caught mid-way: a checkpoint on disk and run.json saying running at an iteration in [low, high]."""
    count = 0
    for run in (results / "runs").glob("*"):
        try:
            info = json.loads((run / "run.json").read_text())
        except (OSError, ValueError):
            continue
        if (run / "checkpoints" / "last.ckpt").is_file() and info.get("status") == "running" \
                and low <= int(info.get("iteration") or 0) <= high:
            count += 1
    return count


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_run_json(run_dir: Path, **fields) -> dict:
    info = {
        "schema_version": 1,
        "run_id": run_dir.name,
        "status": "done",
        "reason": None,
        "iteration": 12,
        "total_iters": 12,
        "arch": "resnet",
        "depth": 8,
        "shortcut": "A",
        "dataset": "synthetic",
        "preset": "smoke",
        "seed": 0,
        "params": 75290,
        "macs": 12239488,
        "final_train_error": 0.5,
        "final_test_error": 0.6,
        "final_val_error": None,
        "best_test_error": 0.55,
        "best_test_step": 8,
        "wall_s": 2.0,
        "images_per_s": 100.0,
        "device": "cpu 1 threads 32-true",
        "git_revision": "abc",
        "pid": dead_pid(),
        "log_path": str(run_dir / "train.log"),
        **fields,
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").write_text(json.dumps(info))
    return info


def write_part(run_dir: Path, step: int, rows: list[tuple[int, str, str, float]], **ids) -> Path:
    """curves/part-<step>.parquet with rows (step, split, metric, value) of the run `run_dir.name`."""
    base = {"run_id": run_dir.name, "arch": "resnet", "depth": 8, "shortcut": "A", "dataset": "synthetic",
            "preset": "smoke", "seed": 0, **ids}
    data = {key: [value] * len(rows) for key, value in base.items()}
    data["step"] = [r[0] for r in rows]
    data["epoch"] = [r[0] * 16 / 64 for r in rows]
    data["split"] = [r[1] for r in rows]
    data["metric"] = [r[2] for r in rows]
    data["value"] = [float(r[3]) for r in rows]
    data["wall_s"] = [0.1 * r[0] for r in rows]
    path = run_dir / "curves" / f"part-{step:09d}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(data, schema=CURVES_SCHEMA), path)
    return path


def wait_for(predicate, timeout: float = 60.0, every: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every)
    return False


# A stand-in for `python -m degradation.train`: writes run.json like the real one, per a behaviour.
FAKE_TRAIN = r'''
import json, os, signal, sys, time
mode, run_dir = sys.argv[1], sys.argv[2]
arch, depth = os.path.basename(run_dir).split("-")[:2]

def write(status, iteration, reason=None):
    info = {"run_id": os.path.basename(run_dir), "status": status, "iteration": iteration, "total_iters": 12,
            "reason": reason, "pid": os.getpid(), "arch": arch, "depth": int(depth),
            "shortcut": "A" if arch == "resnet" else "none",
            "dataset": "synthetic", "preset": "smoke", "seed": 0, "final_train_error": 0.5,
            "final_test_error": 0.6, "log_path": os.path.join(run_dir, "train.log")}
    tmp = os.path.join(run_dir, ".run.json.tmp")
    with open(tmp, "w") as handle:
        json.dump(info, handle)
    os.replace(tmp, os.path.join(run_dir, "run.json"))

def on_term(*_):
    write("partial", 4, "interrupted at iteration 4")
    sys.exit(130)

signal.signal(signal.SIGTERM, on_term)
with open(os.path.join(run_dir, "child.json"), "w") as handle:
    json.dump({"pid": os.getpid(), "token": os.environ.get("DEGRADATION_LOCK_TOKEN"), "start": time.time(),
               "argv": sys.argv[3:], "gpu": os.environ.get("CUDA_VISIBLE_DEVICES")}, handle)
write("running", 0)
print("fake trainer started", flush=True)
if mode == "done":
    time.sleep(0.5)
    write("done", 12)
elif mode == "nan":
    write("failed", 6, "loss is nan at iteration 6")
    sys.exit(1)
elif mode == "crash":
    print("RuntimeError: out of memory", file=sys.stderr, flush=True)
    sys.exit(3)
elif mode == "hang":
    os.makedirs(os.path.join(run_dir, "checkpoints"), exist_ok=True)
    with open(os.path.join(run_dir, "checkpoints", "last.ckpt"), "w") as handle:
        handle.write("stand-in")  # the real trainer's checkpoint at 4 (smoke: checkpoint_every 4)
    write("running", 4)
    while True:
        time.sleep(0.05)
with open(os.path.join(run_dir, "child.json")) as handle:
    record = json.load(handle)
record["end"] = time.time()
with open(os.path.join(run_dir, "child.json"), "w") as handle:
    json.dump(record, handle)
'''


def fake_child_command(script: Path, modes: dict[str, str]):
    """A replacement for launch.child_command: the stand-in, with the mode for the cell's "<arch>-<depth>"."""

    def command(cell, threads: int) -> list[str]:
        mode = modes[f"{cell.arch}-{cell.depth}"]
        return [sys.executable, str(script), mode, str(cell.run_dir), f"threads={threads}"]

    return command
