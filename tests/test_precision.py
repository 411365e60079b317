"""trainer.precision: 32-true is true fp32 (TF32 off), tf32 is asked for by name; run.json says which was used."""

from __future__ import annotations

import pytest
import torch
from _train_helpers import folder_of, run_json, tiny_cfg

from degradation.compute.precision import apply_precision, lightning_precision
from degradation.conf import compose, run_id, validate
from degradation.train.run import train


@pytest.fixture(autouse=True)
def keep_flags():
    """The TF32 switches are process-wide: put back what the other tests had."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.get_float32_matmul_precision())
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[:2]
    torch.set_float32_matmul_precision(saved[2])


def tf32_on() -> None:
    """PyTorch's default for convolutions on Ampere/Hopper: TF32 allowed."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.set_float32_matmul_precision("high")


def test_32_true_switches_tf32_off_for_convolutions_and_matmuls() -> None:
    tf32_on()
    record = apply_precision("32-true")
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    assert torch.get_float32_matmul_precision() == "highest"
    assert record == {"name": "32-true", "autocast": None, "tf32_matmul": False, "tf32_conv": False,
                      "float32_matmul_precision": "highest"}


def test_tf32_is_a_choice_of_its_own() -> None:
    record = apply_precision("tf32")
    assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    assert record["tf32_conv"] and record["float32_matmul_precision"] == "high"
    assert lightning_precision("tf32") == "32-true" and lightning_precision("bf16-mixed") == "bf16-mixed"
    apply_precision("bf16-mixed")
    assert not torch.backends.cudnn.allow_tf32  # the fp32 parts of mixed precision stay fp32


def test_tf32_is_part_of_the_run_id_and_valid() -> None:
    fp32, tf32 = compose(["trainer.precision=32-true"]), compose(["trainer.precision=tf32"])
    validate(tf32)
    assert run_id(fp32) != run_id(tf32)


def test_a_32_true_run_trains_in_fp32_and_records_it(tmp_path) -> None:
    tf32_on()
    info = train(tiny_cfg(tmp_path))
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    assert info["precision"]["tf32_conv"] is False and info["precision"]["name"] == "32-true"
    tf32 = train(tiny_cfg(tmp_path, "trainer.precision=tf32"))
    assert tf32["precision"]["tf32_conv"] is True and tf32["run_id"] != info["run_id"]
    assert run_json(folder_of(tmp_path, "trainer.precision=tf32"))["precision"]["name"] == "tf32"
