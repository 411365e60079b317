"""A sweep's plan: what runs (the grid expanded into cells, each composed, validated and its state read) and
where (runs at once, threads per run, runs per GPU). How long it takes is degradation/sweep/estimate.py's.

Nothing here writes a file: a bad cell raises a UsageError before any run folder exists.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from degradation.compute import machine
from degradation.conf import compose, run_id, validate
from degradation.data.registry import dataset, is_file_backed, streams_files
from degradation.errors import UsageError
from degradation.store.lock import LockOwner, describe_owner, live_owner
from degradation.store.runs import (
    RESTARTS,
    CorruptFile,
    ForeignSchema,
    effective_status,
    has_checkpoint,
    read_run_json,
    runs_root,
)
from degradation.store.schema import RunStatus
from degradation.sweep import estimate
from degradation.sweep.estimate import Sharing
from degradation.sweep.request import SweepRequest

_PLAIN_VALUE = re.compile(r"^[A-Za-z0-9_./:@+-]+$")


def hydra_value(text: str) -> str:
    """A string as a Hydra override value: bare when safe, else single-quoted."""
    if _PLAIN_VALUE.match(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class Cell:
    """One run of the grid: its overrides (what `python -m degradation.train` gets) and its composed config."""

    arch: str
    depth: int
    shortcut: str  # "none" for plain nets
    seed: int
    overrides: tuple[str, ...]
    cfg: DictConfig = field(repr=False)
    run_id: str = ""
    run_dir: Path = field(default_factory=Path)

    def ids(self) -> dict:
        """The run.json fields that name the run, from its config (for a run that never wrote run.json)."""
        cfg = self.cfg
        return {
            "run_id": self.run_id, "arch": self.arch, "depth": self.depth, "shortcut": self.shortcut,
            "dataset": str(cfg.data.name), "preset": str(cfg.schedule.name), "seed": self.seed,
            "iteration": 0, "total_iters": int(cfg.schedule.max_iters), "subset": cfg.data.get("train_subset"),
        }


@dataclass
class RunState:
    """Where a run stands before the sweep touches it."""

    status: str  # new | done | partial | failed | running (held by a live process elsewhere) | foreign (schema)
    iteration: int = 0
    reason: str | None = None
    owner: LockOwner | None = None
    checkpoint: bool = True  # False: a partial run stopped before its first checkpoint, so it starts over

    @property
    def restarts(self) -> bool:
        return self.status == RunStatus.PARTIAL and not self.checkpoint

    @property
    def trains(self) -> bool:
        return self.status in (RunStatus.NEW, RunStatus.PARTIAL, RunStatus.FAILED)

    @property
    def label(self) -> str:
        if self.restarts:
            return RESTARTS
        if self.status == RunStatus.PARTIAL:
            return f"partial at iteration {self.iteration}" if self.iteration else f"partial ({self.reason})"
        if self.status == RunStatus.FAILED:
            reason = (self.reason or "")[:60]
            return f"failed at iteration {self.iteration}: {reason} (retry)"
        if self.status == "foreign":
            return f"skipped: {self.reason}"
        if self.status == RunStatus.RUNNING:
            return f"running elsewhere ({describe_owner(self.owner or LockOwner())}), skipped"
        return self.status


def read_state(run_dir: Path) -> RunState:
    """A run's state from its run.json and its lock; no folder means new."""
    owner = live_owner(run_dir)
    try:
        info = read_run_json(run_dir)
    except ForeignSchema as exc:
        return RunState("foreign", reason=f"written under schema_version {exc.version}, left as it is")
    except CorruptFile as exc:
        if owner:
            return RunState(RunStatus.RUNNING, owner=owner)
        return RunState(RunStatus.PARTIAL, reason=f"unreadable run.json: {exc}")
    if info is None:
        return RunState(RunStatus.RUNNING, owner=owner) if owner else RunState(RunStatus.NEW)
    status, reason = effective_status(info, run_dir)
    iteration = int(info.get("iteration") or 0)
    if status == RunStatus.DONE:
        return RunState(RunStatus.DONE, iteration, reason)
    if owner or status == RunStatus.RUNNING:
        return RunState(RunStatus.RUNNING, iteration, reason, owner or LockOwner(pid=info.get("pid"), hostname=None))
    status = status if status in (RunStatus.PARTIAL, RunStatus.FAILED) else RunStatus.PARTIAL
    if status == RunStatus.PARTIAL and not has_checkpoint(run_dir):
        return RunState(RunStatus.PARTIAL, 0, reason, checkpoint=False)  # the rerun starts at 0: time it so
    return RunState(status, iteration, reason)


