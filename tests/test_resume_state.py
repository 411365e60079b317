"""What a resume restores besides the weights, and what the trained module's optimiser is made of.

- the optimiser: SGD with the composed config's momentum, weight decay and Nesterov flag, and the decay applied;
- the global random generators (torch, Python, NumPy) are drawn the same after a checkpoint's save and load as
  right after its save: every augmentation now has its own seeded generator, but the next user of a global one
  must resume to the same numbers;
- the CUDA generators, one state per device, without starting CUDA in a run that never used it;
- the window being summed, the layer record, the last and best evaluations and the curve history;
- curve parts past the checkpoint are gone as soon as the resumed run starts, not only once it rewrites them.
"""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch
from _train_helpers import folder_of, tiny_cfg, train_interrupted

from degradation.conf import compose
from degradation.models import build_model
from degradation.store.runs import part_step, read_curves, trim_parts
from degradation.train.curvewriter import CurveWriter
from degradation.train.module import NullRecorder, TrainModule


class _Stream:
    """The stream interface a TrainModule saves and restores (no batches needed here)."""

    def __init__(self) -> None:
        self.position = 0

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = int(state["position"])


class _Recorder(NullRecorder):
    """Rank zero's recorder as the checkpoint sees it: the curve rows so far, and where a resume puts them back."""

    def __init__(self, rows: dict | None) -> None:
        self.rows, self.restored = rows, None

    def curve_history(self) -> dict | None:
        return self.rows

    def restore_curve_history(self, state: dict) -> None:
        self.restored = state


def _module(*overrides: str, recorder=None, record_layers: bool = False) -> TrainModule:
    cfg = compose(["model.depth=8", "data=synthetic", *overrides])
    return TrainModule(build_model(cfg.model), _Stream(), {}, cfg.schedule, depth=8, recorder=recorder,
                       record_layers=record_layers)


def _through_a_file(checkpoint: dict) -> dict:
    """The checkpoint as a resume reads it: saved, then loaded with weights_only=True."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


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


def _mid_run(module: TrainModule) -> TrainModule:
    """A module part-way through a window, with evaluations behind it and a layer record running."""
    module._acc = torch.tensor([3.25, 5.0])
    module._window_steps, module._window_images = 3, 48
    assert module.flow is not None
    module.flow.acc = torch.arange(2.0 * len(module.flow.weights)).reshape(2, -1) + 0.5
    module.last = {"train_error": 0.25, "train_loss": 0.75, "test_error": 0.375}
    module.last_eval = {"test": (0.375, 1.5), "val": (0.125, 0.625)}
    module.best_test = (0.3125, 30)
    return module


def test_the_window_evaluations_layer_record_and_curve_history_resume_as_saved() -> None:
    """The first window after a resume sums on from the saved one (losses, misclassified images, layer norms);
    the run's last and best evaluations and its curve rows so far come back as they were."""
    rows = {"rows": [[4, "train", "error", 0.5, 1.0]]}
    saved = _mid_run(_module(recorder=_Recorder(rows), record_layers=True))
    checkpoint: dict = {}
    saved.on_save_checkpoint(checkpoint)
    checkpoint = _through_a_file(checkpoint)
    resumed = _module(recorder=_Recorder(None), record_layers=True)
    resumed.on_load_checkpoint(checkpoint)
    assert resumed._acc is not None and torch.equal(resumed._acc, saved._acc)
    assert (resumed._window_steps, resumed._window_images) == (3, 48)
    assert resumed.flow is not None and resumed.flow.acc is not None and saved.flow is not None
    assert torch.equal(resumed.flow.acc, saved.flow.acc)
    assert resumed.last == saved.last
    assert resumed.last_eval == saved.last_eval
    assert resumed.best_test == (0.3125, 30) and isinstance(resumed.best_test[1], int)
    assert isinstance(resumed.recorder, _Recorder) and resumed.recorder.restored == rows


def test_a_checkpoint_resumes_with_the_layer_record_switched_off_and_on_a_rank_that_keeps_no_curves() -> None:
    """trainer.record_layers is not part of the run id, so a run started recording layers may resume without; and
    every rank loads the checkpoint rank zero wrote, curve rows included, though only rank zero keeps them."""
    saved = _mid_run(_module(recorder=_Recorder({"rows": []}), record_layers=True))
    checkpoint: dict = {}
    saved.on_save_checkpoint(checkpoint)
    other_rank = _module()  # NullRecorder, no layer record
    other_rank.on_load_checkpoint(_through_a_file(checkpoint))
    assert other_rank.flow is None and other_rank.best_test == (0.3125, 30)


