"""Shared test settings: one CPU thread per test process (the suite runs tiny nets, where threads only add overhead)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def sleeper():
    """A live process that is not ours: its pid stands for another process holding a lock."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture(autouse=True)
def _close_figures():
    """Figures a test draws but does not save stay open in pyplot; close them so the suite does not pile them up."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A tiny finished and collected run (about a second to train), made once per test module; read-only."""
    from _train_helpers import tiny_cfg

    from degradation.store.results import collect
    from degradation.train.run import train

    results = tmp_path_factory.mktemp("finished")
    train(tiny_cfg(results))
    collect(results)
    return results


@pytest.fixture
def results(finished: Path, tmp_path: Path) -> Path:
    """A copy of `finished` for one test to damage, resume or rewrite."""
    copy = tmp_path / "results"
    shutil.copytree(finished, copy)
    return copy
