"""Pre-activation nets (He et al. 2016): the paper's depths, exact parameter counts, the unit order, configs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from degradation.conf import compose, validate
from degradation.errors import UsageError
from degradation.models import build_model, count_params, preact_net
from degradation.models.preact import PreActBlock, PreActBottleneck, preact_layout

# Exact counts of our build; the paper rounds them to 1.7M (110, 164) and 10.2M (1001).
PREACT_PARAMS = {110: 1_730_522, 164: 1_703_258, 1001: 10_327_706}
PAPER_MILLIONS = {110: 1.7, 164: 1.7, 1001: 10.2}


@pytest.mark.parametrize("depth", [110, 164, 1001])
def test_parameter_counts_match_the_paper(depth: int) -> None:
    with torch.device("meta"):
        model = preact_net(depth)
    params = count_params(model)
    assert params == PREACT_PARAMS[depth]
    assert abs(params / 1e6 - PAPER_MILLIONS[depth]) < 0.15  # the paper states them to 0.1M
    assert model.block == ("basic" if depth == 110 else "bottleneck")


def test_depth_rule_basic_6n2_bottleneck_9n2() -> None:
    assert preact_layout(110) == (False, 18)
    assert preact_layout(164) == (True, 18)
    assert preact_layout(1001) == (True, 111)
    assert preact_layout(1202) == (False, 200)
    assert preact_layout(164, "basic") == (False, 27)
    for bad, block in ((1001, "basic"), (21, "auto"), (5, "auto"), (56, "wide")):
        with pytest.raises(UsageError):
            preact_layout(bad, block)


def test_units_are_bn_relu_conv_with_a_clean_identity_path() -> None:
    model = preact_net(20)
    units = [m for m in model.modules() if isinstance(m, PreActBlock)]
    assert len(units) == 9 and not any(isinstance(m, PreActBottleneck) for m in units)
    first = list(units[1].named_children())
    assert [n for n, _ in first][:4] == ["bn1", "conv1", "bn2", "conv2"]
    assert isinstance(units[1].shortcut, nn.Identity)  # same-shape units: nothing on the shortcut
    assert sum(isinstance(u.shortcut, nn.Conv2d) for u in units) == 2  # B: the two stage changes
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.stem.modules())
    assert isinstance(model.bn, nn.BatchNorm2d) and model.bn.num_features == 64
    # The identity path is clean: with every branch's last conv zeroed, a unit passes its input unchanged.
    unit = units[1].eval()
    nn.init.zeros_(unit.conv2.weight)
    x = torch.randn(2, 16, 32, 32)
    assert torch.equal(unit(x), x)


def test_bottleneck_widths_and_forward() -> None:
    model = preact_net(164)
    assert model.fc.in_features == 256 and model.stage1[0].conv3.out_channels == 64
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_model_preact_config_builds_and_bad_depth_is_one_line() -> None:
    cfg = compose(["model=preact", "model.depth=20", "data=synthetic"])
    validate(cfg)
    net = build_model(cfg.model)
    assert type(net).__name__ == "PreActNet" and net.depth == 20
    with pytest.raises(UsageError, match="6n\\+2"):
        validate(compose(["model=preact", "model.depth=21", "data=synthetic"]))
    with pytest.raises(UsageError, match="CIFAR"):
        validate(compose(["model=preact", "model.family=imagenet", "model.depth=50", "data=synthetic"]))
