"""`degradation bench --share`: the choice rule, the flag, a real two-worker run on the CPU, and how a CUDA sweep
turns launcher.runs_per_gpu (a number, or auto from bench_share.parquet) into jobs and time (no GPU needed)."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
from _sweep_helpers import TINY

from degradation.bench import share as bench_share
from degradation.bench.share import choose_runs, overlap, parse_share, run_share, threads_for
from degradation.cli import main
from degradation.compute import machine
from degradation.errors import UsageError
from degradation.sweep import estimate
from degradation.sweep.api import SweepRequest
from degradation.sweep.estimate import run_seconds
from degradation.sweep.plan import build_plan

GPU = "NVIDIA H200"
SMALL = ["schedule.batch_size=8", "data.train_size=64", "data.test_size=16"]


# ---- the choice rule -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("aggregate", "chosen"), [
    ({1: 100.0}, 1),
    ({1: 100.0, 2: 104.0}, 1),                 # 4%: within the noise, one run is simpler
    ({1: 100.0, 2: 105.0}, 2),                 # exactly 5% counts
    ({1: 100.0, 2: 104.0, 3: 108.0}, 3),       # 8% over the chosen 1, though only 4% over 2
    ({1: 100.0, 2: 150.0, 4: 155.0}, 2),       # 3% over 2 is not worth two more runs
    ({1: 100.0, 2: 150.0, 4: 160.0}, 4),
    ({1: 100.0, 2: 90.0, 4: 80.0}, 1),         # contention: sharing loses
    ({2: 100.0, 4: 120.0}, 4),                 # without 1, the smallest measured K is the baseline
    ({1: 100.0, 2: float("nan")}, 1),          # a failed figure never wins
])
def test_the_choice_needs_five_percent_over_the_smaller_choice(aggregate, chosen) -> None:
    assert choose_runs(aggregate) == chosen


def test_threads_and_overlap() -> None:
    assert [threads_for(16, k) for k in (1, 2, 3, 4, 32)] == [16, 8, 5, 4, 1]
    assert overlap([(0.0, 10.0), (0.0, 10.0)]) == 1.0
    assert overlap([(0.0, 10.0), (5.0, 15.0)]) == pytest.approx(5 / 15)
    assert overlap([(0.0, 1.0), (2.0, 3.0)]) == 0.0


# ---- the flag --------------------------------------------------------------------------------------------

def test_share_list_is_parsed_with_one_as_the_baseline() -> None:
    assert parse_share("1,2,4") == [1, 2, 4]
    assert parse_share("4, 2,2") == [1, 2, 4]
    for bad, message in [("0", "--share: 0 must be >= 1"), ("2,x", "'x' is not a whole number"),
                         ("1.5", "'1.5' is not a whole number"), ("", "empty item"), ("64", "more than 32")]:
        with pytest.raises(UsageError, match=message):
            parse_share(bad)


@pytest.mark.parametrize("value", ["0", "two", "1,,2", "-1"])
def test_bad_share_is_one_line_exit_2(tmp_path, capsys, value) -> None:
    assert main(["bench", "--share", value, "--device", "cpu", "--results", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --share")
    assert not (tmp_path / "r").exists()


# ---- a real measurement: two workers on the CPU ----------------------------------------------------------

def test_share_measures_workers_together_and_writes_its_table(tmp_path, capsys) -> None:
    frame = run_share([8], ["resnet"], "cpu", 3, tmp_path, [2], overrides=SMALL, cores=2)
    out = capsys.readouterr().out
    print(out)  # the figures, for whoever runs this with -s; never asserted
    assert "runs_per_device =" in out and "aggregate_img_s" in out
    saved = pd.read_parquet(tmp_path / "bench_share.parquet")
    assert saved.equals(frame)
    assert list(saved.runs) == [1, 2] and list(saved.threads) == [2, 1]  # cores // K each
    assert set(saved.device) == {"cpu"} and set(saved.precision) == {"32-true"} and set(saved.batch_size) == {8}
    for column in ("per_run_images_per_s", "aggregate_images_per_s", "speedup", "overlap", "window_s"):
        assert (saved[column] > 0).all(), column
    assert saved.aggregate_images_per_s.iloc[1] == pytest.approx(2 * saved.per_run_images_per_s.iloc[1])
    assert saved.speedup.iloc[0] == 1.0
    aggregate = dict(zip(saved.runs, saved.aggregate_images_per_s, strict=True))
    assert set(saved.runs_per_device) == {choose_runs(aggregate)}

    other = frame.assign(device=GPU, runs_per_device=1)  # another device's rows stay when this one is re-measured
    other.to_parquet(tmp_path / "bench_share.parquet")
    stored = bench_share._merged(tmp_path, frame)
    assert sorted(set(stored.device)) == [GPU, "cpu"] and len(stored) == 4


def test_share_by_wall_time_trains_each_run_for_the_window(tmp_path, capsys) -> None:
    """--seconds: every worker trains for the same wall time, however many steps that takes it."""
    frame = run_share([8], ["resnet"], "cpu", 100_000, tmp_path, [2], overrides=SMALL, cores=2, seconds=0.5)
    assert list(frame.runs) == [1, 2]
    assert (frame.window_s >= 0.5).all() and (frame.window_s < 30).all()
    assert (frame.iters >= 1).all() and (frame.iters < 100_000).all()


def test_bad_overrides_and_failing_workers_are_one_line(tmp_path, monkeypatch) -> None:
    with pytest.raises(UsageError, match="model.width=-1"):  # checked before any worker starts
        run_share([8], ["resnet"], "cpu", 1, tmp_path, [2], overrides=["model.width=-1"])
    crash = [sys.executable, "-c", "import sys; print('RuntimeError: CUDA out of memory'); sys.exit(3)"]
    monkeypatch.setattr(bench_share, "_worker_command", lambda *args: crash)
    oom = r"worker [12] of 2 failed \(exit code 3\): RuntimeError: CUDA out of memory"  # whichever worker ends first
    with pytest.raises(RuntimeError, match=oom):
        bench_share.measure("resnet", 8, "cpu", 2, 1, tmp_path, cores=2)
    refused = [sys.executable, "-c", "import sys; print('error: no CIFAR-10 here', file=sys.stderr); sys.exit(2)"]
    monkeypatch.setattr(bench_share, "_worker_command", lambda *args: refused)
    with pytest.raises(UsageError, match="worker 1 of 1 failed .*: error: no CIFAR-10 here"):
        bench_share.measure("resnet", 8, "cpu", 1, 1, tmp_path, cores=2)
    assert not (tmp_path / "bench_share.parquet").exists()


# ---- the sweep: runs per GPU -> jobs, threads and time ---------------------------------------------------

def cuda_request(results, jobs=None, extra=()) -> SweepRequest:
    return SweepRequest.from_cli(depths=["8,14"], archs=["plain,resnet"], seeds=["0,1"], shortcuts=["A"],
                                 data="synthetic", preset="smoke", jobs=jobs, launcher="local", dry_run=False,
                                 results_dir=results, overrides=[*TINY[:2], *extra])


@pytest.fixture
def two_gpus(monkeypatch):
    """A CUDA machine with two GPUs named GPU, 16 cores and a fixed lone-run speed (no probe, no GPU)."""
    monkeypatch.setattr(machine, "device_kind", lambda accelerator: "cuda")
    monkeypatch.setattr(machine, "gpu_count", lambda accelerator: 2)
    monkeypatch.setattr(machine, "cpu_cores", lambda: 16)
    monkeypatch.setattr(machine, "cuda_device_name", lambda: GPU)
    monkeypatch.setattr(estimate, "probe_run", lambda cfg, kind, threads: 1e-3)


def write_share(results, device=GPU, chosen=3, precision="32-true") -> None:
    results.mkdir(parents=True, exist_ok=True)
    nets = [(arch, depth) for arch in ("plain", "resnet") for depth in (8, 14)]  # cuda_request's grid, all measured
    pd.DataFrame({
        "device": device, "arch": [a for a, _ in nets for _ in range(3)],
        "depth": [d for _, d in nets for _ in range(3)],
        "precision": precision, "runs": [1, 2, 3] * len(nets),
        "aggregate_images_per_s": [100.0, 160.0, 190.0] * len(nets), "speedup": [1.0, 1.6, 1.9] * len(nets),
        "runs_per_device": chosen,
    }).to_parquet(results / "bench_share.parquet")


@pytest.mark.parametrize(("case", "jobs", "per_gpu", "why"), [
    ("explicit", 6, 3, "3 runs per GPU (launcher.runs_per_gpu)"),
    ("measured", 6, 3, "3 runs per GPU (measured by `degradation bench --share`)"),
    ("no parquet", 2, 1, "1 run per GPU (runs_per_gpu=auto, not measured; `degradation bench --share 1,2,4`"),
    ("other gpu", 2, 1, f"bench_share.parquet has no 32-true figure for {GPU}"),
    ("other precision", 2, 1, f"bench_share.parquet has no 32-true figure for {GPU}"),
    ("--jobs", 3, 2, "2 runs per GPU (--jobs 3)"),
    ("launcher.jobs", 1, 1, "1 run per GPU (launcher.jobs=1)"),
])
def test_cuda_jobs_are_gpus_times_runs_per_gpu(tmp_path, two_gpus, case, jobs, per_gpu, why) -> None:
    results = tmp_path / "r"
    extra = {"explicit": ["launcher.runs_per_gpu=3"], "launcher.jobs": ["launcher.jobs=1"]}.get(case, [])
    if case in ("measured", "other gpu", "other precision"):
        write_share(results, device="Tesla T4" if case == "other gpu" else GPU,
                    precision="bf16-mixed" if case == "other precision" else "32-true")
    plan = build_plan(cuda_request(results, jobs=3 if case == "--jobs" else None, extra=extra))
    assert (plan.jobs, plan.runs_per_gpu, plan.threads) == (jobs, per_gpu, 16 // jobs)
    assert plan.device.startswith("cuda x2, ") and why in plan.device


def _scale(cell) -> float:
    """The probed depth-8 net's time scaled to this cell's net by multiply-adds (sweep/estimate.py)."""
    from degradation.models import cifar_net, count_macs

    return count_macs(cifar_net(cell.arch, cell.depth)) / count_macs(cifar_net(cell.arch, 8))


def test_shared_runs_are_slowed_by_the_measured_speedup(tmp_path, two_gpus) -> None:
    results = tmp_path / "r"
    write_share(results, chosen=2)
    plan = build_plan(cuda_request(results))  # 8 runs, 2 GPUs x 2: each run at 1.6 / 2 of its lone speed
    assert (plan.jobs, plan.runs_per_gpu) == (4, 2) and "2 runs per GPU at 1.60x" in plan.estimate_source
    shared = {c.run_id: run_seconds(c.cfg, 0, 1e-3 * _scale(c) * 2 / 1.6) for c in plan.cells}
    assert plan.estimates == pytest.approx(shared)
    assert plan.total_s == pytest.approx(sum(shared.values()) / 4)

    unmeasured = build_plan(cuda_request(tmp_path / "u", extra=["launcher.runs_per_gpu=2"]))
    assert "2 runs per GPU, no measured gain assumed" in unmeasured.estimate_source
    halved = {c.run_id: run_seconds(c.cfg, 0, 1e-3 * _scale(c) * 2) for c in plan.cells}
    assert unmeasured.estimates == pytest.approx(halved)  # each run at half its lone speed
    assert unmeasured.total_s == pytest.approx(sum(halved.values()) / 4)


def test_runs_per_gpu_of_the_sweeps_own_networks_and_the_smallest_choice(tmp_path) -> None:
    results = tmp_path / "r"
    results.mkdir()
    pd.DataFrame({
        "device": GPU, "precision": "32-true", "arch": ["resnet"] * 4 + ["plain"] * 2,
        "depth": [20, 20, 110, 110, 20, 20],
        "runs": [1, 4, 1, 4, 1, 4], "speedup": [1.0, 2.5, 1.0, 1.1, 1.0, 2.0], "runs_per_device": [4, 4, 1, 1, 4, 4],
    }).to_parquet(results / "bench_share.parquet")
    assert estimate.measured_sharing(results, GPU, "32-true", [("resnet", 20)]).runs == 4
    both = estimate.measured_sharing(results, GPU, "32", [("resnet", 20), ("resnet", 110)])
    assert both.runs == 1 and both.speedup == {1: 1.0, 4: 1.1}
    assert estimate.measured_sharing(results, GPU, "32-true", [("plain", 56)]) is None  # never another net's
    assert estimate.measured_sharing(results, GPU, "32-true", [("resnet", 20), ("resnet", 1202)]) is None
    assert estimate.measured_sharing(results, "Tesla T4", "32-true") is None


@pytest.mark.parametrize("value", ["0", "many", "true"])
def test_bad_runs_per_gpu_is_refused_even_on_a_cpu(tmp_path, capsys, value) -> None:
    from _sweep_helpers import sweep_args

    assert main(sweep_args(tmp_path / "r", "--dry-run", extra=(f"launcher.runs_per_gpu={value}",))) == 2
    assert "launcher.runs_per_gpu=" in capsys.readouterr().err


@pytest.mark.parametrize(("cores", "extra", "jobs", "threads"), [
    (4, [], 4, 1),  # one run per core, one thread each (8 runs to train)
    (16, [], 8, 2),  # no more runs at once than there are runs
    (4, ["trainer.threads=2"], 1, 2),  # threads set by hand: the user sizes the runs
    (4, ["launcher.jobs=2"], 2, 2),
])
def test_cpu_sweeps_run_one_run_per_core(tmp_path, monkeypatch, cores, extra, jobs, threads) -> None:
    monkeypatch.setattr(machine, "cpu_cores", lambda: cores)
    monkeypatch.setattr(estimate, "probe_run", lambda cfg, kind, threads: 1e-3)
    plan = build_plan(cuda_request(tmp_path, extra=["trainer.accelerator=cpu", *extra]))
    assert (plan.jobs, plan.threads) == (jobs, threads)
