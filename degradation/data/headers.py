"""An image file's declared size and colour layout, read from its header without decoding it; the pixel cap.

A decoder allocates what the header declares: a PNG of zeros of a few MB can declare 40000 x 40000 pixels
(4.8 GB decoded), a JPEG's frame header 65000 x 65000 (12.7 GB). torchvision's decoders have no pixel limit, so
every image is sized here first (PNG IHDR; JPEG SOF0-15, any process: baseline, progressive, lossless,
arithmetic, after any APPn/COM segments; WebP VP8, VP8L and VP8X) and refused by name over `data.max_pixels`.
So is an image whose resize to the augmentation's largest shorter side would exceed the cap (a 10 x 10^7 strip
is 100 Mpx as decoded and 48 Gpx resized to a shorter side of 480).

The cap bounds decoding memory. Measured here (peak resident growth, torchvision.io and the training resize):
decoding a 4000 x 3000 image and resizing it down costs 3.1-3.5 bytes per decoded pixel for 8-bit JPEG (RGB,
grayscale, CMYK), PNG (RGB, RGBA) and WebP; a 16-bit PNG decodes to uint16 (9.3 bytes per pixel with its
conversion to uint8), so it counts 3 times its pixels. Resizing up (an extreme aspect ratio) costs 4.2-4.4 bytes
per resized pixel. Both sizes are held to the cap, so one decoder holds at most cap x BYTES_PER_PIXEL bytes
(measured at the cap: 7.2 B per pixel of it for a 170000 x 400 PNG resized up to 480, 2.7 B for 10000 x 10000).
"""

from __future__ import annotations

import io
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO

from degradation.data.imageaug import resized_size
from degradation.errors import UsageError

# 100 Mpx (e.g. 10000 x 10000). The largest ILSVRC-2012 training image we could find published is 2592 by 3888
# (10.1 Mpx, a "very large" outlier in Max Ehrlich's survey of every training image's JPEG header, "Compression in
# the ImageNet Dataset", 2021, medium.com/data-science/compression-in-the-imagenet-dataset-34c56d14d463); the
# survey does not print a maximum, so this is a lower bound on the real one. 100 Mpx is ten times that, above any
# 48/50/100 Mpx camera photo.
DEFAULT_MAX_PIXELS = 100_000_000
BYTES_PER_PIXEL = 8  # one decoder's worst peak per pixel of the cap: decoded (<= 3.5 B) + resized (<= 4.4 B)
_SIXTEEN_BIT = 3  # a 16-bit PNG costs 9.3 bytes per pixel as decoded: counted as 3 pixels (<= 3.5 B each)

PNG = b"\x89PNG\r\n\x1a\n"
_PNG_COLOURS = {0: "gray", 2: "rgb", 3: "palette", 4: "gray+alpha", 6: "rgba"}
# Start-of-frame markers: C0-CF but C4 (DHT), C8 (JPG, reserved) and CC (DAC) -- every coding process.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}  # RSTn and TEM carry no length
_JPEG_COLOURS = {1: "gray", 3: "rgb", 4: "cmyk"}


class HeaderError(UsageError):
    """A file whose header is missing, truncated, unknown or declares an impossible or too large size."""


@dataclass(frozen=True)
class ImageHeader:
    """What a file declares: its format (jpeg | png | webp), size, colour layout and bits per sample."""

    format: str
    width: int
    height: int
    colour: str  # gray, rgb, cmyk, rgba, palette, gray+alpha (JPEG: by component count; YCCK counts as cmyk)
    bits: int = 8

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def cost(self) -> int:
        """Pixels as counted against the cap (a 16-bit PNG weighs 3: it decodes to 2.7x the bytes)."""
        return self.pixels * (_SIXTEEN_BIT if self.bits > 8 else 1)


def _need(data: bytes, n: int, path: str, what: str) -> bytes:
    if len(data) < n:
        raise HeaderError(f"{path}: its {what} is truncated (the file ends inside its header); replace or remove it")
    return data


def _png(f: BinaryIO, path: str) -> ImageHeader:
    chunk = _need(f.read(25), 25, path, "PNG header")
    length, kind = struct.unpack(">I4s", chunk[:8])
    if kind != b"IHDR" or length != 13:
        raise HeaderError(f"{path}: a PNG whose first chunk is not IHDR; replace or remove it")
    width, height, bits, colour = struct.unpack(">IIBB", chunk[8:18])
    return ImageHeader("png", width, height, _PNG_COLOURS.get(colour, f"colour type {colour}"), bits)


