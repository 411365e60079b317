"""What the GPU paths must survive, shown on a CPU: a checkpoint saved with more CUDA RNG states than devices
visible now, a precision whose gradients the flow record would read scaled, and batches nvJPEG must not be
handed (PNG only, CMYK)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from _train_helpers import folder_of, run_json, tiny, tiny_cfg, train_interrupted
from PIL import Image

from degradation.conf import compose, validate
from degradation.data.decode import decode_rgb
from degradation.data.devicedecode import decode_nvjpeg, nvjpeg_files
from degradation.data.filestream import ImageNormalize
from degradation.data.headers import header_of
from degradation.data.normalize import Normalizer
from degradation.errors import UsageError
from degradation.train.run import train


def test_a_checkpoint_with_two_cuda_rng_states_resumes_where_one_gpu_is_visible(tmp_path, monkeypatch) -> None:
    """Started on two GPUs, resumed by a sweep that shows one: the second device's state is dropped, and the run
    resumes (an IndexError here failed every retry of a valid checkpoint)."""
    train_interrupted(tiny_cfg(tmp_path), monkeypatch, at=5)
    ckpt = folder_of(tmp_path) / "checkpoints" / "last.ckpt"
    saved = torch.load(ckpt, weights_only=True)
    fake = torch.get_rng_state()  # a CUDA generator state is a ByteTensor too
    saved["degradation"]["rng"]["cuda"] = [fake.clone(), fake.clone()]
    torch.save(saved, ckpt)

    restored = []

    def set_rng_state(state: torch.Tensor, device: int | str = "cuda") -> None:
        index = 0 if device == "cuda" else int(device)
        if index >= 1:
            raise IndexError(f"device {index}: one GPU visible")
        restored.append(index)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", set_rng_state)
    monkeypatch.setattr(torch.cuda.random, "set_rng_state", set_rng_state)
    info = train(tiny_cfg(tmp_path, "trainer.accelerator=cpu"))
    assert info["status"] == "done" and restored == [0]
    assert "resuming at iteration 4" in (folder_of(tmp_path) / "train.log").read_text()
    assert run_json(folder_of(tmp_path))["iteration"] == 12


def test_16_mixed_is_refused_in_one_line_naming_bf16(tmp_path) -> None:
    with pytest.raises(UsageError) as caught:
        validate(compose(tiny(tmp_path, "trainer.precision=16-mixed")))
    message = str(caught.value)
    assert "\n" not in message and "16-mixed" in message and "bf16-mixed" in message and "scale" in message
    validate(compose(tiny(tmp_path, "trainer.precision=bf16-mixed")))


def _raw(image: Image.Image, fmt: str, name: str) -> tuple:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    data = torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)
    return data, name, 1.0, (0.0, 0.0), False, header_of(buffer.getvalue(), name)  # a worker's sample: header last


def _picture(mode: str) -> Image.Image:
    pixels = torch.arange(24 * 20 * 3, dtype=torch.int64).remainder(251).to(torch.uint8).reshape(20, 24, 3)
    return Image.fromarray(pixels.numpy(), "RGB").convert(mode)


def test_a_png_only_batch_never_reaches_nvjpeg_and_cmyk_goes_to_the_cpu(tmp_path: Path) -> None:
    """decode_jpeg([]) raises ValueError (only RuntimeError was caught): a PNG-only batch falls back to the CPU
    decoder. CMYK JPEGs go there too; RGB and grayscale JPEGs go to nvJPEG."""
    png = [_raw(_picture("RGB"), "PNG", f"a{i}.png") for i in range(3)]
    assert nvjpeg_files(png) == [] and decode_nvjpeg(png, torch.device("cpu")) == {}

    batch = [_raw(_picture("RGB"), "JPEG", "rgb.jpg"), _raw(_picture("CMYK"), "JPEG", "cmyk.jpg"),
             _raw(_picture("L"), "JPEG", "gray.jpg"), png[0]]
    assert [(raw[-1].format, raw[-1].colour) for raw in batch] == [("jpeg", "rgb"), ("jpeg", "cmyk"),
                                                                   ("jpeg", "gray"), ("png", "rgb")]
    assert nvjpeg_files(batch) == [0, 2]
    decoded = decode_nvjpeg(batch, torch.device("cpu"))  # the same call as on CUDA, on the CPU decoder
    assert sorted(decoded) == [0, 2]
    for index, image in decoded.items():
        assert torch.equal(image, decode_rgb(batch[index][0], batch[index][1], batch[index][-1]))


def test_the_image_batch_keeps_channels_last_with_a_mean_image_and_a_lighting_shift() -> None:
    """addcmul follows its NCHW mean image: the batch lost channels_last (the network then converts every layer)."""
    mean = torch.rand(3, 8, 8)
    normalize = ImageNormalize(Normalizer("mean_image", mean, torch.full((3,), 0.5)), torch.device("cpu"), True)
    crops = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    shift = torch.rand(4, 3) * 0.1
    x = normalize(crops, shift)
    assert x.is_contiguous(memory_format=torch.channels_last) and x.dtype == torch.float32
    expected = (crops.float() / 255 - mean + shift.view(4, 3, 1, 1)) * 0.5
    assert torch.allclose(x, expected, atol=1e-5)


def test_a_gpu_speed_probe_runs_in_a_process_of_its_own_in_the_runs_precision(monkeypatch) -> None:
    """The sweep must not hold a CUDA context and cached memory on GPU 0 for its whole length, and the probe times
    the run's precision with the switches put back (here on a CPU: the same call, the device aside)."""
    from degradation.sweep import estimate

    cfg = compose(["model.depth=8", "data=synthetic", "trainer.precision=bf16-mixed"])
    sent = {}
    monkeypatch.setattr(estimate, "_probe_elsewhere", lambda model, args: sent.update(args) or 1e-3)
    assert estimate.probe_run(cfg, "cuda", 4) == 1e-3
    assert sent["device"] == "cuda" and sent["precision"] == "bf16-mixed" and sent["cudnn_benchmark"] is True
    monkeypatch.undo()

    torch.backends.cudnn.allow_tf32 = True  # torch's default, which 32-true switches off while it computes
    args = {**sent, "device": "cpu", "batch": 4, "threads": 1, "precision": "32-true"}
    seconds = estimate._probe_elsewhere(cfg.model, args)
    assert seconds is not None and 0 < seconds < 10
    assert estimate.probe_seconds_per_image(cfg.model, **{**args, "precision": "bf16-mixed"}) > 0
    assert torch.backends.cudnn.allow_tf32 is True and torch.get_float32_matmul_precision() == "highest"


