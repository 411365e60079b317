"""Activation checkpointing changes nothing but memory; training memory is measured right and fits ResNet-1202.

Checkpointed nets train bit-identically to plain ones (loss, every gradient, BN statistics and counters, eval
outputs), also under bf16 autocast; eval/no-grad forwards (Figure 7's responses) run plainly; the saved-bytes
count matches a hand count and is affine in the batch; ResNet-1202 at batch 128 fits in 16 GiB with it.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from degradation.models import ResponseRecorder, cifar_net
from degradation.models import recompute as recompute_module
from degradation.models.memory import activation_bytes, training_memory
from degradation.models.recompute import (
    CheckpointedStage,
    activation_checkpointing,
    default_segments,
    disable_activation_checkpointing,
    enable_activation_checkpointing,
    recomputing,
    segment_bounds,
)

GIB = 2**30
MIB = 2**20


def _batches(steps: int, batch: int = 8, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(batch, 3, 32, 32, generator=generator), torch.randint(0, 10, (batch,), generator=generator))
        for _ in range(steps)
    ]


def _pair(arch: str, depth: int, shortcut: str = "A", segments: int | None = None) -> tuple[nn.Module, nn.Module]:
    """The same freshly initialised net twice: plain, and checkpointed."""
    torch.manual_seed(0)
    plain = cifar_net(arch, depth, shortcut)
    return plain, enable_activation_checkpointing(copy.deepcopy(plain), segments)


def _train_both(plain: nn.Module, checkpointed: nn.Module, steps: int, autocast: torch.dtype | None = None) -> None:
    """SGD steps on both nets with the paper's optimiser; asserts equal loss and gradients at every step."""
    optimizers = [
        torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4) for m in (plain, checkpointed)
    ]
    for x, y in _batches(steps):
        losses = []
        for model, optimizer in zip((plain, checkpointed), optimizers, strict=True):
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=autocast, enabled=autocast is not None):
                loss = F.cross_entropy(model(x), y)
            loss.backward()
            losses.append(loss.detach())
        assert torch.equal(*losses)
        for (name, p), q in zip(plain.named_parameters(), checkpointed.parameters(), strict=True):
            assert torch.equal(p.grad, q.grad), name
        for optimizer in optimizers:
            optimizer.step()


def _assert_same_state(plain: nn.Module, checkpointed: nn.Module, steps: int) -> None:
    a, b = plain.state_dict(), checkpointed.state_dict()
    assert list(a) == list(b)  # checkpointing leaves the state-dict keys alone
    for key in a:
        assert torch.equal(a[key], b[key]), key
    counters = [v for k, v in b.items() if k.endswith("num_batches_tracked")]
    assert counters and all(int(c) == steps for c in counters)  # one BN update per step, not two


# --- checkpointing: the same training --------------------------------------------------------------------


@pytest.mark.parametrize(("arch", "shortcut"), [("resnet", "A"), ("resnet", "B"), ("plain", "A")])
def test_checkpointed_training_is_bit_identical(arch: str, shortcut: str) -> None:
    plain, checkpointed = _pair(arch, 20, shortcut)
    _train_both(plain, checkpointed, steps=3)
    _assert_same_state(plain, checkpointed, steps=3)
    x, _ = _batches(1, seed=7)[0]
    plain.eval()
    checkpointed.eval()
    with torch.no_grad():
        assert torch.equal(plain(x), checkpointed(x))


@pytest.mark.parametrize("segments", [1, 5])
def test_any_segment_count_trains_identically(segments: int) -> None:
    plain, checkpointed = _pair("resnet", 32, "A", segments)  # n = 5: one segment per stage, or one per block
    _train_both(plain, checkpointed, steps=2)
    _assert_same_state(plain, checkpointed, steps=2)


def test_bf16_autocast_trains_identically() -> None:
    plain, checkpointed = _pair("resnet", 20)
    _train_both(plain, checkpointed, steps=2, autocast=torch.bfloat16)
    _assert_same_state(plain, checkpointed, steps=2)


def test_no_rng_state_is_read(monkeypatch) -> None:
    """Reading RNG state is illegal while a CUDA graph is captured; a checkpointed step must not need it."""

    def forbidden(*args, **kwargs):
        raise AssertionError("RNG state read")

    monkeypatch.setattr(torch, "get_rng_state", forbidden)
    monkeypatch.setattr(torch.cuda, "get_rng_state", forbidden)
    _, checkpointed = _pair("resnet", 8)
    x, y = _batches(1)[0]
    F.cross_entropy(checkpointed(x), y).backward()


