"""One entry per network: everything the rest of the tool asks about a network is read from here.

The paper's nets (plain, resnet) and He et al. 2016's pre-activation net are built in. A user's own network
joins from outside the package through its model YAML (`_target_: pkg.module.factory`, `name`, optional
`label` and `family`): `network_of(model_cfg)` makes its entry from the config, so a sweep, the figures and
the tables treat it like a built-in one. Its factory is called as `factory(depth=..., num_classes=...,
family=...)` (family only where the factory takes it) plus any other keys of its YAML, and returns an
`nn.Module` giving `[N, num_classes]` logits.

Torch-free on purpose (builders import their modules when called): config checks, sweep plans, labels and
figures ask the registry without loading torch.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from degradation.errors import UsageError, did_you_mean, first_line
from degradation.models.depth import (
    FAMILIES,
    check_family,
    check_imagenet_depth,
    check_shortcut,
    cifar_blocks_per_stage,
    preact_layout,
)

if TYPE_CHECKING:
    from torch import nn

INPUT_SIZE = {"cifar": 32, "imagenet": 224}
# Keys of a plug-in's model YAML that describe it to this tool; every other key goes to its factory.
PLUGIN_KEYS = ("_target_", "name", "arch", "label", "family", "depth", "num_classes", "source_digest", "source_file")



@dataclass(frozen=True)
class Network:
    """What the tool knows of one network. `default_shortcut` is per family; "none" means the network has no
    shortcut option (plain nets, and plug-ins, which carry their own design)."""

    name: str
    label: str  # legend prefix: plain-20, ResNet-56, PreAct-110
    families: tuple[str, ...]
    default_shortcut: Mapping[str, str]
    check: Callable[[str, object, object], None]  # (family, depth, block): a one-line UsageError if absent
    build: Callable[[Any], nn.Module]  # from a model config; imports torch when called
    sweep_shortcuts: bool = False  # the sweep's --shortcuts apply (ResNets); else its default shortcut only
    residual: bool = True
    paper_test_error: Mapping[int, float] = field(default_factory=dict)  # CIFAR-10 test error %, if reported
    paper_mean: Mapping[int, tuple[float, float, int]] = field(default_factory=dict)  # depth: (mean, std, runs)
    paper_source: str = ""  # where paper_test_error comes from, when not He et al. 2015
    source: str = ""  # plug-ins: "<factory import path> <source digest>"

    @property
    def has_shortcut(self) -> bool:
        return any(s != "none" for s in self.default_shortcut.values())

    def shortcut_for(self, family: str) -> str:
        return self.default_shortcut.get(family, "none")

    def check_depth(self, family: object, depth: object, block: object = "auto") -> None:
        family = check_family(family)
        if family not in self.families:
            kinds = "/".join({"cifar": "CIFAR", "imagenet": "ImageNet"}.get(f, f) for f in self.families)
            raise UsageError(f"{self.name} is a {kinds} network; use model.family={self.families[0]}")
        self.check(family, depth, block)

    def legend(self, depth: int, shortcut: str | None) -> str:
        """plain-20, ResNet-56, ResNet-56 (B): a shortcut other than the CIFAR default is named."""
        name = f"{self.label}-{int(depth)}"
        plain = shortcut in (None, "none", self.default_shortcut.get(self.families[0], "none"))
        return name if plain else f"{name} ({shortcut})"


def _cifar_or_imagenet(arch: str) -> Callable[[Any], nn.Module]:
    def build(cfg: Any) -> nn.Module:
        # deferred: the networks load torch; the registry's facts do not need it
        from degradation.models.cifarnet import cifar_net
        from degradation.models.imagenet import imagenet_net

        family = cfg.get("family", "cifar")
        cifar = family == "cifar"
        kwargs = {"shortcut": cfg.get("shortcut", "A" if cifar else "B"),
                  "num_classes": cfg.get("num_classes", 10 if cifar else 1000), "width": cfg.get("width", 1.0)}
        return (cifar_net if cifar else imagenet_net)(arch, cfg.get("depth"), **kwargs)

    return build


def _check_cifar_or_imagenet(family: str, depth: object, block: object) -> None:
    if family == "cifar":
        cifar_blocks_per_stage(depth)
    else:
        check_imagenet_depth(depth)


def _check_preact(family: str, depth: object, block: object) -> None:
    preact_layout(depth, block)


def _build_preact(cfg: Any) -> nn.Module:
    from degradation.models.preact import preact_net  # deferred: the network loads torch

    return preact_net(cfg.get("depth"), block=cfg.get("block", "auto"), shortcut=cfg.get("shortcut", "B"),
                      num_classes=cfg.get("num_classes", 10), width=cfg.get("width", 1.0))


# He et al. 2015, Table 6 (CIFAR-10, augmentation; ResNets with option-A shortcuts), test error %.
PAPER_RESNET = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43, 1202: 7.93}
PAPER_MEAN = {110: (6.61, 0.16, 5)}  # 6.43 is the best of 5 runs; mean ± std of those runs
# He et al. 2016 ("Identity Mappings"), Tables 3 and 4: pre-activation nets on CIFAR-10, same 64k schedule.
PAPER_PREACT = {110: 6.37, 164: 5.46, 1001: 4.92}

NETWORKS: dict[str, Network] = {
    net.name: net
    for net in (
        Network("plain", "plain", FAMILIES, {"cifar": "none", "imagenet": "none"}, _check_cifar_or_imagenet,
                _cifar_or_imagenet("plain"), residual=False),
        Network("resnet", "ResNet", FAMILIES, {"cifar": "A", "imagenet": "B"}, _check_cifar_or_imagenet,
                _cifar_or_imagenet("resnet"), sweep_shortcuts=True, paper_test_error=PAPER_RESNET,
                paper_mean=PAPER_MEAN),
        Network("preact", "PreAct", ("cifar",), {"cifar": "B"}, _check_preact, _build_preact,
                paper_test_error=PAPER_PREACT, paper_source="He et al. 2016"),
    )
}
ARCHS = tuple(NETWORKS)


def network(name: object) -> Network:
    """A built-in network by name; a UsageError naming the choices (and the closest) otherwise."""
    if name in NETWORKS:
        return NETWORKS[str(name)]
    raise UsageError(f"unknown arch '{name}'; choose from {', '.join(ARCHS)} (or your own network: "
                     f"model/<name>.yaml in a --config-dir folder){did_you_mean(str(name), ARCHS)}")


def network_of(model_cfg: Any) -> Network:
    """The entry for a model config: a built-in network by its arch, or a plug-in by its `_target_`."""
    target = model_cfg.get("_target_")
    if target is None:
        return network(model_cfg.get("arch"))
    return plugin_network(str(target), str(model_cfg.get("name") or model_cfg.get("arch")),
                          str(model_cfg.get("label") or model_cfg.get("name") or model_cfg.get("arch")),
                          str(model_cfg.get("family", "cifar")), model_cfg.get("source_file"))


def import_factory(target: str, source_file: str | None = None) -> Callable[..., Any]:
    """The callable at a `_target_` import path; a one-line UsageError when it does not import. A run's config
    records the module's file, so a trained run's network loads later without the --config-dir it was made with."""
    module_name, _, attr = target.rpartition(".")
    if not module_name:
        raise UsageError(f"model._target_={target!r} is not an import path; write package.module.factory")
    if source_file and importlib.util.find_spec(module_name.partition(".")[0]) is None:
        root = Path(source_file).parent
        for _ in range(module_name.count(".")):
            root = root.parent
        if root.is_dir() and str(root) not in sys.path:
            sys.path.append(str(root))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise UsageError(f"model._target_={target!r} does not import: {first_line(exc)} (is its folder on "
                         "PYTHONPATH or the --config-dir folder?)") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UsageError(f"model._target_={target!r}: {module_name} has no callable {attr!r}")
    return factory


def source_file(target: str) -> str:
    """The factory module's source file (recorded beside its digest, so the run's network loads again later)."""
    module_name = target.rpartition(".")[0]
    try:
        spec = importlib.util.find_spec(module_name)
    except Exception as exc:
        raise UsageError(f"model._target_={target!r} does not import: {first_line(exc)}") from None
    if spec is None or not spec.origin or not spec.has_location:
        raise UsageError(f"model._target_={target!r} does not import: no module {module_name!r} (is its folder on "
                         "PYTHONPATH or the --config-dir folder?)")
    return str(Path(spec.origin).absolute())


def source_digest(target: str) -> str:
    """A hash of the factory module's source file, so an edited network is a new variant (a new run id)."""
    with open(source_file(target), "rb") as source:
        return hashlib.sha256(source.read()).hexdigest()[:12]


