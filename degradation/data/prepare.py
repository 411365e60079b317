"""`degradation prepare-imagenet`: ILSVRC-2012's train/<wnid>/*.JPEG and val/<wnid>/*.JPEG from the three archives.

torchvision's ImageNet utilities do the work (published MD5s in ARCHIVE_META, the devkit's meta.mat and
ground truth, the nested train tars, the val images sorted into wnid folders); this module makes the whole
resumable and atomic. Each step (devkit -> meta.bin, val, train) builds into <out>/.prepare-<step> and is
renamed into place only when complete, so a kill leaves either a finished step or none; a rerun skips the
finished steps and starts an unfinished one over. Each archive's MD5 is checked once, by the step that reads it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from degradation.errors import UsageError

STEPS = ("devkit", "val", "train")


def _archive(archives: Path, step: str) -> Path:
    from torchvision.datasets.imagenet import ARCHIVE_META

    name = ARCHIVE_META[step][0]
    path = archives / name
    if not path.is_file():
        raise UsageError(f"{path} is missing; put the official {name} (from image-net.org) in {archives}")
    return path.absolute()


def _md5_error(step: str, path: Path) -> UsageError:
    from torchvision.datasets.imagenet import ARCHIVE_META

    return UsageError(f"{path}: its MD5 is not the published {ARCHIVE_META[step][1]} (a damaged or different "
                      "file); download it again")


def _checked(step: str, path: Path, staging: Path, run) -> None:
    """Run a torchvision parse step; its failed MD5 check (a RuntimeError) becomes one line naming the archive,
    and the step's staging folder goes."""
    try:
        run()
    except RuntimeError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if "corrupted" in str(exc) or "not present" in str(exc):
            raise _md5_error(step, path) from None
        raise


def _stage(out: Path, step: str) -> Path:
    staging = out / f".prepare-{step}"
    if staging.exists():
        shutil.rmtree(staging)  # a step cut short starts over
    staging.mkdir(parents=True)
    return staging


def prepare_imagenet(archives: str | os.PathLike, out: str | os.PathLike, log=print) -> Path:
    """Build <out>/train, <out>/val (and <out>/meta.bin) from the archives in `archives`; returns <out>."""
    archives, out = Path(archives).expanduser(), Path(out).expanduser()
    if not archives.is_dir():
        raise UsageError(f"--archives {archives} is not a folder; point it at the folder holding the three archives")
    paths = {step: _archive(archives, step) for step in STEPS if not (out / ("meta.bin" if step == "devkit" else step))
             .exists()}
    if not paths:
        log(f"{out}: already prepared (train/, val/, meta.bin)")
        return out
    if "devkit" in paths:  # small: checked before anything is created
        from torchvision.datasets.imagenet import ARCHIVE_META
        from torchvision.datasets.utils import check_integrity

        if not check_integrity(str(paths["devkit"]), ARCHIVE_META["devkit"][1]):
            raise _md5_error("devkit", paths["devkit"])
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create it ({exc.strerror}); pass a writable folder") from None
    if "devkit" in paths:
        _devkit(paths["devkit"], out, log)
    if "val" in paths:
        _val(paths["val"], out, log)
    if "train" in paths:
        _train(paths["train"], out, log)
    return out


def _devkit(path: Path, out: Path, log) -> None:
    from torchvision.datasets import imagenet

    try:
        import scipy.io  # noqa: F401  torchvision reads meta.mat with it
    except ImportError:
        raise UsageError("the devkit's meta.mat needs scipy: pip install scipy (or the package's [imagenet] extra)"
                         ) from None
    log(f"checking and parsing {path.name}")
    staging = _stage(out, "devkit")
    _checked("devkit", path, staging, lambda: imagenet.parse_devkit_archive(str(staging), str(path)))
    os.replace(staging / imagenet.META_FILE, out / imagenet.META_FILE)
    shutil.rmtree(staging)


def _val(path: Path, out: Path, log) -> None:
    from torchvision.datasets import imagenet

    wnids = imagenet.load_meta_file(str(out))[1]
    log(f"checking and extracting {path.name} ({len(wnids):,} images into wnid folders)")
    staging = _stage(out, "val")
    _checked("val", path, staging, lambda: imagenet.parse_val_archive(str(out), str(path), wnids, str(staging)))
    os.replace(staging, out / "val")


def _train(path: Path, out: Path, log) -> None:
    from torchvision.datasets import imagenet

    log(f"checking and extracting {path.name} (the long step: about 140 GB)")
    staging = _stage(out, "train")
    _checked("train", path, staging, lambda: imagenet.parse_train_archive(str(out), str(path), str(staging)))
    os.replace(staging, out / "train")
    log(f"{out}: train/ has {sum(1 for _ in (out / 'train').iterdir())} wnid folders")
