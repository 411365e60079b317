"""`plot` follows each run's network family and data, not the loader (issue 27): CIFAR-family nets on an image
folder get Figures 1/6 and Table 6, ImageNet-family nets Figure 4 and Tables 2-3, and the paper's numbers appear
only where they are the comparison (CIFAR-10 at the paper's recipe; ImageNet for Tables 2-3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _figures_helpers import make_results, paper_like

from degradation.analysis.finals import run_finals
from degradation.analysis.load import load_results
from degradation.cli import main
from degradation.figures import render_all

CIFAR_FOLDER = {"model.family": "cifar", "data.recipe": "cifar", "data.num_classes": 10}
IMAGENET_FOLDER = {"model.family": "imagenet", "data.num_classes": 3}
CIFAR_FIGURES = ["fig1", "fig6", "fig7", "depth", "gradflow", "lesion"]


@pytest.fixture(autouse=True)
def png_only(monkeypatch) -> None:
    from degradation.figures import style

    monkeypatch.setattr(style, "FORMATS", ("png",))


def cifar_specs(dataset: str, preset: str, settings: dict) -> list[dict]:
    """plain/ResNet 20 and 56, degrading as in the paper, on the given data."""
    return [{"arch": a, "depth": d, "train": t, "test": e, "dataset": dataset, "preset": preset,
             "settings": {"model.family": "cifar", **settings}}
            for a, d, t, e in (("plain", 20, 0.06, 0.095), ("plain", 56, 0.10, 0.135),
                               ("resnet", 20, 0.05, 0.088), ("resnet", 56, 0.02, 0.07))]


def imagenet_specs(dataset: str, preset: str) -> list[dict]:
    """plain/ResNet 18 and 34 evaluated on their val split, with 10-crop errors, as ImageNet-recipe runs are."""
    return [{"arch": a, "depth": d, "train": t, "test": e, "dataset": dataset, "preset": preset, "eval_split": "val",
             "tencrop": e - 0.01, "tencrop5": e / 3, "settings": IMAGENET_FOLDER}
            for a, d, t, e in (("plain", 18, 0.30, 0.35), ("plain", 34, 0.33, 0.38),
                               ("resnet", 18, 0.29, 0.34), ("resnet", 34, 0.26, 0.31))]


def manifest(folder: Path) -> dict:
    data = json.loads((folder / "figures" / "manifest.json").read_text())
    return {entry["figure"]: entry for entry in data["figures"]}


def test_each_run_has_its_family_recipe_and_subset_and_runs_without_settings_fall_back(tmp_path: Path) -> None:
    specs = [*cifar_specs("imagefolder", "quick", {"data.recipe": "cifar", "data.num_classes": 10})[:1],
             *cifar_specs("cifar10", "quick", {"data.train_subset": 5000})[:1],
             *imagenet_specs("imagefolder", "quick")[:1]]
    finals = run_finals(*load_results(make_results(tmp_path, specs)))
    kinds = {(r.dataset, r.arch, r.depth): (r.family, r.recipe, r.train_subset) for r in finals.itertuples()}
    assert kinds == {("imagefolder", "plain", 20): ("cifar", "cifar", None),
                     ("cifar10", "plain", 20): ("cifar", "cifar", 5000),
                     ("imagefolder", "plain", 18): ("imagenet", "imagenet", None)}
    # the evaluated error: the test split, or the val split of a run that has no test rows
    assert finals.set_index("depth").loc[18, "final_test_error"] == pytest.approx(0.35)
    assert finals.set_index("depth").loc[20].sort_values("dataset")["final_test_error"].tolist() == [
        pytest.approx(0.095), pytest.approx(0.095)]
    runs = load_results(tmp_path)[1].assign(settings=None)  # runs that never recorded their config
    fallback = run_finals(load_results(tmp_path)[0], runs)
    assert sorted(zip(fallback.dataset, fallback.family, fallback.recipe, strict=True)) == [
        ("cifar10", "cifar", "cifar"), ("imagefolder", "imagenet", "imagenet"), ("imagefolder", "imagenet", "imagenet")]


def test_plot_of_cifar_family_folder_runs_draws_figures_1_and_6_named_by_the_folder_without_the_paper(
        tmp_path: Path, capsys) -> None:
    folder = make_results(tmp_path / "results", cifar_specs("imagefolder", "quick",
                                                            {"data.recipe": "cifar", "data.num_classes": 10}))
    assert main(["plot", "--results", str(folder)]) == 0
    figures = manifest(folder)
    assert list(figures) == CIFAR_FIGURES
    fig1, fig6, depth = figures["fig1"], figures["fig6"], figures["depth"]
    assert [p["labels"] for p in fig1["panels"]] == [["plain-20", "plain-56"], ["plain-20", "plain-56"]]
    assert {line["split"] for p in fig1["panels"] for line in p["lines"]} == {"train", "test"}
    assert all(line["points"] > 0 for p in fig1["panels"] for line in p["lines"])
    assert fig6["panels"][1]["labels"] == ["ResNet-20", "ResNet-56"] and fig1["missing"] == []
    for entry in (fig1, fig6, depth):
        assert "image folder (10 classes, CIFAR recipe), quick preset" in entry["title"]
    assert depth["paper_marks"] == [] and not any("paper" in n for n in depth["notes"])
    table6 = (folder / "table6.md").read_text()
    assert "## image folder (10 classes, CIFAR recipe), quick preset" in table6
    assert "paper ResNet %" not in table6 and "8.75" not in table6 and "ours − paper" not in table6
    summary = (folder / "summary.md").read_text()
    assert "600,000" not in summary and "table2.md" not in summary and "10-crop" not in summary
    assert "CIFAR-10 setting (64,000 iterations on 50,000 images)" in summary
    assert "![image folder (10 classes, CIFAR recipe), quick preset" in summary
    assert "final error against depth]" in summary
    assert not (folder / "table2.md").exists() and not (folder / "table3.md").exists()


def test_a_cifar10_training_subset_gets_no_paper_line_and_its_title_names_the_subset(tmp_path: Path) -> None:
    specs = [{**s, "dataset": "cifar10", "preset": "paper", "settings": {"data.train_subset": 5000}}
             for s in paper_like()]
    folder = make_results(tmp_path, specs)
    render_all(folder)
    figures = manifest(folder)
    for name in ("fig1", "fig6", "depth"):
        assert "CIFAR-10, 5,000-image training subset, paper preset" in figures[name]["title"]
    assert figures["depth"]["paper_marks"] == []
    assert all(p["ylim"] != [0.0, 20.0] for p in figures["fig6"]["panels"])  # not the paper's axis
    table6 = (folder / "table6.md").read_text()
    assert "paper ResNet %" not in table6 and "best of 5" not in table6 and "ours − paper" not in table6
    summary = (folder / "summary.md").read_text()
    assert "5,000-image training subset (the paper: all 50,000 images)" in summary


def test_the_cifar10_paper_case_keeps_its_paper_marks(tmp_path: Path) -> None:
    folder = make_results(tmp_path, [{**s, "dataset": "cifar10", "preset": "paper"} for s in paper_like()])
    render_all(folder)
    figures = manifest(folder)
    assert figures["depth"]["paper_marks"] == ["resnet"] and figures["fig6"]["panels"][0]["ylim"] == [0.0, 20.0]
    assert "| 56 | 853,018 (0.85M) | 13.50 | 6.97 | 6.97 |" in (folder / "table6.md").read_text()
    assert "— CIFAR-10, paper preset" in figures["fig6"]["title"]


def test_imagenet_family_folder_runs_get_figure_4_and_tables_2_3_without_the_papers_rows(tmp_path: Path) -> None:
    folder = make_results(tmp_path, imagenet_specs("imagefolder", "quick"))
    render_all(folder)
    figures = manifest(folder)
    assert list(figures) == ["fig4"]
    assert "image folder (3 classes), quick preset" in figures["fig4"]["title"]
    assert [p["labels"] for p in figures["fig4"]["panels"]] == [["plain-18", "plain-34"], ["ResNet-18", "ResNet-34"]]
    table2, table3 = (folder / "table2.md").read_text(), (folder / "table3.md").read_text()
    for text in (table2, table3):
        assert "not run" not in text and "(paper)" not in text
        assert "27.94" not in text and "28.54" not in text and "21.43" not in text
    assert "| 34 | 37.00 | 30.00 |" in table2
    assert "| ResNet-34 (A) | 30.00 | 10.33 | 1 |" in table3 and "ResNet-152" not in table3
    summary = (folder / "summary.md").read_text()
    assert "10-crop top-1" in summary and "600,000" in summary
    assert not (folder / "table6.md").exists()


def test_imagenet_keeps_the_papers_rows_of_tables_2_3(tmp_path: Path) -> None:
    folder = make_results(tmp_path, imagenet_specs("imagenet", "imagenet_smoke"))
    render_all(folder)
    table2, table3 = (folder / "table2.md").read_text(), (folder / "table3.md").read_text()
    assert "| 18 |" in table2 and "27.94" in table2 and "| ResNet-152 (B) | not run | not run | 21.43 |" in table3


def test_one_pair_with_both_families_draws_both_sets_under_the_usual_names(tmp_path: Path) -> None:
    specs = (cifar_specs("imagefolder", "quick", {"data.recipe": "cifar", "data.num_classes": 10})
             + imagenet_specs("imagefolder", "quick"))
    folder = make_results(tmp_path, specs)
    render_all(folder)
    figures = manifest(folder)
    assert list(figures) == [*CIFAR_FIGURES, "fig4"]
    assert figures["fig4"]["files"] == ["fig4.png"] and figures["fig1"]["files"] == ["fig1.png"]
    assert {d for p in figures["depth"]["panels"] for line in p["lines"] for d in line["depths"]} == {20, 56}
    assert [p["labels"] for p in figures["fig4"]["panels"]] == [["plain-18", "plain-34"], ["ResNet-18", "ResNet-34"]]
    table6 = (folder / "table6.md").read_text()
    assert "ResNet-20" in table6 and "ResNet-18" not in table6
    assert "| 18 |" in (folder / "table2.md").read_text() and "ResNet-18" in (folder / "table3.md").read_text()


def test_cifar_family_nets_on_an_imagenet_recipe_folder_draw_their_val_curves_in_figure_1(tmp_path: Path) -> None:
    """The issue's first runs: CIFAR-depth nets on a folder read the ImageNet way (val rows, no data.recipe)."""
    specs = [{**s, "eval_split": "val", "settings": {"model.family": "cifar", "data.num_classes": 10}}
             for s in cifar_specs("imagefolder", "quick", {})]
    folder = make_results(tmp_path, specs)
    render_all(folder)
    figures = manifest(folder)
    assert list(figures) == CIFAR_FIGURES
    test_panel = figures["fig1"]["panels"][1]
    assert [line["points"] > 0 for line in test_panel["lines"]] == [True, True]
    summary = (folder / "summary.md").read_text()
    assert "in validation error (centre crop)" in summary and "Trained with the ImageNet recipe" in summary
    assert "table2.md" not in summary and "600,000" not in summary


def test_a_title_names_what_every_run_changed_of_its_preset() -> None:
    """Runs all at schedule.max_iters=1000 under the quick preset are not the quick preset: the title says so; an
    lr only one run changed is that run's variant, not the title's."""
    import pandas as pd

    from degradation.analysis.setting import describe

    quick = {"schedule.max_iters": 1000, "schedule.milestones": [500, 750], "schedule.lr": 0.1}
    runs = pd.DataFrame({"settings": [json.dumps(quick), json.dumps({**quick, "schedule.lr": 0.05})]})
    title = describe("cifar10", "quick", runs)
    assert title == "CIFAR-10, quick preset, changed: max_iters=1000, milestones=[500, 750]"
    assert describe("cifar10", "quick", runs.iloc[:0]) == "CIFAR-10, quick preset"
