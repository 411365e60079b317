"""The fast part of the fault-and-abuse suite (benchmarks/faults.py runs all of it, with real sweeps and kills).

Bad arguments run in this process through `degradation.cli.main`; corrupt state and a full disk are made on a
tiny finished run (about a second to train), then the tool is asked to read, collect or resume it.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import shutil
import socket
import sys
from pathlib import Path

import pandas as pd
import pytest
from _sweep_helpers import dead_pid
from _train_helpers import ROOT, folder_of, run_json, tiny

from degradation.cli import main
from degradation.store.runs import read_curves
from degradation.train.app import run_from_args

_spec = importlib.util.spec_from_file_location("faults", ROOT / "benchmarks" / "faults.py")
faults = importlib.util.module_from_spec(_spec)
sys.modules["faults"] = faults
_spec.loader.exec_module(faults)


def one_line(capsys, code: int, expected: int = 2, only: bool = True) -> str:
    """The error line; `only`: it is the whole of stderr (else it is the last line, after progress notes)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == expected, err
    assert lines and (len(lines) == 1 or not only) and "Traceback" not in err, err
    assert lines[-1].startswith("error: "), err
    return lines[-1]


# ---- 4. bad arguments: exit 2 and one line, for every command ------------------------------------------------
@pytest.mark.parametrize("args", faults.bad_arguments(Path("/tmp/degradation-faults-missing")), ids=" ".join)
def test_bad_arguments_exit_2_with_one_line(args, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    missing = Path("/tmp/degradation-faults-missing")
    args = tuple(a.replace(str(missing), str(tmp_path / "missing")) for a in args)
    line = one_line(capsys, main(list(args)))
    assert line.startswith("error: ")
    assert not (tmp_path / "missing").exists() and not (tmp_path / "results").exists()


# `finished` (a tiny finished run) and `results` (a copy of it to damage) come from conftest.py.


def _partial(results: Path) -> Path:
    folder = folder_of(results)
    info = run_json(folder)
    info.update(status="partial")
    (folder / "run.json").write_text(json.dumps(info))
    return folder


# ---- 1. a kill during a checkpoint or part write leaves temp files: the rerun drops them, same curves ---------
def test_kill_during_writes_leaves_temps_that_a_rerun_drops(results, finished, capsys) -> None:
    folder = _partial(results)
    (folder / "checkpoints" / ".last.ckpt.tmp").write_bytes(b"half a checkpoint")
    (folder / "curves" / ".part-000000016.parquet.abc.tmp").write_bytes(b"PAR1 half")
    (folder / f".run.json~{socket.gethostname()}~{dead_pid()}~abc.tmp").write_text('{"status": "ru')
    assert run_from_args(tiny(results)) == 0
    assert not list(folder.rglob("*.tmp"))
    pd.testing.assert_frame_equal(read_curves(folder).drop(columns="wall_s"),
                                  read_curves(folder_of(finished)).drop(columns="wall_s"))


def test_collect_removes_temps_of_dead_writers_only(results, capsys) -> None:
    host = socket.gethostname()
    dead = results / f".curves.parquet~{host}~{dead_pid()}~x1.tmp"
    live = results / f".runs.parquet~{host}~{os.getpid()}~x2.tmp"
    other_host = results / f".runs.parquet~not-{host}~{dead_pid()}~x3.tmp"
    for path in (dead, live, other_host):
        path.write_bytes(b"half")
    assert main(["collect", "--results", str(results)]) == 0
    assert not dead.exists() and live.exists() and other_host.exists()


def test_a_write_removes_its_files_leftover_from_a_killed_writer(tmp_path) -> None:
    from degradation.store.io import write_text_atomic

    host = socket.gethostname()
    mine = tmp_path / f".summary.md~{host}~{dead_pid()}~x1.tmp"
    other = tmp_path / f".table6.md~{host}~{dead_pid()}~x2.tmp"
    mine.write_text("half"), other.write_text("half")
    write_text_atomic(tmp_path / "summary.md", "whole\n")
    assert (tmp_path / "summary.md").read_text() == "whole\n"
    assert not mine.exists() and other.exists()


# ---- 3. corrupt state -----------------------------------------------------------------------------------------
def test_truncated_checkpoint_restarts_the_run_and_says_so(results, finished, capsys) -> None:
    folder = _partial(results)
    ckpt = folder / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    assert run_from_args(tiny(results)) == 0
    log = (folder / "train.log").read_text()
    assert "cannot be read" in log and "starting over" in log
    assert list((folder / "checkpoints").glob("last.ckpt.corrupt*")), "the damaged file is kept aside"
    assert run_json(folder)["status"] == "done"
    pd.testing.assert_frame_equal(read_curves(folder).drop(columns="wall_s"),
                                  read_curves(folder_of(finished)).drop(columns="wall_s"))


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_a_lost_part_of_a_partial_run_restarts_it(results, finished, capsys, damage) -> None:
    folder = _partial(results)
    part = sorted((folder / "curves").glob("part-*.parquet"))[0]
    part.unlink() if damage == "delete" else part.write_bytes(part.read_bytes()[:100])
    assert run_from_args(tiny(results)) == 0
    assert "were lost; rebuilt from the checkpoint" in (folder / "train.log").read_text()  # no restart needed
    pd.testing.assert_frame_equal(read_curves(folder).drop(columns="wall_s"),
                                  read_curves(folder_of(finished)).drop(columns="wall_s"))


def test_a_run_folder_removed_while_training_stops_the_run(tmp_path, capsys, monkeypatch) -> None:
    from degradation.train.folder import RunFolder

    real = RunFolder.checkpoint

    def removed_first(self, module, iteration):  # someone ran rm -rf on the results just before this checkpoint
        shutil.rmtree(self.path)
        return real(self, module, iteration)

    monkeypatch.setattr(RunFolder, "checkpoint", removed_first)
    line = one_line(capsys, run_from_args(tiny(tmp_path)))
    assert "lost its files while training" in line or "cannot write" in line
    folder = folder_of(tmp_path)  # nothing rebuilt half-empty: at most run.json, saying why the run stopped
    assert [p.name for p in folder.iterdir()] == ["run.json"] and run_json(folder)["status"] == "failed"


def test_truncated_part_is_skipped_with_a_warning(results, capsys) -> None:
    part = sorted((folder_of(results) / "curves").glob("part-*.parquet"))[-1]
    rows = len(pd.read_parquet(part))
    total = len(pd.read_parquet(results / "curves.parquet"))
    part.write_bytes(part.read_bytes()[:100])
    assert main(["collect", "--results", str(results)]) == 0
    err = capsys.readouterr().err
    assert f"warning: skipping {part}" in err and "rebuilt 1 curve part(s) from its checkpoint" in err
    assert "Traceback" not in err and rows > 0
    assert len(pd.read_parquet(results / "curves.parquet")) == total  # its rows came back from the checkpoint


def test_garbage_run_json_is_skipped_by_collect_and_rewritten_by_a_rerun(results, capsys) -> None:
    folder = folder_of(results)
    (folder / "run.json").write_text("{not json")
    assert main(["collect", "--results", str(results)]) == 0
    assert "warning: skipping" in capsys.readouterr().err
    assert run_from_args(tiny(results)) == 0
    assert run_json(folder)["status"] == "done"


@pytest.mark.parametrize("version", [0, 99])
def test_other_schema_version_is_skipped_not_trained_over(results, capsys, version) -> None:
    folder = _partial(results)
    info = run_json(folder)
    info["schema_version"] = version
    (folder / "run.json").write_text(json.dumps(info))
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert main(["collect", "--results", str(results)]) == 0
    assert f"schema_version {version}" in capsys.readouterr().err
    assert pd.read_parquet(results / "runs.parquet").empty
    assert one_line(capsys, run_from_args(tiny(results))).startswith("error: ")
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


# ---- 2. a full disk (every atomic write fsyncs before its rename) ---------------------------------------------
def _disk_full(fd: int) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("command", ["collect", "plot"])
def test_disk_full_is_one_line_and_leaves_earlier_tables(results, capsys, monkeypatch, command) -> None:
    tables = {name: (results / name).read_bytes() for name in ("curves.parquet", "runs.parquet")}
    monkeypatch.setattr(os, "fsync", _disk_full)
    line = one_line(capsys, main([command, "--results", str(results)]), only=False)
    assert "No space left on device" in line
    assert {name: (results / name).read_bytes() for name in tables} == tables
    assert not list(results.rglob("*.tmp"))


def test_disk_full_while_training_is_one_line_and_keeps_the_checkpoint(results, capsys, monkeypatch) -> None:
    folder = _partial(results)
    ckpt = (folder / "checkpoints" / "last.ckpt").read_bytes()
    monkeypatch.setattr(os, "fsync", _disk_full)
    code = run_from_args(tiny(results))
    assert code in (1, 2)
    assert "No space left on device" in one_line(capsys, code, code)
    assert (folder / "checkpoints" / "last.ckpt").read_bytes() == ckpt
    assert not (folder / ".lock").exists()


def test_disk_full_mid_run_is_one_line_and_leaves_no_half_file(tmp_path, capsys, monkeypatch) -> None:
    calls = []

    def fills_up(fd: int) -> None:  # lock, config.yaml and the first run.json fit; the first checkpoint does not
        calls.append(fd)
        if len(calls) > 3:
            _disk_full(fd)

    monkeypatch.setattr(os, "fsync", fills_up)
    code = run_from_args(tiny(tmp_path))
    assert "No space left on device" in one_line(capsys, code, code)
    folder = folder_of(tmp_path)
    assert code in (1, 2) and len(calls) > 3
    assert not list(folder.rglob("*.tmp")) and not (folder / ".lock").exists()
    assert run_json(folder)["status"] in ("running", "failed")  # the last run.json that fitted, whole


# ---- 1. the real thing: kill -9 a sweep mid-checkpoint, rerun, compare with a clean sweep (about a minute) ----
@pytest.mark.slow
@pytest.mark.parametrize("moment", ["checkpoint write", "collect"])
def test_kill_9_sweep_then_rerun_equals_a_clean_sweep(tmp_path, moment) -> None:
    import random

    clean = tmp_path / "clean"
    assert faults.run(faults.sweep_args(clean)).returncode == 0
    case = faults.kill_sweep_case(tmp_path, clean, moment, random.Random(0))
    assert case.passed and case.lost == 0, case
