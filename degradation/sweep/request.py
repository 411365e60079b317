"""A sweep request: the command line's axes and flags, each checked with a one-line error, creating nothing."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from degradation.conf import HYDRA_KEYS, check_choice
from degradation.errors import UsageError
from degradation.text import checked_list, int_list
from degradation.train.argv import SWEEP_FLAGS

# Sweep axes and flags: set with the flag, not as an extra override (the grid would silently collapse).
AXIS_KEYS = SWEEP_FLAGS


def _choice(group: str, value: str, flag: str) -> str:
    return check_choice(group, value, flag)


# What a family's sweep runs when --depths, --data or --preset is not given.
FAMILY_DEFAULTS = {
    "cifar": {"depths": "20,32,44,56,110", "data": "cifar10", "preset": "paper"},
    "imagenet": {"depths": "18,34", "data": "imagenet", "preset": "imagenet"},
}


def _depths(values: Sequence[str] | str, family: str, archs: Sequence[str]) -> list[int]:
    """Every depth must exist for every requested arch (models.check_depth knows each network's depths)."""
    # deferred: degradation.models loads torch; checking flags does not need it
    from degradation.models import NETWORKS, check_depth

    depths = int_list(values, "--depths", minimum=-(10**9))
    for arch in (a for a in archs if a in NETWORKS):  # a plug-in's factory says which depths it builds
        for depth in depths:
            try:
                check_depth(arch, family, depth)
            except UsageError as exc:
                raise UsageError(f"--depths: {exc}") from None
    return depths


def _overrides(values: Sequence[str]) -> list[str]:
    out = []
    for item in values:
        if item.startswith("-"):
            raise UsageError(f"unknown option {item}; extra Hydra overrides go after `--` as key=value")
        if "=" not in item:
            raise UsageError(f"extra override {item!r} is not key=value (e.g. schedule.lr=0.05)")
        key, _, value = item.partition("=")
        key = key.lstrip("+~")
        if HYDRA_KEYS.get(key) == "results_dir":
            raise UsageError(f"{key} is not used here (runs go to <results>/runs/<run id>); use --results {value}")
        if key in AXIS_KEYS:
            raise UsageError(f"set {key} with {AXIS_KEYS[key]}, not as an extra override")
        out.append(item)
    return out


def _writable_results(path: Path) -> Path:
    probe = path.expanduser().absolute()
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"--results {path}: {probe} is not a folder; pass another results folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"--results {path}: {probe} is not writable; pass another results folder")
    return path


@dataclass
class SweepRequest:
    """A checked sweep request: the grid's axes, where runs go, and how they are launched."""

    depths: list[int]
    archs: list[str]
    seeds: list[int]
    shortcuts: list[str]
    data: str = "cifar10"
    preset: str = "paper"
    family: str = "cifar"
    jobs: int | None = None  # None: launcher.jobs (auto: one run per core on a CPU, GPUs x runs_per_gpu on CUDA)
    launcher: str = "local"
    dry_run: bool = False
    results_dir: Path = Path("results")
    wide: bool = False  # tables show full run ids (else the identifying fields and a short id)
    overrides: list[str] = field(default_factory=list)

    @classmethod
    def from_cli(
        cls,
        depths: Sequence[str] | str,
        archs: Sequence[str] | str,
        seeds: Sequence[str] | str,
        shortcuts: Sequence[str] | str,
        data: str,
        preset: str,
        jobs: int | None,
        launcher: str,
        dry_run: bool,
        results_dir: str | os.PathLike,
        overrides: Sequence[str],
        family: str = "cifar",
        wide: bool = False,
    ) -> SweepRequest:
        """Check every input (one-line UsageError each); creates nothing. Empty depths/data/preset: the family's."""
        # deferred: degradation.models loads torch; checking flags does not need it
        from degradation.models.depth import check_family, check_shortcut

        extra = _overrides(list(overrides))
        try:
            family = check_family(family)
        except UsageError as exc:
            raise UsageError(f"--family: {exc}") from None
        defaults = FAMILY_DEFAULTS[family]
        depths = depths or defaults["depths"]
        data, preset = data or defaults["data"], preset or defaults["preset"]
        arch_list = checked_list(archs, "--archs", lambda a: check_choice("model", a, "--archs"))
        request = cls(
            family=family,
            depths=_depths(depths, family, arch_list),
            archs=arch_list,
            seeds=int_list(seeds, "--seeds", minimum=0),
            shortcuts=checked_list(shortcuts, "--shortcut", check_shortcut),
            data=_choice("data", str(data), "--data"),
            preset=_choice("schedule", str(preset), "--preset"),
            jobs=None if jobs is None else int(jobs),
            launcher=_choice("launcher", str(launcher), "--launcher"),
            dry_run=bool(dry_run),
            results_dir=_writable_results(Path(results_dir)),
            overrides=extra,
            wide=bool(wide),
        )
        if request.jobs is not None and request.jobs < 1:
            raise UsageError(f"--jobs {jobs} must be >= 1 (runs at a time)")
        return request
