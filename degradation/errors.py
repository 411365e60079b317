"""Errors a user can fix: the CLI prints them as one line and exits 2, with no traceback."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable


class UsageError(Exception):
    """Bad input (argument, override, missing data, unwritable folder): says what is wrong and what is right."""

    exit_code = 2


class RunFailed(Exception):
    """A run stopped for a reason recorded in its run.json (NaN loss, crash); the sweep goes on."""


def out_of_memory(exc: BaseException) -> str | None:
    """One line for an allocation failure (a size the user chose is too big: depth, classes, data, batch); else None.

    torch reports a failed CPU or GPU allocation as a RuntimeError subclass, Python as MemoryError.
    """
    text = str(exc).strip()
    if not (isinstance(exc, MemoryError) or "out of memory" in text.lower() or "can't allocate memory" in text):
        return None
    import re

    size = re.search(r"[Tt]ried to allocate ([0-9.]+ ?[A-Za-z]+)", text)
    detail = f" (tried to allocate {size.group(1)})" if size else ""
    return f"out of memory{detail}; choose a smaller depth, batch size, data set or number of classes"


def did_you_mean(name: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """"; did you mean X?" for the closest choices to a mistyped name, else "": the one close-match hint."""
    close = difflib.get_close_matches(str(name), list(choices), n=2, cutoff=cutoff)
    return f"; did you mean {' or '.join(close)}?" if close else ""


LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines() breaks a line at


def one_line(text: str) -> str:
    """A message as one line: a line break the user typed into an argument (quoted back to them) shown escaped."""
    return "".join(repr(char)[1:-1] if char in LINE_BREAKS else char for char in text)


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """An exception's first line (its type's name when it says nothing): what a one-line message can quote."""
    text = str(exc).strip() or type(exc).__name__
    line = text.splitlines()[0].strip()
    return line[:limit] if limit else line


def unwritable(target: str | os.PathLike, exc: OSError) -> UsageError:
    """The one-line error for a write the disk refused (full, read-only, folder removed), naming the file."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return UsageError(f"cannot write {target}: {reason}; free some space or use a writable results folder")