def _jpeg(f: BinaryIO, path: str) -> ImageHeader:
    """Walk the marker segments after SOI until a start-of-frame, seeking over APPn/COM/DQT/DHT bodies."""
    while True:
        byte = _need(f.read(1), 1, path, "JPEG header")
        if byte != b"\xff":
            raise HeaderError(f"{path}: a JPEG whose segments are broken before its frame header (byte "
                              f"{byte.hex()} where a marker belongs); replace or remove it")
        marker = 0xFF
        while marker == 0xFF:  # fill bytes may pad a marker
            marker = _need(f.read(1), 1, path, "JPEG header")[0]
        if marker in _STANDALONE:
            continue
        if marker in (0xD9, 0xDA):  # EOI or start of scan before any frame header
            raise HeaderError(f"{path}: a JPEG without a frame header (no SOF before its image data); "
                              "replace or remove it")
        length = struct.unpack(">H", _need(f.read(2), 2, path, "JPEG header"))[0]
        if length < 2:
            raise HeaderError(f"{path}: a JPEG segment of length {length}; replace or remove it")
        if marker in _SOF:
            body = _need(f.read(6), 6, path, "JPEG frame header")
            bits, height, width, components = struct.unpack(">BHHB", body)
            return ImageHeader("jpeg", width, height, _JPEG_COLOURS.get(components, f"{components} components"),
                               bits)
        f.seek(length - 2, io.SEEK_CUR)


