"""SIGKILL a real `python -m degradation.train` part-way; the same arguments again resume it to the uninterrupted
curves (the rerun goes through run_from_args in this process: a second child would cost ~10 s here)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from _train_helpers import ROOT, folder_of, run_json, tiny, tiny_cfg, train_interrupted

from degradation.store.runs import read_curves
from degradation.train.app import run_from_args
from degradation.train.run import train

LONGER = ["schedule.max_iters=40", "schedule.milestones=[20,30]"]  # long enough to be killed mid-run


def test_sigkill_then_rerun_gives_the_uninterrupted_curves(tmp_path) -> None:
    killed = tmp_path / "killed"
    overrides = tiny(killed, *LONGER)
    folder = folder_of(killed, *LONGER)
    child = subprocess.Popen(
        [sys.executable, "-m", "degradation.train", *overrides],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while child.poll() is None and not (folder / "checkpoints" / "last.ckpt").exists():
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.002)
    os.kill(child.pid, signal.SIGKILL)
    out, err = child.communicate()
    assert child.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert out == "" and err == "", "Lightning's banners and warnings should be quiet"
    before = run_json(folder)
    assert before["status"] == "running" and before["iteration"] < 40

    assert run_from_args(overrides) == 0
    after = run_json(folder)
    assert (after["status"], after["iteration"]) == ("done", 40)
    assert "resuming at iteration" in (folder / "train.log").read_text()

    straight = tmp_path / "straight"
    train(tiny_cfg(straight, *LONGER))
    a, b = read_curves(folder), read_curves(folder_of(straight, *LONGER))
    assert a.drop(columns=["value", "wall_s"]).equals(b.drop(columns=["value", "wall_s"]))
    assert a.value.to_numpy() == pytest.approx(b.value.to_numpy(), rel=1e-6, abs=1e-7)
    assert after["final_test_error"] == run_json(folder_of(straight, *LONGER))["final_test_error"]


# ---- resume with the warm-up on (depth >= 110 in the paper; forced on here) -------------------------------------
WARMUP = ["schedule.max_iters=30", "schedule.milestones=[20,25]", "schedule.warmup.enabled=true",
          "schedule.checkpoint_every=2"]


@pytest.fixture(scope="module")
def warmup_straight(tmp_path_factory):
    """The uninterrupted run with the warm-up on: its folder and the iteration its warm-up ended at."""
    results = tmp_path_factory.mktemp("straight")
    train(tiny_cfg(results, *WARMUP))
    folder = folder_of(results, *WARMUP)
    ended = run_json(folder)["warmup_ended_at"]
    assert ended is not None and 6 <= ended <= 24, f"warm-up ended at {ended}: the kills below need room either side"
    return folder, ended


@pytest.mark.parametrize("when", ["during", "after"])
def test_a_run_killed_during_or_after_its_warm_up_resumes_to_the_same_curves_and_lr(
        tmp_path, monkeypatch, warmup_straight, when) -> None:
    """Killed one iteration past a checkpoint that is inside the warm-up (the resumed run must keep warming up
    and end it where the straight run did) or past its end (it must not warm up again)."""
    straight, ended = warmup_straight
    at = ended - 1 if when == "during" else ended + 3  # resumes from the checkpoint at ended-2 or ended+2
    cfg = tiny_cfg(tmp_path, *WARMUP)
    train_interrupted(cfg, monkeypatch, at=at)
    folder = folder_of(tmp_path, *WARMUP)
    assert run_json(folder)["status"] == "partial"
    assert train(tiny_cfg(tmp_path, *WARMUP))["status"] == "done"
    log = (folder / "train.log").read_text()
    assert f"resuming at iteration {at - 1}" in log
    assert (f"warm-up ended at iteration {ended}" in log.split("resuming at")[-1]) == (when == "during")

    a, b = read_curves(folder), read_curves(straight)
    assert a.drop(columns=["value", "wall_s"]).equals(b.drop(columns=["value", "wall_s"]))
    lr_a, lr_b = (c[c.metric == "lr"].set_index("step")["value"] for c in (a, b))
    assert lr_a.to_dict() == lr_b.to_dict()
    assert lr_b[ended] < lr_b[ended + 2]  # the straight run's lr rose when its warm-up ended: the lr rows can tell
    assert a.value.to_numpy() == pytest.approx(b.value.to_numpy(), rel=1e-6, abs=1e-7)
    assert run_json(folder)["warmup_ended_at"] == ended


def test_a_run_keeps_the_thread_count_it_started_with(tmp_path, monkeypatch) -> None:
    """A sweep hands a resumed run another thread count when fewer runs are left; oneDNN's floats depend on it, so
    the run keeps its first count (config.yaml), says so, and ends with the uninterrupted 1-thread run's curves."""
    train_interrupted(tiny_cfg(tmp_path / "stopped"), monkeypatch, at=9)
    folder = folder_of(tmp_path / "stopped")
    info = train(tiny_cfg(tmp_path / "stopped", "trainer.threads=2"))
    assert info["status"] == "done" and info["device"].startswith("cpu 1 threads")
    assert "threads: 1, as at this run's first start (asked for 2)" in (folder / "train.log").read_text()
    assert "threads: 1\n" in (folder / "config.yaml").read_text()
    train(tiny_cfg(tmp_path / "straight"))
    a, b = read_curves(folder), read_curves(folder_of(tmp_path / "straight"))
    assert a.drop(columns=["wall_s"]).equals(b.drop(columns=["wall_s"]))  # exactly: same threads, same floats
