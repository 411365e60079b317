"""Image folders on disk: which files, which class, which split; every bad input named in one line.

Layouts read (the classes are the sorted folder names of the training split):

    <root>/train/<class>/<image>   <root>/val/<class>/<image>     (data=imagenet: class = wnid, n + 8 digits)
    <root>/train/<class>/<image>   (no val/: a seeded holdout of each class validates)
    <root>/<class>/<image>         (likewise, for a plain class-per-folder data set)

Files count as images by extension (.jpeg .jpg .png .webp, any case; hidden files are skipped). Each one's header
must be a JPEG, PNG or WebP header declaring a size within `data.max_pixels` (`data.verify=headers`, the default,
headers.py: no decoding; the real training set's PNG named .JPEG and CMYK JPEGs pass), or it must also decode
(`verify=decode`, a whole pass). A file that fails is named in a UsageError: the set never shrinks silently.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from degradation.data.decode import read_rgb
from degradation.data.headers import DEFAULT_MAX_PIXELS, HeaderCounts, ImageHeader, check_size, read_header
from degradation.errors import UsageError

EXTENSIONS = (".jpeg", ".jpg", ".png", ".webp")
# data.recipe=auto: a folder whose images are at most this many pixels a side gets CIFAR's recipe (CIFAR's 32,
# Tiny-ImageNet's 64); larger ones (ImageNet's are about 400 x 350) get ImageNet's.
SMALL_SIDE = 64
SAMPLED_CLASSES = 20  # auto looks at the first image of this many class folders (headers only)
WNID = re.compile(r"^n\d{8}$")
VERIFY = ("headers", "decode", "none")


@dataclass(frozen=True)
class ImageList:
    """Files and their labels (indices into `classes`), in a fixed order: sorted by class, then file name."""

    paths: tuple[str, ...]
    labels: tuple[int, ...]
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)


@dataclass(frozen=True)
class FolderSplits:
    train: ImageList
    val: ImageList
    val_source: str  # "val/" or "holdout of N per class (split_seed S)"
    checked: HeaderCounts | None = None  # what the header check saw (None under verify=none)


def _class_dirs(folder: Path, kind: str) -> list[Path]:
    dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not dirs:
        raise UsageError(f"{folder} has no class folders; expected {folder}/<class>/<image> for each class")
    if kind == "imagenet":
        bad = [p.name for p in dirs if not WNID.match(p.name)]
        if bad:
            raise UsageError(
                f"{folder}/{bad[0]} is not an ImageNet wnid (n followed by 8 digits, e.g. n01440764); "
                "data=imagenet reads train/<wnid>/*.JPEG (use data=imagefolder for other folder names)"
            )
    return dirs


def train_folder(root: str | Path) -> Path:
    """<root>/train when it exists, else <root> itself (class folders directly under it)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UsageError(f"data.root={root} is not a folder; point it at a folder of <class>/ (or train/, val/) "
                         "folders")
    if (root / "train").is_dir():
        return root / "train"
    if (root / "val").is_dir():
        raise UsageError(f"data.root={root} has val/ but no train/; expected {root}/train/<class>/<image>")
    return root


@lru_cache(maxsize=8)
def class_names(root: str, kind: str) -> tuple[str, ...]:
    """The sorted class folder names of the training split (cheap: one directory listing)."""
    return tuple(p.name for p in _class_dirs(train_folder(root), kind))


def classes_digest(classes: tuple[str, ...]) -> str:
    """A short fingerprint of the class list: two image folders with different classes get different run ids."""
    return hashlib.sha256("\n".join(classes).encode()).hexdigest()[:12]


def _images_of(folder: Path) -> list[str]:
    return sorted(
        str(p) for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in EXTENSIONS
    )


def _list(folder: Path, classes: tuple[str, ...], split: str) -> ImageList:
    paths: list[str] = []
    labels: list[int] = []
    index = {name: i for i, name in enumerate(classes)}
    for name in sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if name not in index:
            raise UsageError(
                f"{folder / name}: class '{name}' of the {split} split has no training folder; "
                f"the classes are the folders of {folder.parent}/train"
            )
    for name in classes:
        directory = folder / name
        files = _images_of(directory) if directory.is_dir() else []
        if not files and split == "train":
            raise UsageError(f"{directory} holds no images ({', '.join(EXTENSIONS)}); every class needs images")
        paths += files
        labels += [index[name]] * len(files)
    if not paths:
        raise UsageError(f"{folder} holds no images in any class folder")
    return ImageList(tuple(paths), tuple(labels), classes)


def subset(images: ImageList, size: int, seed: int, what: str) -> ImageList:
    """data.train_subset: `size` of the images, class-balanced and chosen by `seed` (data/splits.py)."""
    import torch

    from degradation.data.splits import balanced_subset  # deferred: it loads torch (listing a folder needs none)

    chosen = balanced_subset(torch.tensor(images.labels, dtype=torch.int64), size, seed, what).tolist()
    return ImageList(tuple(images.paths[i] for i in chosen), tuple(images.labels[i] for i in chosen), images.classes)


