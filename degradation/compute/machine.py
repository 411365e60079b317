"""Facts about the machine a run or a measurement happens on: cores, device kind, GPU count and device name.

One home for them because they are matched against each other: a sweep finds the runs-per-GPU measurement
that `degradation bench --share` stored by the device name written here, so two spellings would silently
stop it finding any.
"""

from __future__ import annotations

import os
from typing import Any

CUDA_ACCELERATORS = ("auto", "cuda", "gpu")


def cpu_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def device_kind(accelerator: str) -> str:
    """Where runs will compute: cuda, mps or cpu (trainer.accelerator=auto picks the best present)."""
    import torch  # deferred: `degradation --help` and the plan's checks should not wait for torch

    if accelerator in CUDA_ACCELERATORS and torch.cuda.is_available():
        return "cuda"
    if accelerator in ("auto", "mps") and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def gpu_count(accelerator: str) -> int:
    """CUDA devices a run with this trainer.accelerator may use (0 for cpu/mps)."""
    if accelerator not in CUDA_ACCELERATORS:
        return 0
    import torch  # deferred, as above

    return torch.cuda.device_count()


def device_name(device: Any) -> str:
    """A device as measurements name it: the GPU's model (e.g. "NVIDIA H100 80GB HBM3"), else cpu or mps."""
    import torch  # deferred, as above

    device = torch.device(device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def cuda_device_name() -> str | None:
    """The name of this machine's first GPU (what the sweep looks measurements up by); None without CUDA."""
    try:
        import torch  # deferred, as above

        return device_name("cuda:0") if torch.cuda.is_available() else None
    except Exception:  # a broken CUDA install must not stop a plan
        return None


NVIDIA_DRIVER_FILE = "/proc/driver/nvidia/version"  # present wherever the NVIDIA kernel driver is loaded (Linux)


def unused_gpu_warning(accelerator: str, driver_file: str = NVIDIA_DRIVER_FILE) -> str | None:
    """A warning line when trainer.accelerator=auto falls back to the CPU on a machine that has an NVIDIA GPU:
    typically a driver older than the CUDA this torch wheel was built for. Without it the run trains on the CPU,
    at a hundredth of the speed, and says so only in its device column."""
    if accelerator != "auto" or device_kind(accelerator) != "cpu":
        return None
    try:
        with open(driver_file) as handle:
            driver = handle.readline().strip()
    except OSError:
        return None
    import torch  # deferred, as above

    return (f"warning: an NVIDIA driver is loaded ({driver[:80]}) but torch (built for CUDA {torch.version.cuda}) "
            "cannot use the GPU, so this run trains on the CPU; update the driver or install a torch wheel for "
            "an older CUDA, or set trainer.accelerator=cpu to mean it")
