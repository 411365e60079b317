"""trainer.precision: the names a run may give, the one name each stands for, and the arithmetic behind it.

One table for the config check, the trainer, the graphed step, the memory count and the benchmarks. Kept free of
torch at import: the config is checked before anything heavy loads.

`32-true` is the paper's fp32: on Ampere and Hopper GPUs PyTorch lets cuDNN convolutions use TF32 (a 10-bit
mantissa) unless told otherwise, so `apply_precision` switches TF32 off for convolutions and matmuls. `tf32`
is the fast fp32 of those GPUs, asked for by name and part of the run id like `bf16-mixed`.
"""

from __future__ import annotations

from typing import Any

AUTOCAST = {"32-true": None, "tf32": None, "bf16-mixed": "bfloat16", "16-mixed": "float16"}  # None: no autocast
ALIASES = {"32": "32-true"}  # Lightning's short name
LIGHTNING = {"tf32": "32-true"}  # the name Lightning knows it by (TF32 is a backend switch, not a Lightning mode)
TF32 = {"tf32"}  # the precisions that let convolutions and matmuls round fp32 inputs to TF32
# What a run may train in. 16-mixed (fp16 autocast) is not one: it needs a GradScaler, which scales the loss, and
# the gradient flow recorded per step would read the scaled gradients (and inf on an overflow step). It stays
# in AUTOCAST for the memory count only.
RUN_PRECISIONS = ("32-true", "tf32", "bf16-mixed")
REFUSED = {"16-mixed": "fp16 needs a loss scaler, whose scaled gradients the gradient-flow record would read; "
                       "use bf16-mixed (the same speed on Ampere and Hopper, no scaler)"}


def precision_name(value: Any) -> str:
    """The canonical name ("32" -> "32-true"); unknown names come back unchanged for the caller to refuse."""
    text = str(value)
    return ALIASES.get(text, text)


def lightning_precision(value: Any) -> str:
    """The precision to hand Lightning's Trainer for this name."""
    name = precision_name(value)
    return LIGHTNING.get(name, name)


def autocast_dtype(value: Any):
    """The torch dtype autocast runs in for this precision, or None for full fp32; ValueError for an unknown one."""
    name = precision_name(value)
    if name not in AUTOCAST:
        raise ValueError(f"unknown precision {value!r}; choose from {', '.join(AUTOCAST)}")
    import torch

    dtype = AUTOCAST[name]
    return None if dtype is None else getattr(torch, dtype)


def apply_precision(value: Any) -> dict:
    """Set torch's TF32 switches for this precision (process-wide) and return what is now in force, for run.json.

    TF32 is on only for `tf32`; `32-true` and the mixed precisions keep their fp32 parts in true fp32.
    """
    import torch

    autocast_dtype(value)  # refuses an unknown name
    name = precision_name(value)
    tf32 = name in TF32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    return precision_record(name)


def precision_record(name: str) -> dict:
    """The precision a run actually computes in: its name, autocast dtype and the TF32 switches as torch reads them."""
    import torch

    return {
        "name": precision_name(name),
        "autocast": AUTOCAST.get(precision_name(name)),
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "tf32_conv": bool(torch.backends.cudnn.allow_tf32),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
