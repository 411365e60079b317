"""Everyday use of the command line: tables that fit 80 columns, the Hydra habits people bring, and messages
that say what to type instead (issue 17)."""

from __future__ import annotations

import re
import shutil

import pytest
from _sweep_helpers import dead_pid, sweep_args, write_run_json

from degradation.cli import main
from degradation.store.results import collect
from degradation.sweep.columns import short_id
from degradation.sweep.plan import build_plan
from degradation.sweep.request import SweepRequest

RUN_IDS = {  # two seeds of one net whose ids agree for their first 26 characters, and a plain net
    "s0": "plain-20-synthetic-smoke-s0-1111aaaa",
    "s1": "plain-20-synthetic-smoke-s1-2222bbbb",
    "res": "resnet-20-A-synthetic-smoke-s0-3333cccc",
}


@pytest.fixture
def cols80(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")


def three_runs(results):
    for key, rid in RUN_IDS.items():
        arch, shortcut = ("resnet", "A") if key == "res" else ("plain", "none")
        write_run_json(results / "runs" / rid, status="done", arch=arch, shortcut=shortcut, depth=20,
                       seed=1 if key == "s1" else 0)


def lines_of(out: str) -> list[str]:
    return out.splitlines()


def row_of(out: str, text: str) -> str:
    return next(line for line in lines_of(out) if text in line)


def test_status_at_80_columns_tells_runs_apart(tmp_path, capsys, cols80) -> None:
    results = tmp_path / "r"
    three_runs(results)
    assert main(["status", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in lines_of(out)) <= 80
    header = row_of(out, " arch ")
    assert re.search(r"id\s+arch\s+depth\s+sc\s+seed\s+status", header)
    s0, s1 = row_of(out, short_id(RUN_IDS["s0"])), row_of(out, short_id(RUN_IDS["s1"]))
    assert re.search(r"plain\s+20\s+-\s+0\s+done\s+12/12", s0)
    assert re.search(r"plain\s+20\s+-\s+1\s+done\s+12/12", s1)
    assert re.search(r"resnet\s+20\s+A\s+0\s+done", row_of(out, short_id(RUN_IDS["res"])))
    assert "…" not in out  # nothing cut short
    assert "runs in" in out and "(synthetic, smoke)" in " ".join(out.split())  # said once (the title may wrap)
    assert "full run ids, best test error, warm-up, wall, img/s, device: --wide" in out


def test_status_wide_shows_full_ids_one_line_per_run(tmp_path, capsys, cols80) -> None:
    results = tmp_path / "r"
    three_runs(results)
    assert main(["status", "--results", str(results), "--wide"]) == 0
    out = capsys.readouterr().out
    for rid in RUN_IDS.values():
        assert "12/12" in row_of(out, rid) and "img/s" in out  # the whole id on the row, every column


def test_a_column_for_data_and_preset_when_they_differ(tmp_path, capsys, cols80) -> None:
    results = tmp_path / "r"
    three_runs(results)
    write_run_json(results / "runs" / "plain-20-synthetic-demo-s0-4444dddd", status="done", arch="plain",
                   shortcut="none", depth=20, preset="demo")
    assert main(["status", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"seed\s+preset\s+status", row_of(out, " arch "))
    assert re.search(r"0\s+demo\s+done", row_of(out, "4444dddd"))


def test_a_run_stopped_before_its_first_checkpoint_restarts(tmp_path, capsys, cols80) -> None:
    results = tmp_path / "r"
    request = SweepRequest.from_cli(["8"], ["resnet"], ["0"], ["A"], "synthetic", "smoke", None, "local", True,
                                    results, ["data.train_size=64", "data.test_size=32"])
    cell = build_plan(request, probe=False).cells[0]
    write_run_json(cell.run_dir, status="partial", iteration=4, reason="interrupted at iteration 4",
                   pid=dead_pid())  # what Ctrl-C at iteration 4 leaves: no checkpoint (the first is at 4... later)
    assert main(["status", "--results", str(results)]) == 0
    row = row_of(capsys.readouterr().out, short_id(cell.run_id))
    assert "restarts (no checkpoint yet)" in row and "0/12" in row and "partial" not in row
    plan = build_plan(request, probe=False)
    state = plan.states[cell.run_id]
    assert state.label == "restarts (no checkpoint yet)" and state.iteration == 0
    assert plan.counts()["to restart (no checkpoint yet)"] == 1 and plan.counts()["to resume"] == 0
    (cell.run_dir / "checkpoints").mkdir()
    (cell.run_dir / "checkpoints" / "last.ckpt").write_bytes(b"stand-in")
    assert build_plan(request, probe=False).states[cell.run_id].label == "partial at iteration 4"


def test_plan_table_at_80_columns(tmp_path, capsys, cols80) -> None:
    assert main(sweep_args(tmp_path / "r", "--dry-run", "--depths", "8,14", "--seeds", "0,1")) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in lines_of(out)) <= 80
    assert re.search(r"id\s+arch\s+depth\s+sc\s+seed\s+status\s+params\s+est\. time", out)
    for arch, depth, sc, seed in (("plain", 8, "-", 0), ("plain", 8, "-", 1), ("resnet", 14, "A", 1)):
        assert re.search(rf"^[0-9a-f]{{8}} {arch}\s+{depth} {sc}\s+{seed} new", out, re.M), (arch, depth, seed)
    assert "(synthetic, smoke)" in " ".join(out.split()) and "…" not in out


def test_live_view_has_the_identifying_columns(cols80) -> None:
    from pathlib import Path

    from degradation.sweep.progress import RunWatch, SweepView
    from degradation.sweep.report import make_console

    ids = {"run_id": RUN_IDS["s1"], "arch": "plain", "depth": 20, "shortcut": "none", "seed": 1,
           "dataset": "synthetic", "preset": "smoke"}
    watch = RunWatch(RUN_IDS["s1"], Path("/nonexistent"), 12, 16, 5.0, ids=ids)
    console = make_console()
    with console.capture() as captured:
        console.print(SweepView([watch], 1, console, live=False)._table())
    out = captured.get()
    assert max(len(line) for line in lines_of(out)) <= 80
    assert re.search(r"2222bbbb plain\s+20 -\s+1 queued\s+0/12", out)


# ---- point 2: the Hydra habits ------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [["train", "-m", "model.depth=20,56"], ["train", "--multirun", "model.depth=20,56"],
                                  ["train", "model.depth=20,56"]])
