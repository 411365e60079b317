"""The stages of benchmarks/gpu_check.sh that are Python: each checks one GPU path and exits non-zero when it is
wrong. On a CPU (QUICK=1) the same code runs on the CPU as a rehearsal.

  python benchmarks/gpu_stages.py decode DEVICE          device-decoded images == CPU-decoded ones (JPEG RGB,
                                                          grayscale, CMYK, a PNG-only batch), under a busy stream
  python benchmarks/gpu_stages.py resume DEVICE WORK     a checkpoint carrying two CUDA RNG states resumes here
  python benchmarks/gpu_stages.py switches DEVICE WORK   one smoke run per precision in one process: run.json must
                                                          say TF32 off for 32-true and bf16-mixed, on for tf32
  python benchmarks/gpu_stages.py memory DEVICE DEPTH    fp32 training peak: allocated, reserved, and the device's
                                                          used memory (context and cuDNN workspace included)
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def _raw(image, fmt: str, name: str) -> tuple:
    from degradation.data.headers import header_of  # deferred: as the stage's other imports

    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    data = buffer.getvalue()  # a worker's sample: bytes, path, scale, crop, flip, and the header it read
    return torch.frombuffer(bytearray(data), dtype=torch.uint8), name, 1.0, (0.0, 0.0), False, header_of(data, name)


def decode(device_name: str) -> int:
    from PIL import Image

    from degradation.data.decode import decode_rgb
    from degradation.data.devicedecode import _decode_all, nvjpeg_files

    device = torch.device(device_name)
    def picture(i: int) -> Image.Image:  # smooth gradients: decoders agree within a level or two on them
        h, w = 40 + 8 * i, 56
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        rgb = torch.stack([xs * 255 // w, ys * 255 // h, (xs + ys + 40 * i) % 256], -1).to(torch.uint8)
        return Image.fromarray(rgb.numpy())

    images = [picture(i) for i in range(6)]
    mixed = [_raw(images[0], "JPEG", "a.jpg"), _raw(images[1].convert("L"), "JPEG", "b.jpg"),
             _raw(images[2].convert("CMYK"), "JPEG", "c.jpg"), _raw(images[3], "PNG", "d.png")]
    batches = {
        "jpeg rgb + gray + cmyk + png": mixed,
        "png only": [_raw(images[4], "PNG", "e.png"), _raw(images[5], "PNG", "f.png")],
        "jpeg only": [_raw(im, "JPEG", f"{i}.jpg") for i, im in enumerate(images)],
    }
    failures = 0
    busy = torch.randn(4096 if device.type == "cuda" else 64, 4096 if device.type == "cuda" else 64, device=device)
    for name, raws in batches.items():
        expected = [decode_rgb(data, path) for data, path, *_ in raws]
        for round_ in range(20):  # the main stream kept busy: a decode that races it shows as a wrong image
            for _ in range(4):
                busy = busy @ busy / busy.norm()
            got = [image.cpu() for image in _decode_all(raws, device)]
            for (_, path, *_), want, image in zip(raws, expected, got, strict=True):
                diff = (image.int() - want.int()).abs().float()
                if image.shape != want.shape or diff.mean() > 1.5 or diff.max() > 48:
                    failures += 1
                    print(f"decode {name} round {round_} {path}: shape {tuple(image.shape)} vs {tuple(want.shape)}")
        print(f"decode {name}: {len(raws)} images x 20 rounds, nvJPEG took {len(nvjpeg_files(raws))} "
              f"({'ok' if not failures else 'WRONG'})")
    failures += _normalize_on(device)
    return 1 if failures else 0


def _normalize_on(device: torch.device) -> int:
    """The file stream's fused normalisation (Normalizer.affine, the lighting shift from pinned memory) on the device
    equals the formula computed on the CPU."""
    from degradation.data.filestream import ImageNormalize
    from degradation.data.normalize import fit_normalizer

    gen = torch.Generator().manual_seed(0)
    crops = torch.randint(0, 256, (8, 3, 16, 16), generator=gen, dtype=torch.uint8)
    shift = torch.randn(8, 3, generator=gen) * 0.01
    norm = fit_normalizer(crops, "channel")
    want = (crops.float() / 255 - norm.mean + shift.view(8, 3, 1, 1)) * norm.inv_std.view(1, 3, 1, 1)
    got = ImageNormalize(norm, device, channels_last=True)(crops, shift).cpu()
    wrong = not torch.allclose(got, want, atol=1e-4)
    print(f"normalise on {device}: {'WRONG' if wrong else 'ok'} (max diff {float((got - want).abs().max()):.2e})")
    return int(wrong)


def resume(device_name: str, work: str) -> int:
    """Train a short run, give its last checkpoint a second CUDA RNG state (as if saved on two GPUs), mark the run
    partial, and resume it here, where one GPU is visible: the restore path runs and the run ends done."""
    import subprocess

    results = Path(work) / "resume"
    base = [sys.executable, "-m", "degradation.train", "model=resnet", "model.depth=8", "data=synthetic",
            "data.train_size=64", "data.test_size=32", "schedule=smoke", "schedule.max_iters=8",
            "schedule.milestones=[4,6]", f"trainer.accelerator={device_name}", "trainer.progress=none",
            f"results_dir={results}"]
    first = subprocess.run(base, capture_output=True, text=True)
    if first.returncode != 0:
        print(first.stdout[-2000:], first.stderr[-2000:])
        return 1
    (ckpt,) = results.glob("runs/*/checkpoints/last.ckpt")
    state = torch.load(ckpt, weights_only=True)
    cuda = state["degradation"]["rng"].get("cuda") or [torch.get_rng_state()]
    state["degradation"]["rng"]["cuda"] = [cuda[0], cuda[0].clone()]
    (ckpt.parent.parent / "run.json").write_text((ckpt.parent.parent / "run.json").read_text()
                                                  .replace('"status": "done"', '"status": "partial"'))
    torch.save(state, ckpt)
    again = subprocess.run(base, capture_output=True, text=True)
    resumed = "resuming at iteration" in (ckpt.parent.parent / "train.log").read_text()
    print(f"resume with {len(state['degradation']['rng']['cuda'])} CUDA RNG states, "
          f"{torch.cuda.device_count()} GPU(s) visible: exit {again.returncode}, resumed {resumed}")
    if again.returncode != 0 or not resumed:
        print(again.stdout[-2000:], again.stderr[-2000:])
        return 1
    return 0


def switches(device_name: str, work: str) -> int:
    from degradation.conf import compose
    from degradation.train.run import train

    bad = 0
    for precision in ("32-true", "tf32", "bf16-mixed"):
        info = train(compose(["model=resnet", "model.depth=8", "data=synthetic", "data.train_size=64",
                              "data.test_size=32", "schedule=smoke", "trainer.progress=none",
                              f"trainer.accelerator={device_name}", f"trainer.precision={precision}",
                              f"results_dir={Path(work) / 'switches'}"]))
        record, want = info["precision"], precision == "tf32"
        ok = info["status"] == "done" and record["tf32_conv"] == want and record["tf32_matmul"] == want
        bad += not ok
        print(f"{precision}: {info['device']}, {record} {'ok' if ok else 'WRONG'}")
    return 1 if bad else 0


def memory(device_name: str, depth: int) -> int:
    """ResNet-<depth> at batch 128, fp32, two SGD steps: the three numbers a '16 GB is enough' claim needs."""
    import torch.nn.functional as F

    from degradation.compute.precision import apply_precision
    from degradation.conf import compose
    from degradation.models import build_model

    apply_precision("32-true")
    device = torch.device(device_name)
    model = build_model(compose([f"model.depth={depth}"]).model).to(device=device, memory_format=torch.channels_last)
    x = torch.randn(128, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (128,), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    if device.type != "cuda":
        print(f"resnet-{depth} fp32 batch 128: trained 2 steps on {device} (no CUDA: nothing to measure)")
        return 0
    torch.cuda.synchronize()
    free, total = torch.cuda.mem_get_info()
    gib = 2**30
    print(f"resnet-{depth} fp32 batch 128: peak allocated {torch.cuda.max_memory_allocated() / gib:.2f} GiB, "
          f"peak reserved {torch.cuda.max_memory_reserved() / gib:.2f} GiB, device used now "
          f"{(total - free) / gib:.2f} GiB of {total / gib:.0f} GiB (context, cuDNN workspace, fragmentation)")
    return 0


if __name__ == "__main__":
    what, *args = sys.argv[1:]
    if what == "decode":
        sys.exit(decode(args[0]))
    if what == "resume":
        sys.exit(resume(args[0], args[1]))
    if what == "switches":
        sys.exit(switches(args[0], args[1]))
    if what == "memory":
        sys.exit(memory(args[0], int(args[1])))
    sys.exit(f"unknown stage {what!r}: decode, resume, switches or memory")
