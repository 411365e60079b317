"""One image file -> uint8 RGB [3, H, W], whatever it holds: grayscale, CMYK JPEG, a PNG named .JPEG, RGBA PNG.

torchvision.io decodes by content, not by extension, and converts to RGB itself (CMYK included), so the real
ILSVRC-2012 training set's odd files need no special cases. Before decoding, the bytes' own header is read again
(headers.py) and held to data.max_pixels: a file swapped or grown since the folder was checked, or a folder read
with verify=none, still cannot make a decoder allocate more than the cap. After decoding, the image must have the
size its header declared. A file that fails any of this raises ImageError naming it; what then happens to the
sample is the loader's policy (filestream.py), never a silent drop here.
"""

from __future__ import annotations

import os
import re
import sys

import torch

from degradation.data.headers import DEFAULT_MAX_PIXELS, HeaderError, ImageHeader, check_size, header_of
from degradation.errors import UsageError

_SOURCE = re.compile(r"^[\w:<>~]+, \S+\.(?:cpp|cu|h):\d+, ")  # torchvision's "function, file.cpp:171, " prefix

_HIGH = 1 if sys.byteorder == "little" else 0  # where a uint16's high byte sits in memory


class ImageError(UsageError):
    """An image file that cannot be read or decoded (named in the message)."""


def read_bytes(path: str) -> torch.Tensor:
    """The file's bytes as a uint8 tensor (read once into one buffer: no second copy)."""
    try:
        with open(path, "rb") as handle:
            data = bytearray(os.fstat(handle.fileno()).st_size)
            del data[handle.readinto(data) :]  # a file that shrank meanwhile: what was there
    except OSError as exc:
        raise ImageError(f"cannot read image {path}: {exc.strerror}") from None
    if not data:
        raise ImageError(f"image {path} is empty (0 bytes); replace or remove it")
    return torch.frombuffer(data, dtype=torch.uint8)


def checked_header(data: torch.Tensor, path: str, max_pixels: int = DEFAULT_MAX_PIXELS,
                   shorter: int | None = None) -> ImageHeader:
    """The header of the bytes `data`, within the pixel cap (as decoded, and resized to `shorter`): ImageError
    naming `path` otherwise (before any decode)."""
    try:
        return check_size(header_of(data.numpy(), path), path, max_pixels, shorter)
    except HeaderError as exc:
        raise ImageError(str(exc)) from None


def decode_rgb(data: torch.Tensor, path: str, header: ImageHeader | None = None) -> torch.Tensor:
    """uint8 [3, H, W] of the encoded `data`; with `header`, the decoded size must be the declared one."""
    from torchvision.io import ImageReadMode, decode_image

    try:
        image = decode_image(data, mode=ImageReadMode.RGB)
    except Exception as exc:  # torchvision raises RuntimeError / ValueError with a multi-line text
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImageError(f"cannot decode image {path}: {_SOURCE.sub('', first)[:160]} (a damaged or truncated "
                         "file); replace or remove it") from None
    if image.ndim != 3 or image.shape[0] != 3 or min(image.shape[1:]) < 1:
        raise ImageError(f"image {path} decoded to shape {tuple(image.shape)}, not an RGB image")
    if header is not None and (image.shape[2], image.shape[1]) != (header.width, header.height):
        raise ImageError(f"{path}: decoded to {image.shape[2]} x {image.shape[1]} pixels, but its "
                         f"{header.format.upper()} header declares {header.width} x {header.height} (a damaged "
                         "file); replace or remove it")
    if image.dtype == torch.uint16:  # a 16-bit PNG: each sample's high byte (one new 8-bit buffer, no arithmetic)
        image = image.permute(1, 2, 0).view(torch.uint8)[..., _HIGH::2].contiguous().permute(2, 0, 1)
    return image


def read_rgb(path: str, max_pixels: int = DEFAULT_MAX_PIXELS, shorter: int | None = None) -> torch.Tensor:
    """uint8 [3, H, W] of the file at `path`, its size checked against its header and the cap (ImageError naming
    it when it cannot be)."""
    data = read_bytes(path)
    header = checked_header(data, path, max_pixels, shorter)
    return decode_rgb(data, path, header)
