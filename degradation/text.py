"""Values as people type and read them: comma lists from the command line into checked values (one-line
UsageErrors), and fractions and durations into the text every table, live line and log shows."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

from degradation.errors import UsageError

T = TypeVar("T")


def split_list(values: Sequence[str] | str | None, flag: str) -> list[str]:
    """'20,56' or repeated flags ['20', '56'] -> ['20', '56']; an empty item is an error."""
    if values is None:
        return []
    raw = [values] if isinstance(values, str) else list(values)
    items = [item.strip() for value in raw for item in value.split(",")]
    if not items or any(item == "" for item in items):
        raise UsageError(f"{flag} got an empty item in {','.join(raw)!r}; give a comma list such as {flag} 20,56")
    return items


def int_list(values: Sequence[str] | str | None, flag: str, minimum: int = 0) -> list[int]:
    out = []
    for item in split_list(values, flag):
        try:
            number = int(item)
        except ValueError:
            raise UsageError(f"{flag}: '{item}' is not a whole number") from None
        if number < minimum:
            raise UsageError(f"{flag}: {number} must be >= {minimum}")
        out.append(number)
    return list(dict.fromkeys(out))


def checked_list(values: Sequence[str] | str | None, flag: str, check: Callable[[str], T]) -> list[T]:
    return list(dict.fromkeys(check(item) for item in split_list(values, flag)))


def _finite(value: float | None) -> float | None:
    """The value as a float, or None where it is missing (None or NaN)."""
    return None if value is None or not math.isfinite(float(value)) else float(value)


def percent(fraction: float | None, digits: int = 2, missing: str = "-", width: int = 0) -> str:
    """0.0734 -> '7.34%' (errors are stored as fractions); None or NaN -> `missing`."""
    value = _finite(fraction)
    return missing if value is None else f"{100 * value:{width}.{digits}f}%"


def evaluated_error(test: float | None, val: float | None) -> str:
    """A run's evaluated error as tables and live lines show it: the test error, or for a run evaluated on a val
    split only (ImageNet's recipe) its val error marked so; "-" before the first evaluation."""
    if _finite(test) is None and _finite(val) is not None:
        return f"{percent(val)} val"
    return percent(test)


def points(value: float | None, digits: int = 2, missing: str = "—", std: float | None = None) -> str:
    """A value already in percent, as tables print it: '7.34', '7.34 ± 0.12' with a finite std."""
    number, spread = _finite(value), _finite(std)
    if number is None:
        return missing
    return f"{number:.{digits}f}" + (f" ± {spread:.{digits}f}" if spread is not None else "")


def clock(seconds: float) -> str:
    """1:02:03: elapsed time and ETA in a run's live line."""
    hours, rest = divmod(max(0, int(seconds)), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def duration(seconds: float | None) -> str:
    """45s, 12m, 3h 05m, 2.4 days: to the precision a person plans with."""
    if seconds is None:
        return "?"
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 48 * 3600:
        hours, rest = divmod(int(round(seconds)), 3600)
        return f"{hours}h {rest // 60:02d}m"
    return f"{seconds / 86400:.1f} days"
