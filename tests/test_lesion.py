"""`degradation lesion`: blocks removed from finished runs, errors measured, seeded, resumable, one-line errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from _study_helpers import train_pair
from typer.testing import CliRunner

from degradation.analysis import lesion as les
from degradation.cli import app, main
from degradation.models import cifar_net, preact_net


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return train_pair(tmp_path_factory.mktemp("pair"))


def test_removing_blocks_changes_the_network_and_puts_it_back() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    for model in (cifar_net("resnet", 14).eval(), preact_net(14).eval()):
        before = model(x)
        every = les.blocks(model)
        assert len(every) == 6 and all(les.replacement(b[3])[0] is not None for b in every)
        with les.removed(every[1:2]):
            assert not torch.equal(model(x), before)
        assert torch.equal(model(x), before)
    plain = cifar_net("plain", 14).eval()
    why = [les.replacement(b[3])[1] for b in les.blocks(plain)]
    assert [bool(w) for w in why] == [False, False, True, False, True, False]  # stage changes: no identity fits


def test_lesion_rows_and_intact_error_equal_the_run(results, capsys) -> None:
    path = les.compute_lesions(results, device="cpu", draws=2)
    frame = pd.read_parquet(path)
    assert set(frame["arch"]) == {"plain", "resnet"}
    for run_id, rows in frame.groupby("run_id"):
        info = json.loads((results / "runs" / run_id / "run.json").read_text())
        intact = rows[rows["kind"] == "none"]["test_error"].item()
        assert intact == pytest.approx(info["final_test_error"])  # the same evaluation as training's
        single = rows[rows["kind"] == "single"]
        assert list(single["block_index"]) == [1, 2, 3, 4, 5, 6]
        random_rows = rows[rows["kind"] == "random"]
        assert sorted(set(random_rows["k"])) == [1, 2] and (random_rows.groupby("k").size() == 2).all()
        skipped = single[single["skipped"] != ""]
        assert len(skipped) == (2 if rows["arch"].iloc[0] == "plain" else 0)
        assert skipped["test_error"].isna().all() and single[single["skipped"] == ""]["test_error"].notna().all()
    assert (frame.loc[frame["skipped"] == "", "images"] == 40).all()  # the whole (tiny) test set
    err = capsys.readouterr().err
    assert err.count("lesion ") == len(frame)  # one line per error
    # Seeded: measured again, the same rows.
    again = pd.read_parquet(les.compute_lesions(results, device="cpu", draws=2, recompute=True))
    pd.testing.assert_frame_equal(again.reset_index(drop=True), frame.reset_index(drop=True))


def test_a_rerun_skips_measured_runs(results, monkeypatch) -> None:
    les.compute_lesions(results, device="cpu", draws=1, max_k=1)
    monkeypatch.setattr(les, "run_lesions", lambda *a, **k: pytest.fail("measured again"))
    les.compute_lesions(results, device="cpu", draws=1, max_k=1)


@pytest.mark.parametrize("args, needle", [
    (["--draws", "0"], "--draws 0 must be >= 1"),
    (["--max-k", "-1"], "--max-k -1"),
    (["--device", "tpu"], "--device"),
    (["--images", "0"], "--images 0"),
])
def test_bad_input_is_one_line_and_exit_2(results, capsys, args, needle) -> None:
    assert main(["lesion", "--results", str(results), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and err.count("\n") == 1


def test_missing_results_and_help(tmp_path, capsys) -> None:
    assert main(["lesion", "--results", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists()
    help_text = CliRunner().invoke(app, ["lesion", "--help"]).output
    assert "Examples" in help_text and "degradation lesion --results" in help_text


def test_images_caps_the_test_set(results) -> None:
    frame = pd.read_parquet(les.compute_lesions(results, device="cpu", draws=1, max_k=0, images=25, recompute=True))
    assert (frame.loc[frame["skipped"] == "", "images"] == 25).all()
    assert set(frame["kind"]) == {"none", "single"}
