"""Batches on the training device: an endless, seeded, augmented training stream and unaugmented eval sets.

The training images live on the device once, as uint8 already zero-padded by PAD pixels, with the channels of
each pixel packed into one 32-bit word. A batch is then one gather: each sample's image, crop offset (0..2*PAD
in each direction) and flip become one word index per output pixel (a flip just reverses the column index).
The matching crop of the (padded) mean image comes from a table of all 2*(2*PAD+1)**2 crops, and one fused
multiply-add normalises. No per-image Python, no host round trip; the gathered pixels are already
channels_last.

Randomness is planned per epoch on the CPU from a generator seeded by (seed, epoch): the permutation and every
position's crop offset and flip. The same seed gives the same batches on every device, and the stream's whole
state is the number of samples it has handed out, so a resumed run sees exactly the batches it would have seen.
Padding happens in normalised space: the border is 0 after normalisation (the mean, for `mean_image`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch

from degradation.compute.ranks import split_batch
from degradation.data.normalize import Normalizer
from degradation.errors import UsageError

PAD = 4
_STATE_VERSION = 1


def epoch_seed(seed: int, epoch: int, stream: str = "stream") -> int:
    """A well-mixed 63-bit seed per (stream, seed, epoch): neighbouring seeds do not share epochs, and the two
    training streams ("stream": images in memory, "images": image files) draw apart."""
    digest = hashlib.blake2b(f"degradation-{stream}:{seed}:{epoch}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class _EpochPlan:
    """One epoch's order and augmentation, on the device: position -> (image, crop row, crop col, flip)."""

    def __init__(self, num_images: int, seed: int, epoch: int, device: torch.device) -> None:
        gen = torch.Generator().manual_seed(epoch_seed(seed, epoch))
        order = torch.randperm(num_images, generator=gen)
        offsets = torch.randint(0, 2 * PAD + 1, (2, num_images), generator=gen)
        flip = torch.randint(0, 2, (num_images,), generator=gen).bool()
        self.order, self.row, self.col, self.flip = (
            _to_device(t, device) for t in (order, offsets[0].contiguous(), offsets[1].contiguous(), flip)
        )


def _to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Onto the device without waiting for it: a copy from pageable memory would drain the GPU's queue first."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)  # the pinned block is held until the copy is done


def _pack_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N,c,h,w] -> int32 [N*(h+2P)*(w+2P)]: zero-padded, each pixel's channels in the bytes of one word."""
    n, c, h, w = images.shape
    packed = torch.zeros(n, h + 2 * PAD, w + 2 * PAD, 4, dtype=torch.uint8)
    packed[:, PAD : PAD + h, PAD : PAD + w, :c] = images.permute(0, 2, 3, 1)
    return packed.view(torch.int32).reshape(-1)


