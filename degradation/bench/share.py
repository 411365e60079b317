"""`degradation bench --share 1,2,4`: how many runs should share one device, measured rather than guessed.

One CIFAR-sized run leaves much of a large GPU idle (small kernels, launch gaps, the optimizer step), so a few
runs on one GPU can together train more images per second than one alone, until they contend. For each K, K
worker processes build the real training step (the same path as `degradation bench`: composed config,
synthetic stream, TrainModule under a Lightning Trainer, timed by `bench.tool_seconds`), warm up, wait at a
common start barrier (so start-up, compile and cuDNN autotuning are not timed) and then train at once; their
images/s add up to the aggregate. On a CPU each worker gets cores // K threads, as a sweep of K runs would.

The choice rule (`choose_runs`): the K with the best aggregate, where a larger K only counts as better when it
gains at least MIN_GAIN over the K chosen among the smaller ones: contention, memory and noise are not worth a
gain within the measurement's scatter. Nothing is asserted; <results>/bench_share.parquet keeps the figures
and `launcher.runs_per_gpu=auto` in a sweep reads the choice back.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from degradation.bench.step import bench_cfg, tool_seconds, tool_window  # first: degradation.train before torch
from degradation.compute.machine import cpu_cores, device_kind, device_name
from degradation.errors import UsageError
from degradation.models.depth import cifar_blocks_per_stage
from degradation.store.io import write_atomic, write_json_atomic
from degradation.store.runs import check_writable
from degradation.sweep.estimate import SHARE_FILE
from degradation.sweep.launch import last_log_line
from degradation.text import int_list
from degradation.train.run import build_parts, build_trainer, configure_runtime

MIN_GAIN = 0.05          # a larger K must beat the chosen smaller one by this fraction of images/s
MAX_SHARE = 32           # more runs than this on one device is a typo, not a plan
READY_TIMEOUT_S = 1800   # a worker's start-up and warm-up (a deep net's torch.compile can take minutes)
POLL_S = 0.02
SHORT_WINDOW_S = 1.0     # timed windows shorter than this are dominated by the workers' start skew
MARK = "bench-share"     # worker files: <folder>/<MARK>-<i>.{ready,json,log}


# ---- pure parts ----------------------------------------------------------------------------------------

def parse_share(text: str | Sequence[str]) -> list[int]:
    """--share '1,2,4' -> [1, 2, 4] (sorted, duplicates dropped); 1 is always measured: it is the baseline."""
    counts = int_list(text, "--share", minimum=1)
    too_many = [k for k in counts if k > MAX_SHARE]
    if too_many:
        raise UsageError(f"--share: {too_many[0]} runs on one device is more than {MAX_SHARE}; try 1,2,4")
    return sorted({1, *counts})


def choose_runs(aggregate: Mapping[int, float], min_gain: float = MIN_GAIN) -> int:
    """The K of the best aggregate images/s, a larger K winning only by >= min_gain over the smaller K chosen.

    E.g. {1: 100, 2: 104, 3: 108} gives 3 (8% over 1), {1: 100, 2: 104} gives 1, {1: 100, 2: 150, 3: 155} gives 2.
    """
    usable = {k: v for k, v in aggregate.items() if v and math.isfinite(v) and v > 0}
    if not usable:
        return 1
    best = min(usable)
    for k in sorted(usable):
        if k > best and usable[k] >= usable[best] * (1 + min_gain):
            best = k
    return best


def threads_for(cores: int, runs: int) -> int:
    """CPU threads of each of `runs` processes sharing `cores`, as the sweep gives them."""
    return max(1, cores // max(1, runs))


def overlap(windows: Sequence[tuple[float, float]]) -> float:
    """Fraction of the workers' joint span during which all of them were timing: 1 when they ran together."""
    starts, ends = [w[0] for w in windows], [w[1] for w in windows]
    span = max(ends) - min(starts)
    return max(0.0, min(ends) - max(starts)) / span if span > 0 else 1.0


