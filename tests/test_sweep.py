"""`degradation sweep`: bad input, the plan, the local launcher (stand-in and real trainer), SLURM via submitit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
from _sweep_helpers import (
    FAKE_TRAIN,
    TINY,
    dead_pid,
    fake_child_command,
    sweep_args,
    wait_for,
    write_part,
    write_run_json,
)

from degradation.cli import main
from degradation.compute import machine
from degradation.conf import compose, run_id
from degradation.errors import UsageError
from degradation.models import cifar_net, count_macs, count_params
from degradation.store.lock import pid_alive
from degradation.sweep import estimate
from degradation.sweep import plan as plan_mod
from degradation.sweep.api import SweepRequest
from degradation.sweep.columns import short_id
from degradation.sweep.estimate import run_seconds
from degradation.sweep.launch import child_command
from degradation.sweep.plan import build_plan
from degradation.sweep.report import long_sweep_note

ROOT = Path(__file__).resolve().parent.parent


def request(results: Path, **changes) -> SweepRequest:
    args = dict(depths=["8"], archs=["plain,resnet"], seeds=["0"], shortcuts=["A"], data="synthetic",
                preset="smoke", jobs=1, launcher="local", dry_run=False, results_dir=results, overrides=TINY)
    args.update(changes)
    return SweepRequest.from_cli(**args)


@pytest.fixture
def no_probe(monkeypatch):
    """Skip the throughput probe (real training steps): 0.1 ms per image."""
    monkeypatch.setattr(estimate, "probe_run", lambda cfg, kind, threads: 1e-4)


@pytest.fixture
def fake_train(tmp_path, monkeypatch):
    """Replace the child process by the stand-in trainer; returns a setter for each net's behaviour."""
    script = tmp_path / "fake_train.py"
    script.write_text(FAKE_TRAIN)

    def use(modes: dict[str, str]) -> None:
        monkeypatch.setattr("degradation.sweep.launch.child_command", fake_child_command(script, modes))

    return use


# ---- bad input: one line, exit 2, nothing created -------------------------------------------------------

BAD = [
    (["--depths", "21"], "depth 21 is not of the form 6n+2; nearest: 20 or 26"),
    (["--depths", ""], "--depths got an empty item"),
    (["--depths", "20,abc"], "'abc' is not a whole number"),
    (["--depths", "-4"], "depth -4 is too small"),
    (["--archs", "foo"], "unknown arch 'foo'"),
    (["--seeds", "-1"], "--seeds: -1 must be >= 0"),
    (["--jobs", "0"], "--jobs 0 must be >= 1"),
    (["--preset", "fast"], "unknown schedule 'fast'; choose from cpu, demo, imagenet, imagenet_quick, imagenet_smoke, "
                           "paper, quick, smoke"),
    (["--data", "imagenett"], "unknown data 'imagenett'; choose from cifar10, cifar100, imagefolder, imagenet, "
                              "synthetic"),
    (["--family", "alexnet"], "--family: "),
    (["--launcher", "pbs"], "unknown launcher 'pbs'; choose from local, slurm"),
    (["--shortcut", "D"], "unknown shortcut option 'D'"),
    (["--", "foo=1"], "unknown config key 'foo'"),
    (["--", "schedule.lr=abc"], "schedule.lr='abc' is not a number"),
    (["--", "seed=3"], "set seed with --seeds"),
    (["--bogus"], "unknown option --bogus"),
    (["--launcher", "slurm"], "sbatch not found"),
]


