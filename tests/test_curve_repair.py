"""A damaged curve part of a finished run is rebuilt, exactly, from the rows its checkpoint carries."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
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


IDS = {"run_id": "resnet-8-A-synthetic-smoke-s0-aaaaaaaa", "arch": "resnet", "depth": 8, "shortcut": "A",
       "dataset": "synthetic", "preset": "smoke", "seed": 0}


def _hand_made_run(results: Path, parts: dict[int, list[int]], iteration: int, extra: list[int] = ()):
    """A finished run folder built without training: for each part step, the steps whose (train, test) error rows
    it holds, and a checkpoint at `iteration` carrying every row (and those of the `extra` steps)."""
    from _sweep_helpers import write_run_json

    from degradation.store.runs import CHECKPOINT
    from degradation.train.curvewriter import CurveWriter, write_part

    folder = results / "runs" / IDS["run_id"]
    write_run_json(folder, status="done", iteration=iteration, total_iters=iteration)
    writer = CurveWriter(folder, IDS, batch_size=2, train_size=10)
    for part, steps in parts.items():
        for step in steps:
            writer.add(step, "train", "error", 1 / step, step * 0.5)
            writer.add(step, "test", "error", 2 / step, step * 0.5)
        write_part(writer.dir / f"part-{part:09d}.parquet", IDS, writer.rows)
        writer.rows.clear()
    for step in extra:
        writer.add(step, "train", "error", 1 / step, step * 0.5)
    (folder / CHECKPOINT).parent.mkdir(parents=True)
    torch.save({"degradation": {"iteration": iteration, "curves": writer.history_state()}}, folder / CHECKPOINT)
    return folder, writer.history


def _rows(path: Path) -> list[tuple]:
    return sorted(pd.read_parquet(path, columns=["step", "split", "metric", "value"]).itertuples(index=False,
                                                                                               name=None))


def test_damaged_parts_come_back_as_one_part_holding_their_rows_and_intact_parts_are_untouched(tmp_path, capsys):
    """Two of three parts truncated (the first among them): their rows come back in one part named after the last
    step they held, the intact part keeps its bytes, both damaged files are named in the warning."""
    results = tmp_path / "results"
    folder, history = _hand_made_run(results, {4: [2, 4], 8: [6, 8], 12: [10, 12]}, iteration=12)
    curves = folder / "curves"
    intact = (curves / "part-000000012.parquet").read_bytes()
    for part in ("part-000000004.parquet", "part-000000008.parquet"):
        (curves / part).write_bytes((curves / part).read_bytes()[:100])
    collect(results)
    err = capsys.readouterr().err
    assert (f"{folder.name}: rebuilt 1 curve part(s) from its checkpoint (damaged part(s) kept as "
            f"part-000000004.parquet.damaged, part-000000008.parquet.damaged)") in err
    assert sorted(p.name for p in curves.iterdir()) == [
        "part-000000004.parquet.damaged", "part-000000008.parquet", "part-000000008.parquet.damaged",
        "part-000000012.parquet"]
    assert (curves / "part-000000012.parquet").read_bytes() == intact
    assert [r[0] for r in _rows(curves / "part-000000008.parquet")] == [2, 2, 4, 4, 6, 6, 8, 8]
    assert _rows(results / "curves.parquet") == sorted((r[0], r[2], r[3], r[4]) for r in history)


def test_a_rebuilt_part_keeps_the_rows_of_a_readable_part_of_its_name(tmp_path: Path) -> None:
    """The rows to rebuild end at a step whose part is readable but lacks some of them: that part is rewritten
    with its own rows and the missing ones, nothing lost."""
    from degradation.store.results import ID_FIELDS
    from degradation.train.curvewriter import rebuild_parts

    assert set(IDS) == set(ID_FIELDS)
    results = tmp_path / "results"
    folder, history = _hand_made_run(results, {4: [2, 4], 8: [6, 8]}, iteration=8)
    last = folder / "curves" / "part-000000008.parquet"
    table = pq.read_table(last)
    pq.write_table(table.filter(pc.equal(table["split"], "train")), last)  # its test rows lost
    repair = rebuild_parts(folder, IDS)
    assert repair is not None and repair.written == [last] and repair.set_aside == []
    assert _rows(last) == sorted((r[0], r[2], r[3], r[4]) for r in history if r[0] > 4)


def test_rows_past_the_checkpoint_are_left_to_the_resumed_run(tmp_path: Path) -> None:
    """Rows the checkpoint carries beyond its iteration are not written: the resumed run recomputes them."""
    from degradation.train.curvewriter import rebuild_parts

    folder, history = _hand_made_run(tmp_path, {4: [2, 4]}, iteration=4, extra=[6, 8])
    part = folder / "curves" / "part-000000004.parquet"
    part.write_bytes(part.read_bytes()[:100])
    repair = rebuild_parts(folder, IDS)
    assert repair is not None and repair.written == [part]
    assert [r[0] for r in _rows(part)] == [2, 2, 4, 4]
    assert sorted(p.name for p in part.parent.iterdir()) == ["part-000000004.parquet",
                                                             "part-000000004.parquet.damaged"]


def test_a_damaged_part_of_a_run_with_a_corrupt_run_json_is_left_as_it_is(tmp_path: Path, capsys) -> None:
    """Without a readable run.json the run's identity is unknown: nothing is rebuilt (no part of a nameless run),
    the gap is reported, and collect goes on."""
    results = tmp_path / "results"
    folder, _ = _hand_made_run(results, {4: [2, 4], 8: [6, 8]}, iteration=8)
    (folder / "run.json").write_text('{"status": "do')
    part = folder / "curves" / "part-000000004.parquet"
    part.write_bytes(part.read_bytes()[:100])
    collect(results)
    assert "a damaged curve part cannot be rebuilt" in capsys.readouterr().err
    assert sorted(p.name for p in part.parent.iterdir()) == ["part-000000004.parquet", "part-000000008.parquet"]
    curves = pd.read_parquet(results / "curves.parquet")
    assert list(curves["step"].unique()) == [6, 8] and set(curves["run_id"]) == {folder.name}


def test_a_checkpoint_written_on_a_gpu_repairs_curves_where_collect_runs_without_one(tmp_path, monkeypatch) -> None:
    """Runs trained on a GPU are often collected on a machine without one: the checkpoint's tensors (its weights)
    are read onto the CPU, so its curve rows still rebuild a damaged part."""
    import torch.serialization as serialization

    from degradation.store.runs import CHECKPOINT
    from degradation.train.curvewriter import rebuild_parts

    folder, _ = _hand_made_run(tmp_path, {4: [2, 4]}, iteration=4)
    state = torch.load(folder / CHECKPOINT, weights_only=True)
    state["state_dict"] = {"fc.weight": torch.ones(2, 2)}
    with monkeypatch.context() as patch:  # tag the weights as a GPU's, as torch.save does on a GPU
        registry = [(0, lambda storage: "cuda:0", lambda storage, location: None), *serialization._package_registry]
        patch.setattr(serialization, "_package_registry", registry)
        torch.save(state, folder / CHECKPOINT)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA"):  # what reading it as it was saved would do here
        torch.load(folder / CHECKPOINT, weights_only=True)
    part = folder / "curves" / "part-000000004.parquet"
    part.write_bytes(part.read_bytes()[:100])
    repair = rebuild_parts(folder, IDS)
    assert repair is not None and repair.written == [part] and len(_rows(part)) == 4


def test_a_readable_part_of_another_layout_is_set_aside_and_rebuilt(tmp_path: Path) -> None:
    """A part that parquet reads but that lacks a curve column (another tool's file) cannot be merged: it is set
    aside like a truncated one and its rows rebuilt, not a crash."""
    from degradation.train.curvewriter import rebuild_parts

    folder, _ = _hand_made_run(tmp_path, {4: [2, 4], 8: [6, 8]}, iteration=8)
    part = folder / "curves" / "part-000000004.parquet"
    table = pq.read_table(part)
    pq.write_table(table.rename_columns(["phase" if c == "split" else c for c in table.column_names]), part)
    repair = rebuild_parts(folder, IDS)
    assert repair is not None and repair.written == [part]
    assert repair.set_aside == [part.with_name(part.name + ".damaged")]
    assert [r[0] for r in _rows(part)] == [2, 2, 4, 4]
