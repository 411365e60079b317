"""Tiny CIFAR data sets in the official on-disk format, built by the tests themselves.

The official batch files were pickled by Python 2 with numpy: keys and the raw pixel buffer are Python 2
`str` objects, which Python 3 loads as `bytes` under encoding="bytes" and as `str` under encoding="latin1".
Python 3's own pickler cannot write that (it writes bytes as a `_codecs.encode` call), so `py2_pickle` emits
the protocol-2 opcodes the way Python 2 did: SHORT_BINSTRING / BINSTRING for strings, numpy's
`_reconstruct` + BUILD for the array.
"""

from __future__ import annotations

import hashlib
import io
import struct
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from degradation.data import cifar


def _string(value: bytes) -> bytes:
    if len(value) < 256:
        return b"U" + bytes([len(value)]) + value  # SHORT_BINSTRING
    return b"T" + struct.pack("<i", len(value)) + value  # BINSTRING


def _int(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])  # BININT1
    if 0 <= value < 65536:
        return b"M" + struct.pack("<H", value)  # BININT2
    return b"J" + struct.pack("<i", value)  # BININT


def _uint8_array(array: np.ndarray) -> bytes:
    """A 2-d uint8 numpy array as Python 2 numpy pickled it."""
    rows, cols = array.shape
    dtype = (
        b"cnumpy\ndtype\n" + _string(b"u1") + _int(0) + _int(1) + b"\x87R"  # dtype('u1', 0, 1)
        + b"(" + _int(3) + _string(b"|") + b"NNN"  # BUILD state (3, '|', None, None, None, -1, -1, 0)
        + b"J" + struct.pack("<i", -1) + b"J" + struct.pack("<i", -1) + _int(0) + b"tb"
    )
    return (
        b"cnumpy.core.multiarray\n_reconstruct\n"  # _reconstruct(ndarray, (0,), 'b')
        + b"cnumpy\nndarray\n" + _int(0) + b"\x85" + _string(b"b") + b"\x87R"
        # BUILD state (1, (rows, cols), dtype, False, raw bytes as a Python 2 str)
        + b"(" + _int(1) + _int(rows) + _int(cols) + b"\x86" + dtype + b"\x89"
        + _string(np.ascontiguousarray(array, dtype=np.uint8).tobytes()) + b"tb"
    )


def py2_pickle(data: np.ndarray, labels: list[int], label_key: str = "labels") -> bytes:
    """A batch file exactly as CIFAR's Python 2 pickles are laid out: {batch_label, labels, data, filenames}."""
    out = io.BytesIO()
    out.write(b"\x80\x02}(")  # PROTO 2, EMPTY_DICT, MARK
    out.write(_string(b"batch_label") + _string(b"tiny batch"))
    out.write(_string(label_key.encode()) + b"](" + b"".join(_int(int(v)) for v in labels) + b"e")
    out.write(_string(b"data") + _uint8_array(data))
    out.write(_string(b"filenames") + b"](" + b"".join(_string(f"img_{i}.png".encode()) for i in range(len(labels))))
    out.write(b"eu.")  # APPENDS, SETITEMS, STOP
    return out.getvalue()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def make_tiny_cifar(
    root: Path, name: str = "cifar10", per_file: int = 4, num_classes: int = 10, seed: int = 0
) -> dict[str, np.ndarray]:
    """Write the official folder of `name` with `per_file` images per batch file under root; return the arrays."""
    spec = cifar.SPECS[name]
    folder = root / spec.folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written: dict[str, list[np.ndarray]] = {"train_x": [], "train_y": [], "test_x": [], "test_y": []}
    for split, files in (("train", spec.train_files), ("test", spec.test_files)):
        for file_name, _ in files:
            data = rng.integers(0, 256, size=(per_file, 3072), dtype=np.uint8)
            labels = rng.integers(0, num_classes, size=per_file)
            (folder / file_name).write_bytes(py2_pickle(data, labels.tolist(), spec.label_key))
            written[f"{split}_x"].append(data.reshape(-1, 3, 32, 32))
            written[f"{split}_y"].append(labels)
    return {key: np.concatenate(parts) for key, parts in written.items()}


def make_tiny_archive(root: Path, name: str = "cifar10", **kwargs: int) -> tuple[Path, dict[str, np.ndarray]]:
    """A tar.gz with the official folder name and file name, built in a scratch folder, placed in root."""
    scratch = root / ".scratch"
    arrays = make_tiny_cifar(scratch, name, **kwargs)
    spec = cifar.SPECS[name]
    archive = root / spec.archive
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(scratch / spec.folder, arcname=spec.folder)
    for path in sorted((scratch / spec.folder).iterdir()):
        path.unlink()
    (scratch / spec.folder).rmdir()
    scratch.rmdir()
    return archive, arrays


def publish_checksums(monkeypatch, name: str, folder: Path, archive: Path | None = None) -> None:
    """Make the tiny files the 'published' ones: patch the spec's md5s to those of the files written."""
    spec = cifar.SPECS[name]
    if archive is not None:
        with tarfile.open(archive) as tar:
            sums = {
                Path(m.name).name: hashlib.md5(tar.extractfile(m).read()).hexdigest()  # type: ignore[union-attr]
                for m in tar.getmembers()
                if m.isfile()
            }
        archive_md5 = md5(archive)
    else:
        sums = {p.name: md5(p) for p in folder.iterdir()}
        archive_md5 = spec.archive_md5
    patched = replace(
        spec,
        archive_md5=archive_md5,
        train_files=tuple((n, sums[n]) for n, _ in spec.train_files),
        test_files=tuple((n, sums[n]) for n, _ in spec.test_files),
    )
    monkeypatch.setitem(cifar.SPECS, name, patched)