@lru_cache(maxsize=8)
def sample_size(root: str) -> tuple[int, int]:
    """(width, height) of the largest of the first images of the first SAMPLED_CLASSES class folders: what
    data.recipe=auto decides by and what a CIFAR-recipe estimate probes at (headers only, so it is cheap)."""
    largest: tuple[int, int] = (0, 0)
    for directory in _class_dirs(train_folder(root), "imagefolder")[:SAMPLED_CLASSES]:
        for path in _images_of(directory)[:1]:
            header = read_header(path)
            if header.width * header.height > largest[0] * largest[1]:
                largest = (header.width, header.height)
    if largest == (0, 0):
        raise UsageError(f"data.root={root}: its class folders hold no images ({', '.join(EXTENSIONS)})")
    return largest


def auto_recipe(root: str) -> tuple[str, str]:
    """(recipe, why) for data.recipe=auto: CIFAR's for images at most SMALL_SIDE a side, else ImageNet's."""
    width, height = sample_size(root)
    if max(width, height) <= SMALL_SIDE:
        return "cifar", f"auto: images {width}x{height} px, at most {SMALL_SIDE}"
    return "imagenet", f"auto: images up to {width}x{height} px, over {SMALL_SIDE}"


def _holdout(images: ImageList, per_class: int, seed: int) -> tuple[ImageList, ImageList]:
    """Per class, min(per_class, 10% of the class, at least 1) images, chosen by `seed`, validate."""
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(images.labels):
        by_class.setdefault(label, []).append(i)
    val: set[int] = set()
    for label, members in sorted(by_class.items()):
        if len(members) < 2:
            raise UsageError(
                f"class '{images.classes[label]}' has {len(members)} image; a holdout needs at least 2 per class "
                "(or give a val/ folder)"
            )
        take = max(1, min(per_class, len(members) // 10))
        order = torch.randperm(len(members), generator=gen)[:take].tolist()
        val.update(members[j] for j in order)

    def pick(keep: bool) -> ImageList:
        chosen = [i for i in range(len(images)) if (i in val) == keep]
        return ImageList(tuple(images.paths[i] for i in chosen), tuple(images.labels[i] for i in chosen),
                         images.classes)

    return pick(False), pick(True)


def check_file(path: str, verify: str, max_pixels: int = DEFAULT_MAX_PIXELS,
               shorter: int | None = None) -> ImageHeader | None:
    """The header of the image at `path`, within the pixel cap as declared and resized to `shorter` (and
    decodable, under verify=decode); a UsageError naming `path` otherwise. None under verify=none."""
    if verify == "none":
        return None
    header = check_size(read_header(path), path, max_pixels, shorter)
    if verify == "decode":
        read_rgb(path, max_pixels, shorter)
    return header


def _same_size(header: ImageHeader | None, path: str, first: tuple[ImageHeader, str] | None
               ) -> tuple[ImageHeader, str] | None:
    """The CIFAR recipe crops at the images' own size: every image must have the first one's (one line otherwise)."""
    if header is None:
        return first
    if first is None:
        return header, path
    ref, ref_path = first
    if (header.width, header.height) != (ref.width, ref.height):
        raise UsageError(
            f"{path} is {header.width}x{header.height} px but {ref_path} is {ref.width}x{ref.height}: data.recipe="
            "cifar pads and crops at the images' own size, so all must be alike; give data.resize="
            f"{min(ref.width, ref.height)} to resize every image to that square, or remove the odd ones")
    return first


def scan(root: str | Path, kind: str, *, holdout_per_class: int = 50, split_seed: int = 0,
         verify: str = "headers", max_pixels: int = DEFAULT_MAX_PIXELS, shorter: int | None = None,
         same_size: bool = False, train_subset: int | None = None) -> FolderSplits:
    """The train and val image lists of an image folder (kind: imagenet | imagefolder), every file checked
    (`shorter`: the augmentation's largest shorter side, whose resize is held to the cap too; `same_size`: every
    image the size of the first, as the CIFAR recipe needs; `train_subset`: a class-balanced part trains)."""
    if verify not in VERIFY:
        raise UsageError(f"data.verify={verify!r}; choose headers, decode or none")
    train_dir = train_folder(root)
    classes = tuple(p.name for p in _class_dirs(train_dir, kind))
    train = _list(train_dir, classes, "train")
    val_dir = Path(root).expanduser() / "val"
    if train_dir != Path(root).expanduser() and val_dir.is_dir():
        if kind == "imagenet":
            _class_dirs(val_dir, kind)  # a mistyped wnid in val/ is named too
        val, source = _list(val_dir, classes, "val"), "val/"
    elif kind == "imagenet":
        raise UsageError(f"{val_dir} is missing; data=imagenet reads val/<wnid>/*.JPEG "
                         "(`degradation prepare-imagenet` builds it from the official archives)")
    else:
        train, val = _holdout(train, int(holdout_per_class), int(split_seed))
        source = f"holdout of up to {holdout_per_class} per class (split_seed {split_seed})"
    if train_subset is not None:
        train = subset(train, int(train_subset), int(split_seed), f"the training split of {root}")
    counts = None if verify == "none" else HeaderCounts()
    first = None
    for path in train.paths + val.paths:
        header = check_file(path, verify, max_pixels, shorter)
        if counts is not None and header is not None:
            counts.add(header, path)
        if same_size:
            first = _same_size(header, path, first)
    return FolderSplits(train, val, source, counts)
