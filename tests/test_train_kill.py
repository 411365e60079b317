"""SIGKILL a real `python -m degradation.train` part-way; the same arguments again resume it to the uninterrupted
curves (the rerun goes through run_from_args in this process: a second child would cost ~10 s here).

Apart from tests/test_train_resume.py (the in-process resumes) so that each file runs in well under 30 s alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from _train_helpers import ROOT, folder_of, run_json, tiny, tiny_cfg

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
