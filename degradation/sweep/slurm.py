"""The SLURM launcher: the runs as one submitit job array; each job runs the same training entry as
`python -m degradation.train` and is checkpointable (a preempted or timed-out job is requeued and resumes from
its run's last checkpoint, because the training entry resumes any run folder that has one).

conf/launcher/slurm.yaml holds the resources (partition, timeout_min, nodes, gpus_per_node, cpus_per_task, mem_gb,
additional sbatch options); every key can be overridden after `--` as launcher.<key>=<value>.

One run = one job of `nodes` machines with one task per GPU (tasks per node = gpus_per_node): every task runs the
training entry as one DDP rank, and Lightning reads its rank from SLURM's variables (SLURMEnvironment). Rank zero
holds the run's lock and writes to its train.log; the other ranks write only to submitit's own log files.
`launcher.cluster=local` runs the same job array through submitit's local executor (real processes, no
sbatch): how the tests exercise this path.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from submitit.helpers import Checkpointable

from degradation.errors import UsageError
from degradation.store.lock import TOKEN_ENV, RunLocked, run_lock
from degradation.store.runs import LOG_FILE, CorruptFile, read_run_json, record_failure
from degradation.store.schema import RunStatus
from degradation.sweep.launch import Outcome, child_command, last_log_line

CLUSTERS = ("slurm", "local")


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's output to `path` (appending) and restore it after: file descriptors 1 and 2 (for
    C code and child processes) and sys.stdout / sys.stderr (in case something replaced them)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a", buffering=1) as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        try:
            with contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


_PREEMPTED = {"flag": False}  # set in this process by `checkpoint` (never pickled into the requeued copy)


def _requeue_exit_code() -> int:
    """The exit code that makes submitit requeue: the local executor looks for 144; SLURM requeued already."""
    import submitit
    from submitit.local.local import LOCAL_REQUEUE_RETURN_CODE

    try:
        return LOCAL_REQUEUE_RETURN_CODE if submitit.JobEnvironment().cluster == "local" else -1
    except Exception:
        return -1


def task_rank() -> tuple[int, int]:
    """(global rank, tasks) of this task of the job; (0, 1) outside a submitit job."""
    import submitit

    try:
        env = submitit.JobEnvironment()
        return int(env.global_rank), int(env.num_tasks)
    except Exception:  # not inside a submitit job (a test calling the job directly)
        return 0, 1


def lightning_variables(job_id: str, rank: int, local_rank: int, node: int, tasks: int) -> dict[str, str]:
    """What Lightning's LightningEnvironment reads, for a multi-task job of submitit's local executor (SLURM's own
    variables serve a real SLURM job): one machine, so the address is this host and the port follows the job."""
    port = 20000 + int(hashlib.blake2b(job_id.encode(), digest_size=4).hexdigest(), 16) % 20000
    return {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(tasks), "NODE_RANK": str(node),
            "LOCAL_RANK": str(local_rank), "GLOBAL_RANK": str(rank)}


def _local_cluster_ranks() -> None:
    import submitit

    try:
        env = submitit.JobEnvironment()
    except Exception:
        return
    if env.cluster == "local" and env.num_tasks > 1:
        os.environ.update(lightning_variables(str(env.job_id), env.global_rank, env.local_rank, env.node,
                                              env.num_tasks))


class TrainJob(Checkpointable):
    """One run inside a cluster job. On preemption or timeout submitit calls `checkpoint` and requeues a copy of
    this object (Checkpointable's default); the copy re-enters the training entry, which resumes the run from
    its last checkpoint. The training entry turns the signal's SystemExit into status partial and exit 130;
    here that becomes the requeue exit again."""

    def __init__(self, run_id: str, run_dir: str, args: list[str]) -> None:
        self.run_id = run_id
        self.run_dir = run_dir
        self.args = list(args)

    def checkpoint(self, *args: Any, **kwargs: Any):
        _PREEMPTED["flag"] = True
        return super().checkpoint(*args, **kwargs)

    def __call__(self) -> dict:
        from degradation.train.app import run_from_args  # deferred: torch and Lightning load in the job only

        run_dir = Path(self.run_dir)
        rank, _ = task_rank()
        if rank != 0:  # another DDP rank of a multi-task job: no lock, no train.log (rank zero holds both)
            _local_cluster_ranks()
            code = run_from_args(self.args)
            if code != 0 and _PREEMPTED["flag"]:
                raise SystemExit(_requeue_exit_code())
            return {"run_id": self.run_id, "status": "done" if code == 0 else f"exit code {code}"}
        _local_cluster_ranks()
        try:
            with run_lock(run_dir) as held, output_to(run_dir / LOG_FILE), _lock_token(held.token):
                code = run_from_args(self.args)  # the trainer re-enters the lock we hold through the token
                if code != 0 and _PREEMPTED["flag"]:
                    raise SystemExit(_requeue_exit_code())
        except RunLocked as exc:
            return {"run_id": self.run_id, "status": "locked", "reason": str(exc)}
        if code != 0:
            line = last_log_line(run_dir / LOG_FILE)
            raise RuntimeError(f"{self.run_id}: exit code {code}: {line}")
        return {"run_id": self.run_id, "status": "done"}


def sbatch_missing(launcher: Any) -> bool:
    return str(launcher.get("cluster", "slurm")) == "slurm" and shutil.which("sbatch") is None


def check_launcher(launcher: Any, submitting: bool = True) -> None:
    """Check the SLURM launcher's settings before anything is submitted (one-line UsageErrors). A dry run
    (`submitting` false) submits nothing, so it needs no sbatch: a plan can be made on a laptop."""
    cluster = str(launcher.get("cluster", "slurm"))
    if cluster not in CLUSTERS:
        raise UsageError(f"launcher.cluster={cluster!r}; choose slurm or local (local: the same job array, no sbatch)")
    if submitting and sbatch_missing(launcher):
        raise UsageError(
            "sbatch not found: --launcher slurm submits from a SLURM login node "
            "(launcher.cluster=local runs the same job array as local processes)"
        )
    for key in ("timeout_min", "cpus_per_task", "mem_gb"):
        value = launcher.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise UsageError(f"launcher.{key}={value!r} must be a number > 0")
    for key, least in (("nodes", 1), ("gpus_per_node", 0)):
        value = launcher.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise UsageError(f"launcher.{key}={value!r} must be a whole number >= {least}")


def job_parameters(launcher: Any, jobs: int) -> dict[str, Any]:
    """submitit's parameters for one run's job: `nodes` machines, one task (DDP rank) per GPU on each."""
    from omegaconf import OmegaConf  # deferred: the sweep's start-up does not need it before a SLURM launch

    gpus = int(launcher.get("gpus_per_node", 1))
    params: dict[str, Any] = {
        "name": "degradation",
        "timeout_min": int(launcher.timeout_min),
        "nodes": int(launcher.get("nodes", 1)),
        "tasks_per_node": max(1, gpus),
        "gpus_per_node": gpus,
        "cpus_per_task": int(launcher.cpus_per_task),
        "mem_gb": float(launcher.mem_gb),
        "slurm_array_parallelism": int(jobs),
    }
    if gpus > 1:  # Lightning's rank k uses cuda:k: every task must see all the node's GPUs, also on clusters that
        params["slurm_srun_args"] = ["--gpu-bind=none"]  # bind one GPU per task by default
    if launcher.get("partition"):
        params["slurm_partition"] = str(launcher.partition)
    additional = launcher.get("additional") or {}
    if additional:
        params["slurm_additional_parameters"] = OmegaConf.to_container(additional, resolve=True)
    return params


def make_executor(launcher: Any, folder: Path, jobs: int):
    """A submitit executor set from the launcher config."""
    import submitit

    cluster = str(launcher.get("cluster", "slurm"))
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    executor.update_parameters(**job_parameters(launcher, jobs))
    return executor


def sbatch_text(launcher: Any, folder: Path, jobs: int, runs: int) -> str:
    """The sbatch script submitit writes for `runs` runs under these settings (no sbatch needed): what a user or
    a test reads to see the job that `--launcher slurm` submits."""
    from submitit.slurm.slurm import SlurmExecutor, _convert_mem, _make_sbatch_string

    names: Any = SlurmExecutor._equivalence_dict()
    params = {names.get(k.removeprefix("slurm_"), k.removeprefix("slurm_")): v
              for k, v in job_parameters(launcher, jobs).items()}
    params["mem"] = _convert_mem(params["mem"])
    return _make_sbatch_string(command="python -u -m submitit.core._submit", folder=folder, map_count=runs, **params)


def submit(plan, cells: list, threads: int) -> list:
    """Submit the cells as one job array; returns the submitit jobs in the cells' order."""
    launcher = plan.launcher
    folder = Path(launcher.get("folder") or plan.results_dir / "slurm")
    executor = make_executor(launcher, folder, plan.jobs)
    with executor.batch():
        jobs = [
            executor.submit(TrainJob(cell.run_id, str(cell.run_dir.absolute()), child_command(cell, threads)[3:]))
            for cell in cells
        ]
    return jobs


def wait(jobs: list, cells: list, view, watches: dict, *, poll_s: float = 2.0) -> list[Outcome]:
    """Watch the jobs until each has ended; an Outcome per cell."""
    outcomes: dict[str, Outcome] = {}
    for cell in cells:
        watches[cell.run_id].phase = "running"
    while len(outcomes) < len(jobs):
        for job, cell in zip(jobs, cells, strict=True):
            if cell.run_id in outcomes or not job.done():
                continue
            outcomes[cell.run_id] = _job_outcome(job, cell)
            outcome = outcomes[cell.run_id]
            watches[cell.run_id].refresh()
            watches[cell.run_id].phase = outcome.status
            if outcome.status == "done":
                view.event(f"done {cell.run_id} (job {job.job_id})")
            else:
                view.event(f"{outcome.status} {cell.run_id} (job {job.job_id}): {outcome.reason}")
        view.tick()
        if len(outcomes) < len(jobs):
            time.sleep(poll_s)
    return [outcomes[c.run_id] for c in cells]


def _job_outcome(job, cell) -> Outcome:
    log_path = cell.run_dir / LOG_FILE
    try:
        result = job.result()
    except Exception as exc:
        text = str(exc).strip().splitlines()
        lines = [line for line in text if "exit code" in line] or text[-1:] or [type(exc).__name__]
        reason = lines[-1].strip()[:300]
        try:
            info = read_run_json(cell.run_dir) or {}
        except CorruptFile:
            info = {}
        if info.get("status") == RunStatus.FAILED and info.get("reason"):
            reason = str(info["reason"])
        elif info.get("status") not in (RunStatus.DONE, RunStatus.PARTIAL):
            record_failure(cell.run_dir, cell.ids(), reason)
        return Outcome(cell.run_id, "failed", reason, log_path)
    if isinstance(result, dict) and result.get("status") == "locked":
        return Outcome(cell.run_id, "locked", result.get("reason"), log_path)
    return Outcome(cell.run_id, "done", None, log_path)


@contextlib.contextmanager
def _lock_token(token: str) -> Iterator[None]:
    """Expose our lock's token to the in-process trainer, as the local launcher does through the environment."""
    before = os.environ.get(TOKEN_ENV)
    os.environ[TOKEN_ENV] = token
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(TOKEN_ENV, None)
        else:
            os.environ[TOKEN_ENV] = before
