"""Only the same experiment is pooled: runs that differ in a setting besides the seed are never averaged as seeds."""

from __future__ import annotations

import json

import pytest
from _figures_helpers import make_results
from _train_helpers import folder_of, tiny_cfg

from degradation.analysis.finals import run_finals
from degradation.analysis.load import load_results
from degradation.analysis.summary import build_summary
from degradation.conf import compose, run_id, variant_id
from degradation.figures import render_all
from degradation.figures.table6 import build_table6
from degradation.store.results import collect, read_runs
from degradation.store.variants import differences
from degradation.train.run import train

PLAIN = ["model=plain"]


def test_the_variant_is_the_run_id_without_the_seed() -> None:
    base = compose(["seed=0"])
    assert variant_id(base) == variant_id(compose(["seed=7"])) and run_id(base) != run_id(compose(["seed=7"]))
    assert variant_id(base) != variant_id(compose(["seed=0", "schedule.lr=0.05"]))
    assert variant_id(base) != variant_id(compose(["seed=0", "+extra.key=1"]))
    assert variant_id(base) == variant_id(compose(["seed=0", "trainer.threads=1", "results_dir=elsewhere"]))


def test_differences_name_what_differs() -> None:
    a = json.dumps({"schedule.lr": 0.1, "model.depth": 20})
    b = json.dumps({"schedule.lr": 0.05, "model.depth": 20, "extra.key": 1})
    assert differences({"a": a, "b": b}) == {"a": "extra.key=(unset), schedule.lr=0.1",
                                             "b": "extra.key=1, schedule.lr=0.05"}
    assert differences({"a": a}) == {"a": ""}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """plain-8: seeds 0 and 1 at the smoke lr, and seed 0 again with schedule.lr=0.05."""
    results = tmp_path_factory.mktemp("mixed")
    for extra in ((), ("seed=1",), ("schedule.lr=0.05",)):
        train(tiny_cfg(results, *PLAIN, *extra))
    collect(results)
    return results


def test_two_runs_differing_only_in_lr_are_never_pooled_as_seeds(mixed) -> None:
    table, notes = build_table6(run_finals(*load_results(mixed)))
    assert len(table) == 2
    by_name = table.set_index("network")
    assert by_name.loc["plain-8, schedule.lr=0.1", "n_seeds"] == 2  # seeds 0 and 1: the same experiment
    assert by_name.loc["plain-8, schedule.lr=0.05", "n_seeds"] == 1
    assert any("plain-8 has runs of 2 different settings" in n for n in notes)


def test_summary_and_figures_say_a_folder_holds_several_variants(mixed, capsys) -> None:
    finals = run_finals(*load_results(mixed))
    text = build_summary(finals)
    assert "| plain-8, schedule.lr=0.05 |" in text and "| plain-8, schedule.lr=0.1 |" in text
    assert "plain-8 has runs of 2 different settings (schedule.lr=0.05; schedule.lr=0.1)" in text
    render_all(mixed)
    assert "plain-8 has runs of 2 different settings" in capsys.readouterr().out  # `degradation plot` says so
    manifest = json.loads((mixed / "figures" / "manifest.json").read_text())
    fig6 = next(f for f in manifest["figures"] if f["figure"] == "fig6")
    assert any("plain-8 has runs of 2 different settings" in n for n in fig6["notes"])
    labels = {line["label"] for line in fig6["panels"][0]["lines"]}
    assert labels == {"plain-8, schedule.lr=0.1", "plain-8, schedule.lr=0.05"}


def test_runs_written_before_variants_get_theirs_from_their_config(mixed) -> None:
    before = read_runs(mixed).set_index("run_id")["variant"]
    folder = folder_of(mixed, *PLAIN, "schedule.lr=0.05")
    info = json.loads((folder / "run.json").read_text())
    del info["variant"], info["config"]  # an old run.json: the variant comes from config.yaml
    (folder / "run.json").write_text(json.dumps(info))
    after = read_runs(mixed).set_index("run_id")["variant"]
    assert after.equals(before)


def test_hand_made_variants_are_separate_rows(tmp_path) -> None:
    specs = [{"arch": "plain", "depth": 20, "train": 0.9, "test": 0.9},
             {"arch": "plain", "depth": 20, "train": 0.88, "test": 0.89, "run_id": "plain-20-x-s0-1",
              "settings": {"schedule.lr": 0.05}}]
    table, _ = build_table6(run_finals(*load_results(make_results(tmp_path, specs))))
    assert sorted(table["n_seeds"]) == [1, 1]
