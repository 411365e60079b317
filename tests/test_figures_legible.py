"""Figures legible at print size (issue 17): one colour per network across Figures 1, 6 and 7, one tick notation
on Figure 7's log axis with no overlapping labels, a warning when BN statistics are barely trained, and empty
panels whose text keeps clear of the tick labels. Checked through matplotlib's objects."""

from __future__ import annotations

import matplotlib.colors as mcolors
import pytest
from _figures_helpers import make_results, paper_like
from test_figures import experiment, fake_responses

from degradation.figures import fig1, fig6, fig7
from degradation.figures.style import NETWORK_COLORS, network_color


def labels(ax) -> list:
    """The y tick labels drawn inside the axis' range, with text."""
    low, high = sorted(ax.get_ylim())
    return [t for t in ax.get_yticklabels() if t.get_text() and low <= t.get_position()[1] <= high]


def assert_legible(fig, ax) -> None:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ticks = labels(ax)
    assert len(ticks) >= 2
    texts = [t.get_text() for t in ticks]
    mathtext = ["10^" in t for t in texts]
    assert all(mathtext) or not any(mathtext), texts  # one notation
    assert not any("e+" in t or "e-" in t for t in texts), texts  # never 1e+06 beside 500000
    boxes = sorted((t.get_window_extent(renderer) for t in ticks), key=lambda b: b.y0)
    for below, above in zip(boxes, boxes[1:], strict=False):
        assert below.y1 <= above.y0, texts  # no label overlaps the next


def test_every_network_has_its_own_colour() -> None:
    colours = [mcolors.to_hex(c) for family in NETWORK_COLORS.values() for c in family.values()]
    assert len(set(colours)) == len(colours)
    assert network_color("plain", 20) != network_color("resnet", 20)
    assert network_color("plain", 8) != network_color("resnet", 8)  # spare depths too


def test_figure7_colours_and_styles_tell_plain_from_resnet_and_match_figures_1_and_6(tmp_path) -> None:
    folder = make_results(tmp_path, paper_like())
    exp = experiment(folder, fake_responses(folder))
    fig, entry = fig7.draw(exp)
    by_label = {}
    for line, meta in zip(fig.axes[0].get_lines(), entry["panels"][0]["lines"], strict=True):
        by_label[meta["label"]] = line
        assert mcolors.same_color(line.get_color(), network_color(meta["arch"], meta["depth"]))
        assert (line.get_linestyle() == "-") == (meta["arch"] == "resnet")  # plain dashed, residual solid
    assert not mcolors.same_color(by_label["plain-20"].get_color(), by_label["ResNet-20"].get_color())
    f1, _ = fig1.draw(exp)
    f6, _ = fig6.draw(exp)
    seen = {}
    for figure in (f1, f6):
        for ax in figure.axes:
            for line in ax.get_lines():
                name = line.get_label().rsplit(" ", 1)[0]
                seen.setdefault(name, set()).add(mcolors.to_hex(line.get_color()))
    for name in ("plain-20", "plain-56", "ResNet-20", "ResNet-56", "ResNet-110"):
        assert seen[name] == {mcolors.to_hex(by_label[name].get_color())}, name  # the same colour everywhere


@pytest.mark.parametrize("peak", [3.0, 2e6])
def test_figure7_log_axis_has_one_notation_and_no_overlapping_labels(tmp_path, peak) -> None:
    folder = make_results(tmp_path, paper_like())
    responses = fake_responses(folder)
    plain56 = (responses["arch"] == "plain") & (responses["depth"] == 56)
    responses.loc[plain56, "std"] = responses.loc[plain56, "layer_index"].map(lambda i: peak ** (i / 55))
    fig, entry = fig7.draw(experiment(folder, responses))
    assert entry["panels"][0]["yscale"] == "log"
    for ax in fig.axes:
        assert_legible(fig, ax)
    texts = [t.get_text() for t in labels(fig.axes[0])]
    assert all("10^" in t for t in texts) if peak > 1e4 else not any("10^" in t for t in texts)


def test_figure7_says_when_bn_statistics_are_barely_trained(tmp_path) -> None:
    folder = make_results(tmp_path, paper_like())  # demo-like runs of 240 iterations
    responses = fake_responses(folder)
    responses.loc[responses["arch"] == "plain", "std"] *= 1e6
    fig, entry = fig7.draw(experiment(folder, responses))
    warning = fig.axes[0].get_title(loc="left")
    assert "BN statistics barely trained (240 iterations" in warning and "2,000,000" in warning
    assert entry["bn_warning"] == warning.replace("\n", " ")
    long_runs = make_results(tmp_path / "long", [{**s, "total": 6400} for s in paper_like()])
    fig, entry = fig7.draw(experiment(long_runs, fake_responses(long_runs)))
    assert entry["bn_warning"] is None and fig.axes[0].get_title(loc="left") == ""


@pytest.mark.parametrize("draw", [fig1.draw, fig6.draw, fig7.draw])
def test_empty_panel_text_keeps_clear_of_the_tick_labels(tmp_path, draw) -> None:
    folder = make_results(tmp_path, [{"arch": "plain", "depth": 8, "train": 0.1, "test": 0.2}])
    exp = experiment(folder)
    exp.cells = exp.cells.iloc[0:0]  # nothing of the paper's nets: every panel empty
    fig, _ = draw(exp)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        notes = [t for t in ax.texts if "not run" in t.get_text() or "no responses" in t.get_text()]
        assert notes
        box = notes[0].get_window_extent(renderer)
        frame = ax.get_window_extent(renderer)
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        for tick in ax.get_xticklabels() + ax.get_yticklabels():
            if tick.get_text():
                assert not box.overlaps(tick.get_window_extent(renderer)), tick.get_text()
