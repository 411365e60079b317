"""The training stream and the eval sets: augmentation, normalisation, order, determinism, resume, ranks."""

from __future__ import annotations

import pytest
import torch

from degradation.data import BatchStream, EvalSet, fit_normalizer
from degradation.data.normalize import Normalizer
from degradation.data.stream import epoch_seed
from degradation.errors import UsageError

IDENTITY = Normalizer("mean_image", torch.zeros(3, 32, 32), torch.ones(3))  # x = pixel / 255


def _random_set(n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), generator=gen, dtype=torch.uint8), torch.arange(n) % 10


def _coordinate_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel 0 holds row + 1, channel 1 col + 1 (0 is the padding), channel 2 the image's index."""
    grid = torch.arange(1, 33, dtype=torch.uint8)
    images = torch.empty(n, 3, 32, 32, dtype=torch.uint8)
    images[:, 0] = grid.view(32, 1)
    images[:, 1] = grid.view(1, 32)
    images[:, 2] = torch.arange(n, dtype=torch.uint8).view(n, 1, 1)
    return images, torch.arange(n) % 10


def _draw(stream: BatchStream, batches: int) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*(next(stream) for _ in range(batches)), strict=True)
    return torch.cat(xs), torch.cat(ys)


def test_batches_have_the_contracted_shapes_dtypes_and_layout() -> None:
    images, labels = _random_set(30)
    norm = fit_normalizer(images)
    for fmt in (torch.contiguous_format, torch.channels_last):
        stream = BatchStream(images, labels, norm, batch_size=16, seed=0, memory_format=fmt)
        for _ in range(4):  # 64 samples from 30 images: batches straddle epochs and are still full
            x, y = next(stream)
            assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32 and x.is_contiguous(memory_format=fmt)
            assert y.shape == (16,) and y.dtype == torch.int64 and x.device.type == "cpu"
            assert int(y.min()) >= 0 and int(y.max()) < 10
        assert stream.samples_seen == 64 and stream.epoch == pytest.approx(64 / 30)
        assert stream.epoch_size_float == pytest.approx(30 / 16) and stream.batch_size == 16


def test_the_mean_image_is_cropped_and_flipped_with_its_pixels() -> None:
    images, labels = _coordinate_images(50)
    mean = images[0].float() / 255  # the row and column channels are the same in every image
    mean[2] = 0
    x, _ = _draw(BatchStream(images, labels, Normalizer("mean_image", mean, torch.ones(3)), batch_size=100, seed=1), 4)
    plain, _ = _draw(BatchStream(images, labels, IDENTITY, batch_size=100, seed=1), 4)
    assert plain[:, :2].abs().amax() > 0.1  # crops and flips moved the pixels ...
    assert x[:, :2].abs().amax() < 1e-6  # ... and the mean moved with them: each pixel minus its own mean is zero
    assert torch.equal(x[:, 2], plain[:, 2])


def test_every_epoch_is_a_permutation_of_the_training_set() -> None:
    images, labels = _coordinate_images(24)
    stream = BatchStream(images, labels, IDENTITY, batch_size=8, seed=5)
    x, y = _draw(stream, 9)  # three epochs
    index = (x[:, 2, 16, 16] * 255).round().long()  # channel 2 is constant: crop and flip keep it
    first, second, third = index.split(24)
    assert sorted(first.tolist()) == sorted(second.tolist()) == sorted(third.tolist()) == list(range(24))
    assert not torch.equal(first, second)  # reshuffled every epoch
    assert torch.equal(y, labels[index])


