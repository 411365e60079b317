"""Pre-activation residual networks for CIFAR (He et al. 2016, "Identity Mappings in Deep Residual Networks").

Each unit is BN-ReLU-conv (twice, or three times in a bottleneck) added to a clean identity path: nothing
follows the addition, so a signal reaches any later unit unchanged. The stem is a bare 3x3 conv (the first
unit's BN-ReLU follows it) and a final BN-ReLU sits before the pooling, as in that paper.

Depths, as that paper defines them: basic units (two 3x3 convs) give 6n+2 layers, e.g. 110 (1.7M parameters);
bottleneck units (1x1 - 3x3 - 1x1, 16/32/64 inner widths, four times that at the output) give 9n+2, e.g. 164
(1.7M) and 1001 (10.2M). `block=auto` picks the bottleneck from depth 164 on where 9n+2 allows (the paper's
choice; 110 and 1202 stay basic) and the basic unit otherwise.

Shortcuts: A (identity, zero-padded channels where the shape changes), B (a 1x1 conv, no BN, where it changes:
the authors' released code and this config's default) or C (a 1x1 conv on every unit). A projection reads the
pre-activated input (the authors' "both_preact"), an identity reads the raw input, so the identity path stays
clean.
"""

from __future__ import annotations

import torch
from torch import nn

from degradation.models.blocks import PadShortcut, conv1x1, conv3x3, init_weights
from degradation.models.checks import check_num_classes, check_width
from degradation.models.cifarnet import scaled_widths
from degradation.models.depth import check_shortcut, preact_layout


def _shortcut(option: str, cin: int, cout: int, stride: int) -> nn.Module:
    changes = stride != 1 or cin != cout
    if option == "C" or (option == "B" and changes):
        return conv1x1(cin, cout, stride)
    if option == "A" and changes:
        return PadShortcut(cin, cout, stride)
    return nn.Identity()


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3, BN-ReLU-conv3x3, plus the shortcut; nothing after the addition."""

    expansion = 1

    def __init__(self, cin: int, cout: int, stride: int = 1, shortcut: str = "B") -> None:
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), conv3x3(cin, cout, stride)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), conv3x3(cout, cout)
        self.relu = nn.ReLU(inplace=False)  # the raw input is still needed by the identity shortcut
        self.shortcut = _shortcut(shortcut, cin, cout, stride)
        self.project = isinstance(self.shortcut, nn.Conv2d)

    def branch(self, pre: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.relu(self.bn2(self.conv1(pre))))

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        """The unit with its residual branch removed (lesion studies): the shortcut alone."""
        return self.shortcut(self.relu(self.bn1(x)) if self.project else x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu(self.bn1(x))
        return self.branch(pre) + self.shortcut(pre if self.project else x)


class PreActBottleneck(PreActBlock):
    """BN-ReLU-conv1x1 (reduce), BN-ReLU-conv3x3 (stride), BN-ReLU-conv1x1 (x4), plus the shortcut."""

    expansion = 4

    def __init__(self, cin: int, cout: int, stride: int = 1, shortcut: str = "B") -> None:
        nn.Module.__init__(self)
        mid = cout // self.expansion
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), conv1x1(cin, mid)
        self.bn2, self.conv2 = nn.BatchNorm2d(mid), conv3x3(mid, mid, stride)
        self.bn3, self.conv3 = nn.BatchNorm2d(mid), conv1x1(mid, cout)
        self.relu = nn.ReLU(inplace=False)
        self.shortcut = _shortcut(shortcut, cin, cout, stride)
        self.project = isinstance(self.shortcut, nn.Conv2d)

    def branch(self, pre: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.relu(self.bn2(self.conv1(pre))))
        return self.conv3(self.relu(self.bn3(out)))


class PreActNet(nn.Module):
    """Stem conv, three stages of pre-activation units, final BN-ReLU, pooled fc."""

    stage1: nn.Sequential  # added by name in __init__
    stage2: nn.Sequential
    stage3: nn.Sequential

    def __init__(self, n: int, bottleneck: bool, shortcut: str = "B", num_classes: int = 10,
                 width: float = 1.0) -> None:
        super().__init__()
        unit = PreActBottleneck if bottleneck else PreActBlock
        inner = scaled_widths(width)
        outs = [w * unit.expansion for w in inner]
        self.arch, self.shortcut, self.block = "preact", shortcut, "bottleneck" if bottleneck else "basic"
        self.depth = (9 if bottleneck else 6) * n + 2
        self.stem = nn.Sequential()
        self.stem.add_module("conv", conv3x3(3, inner[0]))
        cin = inner[0]
        for i, (cout, stride) in enumerate(zip(outs, (1, 2, 2), strict=True), start=1):
            units = [unit(cin, cout, stride, shortcut)] + [unit(cout, cout, 1, shortcut) for _ in range(n - 1)]
            self.add_module(f"stage{i}", nn.Sequential(*units))
            cin = cout
        self.bn = nn.BatchNorm2d(cin)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage3(self.stage2(self.stage1(self.stem(x))))
        return self.relu(self.bn(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(features), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def preact_net(depth: int, shortcut: str = "B", num_classes: int = 10, width: float = 1.0,
               block: str = "auto") -> PreActNet:
    """PreAct-ResNet-<depth> for 32x32 inputs; UsageError for a depth that fits neither unit."""
    bottleneck, n = preact_layout(depth, block)
    return PreActNet(n, bottleneck, check_shortcut(shortcut), check_num_classes(num_classes), check_width(width))
