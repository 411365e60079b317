"""The residual blocks' identity path, checked directly: F(x) + x before the last ReLU, in every block kind.

Counting parameters or multiply-adds cannot see a dropped addition (the identity has neither); these compare each
block's output with relu(residual(x) + shortcut(x)) and with its plain twin of the same weights.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from degradation.models import build_model
from degradation.models.blocks import (
    PadShortcut,
    PlainBasicBlock,
    PlainBottleneck,
    Projection,
    ResidualBasicBlock,
    ResidualBottleneck,
)

CASES = [  # (residual block, plain twin, in, out, stride, shortcut option, the shortcut it must have)
    (ResidualBottleneck, PlainBottleneck, 16, 16, 1, "B", nn.Identity),
    (ResidualBottleneck, PlainBottleneck, 8, 16, 2, "B", Projection),
    (ResidualBottleneck, PlainBottleneck, 8, 16, 2, "A", PadShortcut),
    (ResidualBasicBlock, PlainBasicBlock, 4, 4, 1, "A", nn.Identity),
    (ResidualBasicBlock, PlainBasicBlock, 4, 8, 2, "A", PadShortcut),
    (ResidualBasicBlock, PlainBasicBlock, 4, 8, 2, "C", Projection),
]


def _randomise(block: nn.Module) -> None:
    """BN with non-trivial statistics and affine terms, so no branch is accidentally zero or the identity."""
    gen = torch.Generator().manual_seed(0)
    for m in block.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data = torch.rand(m.num_features, generator=gen) + 0.5
            m.bias.data = torch.randn(m.num_features, generator=gen)
            m.running_mean = torch.randn(m.num_features, generator=gen)
            m.running_var = torch.rand(m.num_features, generator=gen) + 0.5


@pytest.mark.parametrize(("block", "plain", "cin", "cout", "stride", "option", "kind"), CASES)
def test_a_residual_block_adds_its_shortcut_before_the_last_relu(block, plain, cin, cout, stride, option, kind) -> None:
    torch.manual_seed(0)
    res = block(cin, cout, stride, shortcut=option).eval()
    _randomise(res)
    assert isinstance(res.shortcut, kind)
    x = torch.randn(2, cin, 8, 8)
    with torch.no_grad():
        expected = torch.relu(res.residual(x) + res.shortcut(x))
        assert torch.allclose(res(x), expected, atol=1e-6)
        twin = plain(cin, cout, stride).eval()
        twin.load_state_dict({k: v for k, v in res.state_dict().items() if not k.startswith("shortcut.")})
        assert torch.allclose(twin(x), torch.relu(res.residual(x)), atol=1e-6)
        assert not torch.allclose(twin(x), res(x), atol=1e-3), "the shortcut must change the output"


@pytest.mark.parametrize(("block", "cin"), [(ResidualBottleneck, 16), (ResidualBasicBlock, 4)])
def test_a_block_with_a_silenced_residual_passes_its_input(block, cin) -> None:
    """The residual branch ends in BN; with its scale and shift at 0 the block is relu(x) exactly (the identity)."""
    res = block(cin, cin, 1, shortcut="A" if block is ResidualBasicBlock else "B").eval()
    last_bn = res.bn3 if block is ResidualBottleneck else res.bn2
    nn.init.zeros_(last_bn.weight)
    nn.init.zeros_(last_bn.bias)
    x = torch.randn(2, cin, 6, 6)
    with torch.no_grad():
        assert torch.equal(res(x), torch.relu(x))


def test_every_identity_block_of_an_imagenet_resnet_passes_its_input() -> None:
    """ResNet-50: each bottleneck after the first of its stage has an identity shortcut and adds it."""
    from omegaconf import OmegaConf

    net = build_model(OmegaConf.create({"arch": "resnet", "family": "imagenet", "depth": 50, "shortcut": "B",
                                        "width": 0.25, "num_classes": 10})).eval()
    identity_blocks = [m for m in net.modules() if isinstance(m, ResidualBottleneck) and isinstance(m.shortcut,
                                                                                                     nn.Identity)]
    assert len(identity_blocks) == 16 - 4  # 3 + 4 + 6 + 3 blocks, the first of each stage projects
    for blk in identity_blocks:
        nn.init.zeros_(blk.bn3.weight)
        nn.init.zeros_(blk.bn3.bias)
        x = torch.rand(1, blk.conv1.in_channels, 4, 4)
        with torch.no_grad():
            assert torch.equal(blk(x), x)  # x >= 0: relu(0 + x) = x


@pytest.mark.parametrize(("block", "cin", "cout", "stride", "option"), [
    (ResidualBasicBlock, 4, 8, 2, "A"), (ResidualBasicBlock, 4, 4, 1, "A"), (ResidualBottleneck, 8, 16, 2, "B")])
def test_a_lesioned_block_is_its_shortcut_then_the_relu(block, cin, cout, stride, option) -> None:
    """skip(x), what the lesion study runs in place of a block: relu(shortcut(x)), the residual branch gone."""
    torch.manual_seed(0)
    res = block(cin, cout, stride, shortcut=option).eval()
    _randomise(res)
    x = torch.randn(2, cin, 8, 8)
    with torch.no_grad():
        assert torch.equal(res.skip(x), torch.relu(res.shortcut(x)))
        assert res.skip(x).shape == res(x).shape


def test_the_blocks_defaults_keep_the_map_and_bottlenecks_project_with_option_b() -> None:
    """Called without stride or shortcut: stride 1 (same map size); a bottleneck's shortcut is option B."""
    x = torch.randn(1, 16, 6, 6)
    with torch.no_grad():
        assert PlainBottleneck(16, 16)(x).shape == (1, 16, 6, 6) and PlainBasicBlock(16, 16)(x).shape == x.shape
        assert isinstance(ResidualBottleneck(16, 64).shortcut, Projection)  # B: a projection where the shape changes
        assert isinstance(ResidualBottleneck(64, 64).shortcut, nn.Identity)
        assert ResidualBottleneck(16, 64)(x).shape == (1, 64, 6, 6)
        assert isinstance(ResidualBasicBlock(4, 8, 2).shortcut, PadShortcut)  # a basic block's default: option A
        assert ResidualBasicBlock(16, 16)(x).shape == x.shape


def test_a_bottleneck_strides_in_its_first_1x1_conv_as_the_papers_models() -> None:
    """The paper's (Caffe) bottleneck subsamples in conv1; torchvision's "v1.5" in the 3x3. Same parameters, another
    function: this is the paper's."""
    for block in (PlainBottleneck(64, 128, 2), ResidualBottleneck(64, 128, 2)):
        assert (block.conv1.stride, block.conv2.stride, block.conv3.stride) == ((2, 2), (1, 1), (1, 1))
        assert block(torch.randn(1, 64, 8, 8)).shape == (1, 128, 4, 4)


def test_a_cifar_net_built_directly_is_the_papers_option_a_ten_class_net() -> None:
    from degradation.models.cifarnet import CifarNet, scaled_widths

    net = CifarNet(1)
    assert (net.arch, net.depth, net.shortcut) == ("resnet", 8, "A") and net.fc.out_features == 10
    assert net.fc.in_features == 64  # full width: 16/32/64 filters
    assert sum(isinstance(m, PadShortcut) for m in net.modules()) == 2  # the two stage transitions
    assert scaled_widths(0.05) == (1, 2, 3)  # 16/32/64 x 0.05 rounded, at least one channel
