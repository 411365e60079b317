"""Which code is running: the git revision of the checkout (run.json records it; `--version` prints it).

Its own module so that `degradation --version` answers without loading the training stack.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_revision() -> str | None:
    """HEAD of the checkout the package runs from, '+dirty' when tracked files changed; None outside git."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head
