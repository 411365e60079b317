"""SLURM: the sbatch script the real submitit executor renders from conf/launcher/slurm.yaml and its overrides.

No SLURM here, so `sbatch` and `srun` are stand-ins on PATH: sbatch keeps a copy of the script it is handed and
answers like SLURM; everything before it (the CLI, the launcher checks, make_executor, submitit's job array and
its script) is the real thing.
"""

from __future__ import annotations

import os
import pickle
import re
import stat
from pathlib import Path

import pytest
from _sweep_helpers import sweep_args

from degradation.cli import main


@pytest.fixture
def fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """sbatch and srun stand-ins first on PATH; returns the folder where sbatch copies each script it gets."""
    bin_dir, kept = tmp_path / "bin", tmp_path / "sbatch-scripts"
    bin_dir.mkdir()
    kept.mkdir()
    tools = {"sbatch": f'#!/bin/sh\ncp "$1" "{kept}/"\necho "Submitted batch job 4242"\n', "srun": "#!/bin/sh\n"}
    for name, text in tools.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return kept


def _flags(script: str) -> dict[str, str]:
    """{'partition': 'gpu', ...} from the script's #SBATCH lines."""
    flags = {}
    for line in script.splitlines():
        if line.startswith("#SBATCH --"):
            key, _, value = line[len("#SBATCH --"):].partition("=")
            flags[key] = value
    return flags


def test_the_sbatch_script_carries_every_launcher_setting(tmp_path, fake_slurm, capsys) -> None:
    results = tmp_path / "r"
    args = sweep_args(results, "--archs", "plain", "--seeds", "0,1,2", "--launcher", "slurm", "--jobs", "2",
                      extra=("trainer.threads=auto", "launcher.wait=false", "launcher.partition=gpu-long",
                             "launcher.timeout_min=90", "launcher.gpus_per_node=2", "launcher.cpus_per_task=6",
                             "launcher.mem_gb=24", "+launcher.additional.account=proj",
                             "+launcher.additional.qos=high"))
    assert main(args) == 0, capsys.readouterr()
    assert "submitted 3 run(s) as job(s) 4242" in capsys.readouterr().out
    (script,) = [p.read_text() for p in fake_slurm.iterdir()]  # one job array, not three jobs
    flags = _flags(script)
    assert flags["partition"] == "gpu-long"
    assert flags["time"] == "90"
    assert flags["gpus-per-node"] == "2" and flags["ntasks-per-node"] == "2"  # one DDP rank per GPU
    assert flags["cpus-per-task"] == "6"
    assert flags["mem"] == "24GB"
    assert flags["array"] == "0-2%2"  # three runs, two at a time (--jobs)
    assert flags["account"] == "proj" and flags["qos"] == "high"
    assert flags["signal"].startswith("USR2@")  # what lets a preempted job checkpoint and be requeued
    assert flags["job-name"] == "degradation"
    # each job trains its run with the CPUs the job was given (trainer.threads=auto -> cpus_per_task)
    pickles = sorted((results / "slurm").glob("*_submitted.pkl"))
    assert len(pickles) == 3
    jobs = [pickle.loads(p.read_bytes()).function for p in pickles]
    assert all("trainer.threads=6" in job.args for job in jobs)
    assert sorted(re.search(r"-s(\d+)-", Path(job.run_dir).name).group(1) for job in jobs) == ["0", "1", "2"]


def test_without_a_partition_or_extras_the_script_names_none(tmp_path, fake_slurm, capsys) -> None:
    results = tmp_path / "r"
    args = sweep_args(results, "--archs", "plain", "--launcher", "slurm", extra=("launcher.wait=false",))
    assert main(args) == 0, capsys.readouterr()
    (script,) = [p.read_text() for p in fake_slurm.iterdir()]
    flags = _flags(script)
    assert "partition" not in flags and "account" not in flags
    # conf/launcher/slurm.yaml's defaults: 720 min, 1 GPU, 8 CPUs, 32 GB
    assert (flags["time"], flags["gpus-per-node"], flags["cpus-per-task"], flags["mem"]) == ("720", "1", "8", "32GB")
    assert "array" not in flags  # one run: submitit submits a plain job
