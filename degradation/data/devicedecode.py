"""data.decode=device: the training batch's JPEGs decoded on the training device, then resized and cropped there.

Worker processes only read the files' bytes (and carry each sample's drawn scale, crop and flip); the main
process decodes the batch with torchvision.io.decode_jpeg(device="cuda") (nvJPEG) in one call, and applies the
same train_view as the CPU path, so both draw the same augmentation distributions (a GPU resize rounds
differently from the CPU's uint8 kernel: batches are not bit-identical across the two settings). Files nvJPEG
does not take (PNG, CMYK JPEG, anything it rejects) are decoded on the CPU as RGB and moved over: nothing is
dropped. On a CPU device this is simply decoding in the main process.

Two hazards of torchvision's CUDA decode_jpeg are kept out:
- a batch with no file nvJPEG takes (a PNG or WebP class) never reaches it: decode_jpeg([]) raises ValueError;
- its outputs are allocated on the calling stream while nvJPEG writes them from a stream of its own (a known
  upstream race): the call runs on a side stream, the device is synchronised before any kernel reads the images,
  and each image is marked as used by the main stream, so the allocator does not hand its memory out early.
4-component (CMYK/YCCK) JPEGs go to the CPU decoder, which converts them to RGB.

NOT TESTED ON A GPU by this module's tests: the selection and the fall-backs are (tests/test_data_images.py);
benchmarks/gpu_check.sh compares device-decoded batches with CPU-decoded ones on a GPU.
"""

from __future__ import annotations

import contextlib

import torch

from degradation.data.decode import decode_rgb
from degradation.data.imageaug import AugmentSpec, train_view

_JPEG = b"\xff\xd8\xff"
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}  # start-of-frame markers


def jpeg_components(data: bytes) -> int | None:
    """The colour components a JPEG's frame header declares (1 gray, 3 YCbCr, 4 CMYK), None when not a JPEG or
    the header is cut short."""
    if data[:3] != _JPEG:
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in _SOF:
            return data[pos + 9] if pos + 9 < len(data) else None
        if marker == 0xDA:  # start of scan before any frame header
            return None
        pos += 2 + length
    return None


def _head(data: torch.Tensor) -> bytes:
    """The bytes a JPEG's frame header lies within (after EXIF and ICC segments of up to 64 KiB)."""
    return data[:65536].numpy().tobytes()


def nvjpeg_files(raws: list) -> list[int]:
    """The samples nvJPEG decodes: JPEGs of 1 or 3 components. The rest (PNG, WebP, CMYK JPEG) go to the CPU."""
    return [i for i, (data, *_) in enumerate(raws) if jpeg_components(_head(data)) in (1, 3)]


def decode_nvjpeg(raws: list, device: torch.device) -> dict[int, torch.Tensor]:
    """index -> uint8 [3, H, W] on `device` for the files nvJPEG took; the others are left to the CPU."""
    from torchvision.io import ImageReadMode, decode_jpeg

    chosen = nvjpeg_files(raws)
    if not chosen:  # decode_jpeg([]) raises ValueError
        return {}
    cuda = device.type == "cuda"
    side = torch.cuda.Stream(device) if cuda else None
    try:
        with torch.cuda.stream(side) if cuda else contextlib.nullcontext():
            decoded = decode_jpeg([raws[i][0] for i in chosen], mode=ImageReadMode.RGB, device=device)
    except (RuntimeError, ValueError):
        return {}  # one file nvJPEG rejects fails the batch call: every file goes through the CPU
    if cuda:
        torch.cuda.synchronize(device)  # nvJPEG's own stream included: every image is written
        main = torch.cuda.current_stream(device)
        for image in decoded:
            image.record_stream(main)
    return {i: image for i, image in zip(chosen, decoded, strict=True) if image.ndim == 3 and image.shape[0] == 3}


def _decode_all(raws: list, device: torch.device) -> list[torch.Tensor]:
    images = decode_nvjpeg(raws, device) if device.type == "cuda" else {}
    for i, (data, path, *_) in enumerate(raws):
        if i not in images:
            images[i] = decode_rgb(data, path).to(device, non_blocking=True)
    return [images[i] for i in range(len(raws))]


def decode_on_device(raws: list, spec: AugmentSpec, device: torch.device) -> torch.Tensor:
    """uint8 [b,3,crop,crop] on `device` from (bytes, path, scale, frac, flip) per sample."""
    images = _decode_all(raws, device)
    return torch.stack([train_view(image, spec, scale, frac, flip)
                        for image, (_, _, scale, frac, flip) in zip(images, raws, strict=True)])
