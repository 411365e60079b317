"""Figures 1, 6, 7 from hand-made results: the panels, lines, seeds bands, notes and errors a reader relies on."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.colors as mcolors
import matplotlib.image as mimage
import numpy as np
import pandas as pd
import pytest
from _figures_helpers import make_results, paper_like, run_id

from degradation.analysis.finals import run_finals
from degradation.analysis.load import load_results
from degradation.analysis.responses import write_responses
from degradation.errors import UsageError
from degradation.figures import fig6, fig7, render_all
from degradation.figures.experiment import build_experiment
from degradation.figures.style import DPI, PAD_INCHES, add_note, legend_below, network_color, new_figure, save


@pytest.fixture
def png_only(monkeypatch) -> None:
    """Tests about content, not file formats: skip the PDFs (half the drawing time on a loaded machine)."""
    from degradation.figures import style

    monkeypatch.setattr(style, "FORMATS", ("png",))


def experiment(folder: Path, responses: pd.DataFrame | None = None):
    curves, runs = load_results(folder)
    return build_experiment("synthetic", "demo", run_finals(curves, runs), curves, responses)


def manifest(folder: Path) -> dict:
    data = json.loads((folder / "figures" / "manifest.json").read_text())
    return {entry["figure"]: entry for entry in data["figures"]}


def fake_responses(folder: Path) -> pd.DataFrame:
    """std = 1/(layer index) for ResNets and 2/(layer index) for plain nets, shifted by the seed."""
    runs = pd.read_parquet(folder / "runs.parquet")
    rows = [{"run_id": r.run_id, "arch": r.arch, "depth": r.depth, "shortcut": r.shortcut, "dataset": r.dataset,
             "preset": r.preset, "seed": r.seed, "layer_index": i, "layer": f"layer{i}",
             "std": (2.0 if r.arch == "plain" else 1.0) / i + 0.1 * r.seed + (0.5 if i == 3 else 0.0)}
            for r in runs.itertuples() for i in range(1, r.depth)]
    frame = pd.DataFrame(rows)
    write_responses(frame, folder / "responses.parquet")
    return frame


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, list[Path], str]:
    folder = make_results(tmp_path_factory.mktemp("paper_like"), paper_like())
    fake_responses(folder)
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        paths = render_all(folder)
    return folder, paths, out.getvalue()


def test_render_all_writes_png_pdf_tables_summary_and_manifest(rendered) -> None:
    folder, paths, _ = rendered
    names = {p.name for p in paths}
    for stem in ("fig1", "fig6", "fig7"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= names
        assert (folder / "figures" / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        assert (folder / "figures" / f"{stem}.pdf").read_bytes()[:4] == b"%PDF"
    assert {"table6.md", "table6.csv", "summary.md", "manifest.json"} <= names


def test_figure6_has_three_panels_with_the_papers_lines_and_names_what_is_missing(rendered) -> None:
    folder, _, printed = rendered
    fig = manifest(folder)["fig6"]
    assert [p["title"] for p in fig["panels"]] == ["plain networks", "ResNets", "ResNet-110 and ResNet-1202"]
    assert fig["panels"][0]["labels"] == ["plain-20", "plain-32", "plain-44", "plain-56"]
    assert fig["panels"][1]["labels"] == ["ResNet-20", "ResNet-32", "ResNet-44", "ResNet-56", "ResNet-110"]
    assert fig["panels"][2]["labels"] == ["ResNet-110"]
    for panel in fig["panels"]:  # a training and a test line for every network
        pairs = [(line["label"], line["split"]) for line in panel["lines"]]
        assert pairs == [(name, split) for name in panel["labels"] for split in ("train", "test")]
        assert panel["ylabel"] == "error (%)" and panel["xlabel"] == "iterations"
    assert fig["missing"] == ["ResNet-1202"] and "ResNet-1202" in fig["notes"][0]
    assert "fig6: not run, not drawn: ResNet-1202" in printed
    assert "synthetic data" in fig["title"] and "not CIFAR-10" in fig["title"]
    line = next(x for x in fig["panels"][0]["lines"] if x["label"] == "plain-56" and x["split"] == "test")
    assert line["run_ids"] == [run_id("plain", 56, 0)] and line["band"] is None


def test_figure6_matplotlib_objects_styles_colours_and_outside_legends(tmp_path: Path) -> None:
    exp = experiment(make_results(tmp_path, paper_like()))
    fig, entry = fig6.draw(exp)
    axes = fig.axes
    assert len(axes) == 3
    assert [len(ax.get_lines()) for ax in axes] == [8, 10, 2]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in axes:
        for line in ax.get_lines():
            name, split = line.get_label().rsplit(" ", 1)
            depth = int(name.split("-")[1])
            assert mcolors.same_color(line.get_color(), network_color(name.split("-")[0].lower(), depth))  # per net
            assert (line.get_linestyle() == "-") == (split == "test")  # dashed training, solid test
            if split == "test":
                assert line.get_linewidth() > 2
        legend = ax.get_legend()
        assert legend is not None
        assert legend.get_window_extent(renderer).y1 < ax.get_window_extent(renderer).y0  # below, not over curves
        assert 0 < ax.get_ylim()[1] <= 100
    top = axes[0].get_ylim()[1]
    assert all(ax.get_ylim() == (0, top) for ax in axes)  # one y range across panels
    note = "\n".join(t.get_text() for t in fig.texts)
    assert "Not run (not drawn): ResNet-1202" in note  # named on the figure itself


def test_several_seeds_draw_the_mean_with_a_min_max_band(tmp_path: Path) -> None:
    folder = make_results(tmp_path, paper_like())
    exp = experiment(folder)
    fig, entry = fig6.draw(exp)
    line = next(x for x in entry["panels"][2]["lines"] if x["split"] == "test")
    assert line["band"] == "min-max" and line["seeds"] == [0, 1, 2] and len(line["run_ids"]) == 3
    curves = pd.read_parquet(folder / "curves.parquet")
    test = curves[(curves["split"] == "test") & (curves["metric"] == "error") & (curves["depth"] == 110)]
    wide = test.pivot_table(index="step", columns="run_id", values="value") * 100
    drawn = next(x for x in fig.axes[2].get_lines() if x.get_label() == "ResNet-110 test")
    assert list(drawn.get_xdata()) == list(wide.index)
    assert drawn.get_ydata() == pytest.approx(wide.mean(axis=1).to_numpy())
    band = fig.axes[2].collections[-1].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(wide.min(axis=1).min()) and band.max() == pytest.approx(wide.max(axis=1).max())
    assert any("ResNet-110 (3 seeds)" in n and "min–max" in n for n in entry["notes"])


def test_figure1_plain20_and_plain56_training_left_test_right(rendered) -> None:
    folder, _, _ = rendered
    fig = manifest(folder)["fig1"]
    assert [p["title"] for p in fig["panels"]] == ["training error", "test error"]
    for panel, split in zip(fig["panels"], ("train", "test"), strict=True):
        assert [(x["label"], x["split"]) for x in panel["lines"]] == [("plain-20", split), ("plain-56", split)]
    last = {x["label"]: x["last_value_pct"] for x in fig["panels"][0]["lines"]}
    assert last == pytest.approx({"plain-20": 6.0, "plain-56": 10.0})
    assert fig["missing"] == []


def test_figure1_names_missing_and_x_axis_in_1e4_for_long_runs(tmp_path: Path, capsys, png_only) -> None:
    specs = [{"arch": "plain", "depth": 20, "train": 0.05, "test": 0.09, "total": 20000, "log_every": 500,
              "eval_every": 2000}]
    folder = make_results(tmp_path, specs)
    render_all(folder)
    fig = manifest(folder)["fig1"]
    assert fig["missing"] == ["plain-56"] and any("plain-56" in n for n in fig["notes"])
    assert fig["panels"][0]["xlabel"] == "iter. (1e4)" and fig["panels"][0]["xlim"] == [0.0, 2.0]
    assert "fig1: not run, not drawn: plain-56" in capsys.readouterr().out


def test_figure7_network_order_on_top_sorted_below(rendered) -> None:
    folder, _, _ = rendered
    fig = manifest(folder)["fig7"]
    top, bottom = fig["panels"]
    assert top["labels"] == ["plain-20", "plain-56", "ResNet-20", "ResNet-56", "ResNet-110"]
    line = next(x for x in top["lines"] if x["label"] == "plain-20")
    expected = [2.0 / i + (0.5 if i == 3 else 0.0) for i in range(1, 20)]
    assert line["values"] == pytest.approx(expected) and line["layers"] == 19
    sorted_line = next(x for x in bottom["lines"] if x["label"] == "plain-20")
    assert sorted_line["values"] == pytest.approx(sorted(expected, reverse=True))
    res110 = next(x for x in top["lines"] if x["label"] == "ResNet-110")
    assert res110["band"] == "min-max" and len(res110["run_ids"]) == 3
    assert res110["values"][0] == pytest.approx(1.0 + 0.1)  # mean of seeds 0, 1, 2 at layer 1
    assert fig["missing"] == []
    assert top["yscale"] == "log" and top["ylabel"] == "std (log scale)"  # 2.5 down to 1/109: over 10x


def test_figure7_is_linear_from_zero_when_responses_are_alike(tmp_path: Path) -> None:
    folder = make_results(tmp_path, paper_like())
    responses = fake_responses(folder)
    responses["std"] = 1 + responses["layer_index"] / 200
    fig, entry = fig7.draw(experiment(folder, responses))
    assert entry["panels"][0]["yscale"] == "linear" and fig.axes[0].get_ylim()[0] == 0


def test_figure7_names_nets_without_responses(tmp_path: Path) -> None:
    folder = make_results(tmp_path, paper_like())
    responses = fake_responses(folder)
    responses = responses[responses["depth"] != 56]
    fig, entry = fig7.draw(experiment(folder, responses))
    assert entry["panels"][0]["labels"] == ["plain-20", "ResNet-20", "ResNet-110"]
    assert entry["no_responses"] == ["plain-56", "ResNet-56"]
    assert any(n.startswith("plain-56 has no responses") for n in entry["notes"])


def test_unfinished_runs_are_drawn_and_said_to_be_and_finished_seeds_win(tmp_path: Path) -> None:
    specs = [
        {"arch": "plain", "depth": 20, "train": 0.06, "test": 0.09},
        {"arch": "plain", "depth": 56, "train": 0.2, "test": 0.25, "status": "partial", "stop": 120},
        {"arch": "resnet", "depth": 20, "seed": 0, "train": 0.05, "test": 0.08},
        {"arch": "resnet", "depth": 20, "seed": 1, "train": 0.5, "test": 0.5, "status": "partial", "stop": 80},
        {"arch": "resnet", "depth": 56, "train": 0.9, "test": 0.9, "status": "failed", "stop": 40},
    ]
    exp = experiment(make_results(tmp_path, specs))
    fig, entry = fig6.draw(exp)
    plain56 = next(x for x in entry["panels"][0]["lines"] if x["label"] == "plain-56" and x["split"] == "train")
    assert plain56["last_step"] == 120 and entry["panels"][0]["xlim"] == [0.0, 240.0]
    assert any(n.startswith("plain-56 seed 0 is unfinished") for n in entry["notes"])
    res20 = next(x for x in entry["panels"][1]["lines"] if x["label"] == "ResNet-20")
    assert res20["seeds"] == [0]
    assert any(n.startswith("ResNet-20 seed 1 unfinished") for n in entry["notes"])
    assert "ResNet-56" not in entry["panels"][1]["labels"]
    assert any(n.startswith("ResNet-56 seed 0 failed") for n in entry["notes"])


def test_each_dataset_preset_pair_gets_its_own_figures(tmp_path: Path, png_only) -> None:
    specs = [{"arch": "plain", "depth": 20, "train": 0.06, "test": 0.09},
             {"arch": "plain", "depth": 20, "train": 0.06, "test": 0.09, "dataset": "cifar10", "preset": "quick"}]
    folder = make_results(tmp_path, specs)
    names = {p.name for p in render_all(folder, tmp_path / "out")}
    assert {"fig6-synthetic-demo.png", "fig6-cifar10-quick.png", "fig1-cifar10-quick.png"} <= names
    titles = [e["title"] for e in json.loads((tmp_path / "out" / "manifest.json").read_text())["figures"]]
    assert any("CIFAR-10, quick preset" in t for t in titles) and any("not CIFAR-10" in t for t in titles)


def test_missing_empty_and_corrupt_results_are_one_line_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        render_all(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no results in .*run `degradation sweep` first"):
        render_all(tmp_path / "empty")
    folder = make_results(tmp_path / "corrupt", paper_like())
    (folder / "curves.parquet").write_bytes(b"not a parquet file")
    with pytest.raises(UsageError, match="curves.parquet is not a readable curves table") as info:
        render_all(folder)
    assert "\n" not in str(info.value)
    folder = make_results(tmp_path / "no_rows", [])
    with pytest.raises(UsageError, match="has no rows"):
        render_all(folder)


def test_collects_run_folders_when_there_is_no_curves_table(tmp_path: Path, capsys, png_only) -> None:
    from degradation.train.curvewriter import CurveWriter

    rid = run_id("plain", 20, 0)
    folder = tmp_path / "runs" / rid
    ids = {"run_id": rid, "arch": "plain", "depth": 20, "shortcut": "none", "dataset": "synthetic",
           "preset": "demo", "seed": 0}
    (folder / "curves").mkdir(parents=True)  # made by the run (RunFolder.create); writers never rebuild a tree
    writer = CurveWriter(folder, ids, batch_size=128, train_size=10000)
    for step in (10, 20):
        writer.add(step, "train", "error", 0.5 / step, step)
    writer.add(20, "test", "error", 0.3, 20)
    writer.flush(20)
    (folder / "run.json").write_text(json.dumps({**ids, "status": "partial", "iteration": 20, "total_iters": 40}))
    render_all(tmp_path)
    assert (tmp_path / "curves.parquet").is_file()
    line = manifest(tmp_path)["fig1"]["panels"][1]["lines"][0]
    assert line["label"] == "plain-20" and line["last_value_pct"] == pytest.approx(30.0)


def test_plain110_is_a_note_with_its_final_errors_not_a_squeezing_line(tmp_path: Path) -> None:
    specs = paper_like() + [{"arch": "plain", "depth": 110, "train": 0.6, "test": 0.62}]
    fig, entry = fig6.draw(experiment(make_results(tmp_path, specs)))
    left, middle, right = (p["ylim"][1] for p in entry["panels"])
    assert left == middle == right <= 25  # the plain panel keeps the scale of plain-20..56 (not 62 x 1.15)
    assert "plain-110" not in entry["panels"][0]["labels"] and entry["not_drawn"] == ["plain-110"]
    assert any(n.startswith("plain-110: not drawn") and "final training error 60.0%, test error 62.0%" in n
               for n in entry["notes"])


def test_figure6_keeps_the_papers_0_to_20_axes_for_the_paper_preset_on_cifar10(tmp_path: Path) -> None:
    specs = [{**s, "dataset": "cifar10", "preset": "paper", "total": 64000, "log_every": 100, "eval_every": 1000}
             for s in paper_like() + [{"arch": "plain", "depth": 110, "train": 0.6, "test": 0.62}]]
    curves, runs = load_results(make_results(tmp_path, specs))
    exp = build_experiment("cifar10", "paper", run_finals(curves, runs), curves, None)
    fig, entry = fig6.draw(exp)
    assert [p["ylim"] for p in entry["panels"]] == [[0.0, 20.0]] * 3
    assert all(ax.get_ylim() == (0.0, 20.0) for ax in fig.axes[:3])
    assert entry["panels"][0]["labels"] == ["plain-20", "plain-32", "plain-44", "plain-56"]
    assert entry["not_drawn"] == ["plain-110"]


def test_a_far_higher_panel_gets_its_own_y_range(tmp_path: Path) -> None:
    specs = paper_like() + [{"arch": "resnet", "depth": 1202, "train": 0.6, "test": 0.62}]
    fig, entry = fig6.draw(experiment(make_results(tmp_path, specs)))
    left, middle, right = (p["ylim"][1] for p in entry["panels"])
    assert right >= 62 * 1.15 and middle == left <= 25


def test_runs_that_all_end_high_get_a_zoomed_y_range(tmp_path: Path) -> None:
    specs = [{"arch": "plain", "depth": 20, "train": 0.42, "test": 0.44},
             {"arch": "plain", "depth": 56, "train": 0.45, "test": 0.46}]
    fig, entry = fig6.draw(experiment(make_results(tmp_path, specs)))
    bottom, top = entry["panels"][0]["ylim"]
    assert bottom == 30.0 and top >= 46 * 1.3 * 1.15 * 0.99 and fig.axes[0].get_ylim() == (bottom, top)


def test_depth_figure_labels_its_x_axis_with_the_depths_not_powers_of_ten(tmp_path: Path) -> None:
    from degradation.figures import depthcurves

    specs = paper_like() + [{"arch": "plain", "depth": 110, "train": 0.6, "test": 0.62}]
    fig, _ = depthcurves.draw(experiment(make_results(tmp_path, specs)))
    fig.canvas.draw()
    for ax in fig.axes[:2]:
        labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert labels[:5] == ["20", "32", "44", "56", "110"]
        assert not [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()]  # no 2x10^1 ... 10^2


def test_save_lays_a_figure_out_once_yet_draws_the_pixels_of_a_tight_save(tmp_path: Path) -> None:
    """style.save lays a figure out and measures its box once for both formats (issue 30's speed): its PNG must
    still be the one bbox_inches="tight" draws, the legends below the axes and the note under them inside it."""
    def figure():
        fig, axes = new_figure(2)
        for i, ax in enumerate(axes):
            ax.plot([0, 10_000, 20_000], [i, 2.5, 1], label=f"line {i}")
            legend_below(ax, ax.get_lines())
        fig.suptitle("a title")
        add_note(fig, ["a note under everything, long enough to widen the box past the axes " * 2])
        return fig

    saved = save(figure(), tmp_path, "fig")
    figure().savefig(tmp_path / "tight.png", dpi=DPI, bbox_inches="tight", pad_inches=PAD_INCHES)
    assert [p.name for p in saved] == ["fig.png", "fig.pdf"] and saved[1].read_bytes()[:4] == b"%PDF"
    ours, tight = mimage.imread(saved[0]), mimage.imread(tmp_path / "tight.png")
    assert ours.shape == tight.shape and np.array_equal(ours, tight)
