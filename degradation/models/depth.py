"""Which depths exist: 6n+2 for the CIFAR networks, Table 1's five for the ImageNet ones (the registry's rules)."""

from __future__ import annotations

from degradation.errors import UsageError

SHORTCUTS = ("A", "B", "C")
FAMILIES = ("cifar", "imagenet")
IMAGENET_DEPTHS = (18, 34, 50, 101, 152)
PAPER_CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)
BLOCKS = ("auto", "basic", "bottleneck")  # pre-activation units (models/preact.py)
BOTTLENECK_FROM = 164  # the 2016 paper's shallowest bottleneck net
MAX_CIFAR_DEPTH = 6002  # n = 1000, 5x the paper's deepest; beyond it a typo would build a network for hours


def cifar_blocks_per_stage(depth: object) -> int:
    """n for depth = 6n + 2 (n >= 1); a UsageError naming the nearest valid depths otherwise."""
    if isinstance(depth, bool) or not isinstance(depth, int):
        try:
            depth = int(str(depth).strip())
        except ValueError:
            raise UsageError(
                f"depth '{depth}' is not a whole number; CIFAR depths are 6n+2: 8, 14, 20, 26, ..."
            ) from None
    if depth < 8:
        raise UsageError(f"depth {depth} is too small; CIFAR depths are 6n+2 with n >= 1: 8, 14, 20, ...")
    if depth > MAX_CIFAR_DEPTH:
        raise UsageError(f"depth {depth} is too large; CIFAR depths here go up to {MAX_CIFAR_DEPTH} (paper: 1202)")
    if (depth - 2) % 6:
        below = depth - (depth - 2) % 6
        raise UsageError(f"depth {depth} is not of the form 6n+2; nearest: {below} or {below + 6}")
    return (depth - 2) // 6


def check_imagenet_depth(depth: object) -> int:
    if depth not in IMAGENET_DEPTHS:
        allowed = ", ".join(map(str, IMAGENET_DEPTHS))
        raise UsageError(f"ImageNet depth {depth} does not exist; choose one of {allowed}")
    return int(depth)


def check_shortcut(shortcut: object) -> str:
    if str(shortcut).upper() not in SHORTCUTS:
        raise UsageError(f"unknown shortcut option '{shortcut}'; choose from {', '.join(SHORTCUTS)}")
    return str(shortcut).upper()


def check_family(family: object) -> str:
    if family not in FAMILIES:
        raise UsageError(f"unknown model family '{family}'; choose from {', '.join(FAMILIES)}")
    return str(family)


def preact_layout(depth: object, block: object = "auto") -> tuple[bool, int]:
    """(bottleneck?, units per stage) for a depth; a one-line UsageError naming valid depths otherwise."""
    if block not in BLOCKS:
        raise UsageError(f"unknown model.block '{block}'; choose from {', '.join(BLOCKS)}")
    try:
        depth = int(str(depth).strip())
    except ValueError:
        raise UsageError(f"depth '{depth}' is not a whole number; pre-activation depths are 6n+2 or 9n+2") from None
    if not 8 <= depth <= MAX_CIFAR_DEPTH:
        raise UsageError(f"depth {depth} is out of range; pre-activation depths are 6n+2 or 9n+2, "
                         f"8..{MAX_CIFAR_DEPTH}")
    basic, bottle = (depth - 2) % 6 == 0, (depth - 2) % 9 == 0 and depth >= 11
    if block == "auto":
        block = "bottleneck" if bottle and (depth >= BOTTLENECK_FROM or not basic) else "basic"
    if block == "basic" and basic:
        return False, (depth - 2) // 6
    if block == "bottleneck" and bottle:
        return True, (depth - 2) // 9
    raise UsageError(f"depth {depth} fits no {block} pre-activation net; basic: 6n+2 (20, 56, 110), "
                     "bottleneck: 9n+2 (164, 1001)")
