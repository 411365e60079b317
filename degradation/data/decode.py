"""One image file -> uint8 RGB [3, H, W], whatever it holds: grayscale, CMYK JPEG, a PNG named .JPEG, RGBA PNG.

torchvision.io decodes by content, not by extension, and converts to RGB itself (CMYK included), so the real
ILSVRC-2012 training set's odd files need no special cases. A file that cannot be decoded raises ImageError
naming it; the loader never drops a sample.
"""

from __future__ import annotations

import torch

from degradation.errors import UsageError


class ImageError(UsageError):
    """An image file that cannot be read or decoded (named in the message)."""


def read_bytes(path: str) -> torch.Tensor:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ImageError(f"cannot read image {path}: {exc.strerror}") from None
    if not data:
        raise ImageError(f"image {path} is empty (0 bytes); replace or remove it")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def decode_rgb(data: torch.Tensor, path: str) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_image

    try:
        image = decode_image(data, mode=ImageReadMode.RGB)
    except Exception as exc:  # torchvision raises RuntimeError / ValueError with a multi-line text
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImageError(f"cannot decode image {path}: {first[:160]}; replace or remove it") from None
    if image.ndim != 3 or image.shape[0] != 3 or min(image.shape[1:]) < 1:
        raise ImageError(f"image {path} decoded to shape {tuple(image.shape)}, not an RGB image")
    return image


def read_rgb(path: str) -> torch.Tensor:
    """uint8 [3, H, W] of the file at `path` (ImageError naming it when it cannot be)."""
    return decode_rgb(read_bytes(path), path)
