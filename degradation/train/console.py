"""What a run says while it trains: one live line on a terminal, plain lines otherwise, all in train.log.

Lightning's own bar and summary are switched off (see `quiet_lightning`), so this is the only output.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import TextIO

from degradation.text import clock, percent

REDRAW_S = 0.5  # the live line at most twice a second, however short a window is


def quiet_lightning() -> None:
    """Silence Lightning's info lines and advice warnings unless DEGRADATION_VERBOSE=1."""
    if os.environ.get("DEGRADATION_VERBOSE", "") not in ("", "0"):
        return
    for name in ("lightning", "lightning.pytorch", "pytorch_lightning", "lightning_fabric", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for module in ("pytorch_lightning", "lightning_fabric", "lightning", "torch.utils.data"):
        warnings.filterwarnings("ignore", module=module)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*checkpoint.*ended before the epoch.*")


def _error(fraction: float | None) -> str:
    return percent(fraction, missing="  -   ", width=5)  # a fixed width: the live line does not jump


class Progress:
    """Reports one run. mode: auto (live line on a TTY, lines otherwise), lines, none (train.log only)."""

    def __init__(
        self,
        name: str,
        total: int,
        log_path: Path,
        mode: str = "auto",
        stream: TextIO | None = None,
        redraw_s: float = REDRAW_S,
    ) -> None:
        self.name = name
        self.total = total
        self.stream = stream or sys.stdout
        self.live = mode == "auto" and self.stream.isatty()
        self.quiet = mode == "none"
        self.log_path = Path(log_path)
        self._live_shown = False
        self._last = (time.perf_counter(), 0)
        self.rate = 0.0
        self._drawn_at = float("-inf")
        self.redraw_s = redraw_s

    def log(self, message: str) -> None:
        """A plain line: to train.log always, to the terminal unless quiet (under the live line)."""
        stamp = datetime.now().isoformat(timespec="seconds")
        with open(self.log_path, "a") as handle:
            handle.write(f"{stamp} {message}\n")
        if self.quiet:
            return
        if self._live_shown:
            self.stream.write("\r\x1b[2K")
            self._live_shown = False
        self.stream.write(f"{self.name}: {message}\n")
        self.stream.flush()

    def update(self, iteration: int, train_error: float | None, test_error: float | None, evaluated: bool,
               val_error: float | None = None) -> str:
        """Called at each logging window: redraw the live line; as plain lines, report only at evaluations. A run
        evaluated on a val split only (ImageNet's recipe) shows its val error."""
        now = time.perf_counter()
        then, at = self._last
        if iteration > at and now > then:
            self.rate = (iteration - at) / (now - then)
        self._last = (now, iteration)
        eta = (self.total - iteration) / self.rate if self.rate > 0 else 0.0
        evaluated_text = (f"val err {_error(val_error)}" if test_error is None and val_error is not None
                          else f"test err {_error(test_error)}")
        text = (
            f"it {iteration}/{self.total}  train err {_error(train_error)}  {evaluated_text}  "
            f"{self.rate:6.2f} it/s  ETA {clock(eta)}"
        )
        if evaluated:
            stamp = datetime.now().isoformat(timespec="seconds")
            with open(self.log_path, "a") as handle:
                handle.write(f"{stamp} {text}\n")
        if self.live and not self.quiet and (evaluated or now - self._drawn_at >= self.redraw_s):
            self._drawn_at = now
            self.stream.write(f"\r\x1b[2K{self.name}: {text}")
            self.stream.flush()
            self._live_shown = True
        elif evaluated and not self.quiet:
            self.stream.write(f"{self.name}: {text}\n")
            self.stream.flush()
        return text

    def close(self) -> None:
        if self._live_shown:
            self.stream.write("\n")
            self.stream.flush()
            self._live_shown = False
