"""A run stopped part-way resumes to the uninterrupted curves: inside and after its warm-up, and with the thread
count it started with. (The SIGKILL of a real child process: tests/test_train_kill.py.)"""

from __future__ import annotations

import pytest
from _train_helpers import folder_of, run_json, tiny_cfg, train_interrupted

from degradation.store.runs import read_curves
from degradation.train.run import train

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
