"""A sweep of DDP runs (trainer.devices=2 on gloo): the ranks Lightning starts under a sweep's run live, the
sweep finishes with the curves of a plain `train` of the same run, and a sweep killed with kill -9 takes every
rank with it and is resumed by the next sweep to the same curves.

The mechanism (fast): rank 0 names itself as the parent its own ranks bind to (train/lifeline.py).
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
from degradation.train.lifeline import PARENT_ENV
from tests._sweep_helpers import checkpointed_runs

ROOT = Path(__file__).resolve().parent.parent
MAIN = "import sys; from degradation.cli import main; sys.exit(main(sys.argv[1:]))"
MAX_ITERS = 24
RUN = ["data.train_size=64", "data.test_size=32", "trainer.accelerator=cpu", "trainer.threads=1",
       "trainer.devices=2", f"schedule.max_iters={MAX_ITERS}", "schedule.milestones=[12,18]",
       "schedule.checkpoint_every=4"]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux only")


def _env(**extra: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("DEGRADATION_LOCK_TOKEN", None)
    env.pop(PARENT_ENV, None)
    return {**env, **extra}


def test_a_rank_started_by_a_sweeps_run_binds_to_that_run_not_to_the_sweep(tmp_path: Path) -> None:
    """What Lightning does under a sweep: the run (rank 0) starts rank 1 with its own environment. Rank 1's parent
    is rank 0, so it must find rank 0's pid in DEGRADATION_SWEEP_PID, not the sweep's (or it exits at once)."""
    rank1 = "from degradation.train.lifeline import bind_to_sweep; bind_to_sweep(); print('rank 1 bound')"
    rank0 = ("import subprocess, sys\n"
             "from degradation.train.lifeline import bind_to_sweep\n"
             "bind_to_sweep()\n"
             f"sys.exit(subprocess.run([sys.executable, '-c', {rank1!r}]).returncode)\n")
    proc = subprocess.run([sys.executable, "-c", rank0], capture_output=True, text=True, timeout=60,
                          env=_env(**{PARENT_ENV: str(os.getpid())}))  # this test is the sweep
    assert proc.returncode == 0 and "rank 1 bound" in proc.stdout, proc.stderr


def _sweep(results: Path) -> list[str]:
    return [sys.executable, "-c", MAIN, "sweep", "--data", "synthetic", "--preset", "smoke", "--depths", "8",
            "--archs", "resnet", "--results", str(results), "--", *RUN]


def _curves(results: Path) -> pd.DataFrame:
    (folder,) = (results / "runs").iterdir()
    frame = pd.concat([pd.read_parquet(p) for p in sorted((folder / "curves").glob("part-*.parquet"))])
    return frame.sort_values(["step", "split", "metric"]).reset_index(drop=True)[["step", "split", "metric", "value"]]


def _ranks(results: Path) -> list[int]:
    """The run's rank 0 (the sweep's child, from the lock) and the ranks it started (its children)."""
    for lock in (results / "runs").glob("*/.lock"):
        try:
            pid = int(json.loads(lock.read_text()).get("child_pid") or 0)
        except (OSError, ValueError):
            continue
        if pid:
            children = Path(f"/proc/{pid}/task/{pid}/children")
            more = [int(p) for p in children.read_text().split()] if children.is_file() else []
            return [pid, *more]
    return []


def _mid_way(results: Path) -> bool:
    """A checkpoint written and the run still well short of its end."""
    return checkpointed_runs(results, 4, MAX_ITERS - 8) > 0


@pytest.mark.slow  # four DDP runs of two processes each (about 3 minutes on a loaded 2-core machine); the test
# above covers the mechanism
def test_a_ddp_sweep_finishes_like_train_and_resumes_after_kill_9(tmp_path: Path) -> None:
    swept, trained, killed = tmp_path / "swept", tmp_path / "trained", tmp_path / "killed"
    sweep = subprocess.run(_sweep(swept), capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=600)
    assert sweep.returncode == 0 and "1 done" in sweep.stdout, sweep.stdout[-3000:] + sweep.stderr[-2000:]
    train = subprocess.run([sys.executable, "-m", "degradation.train", "model=resnet", "model.depth=8",
                            "data=synthetic", "schedule=smoke", "trainer.progress=none", f"results_dir={trained}",
                            *RUN], capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=600)
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-2000:]
    assert _curves(swept).equals(_curves(trained))  # the same run, bit for bit
    (folder,) = (swept / "runs").iterdir()
    assert json.loads((folder / "run.json").read_text())["ranks"] == 2

    proc = subprocess.Popen(_sweep(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
                            env=_env(), stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not _mid_way(killed) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        ranks = _ranks(killed)
        assert proc.poll() is None and _mid_way(killed) and len(ranks) == 2, "run not caught mid-way"
        os.kill(proc.pid, signal.SIGKILL)  # the sweep alone: its run leads a session of its own
        proc.wait()
        deadline = time.monotonic() + 60
        while any(pid_alive(p) for p in ranks) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(pid_alive(p) for p in ranks), "a rank outlived its sweep"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rerun = subprocess.run(_sweep(killed), capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=600)
    assert rerun.returncode == 0 and "1 done" in rerun.stdout, rerun.stdout[-3000:] + rerun.stderr[-2000:]
    (folder,) = (killed / "runs").iterdir()
    assert "resuming at iteration" in (folder / "train.log").read_text()
    assert _curves(killed).equals(_curves(trained))
