"""How long the commands that do no training take to answer (the target: 0.5 s; `status` on 100 runs: 1.5 s).

    python benchmarks/startup.py [--before /path/to/other/checkout] [--repeat 5]

Each command runs in a fresh interpreter (`python -m degradation ...`, the way the console script starts); the
median of --repeat runs is printed (wall and CPU seconds) with its peak memory. --before: the same commands
from another checkout's package (e.g. the main branch) in the same run, side by side, so a loaded machine slows
both alike.
`status` on 100 runs reads a results folder of 100 hand-written run.json files made in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def commands(tmp: Path) -> list[tuple[str, list[str]]]:
    missing = str(tmp / "no-such-folder")
    return [
        ("python -c pass (the floor)", ["<python>"]),
        ("--version", ["--version"]),
        ("--help", ["--help"]),
        ("sweep -h", ["sweep", "-h"]),
        ("sweep --depth 20 (typo)", ["sweep", "--depth", "20"]),
        ("bench --dept 20 (typo)", ["bench", "--dept", "20"]),
        ("plt (mistyped command)", ["plt"]),
        ("status, missing folder", ["status", "--results", missing]),
        ("data check, missing folder", ["data", "check", "cifar10", "--root", missing]),
        ("status, 100 runs", ["status", "--results", str(tmp / "hundred")]),
    ]


def hundred_runs(folder: Path) -> None:
    """100 finished runs as `status` reads them: one run.json each (no curves needed)."""
    for i in range(100):
        arch, depth, seed = ("plain", "resnet")[i % 2], (20, 32, 44, 56, 110)[i // 2 % 5], i // 10
        run_id = f"{arch}-{depth}-A-cifar10-paper-s{seed}-{i:08x}"
        run = folder / "runs" / run_id
        run.mkdir(parents=True)
        (run / "run.json").write_text(json.dumps({
            "schema_version": 1, "run_id": run_id, "status": "done", "reason": None, "iteration": 64000,
            "total_iters": 64000, "arch": arch, "depth": depth, "shortcut": "A", "dataset": "cifar10",
            "preset": "paper", "seed": seed, "params": 270_000, "macs": 40_000_000, "final_train_error": 0.05,
            "final_test_error": 0.08, "final_val_error": None, "best_test_error": 0.079, "best_test_step": 63000,
            "wall_s": 3600.0, "images_per_s": 2300.0, "device": "cuda 1 threads 32-true", "git_revision": "abc",
            "pid": 1, "log_path": str(run / "train.log")}))


def time_one(package_root: Path, argv: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak MB) of one `python -m degradation argv` with `package_root` first on the
    path. CPU seconds (user + system) move far less than wall time on a machine other work keeps busy."""
    env = {**os.environ, "PYTHONPATH": str(package_root), "COLUMNS": "120"}
    start = time.perf_counter()
    command = [sys.executable, *(["-c", "pass"] if argv == ["<python>"] else ["-m", "degradation", *argv])]
    proc = subprocess.Popen(command, env=env, cwd=package_root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)  # this child's own peak memory
    proc.returncode = 0
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="another checkout to time side by side (its repository root)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    trees = [("after", ROOT)] + ([("before", args.before.resolve())] if args.before else [])
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; median of {args.repeat} runs each")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        hundred_runs(tmp_path / "hundred")
        header = f"{'command (wall, CPU, memory)':30s}" + "".join(f"{name:>22s}" for name, _ in trees)
        print(header)
        for label, argv in commands(tmp_path):
            cells = []
            for _, tree in trees:
                measured = [time_one(tree, argv) for _ in range(args.repeat)]
                wall, cpu = statistics.median(m[0] for m in measured), statistics.median(m[1] for m in measured)
                cells.append(f"{wall:6.2f}s {cpu:5.2f}s {max(m[2] for m in measured):5.0f}MB")
            print(f"{label:30s}" + "".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
