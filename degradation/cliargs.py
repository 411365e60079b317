"""Parsing comma lists from the command line into checked values (one-line UsageErrors)."""

from __future__ import annotations

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
