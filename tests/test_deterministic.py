"""trainer.deterministic=true: torch's deterministic switches set for the run, recorded in run.json, and two
runs of the same config giving the same curves, bit for bit (on the CPU here)."""

from __future__ import annotations

import os

import pytest
import torch
from _train_helpers import folder_of, run_json, tiny_cfg

from degradation.store.runs import read_curves
from degradation.train.run import train


@pytest.fixture
def torch_switches():
    """Deterministic mode changes process-wide torch state: give the next test what it had."""
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    yield
    torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[2], saved[3]
    if saved[4] is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = saved[4]


def test_deterministic_runs_set_torchs_switches_record_them_and_repeat_exactly(tmp_path, torch_switches) -> None:
    extra = ("trainer.deterministic=true", "trainer.cudnn_benchmark=true")  # benchmark asked for, overruled
    curves = []
    for name in ("first", "second"):
        train(tiny_cfg(tmp_path / name, *extra))
        folder = folder_of(tmp_path / name, *extra)
        info = run_json(folder)
        assert info["deterministic"] == {"setting": True, "algorithms": True, "cudnn_benchmark": False,
                                         "cudnn_deterministic": True, "cublas_workspace_config": ":4096:8"}
        assert info["config"]["trainer"]["deterministic"] is True
        curves.append(read_curves(folder).drop(columns=["wall_s"]))
    assert len(curves[0]) > 0
    assert curves[0].equals(curves[1])  # every error and loss, bit for bit


def test_the_default_run_records_deterministic_off_and_keeps_its_run_id(tmp_path, torch_switches) -> None:
    train(tiny_cfg(tmp_path))
    info = run_json(folder_of(tmp_path))
    assert info["deterministic"]["setting"] is False and info["deterministic"]["algorithms"] is False
    assert folder_of(tmp_path, "trainer.deterministic=true") == folder_of(tmp_path)  # a how, not a what


def test_a_non_boolean_setting_is_refused_in_one_line(tmp_path, capsys) -> None:
    from degradation.cli import main

    assert main(["train", *[f"results_dir={tmp_path}", "trainer.deterministic=sometimes"]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trainer.deterministic='sometimes'; choose true or false" in err
    assert not any(tmp_path.iterdir())
