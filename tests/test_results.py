"""Collecting run folders into curves.parquet and runs.parquet; `degradation collect` and `degradation status`."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _sweep_helpers import dead_pid, write_part, write_run_json

from degradation.cli import main
from degradation.errors import UsageError, first_line
from degradation.store.results import collect, load_curves, load_runs, read_runs
from degradation.store.runs import effective_status, record_failure
from degradation.store.schema import (
    CURVE_COLUMNS,
    CURVES_SCHEMA,
    LAYER_COLUMNS,
    LAYERS_SCHEMA,
    RUN_COLUMNS,
    SCHEMA_VERSION,
)
from degradation.sweep.report import print_status


def two_runs(results):
    """A finished ResNet-8 (two parts, the second repeating a step) and a plain-8 killed at iteration 4."""
    done = results / "runs" / "resnet-8-A-synthetic-smoke-s0-aaaaaaaa"
    write_run_json(done, status="done")
    write_part(done, 4, [(2, "train", "error", 0.9), (4, "train", "error", 0.8), (4, "test", "error", 0.85)])
    write_part(done, 8, [(4, "test", "error", 0.7), (6, "train", "error", 0.6), (8, "train", "error", 0.5)])
    partial = results / "runs" / "plain-8-synthetic-smoke-s0-bbbbbbbb"
    write_run_json(partial, status="running", iteration=4, arch="plain", shortcut="none", pid=dead_pid(),
                   final_test_error=None)
    write_part(partial, 4, [(2, "train", "error", 0.95), (4, "train", "error", 0.9)], arch="plain", shortcut="none")
    (partial / "checkpoints").mkdir()
    (partial / "checkpoints" / "last.ckpt").write_bytes(b"stand-in")  # its part at 4 came with a checkpoint
    return done, partial


def test_collect_merges_every_run_folder(tmp_path) -> None:
    results = tmp_path / "results"
    done, partial = two_runs(results)
    curves_path, runs_path = collect(results)
    assert (curves_path, runs_path) == (results / "curves.parquet", results / "runs.parquet")

    table = pq.read_table(curves_path)
    assert table.schema.metadata == {b"schema_version": str(SCHEMA_VERSION).encode()}
    curves = table.to_pandas()
    assert list(curves.columns) == list(CURVE_COLUMNS)
    assert str(curves["step"].dtype) == "int64" and str(curves["value"].dtype) == "float64"
    assert len(curves) == 5 + 2  # 6 rows of the done run, one (step 4, test) repeated
    test = curves[(curves.run_id == done.name) & (curves.split == "test")]
    assert test[["step", "value"]].values.tolist() == [[4, 0.7]]  # the later part wins
    train = curves[(curves.run_id == done.name) & (curves.split == "train")]
    assert list(train["step"]) == [2, 4, 6, 8]

    runs = pd.read_parquet(runs_path).set_index("run_id")
    assert list(runs.reset_index().columns) == list(RUN_COLUMNS)
    assert runs.loc[done.name, "status"] == "done" and runs.loc[done.name, "final_test_error"] == 0.6
    assert runs.loc[partial.name, "status"] == "partial"  # run.json said running; its process is gone
    assert "stopped at iteration 4" in runs.loc[partial.name, "reason"]
    assert pd.isna(runs.loc[partial.name, "final_test_error"])
    assert runs.loc[done.name, "run_dir"] == str(done)
    assert not list(results.glob(".*.tmp"))


def test_runs_of_earlier_sweeps_stay_and_new_ones_join(tmp_path) -> None:
    results = tmp_path / "results"
    two_runs(results)
    collect(results)
    later = results / "runs" / "resnet-14-A-synthetic-smoke-s0-cccccccc"
    write_run_json(later, status="done", depth=14)
    write_part(later, 4, [(4, "train", "error", 0.3)], depth=14)
    collect(results)
    assert sorted(load_runs(results)["depth"]) == [8, 8, 14]
    assert set(load_curves(results)["run_id"]) == {p.name for p in (results / "runs").iterdir()}


def test_a_corrupt_part_or_run_json_is_skipped_with_a_warning(tmp_path, capsys) -> None:
    results = tmp_path / "results"
    done, partial = two_runs(results)
    bad_part = done / "curves" / "part-000000012.parquet"
    bad_part.write_bytes(b"PAR1 not really")
    bad_json = results / "runs" / "resnet-20-A-synthetic-smoke-s0-dddddddd"
    write_part(bad_json, 4, [(4, "train", "error", 0.3)], depth=20)
    bad_json.joinpath("run.json").write_text('{"status": "do')
    collect(results)
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith(f"warning: skipping {bad_part}: ") for line in err), err
    assert any(line.startswith(f"warning: skipping {bad_json / 'run.json'}: not JSON") for line in err), err
    runs = load_runs(results)
    assert sorted(runs["run_id"]) == sorted([done.name, partial.name])
    assert bad_json.name in set(load_curves(results)["run_id"])  # its curves are intact: they stay


def test_a_run_that_died_without_saying_why_shows_the_sweeps_record(tmp_path) -> None:
    results = tmp_path / "results"
    _, partial = two_runs(results)
    record_failure(partial, {"run_id": partial.name}, "killed by signal 9: ")
    assert effective_status(json.loads((partial / "run.json").read_text()), partial) == (
        "failed", "killed by signal 9: ")
    never = results / "runs" / "resnet-32-A-synthetic-smoke-s0-eeeeeeee"
    never.mkdir()
    record_failure(never, {"run_id": never.name, "arch": "resnet", "depth": 32, "seed": 0}, "exit code 1: ImportError")
    runs = read_runs(results).set_index("run_id")
    assert runs.loc[never.name, "status"] == "failed" and runs.loc[never.name, "depth"] == 32
    write_run_json(partial, status="running", iteration=8, pid=dead_pid())  # a later attempt: newer than the record
    assert effective_status(json.loads((partial / "run.json").read_text()), partial)[0] == "partial"


def test_a_running_run_with_a_live_process_stays_running(tmp_path) -> None:
    import os

    run = tmp_path / "runs" / "r"
    info = write_run_json(run, status="running", iteration=3, pid=os.getpid())
    assert effective_status(info, run) == ("running", None)


def test_collect_with_nothing_to_collect_says_so(tmp_path, capsys) -> None:
    with pytest.raises(UsageError, match="no run folders under"):
        collect(tmp_path)
    assert main(["collect", "--results", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.startswith("error: no run folders under")


def test_loading_a_missing_or_corrupt_table_is_a_usage_error(tmp_path) -> None:
    with pytest.raises(UsageError, match="run `degradation collect"):
        load_curves(tmp_path)
    (tmp_path / "runs.parquet").write_text("not parquet")
    with pytest.raises(UsageError, match="is not a readable runs table"):
        load_runs(tmp_path)


def test_collect_and_status_commands(tmp_path, capsys) -> None:
    results = tmp_path / "results"
    done, partial = two_runs(results)
    assert main(["collect", "--results", str(results)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {results / 'curves.parquet'} and {results / 'runs.parquet'}"
    assert main(["status", "--results", str(results), "--wide"]) == 0
    out = capsys.readouterr().out
    done_row = next(line for line in out.splitlines() if done.name in line)
    assert "done" in done_row and "12/12" in done_row and "50.00%" in done_row and "60.00%" in done_row
    partial_row = next(line for line in out.splitlines() if partial.name in line)
    assert "partial: stopped at iteration 4" in partial_row and "4/12" in partial_row
    assert out.strip().endswith("1 done, 1 partial")


def test_status_of_a_missing_or_empty_results_folder(tmp_path, capsys) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        print_status(tmp_path / "nope")
    print_status(tmp_path)
    assert "no runs under" in capsys.readouterr().out


def test_a_hand_written_run_json_gets_its_folder_name_log_and_an_own_variant(tmp_path) -> None:
    """run.json written by hand (no run_id, log_path nor variant) still names its run by its folder, points at the
    folder's train.log and is a variant of its own; what run.json does record (a log elsewhere, the variant, the
    warm-up's end) is kept as it says."""
    results = tmp_path / "results"
    bare = results / "runs" / "resnet-8-A-synthetic-smoke-s1-ffffffff"
    info = write_run_json(bare, seed=1)
    for key in ("run_id", "log_path"):
        info.pop(key)
    (bare / "run.json").write_text(json.dumps(info))
    recorded = results / "runs" / "resnet-8-A-synthetic-smoke-s2-99999999"
    write_run_json(recorded, seed=2, run_id="given-id", log_path="/elsewhere/given.log", variant="v123",
                   warmup=True, warmup_ended_at=400)
    runs = read_runs(results)
    assert list(runs["run_id"]) == [bare.name, "given-id"]
    bare_row, recorded_row = runs.iloc[0], runs.iloc[1]
    assert bare_row["log_path"] == str(bare / "train.log")
    assert bare_row["variant"] == f"run:{bare.name}"  # never pooled with another run
    assert bare_row["warmup"] == "-"  # written before the warm-up was recorded
    assert recorded_row["log_path"] == "/elsewhere/given.log"
    assert recorded_row["variant"] == "v123" and recorded_row["warmup"] == "ended at 400"


