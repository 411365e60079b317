"""ReZero (Bachlechner et al. 2020, "ReZero is All You Need"): a residual net without normalisation whose
every residual branch is multiplied by a learned scalar that starts at 0, so that at initialisation each block
is the identity and a net of any depth starts as a shallow one.

Built on the paper's CIFAR layout so that it compares with plain/ResNet-(6n+2) layer for layer: a 3x3 conv of
16 filters, three stages of n two-conv blocks at 16/32/64 filters (stride 2 at the first block of stages 2 and
3, where the shortcut is the paper's option A: subsample and zero-pad the channels), global average pooling
and a linear layer. No BN anywhere: the convolutions carry biases, and the scalar alone keeps the signal in
check. This file lives outside the package; `degradation --config-dir examples/rezero` finds it and its YAML.

What the tool reads from it besides the logits:
- `skip(x)` on each block: the shortcut alone, for the lesion study (`degradation lesion`);
- `response_layers`: the modules whose outputs are its 3x3 layers' responses, for Figure 7 (there is no BN
  after a 3x3 conv for the tool to find).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Scale(nn.Module):
    """The learned scalar of one residual branch, zero at initialisation."""

    def __init__(self) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.alpha * x


class ReZeroBlock(nn.Module):
    """x + alpha * conv(relu(conv(x))); option-A shortcut where the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.scale = Scale()
        self.stride, self.pad = stride, cout - cin

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.pad)) if self.pad else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.scale(self.conv2(F.relu(self.conv1(x))))


class ReZeroNet(nn.Module):
    def __init__(self, n: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 1, 1)
        stages, cin = [], 16
        for i, cout in enumerate((16, 32, 64)):
            blocks = [ReZeroBlock(cin if j == 0 else cout, cout, 2 if (i and j == 0) else 1) for j in range(n)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stage1, self.stage2, self.stage3 = stages
        self.fc = nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(module.bias)
        # Figure 7: the stem conv, then each block's first conv and its scaled second conv (what is added)
        self.response_layers = ["conv"] + [f"{s}.{j}.{part}" for s in ("stage1", "stage2", "stage3")
                                           for j in range(n) for part in ("conv1", "scale")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv(x))
        x = self.stage3(self.stage2(self.stage1(x)))
        return self.fc(x.mean((2, 3)))


def rezero_net(depth: int, num_classes: int = 10, family: str = "cifar") -> ReZeroNet:
    """ReZero-<depth> for 32x32 inputs; depth 6n+2 as the paper's CIFAR nets."""
    if family != "cifar":
        raise ValueError("ReZero here is a CIFAR network (32x32 inputs); use model.family=cifar")
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth {depth} is not 6n+2 (8, 14, 20, 26, ...)")
    return ReZeroNet((depth - 2) // 6, num_classes)
