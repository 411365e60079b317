"""What a resume restores besides the weights, and what the trained module's optimiser is made of.

- the optimiser: SGD with the composed config's momentum, weight decay and Nesterov flag, and the decay applied;
- the global random generators (torch, Python, NumPy) are drawn the same after a checkpoint's save and load as
  right after its save: every augmentation now has its own seeded generator, but the next user of a global one
  must resume to the same numbers;
- curve parts past the checkpoint are gone as soon as the resumed run starts, not only once it rewrites them.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from _train_helpers import folder_of, tiny_cfg, train_interrupted

from degradation.conf import compose
from degradation.models import build_model
from degradation.store.runs import read_curves
from degradation.train.module import TrainModule


class _Stream:
    """The stream interface a TrainModule saves and restores (no batches needed here)."""

    def __init__(self) -> None:
        self.position = 0

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = int(state["position"])


def _module(*overrides: str) -> TrainModule:
    cfg = compose(["model.depth=8", "data=synthetic", *overrides])
    return TrainModule(build_model(cfg.model), _Stream(), {}, cfg.schedule, depth=8)


@pytest.mark.parametrize("overrides", [[], ["schedule.weight_decay=5e-4", "schedule.momentum=0.5",
                                            "schedule.nesterov=true"]])
def test_the_optimiser_is_the_configs_sgd(overrides: list[str]) -> None:
    sched = compose(["data=synthetic", *overrides]).schedule
    optimiser = _module(*overrides).configure_optimizers()
    assert isinstance(optimiser, torch.optim.SGD)
    (group,) = optimiser.param_groups
    assert (group["weight_decay"], group["momentum"], group["nesterov"]) == (
        sched.weight_decay, sched.momentum, sched.nesterov)
    assert group["lr"] == pytest.approx(sched.lr)


def test_the_papers_weight_decay_shrinks_the_weights() -> None:
    """A step with a zero loss gradient still moves every weight by -lr x 1e-4 x w (the paper's decay)."""
    module = _module("schedule=paper")
    optimiser = module.configure_optimizers()
    weight = next(module.model.parameters())
    before = weight.detach().clone()
    for p in module.model.parameters():
        p.grad = torch.zeros_like(p)
    optimiser.step()
    assert torch.allclose(before - weight.detach(), before * 0.1 * 1e-4, rtol=0.05, atol=1e-12)


def _draws() -> tuple:
    return torch.rand(3).tolist(), random.random(), np.random.rand(2).tolist()


def test_global_random_draws_resume_where_the_checkpoint_was_saved() -> None:
    torch.manual_seed(1)
    random.seed(1)
    np.random.seed(1)
    saved = _module()
    checkpoint: dict = {}
    saved.on_save_checkpoint(checkpoint)
    expected = _draws()
    _draws()  # the generators move on (the killed run went on training)
    assert _draws() != expected
    resumed = _module()
    resumed.on_load_checkpoint(checkpoint)
    assert _draws() == expected


def test_parts_past_the_checkpoint_are_gone_when_the_resumed_run_starts(tmp_path, monkeypatch) -> None:
    """A run that failed after iteration 10 (a diverged loss, say) flushed its curves to 10 past its checkpoint at
    8. Rerun, it resumes at 8 and is stopped after iteration 9, before it writes its own window 10: no row past
    its checkpoint may be left from the failed session."""
    from degradation.errors import RunFailed
    from degradation.train.run import train

    original = TrainModule.on_train_batch_end

    def fail_at_10(self, *args) -> None:
        original(self, *args)
        if self.iteration == 10:
            raise RunFailed("loss is nan")

    folder = folder_of(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(TrainModule, "on_train_batch_end", fail_at_10)
        assert train(tiny_cfg(tmp_path))["status"] == "failed"
    assert max(read_curves(folder).step) == 10
    train_interrupted(tiny_cfg(tmp_path), monkeypatch, at=9)
    steps = sorted(set(read_curves(folder).step))
    assert steps and max(steps) <= 8, steps
