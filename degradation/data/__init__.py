"""Data sets: their registry (data/registry.py), download and verification, splits, normalisation and the two
batch streams (device-resident for CIFAR-sized sets, file-backed for image folders) under one contract.

`build_data(cfg.data, batch_size=..., seed=..., device=...)` is the one entry point a run needs. The names below
resolve on first use, so that asking the registry a question (config checks, plans, figures) loads no torch.
"""

from __future__ import annotations

from typing import Any

# name -> module that holds it
_LAZY = {
    "BatchStream": "degradation.data.stream",
    "EvalSet": "degradation.data.stream",
    "DataBundle": "degradation.data.bundle",
    "Normalizer": "degradation.data.normalize",
    "fit_normalizer": "degradation.data.normalize",
    "build_data": "degradation.data.build",
    "load_arrays": "degradation.data.build",
    "load_cifar": "degradation.data.cifar",
    "make_synthetic": "degradation.data.synthetic",
    "split_indices": "degradation.data.splits",
}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'degradation.data' has no attribute {name!r}")
    import importlib  # deferred: the streams load torch; a registry look-up does not need it

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