def test_segments_are_recomputed_in_backward_and_hooks_can_tell() -> None:
    _, checkpointed = _pair("resnet", 20)
    seen: list[bool] = []
    checkpointed.stage2[1].bn1.register_forward_hook(lambda *_: seen.append(recomputing()))
    x, y = _batches(1)[0]
    loss = F.cross_entropy(checkpointed(x), y)
    assert seen == [False]
    loss.backward()
    assert seen == [False, True]  # ran again for backward, flagged as a recomputation
    assert not recomputing()


def test_eval_and_no_grad_forwards_skip_checkpointing(monkeypatch) -> None:
    plain, checkpointed = _pair("resnet", 20)

    def no_checkpoint(*args, **kwargs):
        raise AssertionError("checkpoint called")

    monkeypatch.setattr(recompute_module, "checkpoint", no_checkpoint)
    x, _ = _batches(1)[0]
    with torch.no_grad():
        assert torch.equal(plain(x), checkpointed(x))  # train mode, no grad: BN statistics updated once each
        plain.eval()
        checkpointed.eval()
        assert torch.equal(plain(x), checkpointed(x))
    _assert_same_state(plain, checkpointed, steps=1)


def test_response_recorder_records_each_forward_once() -> None:
    plain, checkpointed = _pair("resnet", 20)
    plain.eval()
    checkpointed.eval()
    stats = []
    for model in (plain, checkpointed):
        with torch.no_grad(), ResponseRecorder(model) as recorder:
            for x, _ in _batches(2):
                model(x)
        stats.append((recorder.counts, recorder.std()))
    assert stats[0] == stats[1]
    assert set(stats[1][0].values()) == {2 * 8 * 16 * 32 * 32} | {2 * 8 * 32 * 16 * 16} | {2 * 8 * 64 * 8 * 8}


def test_enable_and_disable_in_place() -> None:
    model = cifar_net("resnet", 20)
    keys = list(model.state_dict())
    assert enable_activation_checkpointing(model) is model
    assert activation_checkpointing(model) and list(model.state_dict()) == keys
    assert [stage.segments for stage in (model.stage1, model.stage2, model.stage3)] == [2, 2, 2]
    enable_activation_checkpointing(model, 3)
    assert model.stage3.segments == 3
    assert disable_activation_checkpointing(model) is model
    assert not activation_checkpointing(model) and type(model.stage1) is nn.Sequential
    assert list(model.state_dict()) == keys
    with pytest.raises(ValueError, match="at least 1"):
        enable_activation_checkpointing(model, 0)
    with pytest.raises(ValueError, match="no stage1"):
        enable_activation_checkpointing(nn.Linear(2, 2))


def test_segments_default_to_about_sqrt_blocks_and_cover_each_stage() -> None:
    assert [default_segments(n) for n in (1, 3, 5, 9, 18, 200)] == [1, 2, 2, 3, 4, 14]
    for blocks, segments in [(200, 14), (3, 2), (5, 5), (4, 9)]:
        bounds = segment_bounds(blocks, segments)
        assert bounds[0][0] == 0 and bounds[-1][1] == blocks
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
        sizes = [stop - start for start, stop in bounds]
        assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


# --- memory ---------------------------------------------------------------------------------------------


def _per_image_bytes(n: int, projection: bool) -> int:
    """Hand count (fp32) of what one image adds: the input, stem conv and ReLU maps, 4 maps per block (conv1
    and conv2 outputs, each ReLU output), projection BN inputs (option B), pooled features, log-probs, label."""
    maps = [16 * 32 * 32, 32 * 16 * 16, 64 * 8 * 8]
    total = 3 * 32 * 32 + 2 * maps[0] + 4 * n * sum(maps) + (maps[1] + maps[2] if projection else 0) + 64 + 10
    return 4 * total + 8


@pytest.mark.parametrize(("arch", "shortcut"), [("resnet", "A"), ("resnet", "B"), ("plain", "A")])
def test_activation_bytes_match_a_hand_count(arch: str, shortcut: str) -> None:
    model = cifar_net(arch, 20, shortcut)
    one, two = activation_bytes(model, 1), activation_bytes(model, 2)
    assert two - one == _per_image_bytes(3, projection=shortcut == "B" and arch == "resnet")


