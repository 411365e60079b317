"""A run started by a local sweep dies with its sweep (Linux): no orphan keeps training when the sweep is gone.

The sweep starts each run in its own session (so that Ctrl-C in the terminal reaches the sweep, which stops
its runs in order); a `kill -9` of the sweep, the OOM killer or a lost terminal would then leave the runs
training, and the next sweep would find them "running elsewhere" and collect half curves. So the launcher
names itself in DEGRADATION_SWEEP_PID, and the run, first thing, asks the kernel for SIGTERM when its parent
dies (prctl PR_SET_PDEATHSIG), then checks that the parent is still the sweep (it may have died before the
request: the run is then already an orphan and stops). SIGTERM ends the run as Ctrl-C does: status partial
at its last checkpoint, resumed by the next sweep.

A DDP run (trainer.devices > 1) has more processes: Lightning starts ranks 1..N-1 as children of rank 0, with
rank 0's environment. Those ranks' parent is rank 0, not the sweep, so once rank 0 is bound it names itself in
DEGRADATION_SWEEP_PID: each further rank dies with rank 0, and rank 0 dies with the sweep. Every rank of a DDP
run asks for SIGKILL, not SIGTERM (`die_hard`): Lightning's SIGTERM handler broadcasts from inside the signal
handler, and ranks stopped that way were seen to hang on a CPU (gloo) instead of exiting. Nothing is lost: the
checkpoint is on disk, run.json says running under a dead pid (read as partial), and the next sweep resumes it.

Elsewhere (macOS, a SLURM job, `degradation train` by hand) nothing changes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_ENV = "DEGRADATION_SWEEP_PID"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask for `sig` when the parent process dies; True when the kernel took the request (Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def bind_to_sweep() -> None:
    """When a sweep started this process: die with it, and exit at once if it is already gone."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or not parent.isdigit():
        return
    if not die_with_parent():
        return
    if os.getppid() != int(parent):  # the sweep died before the request: we were reparented
        print(f"error: the sweep that started this run (pid {parent}) is gone; not training", file=sys.stderr)
        sys.exit(130)
    os.environ[PARENT_ENV] = str(os.getpid())  # the DDP ranks this process starts are bound to it, not the sweep


def die_hard() -> None:
    """A rank of a DDP run started by a sweep: SIGKILL when the parent dies (see the module docstring)."""
    if os.environ.get(PARENT_ENV):
        die_with_parent(signal.SIGKILL)
