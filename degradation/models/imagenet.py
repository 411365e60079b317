"""The paper's ImageNet networks (section 4.1, Table 1): plain or residual 18/34 (basic) and 50/101/152 (bottleneck).

7x7/2 conv 64 + BN + ReLU, 3x3/2 max pool, four stages at 64/128/256/512 filters (x4 output channels for
bottlenecks), stride 2 in the first block of stages 2-4, global average pooling, fc. Residual option B has
exactly torchvision's resnet18..152 parameters, and its tensors are registered in the same order.

Option A on bottleneck nets: the first block of stage 1 goes from 64 to 256 channels without a stride, so
its identity shortcut zero-pads 192 channels (and the stride-2 blocks subsample and pad as on CIFAR).
"""

from __future__ import annotations

import torch
from torch import nn

from degradation.errors import UsageError
from degradation.models.blocks import init_weights, make_stage
from degradation.models.checks import check_num_classes, check_width
from degradation.models.depth import check_imagenet_depth, check_shortcut

# depth -> (blocks per stage, bottleneck?)
LAYOUTS: dict[int, tuple[tuple[int, int, int, int], bool]] = {
    18: ((2, 2, 2, 2), False),
    34: ((3, 4, 6, 3), False),
    50: ((3, 4, 6, 3), True),
    101: ((3, 4, 23, 3), True),
    152: ((3, 8, 36, 3), True),
}
BASE_WIDTHS = (64, 128, 256, 512)


class ImageNetNet(nn.Module):
    """Stem with max pool, four stages, pooled head. `shortcut=None` builds the plain net."""

    stage1: nn.Sequential  # added by name in __init__
    stage2: nn.Sequential
    stage3: nn.Sequential
    stage4: nn.Sequential

    def __init__(self, depth: int, shortcut: str | None = "B", num_classes: int = 1000, width: float = 1.0) -> None:
        super().__init__()
        blocks, bottleneck = LAYOUTS[depth]
        expansion = 4 if bottleneck else 1
        widths = [max(1, int(round(base * width))) for base in BASE_WIDTHS]
        self.arch = "plain" if shortcut is None else "resnet"
        self.depth = depth
        self.shortcut = "none" if shortcut is None else shortcut
        self.stem = nn.Sequential()
        self.stem.add_module("conv", nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=False))
        self.stem.add_module("bn", nn.BatchNorm2d(widths[0]))
        self.stem.add_module("relu", nn.ReLU(inplace=True))
        self.stem.add_module("pool", nn.MaxPool2d(3, stride=2, padding=1))
        in_channels = widths[0]
        for index, (count, planes) in enumerate(zip(blocks, widths, strict=True)):
            out_channels = planes * expansion
            stride = 1 if index == 0 else 2
            stage = make_stage(in_channels, out_channels, count, stride, bottleneck=bottleneck, shortcut=shortcut)
            self.add_module(f"stage{index + 1}", stage)
            in_channels = out_channels
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, 224, 224] -> the last stage's map [B, 512 or 2048, 7, 7]."""
        x = self.stem(x)
        for stage in (self.stage1, self.stage2, self.stage3, self.stage4):
            x = stage(x)
        return x

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(features), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def imagenet_net(
    arch: str, depth: int, shortcut: str = "B", num_classes: int = 1000, width: float = 1.0
) -> ImageNetNet:
    """plain-/resnet-<depth> of Table 1 for 224x224 inputs; UsageError for a depth not in 18/34/50/101/152."""
    if arch not in ("plain", "resnet"):
        raise UsageError(f"arch {arch!r} is not built here; use build_model")
    residual = arch == "resnet"
    option = check_shortcut(shortcut)
    return ImageNetNet(
        check_imagenet_depth(depth), option if residual else None, check_num_classes(num_classes), check_width(width)
    )
