"""`degradation bench`: the tool's whole training step against a bare PyTorch loop, in one process.

The tool's step is timed through the real path (Lightning Trainer + TrainModule + on-device batch stream with
augmentation + window bookkeeping); the bare loop is forward, loss, backward and SGD step on one batch already
in memory, on an identically initialised copy of the same network. The two are timed in alternating rounds and
each keeps its fastest round, since load from other processes only ever adds time. Nothing is asserted: the
numbers are printed and written to <results_dir>/bench.parquet, one row per network and precision (on a CPU
both fp32 and bf16-mixed by default: CPUs with AMX or AVX512-BF16 train markedly faster in bf16).
"""

from __future__ import annotations  # noqa: I001  (degradation.train goes before torch, see below)

import contextlib
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import degradation.train  # noqa: F401  (before torch: its OpenMP wait policy, see degradation/train/__init__)
import torch
import torch.nn.functional as F

from degradation.conf import compose, validate
from degradation.errors import UsageError
from degradation.store.io import write_atomic
from degradation.compute.machine import device_kind, device_name
from degradation.models import build_model
from degradation.models.depth import cifar_blocks_per_stage
from degradation.models.memory import training_memory
from degradation.models.recompute import enable_activation_checkpointing
from degradation.compute.precision import REFUSED, RUN_PRECISIONS, autocast_dtype, precision_name
from degradation.store.runs import check_writable
from degradation.train.layers import LayerFlow
from degradation.train.module import Ticks, TrainModule
from degradation.train.console import quiet_lightning
from degradation.train.run import build_parts, build_trainer, configure_runtime, step_mode
from degradation.text import duration

WARMUP_STEPS = 3
CPU_PRECISIONS = ("32-true", "bf16-mixed")  # a CPU's default: fp32 and bf16 autocast side by side
OTHER_PRECISIONS = ("32-true",)  # elsewhere: fp32 unless asked (a GPU's bf16: --precision or the override)
PROJECTED_ITERS = 64_000
BARE_BATCHES = 16  # distinct in-memory batches the bare loop cycles through


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def bench_cfg(arch: str, depth: int, accelerator: str, iters: int, results_dir: Path, overrides: Sequence[str]):
    cfg = compose(
        [
            f"model={arch}",
            f"model.depth={depth}",
            "data=synthetic",
            "data.train_size=5000",  # the stream's cost per batch does not depend on the set's size
            "data.test_size=100",
            "schedule=paper",
            f"schedule.max_iters={max(PROJECTED_ITERS, WARMUP_STEPS + iters + 1)}",
            f"trainer.accelerator={accelerator}",
            "trainer.progress=none",
            f"results_dir={results_dir}",
            *overrides,
        ]
    )
    validate(cfg)
    return cfg


class _StepClock:
    """Lightning callback: wall time at the end of every step; syncs the device only at the two timed edges.

    With `budget_s`, the window ends at the first step `budget_s` after its start (or at `last`) and stops the fit:
    runs timed together for the same wall time overlap, whatever their speed.
    """

    def __init__(self, first: int, last: int, budget_s: float | None = None) -> None:
        self.first, self.last, self.budget_s = first, last, budget_s
        self.edges: dict[int, tuple[float, float]] = {}

    def as_callback(self):
        import pytorch_lightning as pl

        clock = self

        class Clock(pl.Callback):
            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
                step = pl_module.iteration
                over = (clock.budget_s is not None and clock.first in clock.edges and step > clock.first
                        and time.perf_counter() - clock.edges[clock.first][0] >= clock.budget_s)
                if over:
                    clock.last = step
                    trainer.should_stop = True
                if step in (clock.first, clock.last):
                    _sync(pl_module.device)
                    clock.edges[step] = (time.perf_counter(), time.process_time())

        return Clock()

    @property
    def seconds(self) -> tuple[float, float]:
        (wall0, cpu0), (wall1, cpu1) = self.edges[self.first], self.edges[self.last]
        return wall1 - wall0, cpu1 - cpu0


def _autocast(device: torch.device, precision: str):
    dtype = autocast_dtype(precision)
    return contextlib.nullcontext() if dtype is None else torch.autocast(device_type=device.type, dtype=dtype)


