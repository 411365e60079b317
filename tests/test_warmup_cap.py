"""The warm-up cannot eat the schedule: it ends at schedule.warmup.max_iters at the latest, and says so."""

from __future__ import annotations

import pytest
from _train_helpers import folder_of, run_json, tiny_cfg, train_interrupted

from degradation.analysis.finals import run_finals
from degradation.analysis.load import load_results
from degradation.conf import compose
from degradation.errors import UsageError
from degradation.figures.table6 import build_table6, table6_markdown
from degradation.store.results import collect, read_runs
from degradation.store.runs import read_curves
from degradation.train.run import train
from degradation.train.schedule import Schedule, WarmUp, describe_warmup

NEVER = ["schedule.warmup.enabled=true", "schedule.warmup.until_train_error=0", "schedule.warmup.max_iters=4"]


def test_a_net_stuck_above_the_threshold_leaves_the_warmup_at_the_cap() -> None:
    schedule = Schedule(compose(["schedule=paper"]).schedule, depth=110, arch="resnet")
    cap = schedule.warmup.max_iters
    assert cap == 4000 and schedule.lr(cap - 1) == pytest.approx(0.01)
    for it in range(100, cap, 100):
        assert not schedule.warmup.observe(0.9, it)  # chance-level windows: still warming up
    assert schedule.lr(cap) == pytest.approx(0.1)  # exact at the cap, before any window reports it
    assert schedule.warmup.observe(0.9, cap)
    assert (schedule.warmup.ended_at, schedule.warmup.ended_by_cap) == (cap, True)
    assert schedule.lr(32000) == pytest.approx(0.01) and schedule.lr(48000) == pytest.approx(0.001)
    assert describe_warmup(schedule.warmup.report()) == "cap at 4000"


def test_a_cap_between_windows_counts_from_the_cap_not_the_window() -> None:
    warm = WarmUp(active=True, until_train_error=0.8, max_iters=150)
    assert warm.warming(149) and not warm.warming(150)
    assert warm.observe(0.5, 200)  # the window 101-200 was good, but the cap had ended the warm-up at 150
    assert (warm.ended_at, warm.ended_by_cap) == (150, True)
    early = WarmUp(active=True, until_train_error=0.8, max_iters=150)
    assert early.observe(0.5, 100) and (early.ended_at, early.ended_by_cap) == (100, False)
    at_cap = WarmUp(active=True, until_train_error=0.8, max_iters=150)  # the window ending at the cap was good
    assert at_cap.observe(0.5, 150) and (at_cap.ended_at, at_cap.ended_by_cap) == (150, False)


def test_cap_state_survives_a_checkpoint() -> None:
    warm = WarmUp(active=True, until_train_error=0.8, max_iters=40)
    warm.observe(0.9, 40)
    other = WarmUp(active=True, until_train_error=0.1, max_iters=999)
    other.load_state_dict(warm.state_dict())
    assert (other.active, other.max_iters, other.ended_at, other.ended_by_cap) == (False, 40, 40, True)


def test_by_default_resnets_from_110_warm_up_and_plain_nets_do_not() -> None:
    s = compose(["schedule=paper"]).schedule
    assert Schedule(s, depth=110, arch="resnet").warmup.active and Schedule(s, 1202, "resnet").warmup.active
    assert not Schedule(s, depth=110, arch="plain").warmup.active  # plain-110 trains at 0.1, as in the paper
    assert not Schedule(s, depth=56, arch="resnet").warmup.active
    forced = compose(["schedule=paper", "schedule.warmup.enabled=true"]).schedule
    assert Schedule(forced, depth=110, arch="plain").warmup.active


def test_every_preset_has_a_cap_and_a_bad_cap_is_refused() -> None:
    for preset in ("paper", "quick", "demo", "smoke"):
        s = compose([f"schedule={preset}"]).schedule
        assert 1 <= s.warmup.max_iters <= s.milestones[0], preset
    from degradation.conf import validate

    for bad, words in (("schedule.warmup.max_iters=0", "must be >= 1"), ("schedule.warmup.max_iters=x", "whole"),
                       ("schedule.warmup.archs=[cnn]", "a list of networks")):
        with pytest.raises(UsageError, match=words):
            validate(compose(["schedule=smoke", bad]))


def test_a_run_stuck_above_the_threshold_ends_its_warmup_at_the_cap_and_reports_it(tmp_path) -> None:
    info = train(tiny_cfg(tmp_path, *NEVER))
    folder = folder_of(tmp_path, *NEVER)
    lr = read_curves(folder)
    # smoke: windows of 2, lr /10 at 6 and 9; warm-up 0.01 for updates 0-3, then the schedule's 0.1, 0.01, 0.001
    assert list(lr[lr.metric == "lr"].value.round(6)) == [0.01, 0.01, 0.1, 0.01, 0.001, 0.001]
    assert (info["warmup"], info["warmup_ended_at"], info["warmup_ended_by_cap"]) == (True, 4, True)
    assert run_json(folder)["warmup_max_iters"] == 4
    assert "warm-up ended at iteration 4 (the cap" in (folder / "train.log").read_text()
    assert read_runs(tmp_path)["warmup"].tolist() == ["cap at 4"]  # `degradation status` prints this column
    collect(tmp_path)
    table, _ = build_table6(run_finals(*load_results(tmp_path)))
    assert table["warmup"].tolist() == ["cap at 4"]
    assert "| cap at 4 | done |" in table6_markdown(table, [])


def test_a_resumed_run_keeps_the_cap_exactly(tmp_path, monkeypatch) -> None:
    train(tiny_cfg(tmp_path / "a", *NEVER))
    whole = read_curves(folder_of(tmp_path / "a", *NEVER))
    train_interrupted(tiny_cfg(tmp_path / "b", *NEVER), monkeypatch, at=4)
    info = train(tiny_cfg(tmp_path / "b", *NEVER))
    again = read_curves(folder_of(tmp_path / "b", *NEVER))
    assert (info["warmup_ended_at"], info["warmup_ended_by_cap"]) == (4, True)
    cols = ["step", "split", "metric", "value"]
    assert whole[cols].reset_index(drop=True).equals(again[cols].reset_index(drop=True))
