"""Checks of the model options that depth.py does not cover (classes, width): one-line UsageErrors."""

from __future__ import annotations

import operator

from degradation.errors import UsageError


def check_num_classes(num_classes: object) -> int:
    message = f"num_classes {num_classes!r} must be a whole number >= 1 (10 for CIFAR-10, 100 for CIFAR-100)"
    if isinstance(num_classes, bool):
        raise UsageError(message)
    try:
        value = operator.index(num_classes)  # type: ignore[arg-type]  # int, numpy integer; not float or str
    except TypeError:
        raise UsageError(message) from None
    if value < 1:
        raise UsageError(message)
    return value


def check_width(width: object) -> float:
    try:
        value = float(width)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UsageError(f"width {width!r} must be a positive number (1.0 = the paper's 16/32/64 filters)") from None
    if not value > 0 or value == float("inf"):
        raise UsageError(f"width {width!r} must be a positive number (1.0 = the paper's 16/32/64 filters)")
    return value
