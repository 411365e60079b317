"""`degradation bench` on a tiny net: it prints its table and writes bench.parquet (numbers are not asserted)."""

from __future__ import annotations

import pandas as pd
import pytest

from degradation.bench.step import run_bench
from degradation.errors import UsageError

TINY = ["schedule.batch_size=8", "data.train_size=64", "data.test_size=16", "trainer.threads=1"]


def test_bench_prints_and_writes_its_table(tmp_path, capsys) -> None:
    frame = run_bench([8], ["plain"], "cpu", 2, tmp_path, overrides=TINY, rounds=1)
    table = capsys.readouterr().out
    assert "plain-8" in table and "ratio" in table and "layers" in table  # gradient flow's cost is shown
    saved = pd.read_parquet(tmp_path / "bench.parquet")
    assert saved.equals(frame) and list(saved.arch) == ["plain"] * 2 and list(saved.depth) == [8] * 2
    # a CPU's default: an fp32 row and a bf16-mixed row, in the printed table too, with bf16 against fp32
    assert list(saved.precision) == ["32-true", "bf16-mixed"]
    assert "bf16-mixed" in table and "plain-8 bf16-mixed vs 32-true: tool " in table
    for column in ("tool_images_per_s", "bare_images_per_s", "ratio", "train_gmacs_per_s", "peak_memory_mb",
                   "projected_64k_s", "stream_share", "counted_memory_mb", "no_layers_step_ms"):  # fmt: skip
        assert (saved[column] > 0).all(), column
    assert saved.batch_size.iloc[0] == 8 and saved.macs_per_image.iloc[0] > 0
    assert saved["layers_cost"].notna().all() and saved["layers_cost_cpu"].notna().all()
    assert (saved.layers_step_ms > 0).all() and (saved.layers_share > 0).all()  # the recording timed on its own
    assert (saved.layers_share < 1).all()  # a share of the step, not a ratio the wrong way round
    assert saved.step.iloc[0] == "eager"  # no CUDA here: the graph path is for one CUDA device


def test_bench_times_the_graph_path_and_counts_memory_with_checkpointing(tmp_path) -> None:
    """The bench runs whichever step the config asks for, and the memory count follows activation checkpointing."""
    graph = run_bench([14], ["resnet"], "cpu", 2, tmp_path / "a", overrides=[*TINY, "trainer.cuda_graphs=emulate"],
                      rounds=1)
    recomputed = run_bench([14], ["resnet"], "cpu", 2, tmp_path / "b", rounds=1,
                           overrides=[*TINY, "trainer.activation_checkpointing=true"])
    assert graph.step.iloc[0] == "emulate" and bool(recomputed.activation_checkpointing.iloc[0])
    assert recomputed.counted_memory_mb.iloc[0] < graph.counted_memory_mb.iloc[0]


def test_bench_refuses_bad_input_before_measuring(tmp_path) -> None:
    with pytest.raises(UsageError, match="6n\\+2"):
        run_bench([21], ["resnet"], "cpu", 2, tmp_path)
    with pytest.raises(UsageError, match="iters"):
        run_bench([20], ["resnet"], "cpu", 0, tmp_path)
    with pytest.raises(UsageError, match="--precision fp16: choose from 32-true, tf32, bf16-mixed"):
        run_bench([20], ["resnet"], "cpu", 2, tmp_path, precisions=["32-true", "fp16"])
    with pytest.raises(UsageError, match="fp16 needs a loss scaler"):
        run_bench([20], ["resnet"], "cpu", 2, tmp_path, precisions=["16-mixed"])
    with pytest.raises(UsageError, match="give it once"):
        run_bench([20], ["resnet"], "cpu", 2, tmp_path, overrides=["trainer.precision=bf16-mixed"], precisions=["32"])
    assert not (tmp_path / "bench.parquet").exists()


def test_bench_times_the_precisions_asked_and_a_precision_override_alone(tmp_path) -> None:
    one = run_bench([8], ["plain"], "cpu", 1, tmp_path / "a", overrides=TINY, rounds=1, precisions=["32"])
    assert list(one.precision) == ["32-true"]
    override = run_bench([8], ["plain"], "cpu", 1, tmp_path / "b", overrides=[*TINY, "trainer.precision=bf16-mixed"],
                         rounds=1)
    assert list(override.precision) == ["bf16-mixed"]  # as before --precision: the override's one row


def test_the_cli_refuses_precision_with_share_or_data(tmp_path, capsys) -> None:
    from degradation.cli import main

    assert main(["bench", "--share", "1,2", "--precision", "bf16-mixed", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--precision times the training step" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bench.parquet").exists()