def plugin_network(target: str, name: str, label: str, family: str, source: str | None = None) -> Network:
    """A user's network as an entry: its depths are whatever its factory builds without raising."""
    check_family(family)

    def build(cfg: Any) -> nn.Module:
        from torch import nn  # deferred: only building needs torch

        factory = import_factory(target, source)
        kwargs = {key: cfg.get(key) for key in _factory_keys(cfg)}
        kwargs.update(depth=cfg.get("depth"), num_classes=cfg.get("num_classes", 10))
        if _accepts(factory, "family"):
            kwargs["family"] = family
        try:
            model = factory(**kwargs)
        except UsageError:
            raise
        except Exception as exc:
            raise UsageError(f"{name}: {target}(depth={kwargs['depth']}) failed: {first_line(exc)}") from None
        if not isinstance(model, nn.Module):
            raise UsageError(f"{name}: {target} returned {type(model).__name__}, not a torch nn.Module")
        return model

    def check(family_: str, depth: object, block: object) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise UsageError(f"{name}: depth {depth!r} is not a whole number >= 1")

    return Network(name, label, (family,), {family: "none"}, check, build, source=target)


def _factory_keys(cfg: Any) -> list[str]:
    keys = cfg.keys() if hasattr(cfg, "keys") else vars(cfg).keys()
    return [str(k) for k in keys if str(k) not in PLUGIN_KEYS]


