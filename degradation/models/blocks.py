"""Building blocks shared by the CIFAR and ImageNet networks: shortcuts, blocks, stages, initialisation.

A plain block is the residual block with the addition removed, so the two nets of one depth differ in
nothing else. Layers are registered in execution order (conv1, bn1, conv2, bn2, ..., shortcut), which
`responses.response_layers` relies on to list the 3x3 responses in network order.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

# He et al. 2015 ("Delving deep", eq. 10) derive std = sqrt(2 / fan_in) for the forward pass; the original
# Caffe models used the MSRA filler, whose default is also fan_in. (torchvision and fb.resnet.torch use
# fan_out; with BN after every conv the choice hardly matters, but we follow the paper.)
INIT_MODE: Literal["fan_in", "fan_out"] = "fan_in"


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class PadShortcut(nn.Module):
    """Option A where the shape changes: subsample by `stride`, append zero channels. No parameters.

    The zeros go after the identity channels (public reproductions also pad on both sides; counts and
    MACs are the same either way). Sampling x[::2, ::2] picks the pixels a 3x3/2 conv with padding 1
    centres on, so the shortcut lines up with the convolution path.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"option A cannot shrink channels ({in_channels} -> {out_channels})")
        self.extra = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra))
        return x

    def extra_repr(self) -> str:
        return f"stride={self.stride}, zero_channels={self.extra}"


class Projection(nn.Sequential):
    """Options B and C: 1x1 conv (with the block's stride) + BN."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv = conv1x1(in_channels, out_channels, stride)
        self.bn = nn.BatchNorm2d(out_channels)


def make_shortcut(option: str, in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """A: identity (zero-pad where shape changes); B: projection only where shape changes; C: always."""
    changes = stride != 1 or in_channels != out_channels
    if option == "C" or (option == "B" and changes):
        return Projection(in_channels, out_channels, stride)
    if option == "A" and changes:
        return PadShortcut(in_channels, out_channels, stride)
    if option in ("A", "B"):
        return nn.Identity()
    raise ValueError(f"unknown shortcut option {option!r}")


class PlainBasicBlock(nn.Module):
    """Two 3x3 convs: conv-BN-ReLU-conv-BN-ReLU. Stride (downsampling) in the first conv."""

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.residual(x))


class ResidualBasicBlock(PlainBasicBlock):
    """The plain block plus a shortcut added before the last ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, shortcut: str = "A") -> None:
        super().__init__(in_channels, out_channels, stride)
        self.shortcut = make_shortcut(shortcut, in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.residual(x) + self.shortcut(x))

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        """The block with its residual branch removed (lesion studies): the shortcut, then the block's ReLU."""
        return self.relu(self.shortcut(x))


class PlainBottleneck(nn.Module):
    """1x1 (reduce) - 3x3 - 1x1 (expand x4), BN after each, ReLU after the first two and at the end.

    The stride sits in the first 1x1 conv, as in the paper's (Caffe) models; torchvision puts it in the
    3x3 ("v1.5"). Parameter counts are the same; our multiply-adds match the paper's Table 1 (3.8e9 for 50).
    """

    expansion = 4

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        mid = out_channels // self.expansion
        self.conv1 = conv1x1(in_channels, mid, stride)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = conv3x3(mid, mid)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = conv1x1(mid, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.residual(x))


class ResidualBottleneck(PlainBottleneck):
    """The plain bottleneck plus a shortcut added before the last ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, shortcut: str = "B") -> None:
        super().__init__(in_channels, out_channels, stride)
        self.shortcut = make_shortcut(shortcut, in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.residual(x) + self.shortcut(x))

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        """The block with its residual branch removed (lesion studies): the shortcut, then the block's ReLU."""
        return self.relu(self.shortcut(x))


def block_types(bottleneck: bool, residual: bool) -> type[nn.Module]:
    if bottleneck:
        return ResidualBottleneck if residual else PlainBottleneck
    return ResidualBasicBlock if residual else PlainBasicBlock


def make_stage(
    in_channels: int, out_channels: int, blocks: int, stride: int, *, bottleneck: bool, shortcut: str | None
) -> nn.Sequential:
    """`blocks` blocks; the first changes stride/channels, the rest keep them. shortcut=None: plain."""
    block = block_types(bottleneck, residual=shortcut is not None)
    extra = {} if shortcut is None else {"shortcut": shortcut}
    layers = [block(in_channels, out_channels, stride, **extra)]
    layers += [block(out_channels, out_channels, 1, **extra) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def init_weights(model: nn.Module) -> None:
    """He normal conv weights (INIT_MODE), BN scale 1 and shift 0; the fc keeps PyTorch's default.

    Skipped on the meta device (nothing to fill; meta's normal_ is slow enough to matter for depth 1202).
    """
    for module in model.modules():
        if getattr(module, "weight", None) is not None and module.weight.is_meta:
            continue
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode=INIT_MODE, nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
