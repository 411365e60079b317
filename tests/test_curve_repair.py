"""A damaged curve part of a finished run is rebuilt, exactly, from the rows its checkpoint carries."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from _train_helpers import folder_of

from degradation.store.results import collect


def _curves(results: Path) -> pd.DataFrame:
    return pd.read_parquet(results / "curves.parquet").drop(columns="wall_s")


def test_checkpoint_carries_every_curve_row(finished: Path) -> None:
    folder = folder_of(finished)
    saved = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["degradation"]["curves"]
    assert len(saved["step"]) == len(_curves(finished)) > 0


@pytest.mark.parametrize("which", [0, 1, -1])
def test_collect_rebuilds_a_truncated_part(finished: Path, results: Path, which: int, capsys) -> None:
    parts = sorted((folder_of(results) / "curves").glob("part-*.parquet"))
    assert len(parts) >= 3
    parts[which].write_bytes(parts[which].read_bytes()[:100])
    collect(results)
    err = capsys.readouterr().err
    assert "rebuilt 1 curve part(s) from its checkpoint" in err
    pd.testing.assert_frame_equal(_curves(results), _curves(finished))
    assert parts[which].with_name(parts[which].name + ".damaged").exists()  # kept aside, no longer read
    collect(results)  # repaired for good: the next collect has nothing to say
    assert "rebuilt" not in capsys.readouterr().err
    pd.testing.assert_frame_equal(_curves(results), _curves(finished))


def test_a_checkpoint_without_rows_leaves_the_gap_and_says_what_to_do(results: Path, capsys) -> None:
    folder = folder_of(results)
    ckpt = folder / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)
    del state["degradation"]["curves"]  # as written before checkpoints carried the rows
    torch.save(state, ckpt)
    part = sorted((folder / "curves").glob("part-*.parquet"))[0]
    rows = len(pd.read_parquet(part))
    before = len(pd.read_parquet(results / "curves.parquet"))
    part.write_bytes(part.read_bytes()[:100])
    collect(results)
    err = capsys.readouterr().err
    assert "cannot be rebuilt" in err and f"delete {folder}" in err
    assert len(pd.read_parquet(results / "curves.parquet")) == before - rows
