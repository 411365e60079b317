"""data.decode=device: the training batch's JPEGs decoded on the training device, then resized and cropped there.

Worker processes only read the files' bytes (and carry each sample's drawn scale, crop and flip); the main
process decodes the batch with torchvision.io.decode_jpeg(device="cuda") (nvJPEG) in one call, and applies the
same train_view as the CPU path, so both draw the same augmentation distributions (a GPU resize rounds
differently from the CPU's uint8 kernel: batches are not bit-identical across the two settings). Files nvJPEG
does not take (PNG, CMYK JPEG, anything it rejects) are decoded on the CPU as RGB and moved over: nothing is
dropped. On a CPU device this is simply decoding in the main process.

NOT TESTED ON A GPU: written without access to one; the CUDA branch is guarded and falls back per file.
"""

from __future__ import annotations

import torch

from degradation.data.decode import decode_rgb
from degradation.data.imageaug import AugmentSpec, train_view

_JPEG = b"\xff\xd8\xff"


def _decode_all(raws: list, device: torch.device) -> list[torch.Tensor]:
    images: list[torch.Tensor | None] = [None] * len(raws)
    if device.type == "cuda":
        from torchvision.io import ImageReadMode, decode_jpeg

        jpegs = [i for i, (data, *_) in enumerate(raws) if bytes(data[:3].tolist()) == _JPEG]
        try:
            decoded = decode_jpeg([raws[i][0] for i in jpegs], mode=ImageReadMode.RGB, device=device)
            for i, image in zip(jpegs, decoded, strict=True):
                header = raws[i][5]
                if image.ndim == 3 and image.shape[0] == 3 and tuple(image.shape[1:]) == (header.height, header.width):
                    images[i] = image  # anything else is decoded again below, where a wrong size is named
        except RuntimeError:
            pass  # one file nvJPEG rejects fails the batch call: every file goes through the CPU below
    for i, (data, path, *_, header) in enumerate(raws):
        if images[i] is None:
            images[i] = decode_rgb(data, path, header).to(device, non_blocking=True)
    return images  # type: ignore[return-value]


def decode_on_device(raws: list, spec: AugmentSpec, device: torch.device) -> torch.Tensor:
    """uint8 [b,3,crop,crop] on `device` from (bytes, path, scale, frac, flip, header) per sample (the header
    read and held to data.max_pixels in the worker; a file that fails to decode here stops the run)."""
    images = _decode_all(raws, device)
    return torch.stack([train_view(image, spec, scale, frac, flip)
                        for image, (_, _, scale, frac, flip, _) in zip(images, raws, strict=True)])
