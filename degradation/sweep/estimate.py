"""How big each run's network is and how long each run takes on this machine.

Time comes from stored figures (<results>/bench.parquet from `degradation bench`, when it has the network and
device) or else from a short probe: a few real training steps of the network at the run's thread count.
Both give seconds per training image; a run's time is its remaining images plus its evaluations.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

PROBE_BUDGET_S = 0.5     # timed steps stop after this much time (at least one step)
PROBE_MAX_STEPS = 3
CPU_PROBE_BATCH = 32     # per-image cost hardly changes above this on a CPU; keeps deep nets' probes short
EVAL_COST = 1 / 3        # a forward pass costs about a third of a training step
STARTUP_S = 10.0         # process start, imports, data set loading: paid once per run


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def gpu_count(accelerator: str) -> int:
    if accelerator not in ("auto", "cuda", "gpu"):
        return 0
    import torch

    return torch.cuda.device_count()


def device_kind(accelerator: str) -> str:
    """Where runs will compute: cuda, mps or cpu (trainer.accelerator=auto picks the best present)."""
    import torch

    if accelerator in ("auto", "cuda", "gpu") and torch.cuda.is_available():
        return "cuda"
    if accelerator in ("auto", "mps") and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def network_key(model_cfg: Any) -> tuple:
    """What makes two runs' networks cost the same."""
    shortcut = "none" if model_cfg.arch == "plain" else str(model_cfg.shortcut)
    return (str(model_cfg.arch), str(model_cfg.family), int(model_cfg.depth), shortcut, float(model_cfg.width),
            int(model_cfg.num_classes))


def params_on_meta(model_cfg: Any) -> int | None:
    """Parameter count of a network built on the meta device: no memory, no initialisation cost."""
    try:
        import torch

        from degradation.models import build_model, count_params

        with torch.device("meta"):
            return int(count_params(build_model(model_cfg)))
    except Exception:
        return None


def probe_seconds_per_image(model_cfg: Any, *, batch: int, device: str, threads: int, channels_last: bool,
                            size: int | None = None) -> float:
    """Seconds per training image: one warm-up step, then up to PROBE_MAX_STEPS timed ones (SGD, random data).

    size: the input's side (image folders: data.crop); default the family's (32 or 224)."""
    import torch
    import torch.nn.functional as F

    from degradation.models import build_model, input_shape

    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        torch.manual_seed(0)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        model = build_model(model_cfg).to(device=device, memory_format=fmt)
        shape = input_shape(str(model_cfg.family), batch)
        if size is not None:
            shape = (*shape[:2], int(size), int(size))
        x = torch.randn(shape, device=device).to(memory_format=fmt)
        y = torch.randint(0, int(model_cfg.num_classes), (batch,), device=device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
            if device == "cuda":
                torch.cuda.synchronize()

        step()
        start, times = time.perf_counter(), []
        while len(times) < PROBE_MAX_STEPS and time.perf_counter() - start < PROBE_BUDGET_S:
            began = time.perf_counter()
            step()
            times.append(time.perf_counter() - began)
        return min(times) / batch  # the fastest step: other processes' load only ever slows a step down
    finally:
        torch.set_num_threads(previous)


def stored_seconds_per_image(results_dir: Path, device: str, threads: int | None = None) -> dict[tuple, float]:
    """Per-network figures from <results>/bench.parquet, keyed (arch, depth, shortcut); {} when unusable.

    Only rows measured on this kind of device count (the bench names a GPU by its model); on a CPU, rows at
    this run's thread count are preferred. Reads whatever throughput column the bench wrote.
    """
    path = Path(results_dir) / "bench.parquet"
    if not path.is_file():
        return {}
    try:
        import pandas as pd

        frame = pd.read_parquet(path)
    except Exception:
        return {}
    if not {"arch", "depth"} <= set(frame.columns):
        return {}
    if "device" in frame.columns:
        names = frame["device"].astype(str).str.lower()
        frame = frame[names == device] if device in ("cpu", "mps") else frame[~names.isin(["cpu", "mps"])]
    if device == "cpu" and threads and "threads" in frame.columns:
        frame = frame.assign(_match=frame["threads"] == threads).sort_values("_match", kind="stable")
    out: dict[tuple, float] = {}
    for row in frame.to_dict("records"):  # the last row of a network wins: a matching thread count if any
        seconds = _row_seconds_per_image(row)
        if seconds:
            shortcut = "none" if row["arch"] == "plain" else str(row.get("shortcut") or "A")
            out[(str(row["arch"]), int(row["depth"]), shortcut)] = seconds
    return out


def _row_seconds_per_image(row: dict) -> float | None:
    for key in ("tool_images_per_s", "images_per_s", "tool_img_per_s"):
        if row.get(key):
            return 1.0 / float(row[key])
    batch = row.get("batch_size")
    for key in ("tool_step_s", "tool_s_per_step", "step_s", "s_per_step"):
        if row.get(key) and batch:
            return float(row[key]) / float(batch)
    return None


def eval_images(data_cfg: Any) -> int:
    """Images of one evaluation: the test set (plus the validation split when held out). Image folders: the
    val set, taken as 50 per class (ILSVRC-2012's val set exactly; a holdout at most that)."""
    if data_cfg.name in ("imagenet", "imagefolder"):
        return 50 * int(data_cfg.num_classes)
    test = int(data_cfg.get("test_size", 10000)) if data_cfg.name == "synthetic" else 10000
    return test + (int(data_cfg.val_size) if data_cfg.split == "holdout" else 0)


def run_seconds(cfg: Any, done_iters: int, seconds_per_image: float) -> float:
    """Time left for a run that has done `done_iters` iterations: training, evaluations and start-up."""
    sched = cfg.schedule
    left = max(0, int(sched.max_iters) - int(done_iters))
    if left == 0:
        return 0.0
    train = left * int(sched.batch_size) * seconds_per_image
    evals = (left // int(sched.eval_every) + 1) * eval_images(cfg.data) * seconds_per_image * EVAL_COST
    if cfg.data.name in ("imagenet", "imagefolder"):  # the final 10-crop test: ten views of each val image
        evals += 10 * eval_images(cfg.data) * seconds_per_image * EVAL_COST
    return train + evals + STARTUP_S
