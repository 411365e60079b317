"""A network from its config: the registry's entry builds it, after its depth rule is checked."""

from __future__ import annotations

from typing import Any

from torch import nn

from degradation.errors import UsageError
from degradation.models.depth import check_family
from degradation.models.registry import INPUT_SIZE, network, network_of


def build_model(model_cfg: Any) -> nn.Module:
    """A network from a model config (DictConfig or dict): arch (or a plug-in's _target_), family, depth, and
    the network's own keys (shortcut, width, block, num_classes for the built-in ones).

    Missing optional keys default to the paper's choices: family cifar, shortcut A (cifar) / B (imagenet),
    width 1.0, num_classes 10 (cifar) / 1000 (imagenet). Bad values raise a one-line UsageError.
    """
    if model_cfg.get("_target_") is None and model_cfg.get("arch") is None:
        raise UsageError("model config needs 'arch' (e.g. model.arch=resnet model.depth=20)")
    if model_cfg.get("depth") is None:
        raise UsageError("model config needs 'depth' (e.g. model.arch=resnet model.depth=20)")
    net = network_of(model_cfg)
    net.check_depth(model_cfg.get("family", "cifar"), model_cfg.get("depth"), model_cfg.get("block", "auto"))
    return net.build(model_cfg)


def check_depth(arch: object, family: object, depth: object, block: object = "auto") -> None:
    """Which depths a built-in (arch, family) has: a one-line UsageError otherwise (the registry's depth rule)."""
    network(arch).check_depth(family, depth, block)


def input_shape(family: str, batch: int = 1) -> tuple[int, int, int, int]:
    """The input a family's nets are built for: (batch, 3, 32, 32) or (batch, 3, 224, 224)."""
    size = INPUT_SIZE[check_family(family)]
    return (batch, 3, size, size)
