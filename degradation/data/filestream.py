"""Image files as batches: the endless training stream and the evaluation sets, decoded by worker processes.

The training stream has the same contract as the in-memory CIFAR stream (stream.py): global batch k covers
stream positions [k*B, (k+1)*B), epochs follow each other without a gap, and rank r of W takes the r-th slice
of every global batch. What a position holds (image, scale, crop, flip, lighting) comes from
imageaug.draw_epoch(seed, epoch), so the stream's whole state is the number of samples handed out: a resumed
run sees exactly the batches it would have seen, with any number of workers or ranks.

Workers (torch DataLoader processes) decode with torchvision.io and build each uint8 crop; the main process
adds the lighting noise and subtracts the mean on the training device, batched. Each file's header is read again
in the worker and held to data.max_pixels before it is decoded, so one worker never holds more than
max_pixels x headers.BYTES_PER_PIXEL bytes of image. A file that fails (over the cap, other dimensions than its
header declares, a truncated or damaged body) is handled by data.bad_images (BadImages): `stop` raises its
message as ImageError; `skip` puts the next image of the epoch's order in its place (with the position's own
augmentation draws: still a function of seed, epoch and position) and records it, up to data.max_bad_images
distinct files, past which it stops. Never a silently smaller batch. Validation images always stop: an error rate
is over the whole set.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from degradation.data.decode import ImageError, checked_header, read_bytes, read_rgb
from degradation.data.folders import ImageList
from degradation.data.headers import DEFAULT_MAX_PIXELS
from degradation.data.imageaug import (
    AugmentSpec,
    EpochDraws,
    centre_view,
    draw_epoch,
    lighting_shift,
    ten_views,
    train_view,
)
from degradation.data.normalize import IntegerSums, Normalizer, check_mode
from degradation.data.stream import StreamPosition
from degradation.errors import UsageError


def auto_workers(setting: Any, threads: int | None = None) -> int:
    """data.workers: auto = this run's share of the cores (its torch thread count, which trainer.threads sets:
    a sweep of N runs gives each cores/N; or `threads`, a plan's figure), up to 16; 0 on one core (decode in the
    training process)."""
    if setting == "auto":
        cores = torch.get_num_threads() if threads is None else int(threads)
        return 0 if cores <= 1 else min(cores, 16)
    value = int(setting)
    if value < 0:
        raise UsageError(f"data.workers={setting} must be auto or a whole number >= 0")
    return value


BAD_IMAGE_POLICIES = ("skip", "stop")


class BadImages:
    """data.bad_images: what the training stream does with a file that fails in a worker, and the count of them.

    stop: the first one stops the run (ImageError naming it). skip: its sample is replaced (see the module
    docstring) and the file recorded; more than `cap` distinct files stop the run all the same. Under DDP each
    rank counts the files of its own slices (run.json, written by rank 0, holds rank 0's)."""

    def __init__(self, policy: str = "skip", cap: int = 10) -> None:
        if policy not in BAD_IMAGE_POLICIES:
            raise UsageError(f"data.bad_images={policy!r}; choose skip (replace and count, up to "
                             "data.max_bad_images files) or stop")
        self.policy, self.cap = policy, int(cap)
        self.files: dict[str, str] = {}  # path -> why it was refused
        self.samples = 0  # samples replaced (a bad file is met once per epoch)

    @property
    def skips(self) -> bool:
        return self.policy == "skip"

    def note(self, refused: list[tuple[str, str]]) -> None:
        """Record what the workers refused; ImageError once more than `cap` distinct files have been."""
        for path, reason in refused:
            self.files.setdefault(path, reason)
            self.samples += 1
            if len(self.files) > self.cap:
                raise ImageError(f"{len(self.files)} image files refused, over data.max_bad_images={self.cap} "
                                 f"(the last: {reason})")

    def record(self) -> dict:
        """What run.json reports: the policy, its cap, the files refused and the samples replaced."""
        return {"policy": self.policy, "max_bad_images": self.cap, "files": len(self.files),
                "samples": self.samples, "refused": dict(sorted(self.files.items())[:20])}

    def state_dict(self) -> dict:
        return {"files": dict(self.files), "samples": self.samples}

    def load_state_dict(self, state: dict | None) -> None:
        if state:
            self.files, self.samples = dict(state["files"]), int(state["samples"])


class _TrainBatches(torch.utils.data.Dataset):
    """Global batch k -> this rank's (uint8 crops, labels, lighting weights), or an error message.

    raw=True (data.decode=device): the files' bytes and each sample's drawn parameters instead of crops; the
    main process decodes and crops them on the training device (decode_on_device)."""

    def __init__(self, images: ImageList, spec: AugmentSpec, seed: int, batch: int, local: int, rank: int,
                 raw: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS, bad: BadImages | None = None) -> None:
        self.paths, self.labels = images.paths, torch.tensor(images.labels, dtype=torch.int64)
        self.spec, self.seed, self.batch, self.local, self.rank = spec, seed, batch, local, rank
        self.raw, self.max_pixels = raw, int(max_pixels)
        bad = bad or BadImages("stop", 0)
        self.tries = 1 + (min(bad.cap, len(self.paths) - 1) if bad.skips else 0)  # the image, then its stand-ins
        self._draws: dict[int, EpochDraws] = {}

    def __len__(self) -> int:  # endless in fact; the sampler decides
        return 2**62

    def draws(self, epoch: int) -> EpochDraws:
        if epoch not in self._draws:
            self._draws = {e: d for e, d in self._draws.items() if e >= epoch - 1}
            self._draws[epoch] = draw_epoch(len(self.paths), self.spec, self.seed, epoch)
        return self._draws[epoch]

    def _load(self, index: int):
        path = self.paths[index]
        if self.raw:  # the bytes, their header held to the cap here; decoded on the device (decode_on_device)
            data = read_bytes(path)
            return data, checked_header(data, path, self.max_pixels, self.spec.largest_side)
        return read_rgb(path, self.max_pixels, self.spec.largest_side)

    def __getitem__(self, k: int):
        """(crops or raw samples, labels, lighting weights, [(path, why) refused]) or the message that stops."""
        n = len(self.paths)
        start = k * self.batch + self.rank * self.local
        crops, labels, alphas, raws, refused = [], [], [], [], []
        for position in range(start, start + self.local):
            epoch, offset = divmod(position, n)
            d = self.draws(epoch)
            scale, flip = int(d.scale[offset]), bool(d.flip[offset])
            frac = (float(d.frac[offset, 0]), float(d.frac[offset, 1]))
            for attempt in range(self.tries):  # under skip: the next images of the epoch's order stand in
                index = int(d.order[(offset + attempt) % n])
                try:
                    loaded = self._load(index)
                    break
                except ImageError as exc:
                    if attempt + 1 == self.tries:
                        return str(exc)
                    refused.append((self.paths[index], str(exc)))
            labels.append(self.labels[index])
            alphas.append(d.alpha[offset])
            if self.raw:
                data, header = loaded
                raws.append((data, self.paths[index], scale, frac, flip, header))
            else:  # a copy: a view would keep the whole resized image alive until the batch is stacked
                crops.append(train_view(loaded, self.spec, scale, frac, flip).clone())
            del loaded  # before the next file is decoded: one decoded image at a time
        return (raws if self.raw else torch.stack(crops)), torch.stack(labels), torch.stack(alphas), refused


class _Counter(torch.utils.data.Sampler):
    def __init__(self, start: int) -> None:
        self.start = start

    def __iter__(self) -> Iterator[int]:
        k = self.start
        while True:
            yield k
            k += 1


def _loader(dataset, sampler, workers: int, pin: bool) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        dataset, batch_size=None, sampler=sampler, num_workers=workers, pin_memory=pin,
        prefetch_factor=2 if workers else None, persistent_workers=False,
    )


