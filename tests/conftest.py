"""Shared test settings: one CPU thread per test process (the suite runs tiny nets, where threads only add overhead)."""

from __future__ import annotations

import subprocess
import sys

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
