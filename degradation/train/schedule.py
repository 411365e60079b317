"""The learning rate at each iteration: step decays at milestones plus the paper's warm-up rule.

Kept pure (numbers in, number out) so the schedule can be tested at the paper's iterations without training,
and so a resumed run recomputes exactly the lr an uninterrupted run would have used.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def lr_at(
    iteration: int,
    *,
    lr: float,
    milestones: Sequence[int],
    gamma: float,
    warming_up: bool = False,
    warmup_lr: float | None = None,
) -> float:
    """The lr of update number `iteration` (0-based): `lr * gamma**k`, k = milestones reached so far.

    While the warm-up is active the lr is `warmup_lr` instead (the paper's 0.01 for ResNet-110, used until
    the training error of a logging window falls below 80%, after which the step schedule takes over).
    """
    if warming_up:
        if warmup_lr is None:
            raise ValueError("warming_up needs warmup_lr")
        return float(warmup_lr)
    return float(lr) * float(gamma) ** bisect_right(list(milestones), iteration)


def warmup_enabled(enabled: Any, depth: int, min_depth: int, arch: str = "resnet", archs: Any = ("resnet",)) -> bool:
    """`auto` switches the warm-up on for the families in `archs` at depth >= min_depth (the paper: ResNet-110 and
    ResNet-1202); true/false force it for any net."""
    text = str(enabled).lower()
    if text == "auto":
        return int(depth) >= int(min_depth) and str(arch) in {str(a) for a in archs}
    return text == "true"


@dataclass
class WarmUp:
    """The warm-up's state: active until a logging window's training error is below the threshold, or at the
    latest until iteration `max_iters` (the cap: a net that never leaves chance must not spend the whole schedule
    at the warm-up lr, ignoring its milestones).

    It never switches back on, so a run that left warm-up stays on the step schedule, as in the paper.
    """

    active: bool
    until_train_error: float
    max_iters: int | None = None  # the cap; None: no cap (the pre-cap behaviour, kept for old checkpoints)
    ended_at: int | None = None  # the iteration the warm-up ended at (for the log and run.json)
    ended_by_cap: bool | None = None  # True: the cap ended it; False: the training error did

    def warming(self, iteration: int) -> bool:
        """Whether update number `iteration` (0-based) uses the warm-up lr: exact at the cap, whatever log_every is."""
        return self.active and (self.max_iters is None or iteration < self.max_iters)

    def observe(self, window_train_error: float, iteration: int) -> bool:
        """Feed one window's training error (the window ends after `iteration` updates); True when the warm-up ends."""
        if not self.active:
            return False
        capped = self.max_iters is not None and iteration > self.max_iters
        if window_train_error < self.until_train_error and not capped:
            self.active, self.ended_at, self.ended_by_cap = False, iteration, False
            return True
        if self.max_iters is not None and iteration >= self.max_iters:
            self.active, self.ended_at, self.ended_by_cap = False, self.max_iters, True
            return True
        return False

    def state_dict(self) -> dict:
        return {
            "active": self.active,
            "until_train_error": self.until_train_error,
            "max_iters": self.max_iters,
            "ended_at": self.ended_at,
            "ended_by_cap": self.ended_by_cap,
        }

    def load_state_dict(self, state: dict) -> None:
        self.active = bool(state["active"])
        self.until_train_error = float(state["until_train_error"])
        self.max_iters = state.get("max_iters", self.max_iters)
        self.ended_at = state.get("ended_at")
        self.ended_by_cap = state.get("ended_by_cap")

    def report(self) -> dict:
        """run.json's account of the warm-up: whether it ran, when it ended and whether the cap ended it."""
        ran = self.active or self.ended_at is not None
        return {
            "warmup": ran,
            "warmup_max_iters": self.max_iters if ran else None,
            "warmup_ended_at": self.ended_at,
            "warmup_ended_by_cap": self.ended_by_cap,
        }


class Schedule:
    """The schedule config of one run, bound to its net: lr per iteration given the warm-up state."""

    def __init__(self, sched: Any, depth: int, arch: str = "resnet") -> None:
        self.base_lr = float(sched.lr)
        self.milestones = [int(m) for m in sched.milestones]
        self.gamma = float(sched.gamma)
        self.warmup_lr = float(sched.warmup.lr)
        warm = sched.warmup
        cap = warm.get("max_iters")
        self.warmup = WarmUp(
            active=warmup_enabled(warm.enabled, depth, warm.min_depth, arch, warm.get("archs", ("resnet",))),
            until_train_error=float(warm.until_train_error),
            max_iters=None if cap is None else int(cap),
        )

    def lr(self, iteration: int) -> float:
        return lr_at(
            iteration,
            lr=self.base_lr,
            milestones=self.milestones,
            gamma=self.gamma,
            warming_up=self.warmup.warming(iteration),
            warmup_lr=self.warmup_lr,
        )


def describe_warmup(info: dict) -> str:
    """run.json's warm-up record in words, for Table 6 and `degradation status`: "none", "on" (still warming up),
    "ended at 400" (the training error fell below the threshold), "cap at 4000" (the cap ended it), or "-" for a
    run.json written before the warm-up was recorded (it never ended, or never ran: unknown)."""
    end, ran = info.get("warmup_ended_at"), info.get("warmup")
    if end is not None and end == end:  # not NaN
        return f"cap at {int(end)}" if info.get("warmup_ended_by_cap") else f"ended at {int(end)}"
    if ran is None:
        return "-"
    return "on" if ran else "none"