def test_a_grid_on_train_names_the_sweep_command(args, tmp_path, capsys) -> None:
    assert main([*args, "data=synthetic", f"results_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.endswith(f"degradation sweep --archs resnet --depths 20,56 --seeds 0 --data synthetic --preset paper "
                        f"--results {tmp_path}")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("args", [["--cfg"], ["--cfg", "job"], ["-c", "job"], ["--cfg", "all"], ["--cfg=job"]])
def test_cfg_prints_the_config(args, capsys) -> None:
    assert main(["train", *args, "model=plain"]) == 0
    out = capsys.readouterr()
    assert "arch: plain" in out.out and "results_dir: results" in out.out
    assert ("no hydra section" in out.err) == ("all" in args)


@pytest.mark.parametrize(("args", "says"), [
    (["--cfg", "hydra"], "--cfg job"),
    (["--hydra-help"], "--cfg [job|all] and --info"),
    (["hydra.run.dir=/tmp/elsewhere"], "set results_dir=/tmp/elsewhere instead"),
    (["hydra.job.chdir=true"], "leave it out"),
    (["--cgf"], "did you mean --cfg?"),
])
def test_hydra_runner_flags_get_one_line(args, says, capsys) -> None:
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and says in err


def test_info_lists_the_config_groups(capsys) -> None:
    assert main(["train", "--info"]) == 0
    out = capsys.readouterr().out
    assert "model: plain, preact, resnet*" in out and "schedule: cpu, demo, " in out
    assert "paper*" in out and "smoke" in out


def test_hydra_run_dir_in_a_sweep_points_to_results(tmp_path, capsys) -> None:
    assert main(sweep_args(tmp_path / "r", "--dry-run", extra=("hydra.run.dir=/tmp/x",))) == 2
    assert "use --results /tmp/x" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("command", [[], ["status"], ["sweep"], ["plot"], ["models"]])
def test_h_is_help_everywhere(command, capsys) -> None:
    assert main([*command, "-h"]) == 0
    assert "--help" in capsys.readouterr().out


def test_version_names_the_git_revision(capsys) -> None:
    from degradation import __version__

    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"degradation {__version__} (git ")
    assert re.search(r"git [0-9a-f]{40}", out) or "not a git checkout" in out