def test_a_multi_gpu_slurm_job_lets_every_task_see_the_nodes_gpus(tmp_path) -> None:
    """Lightning's rank k trains on cuda:k; a cluster that binds one GPU per task would leave it cuda:0 only."""
    from degradation.sweep.slurm import sbatch_text

    four = compose(["launcher=slurm", "launcher.gpus_per_node=4", "launcher.cluster=local"]).launcher
    one = compose(["launcher=slurm", "launcher.gpus_per_node=1", "launcher.cluster=local"]).launcher
    assert "--gpu-bind=none" in sbatch_text(four, tmp_path, jobs=1, runs=1)
    assert "--gpu-bind" not in sbatch_text(one, tmp_path, jobs=1, runs=1)


def test_accelerator_auto_on_a_cpu_says_so_when_an_nvidia_driver_is_loaded(tmp_path, monkeypatch) -> None:
    """An old driver under the CUDA 13 wheel: torch sees no GPU and auto trains on the CPU; one line says why."""
    from degradation.compute import machine

    monkeypatch.setattr(machine, "device_kind", lambda accelerator: "cpu")
    driver = tmp_path / "version"
    driver.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05\n")
    line = machine.unused_gpu_warning("auto", str(driver))
    assert line.startswith("warning: an NVIDIA driver is loaded (NVRM version") and "\n" not in line
    assert "trains on the CPU" in line
    assert machine.unused_gpu_warning("cpu", str(driver)) is None  # asked for: nothing to say
    assert machine.unused_gpu_warning("auto", str(tmp_path / "none")) is None  # no NVIDIA driver