def test_activation_bytes_are_affine_in_batch_and_leave_the_model_alone() -> None:
    model = cifar_net("resnet", 20).eval()
    state = copy.deepcopy(model.state_dict())
    for precision in ("32-true", "bf16-mixed"):
        sizes = {b: activation_bytes(model, b, precision) for b in (1, 2, 4, 8)}
        slope = sizes[2] - sizes[1]
        assert all(sizes[b] == sizes[1] + (b - 1) * slope for b in sizes), (precision, sizes)
    assert not model.training
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_bf16_halves_activations_and_checkpointing_cuts_them() -> None:
    model = cifar_net("resnet", 32)
    fp32, bf16 = activation_bytes(model, 8), activation_bytes(model, 8, "bf16-mixed")
    assert 0.45 < bf16 / fp32 < 0.55
    enable_activation_checkpointing(model)
    stored = activation_bytes(model, 8)
    assert stored < fp32 / 4
    assert activation_checkpointing(model)  # measuring did not switch it off
    with pytest.raises(ValueError, match="precision"):
        activation_bytes(model, 8, "64-true")


def test_training_memory_extrapolates_exactly_and_adds_up() -> None:
    model = cifar_net("resnet", 20)
    enable_activation_checkpointing(model, 3)
    for checkpointing in (False, True):
        report = training_memory(model, 8, checkpointing=checkpointing)
        reference = copy.deepcopy(model)  # checkpointed in 3 segments, which training_memory keeps
        if not checkpointing:
            disable_activation_checkpointing(reference)
        assert report["activations"] == activation_bytes(reference, 8)
        assert report["params"] == report["grads"] == report["momentum"] == 4 * 269_722
        parts = ("params", "grads", "momentum", "buffers", "activations", "recompute")
        assert report["total"] == sum(report[k] for k in parts)
        assert (report["recompute"] > 0) == checkpointing
    assert model.stage1.segments == 3  # left as configured
    plain = training_memory(model, 128, checkpointing=False)
    assert training_memory(model, 128, checkpointing=True)["total"] < plain["total"]


@pytest.fixture(scope="module")
def resnet1202() -> nn.Module:
    return cifar_net("resnet", 1202)


def test_resnet1202_at_batch_128_fits_16_gib_with_checkpointing(resnet1202, record_property) -> None:
    with_ckpt = training_memory(resnet1202, 128, "32-true", checkpointing=True)
    without = training_memory(resnet1202, 128, "32-true", checkpointing=False)
    assert with_ckpt["total"] < 16 * GIB
    assert with_ckpt["activations"] + with_ckpt["recompute"] < without["activations"] / 10
    for name, report in (("with", with_ckpt), ("without", without)):
        record_property(f"resnet1202_b128_fp32_{name}_checkpointing_total_mib", report["total"] // MIB)
    assert not activation_checkpointing(resnet1202)
    assert isinstance(resnet1202.stage1, nn.Sequential) and not isinstance(resnet1202.stage1, CheckpointedStage)


README_MEMORY = re.compile(
    r"ResNet-110 (?P<r110_fp32>[\d.]+) GiB fp32 / (?P<r110_bf16>[\d.]+) GiB bf16; ResNet-1202 (?P<r1202_fp32>[\d.]+) "
    r"GiB fp32 / (?P<r1202_bf16>[\d.]+) GiB bf16, and (?P<r1202_ckpt>[\d.]+) GiB fp32 with activation checkpointing"
)


def test_the_readmes_memory_figures_are_what_is_measured(resnet1202) -> None:
    """README, "Running on a GPU": the GiB a training step holds at batch 128, to the decimal it states."""
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    found = README_MEMORY.search(readme)
    assert found, "the README's memory sentence changed: update README_MEMORY with it"
    stated = {key: float(value) for key, value in found.groupdict().items()}
    resnet110 = cifar_net("resnet", 110)
    measured = {
        "r110_fp32": training_memory(resnet110, 128, "32-true", checkpointing=False),
        "r110_bf16": training_memory(resnet110, 128, "bf16-mixed", checkpointing=False),
        "r1202_fp32": training_memory(resnet1202, 128, "32-true", checkpointing=False),
        "r1202_bf16": training_memory(resnet1202, 128, "bf16-mixed", checkpointing=False),
        "r1202_ckpt": training_memory(resnet1202, 128, "32-true", checkpointing=True),
    }
    assert {key: round(report["total"] / GIB, 1) for key, report in measured.items()} == stated