# ---- point 3: messages that point the way -------------------------------------------------------------------
def test_an_option_after_dashes_says_options_go_before(tmp_path, capsys) -> None:
    args = ["sweep", "--results", str(tmp_path / "r"), "--", "schedule.lr=abc", "--dry-run"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--dry-run comes after `--`" in err and "put options before `--`" in err


@pytest.mark.parametrize(("args", "suggestion"), [
    (["sweep", "--depth", "20"], "did you mean --depths?"),
    (["sweep", "--seed", "1"], "did you mean --seeds?"),
    (["bench", "--itres", "3"], "did you mean --iters?"),
    (["status", "--result", "x"], "did you mean --results?"),
    (["plot", "--results", "x", "--outt", "y"], "did you mean --out?"),
    (["models", "--depth", "20"], "did you mean --depths?"),
    (["collect", "--resuls", "x"], "did you mean --results?"),
    (["plt"], "did you mean plot?"),
])
def test_close_matches_for_mistyped_options(args, suggestion, capsys) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and suggestion in err


def test_slurm_dry_run_needs_no_sbatch(tmp_path, capsys, monkeypatch) -> None:
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "sbatch" else real(name, *a, **k))
    results = tmp_path / "r"
    assert main(sweep_args(results, "--launcher", "slurm", "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "sweep plan" in out and "sbatch is not on this machine" in out
    assert not results.exists()
    assert main(sweep_args(results, "--launcher", "slurm")) == 2
    assert "sbatch not found" in capsys.readouterr().err


def test_status_of_a_file_says_it_is_a_file(tmp_path, capsys) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["status", "--results", str(afile)]) == 2
    assert "is a file, not a results folder" in capsys.readouterr().err


def test_plot_after_every_run_failed_names_the_failed_runs(tmp_path, capsys) -> None:
    results = tmp_path / "r"
    for rid in (RUN_IDS["s0"], RUN_IDS["s1"]):
        write_run_json(results / "runs" / rid, status="failed", iteration=0, arch="plain", shortcut="none",
                       reason="CUDA out of memory")
    collect(results)
    assert main(["plot", "--results", str(results)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "every run failed" in err
    assert f"{RUN_IDS['s0']} failed: CUDA out of memory" in err and RUN_IDS["s1"] in err
    assert "has no rows" not in err


def test_plot_names_unfinished_runs_when_none_logged(tmp_path, capsys) -> None:
    results = tmp_path / "r"
    write_run_json(results / "runs" / RUN_IDS["s0"], status="running", iteration=0, arch="plain", shortcut="none",
                   pid=dead_pid())
    collect(results)
    assert main(["plot", "--results", str(results)]) == 2
    assert "no run has logged a curve yet" in capsys.readouterr().err


def test_a_real_run_stopped_before_its_first_checkpoint_says_it_restarts(tmp_path, capsys, monkeypatch,
                                                                         cols80) -> None:
    from _train_helpers import folder_of, run_json, tiny_cfg, train_interrupted

    results = tmp_path / "r"
    train_interrupted(tiny_cfg(results), monkeypatch, at=2)  # smoke: first checkpoint at 4
    folder = folder_of(results)
    assert not (folder / "checkpoints" / "last.ckpt").exists()
    assert "restarts it (no checkpoint yet)" in run_json(folder)["reason"]
    assert main(["status", "--results", str(results)]) == 0
    row = row_of(capsys.readouterr().out, short_id(folder.name))
    assert "restarts (no checkpoint yet)" in row and "0/12" in row
