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


def nvjpeg_files(raws: list) -> list[int]:
    """The samples nvJPEG decodes: JPEGs of 1 or 3 components, by the header the worker read (the last item of
    each sample). The rest (PNG, WebP, CMYK JPEG) go to the CPU."""
    return [i for i, raw in enumerate(raws) if raw[-1].format == "jpeg" and raw[-1].colour in ("gray", "rgb")]


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
    return {i: image for i, image in zip(chosen, decoded, strict=True)  # anything else decodes again on the CPU,
            if image.ndim == 3 and tuple(image.shape) == (3, raws[i][-1].height, raws[i][-1].width)}  # named there


def _decode_all(raws: list, device: torch.device) -> list[torch.Tensor]:
    images = decode_nvjpeg(raws, device) if device.type == "cuda" else {}
    for i, (data, path, *_, header) in enumerate(raws):
        if i not in images:  # a wrong size or a damaged body is named here
            images[i] = decode_rgb(data, path, header).to(device, non_blocking=True)
    return [images[i] for i in range(len(raws))]


def decode_on_device(raws: list, spec: AugmentSpec, device: torch.device) -> torch.Tensor:
    """uint8 [b,3,crop,crop] on `device` from (bytes, path, scale, frac, flip, header) per sample (the header
    read and held to data.max_pixels in the worker; a file that fails to decode here stops the run)."""
    images = _decode_all(raws, device)
    return torch.stack([train_view(image, spec, scale, frac, flip)
                        for image, (_, _, scale, frac, flip, _) in zip(images, raws, strict=True)])