def test_crops_reach_all_81_offsets_and_about_half_are_flipped() -> None:
    images, labels = _coordinate_images(50)
    stream = BatchStream(images, labels, IDENTITY, batch_size=100, seed=1)
    x, _ = _draw(stream, 40)
    pixels = (x * 255).round().long()
    row, col = pixels[:, 0], pixels[:, 1]
    # The centre pixel is inside the image for every offset; its neighbour says which way columns run.
    flipped = col[:, 16, 17] < col[:, 16, 16]
    dy = row[:, 16, 16] - 1 - 16
    dx = torch.where(flipped, col[:, 16, 16] - 1 - 15, col[:, 16, 16] - 1 - 16)
    assert dy.abs().max() <= 4 and dx.abs().max() <= 4
    assert len(set(zip(dy.tolist(), dx.tolist(), strict=True))) == 81
    assert 0.45 < flipped.float().mean().item() < 0.55
    # Every output pixel is the source pixel at (i + dy, j + dx), mirrored if flipped, or 0 (padding) outside.
    i = torch.arange(32).view(1, 32, 1)
    j = torch.arange(32).view(1, 1, 32)
    src_row = i + dy.view(-1, 1, 1)
    src_col = torch.where(flipped.view(-1, 1, 1), 31 - j, j) + dx.view(-1, 1, 1)
    inside = (src_row >= 0) & (src_row < 32) & (src_col >= 0) & (src_col < 32)
    assert torch.equal(row, torch.where(inside, src_row + 1, 0))
    assert torch.equal(col, torch.where(inside, src_col + 1, 0))


def test_padding_is_zero_after_normalisation() -> None:
    images, labels = _random_set(20)
    norm = fit_normalizer(images)
    stream = BatchStream(images, labels, norm, batch_size=64, seed=0)
    ids = stream._positions(0, 64)  # noqa: SLF001 - the planned offsets say where padding must be
    x, _ = next(stream)
    top_padded = ids[1] == 0  # crop starts at padded row 0: the first 4 rows are padding
    assert top_padded.any()
    assert torch.all(x[top_padded, :, :4, :] == 0)
    assert not torch.all(x[~top_padded, :, :4, :] == 0)


def test_same_seed_same_batches_other_seed_other_batches() -> None:
    images, labels = _random_set()
    norm = fit_normalizer(images)
    a, b, c = (BatchStream(images, labels, norm, batch_size=16, seed=s) for s in (3, 3, 4))
    xa, ya = _draw(a, 5)
    xb, yb = _draw(b, 5)
    xc, _ = _draw(c, 5)
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(xa, xc)


@pytest.mark.parametrize("stop_after", [1, 2, 3, 7])
def test_restored_position_continues_exactly_like_the_uninterrupted_stream(stop_after: int) -> None:
    images, labels = _random_set(40)
    norm = fit_normalizer(images)
    whole = BatchStream(images, labels, norm, batch_size=16, seed=9)
    reference = [next(whole) for _ in range(stop_after + 6)]
    first = BatchStream(images, labels, norm, batch_size=16, seed=9)
    _draw(first, stop_after)
    saved = first.state_dict()
    assert all(isinstance(v, int) for v in saved.values())
    resumed = BatchStream(images, labels, norm, batch_size=16, seed=0)  # seed comes back with the state
    resumed.load_state_dict(saved)
    for x_ref, y_ref in reference[stop_after:]:
        x, y = next(resumed)
        assert torch.equal(x, x_ref) and torch.equal(y, y_ref)


def test_state_from_other_data_or_batch_size_is_refused() -> None:
    images, labels = _random_set(40)
    norm = fit_normalizer(images)
    state = BatchStream(images, labels, norm, batch_size=16, seed=0).state_dict()
    with pytest.raises(UsageError, match="40 images at batch 16, this run has 30 at batch 16"):
        BatchStream(images[:30], labels[:30], norm, batch_size=16, seed=0).load_state_dict(state)
    with pytest.raises(UsageError, match="this run has 40 at batch 8; resume with the same data and schedule, or "
                                         "start a new run"):
        BatchStream(images, labels, norm, batch_size=8, seed=0).load_state_dict(state)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
