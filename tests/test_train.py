"""One training run end to end on tiny synthetic data: files, curves, run.json, bad input, NaN, interrupts."""

from __future__ import annotations

import io
import math

import pyarrow.parquet as pq
import pytest
import torch
from _train_helpers import folder_of, run_json, tiny, tiny_cfg

from degradation.store.runs import read_curves
from degradation.store.schema import CURVE_COLUMNS, SCHEMA_VERSION
from degradation.train import folder as folder_mod
from degradation.train.app import run_from_args
from degradation.train.console import Progress
from degradation.train.run import train

RUN_JSON_KEYS = {
    "schema_version", "run_id", "status", "reason", "iteration", "total_iters", "arch", "depth", "shortcut",
    "dataset", "preset", "seed", "params", "macs", "final_train_error", "final_test_error", "final_val_error",
    "best_test_error", "best_test_step", "wall_s", "images_per_s", "device", "versions", "git_revision", "config",
    "updated_at", "pid", "log_path",
}  # fmt: skip


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished tiny run (12 iterations, windows of 2, evaluation and checkpoint every 4)."""
    results = tmp_path_factory.mktemp("results")
    statuses = []
    original = folder_mod.RunFolder.checkpoint

    def spy(self, module, iteration):
        original(self, module, iteration)
        statuses.append((iteration, run_json(self.path)["status"]))

    folder_mod.RunFolder.checkpoint = spy
    try:
        info = train(tiny_cfg(results))
    finally:
        folder_mod.RunFolder.checkpoint = original
    return results, folder_of(results), info, statuses


def test_run_folder_has_every_file(finished) -> None:
    _, folder, info, _ = finished
    assert folder.name == info["run_id"] and folder.name.startswith("resnet-8-A-synthetic-smoke-s0-")
    for name in ("config.yaml", "run.json", "train.log", "checkpoints/last.ckpt"):
        assert (folder / name).is_file(), name
    assert sorted(p.name for p in (folder / "curves").iterdir()) == [
        "part-000000004.parquet", "part-000000008.parquet", "part-000000012.parquet"
    ]  # fmt: skip
    assert "done: train err" in (folder / "train.log").read_text()
    checkpoint = torch.load(folder / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["degradation"]["iteration"] == 12 and checkpoint["global_step"] == 12
    assert checkpoint["state_dict"] and all(k.startswith("model.") for k in checkpoint["state_dict"])
    assert not list(folder.rglob("*.tmp"))


def test_curves_follow_the_schema(finished) -> None:
    _, folder, info, _ = finished
    part = pq.read_table(folder / "curves" / "part-000000004.parquet")
    assert part.schema.names == list(CURVE_COLUMNS)
    assert part.schema.metadata[b"schema_version"] == str(SCHEMA_VERSION).encode()
    assert {str(f.type) for f in part.schema} <= {"string", "int64", "double"}
    curves = read_curves(folder)
    assert set(curves.run_id) == {info["run_id"]} and set(curves.shortcut) == {"A"}
    assert set(curves.preset) == {"smoke"} and set(curves.dataset) == {"synthetic"} and set(curves.depth) == {8}
    train_err = curves[(curves.split == "train") & (curves.metric == "error")]
    assert list(train_err.step) == [2, 4, 6, 8, 10, 12]
    test_err = curves[(curves.split == "test") & (curves.metric == "error")]
    assert list(test_err.step) == [4, 8, 12]
    # whole windows of 2 x 16 images and the whole 32-image test set: multiples of 1/32
    for values in (train_err.value, test_err.value):
        assert all(0 <= v <= 1 and math.isclose(v * 32, round(v * 32)) for v in values)
    lr = curves[curves.metric == "lr"]
    assert list(lr.value.round(6)) == [0.1, 0.1, 0.1, 0.01, 0.001, 0.001]  # smoke: decays at 6 and 9
    assert list(curves.epoch.unique()) == [s * 16 / 64 for s in (2, 4, 6, 8, 10, 12)]
    assert curves.groupby("step").wall_s.first().is_monotonic_increasing
    assert set(curves[curves.split == "test"].metric) == {"error", "loss"}


def test_run_json_lifecycle_and_keys(finished) -> None:
    results, folder, info, statuses = finished
    assert statuses == [(4, "running"), (8, "running"), (12, "running")]  # done only after the loop ends
    data = run_json(folder)
    assert set(data) >= RUN_JSON_KEYS
    assert data == info
    assert (data["status"], data["reason"], data["iteration"], data["total_iters"]) == ("done", None, 12, 12)
    assert (data["arch"], data["depth"], data["shortcut"], data["seed"]) == ("resnet", 8, "A", 0)
    assert data["params"] == 75290 and data["macs"] > 0
    assert data["final_test_error"] == read_curves(folder).query("split == 'test' and metric == 'error'").value.iloc[-1]
    assert data["best_test_error"] <= data["final_test_error"] and data["best_test_step"] in (4, 8, 12)
    assert data["final_val_error"] is None and data["images_per_s"] > 0 and data["wall_s"] > 0
    assert data["config"]["model"]["depth"] == 8 and data["versions"]["torch"]


def test_a_done_run_is_not_trained_again(finished, capsys) -> None:
    results, folder, info, _ = finished
    before = {p.name: p.stat().st_mtime_ns for p in (folder / "curves").iterdir()}
    assert run_from_args(tiny(results)) == 0
    assert "already done" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in (folder / "curves").iterdir()} == before


def test_cfg_prints_the_config_and_writes_nothing(tmp_path, capsys) -> None:
    assert run_from_args(["--cfg", *tiny(tmp_path / "r")]) == 0
    assert "depth: 8" in capsys.readouterr().out
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("schedule.nope=1", "unknown config key"),
        ("schedule.batch_size=abc", "not a whole number"),
        ("model.depth=21", "nearest: 20 or 26"),
        ("schedule.batch_size=0", "must be >= 1"),
        ("schedule.lr=0", "must be > 0"),
        ("schedule.lr=-0.1", "must be > 0"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, override, message) -> None:
    results = tmp_path / "r"
    assert run_from_args([*tiny(results), override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert not results.exists()


def test_unwritable_results_folder_is_exit_2(tmp_path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert run_from_args([*tiny(blocker / "results")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: results folder") and err.count("\n") == 1
    assert blocker.read_text() == "not a folder" and sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_nan_loss_fails_the_run_with_its_reason(tmp_path, capsys) -> None:
    assert run_from_args(tiny(tmp_path, "schedule.lr=1e20")) == 1
    assert "run failed: training loss is nan" in capsys.readouterr().err
    data = run_json(folder_of(tmp_path, "schedule.lr=1e20"))
    assert data["status"] == "failed" and "nan" in data["reason"] and data["iteration"] < 12


def test_warmup_runs_at_its_lr_until_a_window_is_good_enough(tmp_path) -> None:
    # threshold 1.01: the first window always ends it; threshold 0: it never ends, whatever the milestones say
    ends = train(tiny_cfg(tmp_path, "schedule.warmup.enabled=true", "schedule.warmup.until_train_error=1.01"))
    lr = read_curves(folder_of(tmp_path, "schedule.warmup.enabled=true", "schedule.warmup.until_train_error=1.01"))
    assert list(lr[lr.metric == "lr"].value.round(6)) == [0.01, 0.1, 0.1, 0.01, 0.001, 0.001]
    assert ends["warmup_ended_at"] == 2
    never = ["schedule.warmup.enabled=true", "schedule.warmup.until_train_error=0", "schedule.max_iters=4"]
    assert train(tiny_cfg(tmp_path, *never))["warmup_ended_at"] is None
    lr = read_curves(folder_of(tmp_path, *never))
    assert list(lr[lr.metric == "lr"].value.round(6)) == [0.01, 0.01]


def test_interrupt_leaves_partial_and_the_rerun_equals_an_uninterrupted_run(tmp_path, finished) -> None:
    _, reference, _, _ = finished
    original = folder_mod.RunFolder.checkpoint

    def interrupt_after_first(self, module, iteration):
        original(self, module, iteration)
        raise KeyboardInterrupt

    folder_mod.RunFolder.checkpoint = interrupt_after_first
    try:
        with pytest.raises(KeyboardInterrupt):
            train(tiny_cfg(tmp_path))
    finally:
        folder_mod.RunFolder.checkpoint = original
    folder = folder_of(tmp_path)
    data = run_json(folder)
    assert data["status"] == "partial" and data["iteration"] == 4 and "resume" in data["reason"]
    assert train(tiny_cfg(tmp_path))["status"] == "done"
    assert "resuming at iteration 4" in (folder / "train.log").read_text()
    resumed, straight = read_curves(folder), read_curves(reference)
    assert resumed.drop(columns=["value", "wall_s"]).equals(straight.drop(columns=["value", "wall_s"]))
    assert resumed.value.to_numpy() == pytest.approx(straight.value.to_numpy(), rel=1e-6, abs=1e-7)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_one_live_line_on_a_terminal_and_plain_lines_otherwise(tmp_path) -> None:
    live = Progress("run", 100, tmp_path / "a.log", "auto", stream=_Terminal(), redraw_s=3600)
    for it in (10, 20):  # the second comes too soon after the first to be drawn
        live.update(it, 0.5, None, evaluated=False)
    live.update(30, 0.4, 0.45, evaluated=True)  # an evaluation is always drawn
    live.close()
    text = live.stream.getvalue()
    assert text.count("\n") == 1 and text.count("\r") == 2 and "it 30/100" in text and "ETA" in text
    assert "it 20/100" not in text
    plain = Progress("run", 100, tmp_path / "b.log", "auto", stream=io.StringIO())
    plain.update(10, 0.5, None, evaluated=False)
    plain.update(20, 0.4, 0.45, evaluated=True)
    assert plain.stream.getvalue().splitlines() == [plain.stream.getvalue().strip()]
    assert "test err 45.00%" in plain.stream.getvalue() and "\r" not in plain.stream.getvalue()
    assert "it 20/100" in (tmp_path / "b.log").read_text()
    silent = Progress("run", 100, tmp_path / "c.log", "none", stream=_Terminal())
    silent.update(20, 0.4, 0.45, evaluated=True)
    assert silent.stream.getvalue() == "" and "it 20/100" in (tmp_path / "c.log").read_text()


def test_holdout_split_and_bf16_add_val_curves(tmp_path) -> None:
    extra = ("data.split=holdout", "data.val_size=16", "trainer.precision=bf16-mixed")
    info = train(tiny_cfg(tmp_path, *extra))
    curves = read_curves(folder_of(tmp_path, *extra))
    val = curves[(curves.split == "val") & (curves.metric == "error")]
    assert list(val.step) == [4, 8, 12] and info["final_val_error"] == val.value.iloc[-1]
    assert info["status"] == "done" and "bf16-mixed" in info["device"]