def _raise_if_error(item: Any) -> Any:
    if isinstance(item, str):
        raise ImageError(item)
    return item


class ImageNormalize:
    """uint8 crops (+ lighting shift) -> normalised float on the device, in one fused op per batch."""

    def __init__(self, normalizer: Normalizer, device: torch.device, channels_last: bool) -> None:
        offset, scale = normalizer.affine()
        self.inv_std = normalizer.inv_std.float().view(1, -1, 1, 1).to(device)
        self.scale = scale.view(1, -1, 1, 1).to(device)
        self.neg_mean = offset.unsqueeze(0).to(device)
        self.device, self.channels_last = device, channels_last

    def __call__(self, crops: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        """No host sync: the shift goes over from pinned memory like the crops (a pageable copy blocks the host
        each batch). The output is written in the run's memory format: addcmul follows its NCHW mean image."""
        crops = crops.to(self.device, non_blocking=True)
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        crops = crops.contiguous(memory_format=memory_format)
        base = self.neg_mean
        if shift is not None:
            if self.device.type == "cuda" and shift.device.type == "cpu":
                shift = shift.pin_memory()
            base = base + shift.to(self.device, non_blocking=True).view(-1, 3, 1, 1) * self.inv_std
        out = torch.empty(crops.shape, dtype=torch.float32, device=self.device, memory_format=memory_format)
        return torch.addcmul(base, crops.float(), self.scale, out=out)


class FileStream(StreamPosition):
    """Endless (x float [b,3,c,c], y int64 [b]) training batches from image files, b = batch_size / world_size."""

    def __init__(
        self, images: ImageList, spec: AugmentSpec, normalizer: Normalizer, *, batch_size: int, seed: int,
        device: torch.device | str = "cpu", memory_format: torch.memory_format = torch.contiguous_format,
        world_size: int = 1, rank: int = 0, workers: int = 0, decode: str = "workers",
        max_pixels: int = DEFAULT_MAX_PIXELS, bad_images: BadImages | None = None,
    ) -> None:
        if decode not in ("workers", "device"):
            raise UsageError(f"data.decode={decode!r}; choose workers (CPU processes) or device")
        super().__init__(len(images), batch_size=batch_size, seed=seed, world_size=world_size, rank=rank)
        self.decode, self.max_pixels = decode, int(max_pixels)
        self.bad = bad_images or BadImages("stop", 0)
        self.images, self.spec, self.workers = images, spec, int(workers)
        self.device = torch.device(device)
        self._normalize = ImageNormalize(normalizer, self.device, memory_format == torch.channels_last)
        self._iter: Iterator | None = None

    def close(self) -> None:
        """Stop the workers (they restart at the current position on the next batch)."""
        self._iter = None

    _restart = close  # a new position: the workers restart from it on the next batch

    def state_dict(self) -> dict:
        return {**super().state_dict(), "bad_images": self.bad.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.bad.load_state_dict(state.get("bad_images"))

    def report(self) -> dict:
        """run.json's record of the files this stream refused (data.bad_images)."""
        return {"bad_images": self.bad.record()}

    def _start(self) -> Iterator:
        dataset = _TrainBatches(self.images, self.spec, self.seed, self.batch_size, self.local_batch_size, self.rank,
                                raw=self.decode == "device", max_pixels=self.max_pixels, bad=self.bad)
        sampler = _Counter(self._samples // self.batch_size)
        return iter(_loader(dataset, sampler, self.workers, self.device.type == "cuda"))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._iter is None:
            self._iter = self._start()
        crops, labels, alpha, refused = _raise_if_error(next(self._iter))
        self.bad.note(refused)
        if self.decode == "device":
            from degradation.data.devicedecode import decode_on_device  # deferred: the device-decode path only

            crops = decode_on_device(crops, self.spec, self.device)
        self._samples += self.batch_size
        return self._normalize(crops, lighting_shift(alpha)), labels.to(self.device, non_blocking=True)


class _EvalImages(torch.utils.data.Dataset):
    """Batch j of an evaluation list -> (uint8 views [b,3,c,c] or [b,10,3,c,c], labels, [(path, why) refused]), or
    an error message. skip (the mean's sample under data.bad_images=skip): a failing file is left out, not fatal."""

    def __init__(self, images: ImageList, spec: AugmentSpec, batch: int, ten_crop: bool,
                 max_pixels: int = DEFAULT_MAX_PIXELS, skip: bool = False) -> None:
        self.images, self.spec, self.batch, self.ten_crop = images, spec, batch, ten_crop
        self.max_pixels, self.skip = int(max_pixels), skip

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch)

    def __getitem__(self, j: int):
        views, labels, refused = [], [], []
        for i in range(j * self.batch, min(len(self.images), (j + 1) * self.batch)):
            try:
                image = read_rgb(self.images.paths[i], self.max_pixels, self.spec.largest_side)
            except ImageError as exc:
                if not self.skip:
                    return str(exc)
                refused.append((self.images.paths[i], str(exc)))
                continue
            views.append(ten_views(image, self.spec) if self.ten_crop else centre_view(image, self.spec).clone())
            labels.append(self.images.labels[i])
            del image  # before the next file is decoded (the views are copies)
        if not views:
            return None, None, refused
        return torch.stack(views), torch.tensor(labels, dtype=torch.int64), refused


class FileEvalSet:
    """Centre-crop (or 10-crop) normalised batches of an image list, in file order; len() = images."""

    def __init__(
        self, images: ImageList, spec: AugmentSpec, normalizer: Normalizer, *, batch_size: int = 100,
        device: torch.device | str = "cpu", memory_format: torch.memory_format = torch.contiguous_format,
        workers: int = 0, ten_crop: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.images, self.spec, self.ten_crop, self.max_pixels = images, spec, ten_crop, int(max_pixels)
        self.batch_size, self.workers = int(batch_size), int(workers)
        self.device = torch.device(device)
        self._normalize = ImageNormalize(normalizer, self.device, memory_format == torch.channels_last)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_batches(self) -> int:
        return -(-len(self) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(x [b,3,c,c], y); with ten_crop, x is [b*10,3,c,c] (the 10 views of each image together)."""
        dataset = _EvalImages(self.images, self.spec, self.batch_size, self.ten_crop, self.max_pixels)
        loader = _loader(dataset, range(len(dataset)), min(self.workers, len(dataset)), self.device.type == "cuda")
        for item in loader:
            views, labels, _ = _raise_if_error(item)
            if self.ten_crop:
                views = views.flatten(0, 1)
            yield self._normalize(views), labels.to(self.device, non_blocking=True)


def fit_image_normalizer(
    images: ImageList, spec: AugmentSpec, mode: str, samples: int, seed: int, workers: int = 0,
    max_pixels: int = DEFAULT_MAX_PIXELS, bad_images: BadImages | None = None,
) -> Normalizer:
    """Mean (and std) of the centre crops of up to `samples` training images, chosen by `seed` (not the run's).

    The paper subtracts the per-pixel mean; a full pass over 1.28M JPEGs costs as much as an epoch, so the
    mean image is estimated from a fixed sample (10,000 by default: each pixel's mean to within ~0.3/255).
    """
    check_mode(mode)
    n = len(images)
    gen = torch.Generator().manual_seed(int(seed))
    chosen = torch.randperm(n, generator=gen)[: min(n, int(samples))].sort().values.tolist()
    subset = ImageList(tuple(images.paths[i] for i in chosen), tuple(images.labels[i] for i in chosen),
                       images.classes)
    sums = IntegerSums()
    for views, _ in _iter_raw(subset, spec, workers, max_pixels, bad_images):
        sums.add(views)
    return sums.normalizer(mode)


def _iter_raw(images: ImageList, spec: AugmentSpec, workers: int, max_pixels: int, bad: BadImages | None
              ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    dataset = _EvalImages(images, spec, 256, ten_crop=False, max_pixels=max_pixels, skip=bool(bad and bad.skips))
    for item in _loader(dataset, range(len(dataset)), min(workers, len(dataset)), False):
        views, labels, refused = _raise_if_error(item)
        if bad is not None:
            bad.note(refused)
        if views is not None:
            yield views, labels