def test_collect_before_any_run_wrote_a_part_writes_empty_tables_with_the_columns(tmp_path) -> None:
    """Every run failed before its first checkpoint: collect still writes curves and layers tables a reader can
    open (no rows, the columns and types of the schema), not a crash."""
    results = tmp_path / "results"
    never = results / "runs" / "resnet-32-A-synthetic-smoke-s0-eeeeeeee"
    never.mkdir(parents=True)
    record_failure(never, {"run_id": never.name, "arch": "resnet", "depth": 32, "seed": 0}, "exit code 1: ImportError")
    collect(results)
    curves = pq.read_table(results / "curves.parquet")
    assert curves.num_rows == 0 and curves.schema.equals(CURVES_SCHEMA)
    layers = pq.read_table(results / "layers.parquet")
    assert layers.num_rows == 0 and layers.schema.equals(LAYERS_SCHEMA)
    assert list(load_runs(results)["run_id"]) == [never.name]


def _layers_part(run_dir, step: int, rows: list[tuple[int, int, str, float]]):
    """layers/part-<step>.parquet with rows (step, layer_index, metric, value) of the run `run_dir.name`."""
    ids = {"run_id": run_dir.name, "arch": "resnet", "depth": 8, "shortcut": "A", "dataset": "synthetic",
           "preset": "smoke", "seed": 0}
    data = {key: [value] * len(rows) for key, value in ids.items()}
    data.update(step=[r[0] for r in rows], layer_index=[r[1] for r in rows],
                layer=[f"layer{r[1]}" for r in rows], stage=["stage1"] * len(rows), metric=[r[2] for r in rows],
                value=[r[3] for r in rows])
    path = run_dir / "layers" / f"part-{step:09d}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(data, schema=LAYERS_SCHEMA), path)
    return path


