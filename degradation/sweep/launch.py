"""The local launcher: each run its own `python -m degradation.train` process, `jobs` at a time.

Each child gets its run's overrides plus the threads it may use (the cores shared among the jobs) and, on
CUDA, one GPU: the one with the fewest of the sweep's runs, so that with launcher.runs_per_gpu=K (jobs = GPUs x K)
every GPU carries K runs, and with one GPU every run shares it. Its stdout and stderr go to the run's
train.log. The sweep holds the run's lock while the child lives and hands it down through DEGRADATION_LOCK_TOKEN.

Ctrl-C (or SIGTERM to the sweep) stops every child (SIGTERM to its process group, a wait, then SIGKILL):
the runs are left partial at their last checkpoint and the next sweep resumes them. A sweep killed outright
(kill -9, the OOM killer) cannot do that; its runs then stop by themselves (train/lifeline.py: a parent-death
signal on Linux), with the same result.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from degradation.errors import UsageError
from degradation.store.lock import TOKEN_ENV, Lock, describe_owner, try_acquire
from degradation.store.runs import LOG_FILE, CorruptFile, clear_failure, read_run_json, record_failure
from degradation.store.schema import RunStatus
from degradation.sweep.plan import Cell, Plan
from degradation.sweep.progress import RunWatch, SweepView
from degradation.text import percent
from degradation.train.lifeline import PARENT_ENV

STOP_TIMEOUT_S = 30.0  # after SIGTERM, how long a child may take to write its partial state


@dataclass
class Outcome:
    """How one run of the sweep ended."""

    run_id: str
    status: str  # done | failed | skipped (already done) | locked (held elsewhere) | stopped (Ctrl-C)
    reason: str | None = None
    log_path: Path | None = None


@dataclass
class Child:
    cell: Cell
    proc: subprocess.Popen
    lock: Lock
    log: Any  # the open train.log
    gpu: str | None
    watch: RunWatch


def child_command(cell: Cell, threads: int) -> list[str]:
    """The child's argv: the cell's overrides plus how it computes here (keys outside the run id)."""
    extra = []
    if cell.cfg.trainer.threads == "auto":
        extra.append(f"trainer.threads={threads}")
    if cell.cfg.trainer.progress == "auto":
        extra.append("trainer.progress=none")  # the sweep shows progress; train.log gets the run's lines
    return [sys.executable, "-m", "degradation.train", *cell.overrides, *extra]


def visible_gpus(count: int) -> list[str]:
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed:
        return [g.strip() for g in listed.split(",") if g.strip()]
    return [str(i) for i in range(count)]


def last_log_line(path: Path) -> str:
    """The line a failed run's log ends with, preferring an `error:` line."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 8192))
            lines = [line.strip() for line in handle.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or [""])[-1][:300]


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class LocalLauncher:
    """Runs the plan's runs that need training; returns an Outcome per run."""

    def __init__(self, plan: Plan, view: SweepView, watches: dict[str, RunWatch], *, poll_s: float = 0.5,
                 gpus: int = 0, gpus_per_run: int = 1) -> None:
        self.plan = plan
        self.view = view
        self.watches = watches
        self.poll_s = poll_s
        self.gpu_ids = visible_gpus(gpus) if gpus >= 1 else []
        self.per_run = max(1, gpus_per_run)  # a DDP run (trainer.devices > 1) gets that many GPUs of its own
        self.active: list[Child] = []
        self.outcomes: list[Outcome] = []

    def run(self, cells: list[Cell]) -> list[Outcome]:
        queue = deque(cells)
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            while queue or self.active:
                while queue and len(self.active) < self.plan.jobs and self._room():
                    self._start(queue.popleft())
                self._reap()
                self.view.tick()
                if self.active:
                    time.sleep(self.poll_s)
        except BaseException:  # Ctrl-C, SIGTERM, or an error of our own (a results folder gone): no orphans
            self._stop_all()
            for cell in queue:
                self.outcomes.append(Outcome(cell.run_id, "stopped", "not started"))
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
        return self.outcomes

    # ---- one child ---------------------------------------------------------------------------------------
    def _start(self, cell: Cell) -> None:
        watch = self.watches[cell.run_id]
        got = try_acquire(cell.run_dir)
        if not isinstance(got, Lock):
            reason = f"being trained by {describe_owner(got)}"
            self._finish(watch, Outcome(cell.run_id, "locked", reason), "locked", f"skip {cell.run_id}: {reason}")
            return
        try:
            finished = (read_run_json(cell.run_dir) or {}).get("status") == RunStatus.DONE
        except CorruptFile:
            finished = False
        if finished:  # finished by another sweep since the plan was made
            got.release()
            self._finish(watch, Outcome(cell.run_id, "skipped", "already done"), "skipped",
                         f"skip {cell.run_id}: already done")
            return
        log_path = cell.run_dir / LOG_FILE
        clear_failure(cell.run_dir)  # this attempt writes its own story
        command = child_command(cell, self.plan.threads)
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{TOKEN_ENV: got.token, PARENT_ENV: str(os.getpid())})
        env.setdefault("OMP_NUM_THREADS", str(self.plan.threads))
        gpu = self._pick_gpu()
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        log = open(log_path, "ab")  # noqa: SIM115 - the child writes to it until it exits
        stamp = datetime.now().isoformat(timespec="seconds")
        log.write(f"{stamp} sweep: {' '.join(command[1:])}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, start_new_session=True)
        except OSError as exc:
            log.close()
            got.release()
            self._finish(watch, Outcome(cell.run_id, "failed", f"could not start: {exc}", log_path), "failed",
                         f"failed {cell.run_id}: could not start: {exc}")
            return
        got.set_child(proc.pid)
        watch.phase = "running"
        where = f" on GPU {gpu}" if gpu is not None else ""
        state = self.plan.states[cell.run_id]
        if state.status in (RunStatus.PARTIAL, RunStatus.FAILED):
            what = f"resuming {cell.run_id} from its last checkpoint (it had reached iteration {state.iteration})"
        else:
            what = f"starting {cell.run_id}"
        self.view.event(f"{what}{where} (log: {log_path})")
        self.active.append(Child(cell, proc, got, log, gpu, watch))

    def _load(self) -> dict[str, int]:
        load = {g: 0 for g in self.gpu_ids}
        for child in self.active:
            for g in (child.gpu or "").split(","):
                if g in load:
                    load[g] += 1
        return load

    def _room(self) -> bool:
        """Whether a run can start now: a DDP run waits until `per_run` GPUs are free (runs never share them)."""
        if self.per_run == 1 or not self.gpu_ids or self.per_run > len(self.gpu_ids):
            return True
        return sum(n == 0 for n in self._load().values()) >= self.per_run

    def _pick_gpu(self) -> str | None:
        """CUDA_VISIBLE_DEVICES for the next run: the least-loaded GPU, or for a DDP run GPUs no other run holds
        (without this, concurrent DDP runs all trained on GPUs 0..devices-1). None: leave the variable alone (no
        GPUs, or fewer than the run asks for: Lightning then says so in the run's log)."""
        if not self.gpu_ids or self.per_run > len(self.gpu_ids):
            return None
        load = self._load()
        if self.per_run == 1:
            return min(self.gpu_ids, key=lambda g: load[g])
        return ",".join([g for g in self.gpu_ids if load[g] == 0][: self.per_run])

    def _reap(self) -> None:
        for child in list(self.active):
            code = child.proc.poll()
            if code is None:
                continue
            self.active.remove(child)
            child.log.close()
            child.lock.release()
            child.watch.refresh()
            outcome = self._outcome(child.cell, code)
            if outcome.status == "done":
                w = child.watch
                text = f"done {outcome.run_id}: train err {percent(w.train_error)}, test err {w.evaluated}"
            else:
                text = f"failed {outcome.run_id}: {outcome.reason} (log: {outcome.log_path})"
            self._finish(child.watch, outcome, outcome.status, text)

    def _outcome(self, cell: Cell, code: int) -> Outcome:
        log_path = cell.run_dir / LOG_FILE
        try:
            info = read_run_json(cell.run_dir)
        except CorruptFile as exc:
            return Outcome(cell.run_id, "failed", f"exit code {code}; {exc}", log_path)
        status = info.get("status") if info else None
        if code == 0 and status == RunStatus.DONE:
            return Outcome(cell.run_id, "done", None, log_path)
        if info and status == RunStatus.FAILED and info.get("reason"):
            return Outcome(cell.run_id, "failed", str(info["reason"]), log_path)
        what = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        line = last_log_line(log_path)
        reason = f"{what}: {line}" if line else what
        if status not in (RunStatus.DONE, RunStatus.PARTIAL, RunStatus.FAILED):  # it died without recording its end
            try:
                record_failure(cell.run_dir, cell.ids(), reason)
            except UsageError as exc:  # the run folder is gone or the disk refuses: say so, go on with the others
                reason = f"{reason}; {exc}"
        return Outcome(cell.run_id, "failed", reason, log_path)

    def _finish(self, watch: RunWatch, outcome: Outcome, phase: str, text: str) -> None:
        watch.phase = phase
        self.outcomes.append(outcome)
        self.view.event(text)

    # ---- Ctrl-C ------------------------------------------------------------------------------------------
    def _stop_all(self) -> None:
        """Stop every child: SIGTERM to its process group, wait, SIGKILL what is left; release the locks."""
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not orphan children
        try:
            if self.active:
                self.view.event(f"stopping {len(self.active)} run(s); the next sweep resumes them")
            for child in self.active:
                _signal_group(child.proc, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            for child in self.active:
                try:
                    child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    _signal_group(child.proc, signal.SIGKILL)
                    child.proc.wait()
                child.log.close()
                child.lock.release()
                child.watch.phase = "stopped"
                self.outcomes.append(Outcome(child.cell.run_id, "stopped", "interrupted",
                                             child.cell.run_dir / LOG_FILE))
            self.active.clear()
        finally:
            signal.signal(signal.SIGINT, previous)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the child leads its own session: its helpers go too
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
