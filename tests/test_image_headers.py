"""Image headers read without decoding: sizes and colour layouts of every format the loader takes, decompression
bombs refused by name before any decode (scan, worker, CLI), and the decode path's stated policy for a file that
passes its header check but does not decode to it."""

from __future__ import annotations

import io
import json
import re
import struct
import zlib
from pathlib import Path

import pytest
import torch
from _image_helpers import SMALL, make_folder

from degradation.data.decode import ImageError, decode_rgb, read_bytes, read_rgb
from degradation.data.folders import scan
from degradation.data.headers import HeaderCounts, HeaderError, ImageHeader, check_size, header_of, read_header


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def zero_png(width: int, height: int, rows: int = 250) -> bytes:
    """A valid all-zero grayscale PNG of any size, built without the image: a block of zero rows is deflated once
    with a full flush (which resets the compressor, so its bytes repeat verbatim), then repeated."""
    row = width + 1  # filter byte + samples
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(b"\0" * row * rows) + comp.flush(zlib.Z_FULL_FLUSH)
    full, rest = divmod(height, rows)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    end = tail.compress(b"\0" * row * rest) + tail.flush()
    adler = ((row * height % 65521) << 16) | 1  # Adler-32 of zero bytes: A = 1, B = length mod 65521
    idat = b"\x78\xda" + block * full + end + struct.pack(">I", adler)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _pil(mode: str, size=(40, 24), fmt: str = "JPEG", **kw) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size, 90).save(buf, fmt, **kw)
    return buf.getvalue()


def sof_patched_jpeg(width: int, height: int, **kw) -> bytes:
    """A small real JPEG whose frame header (SOF) is rewritten to declare width x height."""
    data = bytearray(_pil("RGB", **kw))
    at = next(i for i in range(2, len(data) - 1) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC1, 0xC2))
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_headers_give_every_format_size_and_colour(tmp_path) -> None:
    exif = b"\xff\xe1" + struct.pack(">H", 30002) + b"Exif\0\0" + b"\0" * 29994  # a 30 kB APP1 before the frame
    jpeg = _pil("RGB")
    cases = {
        "baseline.jpg": (jpeg, ("jpeg", 40, 24, "rgb", 8)),
        "progressive.jpg": (_pil("RGB", progressive=True), ("jpeg", 40, 24, "rgb", 8)),
        "app1.jpg": (jpeg[:2] + exif + b"\xff\xfe\x00\x05abc" + jpeg[2:], ("jpeg", 40, 24, "rgb", 8)),
        "gray.jpg": (_pil("L"), ("jpeg", 40, 24, "gray", 8)),
        "cmyk.jpg": (_pil("CMYK"), ("jpeg", 40, 24, "cmyk", 8)),
        "rgb.png": (_pil("RGB", fmt="PNG"), ("png", 40, 24, "rgb", 8)),
        "rgba.png": (_pil("RGBA", fmt="PNG"), ("png", 40, 24, "rgba", 8)),
        "palette.png": (_pil("P", fmt="PNG"), ("png", 40, 24, "palette", 1)),  # one colour: 1 bit
        "deep.png": (_pil("I;16", fmt="PNG"), ("png", 40, 24, "gray", 16)),
        "lossy.webp": (_pil("RGB", fmt="WEBP"), ("webp", 40, 24, "rgb", 8)),
        "lossless.webp": (_pil("RGB", fmt="WEBP", lossless=True), ("webp", 40, 24, "rgb", 8)),
        "alpha.webp": (_pil("RGBA", fmt="WEBP"), ("webp", 40, 24, "rgba", 8)),
        "png.JPEG": (_pil("RGB", fmt="PNG"), ("png", 40, 24, "rgb", 8)),  # the real set's PNG named .JPEG
    }
    counts = HeaderCounts()
    for name, (data, want) in cases.items():
        path = _write(tmp_path / name, data)
        header = read_header(path)
        assert (header.format, header.width, header.height, header.colour, header.bits) == want, name
        assert header_of(data, path) == header
        assert tuple(read_rgb(path).shape) == (3, 24, 40), name  # and each decodes to what it declares
        counts.add(header, path)
    record = counts.record()
    assert record["images"] == 13 and record["formats"] == {"jpeg": 5, "png": 5, "webp": 3}
    assert (record["grayscale"], record["cmyk"], record["renamed"]) == (2, 1, 1)  # renamed: png.JPEG (.jpg is jpeg)


