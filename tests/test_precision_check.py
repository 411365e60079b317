"""benchmarks/precision_check.py: the fp32-vs-bf16 rule on hand-made curves, bad arguments, one tiny real check."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("precision_check", ROOT / "benchmarks" / "precision_check.py")
pc = importlib.util.module_from_spec(_spec)
sys.modules["precision_check"] = pc
_spec.loader.exec_module(pc)

STEPS = list(range(10, 210, 10))  # 20 windows; evaluations at every other one


def curves(train: list[float], test: list[float] | None = None, shift: float = 0.0) -> pd.DataFrame:
    """Long-format curve rows (as the run folders hold them): train error per window, test error per evaluation."""
    test = test if test is not None else train[1::2]
    rows = [("train", "error", s, v + shift) for s, v in zip(STEPS, train, strict=True)]
    rows += [("train", "loss", s, 2.0) for s in STEPS]
    rows += [("test", "error", s, v + shift) for s, v in zip(STEPS[1::2], test, strict=True)]
    return pd.DataFrame(rows, columns=["split", "metric", "step", "value"])


FALLING = [0.9 - 0.04 * i for i in range(20)]  # 0.90 down to 0.14


def test_identical_curves_pass() -> None:
    result = pc.compare(curves(FALLING), curves(FALLING), curves(FALLING))
    assert result.passed
    assert list(result.summary["split"]) == ["train", "test"]
    assert (result.summary["precision_gap"] == 0).all() and (result.summary["limit"] == pc.FLOOR).all()
    assert list(result.summary["points"]) == [20, 10] and list(result.summary["half_points"]) == [10, 5]
    assert pc.verdict_line(result).startswith("verdict: PASS")


def test_bf16_far_off_with_small_seed_noise_fails() -> None:
    noise = [0.002 * (-1) ** i for i in range(20)]
    other = [v + n for v, n in zip(FALLING, noise, strict=True)]
    result = pc.compare(curves(FALLING), curves(FALLING, shift=0.05), curves(other, other[1::2]), floor=0.005)
    assert not result.passed and not result.summary["passed"].any()
    train = result.summary.iloc[0]
    assert train["precision_gap"] == pytest.approx(0.05) and train["seed_gap"] == pytest.approx(0.002)
    assert train["limit"] == pytest.approx(0.005)
    assert pc.verdict_line(result).startswith("verdict: FAIL")
    assert "train 5.00 > 0.50 pp" in pc.verdict_line(result)


def test_floor_rule() -> None:
    a, b = curves(FALLING), curves(FALLING, shift=0.004)  # 0.4 pp off, and C equal to A: seed gap 0
    assert pc.compare(a, b, a, floor=0.005).passed  # the floor covers a seed pair that happened to agree
    assert not pc.compare(a, b, a, floor=0.003).passed
    assert not pc.compare(a, b, a, floor=0.0).passed
    # above the floor, 1.5 seed gaps are the limit: a bf16 as far off as another seed passes, a clear shift fails
    result = pc.compare(a, curves(FALLING, shift=0.04), curves(FALLING, shift=-0.03), floor=0.005)
    assert result.passed and result.summary["limit"].tolist() == pytest.approx([0.045, 0.045])
    assert not pc.compare(a, curves(FALLING, shift=0.05), curves(FALLING, shift=-0.03)).passed
    assert not pc.compare(a, curves(FALLING, shift=0.04), curves(FALLING, shift=-0.03), slack=1.0).passed


def test_only_the_second_half_is_judged() -> None:
    early_off = [v + (0.2 if i < 10 else 0.0) for i, v in enumerate(FALLING)]  # steps 10-100 of 200
    result = pc.compare(curves(FALLING), curves(early_off, FALLING[1::2]), curves(FALLING, shift=0.01))
    assert result.passed
    points = result.points
    assert points[points["split"] == "train"]["second_half"].tolist() == [False] * 10 + [True] * 10
    assert points["precision_gap"].max() == pytest.approx(0.2)  # written per point, though not judged
    assert result.summary.iloc[0]["final_step"] == 200


def test_steps_are_matched_and_a_missing_split_is_an_error() -> None:
    a = curves(FALLING)
    shorter = a[a["step"] <= 150]  # e.g. a run cut short: only shared steps are compared
    result = pc.compare(a, shorter, a)
    assert result.summary.iloc[0]["final_step"] == 150 and result.summary.iloc[0]["points"] == 15
    with pytest.raises(ValueError, match="no test error points"):
        pc.compare(a, a[a["split"] == "train"], a)


@pytest.mark.parametrize(
    "args",
    [["--iters", "3"], ["--seed", "1", "--other-seed", "1"], ["--floor", "-1"], ["--slack", "0.5"], ["--device", "tpu"],
     ["--", "seed=3"], ["--", "trainer.precision=16-mixed"], ["--no-such-flag"]],
    ids=" ".join,
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], tmp_path: Path, capsys) -> None:
    assert pc.main(["--results", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_bad_config_exits_2_before_training(tmp_path: Path, capsys) -> None:
    assert pc.main(["--results", str(tmp_path), "--depth", "9", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "6n+2" in err[0]
    assert not (tmp_path / "fp32-s0" / "runs").exists()


def test_script_bad_argument_has_no_traceback() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "precision_check.py"), "--iters", "x"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1


def test_tiny_real_check(tmp_path: Path, capsys) -> None:
    """Three real 32-iteration ResNet-8 runs on CPU: the file, the table and a verdict (either way)."""
    argv = ["--device", "cpu", "--arch", "resnet", "--depth", "8", "--iters", "32", "--evals", "5",
            "--batch-size", "32", "--results", str(tmp_path), "--",
            "data.train_size=256", "data.test_size=64", "trainer.threads=1", "trainer.progress=none"]
    code = pc.main(argv)
    out = capsys.readouterr().out
    assert code in (0, 1), out
    verdicts = [line for line in out.splitlines() if line.startswith("verdict: ")]
    assert len(verdicts) == 1 and verdicts[0].split()[1] in ("PASS", "FAIL")
    assert code == (0 if verdicts[0].startswith("verdict: PASS") else 1)
    for name in ("fp32-s0", "bf16-s0", "fp32-s1"):
        assert len(list((tmp_path / name / "runs").iterdir())) == 1, name
    points = pd.read_parquet(tmp_path / pc.OUTPUT)
    assert set(points["split"]) == {"train", "test"}
    # 32 iterations, 5 evaluations: windows of 3, an evaluation every 6, and both at the last iteration
    assert points[points["split"] == "train"]["step"].tolist() == [*range(3, 31, 3), 32]
    assert points[points["split"] == "test"]["step"].tolist() == [*range(6, 31, 6), 32]
    assert {"fp32", "bf16", "fp32_other_seed", "precision_gap", "seed_gap", "second_half"} <= set(points.columns)
    assert points["precision_gap"].between(0, 1).all()
