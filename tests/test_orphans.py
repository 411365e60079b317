"""A sweep killed with kill -9 takes its runs with it; the rerun resumes them, and every curve ends complete.

Only the sweep process is killed (what the OOM killer or a lost terminal does); its runs live in their own
sessions, so nothing but the parent-death signal (degradation/train/lifeline.py) can stop them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from degradation.store.lock import pid_alive
from degradation.train.lifeline import PARENT_ENV, die_with_parent
from tests._sweep_helpers import checkpointed_runs

ROOT = Path(__file__).resolve().parent.parent
MAIN = "import sys; from degradation.cli import main; sys.exit(main(sys.argv[1:]))"
MAX_ITERS = 200
SWEEP = ["sweep", "--data", "synthetic", "--preset", "smoke", "--depths", "8", "--jobs", "2", "--",
         "data.train_size=128", "data.test_size=32", "trainer.accelerator=cpu", "trainer.threads=1",
         f"schedule.max_iters={MAX_ITERS}", "schedule.milestones=[100,150]", "schedule.eval_every=100",
         "schedule.checkpoint_every=10"]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux only")


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("DEGRADATION_LOCK_TOKEN", None)
    return env


def _sweep(results: Path) -> list[str]:
    cut = SWEEP.index("--")
    return [sys.executable, "-c", MAIN, *SWEEP[:cut], "--results", str(results), *SWEEP[cut:]]


def _children(results: Path) -> dict[str, int]:
    """run id -> the training process the sweep recorded in the run's lock."""
    out = {}
    for lock in (results / "runs").glob("*/.lock"):
        try:
            owner = json.loads(lock.read_text())
        except (OSError, ValueError):
            continue
        if owner.get("child_pid"):
            out[lock.parent.name] = int(owner["child_pid"])
    return out


def _checkpointed(results: Path) -> int:
    """Runs with a checkpoint past iteration 0 whose run.json says running."""
    return checkpointed_runs(results, 20, MAX_ITERS - 61)


@pytest.mark.slow  # two real sweeps (about a minute; minutes on a loaded machine); the two tests below cover the
# mechanism (the signal reaches a run whose parent is killed; a run whose sweep is already gone does not start)
def test_killed_sweep_takes_its_runs_and_the_rerun_completes_them(tmp_path: Path) -> None:
    results = tmp_path / "results"
    sweep = subprocess.Popen(_sweep(results), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
                             env=_env(), stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while _checkpointed(results) < 2 and time.monotonic() < deadline and sweep.poll() is None:
            time.sleep(0.05)
        children = _children(results)
        assert sweep.poll() is None and _checkpointed(results) == 2 and len(children) == 2, "runs not caught mid-way"
        os.kill(sweep.pid, signal.SIGKILL)  # the sweep alone: its runs are in sessions of their own
        sweep.wait()
        deadline = time.monotonic() + 60
        while any(pid_alive(p) for p in children.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(pid_alive(p) for p in children.values()), "runs outlived their sweep"
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    stopped_at = {rid: json.loads((results / "runs" / rid / "run.json").read_text()) for rid in children}
    assert all(info["status"] in ("partial", "running") and info["iteration"] < MAX_ITERS
               for info in stopped_at.values())

    status = subprocess.run([sys.executable, "-c", MAIN, "status", "--results", str(results)], capture_output=True,
                            text=True, cwd=tmp_path, env=_env(), timeout=120)
    assert status.returncode == 0 and "running" not in status.stdout, status.stdout  # nothing pretends to train

    rerun = subprocess.run(_sweep(results), capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    assert "running elsewhere" not in rerun.stdout
    curves = pd.read_parquet(results / "curves.parquet")
    runs = pd.read_parquet(results / "runs.parquet")
    assert set(runs.run_id) == set(children) and (runs.status == "done").all()
    train_rows = curves[(curves.split == "train") & (curves.metric == "error")]
    for rid in children:
        steps = train_rows[train_rows.run_id == rid].step.tolist()
        assert sorted(steps) == list(range(2, MAX_ITERS + 1, 2)), f"{rid}: curve incomplete or duplicated"
        log = (results / "runs" / rid / "train.log").read_text()
        assert log.count("starting:") == 1, log  # trained from scratch once ...
        assert log.count("resuming at iteration ") == 1 and log.count("done: train err") == 1  # ... resumed once


def test_a_run_whose_sweep_is_gone_does_not_start(tmp_path: Path) -> None:
    """The race the parent-death signal cannot cover: the sweep died before the run asked for it."""
    env = dict(_env(), **{PARENT_ENV: "1"})  # pid 1 is nobody's sweep
    proc = subprocess.run([sys.executable, "-m", "degradation.train", "data=synthetic", "schedule=smoke",
                           f"results_dir={tmp_path / 'results'}"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 130 and "is gone; not training" in proc.stderr
    assert not (tmp_path / "results").exists()


def test_parent_death_signal_is_delivered(tmp_path: Path) -> None:
    """The mechanism itself: a grandchild asking for SIGTERM sees it when its parent is killed."""
    assert die_with_parent.__module__ == "degradation.train.lifeline"
    marker = tmp_path / "got-sigterm"
    child_code = (
        "import signal, sys, time, pathlib\n"
        "from degradation.train.lifeline import die_with_parent\n"
        f"signal.signal(signal.SIGTERM, lambda *a: (pathlib.Path({str(marker)!r}).touch(), sys.exit(0)))\n"
        "assert die_with_parent()\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    parent_code = (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, '-c', {child_code!r}], stdout=subprocess.PIPE, text=True)\n"
        "p.stdout.readline(); print(p.pid, flush=True); time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True, env=_env())
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 20
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child) and marker.exists()