def test_ranks_yield_their_slices_of_the_same_global_batch(fmt: torch.memory_format) -> None:
    images, labels = _random_set(36)
    norm = fit_normalizer(images)
    single = BatchStream(images, labels, norm, batch_size=24, seed=2, memory_format=fmt)
    ranks = [
        BatchStream(images, labels, norm, batch_size=24, seed=2, memory_format=fmt, world_size=3, rank=r)
        for r in range(3)
    ]
    for _ in range(5):
        x, y = next(single)
        parts = [next(r) for r in ranks]
        assert all(p[0].shape[0] == 8 for p in parts)
        assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(torch.cat([p[1] for p in parts]), y)
    assert ranks[1].state_dict() == single.state_dict()


def test_bad_layouts_are_usage_errors() -> None:
    images, labels = _random_set(8)
    with pytest.raises(UsageError, match="does not divide among 3 ranks"):
        BatchStream(images, labels, IDENTITY, batch_size=16, seed=0, world_size=3, rank=0)
    with pytest.raises(UsageError, match="rank 2 of world size 2"):
        BatchStream(images, labels, IDENTITY, batch_size=16, seed=0, world_size=2, rank=2)
    with pytest.raises(UsageError, match="batch size 0"):
        BatchStream(images, labels, IDENTITY, batch_size=0, seed=0)


def test_mean_image_subtraction_is_exact() -> None:
    images, labels = _random_set(50)
    norm = fit_normalizer(images, "mean_image")
    expected_mean = images.double().mean(0) / 255
    torch.testing.assert_close(norm.mean.double(), expected_mean, atol=1e-7, rtol=0)
    assert torch.equal(norm.inv_std, torch.ones(3))  # the paper: subtract the mean image, nothing else
    x = torch.cat([xb for xb, _ in EvalSet(images, labels, norm, batch_size=7)])
    torch.testing.assert_close(x.double(), images.double() / 255 - expected_mean, atol=1e-6, rtol=0)
    assert x.double().mean(0).abs().max() < 1e-6  # the training set's mean image is now zero everywhere


def test_channel_normalisation_gives_zero_mean_unit_std() -> None:
    images, labels = _random_set(50)
    images[:, 1] //= 4  # make the channels differ
    norm = fit_normalizer(images, "channel")
    x = torch.cat([xb for xb, _ in EvalSet(images, labels, norm, batch_size=16)]).double()
    torch.testing.assert_close(x.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=1e-5, rtol=0)
    std = x.std(dim=(0, 2, 3), unbiased=False)
    torch.testing.assert_close(std, torch.ones(3, dtype=torch.float64), atol=1e-5, rtol=0)
    with pytest.raises(UsageError, match="choose mean_image or channel"):
        fit_normalizer(images, "per_pixel")


def test_unaugmented_stream_matches_the_eval_set() -> None:
    images, labels = _random_set(16)
    norm = fit_normalizer(images, "channel")
    stream = BatchStream(images, labels, norm, batch_size=16, seed=0, augment=False)
    x, y = next(stream)
    order = stream._positions(0, 16)[0]  # noqa: SLF001 - the shuffled order of the first epoch
    evaluated = torch.cat([xb for xb, _ in EvalSet(images, labels, norm, batch_size=5)])
    assert torch.equal(y, labels[order])
    torch.testing.assert_close(x, evaluated[order])


def test_eval_set_covers_every_image_once_in_order() -> None:
    images, labels = _random_set(23)
    evalset = EvalSet(images, labels, fit_normalizer(images), batch_size=10, memory_format=torch.channels_last)
    batches = list(evalset)
    assert len(evalset) == 23 and evalset.num_batches == 3 and [len(y) for _, y in batches] == [10, 10, 3]
    assert torch.equal(torch.cat([y for _, y in batches]), labels)
    assert all(x.is_contiguous(memory_format=torch.channels_last) and x.dtype == torch.float32 for x, _ in batches)


def test_epoch_seeds_are_pinned_so_a_resumed_run_draws_what_it_would_have() -> None:
    """A checkpoint written by one version of the tool and resumed by the next continues the same draws."""
    assert epoch_seed(0, 0) == 927608880330782573
    assert epoch_seed(0, 0, "images") == 8123525400887501606
    assert epoch_seed(7, 3) == 7911406775518804076
