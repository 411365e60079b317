"""`degradation sweep`: check the request, plan the grid, run what is missing, collect, report.

Order is the contract: every input is checked and every cell composed and validated before anything is
created, so a bad input leaves no run folder behind; `--dry-run` stops after the plan.
"""

from __future__ import annotations

from pathlib import Path

from degradation.compute import machine
from degradation.conf import compose
from degradation.data.fetch import describe, prepare_config
from degradation.errors import UsageError
from degradation.store.lock import LockOwner, describe_owner
from degradation.store.results import collect
from degradation.store.runs import run_folders
from degradation.store.schema import RunStatus
from degradation.sweep import slurm
from degradation.sweep.launch import LocalLauncher, Outcome
from degradation.sweep.plan import build_plan, cell_overrides, expand
from degradation.sweep.progress import RunWatch, SweepView
from degradation.sweep.report import long_sweep_note, make_console, print_outcomes, print_plan
from degradation.sweep.request import SweepRequest

__all__ = ["SweepRequest", "run_sweep"]


def run_sweep(request: SweepRequest) -> int:
    """Plan, run, collect and report; the exit code: 0, or 1 when a run failed."""
    console = make_console(wide=request.wide)
    if request.launcher == "slurm":
        _check_slurm(request)
    data_cfg = compose(cell_overrides(request, *expand(request)[0])).data  # one data set per sweep: --data
    if not request.dry_run:  # here, in the parent, before anything is created or launched (one line on failure)
        prepare_config(data_cfg, say=lambda line: console.print(line, markup=False))
    plan = build_plan(request)
    print_plan(plan, console, wide=request.wide)
    console.print(describe(str(data_cfg.name), str(data_cfg.get("root", "data")), bool(data_cfg.get("download", True))),
                  markup=False)
    for line in plan.data_notes:
        console.print(line, markup=False)
    note = long_sweep_note(plan)
    if note:
        console.print(note, markup=False)
    if request.dry_run:
        if request.launcher == "slurm" and slurm.sbatch_missing(plan.launcher):
            console.print("note: sbatch is not on this machine; run the same command without --dry-run on a SLURM "
                          "login node to submit", markup=False)
        return 0

    held = [Outcome(c.run_id, "locked",
                    f"being trained by {describe_owner(plan.states[c.run_id].owner or LockOwner())}")
            for c in plan.cells if plan.states[c.run_id].status == RunStatus.RUNNING]
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
    return 1 if any(o.status == RunStatus.FAILED for o in outcomes) else 0


def _check_slurm(request: SweepRequest) -> None:
    launcher_overrides = [o for o in request.overrides if o.lstrip("+~").startswith("launcher.")]
    slurm.check_launcher(compose([f"launcher={request.launcher}", *launcher_overrides]).launcher,
                         submitting=not request.dry_run)


def _collect_quietly(results_dir: Path, console) -> None:
    try:
        collect(results_dir)
    except UsageError as exc:
        console.print(f"collect: {exc}")


def _launch(plan, todo: list, console) -> list | None:
    watches = {
        c.run_id: RunWatch(c.run_id, c.run_dir, int(c.cfg.schedule.max_iters), int(c.cfg.schedule.batch_size),
                           plan.estimates.get(c.run_id), ids={**c.ids(), "shortcut": c.shortcut})
        for c in todo
    }
    view = SweepView(list(watches.values()), plan.jobs, console, wide=plan.wide)
    if plan.launcher.name == "slurm":
        return _launch_slurm(plan, todo, view, watches, console)

    first = todo[0].cfg
    gpus = 0
    if machine.device_kind(str(first.trainer.accelerator)) == "cuda" and int(first.trainer.num_nodes) == 1:
        gpus = machine.gpu_count(str(first.trainer.accelerator))  # one per run, or trainer.devices per DDP run
    if plan.jobs > 1:  # longest first: the short runs fill the gaps at the end
        todo = sorted(todo, key=lambda c: -(plan.estimates.get(c.run_id) or 0.0))
    with view:
        return LocalLauncher(plan, view, watches, gpus=gpus, gpus_per_run=int(first.trainer.devices)).run(todo)


def _launch_slurm(plan, todo: list, view, watches: dict, console) -> list | None:
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
