"""Fast counterparts of the slow end-to-end tests: a signal mid-run gives status partial and exit 130, and a real
sweep resumes a run that was stopped part-way (its child process picks up the checkpoint), and SLURM's SIGUSR2
requeues a cluster job whose copy resumes the run."""

from __future__ import annotations

import os
import signal

import pandas as pd
import pytest
from _sweep_helpers import sweep_args
from _train_helpers import folder_of, run_json, tiny, tiny_cfg, train_interrupted

from degradation.cli import main
from degradation.store.runs import read_curves
from degradation.train.app import run_from_args
from degradation.train.module import TrainModule
from degradation.train.run import train


def _signal_at(monkeypatch: pytest.MonkeyPatch, signum: int, at: int) -> None:
    """This process receives `signum` right after iteration `at` (its checkpoint, if any, written)."""
    original = TrainModule.on_train_batch_end

    def send(self, *args) -> None:
        original(self, *args)
        if self.iteration == at:
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(TrainModule, "on_train_batch_end", send)


def _equal_to_an_uninterrupted_run(folder, straight) -> pd.DataFrame:
    """The resumed run's curves, checked against the same tiny run trained in one go under `straight`."""
    train(tiny_cfg(straight))
    a, b = read_curves(folder), read_curves(folder_of(straight))
    assert a.drop(columns=["value", "wall_s"]).equals(b.drop(columns=["value", "wall_s"]))
    assert a.value.to_numpy() == pytest.approx(b.value.to_numpy(), rel=1e-6, abs=1e-7)
    return a


@pytest.fixture
def ctrl_c_reaches_python():
    """Python's own Ctrl-C handler, as in a terminal: a shell starts background jobs (nohup ... &) with SIGINT
    ignored, and an ignored signal would never interrupt the run under test."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_run_leaves_it_partial_with_exit_130_and_the_same_command_finishes_it(
        tmp_path, monkeypatch, capsys, signum, ctrl_c_reaches_python) -> None:
    previous = signal.getsignal(signum)
    with monkeypatch.context() as patch:
        _signal_at(patch, signum, at=9)  # past the checkpoint at 8
        assert run_from_args(tiny(tmp_path)) == 130
    assert signal.getsignal(signum) == previous  # the training left this process's handlers as they were
    folder = folder_of(tmp_path)
    info = run_json(folder)
    assert info["status"] == "partial" and "interrupted at iteration" in info["reason"]
    assert "run the same command to resume" in capsys.readouterr().err
    assert run_from_args(tiny(tmp_path)) == 0
    assert (run_json(folder)["status"], run_json(folder)["iteration"]) == ("done", 12)
    assert "resuming at iteration 8" in (folder / "train.log").read_text()


def test_a_real_sweep_resumes_a_stopped_run_to_the_uninterrupted_curves(tmp_path, monkeypatch, capsys) -> None:
    """The sweep's child process (a real `python -m degradation.train`) resumes the run from its checkpoint."""
    results = tmp_path / "r"
    train_interrupted(tiny_cfg(results), monkeypatch, at=5)  # the sweep's resnet-8 run, stopped past its checkpoint
    folder = folder_of(results)
    assert run_json(folder)["status"] == "partial"
    assert main(sweep_args(results, "--archs", "resnet")) == 0
    out = capsys.readouterr().out
    assert f"resuming {folder.name} from its last checkpoint (it had reached iteration" in out
    assert "resuming at iteration 4" in (folder / "train.log").read_text()
    a = _equal_to_an_uninterrupted_run(folder, tmp_path / "straight")
    collected = pd.read_parquet(results / "curves.parquet")
    assert len(collected[collected.run_id == folder.name]) == len(a)


def test_a_slurm_preemption_signal_requeues_the_job_and_the_copy_resumes_to_the_uninterrupted_curves(
        tmp_path, monkeypatch) -> None:
    """SIGUSR2 as SLURM sends it before preemption, handled as submitit's job process does (call the job's
    `checkpoint`, then exit), in this process: the job asks to be requeued and the requeued copy finishes the run
    from its checkpoint. The slow test_sweep test does the same through submitit's own executor."""
    from degradation.sweep import slurm

    results = tmp_path / "r"
    folder = folder_of(results)
    job = slurm.TrainJob(folder.name, str(folder), tiny(results))
    requeued = []

    def submitit_handler(signum, frame) -> None:  # what submitit's signal handler does in the job's process
        requeued.append(job.checkpoint())
        raise SystemExit(-1)

    previous = signal.signal(signal.SIGUSR2, submitit_handler)
    try:
        with monkeypatch.context() as patch:
            _signal_at(patch, signal.SIGUSR2, at=9)  # past the checkpoint at 8
            with pytest.raises(SystemExit) as stopped:
                job()
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert stopped.value.code == slurm._requeue_exit_code()  # not a failure: submitit requeues the job
    assert run_json(folder)["status"] == "partial" and not (folder / ".lock").exists()
    (resubmission,) = requeued
    monkeypatch.setitem(slurm._PREEMPTED, "flag", False)  # the requeued copy runs in a new process
    assert resubmission.function() == {"run_id": folder.name, "status": "done"}
    assert (run_json(folder)["status"], run_json(folder)["iteration"]) == ("done", 12)
    assert "resuming at iteration 8" in (folder / "train.log").read_text()
    _equal_to_an_uninterrupted_run(folder, tmp_path / "straight")