def test_a_sixteen_bit_png_decodes_to_its_high_bytes(tmp_path) -> None:
    from PIL import Image

    values = torch.arange(24 * 40, dtype=torch.int32).view(24, 40) * 65
    Image.fromarray(values.numpy().astype("uint16")).save(tmp_path / "deep.png")
    image = read_rgb(str(tmp_path / "deep.png"))
    assert image.dtype == torch.uint8 and torch.equal(image[1], (values >> 8).to(torch.uint8))


@pytest.mark.parametrize("data, message", [
    (b"", "is empty (0 bytes)"),
    (b"\x89PNG\r", "header is truncated"),
    (b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0", "its PNG header is truncated"),
    (_pil("RGB")[:20], "its JPEG header is truncated"),
    (b"\xff\xd8\xff\xe0" + b"\0" * 40, "a JPEG segment of length 0"),
    (b"\xff\xd8\xff\xda\0\x08" + b"\0" * 20, "a JPEG without a frame header"),
    (b"GIF89a not an image at all", "is not a JPEG, PNG or WebP image"),
    (b"RIFF\0\0\0\0WEBPVP8Q" + b"\0" * 30, "not VP8, VP8L or VP8X"),
    (sof_patched_jpeg(40, 0), "declares 40 x 0 pixels (an empty image)"),
])
def test_broken_headers_are_named(tmp_path, data, message) -> None:
    path = _write(tmp_path / "bad.JPEG", data)
    with pytest.raises(HeaderError, match=re.escape(message)) as caught:
        read_header(path)
    assert str(caught.value).count("\n") == 0 and "bad.JPEG" in str(caught.value)


def test_the_pixel_cap_refuses_declared_sizes_by_name(tmp_path) -> None:
    png = _write(tmp_path / "bomb.png", zero_png(40000, 40000))
    assert Path(png).stat().st_size < 5_000_000  # 1.6 Gpx in under 5 MB
    jpeg = _write(tmp_path / "bomb.JPEG", sof_patched_jpeg(65000, 65000, progressive=True))
    for path, size in ((png, "40000 x 40000 = 1,600,000,000 pixels"), (jpeg, "65000 x 65000 = 4,225,000,000")):
        with pytest.raises(HeaderError, match=f"{Path(path).name}: its .* header declares {size}"):
            check_size(read_header(path), path, 100_000_000)
    assert check_size(ImageHeader("png", 10000, 10000, "rgb"), "x", 100_000_000)  # the cap itself passes
    deep = ImageHeader("png", 8000, 8000, "rgb", 16)  # 64 Mpx at 16 bits weigh as 192 Mpx
    with pytest.raises(HeaderError, match="at 16 bits"):
        check_size(deep, "deep.png", 100_000_000)
    strip = ImageHeader("jpeg", 10_000_000, 10, "rgb")  # within the cap as decoded, not once resized
    assert check_size(strip, "strip.jpg", 100_000_000)
    with pytest.raises(HeaderError, match=r"strip.jpg: .*resized to a shorter side of 480 it would be "
                                          r"480000000 x 480 = 230,400,000,000 pixels, over data.max_pixels"):
        check_size(strip, "strip.jpg", 100_000_000, shorter=480)
    assert check_size(ImageHeader("jpeg", 500, 33, "rgb"), "x", 100_000_000, shorter=480)  # ILSVRC's 500 x 33


def test_decoded_size_must_match_the_header(tmp_path) -> None:
    path = _write(tmp_path / "a.jpg", _pil("RGB"))
    data = read_bytes(path)
    assert tuple(decode_rgb(data, path, ImageHeader("jpeg", 40, 24, "rgb")).shape) == (3, 24, 40)
    with pytest.raises(ImageError, match=r"a.jpg: decoded to 40 x 24 pixels, but its JPEG header declares 41 x 24"):
        decode_rgb(data, path, ImageHeader("jpeg", 41, 24, "rgb"))


def test_scan_counts_the_real_set_quirks(tmp_path) -> None:
    splits = scan(make_folder(tmp_path / "images"), "imagenet")
    record = splits.checked.record()
    assert record["images"] == 24 and record["formats"] == {"jpeg": 21, "png": 3}
    assert (record["grayscale"], record["cmyk"], record["renamed"]) == (6, 3, 3)
    assert "24 images checked (jpeg 21, png 3)" in splits.checked.line()
    assert scan(tmp_path / "images", "imagenet", verify="none").checked is None


# ---- the decode path in the workers --------------------------------------------------------------------------

def _data_cfg(root, *extra):
    from degradation.conf import compose

    return compose(["model.family=imagenet", "model.depth=18", "data=imagenet", f"data.root={root}", *SMALL,
                    "data.num_classes=3", "schedule=smoke", "data.mean_samples=1", "data.split_seed=5",
                    *extra]).data


def _truncate(path: Path) -> None:
    """Cut a JPEG's body in half: its header still reads, its decode fails."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_file_failing_in_training_is_skipped_and_counted_or_stops(tmp_path) -> None:
    from degradation.data import build_data

    root = make_folder(tmp_path / "images", per_class=4, val_per_class=1)
    bad = root / "train" / "n01443537" / "n01443537_train_0.JPEG"
    _truncate(bad)
    data = build_data(_data_cfg(root), batch_size=4, seed=0)  # default: skip, up to 10 files
    for _ in range(6):  # two epochs of 12 images
        x, y = next(data.train)
        assert x.shape == (4, 3, 16, 16) and len(y) == 4  # never a smaller batch
    record = data.train.report()["bad_images"]
    assert (record["policy"], record["files"], record["samples"]) == ("skip", 1, 2)  # once per epoch
    assert "n01443537_train_0.JPEG" in next(iter(record["refused"])) and "truncated" in record["refused"][str(bad)]
    again = build_data(_data_cfg(root), batch_size=4, seed=0)
    again.train.load_state_dict(data.train.state_dict())  # the count survives a resume
    assert again.train.report()["bad_images"]["samples"] == 2
    for extra in ("data.bad_images=stop", "data.max_bad_images=0"):
        stop = build_data(_data_cfg(root, extra), batch_size=4, seed=0)
        with pytest.raises(ImageError, match="n01443537_train_0.JPEG.*truncated"):
            for _ in range(3):
                next(stop.train)


def test_a_strip_that_would_resize_past_the_cap_is_refused_by_the_check(tmp_path) -> None:
    from degradation.data import build_data

    root = make_folder(tmp_path / "images", per_class=2, val_per_class=1)
    (root / "train" / "n01440764" / "strip.png").write_bytes(zero_png(50000, 2))  # 0.1 Mpx; 14.4 Mpx at 24
    build_data(_data_cfg(root, "data.max_pixels=20000000"), batch_size=2, seed=0)
    with pytest.raises(HeaderError, match=r"strip.png: its PNG header declares 50000 x 2; resized to a shorter side "
                                          r"of 24 it would be 600000 x 24 = 14,400,000 pixels"):
        build_data(_data_cfg(root, "data.max_pixels=1000000"), batch_size=2, seed=0)


def test_a_file_grown_into_a_bomb_after_the_scan_is_refused_in_the_worker_before_decoding(tmp_path,
                                                                                          monkeypatch) -> None:
    import torchvision.io

    from degradation.data import build_data

    root = make_folder(tmp_path / "images", per_class=4, val_per_class=1)
    data = build_data(_data_cfg(root, "data.bad_images=stop"), batch_size=12, seed=0)
    (root / "train" / "n01484850" / "n01484850_train_1.JPEG").write_bytes(zero_png(40000, 40000))
    real = torchvision.io.decode_image

    def guarded(data, *args, **kwargs):
        assert data.numel() < 1_000_000, "the bomb reached the decoder"
        return real(data, *args, **kwargs)

    monkeypatch.setattr(torchvision.io, "decode_image", guarded)
    with pytest.raises(ImageError, match="n01484850_train_1.JPEG: its PNG header declares 40000 x 40000"):
        next(data.train)


# ---- what a user runs ----------------------------------------------------------------------------------------

def _sweep(results, root, *extra):
    from degradation.cli import main

    return main(["sweep", "--family", "imagenet", "--data", "imagefolder", "--depths", "18", "--archs", "resnet",
                 "--preset", "imagenet_smoke", "--results", str(results), *extra, "--", f"data.root={root}",
                 "model.width=0.125", "trainer.accelerator=cpu", "trainer.progress=none", *SMALL])


@pytest.mark.parametrize("bomb", ["png", "jpeg"])
def test_sweep_refuses_a_bomb_before_any_decode_in_one_line_and_creates_nothing(tmp_path, capsys, monkeypatch,
                                                                                 bomb) -> None:
    import torchvision.io

    root = make_folder(tmp_path / "images", per_class=2, val_per_class=1)
    name, data = (("huge.png", zero_png(40000, 40000)) if bomb == "png"
                  else ("huge.JPEG", sof_patched_jpeg(65000, 65000)))
    (root / "train" / "n01440764" / name).write_bytes(data)

    def never(*args, **kwargs):
        raise AssertionError("decoded")

    monkeypatch.setattr(torchvision.io, "decode_image", never)
    results = tmp_path / "results"
    assert _sweep(results, root) == 2
    err = capsys.readouterr().err.strip()
    size = "40000 x 40000" if bomb == "png" else "65000 x 65000"
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and f"{name}: its" in err
    assert f"declares {size}" in err and "over data.max_pixels=100,000,000" in err
    assert not results.exists() or not any(results.iterdir())


def test_the_plan_states_what_the_header_check_saw_the_memory_bound_and_the_policy(tmp_path, capsys) -> None:
    root = make_folder(tmp_path / "images")
    assert _sweep(tmp_path / "results", root, "--dry-run", "--jobs", "1") == 0
    out = capsys.readouterr().out
    assert f"the image folder {root}" in out and "made in memory" not in out
    assert "images: 24 images checked (jpeg 21, png 3), " in out and "6 grayscale, 3 CMYK" in out
    assert re.search(r"decoding memory per run: at most (\d+ workers?|1 \(the training process\)) x "
                     r"data.max_pixels=100,000,000 x 8 B = \d+\.\d GiB", out)
    assert "skipped and counted in run.json, up to data.max_bad_images=10" in " ".join(out.split())


def test_run_json_holds_the_header_counts_and_the_refused_files(tmp_path) -> None:
    from degradation.conf import compose
    from degradation.train.run import train

    root = make_folder(tmp_path / "images")
    _truncate(root / "train" / "n01440764" / "n01440764_train_4.JPEG")
    info = train(compose(["model.family=imagenet", "model.depth=18", "model.width=0.125", "schedule=imagenet_smoke",
                          "trainer.accelerator=cpu", "trainer.threads=1", "trainer.progress=none", "data=imagenet",
                          f"data.root={root}", "data.num_classes=3", *SMALL, f"results_dir={tmp_path / 'r'}",
                          "schedule.max_iters=8", "schedule.batch_size=8"]))
    assert info["status"] == "done" and info["max_pixels"] == 100_000_000
    assert info["images_checked"]["images"] == 24 and info["images_checked"]["cmyk"] == 3
    assert info["bad_images"]["files"] == 1 and info["bad_images"]["samples"] >= 1
    on_disk = json.loads((Path(info["run_dir"]) / "run.json").read_text())
    assert on_disk["bad_images"] == info["bad_images"]