@pytest.mark.parametrize(("flags", "message"), BAD, ids=[" ".join(f) for f, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_creates_nothing(tmp_path, capsys, flags, message) -> None:
    results = tmp_path / "results"
    args = ["sweep", "--data", "synthetic", "--preset", "smoke", "--depths", "8", "--results", str(results)]
    code = main(args + flags)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and message in err, err
    assert not results.exists()


def test_bad_input_from_the_installed_command(tmp_path) -> None:
    results = tmp_path / "results"
    out = subprocess.run([str(ROOT / ".venv/bin/degradation"), "sweep", "--depths", "21", "--results", str(results)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip() == "error: --depths: depth 21 is not of the form 6n+2; nearest: 20 or 26"
    assert not results.exists()


def test_results_folder_that_is_a_file_is_refused(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is not a folder"):
        request(tmp_path / "file")


# ---- the plan ---------------------------------------------------------------------------------------------

def test_grid_expands_residual_nets_per_shortcut_and_plain_nets_once(tmp_path) -> None:
    req = request(tmp_path / "r", depths=["8,14"], seeds=["0,1"], shortcuts=["A", "B"])
    plan = build_plan(req, probe=False)
    cells = [(c.arch, c.depth, c.shortcut, c.seed) for c in plan.cells]
    assert len(cells) == 2 * 2 + 2 * 2 * 2 == len({c.run_id for c in plan.cells})
    assert sorted(c for c in cells if c[0] == "plain") == [("plain", d, "none", s) for d in (8, 14) for s in (0, 1)]
    assert {c[2] for c in cells if c[0] == "resnet"} == {"A", "B"}
    cell = next(c for c in plan.cells if (c.arch, c.depth, c.shortcut, c.seed) == ("resnet", 14, "B", 1))
    expected = compose(["model=resnet", "model.depth=14", "model.shortcut=B", "data=synthetic", "schedule=smoke",
                        "seed=1", *TINY])
    assert cell.run_id == run_id(expected)  # the sweep's run is the run `degradation train` would make
    assert cell.run_dir == tmp_path / "r" / "runs" / cell.run_id
    assert plan.params[cell.run_id] == count_params(cifar_net("resnet", 14, shortcut="B"))
    assert all(s.status == "new" for s in plan.states.values())
    assert not (tmp_path / "r").exists()


def test_dry_run_prints_the_plan_and_stops(tmp_path, capsys, no_probe) -> None:
    results = tmp_path / "r"
    assert main(sweep_args(results, "--dry-run", "--depths", "8,14")) == 0
    out = capsys.readouterr().out
    plan = build_plan(request(results, depths=["8,14"]), probe=False)
    for cell in plan.cells:
        row = next(line for line in out.splitlines() if short_id(cell.run_id) in line)
        assert "new" in row and ("75.3k" in row or "172.5k" in row)
    assert "4 new; estimated" in out and "probe: plain-8" in out and "scaled by multiply-adds" in out
    assert not results.exists()


def test_plan_reads_each_runs_state(tmp_path, no_probe) -> None:
    results = tmp_path / "r"
    req = request(results, depths=["8,14"])
    ids = {f"{c.arch}-{c.depth}": c for c in build_plan(req, probe=False).cells}
    write_run_json(ids["plain-8"].run_dir, status="done")
    write_run_json(ids["resnet-8"].run_dir, status="running", iteration=4, pid=dead_pid())  # killed
    (ids["resnet-8"].run_dir / "checkpoints").mkdir()
    (ids["resnet-8"].run_dir / "checkpoints" / "last.ckpt").write_bytes(b"stand-in")  # so it resumes at 4
    write_run_json(ids["plain-14"].run_dir, status="failed", iteration=6, reason="loss is nan at iteration 6")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_run_json(ids["resnet-14"].run_dir, status="running", iteration=2, pid=holder.pid)
        plan = build_plan(req)
    finally:
        holder.kill()
        holder.wait()
    labels = {key: plan.states[c.run_id].label for key, c in ids.items()}
    assert labels["plain-8"] == "done"
    assert labels["resnet-8"] == "partial at iteration 4"
    assert labels["plain-14"] == "failed at iteration 6: loss is nan at iteration 6 (retry)"
    assert labels["resnet-14"].startswith(f"running elsewhere (pid {holder.pid}")
    assert {c.run_id for c in plan.todo()} == {ids["plain-14"].run_id, ids["resnet-8"].run_id}
    assert plan.estimates[ids["plain-8"].run_id] == 0.0
    cfg = ids["resnet-8"].cfg
    assert plan.estimates[ids["resnet-8"].run_id] == pytest.approx(run_seconds(cfg, 4, 1e-4))
    assert plan.counts() == {"done": 1, "to resume": 1, "to restart (no checkpoint yet)": 0, "to retry": 1,
                             "new": 0, "running elsewhere": 1}


def test_one_probe_per_kind_of_net_scaled_by_multiply_adds(tmp_path, monkeypatch) -> None:
    probed = []
    monkeypatch.setattr(estimate, "probe_run", lambda cfg, kind, threads: probed.append(cfg.model.depth) or 1e-3)
    plan = build_plan(request(tmp_path, depths=["8,14,26"]))
    assert sorted(probed) == [8, 8]  # the cheapest plain and the cheapest residual net
    seconds = {(c.arch, c.depth): plan.estimates[c.run_id] for c in plan.cells}
    cfg = plan.cells[0].cfg
    ratio = count_macs(cifar_net("resnet", 26)) / count_macs(cifar_net("resnet", 8))
    assert seconds[("resnet", 26)] == pytest.approx(run_seconds(cfg, 0, 1e-3 * ratio))
    assert plan.estimate_source == "probe: plain-8 1000 img/s; probe: resnet-8 1000 img/s; " \
        "others scaled by multiply-adds"


def test_estimates_come_from_bench_parquet_when_present(tmp_path) -> None:
    results = tmp_path / "r"
    results.mkdir()
    pd.DataFrame({  # what `degradation bench` writes (no shortcut column: its residual nets use option A)
        "arch": ["plain", "resnet", "resnet", "resnet"], "depth": [8, 8, 8, 8],
        "device": ["cpu", "cpu", "NVIDIA H100 80GB HBM3", "cpu"], "threads": [1, 1, 16, 2],
        "tool_images_per_s": [1000.0, 500.0, 9000.0, 700.0],
    }).to_parquet(results / "bench.parquet")
    plan = build_plan(request(results, overrides=TINY), probe=False)  # trainer.threads=1: the 1-thread rows
    assert plan.estimate_source.startswith("measured: bench 20") and "plain-8 1000 img/s" in plan.estimate_source
    seconds = {c.arch: plan.estimates[c.run_id] for c in plan.cells}
    cfg = plan.cells[0].cfg
    assert seconds["plain"] == pytest.approx(run_seconds(cfg, 0, 1 / 1000))
    assert seconds["resnet"] == pytest.approx(run_seconds(cfg, 0, 1 / 500))
    assert plan.total_s == pytest.approx(sum(seconds.values()))  # one job at a time


def test_estimates_read_the_bench_rows_of_the_runs_precision(tmp_path) -> None:
    results = tmp_path / "r"
    results.mkdir()
    pd.DataFrame({  # `degradation bench --device cpu` writes an fp32 and a bf16-mixed row per network
        "arch": ["plain", "plain"], "depth": [8, 8], "device": ["cpu", "cpu"], "threads": [1, 1],
        "precision": ["32-true", "bf16-mixed"], "tool_images_per_s": [1000.0, 1600.0],
    }).to_parquet(results / "bench.parquet")
    fp32 = build_plan(request(results, archs=["plain"], overrides=TINY), probe=False)
    assert "plain-8 1000 img/s" in fp32.estimate_source
    bf16 = build_plan(request(results, archs=["plain"], overrides=[*TINY, "trainer.precision=bf16-mixed"]), probe=False)
    assert "plain-8 1600 img/s" in bf16.estimate_source
    tf32 = build_plan(request(results, archs=["plain"], overrides=[*TINY, "trainer.precision=tf32"]), probe=False)
    assert "measured" not in tf32.estimate_source  # no tf32 row: an fp32 figure is not borrowed


def test_run_time_counts_training_evaluation_and_startup() -> None:
    cfg = compose(["data=synthetic", "schedule=smoke", "data.test_size=300"])  # 12 iters of 16; eval every 4
    per_image = 0.01
    assert run_seconds(cfg, 0, per_image) == pytest.approx(12 * 16 * 0.01 + 4 * 300 * 0.01 / 3 + 10)
    assert run_seconds(cfg, 12, per_image) == 0.0


def test_a_long_sweep_says_so_and_names_the_quicker_preset(tmp_path) -> None:
    plan = build_plan(request(tmp_path, preset="paper", data="cifar10", overrides=[]), probe=False)
    plan.total_s = 3.2 * 86400
    note = long_sweep_note(plan)
    assert "3.2 days" in note and "--preset quick (about 7h 40m)" in note
    plan.total_s = 3600
    assert long_sweep_note(plan) is None


def test_probe_times_real_training_steps() -> None:
    from degradation.sweep.estimate import probe_seconds_per_image

    cfg = compose(["model.depth=8"])
    seconds = probe_seconds_per_image(cfg.model, batch=4, device="cpu", threads=1, channels_last=True)
    assert 0 < seconds < 1


def test_child_command_is_the_training_entry_with_this_machines_threads(tmp_path) -> None:
    cell = build_plan(request(tmp_path, overrides=TINY[:2]), probe=False).cells[0]
    command = child_command(cell, threads=3)
    assert command[:3] == [sys.executable, "-m", "degradation.train"]
    assert command[3:-2] == list(cell.overrides)
    assert command[-2:] == ["trainer.threads=3", "trainer.progress=none"]
    assert child_command(build_plan(request(tmp_path), probe=False).cells[0], 3)[-1] == "trainer.progress=none"


# ---- the local launcher, with a stand-in trainer -------------------------------------------------------

def test_failures_are_recorded_and_the_rest_go_on(tmp_path, capsys, no_probe, fake_train) -> None:
    fake_train({"plain-8": "nan", "resnet-8": "done", "plain-14": "crash", "resnet-14": "done"})
    results = tmp_path / "r"
    code = main(sweep_args(results, "--depths", "8,14", "--jobs", "2"))
    out = capsys.readouterr().out
    assert code == 1
    runs = pd.read_parquet(results / "runs.parquet").set_index("run_id")
    by_net = {f"{r.arch}-{r.depth}": r for r in runs.reset_index().itertuples()}
    assert by_net["resnet-8"].status == "done" and by_net["resnet-14"].status == "done"
    assert by_net["plain-8"].status == "failed" and by_net["plain-8"].reason == "loss is nan at iteration 6"
    assert "2 failed run(s):" in out
    log8 = results / "runs" / by_net["plain-8"].run_id / "train.log"
    assert f"{by_net['plain-8'].run_id}: loss is nan at iteration 6 (log: {log8})" in out
    crash_line = next(line for line in out.splitlines() if line.strip().startswith(by_net["plain-14"].run_id + ":"))
    assert "exit code 3: RuntimeError: out of memory" in crash_line
    # it died without recording its end: the sweep records it, and the runs table says so
    crashed = by_net["plain-14"]
    assert (crashed.status, crashed.reason) == ("failed", "exit code 3: RuntimeError: out of memory")
    children = [json.loads((results / "runs" / r.run_id / "child.json").read_text()) for r in by_net.values()]
    assert all(c["token"] for c in children)  # each child was handed the lock the sweep took for it
    assert not list(results.glob("runs/*/.lock"))
    finished = [c for c in children if "end" in c]
    for c in finished:  # never more than --jobs 2 children at once
        assert sum(1 for o in children if o["start"] <= c["start"] < o.get("end", o["start"] + 1e-3)) <= 2


def test_ctrl_c_stops_children_and_the_next_sweep_resumes(tmp_path, capsys, no_probe, fake_train) -> None:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    fake_train({"plain-8": "hang", "resnet-8": "hang"})
    results = tmp_path / "r"

    def interrupt() -> None:
        if wait_for(lambda: len(list(results.glob("runs/*/child.json"))) == 2, timeout=60):
            wait_for(lambda: all(json.loads(p.read_text()).get("pid") for p in results.glob("runs/*/child.json")))
            # the stand-ins' checkpoints at iteration 4 (a loaded machine is slow to reach them)
            wait_for(lambda: len(list(results.glob("runs/*/checkpoints/last.ckpt"))) == 2)
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Thread(target=interrupt)
    timer.start()
    try:
        code = main(sweep_args(results, "--jobs", "2"))
    finally:
        timer.join()
        signal.signal(signal.SIGINT, previous)
    captured = capsys.readouterr()
    assert code == 130
    assert "stopping 2 run(s)" in captured.out and "run the same command again to resume" in captured.out
    pids = [json.loads(p.read_text())["pid"] for p in results.glob("runs/*/child.json")]
    assert len(pids) == 2 and not any(pid_alive(p) for p in pids)
    assert not list(results.glob("runs/*/.lock"))
    runs = pd.read_parquet(results / "runs.parquet")
    assert list(runs["status"]) == ["partial", "partial"]
    plan = build_plan(request(results), probe=False)
    assert [s.label for s in plan.states.values()] == ["partial at iteration 4"] * 2


def _gpu_sweep(monkeypatch, fake_train, results, gpus: int, visible: str, *flags: str, extra=()) -> list[dict]:
    """A sweep of the four depth-8/14 nets on `gpus` fake GPUs (stand-in trainer); each child's child.json."""
    fake_train({"plain-8": "done", "resnet-8": "done", "plain-14": "done", "resnet-14": "done"})
    monkeypatch.setattr(machine, "device_kind", lambda accelerator: "cuda")
    monkeypatch.setattr(machine, "gpu_count", lambda accelerator: gpus)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert main(sweep_args(results, "--depths", "8,14", *flags, extra=extra)) == 0
    return [json.loads(p.read_text()) for p in results.glob("runs/*/child.json")]


def test_runs_are_spread_over_the_gpus(tmp_path, monkeypatch, no_probe, fake_train) -> None:
    children = _gpu_sweep(monkeypatch, fake_train, tmp_path / "r", 2, "3,5", "--jobs", "2")
    assert sorted(c["gpu"] for c in children) == ["3", "3", "5", "5"]
    for c in children:  # two at a time, never two on one GPU
        overlapping = [o for o in children if o is not c and o["start"] < c["end"] and c["start"] < o["end"]]
        assert all(o["gpu"] != c["gpu"] for o in overlapping)


@pytest.mark.parametrize(("gpus", "visible", "expected"), [(1, "7", ["7"] * 4), (2, "3,5", ["3", "3", "5", "5"])])
def test_runs_per_gpu_share_each_gpu_evenly(tmp_path, monkeypatch, no_probe, fake_train, gpus, visible,
                                           expected) -> None:
    # no --jobs: jobs = GPUs x runs_per_gpu
    children = _gpu_sweep(monkeypatch, fake_train, tmp_path / "r", gpus, visible, extra=("launcher.runs_per_gpu=2",))
    assert sorted(c["gpu"] for c in children) == expected
    for c in children:  # GPUs x 2 at a time, never more than two on one GPU
        together = [o for o in children if o["start"] < c["end"] and c["start"] < o["end"]]
        assert len(together) <= 2 * gpus and sum(o["gpu"] == c["gpu"] for o in together) <= 2
    assert any(c["gpu"] == o["gpu"] and c is not o and o["start"] < c["end"] and c["start"] < o["end"]
               for c in children for o in children)  # two runs did share a GPU


def test_concurrent_ddp_runs_get_gpus_of_their_own(tmp_path, monkeypatch, no_probe, fake_train) -> None:
    """--jobs 3 of 2-GPU DDP runs on 4 GPUs: two at a time on disjoint pairs (all were given GPUs 0 and 1)."""
    children = _gpu_sweep(monkeypatch, fake_train, tmp_path / "r", 4, "0,1,2,3", "--jobs", "3",
                          extra=("trainer.devices=2",))
    assert len(children) == 4 and {c["gpu"] for c in children} <= {"0,1", "2,3"}
    for c in children:  # never two runs on one GPU
        overlapping = [o for o in children if o is not c and o["start"] < c["end"] and c["start"] < o["end"]]
        assert all(o["gpu"] != c["gpu"] for o in overlapping) and len(overlapping) <= 1


def test_plain_lines_when_not_on_a_terminal(tmp_path, capsys) -> None:
    from degradation.sweep.progress import RunWatch, SweepView
    from degradation.sweep.report import make_console

    run = tmp_path / "runs" / "resnet-8-A-x"
    write_run_json(run, status="running", iteration=6, final_test_error=None)
    write_part(run, 4, [(4, "test", "error", 0.75)])
    watch = RunWatch(run.name, run, 12, 16, 30.0)
    watch.phase = "running"
    queued = RunWatch("plain-8-x", tmp_path / "runs" / "plain-8-x", 12, 16, 90.0)
    with SweepView([watch, queued], 1, make_console(), interval=0) as view:
        view.tick()
    line = capsys.readouterr().out.strip()
    assert line.startswith("resnet-8-A-x: it 6/12  train err 50.00%  test err 75.00%  6.25 it/s  ETA 1s")
    assert line.endswith("| sweep ETA 2m")  # 1 s left here + 90 s estimated for the queued run


def test_a_run_locked_by_a_live_process_is_skipped(tmp_path, capsys, no_probe, fake_train) -> None:
    fake_train({"plain-8": "done", "resnet-8": "done"})
    results = tmp_path / "r"
    cells = {c.arch: c for c in build_plan(request(results), probe=False).cells}
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        locked = cells["resnet"].run_dir
        locked.mkdir(parents=True)
        (locked / ".lock").write_text(json.dumps({"pid": holder.pid, "hostname": os.uname().nodename, "token": "x"}))
        code = main(sweep_args(results))
        out = capsys.readouterr().out
    finally:
        holder.kill()
        holder.wait()
    assert code == 0
    assert not (locked / "child.json").exists() and (cells["plain"].run_dir / "child.json").exists()
    assert f"skipped {cells['resnet'].run_id}: being trained by pid {holder.pid} on " in out
    assert "1 done, 1 locked" in out


def test_a_run_locked_after_the_plan_is_skipped_at_launch(tmp_path, no_probe, fake_train) -> None:
    from degradation.sweep.launch import LocalLauncher
    from degradation.sweep.progress import RunWatch, SweepView
    from degradation.sweep.report import make_console

    fake_train({"plain-8": "done", "resnet-8": "done"})
    plan = build_plan(request(tmp_path / "r"), probe=False)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        target = plan.cells[1].run_dir
        target.mkdir(parents=True)
        (target / ".lock").write_text(str(holder.pid))  # a bare pid, as an flock-based trainer writes it
        watches = {c.run_id: RunWatch(c.run_id, c.run_dir, 12, 16, 1.0) for c in plan.cells}
        with SweepView(list(watches.values()), 1, make_console(), live=False) as view:
            outcomes = LocalLauncher(plan, view, watches, poll_s=0.05).run(plan.todo())
    finally:
        holder.kill()
        holder.wait()
    assert [(o.status, o.reason) for o in outcomes] == [("done", None), ("locked", f"being trained by pid {holder.pid} "
                                                                                 "on this host")]


def test_a_stale_lock_left_by_a_killed_process_is_taken_over(tmp_path, capsys, no_probe, fake_train) -> None:
    fake_train({"plain-8": "done", "resnet-8": "done"})
    results = tmp_path / "r"
    cell = build_plan(request(results, archs=["resnet"]), probe=False).cells[0]
    cell.run_dir.mkdir(parents=True)
    (cell.run_dir / ".lock").write_text(json.dumps({"pid": dead_pid(), "hostname": os.uname().nodename, "token": "x"}))
    assert main(sweep_args(results, "--archs", "resnet")) == 0
    assert json.loads((cell.run_dir / "run.json").read_text())["status"] == "done"
    assert not (cell.run_dir / ".lock").exists()


# ---- the real trainer -------------------------------------------------------------------------------------

def test_sweep_end_to_end_then_skip_on_rerun(tmp_path, capsys, no_probe) -> None:
    results = tmp_path / "r"
    assert main(sweep_args(results, "--jobs", "2")) == 0
    out = capsys.readouterr().out
    assert "sweep finished: 2 done" in out
    runs = pd.read_parquet(results / "runs.parquet")
    assert sorted(runs["arch"]) == ["plain", "resnet"] and set(runs["status"]) == {"done"}
    assert set(runs["iteration"]) == {12}
    curves = pd.read_parquet(results / "curves.parquet")
    train = curves[(curves.split == "train") & (curves.metric == "error")]
    assert train.groupby("run_id")["step"].apply(list).tolist() == [list(range(2, 13, 2))] * 2
    for run in runs.itertuples():
        log = Path(run.log_path).read_text()
        assert log.count(" sweep: -m degradation.train") == 1 and "done: train err" in log
    stamps = {p: p.stat().st_mtime_ns for p in results.glob("runs/*/run.json")}

    assert main(sweep_args(results, "--jobs", "2")) == 0
    out = capsys.readouterr().out
    assert out.count(" done ") >= 2 and "nothing to train" in out
    assert {p: p.stat().st_mtime_ns for p in results.glob("runs/*/run.json")} == stamps


def test_slurm_launcher_through_submitits_local_executor(tmp_path, capsys, no_probe) -> None:
    results = tmp_path / "r"
    extra = ("launcher.cluster=local", "launcher.gpus_per_node=0", "launcher.cpus_per_task=1", "launcher.timeout_min=5")
    assert main(sweep_args(results, "--launcher", "slurm", "--archs", "resnet", extra=extra)) == 0
    out = capsys.readouterr().out
    assert "submitted 1 run(s) as job(s)" in out and "sweep finished: 1 done" in out
    runs = pd.read_parquet(results / "runs.parquet")
    assert list(runs["status"]) == ["done"]
    log = Path(runs["log_path"][0]).read_text()
    assert "starting:" in log and "done: train err" in log  # the job's output went to the run's log
    assert list((results / "slurm").glob("*_result.pkl"))
    assert not list(results.glob("runs/*/.lock"))


def test_the_cluster_job_holds_the_lock_logs_to_the_run_and_reports(tmp_path, monkeypatch, sleeper) -> None:
    from degradation.sweep import slurm

    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    seen = {}

    def fake_entry(args: list[str]) -> int:
        seen["args"], seen["lock"] = args, json.loads((run / ".lock").read_text())
        print("training output", flush=True)
        return seen.get("code", 0)

    monkeypatch.setattr("degradation.train.app.run_from_args", fake_entry)
    job = slurm.TrainJob("r", str(run), ["model.depth=8"])
    assert job() == {"run_id": "r", "status": "done"}
    assert seen["args"] == ["model.depth=8"] and seen["lock"]["pid"] == os.getpid()
    assert "training output" in (run / "train.log").read_text() and not (run / ".lock").exists()

    seen["code"] = 1
    with pytest.raises(RuntimeError, match="r: exit code 1: training output"):
        job()
    seen["code"] = 130  # the entry's answer to the preemption signal: partial, resume later
    job.checkpoint()
    try:
        with pytest.raises(SystemExit):
            job()
    finally:
        slurm._PREEMPTED["flag"] = False
    (run / ".lock").write_text(json.dumps({"pid": sleeper.pid, "hostname": os.uname().nodename, "token": "x"}))
    assert job()["status"] == "locked"


def test_slurm_settings_reach_submitit(tmp_path) -> None:
    from degradation.sweep.slurm import make_executor

    launcher = compose(["launcher=slurm", "launcher.cluster=local", "launcher.partition=gpu",
                        "launcher.gpus_per_node=0", "+launcher.additional.account=proj"]).launcher
    executor = make_executor(launcher, tmp_path / "jobs", jobs=3)
    assert executor.cluster == "local"
    assert executor._executor.parameters["timeout_min"] == 720
    # the sbatch script of launcher.cluster=slurm: tests/test_slurm.py


@pytest.mark.slow
def test_resume_after_a_killed_run(tmp_path, capsys, no_probe) -> None:
    results = tmp_path / "r"
    longer = ("schedule.max_iters=60", "schedule.milestones=[30,45]")
    cell = build_plan(request(results, archs=["plain"], overrides=[*TINY, *longer]), probe=False).cells[0]
    proc = subprocess.Popen([sys.executable, "-m", "degradation.train", *cell.overrides, "trainer.progress=none"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: (cell.run_dir / "checkpoints" / "last.ckpt").exists(), timeout=120, every=0.02)
    proc.kill()
    proc.wait()
    state = plan_mod.read_state(cell.run_dir)
    assert state.status == "partial" and 0 < state.iteration < 60
    assert main(sweep_args(results, "--archs", "plain", extra=longer)) == 0
    out = capsys.readouterr().out
    assert f"resuming {cell.run_id} from its last checkpoint (it had reached iteration {state.iteration})" in out
    curves = pd.read_parquet(results / "curves.parquet")
    train = curves[(curves.split == "train") & (curves.metric == "error")]
    assert list(train["step"]) == list(range(2, 61, 2))  # no gap, no duplicate across the kill
    assert "resuming at iteration" in (cell.run_dir / "train.log").read_text()


@pytest.mark.slow
def test_two_sweeps_over_overlapping_grids_train_each_run_once(tmp_path) -> None:
    results = tmp_path / "r"
    command = [str(ROOT / ".venv/bin/degradation")]
    first = subprocess.Popen(command + sweep_args(results, "--jobs", "2"), stdout=subprocess.PIPE, text=True)
    second = subprocess.Popen(command + sweep_args(results, "--archs", "resnet"), stdout=subprocess.PIPE, text=True)
    outs = [p.communicate(timeout=300)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outs
    for log in results.glob("runs/*/train.log"):
        text = log.read_text()
        assert text.count("done: train err") == 1, text
    assert sorted(pd.read_parquet(results / "runs.parquet")["status"]) == ["done", "done"]


@pytest.mark.slow
def test_a_preempted_slurm_job_is_requeued_and_resumes(tmp_path, no_probe) -> None:
    from degradation.sweep import slurm

    results = tmp_path / "r"
    longer = ["schedule.max_iters=120", "schedule.milestones=[60,90]", "launcher.cluster=local",
              "launcher.gpus_per_node=0", "launcher.cpus_per_task=1", "launcher.timeout_min=5"]
    plan = build_plan(request(results, archs=["plain"], launcher="slurm", overrides=[*TINY, *longer]), probe=False)
    cell = plan.cells[0]
    (job,) = slurm.submit(plan, [cell], threads=1)
    assert wait_for(lambda: (cell.run_dir / "checkpoints" / "last.ckpt").exists(), timeout=120, every=0.02)
    # what SLURM does before preempting or at the time limit: SIGUSR2 to the job's process (which trains in-process)
    os.kill(json.loads((cell.run_dir / "run.json").read_text())["pid"], signal.SIGUSR2)
    assert job.result()["status"] == "done"
    log = (cell.run_dir / "train.log").read_text()
    assert "resuming at iteration" in log
    info = json.loads((cell.run_dir / "run.json").read_text())
    assert info["status"] == "done" and info["iteration"] == 120
    assert not (cell.run_dir / ".lock").exists()


@pytest.mark.slow
def test_ctrl_c_on_a_real_sweep_leaves_the_run_partial_and_the_next_sweep_finishes_it(tmp_path) -> None:
    results = tmp_path / "r"
    longer = ("schedule.max_iters=60", "schedule.milestones=[30,45]")
    command = [str(ROOT / ".venv/bin/degradation"), *sweep_args(results, "--archs", "resnet", extra=longer)]
    sweep = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert wait_for(lambda: list(results.glob("runs/*/checkpoints/last.ckpt")), timeout=120, every=0.02)
    sweep.send_signal(signal.SIGINT)
    out = sweep.communicate(timeout=120)[0]
    assert sweep.returncode == 130, out
    (run_dir,) = results.glob("runs/*")
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "partial" and not pid_alive(info["pid"]) and not (run_dir / ".lock").exists()
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"resuming {run_dir.name} from its last checkpoint" in rerun.stdout
    curves = pd.read_parquet(results / "curves.parquet")
    train = curves[(curves.split == "train") & (curves.metric == "error")]
    assert list(train["step"]) == list(range(2, 61, 2))


def test_unmeasured_nets_scale_from_bench_parquet_by_multiply_adds(tmp_path, monkeypatch) -> None:
    results = tmp_path / "r"
    results.mkdir()
    pd.DataFrame({"arch": ["resnet"], "depth": [8], "device": ["cpu"], "threads": [1],
                  "tool_images_per_s": [500.0]}).to_parquet(results / "bench.parquet")
    monkeypatch.setattr(estimate, "probe_run", lambda *a: pytest.fail("bench.parquet is there: no probe"))
    plan = build_plan(request(results, depths=["8,20"], overrides=TINY))
    seconds = {(c.arch, c.depth): plan.estimates[c.run_id] for c in plan.cells}
    cfg = plan.cells[0].cfg
    ratio = count_macs(cifar_net("plain", 20)) / count_macs(cifar_net("resnet", 8))
    assert seconds[("plain", 20)] == pytest.approx(run_seconds(cfg, 0, ratio / 500))
    assert "resnet-8 500 img/s" in plan.estimate_source and "others scaled by multiply-adds" in plan.estimate_source