def _webp(f: BinaryIO, path: str) -> ImageHeader:
    chunk = _need(f.read(8), 8, path, "WebP header")
    kind = chunk[:4]
    body = _need(f.read(10), 10, path, "WebP header")
    if kind == b"VP8 ":  # lossy: frame tag (3 bytes), start code 9d 01 2a, 14-bit width and height
        if body[3:6] != b"\x9d\x01\x2a":
            raise HeaderError(f"{path}: a lossy WebP without its VP8 start code; replace or remove it")
        width, height = struct.unpack("<HH", body[6:10])
        return ImageHeader("webp", width & 0x3FFF, height & 0x3FFF, "rgb")
    if kind == b"VP8L":  # lossless: signature 0x2f, then width-1 and height-1 in 14 bits each, then alpha
        if body[0] != 0x2F:
            raise HeaderError(f"{path}: a lossless WebP without its VP8L signature; replace or remove it")
        bits = int.from_bytes(body[1:5], "little")
        alpha = (bits >> 28) & 1
        return ImageHeader("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, "rgba" if alpha else "rgb")
    if kind == b"VP8X":  # extended: flags, 3 reserved bytes, canvas width-1 and height-1 in 24 bits each
        width = int.from_bytes(body[4:7], "little") + 1
        height = int.from_bytes(body[7:10], "little") + 1
        return ImageHeader("webp", width, height, "rgba" if body[0] & 0x10 else "rgb")
    raise HeaderError(f"{path}: a WebP whose first chunk is {kind!r}, not VP8, VP8L or VP8X; replace or remove it")


def parse(f: BinaryIO, path: str) -> ImageHeader:
    """The header of the image `f` holds (positioned at its start); HeaderError naming `path` otherwise."""
    head = f.read(12)
    if not head:
        raise HeaderError(f"image {path} is empty (0 bytes); replace or remove it")
    if head.startswith(PNG):
        f.seek(8)
        header = _png(f, path)
    elif head.startswith(b"\xff\xd8\xff"):
        f.seek(2)
        header = _jpeg(f, path)
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        header = _webp(f, path)
    elif len(head) < 12 and any(s.startswith(head) or head.startswith(s) for s in (PNG, b"\xff\xd8\xff", b"RIFF")):
        raise HeaderError(f"{path}: its image header is truncated (the file is {len(head)} bytes long); "
                          "replace or remove it")
    else:
        raise HeaderError(f"{path} is not a JPEG, PNG or WebP image (its first bytes are {head[:8].hex()}); "
                          "replace or remove it")
    if header.width < 1 or header.height < 1:
        raise HeaderError(f"{path}: its {header.format.upper()} header declares {header.width} x {header.height} "
                          "pixels (an empty image); replace or remove it")
    return header


def read_header(path: str) -> ImageHeader:
    """The header of the file at `path` (a few hundred bytes read; JPEG segments before the frame are skipped)."""
    try:
        with open(path, "rb") as handle:
            return parse(handle, path)
    except OSError as exc:
        raise HeaderError(f"cannot read image {path}: {exc.strerror}") from None


class _View:
    """read/seek over bytes already in memory, without copying them (a file object's two calls that parse uses)."""

    def __init__(self, data) -> None:
        self.data, self.pos = memoryview(data).cast("B"), 0

    def read(self, n: int) -> bytes:
        out = bytes(self.data[self.pos : self.pos + n])
        self.pos += len(out)
        return out

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.pos = offset if whence == io.SEEK_SET else self.pos + offset
        return self.pos


def header_of(data, path: str) -> ImageHeader:
    """The header of an image already in memory (bytes, bytearray, a numpy array: what a decoding worker checks
    before it decodes)."""
    return parse(_View(data), path)  # type: ignore[arg-type]


def check_size(header: ImageHeader, path: str, max_pixels: int, shorter: int | None = None) -> ImageHeader:
    """`header`, or HeaderError naming `path` when it declares more pixels than `max_pixels` allows, or (with
    `shorter`, the augmentation's largest shorter side) when its resize to that side would."""
    what = f"{path}: its {header.format.upper()} header declares {header.width} x {header.height}"
    if header.cost > max_pixels:
        deep = f" at {header.bits} bits (counted x{_SIXTEEN_BIT})" if header.bits > 8 else ""
        raise HeaderError(
            f"{what} = {header.pixels:,} pixels{deep}, over data.max_pixels={max_pixels:,} (decoding it would take "
            f"{header.cost * 3.5 / 2**30:.1f} GiB); remove it, or raise data.max_pixels if it is meant"
        )
    if shorter is not None:
        h, w = resized_size(header.height, header.width, shorter)
        if w * h > max_pixels:
            raise HeaderError(
                f"{what}; resized to a shorter side of {shorter} it would be {w} x {h} = {w * h:,} pixels, over "
                f"data.max_pixels={max_pixels:,} (which holds data.scale_max / eval_resize's resize too); remove it "
                "or crop it to a sane aspect ratio"
            )
    return header


@dataclass
class HeaderCounts:
    """What a header check saw: images, formats, the size range, grayscale/CMYK and renamed files."""

    images: int = 0
    formats: Counter = field(default_factory=Counter)
    colours: Counter = field(default_factory=Counter)
    min_size: tuple[int, int] | None = None  # (width, height) of the image with the fewest pixels
    max_size: tuple[int, int] | None = None  # ... and the most
    renamed: int = 0  # content in another format than the extension says (the real set's PNG named .JPEG)

    def add(self, header: ImageHeader, path: str) -> None:
        self.images += 1
        self.formats[header.format] += 1
        self.colours[header.colour] += 1
        size = (header.width, header.height)
        if self.min_size is None or header.pixels < self.min_size[0] * self.min_size[1]:
            self.min_size = size
        if self.max_size is None or header.pixels > self.max_size[0] * self.max_size[1]:
            self.max_size = size
        ext = path.rsplit(".", 1)[-1].lower()
        if {"jpg": "jpeg"}.get(ext, ext) != header.format:
            self.renamed += 1

    def record(self) -> dict:
        """The counts as run.json holds them."""
        return {"images": self.images, "formats": dict(sorted(self.formats.items())),
                "colours": dict(sorted(self.colours.items())), "grayscale": self.colours["gray"],
                "cmyk": self.colours["cmyk"], "renamed": self.renamed,
                "min_size": list(self.min_size or ()), "max_size": list(self.max_size or ())}

    def line(self) -> str:
        """One line for a plan: `12,345 images checked (jpeg 12,344, png 1), 20x33 to 3888x2592 px, ...`."""
        if not self.images:
            return "0 images checked"
        formats = ", ".join(f"{k} {v:,}" for k, v in sorted(self.formats.items()))
        lo, hi = self.min_size or (0, 0), self.max_size or (0, 0)
        return (f"{self.images:,} images checked ({formats}), {lo[0]}x{lo[1]} to {hi[0]}x{hi[1]} px, "
                f"{self.colours['gray']:,} grayscale, {self.colours['cmyk']:,} CMYK, "
                f"{self.renamed:,} in another format than their extension")
