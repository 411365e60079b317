"""Shared test settings: one CPU thread per test process (the suite runs tiny nets, where threads only add overhead)."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