def test_a_run_that_never_recorded_a_best_test_or_curves_resumes_without_them() -> None:
    saved = _module(recorder=_Recorder(None), record_layers=True)  # a rank that keeps no curve rows
    checkpoint: dict = {}
    saved.on_save_checkpoint(checkpoint)
    assert checkpoint["degradation"]["best_test"] is None and "curves" not in checkpoint["degradation"]
    resumed = _module(recorder=_Recorder(None), record_layers=True)
    resumed.on_load_checkpoint(_through_a_file(checkpoint))
    assert resumed.best_test is None and resumed.flow is not None and resumed.flow.acc is None
    assert isinstance(resumed.recorder, _Recorder) and resumed.recorder.restored is None


class _FakeCuda:
    """Two CUDA devices faked on a CPU: their generator states, and which device got which state back."""

    def __init__(self, monkeypatch, initialized: bool) -> None:
        self.states = [torch.full((16,), 7, dtype=torch.uint8), torch.full((16,), 9, dtype=torch.uint8)]
        self.read = 0
        self.restored: dict[int, torch.Tensor] = {}
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_initialized", lambda: initialized)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
        monkeypatch.setattr(torch.cuda, "get_rng_state_all", self.get_all)
        monkeypatch.setattr(torch.cuda, "set_rng_state", self.set)

    def get_all(self) -> list[torch.Tensor]:
        self.read += 1
        return [s.clone() for s in self.states]

    def set(self, state: torch.Tensor, device: int | str = "cuda") -> None:
        self.restored[0 if device == "cuda" else int(device)] = state.clone()


def test_each_cuda_generator_resumes_with_its_own_devices_state(monkeypatch) -> None:
    cuda = _FakeCuda(monkeypatch, initialized=True)
    checkpoint: dict = {}
    _module().on_save_checkpoint(checkpoint)
    checkpoint = _through_a_file(checkpoint)
    _module().on_load_checkpoint(checkpoint)
    assert sorted(cuda.restored) == [0, 1]
    assert all(torch.equal(cuda.restored[i], cuda.states[i]) for i in (0, 1))


def test_a_run_that_never_started_cuda_does_not_start_it_to_checkpoint_and_resumes_where_cuda_is(monkeypatch) -> None:
    """A CPU run on a GPU machine: reading the CUDA generators would create a context on every GPU at each
    checkpoint. Its checkpoint then has no CUDA states, and resumes on the same machine (accelerator is not part
    of the run id, so also as a GPU run) with the CUDA generators left alone."""
    cuda = _FakeCuda(monkeypatch, initialized=False)
    checkpoint: dict = {}
    _module().on_save_checkpoint(checkpoint)
    assert cuda.read == 0 and "cuda" not in checkpoint["degradation"]["rng"]
    _module().on_load_checkpoint(_through_a_file(checkpoint))
    assert cuda.restored == {}


def test_trim_drops_curve_and_layers_parts_past_the_checkpoint_and_temps_a_kill_left(tmp_path) -> None:
    """Resuming at 8: the curve and layer parts of 12 go, and the half-written temp files of an atomic write a kill
    cut short; parts up to 8 and any file that is not a part stay."""
    ids = {"run_id": "r", "arch": "plain", "depth": 8, "shortcut": "none", "dataset": "synthetic", "preset": "smoke",
           "seed": 0}  # fmt: skip
    writer = CurveWriter(tmp_path, ids, batch_size=16, train_size=64)
    for step in (4, 8, 12):
        writer.add(step, "train", "error", 0.5, 1.0)
        writer.flush(step)
    curves, layers = tmp_path / "curves", tmp_path / "layers"
    layers.mkdir()
    for name in ("part-000000008.parquet", "part-000000012.parquet", "notes.txt"):
        (layers / name).write_bytes(b"")
    (curves / ".part-000000016.parquet~w~x.tmp").write_bytes(b"half")
    assert part_step(curves / ".part-000000016.parquet~w~x.tmp") is None and part_step(layers / "notes.txt") is None
    assert part_step(curves / "part-000000012.parquet") == 12
    removed = trim_parts(tmp_path, 8)
    assert sorted(str(p.relative_to(tmp_path)) for p in removed) == [
        "curves/.part-000000016.parquet~w~x.tmp", "curves/part-000000012.parquet", "layers/part-000000012.parquet"]
    assert sorted(p.name for p in curves.iterdir()) == ["part-000000004.parquet", "part-000000008.parquet"]
    assert sorted(p.name for p in layers.iterdir()) == ["notes.txt", "part-000000008.parquet"]
    assert list(read_curves(tmp_path).step) == [4, 8]