def test_collect_gathers_every_runs_layers_parts_the_last_row_of_each_kept(tmp_path, capsys) -> None:
    """layers.parquet: every run's layers rows, sorted by run, metric, step and layer; a (run, step, layer,
    metric) written again by a later part keeps the later value; a foreign folder's parts are left out and a
    truncated part is skipped with a warning that says why."""
    results = tmp_path / "results"
    done, partial = two_runs(results)
    _layers_part(done, 4, [(4, 2, "grad_norm", 2.0), (4, 1, "grad_norm", 1.0), (4, 1, "update_ratio", 0.1)])
    _layers_part(done, 8, [(4, 1, "grad_norm", 1.5), (8, 1, "grad_norm", 3.0)])
    bad = _layers_part(partial, 4, [(4, 1, "grad_norm", 9.0)])
    bad.write_bytes(bad.read_bytes()[:40])
    with pytest.raises(Exception) as why:  # what the warning must quote
        pq.read_table(bad)
    foreign = results / "runs" / "resnet-8-A-synthetic-smoke-s0-00000000"
    write_run_json(foreign, schema_version=SCHEMA_VERSION + 1)
    _layers_part(foreign, 4, [(4, 1, "grad_norm", 7.0)])
    collect(results)
    err = capsys.readouterr().err.splitlines()
    assert f"warning: skipping {bad}: {first_line(why.value)}" in err, err
    layers = pq.read_table(results / "layers.parquet").to_pandas()
    assert list(layers.columns) == list(LAYER_COLUMNS)
    got = layers[["run_id", "step", "layer_index", "metric", "value"]].values.tolist()
    assert got == [[done.name, 4, 1, "grad_norm", 1.5], [done.name, 4, 2, "grad_norm", 2.0],
                   [done.name, 8, 1, "grad_norm", 3.0], [done.name, 4, 1, "update_ratio", 0.1]]