def _check_layout(batch_size: int, world_size: int, rank: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch size {batch_size!r} must be a whole number >= 1")
    if world_size < 1 or not 0 <= rank < world_size:
        raise UsageError(f"rank {rank} of world size {world_size}: need world_size >= 1 and 0 <= rank < world_size")
    return split_batch(batch_size, world_size)


class StreamPosition:
    """What both training streams (this one and data/filestream.FileStream) share: the batch layout and the
    samples handed out so far. A stream's batches are a pure function of (seed, samples), so this is all a
    checkpoint holds, and a resumed stream continues exactly."""

    def __init__(self, train_size: int, *, batch_size: int, seed: int, world_size: int, rank: int) -> None:
        self.local_batch_size = _check_layout(batch_size, world_size, rank)
        self.batch_size, self.world_size, self.rank = batch_size, world_size, rank
        self.seed = int(seed)
        self.train_size = train_size
        self.epoch_size_float = train_size / batch_size
        self._samples = 0  # global samples handed out so far (all ranks together)

    @property
    def samples_seen(self) -> int:
        return self._samples

    @property
    def epoch(self) -> float:
        """Epochs consumed so far (fractional): what the curves' `epoch` column records."""
        return self._samples / self.train_size

    def state_dict(self) -> dict:
        return {
            "version": _STATE_VERSION,
            "seed": self.seed,
            "samples": self._samples,
            "train_size": self.train_size,
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where the saved stream stopped; refuse a state saved for other data or batch size."""
        if state.get("train_size") != self.train_size or state.get("batch_size") != self.batch_size:
            raise UsageError(
                f"the checkpoint's batch stream was for {state.get('train_size')} images at batch "
                f"{state.get('batch_size')}, this run has {self.train_size} at batch {self.batch_size}; "
                "resume with the same data and schedule, or start a new run"
            )
        self.seed, self._samples = int(state["seed"]), int(state["samples"])
        self._restart()

    def _restart(self) -> None:
        """Drop whatever was prepared for the old position (plans, loader workers)."""


class BatchStream(StreamPosition):
    """Endless iterator of full (x float32 [b,3,H,W], y int64 [b]) batches on `device`, b = batch_size / world_size.

    Each rank yields its rank-th slice of the same global batch: rank r of W takes global positions
    [k*b + r*b/W, k*b + (r+1)*b/W) of batch k (the contract in train/distributed.py). Batches may straddle
    epoch boundaries. The state (samples handed out) is global, so it resumes on any W that divides b.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        normalizer: Normalizer,
        *,
        batch_size: int,
        seed: int,
        device: torch.device | str = "cpu",
        augment: bool = True,
        memory_format: torch.memory_format = torch.contiguous_format,
        world_size: int = 1,
        rank: int = 0,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[0] != labels.shape[0] or not len(labels):
            raise ValueError(f"expected uint8 [N,C,H,W] images and N labels, got {tuple(images.shape)} / {len(labels)}")
        super().__init__(images.shape[0], batch_size=batch_size, seed=seed, world_size=world_size, rank=rank)
        self.augment = augment
        self.device = torch.device(device)
        self.channels_last = memory_format == torch.channels_last
        self._plans: dict[int, _EpochPlan] = {}

        n, c, h, w = images.shape
        self._shape = (c, h, w)
        self._padded_hw = (h + 2 * PAD, w + 2 * PAD)
        if c > 4:
            raise ValueError(f"at most 4 channels fit the packed pixel words, got {c}")
        self._rows = torch.arange(h, device=self.device)
        self._cols = torch.arange(w, device=self.device)
        self._pixels = _pack_pixels(images).to(self.device)  # int32 [N*ph*pw]: zero-padded, channels in bytes
        self._labels = labels.to(torch.int64).to(self.device)
        offset, scale = normalizer.affine()
        self._scale = scale.to(self.device)  # broadcasts over the channel-last pixels
        self._mean_crops = self._crop_table(offset.to(self.device))  # [2*(2*PAD+1)**2, h, w, c]

    def _crop_table(self, image: torch.Tensor) -> torch.Tensor:
        """Every augmented view (flip, row offset, col offset) of one [c,h,w] image, zero-padded, channels last."""
        c, h, w = image.shape
        padded = torch.nn.functional.pad(image, (PAD, PAD, PAD, PAD)).permute(1, 2, 0)  # [ph, pw, c]
        views = []
        for flip in (False, True):
            cols_base = w - 1 - self._cols if flip else self._cols
            for row in range(2 * PAD + 1):
                for col in range(2 * PAD + 1):
                    views.append(padded[row + self._rows][:, col + cols_base])
        return torch.stack(views).contiguous()

    def _restart(self) -> None:
        self._plans.clear()

    # --- batches --------------------------------------------------------------------------------------------
    def _plan(self, epoch: int) -> _EpochPlan:
        if epoch not in self._plans:
            for old in [e for e in self._plans if e < epoch - 1]:
                del self._plans[old]
            self._plans[epoch] = _EpochPlan(self.train_size, self.seed, epoch, self.device)
        return self._plans[epoch]

    def _positions(self, start: int, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(image, crop row, crop col, flip) for stream positions [start, start + count), across epochs."""
        pieces = []
        while count:
            epoch, offset = divmod(start, self.train_size)
            take = min(count, self.train_size - offset)
            plan = self._plan(epoch)
            window = slice(offset, offset + take)
            pieces.append((plan.order[window], plan.row[window], plan.col[window], plan.flip[window]))
            start, count = start + take, count - take
        if len(pieces) == 1:
            return pieces[0]
        return tuple(torch.cat(parts) for parts in zip(*pieces, strict=True))  # type: ignore[return-value]

    def _assemble(self, index: torch.Tensor, row: torch.Tensor, col: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        """One gather for pad + crop + flip of every sample, then the normalisation as one fused op."""
        c, h, w = self._shape
        ph, pw = self._padded_hw
        if not self.augment:
            row, col, flip = torch.full_like(row, PAD), torch.full_like(col, PAD), torch.zeros_like(flip)
        cols = torch.where(flip[:, None], w - 1 - self._cols, self._cols) + col[:, None]  # [b, w]
        rows = (self._rows + row[:, None]) * pw  # [b, h]
        rows = rows + (index * (ph * pw))[:, None]  # [b, h]: start of each padded row in the whole set
        words = self._pixels.take(rows[:, :, None] + cols[:, None, :])  # [b, h, w] int32: one gather
        pixels = words.view(torch.uint8).view(-1, h, w, 4).float()[..., :c]  # [b, h, w, c]
        variant = (flip.long() * (2 * PAD + 1) + row) * (2 * PAD + 1) + col
        x = torch.addcmul(self._mean_crops.index_select(0, variant), pixels, self._scale)
        x = x.permute(0, 3, 1, 2)  # NCHW view of channels_last memory
        return x if self.channels_last else x.contiguous()

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        start = self._samples + self.rank * self.local_batch_size
        index, row, col, flip = self._positions(start, self.local_batch_size)
        self._samples += self.batch_size
        return self._assemble(index, row, col, flip), self._labels[index]


class EvalSet:
    """Unaugmented, normalised (x, y) batches on `device`, in a fixed order; len() is the number of images."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        normalizer: Normalizer,
        *,
        batch_size: int = 1000,
        device: torch.device | str = "cpu",
        memory_format: torch.memory_format = torch.contiguous_format,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[0] != labels.shape[0]:
            raise ValueError(f"expected uint8 [N,C,H,W] images and N labels, got {tuple(images.shape)} / {len(labels)}")
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.memory_format = memory_format
        self._images = images.to(self.device)
        self._labels = labels.to(torch.int64).to(self.device)
        offset, scale = normalizer.affine()
        self._neg_mean = offset.unsqueeze(0).to(self.device)
        self._scale = scale.view(1, -1, 1, 1).to(self.device)

    def __len__(self) -> int:
        return self._images.shape[0]

    @property
    def num_batches(self) -> int:
        return -(-len(self) // self.batch_size)

    def _batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = index * self.batch_size
        chunk = self._images[start : start + self.batch_size]
        x = torch.addcmul(self._neg_mean, chunk.float(), self._scale).contiguous(memory_format=self.memory_format)
        return x, self._labels[start : start + self.batch_size]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for index in range(self.num_batches):
            yield self._batch(index)

    def shard(self, rank: int, world_size: int) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """(batch index, x, y) for the batches i with i mod world_size == rank: the ranks together cover the set
        once, in the same batch boundaries as one process (so each batch's numbers are the one process's)."""
        for index in range(rank, self.num_batches, world_size):
            yield (index, *self._batch(index))
