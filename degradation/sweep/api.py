"""`degradation sweep`: check the request, plan the grid, run what is missing, collect, report.

Order is the contract: every input is checked and every cell composed and validated before anything is
created, so a bad input leaves no run folder behind; `--dry-run` stops after the plan.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from degradation.cliargs import checked_list, int_list
from degradation.conf import CONF_DIR
from degradation.errors import UsageError

# Sweep axes and flags: set with the flag, not as an extra override (the grid would silently collapse).
AXIS_KEYS = {
    "model": "--archs",
    "model.arch": "--archs",
    "model.depth": "--depths",
    "model.family": "--family",
    "model.shortcut": "--shortcut",
    "seed": "--seeds",
    "data": "--data",
    "schedule": "--preset",
    "launcher": "--launcher",
    "results_dir": "--results",
}


def _choice(group: str, value: str, flag: str) -> str:
    names = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
    if value not in names:
        raise UsageError(f"{flag}: unknown {group} '{value}'; choose from {', '.join(names)}")
    return value


# What a family's sweep runs when --depths, --data or --preset is not given.
FAMILY_DEFAULTS = {
    "cifar": {"depths": "20,32,44,56,110", "data": "cifar10", "preset": "paper"},
    "imagenet": {"depths": "18,34", "data": "imagenet", "preset": "imagenet"},
}


def _depths(values: Sequence[str] | str, family: str) -> list[int]:
    from degradation.models.depth import check_imagenet_depth, cifar_blocks_per_stage

    depths = int_list(values, "--depths", minimum=-(10**9))
    imagenet = family == "imagenet"
    for depth in depths:
        try:
            check_imagenet_depth(depth) if imagenet else cifar_blocks_per_stage(depth)
        except UsageError as exc:
            raise UsageError(f"--depths: {exc}") from None
    return depths


def _overrides(values: Sequence[str]) -> list[str]:
    out = []
    for item in values:
        if item.startswith("-"):
            raise UsageError(f"unknown option {item}; extra Hydra overrides go after `--` as key=value")
        if "=" not in item:
            raise UsageError(f"extra override {item!r} is not key=value (e.g. schedule.lr=0.05)")
        key = item.split("=", 1)[0].lstrip("+~")
        if key in AXIS_KEYS:
            raise UsageError(f"set {key} with {AXIS_KEYS[key]}, not as an extra override")
        out.append(item)
    return out


def _writable_results(path: Path) -> Path:
    probe = path.expanduser().absolute()
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"--results {path}: {probe} is not a folder; pass another results folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"--results {path}: {probe} is not writable; pass another results folder")
    return path


@dataclass
class SweepRequest:
    """A checked sweep request: the grid's axes, where runs go, and how they are launched."""

    depths: list[int]
    archs: list[str]
    seeds: list[int]
    shortcuts: list[str]
    data: str = "cifar10"
    preset: str = "paper"
    family: str = "cifar"
    jobs: int | None = None  # None: launcher.jobs (auto: one run per core on a CPU, GPUs x runs_per_gpu on CUDA)
    launcher: str = "local"
    dry_run: bool = False
    results_dir: Path = Path("results")
    overrides: list[str] = field(default_factory=list)

    @classmethod
    def from_cli(
        cls,
        depths: Sequence[str] | str,
        archs: Sequence[str] | str,
        seeds: Sequence[str] | str,
        shortcuts: Sequence[str] | str,
        data: str,
        preset: str,
        jobs: int | None,
        launcher: str,
        dry_run: bool,
        results_dir: str | os.PathLike,
        overrides: Sequence[str],
        family: str = "cifar",
    ) -> SweepRequest:
        """Check every input (one-line UsageError each); creates nothing. Empty depths/data/preset: the family's."""
        from degradation.models.depth import check_arch, check_family, check_shortcut

        extra = _overrides(list(overrides))
        try:
            family = check_family(family)
        except UsageError as exc:
            raise UsageError(f"--family: {exc}") from None
        defaults = FAMILY_DEFAULTS[family]
        depths = depths or defaults["depths"]
        data, preset = data or defaults["data"], preset or defaults["preset"]
        request = cls(
            family=family,
            depths=_depths(depths, family),
            archs=checked_list(archs, "--archs", check_arch),
            seeds=int_list(seeds, "--seeds", minimum=0),
            shortcuts=checked_list(shortcuts, "--shortcut", check_shortcut),
            data=_choice("data", str(data), "--data"),
            preset=_choice("schedule", str(preset), "--preset"),
            jobs=None if jobs is None else int(jobs),
            launcher=_choice("launcher", str(launcher), "--launcher"),
            dry_run=bool(dry_run),
            results_dir=_writable_results(Path(results_dir)),
            overrides=extra,
        )
        if request.jobs is not None and request.jobs < 1:
            raise UsageError(f"--jobs {jobs} must be >= 1 (runs at a time)")
        return request


