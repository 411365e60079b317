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


def warmup_enabled(enabled: Any, depth: int, min_depth: int) -> bool:
    """`auto` switches the warm-up on for depth >= min_depth (the paper: 110); true/false force it."""
    text = str(enabled).lower()
    if text == "auto":
        return int(depth) >= int(min_depth)
    return text == "true"


@dataclass
class WarmUp:
    """The warm-up's one bit of state: active until a logging window's training error is below the threshold.

    It never switches back on, so a run that left warm-up stays on the step schedule, as in the paper.
    """

    active: bool
    until_train_error: float
    ended_at: int | None = None  # the iteration whose window ended the warm-up (for the log and run.json)

    def observe(self, window_train_error: float, iteration: int) -> bool:
        """Feed one window's training error; return True when this window ends the warm-up."""
        if self.active and window_train_error < self.until_train_error:
            self.active = False
            self.ended_at = iteration
            return True
        return False

    def state_dict(self) -> dict:
        return {"active": self.active, "until_train_error": self.until_train_error, "ended_at": self.ended_at}

    def load_state_dict(self, state: dict) -> None:
        self.active = bool(state["active"])
        self.until_train_error = float(state["until_train_error"])
        self.ended_at = state.get("ended_at")


class Schedule:
    """The schedule config of one run, bound to its depth: lr per iteration given the warm-up state."""

    def __init__(self, sched: Any, depth: int) -> None:
        self.base_lr = float(sched.lr)
        self.milestones = [int(m) for m in sched.milestones]
        self.gamma = float(sched.gamma)
        self.max_iters = int(sched.max_iters)
        self.warmup_lr = float(sched.warmup.lr)
        self.warmup = WarmUp(
            active=warmup_enabled(sched.warmup.enabled, depth, sched.warmup.min_depth),
            until_train_error=float(sched.warmup.until_train_error),
        )

    def lr(self, iteration: int) -> float:
        return lr_at(
            iteration,
            lr=self.base_lr,
            milestones=self.milestones,
            gamma=self.gamma,
            warming_up=self.warmup.active,
            warmup_lr=self.warmup_lr,
        )