# ---- one worker: `python -m degradation.bench.share --worker ...` ---------------------------------------

def _worker_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="degradation.bench.share --worker")
    parser.add_argument("--worker", action="store_true", required=True)
    parser.add_argument("--arch", required=True)
    parser.add_argument("--depth", type=int, required=True)
    parser.add_argument("--accelerator", required=True)
    parser.add_argument("--iters", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--results", required=True)
    parser.add_argument("--folder", required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--override", action="append", default=[])
    return parser.parse_args(list(argv))


def _build_step(args: argparse.Namespace):
    """The bench's training step for one network: (cfg, model, data, device), threads set before tensor work."""
    overrides = [*args.override, f"trainer.threads={args.threads}"]  # last: the share measurement sets threads
    cfg = bench_cfg(args.arch, args.depth, args.accelerator, args.iters, Path(args.results), overrides)
    configure_runtime(cfg.trainer)
    trainer = build_trainer(cfg.trainer, 1, tempfile.gettempdir())
    model, data, _ = build_parts(cfg, trainer)  # as a run builds them
    return cfg, model, data, trainer.strategy.root_device


def run_worker(argv: Sequence[str]) -> int:
    """Build, warm up, say ready, wait for the go byte on stdin, time `iters` steps (or `seconds`), write the result."""
    args = _worker_args(argv)
    folder = Path(args.folder)
    cfg, model, data, device = _build_step(args)
    tool_seconds(cfg, model, data, 1)  # warm-up: Lightning set-up, allocator, cuDNN autotuning, compile
    (folder / f"{MARK}-{args.index}.ready").touch()
    if sys.stdin.buffer.read(1) != b"g":  # the parent went away or gave up: nothing to time
        return 1
    start = time.monotonic()  # CLOCK_MONOTONIC: comparable between processes on one machine
    if args.seconds is None:
        steps = args.iters
        wall, cpu = tool_seconds(cfg, model, data, steps)
    else:  # all workers train for the same wall time, so their windows overlap whatever their speed
        wall, steps = tool_window(cfg, model, data, args.seconds, args.iters)
        cpu = float("nan")
    end = time.monotonic()
    batch = int(cfg.schedule.batch_size)
    write_json_atomic(folder / f"{MARK}-{args.index}.json", {
        "device": device_name(device), "precision": str(cfg.trainer.precision), "batch_size": batch,
        "threads": args.threads, "wall_s": wall, "cpu_s": cpu, "start": start, "end": end,
        "steps": steps, "images_per_s": steps * batch / wall,
    })
    return 0


# ---- K workers at once -----------------------------------------------------------------------------------

def _worker_command(arch: str, depth: int, accelerator: str, iters: int, threads: int, results_dir: Path,
                    folder: Path, index: int, overrides: Sequence[str], seconds: float | None = None) -> list[str]:
    command = [sys.executable, "-m", "degradation.bench.share", "--worker", "--arch", arch, "--depth", str(depth),
               "--accelerator", accelerator, "--iters", str(iters), "--threads", str(threads),
               "--results", str(results_dir), "--folder", str(folder), "--index", str(index)]
    for item in overrides:
        command += ["--override", item]
    if seconds is not None:
        command += ["--seconds", str(seconds)]
    return command


def _failure(folder: Path, index: int, runs: int, code: int | None) -> Exception:
    """A worker's end as one line from its log: a UsageError for its `error:` line (exit 2), else a RuntimeError
    (whose out-of-memory text the CLI still turns into one line)."""
    line = last_log_line(folder / f"{MARK}-{index}.log") or "no output"
    what = "did not get ready in time" if code is None else f"exit code {code}"
    text = f"bench --share: worker {index + 1} of {runs} failed ({what}): {line}"
    return UsageError(text) if code == UsageError.exit_code else RuntimeError(text)


def _wait_ready(procs: list[subprocess.Popen], folder: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while waiting := [i for i in range(len(procs)) if not (folder / f"{MARK}-{i}.ready").exists()]:
        for i, proc in enumerate(procs):
            if proc.poll() is not None:
                raise _failure(folder, i, len(procs), proc.returncode)
        if time.monotonic() > deadline:
            raise _failure(folder, waiting[0], len(procs), None)
        time.sleep(POLL_S)


def _go(procs: list[subprocess.Popen]) -> None:
    """The go byte to every worker, back to back: they start their timed steps together."""
    for proc in procs:
        try:
            assert proc.stdin is not None  # started with stdin=PIPE
            proc.stdin.write(b"g")
            proc.stdin.close()
        except BrokenPipeError:  # it died after getting ready: its exit code tells
            pass


def _stop(procs: list[subprocess.Popen]) -> None:
    """End the workers that are still alive (only on failure or Ctrl-C), each by its own pid."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdin is not None and not proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()


def measure(arch: str, depth: int, accelerator: str, runs: int, iters: int, results_dir: Path,
            overrides: Sequence[str] = (), cores: int | None = None, seconds: float | None = None) -> list[dict]:
    """One result per worker of `runs` workers training one network together after a common start.

    seconds: each worker trains for this long (at most `iters` steps); None: exactly `iters` steps each.
    """
    threads = threads_for(cores or cpu_cores(), runs)
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(threads))  # CUDA_VISIBLE_DEVICES as it is
    with tempfile.TemporaryDirectory(prefix="bench-share-") as tmp:
        folder = Path(tmp)
        procs: list[subprocess.Popen] = []
        try:
            for i in range(runs):
                command = _worker_command(arch, depth, accelerator, iters, threads, results_dir, folder, i, overrides,
                                          seconds)
                with open(folder / f"{MARK}-{i}.log", "wb") as log:
                    procs.append(subprocess.Popen(command, stdin=subprocess.PIPE, stdout=log,
                                                  stderr=subprocess.STDOUT, env=env))
            _wait_ready(procs, folder, READY_TIMEOUT_S)
            _go(procs)
            for i, proc in enumerate(procs):
                if proc.wait() != 0:
                    raise _failure(folder, i, runs, proc.returncode)
            return [json.loads((folder / f"{MARK}-{i}.json").read_text()) for i in range(runs)]
        finally:
            _stop(procs)


# ---- the table -------------------------------------------------------------------------------------------

def share_rows(arch: str, depth: int, per_k: Mapping[int, list[dict]]) -> list[dict]:
    """One row per K: per-run and aggregate images/s, speed-up over one run, and the chosen K (same on all)."""
    aggregate = {k: sum(w["images_per_s"] for w in workers) for k, workers in per_k.items()}
    chosen = choose_runs(aggregate)
    base = aggregate.get(1) or aggregate[min(aggregate)]
    rows = []
    for k in sorted(per_k):
        workers = per_k[k]
        rows.append({
            "device": workers[0]["device"], "arch": arch, "depth": depth, "precision": workers[0]["precision"],
            "batch_size": workers[0]["batch_size"], "threads": workers[0]["threads"],
            "iters": min(w.get("steps", 0) for w in workers), "runs": k,
            "per_run_images_per_s": aggregate[k] / k, "aggregate_images_per_s": aggregate[k],
            "speedup": aggregate[k] / base, "overlap": overlap([(w["start"], w["end"]) for w in workers]),
            "window_s": max(w["wall_s"] for w in workers), "runs_per_device": chosen,
        })
    return rows


def print_share(frame: Any) -> None:
    shown = frame.assign(
        net=frame.arch + "-" + frame.depth.astype(str),
        per_run_img_s=frame.per_run_images_per_s.round(1),
        aggregate_img_s=frame.aggregate_images_per_s.round(1),
        speedup=frame.speedup.round(2),
        overlap=(100 * frame.overlap).round(0).astype(int).astype(str) + "%",
    )
    columns = ["net", "device", "precision", "runs", "threads", "per_run_img_s", "aggregate_img_s", "speedup",
               "overlap"]
    print(shown[columns].to_string(index=False))
    for (arch, depth, device), group in frame.groupby(["arch", "depth", "device"], sort=False):
        chosen = int(group.runs_per_device.iloc[0])
        gain = float(group.loc[group.runs == chosen, "speedup"].iloc[0])
        why = (f"{gain:.2f}x one run's images/s" if chosen > 1
               else f"no K gains >= {MIN_GAIN:.0%} over one run alone")
        print(f"{arch}-{depth} on {device}: runs_per_device = {chosen} ({why})")
    if (frame.window_s < SHORT_WINDOW_S).any():
        print(f"note: timed windows under {SHORT_WINDOW_S:.0f} s are dominated by the workers' start skew; "
              "use more --seconds for steadier figures")
    print("overlap: share of the workers' joint span during which all of them were training at once")


def _merged(results_dir: Path, frame: Any) -> Any:
    """New rows replace the stored ones of the same device, network and precision; other devices' stay."""
    import pandas as pd

    path = results_dir / SHARE_FILE
    try:
        old = pd.read_parquet(path) if path.is_file() else None
    except Exception:  # unreadable: overwritten by the new figures
        old = None
    if old is None or not {"device", "arch", "depth", "precision"} <= set(old.columns):
        return frame
    keys = ["device", "arch", "depth", "precision"]
    fresh = set(map(tuple, frame[keys].astype(str).values.tolist()))
    kept = old[[tuple(r) not in fresh for r in old[keys].astype(str).values.tolist()]]
    return pd.concat([kept, frame], ignore_index=True) if len(kept) else frame


def run_share(depths: Sequence[int], archs: Sequence[str], device: str, iters: int, results_dir: str | Path,
              shares: Sequence[int], overrides: Sequence[str] = (), cores: int | None = None,
              seconds: float | None = None) -> Any:
    """Measure each (arch, depth) at each K; print the table and the choice; write bench_share.parquet.

    seconds: each worker's timed window in wall time (at most `iters` steps); None: `iters` steps each.
    """
    import pandas as pd  # deferred: the workers never build tables

    if iters < 1:
        raise UsageError(f"--iters {iters} must be >= 1")
    if seconds is not None and not 0 < seconds <= 600:
        raise UsageError(f"--seconds {seconds} must be in (0, 600]")
    for depth in depths:
        cifar_blocks_per_stage(depth)
    if device not in ("auto", "cpu", "cuda", "gpu", "mps"):
        raise UsageError(f"--device {device}; choose auto, cpu, cuda or mps")
    accelerator = device_kind("auto") if device == "auto" else device
    if accelerator in ("cuda", "gpu") and device_kind("cuda") != "cuda":
        raise UsageError(f"--device {device}: no CUDA device is visible here; use --device cpu")
    results_dir = Path(results_dir)
    check_writable(results_dir)
    for arch in archs:  # a bad override is one line here, not K workers' tracebacks
        for depth in depths:
            bench_cfg(arch, depth, accelerator, iters, results_dir, overrides)
    ks = sorted({1, *shares})
    rows = []
    for arch in archs:
        for depth in depths:
            per_k = {k: measure(arch, depth, accelerator, k, iters, results_dir, overrides, cores, seconds) for k in ks}
            rows += share_rows(arch, depth, per_k)
    frame = pd.DataFrame(rows)
    print_share(frame)
    results_dir.mkdir(parents=True, exist_ok=True)
    stored = _merged(results_dir, frame)
    write_atomic(results_dir / SHARE_FILE, lambda tmp: stored.to_parquet(tmp, index=False))
    return frame


def _worker_main(argv: Sequence[str]) -> int:
    """A user error (bad data folder, no such device) as an `error:` line and exit 2, which the parent reports."""
    try:
        return run_worker(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return UsageError.exit_code


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
