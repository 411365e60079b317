"""trainer.precision: the names a run may give, the one name each stands for, and the autocast dtype behind it.

One table for the config check, the trainer, the graphed step, the memory count and the benchmarks. Kept free of
torch at import: the config is checked before anything heavy loads.
"""

from __future__ import annotations

from typing import Any

AUTOCAST = {"32-true": None, "bf16-mixed": "bfloat16", "16-mixed": "float16"}  # name -> autocast dtype (None: off)
ALIASES = {"32": "32-true"}  # Lightning's short name


def precision_name(value: Any) -> str:
    """The canonical name ("32" -> "32-true"); unknown names come back unchanged for the caller to refuse."""
    text = str(value)
    return ALIASES.get(text, text)


def autocast_dtype(value: Any):
    """The torch dtype autocast runs in for this precision, or None for full fp32; ValueError for an unknown one."""
    name = precision_name(value)
    if name not in AUTOCAST:
        raise ValueError(f"unknown precision {value!r}; choose from {', '.join(AUTOCAST)}")
    import torch

    dtype = AUTOCAST[name]
    return None if dtype is None else getattr(torch, dtype)
