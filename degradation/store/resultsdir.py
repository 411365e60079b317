"""The results folder a reading command starts from: checked before any table library (pandas, torch) loads.

`degradation status` on a mistyped folder should answer at once, so the check lives here, importing nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from degradation.errors import UsageError


def existing_results_dir(results_dir: str | os.PathLike) -> Path:
    """The folder as a Path; a one-line UsageError when it is a file or does not exist."""
    results_dir = Path(results_dir)
    if results_dir.exists() and not results_dir.is_dir():
        raise UsageError(f"--results {results_dir} is a file, not a results folder; pass the folder a sweep wrote "
                         f"to (default: results)")
    if not results_dir.is_dir():
        raise UsageError(f"results folder {results_dir} does not exist; start runs with `degradation sweep`")
    return results_dir
