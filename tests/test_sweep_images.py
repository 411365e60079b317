"""`degradation sweep --family imagenet`: bad image data refused before any run folder; the CPU smoke grid."""

from __future__ import annotations

import pandas as pd
import pytest
from _image_helpers import SMALL, make_folder

from degradation.cli import main

NET = ["model.width=0.125", "trainer.accelerator=cpu", "trainer.progress=none", "data.num_classes=3", *SMALL]


def _sweep(results, root, *extra, data="imagenet"):
    return main(["sweep", "--family", "imagenet", "--depths", "18,34", "--archs", "plain,resnet", "--data", data,
                 "--preset", "imagenet_smoke", "--results", str(results), *extra, "--", f"data.root={root}", *NET])


@pytest.mark.parametrize("damage, message", [
    ("missing", "is not a folder"),
    ("empty", "holds no images"),
    ("corrupt", "bad.JPEG is not a JPEG, PNG or WebP image"),
    ("wnid", "n0l443537 is not an ImageNet wnid"),
])
def test_bad_image_data_is_one_line_exit_2_and_no_run_folder(tmp_path, capsys, damage, message) -> None:
    root = make_folder(tmp_path / "images", per_class=2, val_per_class=1)
    if damage == "missing":
        root = tmp_path / "nowhere"
    elif damage == "empty":
        for image in (root / "val" / "n01443537").iterdir():
            image.unlink()
        for image in (root / "train" / "n01443537").iterdir():
            image.unlink()
    elif damage == "corrupt":
        (root / "val" / "n01484850" / "bad.JPEG").write_bytes(b"GIF89a not really")
    else:
        (root / "val" / "n01443537").rename(root / "val" / "n0l443537")
    assert _sweep(tmp_path / "results", root, "--dry-run") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "results" / "runs").exists()


def test_cpu_smoke_sweep_plain_and_resnet_18_34(tmp_path) -> None:
    root = make_folder(tmp_path / "images")
    assert _sweep(tmp_path / "results", root, "--jobs", "2", data="imagefolder") == 0
    runs = pd.read_parquet(tmp_path / "results" / "runs.parquet")
    assert sorted(zip(runs.arch, runs.depth, strict=True)) == [("plain", 18), ("plain", 34), ("resnet", 18),
                                                               ("resnet", 34)]
    assert (runs.status == "done").all() and runs.tencrop_top1_error.notna().all()
    assert set(runs.dataset) == {"imagefolder"} and set(runs.shortcut) == {"none", "A"}
