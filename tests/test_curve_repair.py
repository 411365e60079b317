"""A damaged curve part of a finished run is rebuilt, exactly, from the rows its checkpoint carries."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from _train_helpers import folder_of

from degradation.store.results import collect


def _curves(results: Path) -> pd.DataFrame:
    return pd.read_parquet(results / "curves.parquet").drop(columns="wall_s")


def test_checkpoint_carries_every_curve_row(finished: Path) -> None:
    folder = folder_of(finished)
    saved = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["degradation"]["curves"]
    assert len(saved["step"]) == len(_curves(finished)) > 0


@pytest.mark.parametrize("which", [0, 1, -1])
def test_collect_rebuilds_a_truncated_part(finished: Path, results: Path, which: int, capsys) -> None:
    parts = sorted((folder_of(results) / "curves").glob("part-*.parquet"))
    assert len(parts) >= 3
    parts[which].write_bytes(parts[which].read_bytes()[:100])
    collect(results)
    err = capsys.readouterr().err
    assert "rebuilt 1 curve part(s) from its checkpoint" in err
    pd.testing.assert_frame_equal(_curves(results), _curves(finished))
    assert parts[which].with_name(parts[which].name + ".damaged").exists()  # kept aside, no longer read
    collect(results)  # repaired for good: the next collect has nothing to say
    assert "rebuilt" not in capsys.readouterr().err
    pd.testing.assert_frame_equal(_curves(results), _curves(finished))


def test_a_checkpoint_without_rows_leaves_the_gap_and_says_what_to_do(results: Path, capsys) -> None:
    folder = folder_of(results)
    ckpt = folder / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)
    del state["degradation"]["curves"]  # as written before checkpoints carried the rows
    torch.save(state, ckpt)
    part = sorted((folder / "curves").glob("part-*.parquet"))[0]
    rows = len(pd.read_parquet(part))
    before = len(pd.read_parquet(results / "curves.parquet"))
    part.write_bytes(part.read_bytes()[:100])
    collect(results)
    err = capsys.readouterr().err
    assert "cannot be rebuilt" in err and f"delete {folder}" in err
    assert len(pd.read_parquet(results / "curves.parquet")) == before - rows


def test_each_row_carries_its_epoch_and_the_history_round_trips_through_a_checkpoint(tmp_path: Path) -> None:
    """epoch = step x batch / train images (the x axis in epochs); the rows a checkpoint carries restore as they
    were, and a resumed writer appends to them."""
    from degradation.train.curvewriter import ROW_FIELDS, CurveWriter

    writer = CurveWriter(tmp_path, {"run_id": "r"}, batch_size=128, train_size=45000)
    assert writer.history_state() == {name: [] for name in ROW_FIELDS}  # a checkpoint before the first window
    writer.add(351, "train", "error", 0.5, 12.0)
    writer.add(702, "test", "error", 0.25, 30.0)
    assert writer.rows[0] == (351, pytest.approx(351 * 128 / 45000), "train", "error", 0.5, 12.0)
    state = writer.history_state()
    assert state["step"] == [351, 702] and state["split"] == ["train", "test"]
    resumed = CurveWriter(tmp_path, {"run_id": "r"}, batch_size=128, train_size=45000)
    resumed.restore_history(state)
    resumed.add(1053, "train", "error", 0.125, 40.0)
    assert resumed.history == writer.history + [resumed.rows[0]] and len(resumed.rows) == 1


def test_a_checkpoint_holding_arbitrary_objects_is_not_unpickled_to_repair_curves(tmp_path: Path) -> None:
    """collect reads checkpoints from results folders that may have been copied from elsewhere: weights only, never
    code (a pickle's objects); such a checkpoint cannot help, and rebuild_parts says so with None."""
    from pathlib import PurePosixPath

    from degradation.store.results import ID_FIELDS
    from degradation.store.runs import CHECKPOINT
    from degradation.train.curvewriter import CurveWriter, rebuild_parts

    ids = {"run_id": "r", "arch": "resnet", "depth": 8, "shortcut": "A", "dataset": "synthetic", "preset": "smoke",
           "seed": 0}
    assert set(ids) == set(ID_FIELDS)
    writer = CurveWriter(tmp_path, ids, batch_size=2, train_size=10)
    writer.add(2, "train", "error", 0.5, 1.0)
    ckpt = tmp_path / CHECKPOINT
    ckpt.parent.mkdir(parents=True)
    state = {"iteration": 2, "curves": writer.history_state()}
    torch.save({"degradation": state}, ckpt)
    repair = rebuild_parts(tmp_path, ids)
    assert repair is not None and len(repair.written) == 1  # plain rows and numbers: the lost part is rebuilt
    repair.written[0].unlink()
    torch.save({"degradation": state, "extra": PurePosixPath("/somewhere")}, ckpt)
    assert rebuild_parts(tmp_path, ids) is None