def bare_loop_seconds(model, batches, sched, iters: int, precision: str, compile_model: bool) -> tuple[float, float]:
    """(wall, process CPU) seconds for `iters` plain SGD steps over in-memory batches, after untimed warm-up.

    The batches are cycled rather than one batch repeated: a net fitted to a single batch drives its gradients
    towards zero, and denormal floats would then slow the CPU loop for a reason real training does not have.
    """
    forward = torch.compile(model) if compile_model else model
    opt = torch.optim.SGD(
        model.parameters(),
        lr=float(sched.lr),
        momentum=float(sched.momentum),
        weight_decay=float(sched.weight_decay),
        nesterov=bool(sched.nesterov),
    )
    model.train()

    device = batches[0][0].device
    turn = iter(range(1 << 62))

    def step() -> None:
        x, y = batches[next(turn) % len(batches)]
        with _autocast(device, precision):
            loss = F.cross_entropy(forward(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(WARMUP_STEPS):
        step()
    _sync(device)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(iters):
        step()
    _sync(device)
    return time.perf_counter() - start, time.process_time() - cpu


def tool_seconds(cfg, model, data, iters: int, record_layers: bool | None = None) -> tuple[float, float]:
    """(wall, process CPU) seconds for `iters` steps of the real training path (Trainer.fit, TrainModule, stream).

    record_layers None: as the config says (trainer.record_layers, on by default), like a run."""
    clock = _StepClock(WARMUP_STEPS, WARMUP_STEPS + iters)
    _fit_timed(cfg, model, data, clock, record_layers)
    return clock.seconds


def tool_window(cfg, model, data, seconds: float, max_iters: int) -> tuple[float, int]:
    """(wall seconds, steps) of the real training path run for about `seconds` (at most `max_iters` steps)."""
    clock = _StepClock(WARMUP_STEPS, WARMUP_STEPS + max_iters, budget_s=seconds)
    _fit_timed(cfg, model, data, clock)
    return clock.seconds[0], clock.last - clock.first


def _fit_timed(cfg, model, data, clock: _StepClock, record_layers: bool | None = None) -> None:
    if record_layers is None:
        record_layers = bool(cfg.trainer.get("record_layers", True))
    with tempfile.TemporaryDirectory() as root:
        trainer = build_trainer(cfg.trainer, clock.last, root, callbacks=[clock.as_callback()])
        module = TrainModule(
            model, data.train, {}, cfg.schedule, int(cfg.model.depth), compile_model=bool(cfg.trainer.compile),
            step_mode=step_mode(cfg.trainer, trainer), precision=str(cfg.trainer.precision),
            stop_at=clock.last, arch=str(cfg.model.arch), record_layers=record_layers,
        )
        trainer.fit(module, train_dataloaders=Ticks())


def layer_flow_seconds(model, batch: tuple[torch.Tensor, torch.Tensor], calls: int = 50) -> float:
    """Seconds of one LayerFlow.accumulate on real gradients: the work trainer.record_layers adds to each step.

    Timed on its own because the A/B difference of two whole-step timings (layers_cost) is smaller than their
    noise on a shared machine; this is the number the 2%-of-a-step budget is held to (issue 20)."""
    x, y = batch
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    flow = LayerFlow(model)
    flow.accumulate(0.1)  # allocates the accumulator, as the first step of a run does
    _sync(x.device)
    start = time.perf_counter()
    for _ in range(calls):
        flow.accumulate(0.1)
    _sync(x.device)
    model.zero_grad(set_to_none=True)
    return (time.perf_counter() - start) / calls


def stream_seconds(stream, device: torch.device, batches: int) -> float:
    """Seconds per batch of the stream alone (gather, augmentation, normalisation)."""
    next(stream)
    _sync(device)
    start = time.perf_counter()
    for _ in range(batches):
        next(stream)
    _sync(device)
    return (time.perf_counter() - start) / batches


def _peak_memory_mb(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda peak allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"


def bench_one(
    arch: str, depth: int, accelerator: str, iters: int, results_dir: Path, overrides: Sequence[str], rounds: int
) -> dict:
    cfg = bench_cfg(arch, depth, accelerator, iters, results_dir, overrides)
    threads = configure_runtime(cfg.trainer)
    probe = build_trainer(cfg.trainer, 1, tempfile.gettempdir())
    device, mode = probe.strategy.root_device, step_mode(cfg.trainer, probe)
    model, data, counts = build_parts(cfg, probe)  # as a run builds them: seeded, checkpointed if asked, on device
    memory_format = torch.channels_last if cfg.trainer.channels_last else torch.contiguous_format
    batch, macs = int(cfg.schedule.batch_size), counts["macs"]
    precision, compiled = str(cfg.trainer.precision), bool(cfg.trainer.compile)
    checkpointing = bool(cfg.trainer.get("activation_checkpointing", False))
    estimate = int(training_memory(model, batch, precision, checkpointing)["total"]) / 2**20
    bare_model = build_model(cfg.model)
    if checkpointing:  # both paths: the ratio compares like with like
        enable_activation_checkpointing(bare_model)
    bare_model = bare_model.to(device=device, memory_format=memory_format)
    bare_model.load_state_dict(model.state_dict())
    position = data.train.state_dict()  # the tool's timed stretches start here: at the bare loop's batches
    batches = [tuple(t.clone() for t in next(data.train)) for _ in range(min(iters + WARMUP_STEPS, BARE_BATCHES))]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    # Every timed stretch starts from the same weights, and the tool's from the same stream position: a net's
    # speed on a CPU depends on its weights and data (denormal floats), so paths that trained on from each
    # other's end would not compare like with like, and the with/without-recording A/B would time the state.
    start = {k: v.clone() for k, v in model.state_dict().items()}

    def from_start(net: torch.nn.Module) -> torch.nn.Module:
        net.load_state_dict(start)
        if net is model:
            data.train.load_state_dict(position)
        return net

    bare_runs, tool_runs, quiet_runs = [], [], []
    for _ in range(rounds):  # alternate, keep each path's best round: other load only ever adds time
        bare_runs.append(bare_loop_seconds(from_start(bare_model), batches, cfg.schedule, iters, precision, compiled))
        tool_runs.append(tool_seconds(cfg, from_start(model), data, iters, record_layers=True))
        quiet_runs.append(tool_seconds(cfg, from_start(model), data, iters, record_layers=False))  # gradient flow
    bare, tool = min(w for w, _ in bare_runs), min(w for w, _ in tool_runs)
    bare_cpu, tool_cpu = min(c for _, c in bare_runs), min(c for _, c in tool_runs)
    quiet, quiet_cpu = min(w for w, _ in quiet_runs), min(c for _, c in quiet_runs)
    stream = min(stream_seconds(data.train, device, max(iters, 5)) for _ in range(rounds))
    flow_s = min(layer_flow_seconds(bare_model, batches[0]) for _ in range(rounds))
    peak, kind = _peak_memory_mb(device)

    tool_ips, bare_ips = iters * batch / tool, iters * batch / bare
    step_s = tool / iters
    return {
        "arch": arch,
        "depth": depth,
        "device": device_name(device),
        "threads": threads,
        "precision": precision,
        "channels_last": bool(cfg.trainer.channels_last),
        "compile": compiled,
        "step": mode,
        "activation_checkpointing": checkpointing,
        "batch_size": batch,
        "iters": iters,
        "rounds": rounds,
        "tool_images_per_s": tool_ips,
        "bare_images_per_s": bare_ips,
        "ratio": tool_ips / bare_ips,
        # CPU time is what a loaded machine cannot inflate (with one thread it is the step's own work)
        "ratio_cpu_time": bare_cpu / tool_cpu if tool_cpu > 0 else float("nan"),
        "tool_step_ms": 1000 * step_s,
        # gradient flow per layer (trainer.record_layers): its own work per step, timed alone, as a share of the
        # step; and the whole step with it against the step without it (an A/B within the timing noise)
        "layers_step_ms": 1000 * flow_s,
        "layers_share": flow_s / step_s,
        "no_layers_step_ms": 1000 * quiet / iters,
        "layers_cost": tool / quiet - 1 if quiet > 0 else float("nan"),
        "layers_cost_cpu": tool_cpu / quiet_cpu - 1 if quiet_cpu > 0 else float("nan"),
        "bare_step_ms": 1000 * bare / iters,
        "stream_ms": 1000 * stream,
        "stream_share": stream / step_s,
        "macs_per_image": macs,
        "train_gmacs_per_s": 3 * macs * tool_ips / 1e9,  # forward + backward ~ 3x the forward's multiply-adds
        "peak_memory_mb": peak,
        "memory_kind": kind,
        # weights, gradients, momentum and saved activations of a step, counted by autograd on the CPU: what a
        # GPU needs at least (plus cuDNN workspace and the CUDA context), measurable on any machine
        "counted_memory_mb": estimate,
        "projected_64k_s": PROJECTED_ITERS * step_s,
    }


def bench_precisions(asked: Sequence[str] | None, accelerator: str, overrides: Sequence[str]) -> list[str | None]:
    """The precisions to time, canonical names; [None] when a trainer.precision override alone says (as before
    --precision existed). One line for an unknown or refused name, or for the precision given twice."""
    given = [o for o in overrides if str(o).lstrip("+").startswith("trainer.precision=")]
    if asked is None:
        return [None] if given else list(CPU_PRECISIONS if accelerator == "cpu" else OTHER_PRECISIONS)
    if given:
        raise UsageError(f"--precision and {given[0]} both set the precision; give it once (--precision takes a "
                         "comma list)")
    out = []
    for value in asked:
        name = precision_name(value)
        if name in REFUSED:
            raise UsageError(f"--precision {value}: {REFUSED[name]}")
        if name not in RUN_PRECISIONS:
            raise UsageError(f"--precision {value}: choose from {', '.join(RUN_PRECISIONS)} (a comma list)")
        out.append(name)
    return list(dict.fromkeys(out))


def precision_gains(frame) -> list[str]:
    """Per network timed in several precisions, each one's images/s against fp32's (tool and bare loop)."""
    lines = []
    for (arch, depth), rows in frame.groupby(["arch", "depth"], sort=False):
        base = rows[rows["precision"] == "32-true"]
        if base.empty:
            continue
        for _, row in rows[rows["precision"] != "32-true"].iterrows():
            lines.append(f"{arch}-{depth} {row['precision']} vs 32-true: tool "
                         f"{row['tool_images_per_s'] / base['tool_images_per_s'].iloc[0]:.2f}x, bare loop "
                         f"{row['bare_images_per_s'] / base['bare_images_per_s'].iloc[0]:.2f}x")
    return lines


def print_bench(frame) -> None:
    shown = frame.assign(
        net=frame.arch + "-" + frame.depth.astype(str),
        tool_img_s=frame.tool_images_per_s.round(1),
        bare_img_s=frame.bare_images_per_s.round(1),
        ratio=frame.ratio.round(3),
        ratio_cpu=frame.ratio_cpu_time.round(3),
        stream=(100 * frame.stream_share).round(1).astype(str) + "%",
        gmac_s=frame.train_gmacs_per_s.round(1),
        mem_mb=frame.peak_memory_mb.round(0).astype(int),
        need_mb=frame.counted_memory_mb.round(0).astype(int),
        run_64k=frame.projected_64k_s.map(duration),
        layers=(100 * frame.layers_share).round(2).astype(str) + "%",
        layers_ab=(100 * frame.layers_cost).round(1).astype(str) + "%",
    )
    columns = ["net", "device", "threads", "precision", "step", "tool_img_s", "bare_img_s", "ratio", "ratio_cpu",
               "stream", "gmac_s", "mem_mb", "need_mb", "run_64k", "layers", "layers_ab"]  # fmt: skip
    shown = shown[columns]
    print(shown.to_string(index=False))
    print(f"mem_mb: {frame.memory_kind.iloc[0]}; need_mb: weights, gradients, momentum and saved activations of a "
          "step, counted by autograd; gmac_s counts forward + backward as 3x the forward's multiply-adds; layers: "
          "the per-step work of recording gradient flow (trainer.record_layers), timed alone, as a share of the "
          "step; layers_ab: the whole step with it against without it (within the timing noise)")
    for line in precision_gains(frame):
        print(line)


def run_bench(
    depths: Sequence[int],
    archs: Sequence[str],
    device: str,
    iters: int,
    results_dir: str | Path,
    overrides: Sequence[str] = (),
    rounds: int = 3,
    precisions: Sequence[str] | None = None,
) -> Any:
    """Time each (arch, depth) at batch 128 in each precision (None: fp32 and bf16-mixed on a CPU, fp32
    elsewhere); print a table; write <results_dir>/bench.parquet atomically."""
    import pandas as pd  # deferred: the bench's rows only become a table at the end

    if iters < 1:
        raise UsageError(f"--iters {iters} must be >= 1")
    for depth in depths:
        cifar_blocks_per_stage(depth)
    accelerator = device_kind("auto") if device == "auto" else device
    if accelerator not in ("cpu", "cuda", "gpu", "mps"):
        raise UsageError(f"--device {device}; choose auto, cpu, cuda or mps")
    chosen = bench_precisions(precisions, accelerator, overrides)
    results_dir = Path(results_dir)
    check_writable(results_dir)
    quiet_lightning()
    rows = [
        bench_one(arch, depth, accelerator, iters, results_dir,
                  [*([f"trainer.precision={p}"] if p else []), *overrides], rounds)
        for arch in archs for depth in depths for p in chosen
    ]
    frame = pd.DataFrame(rows)
    print_bench(frame)
    results_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(results_dir / "bench.parquet", lambda tmp: frame.to_parquet(tmp, index=False))
    return frame
