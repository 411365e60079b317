"""A run whose rank 0 cannot train (the run is locked by a live process, or done) ends every rank at once: ranks
started outside Lightning (SLURM tasks, a multi-node launch) used to enter `fit` and wait for the collective
timeout (30 minutes) holding their GPUs. Two gloo "nodes" of one CPU rank each stand in for them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from _train_helpers import ROOT, folder_of, tiny

from degradation.store.lock import run_lock

ENDS_WITHIN_S = 240  # two process starts on a loaded 2-core machine; the bug held rank 1 for 30 minutes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _two_nodes(results: Path) -> list[subprocess.Popen]:
    port = str(_free_port())
    command = [sys.executable, "-m", "degradation.train", *tiny(results, "trainer.devices=1", "trainer.num_nodes=2")]
    return [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT), "MASTER_ADDR": "127.0.0.1",
                                  "MASTER_PORT": port, "WORLD_SIZE": "2", "NODE_RANK": str(node), "LOCAL_RANK": "0"})
            for node in (0, 1)]


def _ends(procs: list[subprocess.Popen]) -> list[tuple[int | None, str]]:
    deadline = time.monotonic() + ENDS_WITHIN_S
    try:
        for proc in procs:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    out = []
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            out.append((None, proc.stdout.read()))
        else:
            out.append((proc.returncode, proc.stdout.read()))
    return out


def test_a_locked_run_ends_every_rank_at_once(tmp_path) -> None:
    folder = folder_of(tmp_path, "trainer.devices=1", "trainer.num_nodes=2")
    folder.mkdir(parents=True)
    with run_lock(folder):  # this test is the live process training the run elsewhere
        ends = _ends(_two_nodes(tmp_path))
    (code0, out0), (code1, out1) = ends
    assert code0 == 2 and "is being trained by" in out0, out0[-2000:]
    assert code1 == 2, f"rank 1 {'still waiting' if code1 is None else f'exit {code1}'}:\n{out1[-2000:]}"
    assert "rank 0 stopped before training" in out1 and "Traceback" not in out1, (out0, out1)


def test_a_done_run_ends_every_rank_at_once(results) -> None:
    """`results` holds the tiny run, done (its id leaves the device layout out): no rank trains it again."""
    ends = _ends(_two_nodes(results))
    assert [code for code, _ in ends] == [0, 0], ends
    assert "already done" in ends[0][1]
