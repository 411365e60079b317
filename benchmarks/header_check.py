"""How long does `data.verify=headers` take on a 100-image folder? (target: at most 0.1 s)

Builds <tmp>/train/<class>/*.JPEG: 100 JPEGs of ImageNet-like sizes (about 500 x 375; every fourth one with a
30 kB EXIF segment before its frame header, every tenth a PNG named .JPEG, every seventh grayscale), then times
folders.scan (list the folders, read every header, hold it to the pixel cap, count what it saw) and the header
reads alone. Prints the median and best of --rounds; the files are in the page cache after the first round (a
cold disk adds its seek time per file). Asserts nothing.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/header_check.py [--images 100] [--rounds 20]
"""

from __future__ import annotations

import argparse
import io
import statistics
import struct
import tempfile
import time
from pathlib import Path

from degradation.data.folders import scan
from degradation.data.headers import read_header


def make_folder(root: Path, images: int, classes: int = 4) -> list[str]:
    from PIL import Image

    exif = b"\xff\xe1" + struct.pack(">H", 30002) + b"Exif\0\0" + b"\0" * 29994
    paths = []
    for i in range(images):
        folder = root / "train" / f"class{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        size = (500 - i % 7 * 20, 375 + i % 5 * 25)
        image = Image.new("RGB", size, (i * 7 % 256, 90, 160)).convert("L" if i % 7 == 0 else "RGB")
        buf = io.BytesIO()
        image.save(buf, "PNG" if i % 10 == 9 else "JPEG", quality=90)
        data = buf.getvalue()
        if i % 4 == 0 and data[:2] == b"\xff\xd8":
            data = data[:2] + exif + data[2:]
        path = folder / f"img{i:04d}.JPEG"
        path.write_bytes(data)
        paths.append(str(path))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = make_folder(root, args.images)
        scans, reads = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            splits = scan(root, "imagefolder", verify="headers", shorter=480)  # as data=imagefolder checks
            scans.append(time.perf_counter() - start)
            start = time.perf_counter()
            for path in paths:
                read_header(path)
            reads.append(time.perf_counter() - start)
        assert splits.checked is not None
        print(f"{splits.checked.line()}")
        print(f"scan (verify=headers), {args.images} images: median {statistics.median(scans) * 1e3:.1f} ms, "
              f"best {min(scans) * 1e3:.1f} ms (target <= 100 ms) over {args.rounds} rounds")
        print(f"header reads alone: median {statistics.median(reads) * 1e3:.1f} ms "
              f"({statistics.median(reads) / args.images * 1e6:.0f} us per image)")


if __name__ == "__main__":
    main()