def cell_overrides(request: SweepRequest, arch: str, depth: int, shortcut: str, seed: int,
                   layout: tuple[str, ...] = ()) -> list[str]:
    overrides = [f"model={arch}", f"model.depth={depth}"]
    if request.family != "cifar":
        overrides.append(f"model.family={request.family}")
    if sweeps_shortcuts(arch):
        overrides.append(f"model.shortcut={shortcut}")
    overrides += [
        f"data={request.data}",
        f"schedule={request.preset}",
        f"seed={seed}",
        f"launcher={request.launcher}",
        f"results_dir={hydra_value(str(Path(request.results_dir).absolute()))}",
        *layout,
    ]
    return overrides + list(request.overrides)


def slurm_layout(request: SweepRequest, first: tuple[str, int, str, int]) -> tuple[str, ...]:
    """Under --launcher slurm, launcher.nodes and launcher.gpus_per_node make each run one multi-node job: its
    trainer.num_nodes and trainer.devices (one DDP rank per GPU; one rank when the nodes have no GPU)."""
    if request.launcher != "slurm":
        return ()
    launcher = compose(cell_overrides(request, *first)).launcher
    nodes, gpus = launcher.get("nodes", 1), launcher.get("gpus_per_node", 1)
    for key, value, least in (("nodes", nodes, 1), ("gpus_per_node", gpus, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise UsageError(f"launcher.{key}={value!r} must be a whole number >= {least}")
    return (f"trainer.devices={max(1, gpus)}", f"trainer.num_nodes={nodes}")


def _check_layout(cfg: DictConfig, layout: tuple[str, ...]) -> None:
    """An explicit trainer.devices / num_nodes that disagrees with the SLURM job's tasks would hang the ranks."""
    want = dict(item.split("=", 1) for item in layout)
    have = {"trainer.devices": str(cfg.trainer.devices), "trainer.num_nodes": str(cfg.trainer.num_nodes)}
    if layout and want != have:
        raise UsageError(
            f"with --launcher slurm, launcher.gpus_per_node and launcher.nodes set the run's layout "
            f"({' '.join(layout)}); leave trainer.devices and trainer.num_nodes out (got "
            f"{' '.join(f'{k}={v}' for k, v in have.items())})"
        )


def sweeps_shortcuts(arch: str) -> bool:
    """Whether `--shortcuts` applies to a network (ResNets); others run with their own default."""
    from degradation.models.registry import NETWORKS  # deferred: the registry loads torch

    return arch in NETWORKS and NETWORKS[arch].sweep_shortcuts


def default_shortcut(arch: str, family: str) -> str:
    """The shortcut a network runs with when the sweep does not vary it ("none": plain nets, plug-ins)."""
    from degradation.models.registry import NETWORKS  # deferred: the registry loads torch

    return NETWORKS[arch].shortcut_for(family) if arch in NETWORKS else "none"


def expand(request: SweepRequest) -> list[tuple[str, int, str, int]]:
    """(arch, depth, shortcut, seed) for every run: residual nets once per shortcut, plain nets once."""
    grid = []
    for arch in request.archs:
        shortcuts = request.shortcuts if sweeps_shortcuts(arch) else [default_shortcut(arch, request.family)]
        for depth in request.depths:
            for shortcut in shortcuts:
                for seed in request.seeds:
                    grid.append((arch, depth, shortcut, seed))
    return grid


def compose_cells(request: SweepRequest) -> tuple[list[Cell], list[Any]]:
    """Compose and validate every cell (UsageError on the first bad one, naming it); duplicates dropped. With
    them, the image folders' scans (FolderSplits; none for CIFAR or synthetic data)."""
    cells: dict[str, Cell] = {}
    grid = expand(request)
    layout = slurm_layout(request, grid[0]) if grid else ()
    for arch, depth, shortcut, seed in grid:
        overrides = cell_overrides(request, arch, depth, shortcut, seed, layout)
        cfg = compose(overrides)  # a bad override reads the same for every cell: no cell named
        _check_layout(cfg, layout)
        try:
            validate(cfg)
        except UsageError as exc:
            what = f"{arch}-{depth}" + ("" if shortcut == "none" else f"-{shortcut}") + f" seed {seed}"
            raise UsageError(f"{what}: {exc}") from None
        rid = run_id(cfg)
        run_dir = runs_root(request.results_dir) / rid
        cells.setdefault(rid, Cell(arch, depth, shortcut, seed, tuple(overrides), cfg, rid, run_dir))
    scans = _check_image_data([c.cfg for c in cells.values()])
    return list(cells.values()), scans


def _check_image_data(cfgs: list[DictConfig]) -> list[Any]:
    """Image folders are scanned (every file's header: format, size within data.max_pixels) before any run folder
    exists: one bad file is named here, not in four failed runs."""
    # deferred: the image-folder modules load torchvision; CIFAR sweeps never need them
    from degradation.data.imagedata import scan_data

    seen, scans = set(), []
    for cfg in cfgs:
        if not is_file_backed(cfg.data.name):
            continue
        key = (cfg.data.name, str(cfg.data.root), int(cfg.data.split_seed), str(cfg.data.verify),
               int(cfg.data.get("max_pixels", 0)), cfg.data.get("recipe"), cfg.data.get("resize"),
               cfg.data.get("train_subset"))
        if key not in seen:
            seen.add(key)
            scans.append(scan_data(cfg.data))
    return scans


def image_notes(cfg: DictConfig, scans: list[Any], threads: int, jobs: int) -> list[str]:
    """The plan's lines about the data beyond where they are: an image folder's recipe and what its header check
    saw; for a file stream, the decoding-memory bound and the policy for files that fail in training; a subset."""
    data = cfg.data
    lines = [subset_line(data)] if data.get("train_subset") is not None else []
    if not scans:
        return lines
    # deferred: as in _check_image_data
    from degradation.data.filestream import auto_workers
    from degradation.data.imagedata import memory_line, recipe_line

    lines.insert(0, recipe_line(data))
    lines += [f"images: {s.checked.line()}" if s.checked else "images: not checked (data.verify=none)"
              for s in scans]
    if not streams_files(data):
        return lines + ["a file that fails to decode stops the run as it starts (the images are decoded once)"]
    ranks = int(cfg.trainer.devices) * int(cfg.trainer.num_nodes)
    memory = memory_line(data, auto_workers(data.workers, threads), int(cfg.schedule.batch_size) // max(1, ranks))
    lines.append(memory + (f" ({jobs} runs at once)" if jobs > 1 else ""))
    bad = str(data.get("bad_images", "skip"))
    lines.append("a file that fails to decode in training: " + (
        f"skipped and counted in run.json, up to data.max_bad_images={data.get('max_bad_images', 10)} files; then "
        "the run stops" if bad == "skip" else "the run stops, naming it (data.bad_images=stop)"))
    return lines


def subset_line(data: DictConfig) -> str:
    """What data.train_subset trains on: how many of how many, chosen how."""
    entry = dataset(data.name)
    of = (f"of {entry.display}'s {entry.train_size:,} training images" if entry.train_size
          else "of the folder's training images")
    if data.get("split") == "holdout":
        of += f" less the {int(data.val_size):,} held out"
    return (f"training subset: {int(data.train_subset):,} images {of}, class-balanced, chosen by data.split_seed="
            f"{data.split_seed} (the same for every seed)")


@dataclass
class Plan:
    """The grid with each run's state, size and time; what `--dry-run` shows and what the launchers run."""

    results_dir: Path
    cells: list[Cell]
    states: dict[str, RunState]
    params: dict[str, int | None]
    estimates: dict[str, float | None]
    total_s: float | None
    device: str
    jobs: int
    threads: int
    estimate_source: str
    preset: str
    launcher: Any  # the composed launcher config (same for every cell)
    runs_per_gpu: int = 1  # runs sharing one GPU at once in a local CUDA sweep (1 elsewhere)
    wide: bool = False  # tables show full run ids (--wide)
    gpus_per_run: int = 1  # DDP ranks of one run on GPUs (trainer.devices x trainer.num_nodes); 0 on a CPU
    data_notes: list[str] = field(default_factory=list)  # image folders: header check, memory bound, policy

    def todo(self) -> list[Cell]:
        return [c for c in self.cells if self.states[c.run_id].trains]

    def counts(self) -> dict[str, int]:
        names = {"done": "done", "partial": "to resume", "restart": "to restart (no checkpoint yet)",
                 "failed": "to retry", "new": "new", "running": "running elsewhere",
                 "foreign": "of another schema (skipped)"}
        out = dict.fromkeys(list(names.values())[:-1], 0)  # "of another schema" only when there is one
        for cell in self.cells:
            state = self.states[cell.run_id]
            name = names["restart" if state.restarts else state.status]
            out[name] = out.get(name, 0) + 1
        return out


def _launcher_count(launcher_cfg: Any, key: str) -> int | None:
    """launcher.<key> as a whole number >= 1, or None for auto (or absent)."""
    value = launcher_cfg.get(key, "auto")
    if value is None or value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"launcher.{key}={value!r}; use auto or a whole number >= 1")
    return value


def _runs(n: int) -> str:
    return f"{n} run{'s' * (n != 1)} per GPU"


def gpu_sharing(request: SweepRequest, cfg: DictConfig, cells: list[Cell]) -> Sharing:
    """launcher.runs_per_gpu, or for auto the choice `degradation bench --share` stored for this GPU, else 1."""
    setting = _launcher_count(cfg.launcher, "runs_per_gpu")
    measured, reason = None, "not measured; `degradation bench --share 1,2,4` measures it"
    if (Path(request.results_dir) / estimate.SHARE_FILE).is_file():
        name = machine.cuda_device_name()
        precision = str(cfg.trainer.precision)
        networks = sorted({(c.arch, c.depth) for c in cells})
        measured = estimate.measured_sharing(request.results_dir, name, precision, networks) if name else None
        reason = f"{estimate.SHARE_FILE} has no {precision} figure for {name or 'this GPU'} covering this sweep's nets"
    speedup = measured.speedup if measured else {}
    if setting is not None:
        return Sharing(setting, speedup, f"{_runs(setting)} (launcher.runs_per_gpu)")
    if measured is None:
        return Sharing(1, {}, f"{_runs(1)} (runs_per_gpu=auto, {reason})")
    return Sharing(measured.runs, speedup, f"{_runs(measured.runs)} (measured by `degradation bench --share`)")


def effective_jobs(
    request: SweepRequest, launcher_cfg: Any, gpus: int = 0, runs_per_gpu: int = 1, cpu_jobs: int = 1
) -> int:
    """--jobs when given, else launcher.jobs; auto: GPUs x runs per GPU on a local CUDA sweep, else `cpu_jobs`."""
    if request.jobs is not None:
        return request.jobs
    setting = _launcher_count(launcher_cfg, "jobs")
    if setting is not None:
        return setting
    return gpus * runs_per_gpu if gpus > 0 else cpu_jobs


CPU_RUN_MEMORY = 2 * 2**30  # what one CPU run may hold (data set, ResNet-110's step at batch 128, Python)


def cpu_jobs(cfg: DictConfig, kind: str, runs: int, cores: int) -> int:
    """Runs at once on a CPU: one per core (as many as there are runs), within memory.

    Measured (`degradation bench --share 1,2`, ResNet-20, 2 cores): two 1-thread runs train 1.23-1.39x the
    images of one 2-thread run, since these small convolutions scale poorly across threads. Elsewhere 1.
    """
    if kind != "cpu" or cfg.launcher.name != "local" or cfg.trainer.threads != "auto":
        return 1
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = CPU_RUN_MEMORY
    return max(1, min(cores, runs, memory // CPU_RUN_MEMORY))


def _shared_gpus(cfg: DictConfig, kind: str, gpus: int) -> int:
    """The GPUs the local launcher hands runs to (one GPU per run); 0 when it does not (SLURM, DDP, CPU)."""
    if kind != "cuda" or cfg.launcher.name != "local" or int(cfg.trainer.devices) != 1:
        return 0
    return gpus


def build_plan(request: SweepRequest, *, probe: bool = True) -> Plan:
    """Compose every cell, read each run's state, decide where runs go, and ask for the time estimate."""
    cells, scans = compose_cells(request)
    first = cells[0].cfg
    states = {c.run_id: read_state(c.run_dir) for c in cells}

    accelerator = str(first.trainer.accelerator)
    kind = machine.device_kind(accelerator)
    gpus = machine.gpu_count(accelerator) if kind == "cuda" else 0
    _launcher_count(first.launcher, "runs_per_gpu")  # a bad value is refused on every machine, not only on CUDA
    shared = _shared_gpus(first, kind, gpus)
    sharing = gpu_sharing(request, first, cells) if shared else Sharing()
    cores = machine.cpu_cores()
    trains = [c for c in cells if states[c.run_id].trains]
    jobs = effective_jobs(request, first.launcher, shared, sharing.runs, cpu_jobs(first, kind, len(trains), cores))
    threads = threads_per_run(first, jobs, cores)
    device = {"cuda": f"cuda x{gpus}", "mps": "mps"}.get(kind, f"cpu, {threads} thread{'s' * (threads > 1)} per run")
    per_gpu = math.ceil(min(jobs, max(1, len(trains))) / shared) if shared else 1
    if shared:
        device += f", {_sharing_text(request, first.launcher, sharing, jobs, shared)}"

    todo = [estimate.Todo(c.run_id, c.cfg, states[c.run_id].iteration) for c in trains]
    ranks = int(first.trainer.devices) * int(first.trainer.num_nodes)
    gpus_per_run = ranks if kind == "cuda" or first.launcher.name == "slurm" and first.launcher.gpus_per_node else 0
    if first.launcher.name == "slurm":  # the cluster's GPUs, not this machine's: the array's parallelism
        lanes = max(1, min(jobs, len(todo)))
    else:
        lanes = _lanes(jobs, len(todo), kind, max(1, gpus // ranks) if gpus else 0, shared, cores)
    timing = estimate.estimate_sweep(todo, Path(request.results_dir), kind=kind, threads=threads, lanes=lanes,
                                     per_gpu=per_gpu, sharing=sharing, probe=probe, gpus_per_run=gpus_per_run,
                                     nodes_per_run=int(first.trainer.num_nodes))
    return Plan(
        results_dir=Path(request.results_dir),
        cells=cells,
        states=states,
        params=estimate.param_counts({c.run_id: c.cfg for c in cells}),
        estimates={c.run_id: timing.seconds.get(c.run_id, 0.0) for c in cells},
        total_s=timing.total_s,
        device=device,
        jobs=jobs,
        threads=threads,
        estimate_source=timing.source,
        preset=request.preset,
        launcher=first.launcher,
        runs_per_gpu=per_gpu,
        wide=request.wide,
        gpus_per_run=gpus_per_run,
        data_notes=image_notes(first, scans, threads, jobs),
    )


def _sharing_text(request: SweepRequest, launcher_cfg: Any, sharing: Sharing, jobs: int, gpus: int) -> str:
    """What the header says about runs per GPU: from --jobs / launcher.jobs, or the sharing's own reason."""
    per_gpu = math.ceil(jobs / gpus)
    if request.jobs is not None:
        return f"{_runs(per_gpu)} (--jobs {jobs})"
    if _launcher_count(launcher_cfg, "jobs") is not None:
        return f"{_runs(per_gpu)} (launcher.jobs={jobs})"
    return sharing.why


def _lanes(jobs: int, todo: int, kind: str, gpus: int, shared: int, cores: int) -> int:
    """Runs that train at once; runs sharing a GPU are already slowed in their own estimates."""
    lanes = min(jobs, todo) if todo else 1
    if kind == "cuda":
        return lanes if shared else min(lanes, max(1, gpus))
    return max(1, min(lanes, cores))


def threads_per_run(cfg: DictConfig, jobs: int, cores: int) -> int:
    """trainer.threads when set, else the cores shared among the runs that train at once."""
    if cfg.trainer.threads != "auto":
        return int(cfg.trainer.threads)
    if cfg.launcher.name == "slurm":
        return max(1, int(cfg.launcher.cpus_per_task))
    return max(1, cores // max(1, jobs))
