"""How big each run's network is and how long each run, and the sweep, take on this machine.

The plan decides what runs and where (jobs, threads, runs per GPU); this module owns every number of time.
Time comes from stored figures (<results>/bench.parquet from `degradation bench`, when it has the network and
device) or else from a short probe: a few real training steps of the network at the run's thread count.
Both give seconds per training image of one network, scaled to the others by multiply-adds; a run's time is
its remaining images plus its evaluations, slowed by the measured cost of sharing a GPU
(<results>/bench_share.parquet from `degradation bench --share`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from omegaconf import OmegaConf

from degradation.compute.precision import precision_name
from degradation.conf import CONF_DIR
from degradation.data.registry import dataset, is_file_backed, streams_files

SHARE_FILE = "bench_share.parquet"  # written by `degradation bench --share`, read back here
LONG_S = 12 * 3600       # beyond this, the plan says plainly how long it takes and names a quicker preset

PROBE_BUDGET_S = 0.5     # timed steps stop after this much time (at least one step)
PROBE_MAX_STEPS = 3
CPU_PROBE_BATCH = 32     # per-image cost hardly changes above this on a CPU; keeps deep nets' probes short
EVAL_COST = 1 / 3        # a forward pass costs about a third of a training step
PROBE_TIMEOUT_S = 300    # a GPU probe's process: start, CUDA context, cuDNN autotuning, a few steps
STARTUP_S = 10.0         # process start, imports, data set loading: paid once per run


StoredKey = tuple[str, int, str]  # (arch, depth, shortcut): how bench.parquet names a measured network


class NetKey(NamedTuple):
    """What makes two runs' networks cost the same."""

    arch: str
    family: str
    depth: int
    shortcut: str
    width: float
    num_classes: int

    @property
    def stored(self) -> StoredKey:
        return (self.arch, self.depth, self.shortcut)


def network_key(model_cfg: Any) -> NetKey:
    """What makes two runs' networks cost the same."""
    from degradation.models.registry import shortcut_of  # deferred: the registry loads torch

    return NetKey(str(model_cfg.arch), str(model_cfg.family), int(model_cfg.depth), shortcut_of(model_cfg),
                  float(model_cfg.get("width", 1.0)), int(model_cfg.num_classes))


def params_on_meta(model_cfg: Any) -> int | None:
    """Parameter count of a network built on the meta device: no memory, no initialisation cost."""
    try:
        import torch

        # deferred: torch loads only when a network is sized or probed
        from degradation.models import build_model, count_params

        with torch.device("meta"):
            return int(count_params(build_model(model_cfg)))
    except Exception:
        return None


def probe_seconds_per_image(model_cfg: Any, *, batch: int, device: str, threads: int, channels_last: bool,
                            size: int | None = None, precision: str = "32-true",
                            cudnn_benchmark: bool = False) -> float:
    """Seconds per training image: one warm-up step, then up to PROBE_MAX_STEPS timed ones (SGD, random data).

    size: the input's side (image folders: data.crop); default the family's (32 or 224). The step runs in the
    run's precision (its autocast and TF32 switches, put back after) and cuDNN autotuning setting; it is the
    eager step, so a run that replays a CUDA graph goes somewhat faster than estimated."""
    # deferred: torch loads only when a network is sized or probed
    import torch
    import torch.nn.functional as F

    # deferred: as torch (the models and the precision table's switches load it)
    from degradation.compute.precision import apply_precision, autocast_dtype
    from degradation.models import build_model, input_shape

    previous = torch.get_num_threads()
    switches = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
                torch.get_float32_matmul_precision(), torch.backends.cudnn.benchmark)
    torch.set_num_threads(max(1, threads))
    apply_precision(precision)
    torch.backends.cudnn.benchmark = bool(cudnn_benchmark)
    dtype = autocast_dtype(precision)
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
            with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
                loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            if device == "cuda":
                torch.cuda.synchronize()

        step()
        start, times = time.perf_counter(), list[float]()
        while len(times) < PROBE_MAX_STEPS and time.perf_counter() - start < PROBE_BUDGET_S:
            began = time.perf_counter()
            step()
            times.append(time.perf_counter() - began)
        return min(times) / batch  # the fastest step: other processes' load only ever slows a step down
    finally:
        torch.set_num_threads(previous)
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = switches[:2]
        torch.set_float32_matmul_precision(switches[2])
        torch.backends.cudnn.benchmark = switches[3]