def run_sweep(request: SweepRequest) -> int:
    """Plan, run, collect and report; the exit code: 0, or 1 when a run failed."""
    from degradation.results import collect, run_folders
    from degradation.sweep.plan import build_plan
    from degradation.sweep.report import long_sweep_note, make_console, print_outcomes, print_plan

    console = make_console()
    if request.launcher == "slurm":
        _check_slurm(request)
    plan = build_plan(request)
    print_plan(plan, console)
    note = long_sweep_note(plan)
    if note:
        console.print(note, markup=False)
    if request.dry_run:
        return 0

    from degradation.lock import describe_owner
    from degradation.sweep.launch import Outcome

    held = [Outcome(c.run_id, "locked", f"being trained by {describe_owner(plan.states[c.run_id].owner or {})}")
            for c in plan.cells if plan.states[c.run_id].status == "running"]
    held += [Outcome(c.run_id, "skipped", plan.states[c.run_id].reason)
             for c in plan.cells if plan.states[c.run_id].status == "foreign"]
    todo = plan.todo()
    try:
        outcomes = _launch(plan, todo, console) if todo else []
    except KeyboardInterrupt:
        if run_folders(plan.results_dir):
            _collect_quietly(plan.results_dir, console)
        console.print("stopped; run the same command again to resume")
        raise
    if outcomes is None:  # submitted to SLURM without waiting: nothing has finished yet
        return 0
    if not todo:
        console.print("nothing to train: every run of the grid is done or being trained elsewhere")
    if run_folders(plan.results_dir):
        curves, runs = collect(plan.results_dir)
        console.print(f"collected {curves} and {runs}")
    outcomes = held + outcomes
    print_outcomes(outcomes, console)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def _check_slurm(request: SweepRequest) -> None:
    from degradation.conf import compose
    from degradation.sweep.slurm import check_launcher

    launcher_overrides = [o for o in request.overrides if o.lstrip("+~").startswith("launcher.")]
    check_launcher(compose([f"launcher={request.launcher}", *launcher_overrides]).launcher)


def _collect_quietly(results_dir: Path, console) -> None:
    from degradation.results import collect

    try:
        collect(results_dir)
    except UsageError as exc:
        console.print(f"collect: {exc}")


def _launch(plan, todo: list, console) -> list | None:
    from degradation.sweep import estimate
    from degradation.sweep.progress import RunWatch, SweepView

    watches = {
        c.run_id: RunWatch(c.run_id, c.run_dir, int(c.cfg.schedule.max_iters), int(c.cfg.schedule.batch_size),
                           plan.estimates.get(c.run_id))
        for c in todo
    }
    view = SweepView(list(watches.values()), plan.jobs, console)
    if plan.launcher.name == "slurm":
        return _launch_slurm(plan, todo, view, watches, console)

    from degradation.sweep.launch import LocalLauncher

    first = todo[0].cfg
    gpus = 0
    if estimate.device_kind(str(first.trainer.accelerator)) == "cuda" and int(first.trainer.devices) == 1:
        gpus = estimate.gpu_count(str(first.trainer.accelerator))
    if plan.jobs > 1:  # longest first: the short runs fill the gaps at the end
        todo = sorted(todo, key=lambda c: -(plan.estimates.get(c.run_id) or 0.0))
    with view:
        return LocalLauncher(plan, view, watches, gpus=gpus).run(todo)


def _launch_slurm(plan, todo: list, view, watches: dict, console) -> list | None:
    from degradation.sweep import slurm

    jobs = slurm.submit(plan, todo, plan.threads)
    ids = sorted({str(j.job_id).split("_")[0] for j in jobs})
    console.print(f"submitted {len(jobs)} run(s) as job(s) {', '.join(ids)} (logs: each run's train.log)")
    if not plan.launcher.get("wait", True):
        console.print(
            f"not waiting (launcher.wait=false): follow with `degradation status --results {plan.results_dir}`, "
            f"then `degradation collect --results {plan.results_dir}`"
        )
        return None
    try:
        with view:
            return slurm.wait(jobs, todo, view, watches)
    except KeyboardInterrupt:
        if str(plan.launcher.get("cluster", "slurm")) == "local":
            for job in jobs:
                job.cancel(check=False)
        else:
            console.print(f"stopped watching; the jobs keep running (scancel {' '.join(ids)} stops them)")
        raise
