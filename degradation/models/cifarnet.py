"""The paper's CIFAR networks (section 4.2): depth 6n+2, plain or residual with shortcut option A, B or C.

3x3 conv 16 + BN + ReLU, then three stages of n two-conv blocks at 16/32/64 filters on 32/16/8-pixel
maps (stride 2 in the first conv of stages 2 and 3), global average pooling, fc. 6n+2 weighted layers.
"""

from __future__ import annotations

import torch
from torch import nn

from degradation.errors import UsageError
from degradation.models.blocks import conv3x3, init_weights, make_stage
from degradation.models.checks import check_num_classes, check_width
from degradation.models.depth import check_shortcut, cifar_blocks_per_stage

BASE_WIDTHS = (16, 32, 64)


def scaled_widths(width: float) -> tuple[int, int, int]:
    """16/32/64 times the width multiplier, rounded to whole channels (at least 1)."""
    return tuple(max(1, int(round(base * width))) for base in BASE_WIDTHS)  # type: ignore[return-value]


class CifarNet(nn.Module):
    """Stem, three stages, pooled head. `shortcut=None` builds the plain net."""

    def __init__(self, n: int, shortcut: str | None = "A", num_classes: int = 10, width: float = 1.0) -> None:
        super().__init__()
        widths = scaled_widths(width)
        self.arch = "plain" if shortcut is None else "resnet"
        self.depth = 6 * n + 2
        self.shortcut = "none" if shortcut is None else shortcut
        self.stem = nn.Sequential()
        self.stem.add_module("conv", conv3x3(3, widths[0]))
        self.stem.add_module("bn", nn.BatchNorm2d(widths[0]))
        self.stem.add_module("relu", nn.ReLU(inplace=True))
        self.stage1 = make_stage(widths[0], widths[0], n, 1, bottleneck=False, shortcut=shortcut)
        self.stage2 = make_stage(widths[0], widths[1], n, 2, bottleneck=False, shortcut=shortcut)
        self.stage3 = make_stage(widths[1], widths[2], n, 2, bottleneck=False, shortcut=shortcut)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[2], num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, 32, 32] -> the last stage's map [B, 64*width, 8, 8]."""
        return self.stage3(self.stage2(self.stage1(self.stem(x))))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(features), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def cifar_net(arch: str, depth: int, shortcut: str = "A", num_classes: int = 10, width: float = 1.0) -> CifarNet:
    """plain-/resnet-<depth> for 32x32 inputs; raises UsageError for a depth that is not 6n+2 etc."""
    n = cifar_blocks_per_stage(depth)
    if arch not in ("plain", "resnet"):
        raise UsageError(f"arch {arch!r} is not built here; use build_model")
    residual = arch == "resnet"
    option = check_shortcut(shortcut)
    return CifarNet(n, option if residual else None, check_num_classes(num_classes), check_width(width))