def _accepts(factory: Callable[..., Any], keyword: str) -> bool:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == keyword or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def check_network_output(model_cfg: Any) -> None:
    """Build a network and run two images through it: a plug-in that raises, returns no module or gives logits
    of the wrong shape is refused in one line before anything is trained. Built-in nets are trusted."""
    net = network_of(model_cfg)
    if not net.source:
        return
    import torch  # deferred: only plug-ins pay for a trial forward

    family = model_cfg.get("family", "cifar")
    classes = int(model_cfg.get("num_classes", 10))
    model = net.build(model_cfg).eval()
    size = INPUT_SIZE[family]
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, 3, size, size))
    except Exception as exc:
        raise UsageError(f"{net.name}-{model_cfg.get('depth')}: a forward pass of 2 images of 3x{size}x{size} "
                         f"failed: {first_line(exc)}") from None
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if shape != (2, classes):
        raise UsageError(f"{net.name}-{model_cfg.get('depth')}: logits of shape {shape} for 2 images; the factory "
                         f"must return [N, num_classes] = (2, {classes})")


def shortcut_of(model_cfg: Any) -> str:
    """The shortcut option a run's network uses: "none" for a network without one (plain nets, plug-ins)."""
    return str(model_cfg.get("shortcut")).upper() if network_of(model_cfg).has_shortcut else "none"


def legend_shortcut(arch: str) -> str:
    """The shortcut a network's legend leaves unnamed (its CIFAR default): the paper's figures' cells."""
    net = NETWORKS.get(arch)
    return net.default_shortcut[net.families[0]] if net else "none"


def label(arch: str, depth: int, shortcut: str | None = None, arch_label: str | None = None) -> str:
    """The paper's legend names: plain-20, ResNet-56, ResNet-56 (B); a plug-in by its YAML's label."""
    if arch in NETWORKS:
        return NETWORKS[arch].legend(depth, shortcut)
    name = f"{arch_label or arch}-{int(depth)}"
    return name if shortcut in (None, "none", "") else f"{name} ({shortcut})"


def check_arch(name: object) -> str:
    """A built-in network's name (what `--archs` and `models` take before any config is composed)."""
    return network(name).name


def check_shortcut_of(model_cfg: Any) -> None:
    """Networks with a shortcut option take A, B or C."""
    if network_of(model_cfg).has_shortcut:
        check_shortcut(model_cfg.get("shortcut"))