def stored_seconds_per_image(results_dir: Path, device: str, threads: int | None = None,
                             precision: str = "32-true") -> dict[StoredKey, float]:
    """Per-network figures from <results>/bench.parquet, keyed (arch, depth, shortcut); {} when unusable.

    Only rows measured on this kind of device and in the runs' precision count (the bench names a GPU by its
    model; a file without a precision column was fp32); on a CPU, rows at this run's thread count are preferred.
    Reads whatever throughput column the bench wrote.
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
    measured_in = frame["precision"].map(precision_name) if "precision" in frame.columns else pd.Series(
        "32-true", index=frame.index)
    frame = frame[measured_in == precision_name(precision)]
    if device == "cpu" and threads and "threads" in frame.columns:
        frame = frame.assign(_match=frame["threads"] == threads).sort_values("_match", kind="stable")
    out: dict[StoredKey, float] = {}
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
    return dataset(data_cfg.name).eval_images(data_cfg)


def run_seconds(cfg: Any, done_iters: int, seconds_per_image: float) -> float:
    """Time left for a run that has done `done_iters` iterations: training, evaluations and start-up."""
    sched = cfg.schedule
    left = max(0, int(sched.max_iters) - int(done_iters))
    if left == 0:
        return 0.0
    train = left * int(sched.batch_size) * seconds_per_image
    evals = (left // int(sched.eval_every) + 1) * eval_images(cfg.data) * seconds_per_image * EVAL_COST
    if streams_files(cfg.data):  # the final 10-crop test: ten views of each val image
        evals += 10 * eval_images(cfg.data) * seconds_per_image * EVAL_COST
    return train + evals + STARTUP_S


# ---- runs sharing a GPU: the measurement `degradation bench --share` stored ---------------------------------
@dataclass
class Measured:
    """What bench_share.parquet says about one device: the runs to share it and the speed-up at each K."""

    runs: int
    speedup: dict[int, float]
    networks: list[str]


def measured_sharing(results_dir: str | Path, device: str, precision: str,
                     networks: Sequence[tuple[str, int]] = ()) -> Measured | None:
    """The stored choice for `device` (named as degradation.compute.machine names it) at `precision`, or None.

    Only the sweep's own networks count, and all of them must have been measured (another net's figure is never
    borrowed: K runs of ResNet-20 fit a GPU that one ResNet-1202 may fill); the smallest choice and, per K, the
    smallest speed-up win: one setting serves every run of a sweep, and oversharing costs more than undersharing.
    """
    import pandas as pd  # deferred: only sweeps on CUDA with a stored measurement read it

    path = Path(results_dir) / SHARE_FILE
    if not path.is_file():
        return None
    try:
        frame = pd.read_parquet(path)
    except Exception:
        return None
    needed = {"device", "arch", "depth", "precision", "runs", "speedup", "runs_per_device"}
    if not needed <= set(frame.columns):
        return None
    same = frame.precision.astype(str).map(precision_name) == precision_name(precision)
    frame = frame[(frame.device.astype(str) == device) & same]
    wanted = {(str(a), int(d)) for a, d in networks}
    if wanted:  # every net of the sweep measured, or no choice: a ResNet-20 figure says nothing of ResNet-1202's
        measured = {(str(a), int(d)) for a, d in zip(frame.arch, frame.depth, strict=True)}
        if not wanted <= measured:
            return None
        frame = frame[[(str(a), int(d)) in wanted for a, d in zip(frame.arch, frame.depth, strict=True)]]
    if frame.empty:
        return None
    speedup = {int(k): float(v) for k, v in frame.groupby("runs").speedup.min().items()}
    names = sorted({f"{a}-{d}" for a, d in zip(frame.arch, frame.depth, strict=True)})
    return Measured(int(frame.runs_per_device.min()), speedup, names)


@dataclass
class Sharing:
    """How many runs share each GPU of a local CUDA sweep, what that buys, and why (for the plan's header)."""

    runs: int = 1
    speedup: dict[int, float] = field(default_factory=dict)  # measured: K runs' images/s over one run's
    why: str = ""

    def slowdown(self, per_gpu: int) -> float:
        """How much longer each run takes with `per_gpu` runs on its GPU; unmeasured K: no gain assumed."""
        if per_gpu <= 1:
            return 1.0
        return per_gpu / max(1e-9, self.speedup.get(per_gpu, 1.0))


# ---- one run on several GPUs (DDP) ------------------------------------------------------------------------
# Assumed, not measured (no multi-GPU machine was available): the fraction of linear speed-up a DDP run keeps,
# (within one node, across nodes). CIFAR's global batch 128 split 8 ways leaves 16 small images per GPU, where
# the gradient all-reduce and the per-step launches weigh as much as the compute (and the CUDA graph is off);
# an ImageNet step (32 images of 224x224 per GPU, as in the paper) is compute-bound. Across nodes the
# all-reduce crosses the network.
DDP_EFFICIENCY = {"cifar": (0.6, 0.45), "imagenet": (0.85, 0.75)}


def ddp_speedup(gpus: int, nodes: int = 1, family: str = "cifar") -> float:
    """How much faster one run trains on `gpus` GPUs (over `nodes` machines) than on one: an assumption."""
    if gpus <= 1:
        return 1.0
    within, across = DDP_EFFICIENCY.get(family, DDP_EFFICIENCY["cifar"])
    return max(1.0, gpus * (within if nodes <= 1 else across))


# ---- the sweep's estimate ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Todo:
    """A run to time: its id, composed config and the iterations it has already done."""

    run_id: str
    cfg: Any
    done_iters: int = 0


@dataclass
class Estimate:
    """Seconds left per run (None: unknown), the sweep's wall time, and what the figures rest on."""

    seconds: dict[str, float | None]
    total_s: float | None
    source: str


def estimate_sweep(todo: Sequence[Todo], results_dir: Path, *, kind: str, threads: int, lanes: int,
                   per_gpu: int = 1, sharing: Sharing | None = None, probe: bool = True,
                   gpus_per_run: int = 1, nodes_per_run: int = 1) -> Estimate:
    """Time every run that trains and the whole sweep with `lanes` runs training at once.

    Runs sharing a GPU (`per_gpu` > 1) are each slowed by the measured sharing speed-up; the sweep's time is
    the summed run time over the lanes.
    """
    sharing = sharing or Sharing()
    precision = precision_name(todo[0].cfg.trainer.precision) if todo else "32-true"  # a sweep's runs share it
    stored = stored_seconds_per_image(Path(results_dir), kind, threads, precision)
    label = "bench.parquet"
    if stored:
        stamp = time.strftime("%Y-%m-%d", time.localtime((Path(results_dir) / "bench.parquet").stat().st_mtime))
        label = f"bench {stamp}"
    per_image, sources = seconds_per_image([t.cfg for t in todo], stored, probe=probe, kind=kind, threads=threads,
                                           stored_label=label)
    if per_gpu > 1:
        gain = sharing.speedup.get(per_gpu)
        runs = f"{per_gpu} run{'s' * (per_gpu != 1)} per GPU"
        sources.append(f"{runs} at {gain:.2f}x one run's speed" if gain else f"{runs}, no measured gain assumed")
    slowdown = sharing.slowdown(per_gpu)
    seconds: dict[str, float | None] = {}
    for item in todo:
        each = per_image.get(network_key(item.cfg.model))
        speedup = ddp_speedup(gpus_per_run, nodes_per_run, str(item.cfg.model.family))
        ddp = f"{gpus_per_run} GPUs per run at an assumed {speedup:.1f}x one GPU's speed (DDP, unmeasured)"
        if speedup > 1 and ddp not in sources:
            sources.append(ddp)
        seconds[item.run_id] = (None if each is None
                                else run_seconds(item.cfg, item.done_iters, each * slowdown / speedup))
    known = [s for s in seconds.values() if s is not None]
    total = None if len(known) < len(seconds) else sum(known) / max(1, lanes)
    return Estimate(seconds, total, "; ".join(sources) or "nothing left to train")


def quicker_preset(total_s: float | None, preset: str) -> tuple[str, float] | None:
    """The slowest preset (of fewer training images than `preset`'s) that takes under LONG_S, and its time."""
    if not total_s:
        return None
    images = {}
    for path in sorted((CONF_DIR / "schedule").glob("*.yaml")):
        if path.stem.endswith("smoke") or path.stem.startswith("imagenet") != preset.startswith("imagenet"):
            continue  # for tests only, or for the other family's data
        sched = OmegaConf.load(path)
        images[path.stem] = int(sched.max_iters) * int(sched.batch_size)
    mine = images.get(preset)
    if not mine:
        return None
    options = sorted(((n, total_s * i / mine) for n, i in images.items() if i < mine), key=lambda t: -t[1])
    for name, seconds in options:
        if seconds < LONG_S:
            return name, seconds
    return options[-1] if options else None


def param_counts(cfgs: dict[str, Any]) -> dict[str, int | None]:
    """Each run's parameter count (keyed as given), one meta-device build per kind of network."""
    by_network: dict[tuple, int | None] = {}
    out = {}
    for key, cfg in cfgs.items():
        net = network_key(cfg.model)
        if net not in by_network:
            by_network[net] = params_on_meta(cfg.model)
        out[key] = by_network[net]
    return out


def macs_on_meta(model_cfg: Any) -> int | None:
    """Multiply-adds per image of a network built on the meta device (shapes only: no memory, no compute)."""
    try:
        import torch

        # deferred: torch loads only when a network is sized or probed
        from degradation.models import build_model, count_macs, input_shape

        with torch.device("meta"):
            model = build_model(model_cfg)
        return int(count_macs(model, input_shape(str(model_cfg.family)))) or None
    except Exception:
        return None


def _net_name(key: NetKey) -> str:
    arch, depth, shortcut = key.arch, key.depth, key.shortcut
    return f"{arch}-{depth}" + (f"-{shortcut}" if arch == "resnet" and shortcut != "A" else "")


def _with_net(model_cfg: Any, stored_key: StoredKey) -> Any:
    """`model_cfg` with another (arch, depth, shortcut): the stored network a run's time is scaled from."""
    from degradation.models.registry import NETWORKS  # deferred: the registry loads torch

    arch, depth, shortcut = stored_key
    if model_cfg.get("_target_") is not None and arch in NETWORKS:  # a plug-in scaled from a built-in network
        model_cfg = OmegaConf.create({"arch": arch, "family": model_cfg.family, "num_classes": model_cfg.num_classes})
    changes = {"arch": arch, "depth": int(depth)}
    if arch in NETWORKS and NETWORKS[arch].has_shortcut:
        changes["shortcut"] = shortcut
    return OmegaConf.merge(model_cfg, changes)


def seconds_per_image(cfgs: Sequence[Any], stored: dict, *, probe: bool, kind: str, threads: int,
                      stored_label: str = "bench.parquet"):
    """Seconds per training image for each network of `cfgs`, and what they rest on (for the plan's header).

    A network measured by `degradation bench` (stored) takes its own figure. Any other is scaled by
    multiply-adds per image from one measured network of its kind: a stored one when bench.parquet has one
    (the same arch first), else a probe of the cheapest network of its kind. Multiply-adds, not depth: the
    stages of a CIFAR net cost alike per block, but a projection shortcut or an ImageNet bottleneck does not.
    """
    out: dict[NetKey, float | None] = {}
    sources: list[str] = []
    groups: dict[NetKey, dict[NetKey, Any]] = {}
    for cfg in cfgs:
        key = network_key(cfg.model)
        if key.stored in stored:
            out[key] = measured = stored[key.stored]
            sources.append(f"measured: {stored_label}, {_net_name(key)} {1 / measured:.0f} img/s")
        else:
            groups.setdefault(key._replace(depth=0), {})[key] = cfg  # everything but the depth
    macs: dict[NetKey, int | None] = {}

    def macs_of(key: NetKey, model_cfg: Any) -> int | None:
        if key not in macs:
            macs[key] = macs_on_meta(model_cfg)
        return macs[key]

    scaled = False
    for members in groups.values():
        some = next(iter(members.values()))
        basis: NetKey | None = None
        basis_s: float | None = None
        basis_macs: int | None = None
        if stored:  # a stored network of the same arch (else any): the closest in depth
            arch = some.model.arch
            candidates = sorted(stored, key=lambda k: (k[0] != arch, abs(int(k[1]) - int(some.model.depth))))
            for skey in candidates:
                model = _with_net(some.model, skey)
                basis_macs = macs_of(network_key(model), model)
                if basis_macs:
                    basis, basis_s = network_key(model), stored[skey]
                    sources.append(f"measured: {stored_label}, {_net_name(basis)} {1 / basis_s:.0f} img/s")
                    break
        if basis is None and probe:
            cheapest = min(members, key=lambda k: (macs_of(k, members[k].model) or float("inf"), k.depth))
            basis, basis_macs = cheapest, macs_of(cheapest, members[cheapest].model)
            basis_s = probe_run(members[cheapest], kind, threads)
            if basis_s is not None:
                sources.append(f"probe: {_net_name(basis)} {1 / basis_s:.0f} img/s")
        for key, cfg in members.items():
            if basis_s is None or basis is None:
                out[key] = None
            elif key == basis:
                out[key] = basis_s
            else:
                mine = macs_of(key, cfg.model)
                ratio = mine / basis_macs if mine and basis_macs else key.depth / basis.depth
                out[key] = basis_s * ratio
                scaled = True
    unique = list(dict.fromkeys(sources))
    shown = unique[:2] + ([f"{len(unique) - 2} more measured"] if len(unique) > 2 else [])
    if scaled:
        shown.append("others scaled by multiply-adds")
    return out, shown


def _input_side(data_cfg: Any) -> int | None:
    """The side a probe's images have: an image folder's (its recipe's crop, or its images' own size under the
    CIFAR recipe); None: the family's (32 or 224)."""
    if not is_file_backed(data_cfg.name):
        return None
    from degradation.data.imagedata import input_side  # deferred: the image-folder modules load torchvision

    return input_side(data_cfg)


def probe_run(cfg: Any, kind: str, threads: int) -> float | None:
    """A run's seconds per image from a few steps of its network at its batch (capped on a CPU); None on failure."""
    batch = int(cfg.schedule.batch_size)
    if kind == "cpu":
        batch = min(batch, CPU_PROBE_BATCH)
    args: dict[str, Any] = {
            "batch": batch, "device": kind, "threads": threads, "channels_last": bool(cfg.trainer.channels_last),
            "size": _input_side(cfg.data),
            "precision": precision_name(cfg.trainer.precision),
            "cudnn_benchmark": bool(cfg.trainer.get("cudnn_benchmark", False))}
    if kind == "cuda":
        return _probe_elsewhere(cfg.model, args)
    try:
        return probe_seconds_per_image(cfg.model, **args)
    except Exception:
        return None


_PROBE = ("import json, sys\n"
          "from omegaconf import OmegaConf\n"
          "from degradation.sweep.estimate import probe_seconds_per_image\n"
          "args = json.loads(sys.argv[1])\n"
          "print(probe_seconds_per_image(OmegaConf.create(args.pop('model')), **args))\n")


def _probe_elsewhere(model_cfg: Any, args: dict) -> float | None:
    """A GPU probe in a process of its own: the sweep keeps no CUDA context and no cached memory (gigabytes for an
    ImageNet net) on GPU 0 while its runs train there. None when it fails or takes over PROBE_TIMEOUT_S."""
    import json
    import subprocess

    payload = json.dumps({"model": OmegaConf.to_container(model_cfg, resolve=True), **args})
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, payload], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL)
        return float(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return None
