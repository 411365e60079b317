"""A run's CPU thread count, pinned for its whole life.

oneDNN's float results depend on how many threads split a convolution, so a run resumed (or restarted after a
damaged checkpoint) at another thread count would drift from the uninterrupted run by float noise, and "the
curves equal an uninterrupted run's" would hold only by luck. A sweep hands each run cores/N threads, where N
is how many runs train at once, which changes as runs finish. So the count a run first started with, written
to its config.yaml as a number, wins over whatever a later start asks for; train.log says when it overrode one.
The count is not part of the run id (where a run computes does not change what it computes, bar the floats).
"""

from __future__ import annotations

import copy
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from degradation.compute.machine import cpu_cores
from degradation.store.runs import CONFIG_FILE


def cpu_threads(setting: object) -> int:
    """trainer.threads: auto = every core this process may use."""
    return cpu_cores() if setting == "auto" else int(setting)  # type: ignore[call-overload]


def recorded_threads(run_dir: Path) -> int | None:
    """The thread count the run folder's config.yaml records (None: no folder yet, or unreadable, or 'auto')."""
    try:
        value = OmegaConf.load(Path(run_dir) / CONFIG_FILE).trainer.threads
    except Exception:  # missing, unreadable or foreign: the run starts afresh with this start's count
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def pin_threads(cfg: DictConfig, run_dir: Path) -> tuple[DictConfig, str | None]:
    """A copy of `cfg` whose trainer.threads is a number: the recorded one, else this start's; and a log line
    when the recorded count overrode a different request (None otherwise)."""
    asked = cpu_threads(cfg.trainer.threads)
    recorded = recorded_threads(run_dir)
    threads = recorded or asked
    pinned = copy.deepcopy(cfg)
    with open_dict(pinned):
        pinned.trainer.threads = threads
    note = None
    if recorded is not None and recorded != asked:
        note = (f"threads: {recorded}, as at this run's first start (asked for {asked}); "
                "CPU float results depend on the thread count, so a run keeps its own")
    return pinned, note
