"""`degradation sweep --family imagenet`: bad image data refused before any run folder; the CPU smoke grid."""

from __future__ import annotations

import json

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
    assert main(["plot", "--results", str(tmp_path / "results")]) == 0
    manifest = json.loads((tmp_path / "results" / "figures" / "manifest.json").read_text())
    assert [f["figure"] for f in manifest["figures"]] == ["fig4"]
    panels = manifest["figures"][0]["panels"]
    assert [p["labels"] for p in panels] == [["plain-18", "plain-34"], ["ResNet-18", "ResNet-34"]]
    assert {(line["split"], line["points"] > 0) for p in panels for line in p["lines"]} == {("train", True),
                                                                                            ("val", True)}
    table2 = (tmp_path / "results" / "table2.md").read_text()
    # an image folder, not ImageNet: its own rows only, no paper rows (issue 27)
    assert "| 18 |" in table2 and "27.94" not in table2 and "an image folder (3 classes), not ILSVRC-2012" in table2
    summary = (tmp_path / "results" / "summary.md").read_text()
    assert "## image folder (3 classes), imagenet_smoke preset" in summary and "10-crop top-1" in summary
    assert not (tmp_path / "results" / "table6.md").exists()


def test_tables_compare_with_the_paper_only_for_imagenet_under_its_schedule() -> None:
    from degradation.figures.tables23 import image_cells, table2_markdown, table3_markdown

    rows = []
    for arch, shortcut, depth, top1, top5 in [("plain", "none", 18, 0.28, 0.10), ("plain", "none", 34, 0.29, 0.105),
                                              ("resnet", "A", 18, 0.2788, 0.09), ("resnet", "A", 34, 0.25, 0.078),
                                              ("resnet", "B", 50, 0.23, 0.07)]:
        for seed, shift in ((0, 0.0), (1, 0.002)):
            rows.append({"run_id": f"{arch}{depth}{shortcut}{seed}", "arch": arch, "depth": depth,
                         "shortcut": shortcut, "dataset": "imagenet", "preset": "imagenet", "seed": seed,
                         "status": "done", "finished": True, "has_curves": True, "final_train_error": 0.2,
                         "final_test_error": 0.3, "tencrop_top1_error": top1 + shift, "tencrop_top5_error": top5,
                         "label": "x", "iteration": 600000, "total_iters": 600000,
                         "variant": f"{arch}{depth}{shortcut}", "settings": None})  # seeds of one variant each
    cells, notes = image_cells(pd.DataFrame(rows))
    assert notes == [] and len(cells) == 5
    table2 = table2_markdown(cells, notes)
    assert "| 34 | 29.10 ± 0.14 | 28.54 | +0.56 | 25.10 ± 0.14 | 25.03 | +0.07 |" in table2
    table3 = table3_markdown(cells, notes)
    assert "| ResNet-50 (B) | 23.10 ± 0.14 | 7.00 ± 0.00 | 22.85 | 6.71 | +0.25 | +0.29 | 2 |" in table3
    assert "| ResNet-34 (C) | not run | not run | 24.19 | 7.40 | — | — | 0 |" in table3
