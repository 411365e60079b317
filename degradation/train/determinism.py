"""trainer.deterministic: the same run twice gives the same numbers, bit for bit, on the same machine.

What it sets (through Lightning's own switch, so that Lightning and torch agree): torch's deterministic
algorithms, cuDNN autotuning off (benchmark=False: the fastest kernel can differ between two runs) with
cuDNN's deterministic kernels, and CUBLAS_WORKSPACE_CONFIG=:4096:8 (cuBLAS's reproducible workspace). An op
with no deterministic kernel warns instead of failing the run ("warn" mode): on CUDA that is the global
average pool's backward, whose 1x1 output gives each input element exactly one write, so its result does not
depend on the order of those writes. The stream's order and augmentation are already a function of the seed.
"""

from __future__ import annotations

import os
from typing import Any

import torch

CUBLAS_ENV = "CUBLAS_WORKSPACE_CONFIG"


def enabled(trainer_cfg: Any) -> bool:
    return bool(trainer_cfg.get("deterministic", False))


def lightning_flags(trainer_cfg: Any, accelerator: str) -> dict[str, Any]:
    """Trainer(deterministic=..., benchmark=...): "warn" mode and no autotuning when on; else cuDNN autotuning
    as trainer.cudnn_benchmark says (GPU only) and deterministic algorithms switched off again (a process that
    trained a deterministic run before, as a test does, would otherwise keep them)."""
    if enabled(trainer_cfg):
        return {"deterministic": "warn", "benchmark": False}
    gpu = accelerator in ("gpu", "auto")
    return {"deterministic": False, "benchmark": bool(trainer_cfg.cudnn_benchmark) if gpu else None}


def record() -> dict[str, Any]:
    """The switches as torch reads them now, for run.json."""
    return {
        "algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cublas_workspace_config": os.environ.get(CUBLAS_ENV),
    }
