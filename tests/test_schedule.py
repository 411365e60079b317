"""The iteration schedule: step decays at the paper's iterations and the warm-up rule."""

from __future__ import annotations

import pytest

from degradation.conf import compose
from degradation.train.schedule import Schedule, WarmUp, describe_warmup, lr_at, warmup_enabled


def paper_lr(iteration: int, **kw) -> float:
    s = compose(["schedule=paper"]).schedule
    return lr_at(iteration, lr=s.lr, milestones=s.milestones, gamma=s.gamma, **kw)


@pytest.mark.parametrize(
    ("iteration", "expected"),
    [(0, 0.1), (31999, 0.1), (32000, 0.01), (47999, 0.01), (48000, 0.001), (63999, 0.001)],
)
def test_paper_lr_at_the_milestones(iteration: int, expected: float) -> None:
    assert paper_lr(iteration) == pytest.approx(expected, rel=1e-12)


def test_scaled_presets_decay_at_half_and_three_quarters() -> None:
    for preset in ("quick", "demo", "smoke"):
        s = compose([f"schedule={preset}"]).schedule
        schedule = Schedule(s, depth=20)
        first, second = s.milestones
        assert schedule.lr(first - 1) == pytest.approx(s.lr)
        assert schedule.lr(first) == pytest.approx(s.lr * s.gamma)
        assert schedule.lr(second) == pytest.approx(s.lr * s.gamma**2)
        assert schedule.lr(s.max_iters - 1) == pytest.approx(s.lr * s.gamma**2)


def test_warmup_is_on_by_default_from_depth_110_and_switchable() -> None:
    assert warmup_enabled("auto", 110, 110) and warmup_enabled("auto", 1202, 110)
    assert not warmup_enabled("auto", 56, 110)
    assert warmup_enabled(True, 20, 110) and warmup_enabled("true", 20, 110)
    assert not warmup_enabled(False, 110, 110) and not warmup_enabled("false", 1202, 110)
    s = compose(["schedule=paper"]).schedule
    assert Schedule(s, depth=110).warmup.active and not Schedule(s, depth=56).warmup.active
    forced = compose(["schedule=paper", "schedule.warmup.enabled=true"]).schedule
    assert Schedule(forced, depth=20).warmup.active
    off = compose(["schedule=paper", "schedule.warmup.enabled=false"]).schedule
    assert not Schedule(off, depth=110).warmup.active


def test_warmup_holds_lr_until_a_window_is_below_the_threshold_then_never_returns() -> None:
    schedule = Schedule(compose(["schedule=paper"]).schedule, depth=110)
    assert schedule.lr(0) == pytest.approx(0.01)
    assert not schedule.warmup.observe(0.9, 100)
    assert not schedule.warmup.observe(0.8, 200)  # "below" 80%: 80% itself keeps warming up
    assert schedule.lr(250) == pytest.approx(0.01)
    assert schedule.warmup.observe(0.79, 300)
    assert schedule.warmup.ended_at == 300
    assert schedule.lr(300) == pytest.approx(0.1)
    assert not schedule.warmup.observe(0.95, 400)  # a bad window later does not switch it back on
    assert schedule.lr(400) == pytest.approx(0.1) and schedule.lr(32000) == pytest.approx(0.01)


def test_warmup_state_round_trips() -> None:
    warm = WarmUp(active=True, until_train_error=0.8)
    warm.observe(0.5, 700)
    other = WarmUp(active=True, until_train_error=0.1)
    other.load_state_dict(warm.state_dict())
    assert (other.active, other.until_train_error, other.ended_at) == (False, 0.8, 700)


def test_lr_at_needs_a_warmup_lr_while_warming_up() -> None:
    with pytest.raises(ValueError, match="^warming_up needs warmup_lr$"):
        lr_at(0, lr=0.1, milestones=[], gamma=0.1, warming_up=True)


def test_lr_milestones_and_gamma_come_from_the_config() -> None:
    s = compose(["schedule=paper", "schedule.lr=0.2", "schedule.milestones=[10,25]", "schedule.gamma=0.5"]).schedule
    schedule = Schedule(s, depth=20)
    assert [schedule.lr(i) for i in (0, 9, 10, 24, 25, 63999)] == pytest.approx([0.2, 0.2, 0.1, 0.1, 0.05, 0.05])


def test_the_warmup_families_come_from_the_config() -> None:
    s = compose(["schedule=paper", "schedule.warmup.archs=[plain]"]).schedule
    plain, resnet = Schedule(s, depth=110, arch="plain"), Schedule(s, depth=110, arch="resnet")
    assert plain.warmup.active and not resnet.warmup.active
    assert plain.lr(0) == pytest.approx(0.01) and resnet.lr(0) == pytest.approx(0.1)


def test_a_warmup_without_a_cap_lasts_until_the_error_falls() -> None:
    """max_iters None: a checkpoint from before the cap existed warms up as it did then, at any iteration."""
    warm = WarmUp(active=True, until_train_error=0.8)
    assert warm.warming(10**6) and not warm.observe(0.9, 10**6)
    assert warm.observe(0.5, 10**6 + 100) and (warm.ended_at, warm.ended_by_cap) == (10**6 + 100, False)


def test_a_warming_state_resumes_warming() -> None:
    warm = WarmUp(active=True, until_train_error=0.8, max_iters=4000)
    warm.observe(0.9, 100)
    other = WarmUp(active=False, until_train_error=0.1, max_iters=4000)
    other.load_state_dict(warm.state_dict())
    assert other.active and other.warming(3999) and other.ended_at is None


def test_a_state_from_before_the_cap_keeps_the_configured_cap() -> None:
    """A checkpoint written before the cap existed holds no max_iters: the resumed run keeps the config's cap."""
    warm = WarmUp(active=True, until_train_error=0.8, max_iters=4000)
    warm.load_state_dict({"active": True, "until_train_error": 0.8})
    assert warm.max_iters == 4000 and not warm.warming(4000)


def test_run_json_reports_no_cap_for_a_run_without_warmup() -> None:
    s = compose(["schedule=paper"]).schedule
    assert Schedule(s, depth=56).warmup.report() == {
        "warmup": False, "warmup_max_iters": None, "warmup_ended_at": None, "warmup_ended_by_cap": None}
    assert Schedule(s, depth=110).warmup.report()["warmup_max_iters"] == 4000


@pytest.mark.parametrize(("info", "words"), [
    ({"warmup": False, "warmup_ended_at": None}, "none"),
    ({"warmup": True, "warmup_ended_at": None}, "on"),
    ({"warmup": True, "warmup_ended_at": 400.0, "warmup_ended_by_cap": False}, "ended at 400"),
    ({"warmup": True, "warmup_ended_at": 4000, "warmup_ended_by_cap": True}, "cap at 4000"),
    ({"warmup": False, "warmup_ended_at": float("nan"), "warmup_ended_by_cap": float("nan")}, "none"),  # a table row
    ({}, "-"),  # a run.json from before the warm-up was recorded
])
def test_the_warmup_record_in_words(info: dict, words: str) -> None:
    assert describe_warmup(info) == words
