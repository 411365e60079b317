"""`degradation models`: parameters and multiply-adds of each network, beside the paper's counts.

CIFAR reference counts are the paper's Table 6 figures (printed there rounded: 0.27M ... 19.4M, for the
residual nets, which have the plain nets' count under option A); a row matches when our exact count
rounds to the paper's figure. ImageNet residual option-B rows are checked exactly against torchvision's
resnetN built (on the meta device) with the same number of classes, and every ImageNet row shows Table 1's
multiply-adds (its "FLOPs" row) beside the measured ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch

from degradation.models.build import build_model
from degradation.models.checks import check_num_classes
from degradation.models.cifarnet import cifar_net
from degradation.models.complexity import count_macs, count_params, one_thread
from degradation.models.depth import (
    IMAGENET_DEPTHS,
    PAPER_CIFAR_DEPTHS,
    check_family,
    check_imagenet_depth,
    check_shortcut,
    cifar_blocks_per_stage,
)
from degradation.models.imagenet import imagenet_net
from degradation.models.registry import NETWORKS, check_arch, network_of

# Table 6 of the paper, as printed (millions).
PAPER_CIFAR_PARAMS: dict[int, str] = {20: "0.27", 32: "0.46", 44: "0.66", 56: "0.85", 110: "1.7", 1202: "19.4"}
# Table 1 of the paper: multiply-adds per 224x224 image ("FLOPs"), x10^9, the same for a plain net and its ResNet.
PAPER_IMAGENET_MACS: dict[int, float] = {18: 1.8, 34: 3.6, 50: 3.8, 101: 7.6, 152: 11.3}
# `degradation models` with no --depths, and with --depths all
DEFAULT_DEPTHS: dict[str, tuple[int, ...]] = {"cifar": PAPER_CIFAR_DEPTHS, "imagenet": (18, 34)}
ALL_DEPTHS: dict[str, tuple[int, ...]] = {"cifar": PAPER_CIFAR_DEPTHS, "imagenet": IMAGENET_DEPTHS}
BOTTLENECK_DEPTH = 50  # ImageNet nets from 50 layers use bottleneck blocks, which the paper builds with option B
COLUMNS = ["arch", "depth", "n", "shortcut", "params", "macs", "paper_macs", "paper_params", "match"]


def default_shortcut(family: str, depth: int) -> str:
    """The paper's option: A (identity, zero-padding) for the CIFAR nets and ImageNet 18/34, B for bottleneck nets."""
    return "B" if family == "imagenet" and depth >= BOTTLENECK_DEPTH else "A"


def _paper_cifar(depth: int, arch: str, shortcut: str, num_classes: int) -> int | None:
    """The paper's figure applies to CIFAR-10 nets without projections (plain, or residual option A)."""
    if num_classes != 10 or depth not in PAPER_CIFAR_PARAMS or (arch == "resnet" and shortcut != "A"):
        return None
    return round(float(PAPER_CIFAR_PARAMS[depth]) * 1_000_000)


def _matches(params: int, paper: int | None, depth: int, family: str) -> bool | None:
    """CIFAR: our exact count rounds to the paper's printed figure; ImageNet: equal to torchvision's."""
    if paper is None:
        return None
    if family == "imagenet":
        return params == paper
    decimals = len(PAPER_CIFAR_PARAMS[depth].split(".")[1])
    return round(params / 1e6, decimals) == round(paper / 1e6, decimals)


def _torchvision_params(depth: int, num_classes: int) -> int:
    import torchvision  # only the ImageNet rows need it (a second or so to import)

    with torch.device("meta"):
        reference = getattr(torchvision.models, f"resnet{depth}")(weights=None, num_classes=num_classes)
    return count_params(reference)


def _other_row(family: str, model_cfg: Mapping[str, Any], depth: int, num_classes: int) -> list:
    """A network other than the paper's two (pre-activation, a plug-in): built from its config, no reference."""
    cfg = {**model_cfg, "family": family, "depth": depth, "num_classes": num_classes}
    net = network_of(cfg)
    net.check_depth(family, depth, cfg.get("block", "auto"))
    model = build_model(cfg)
    size = 32 if family == "cifar" else 224
    option = str(cfg.get("shortcut", net.shortcut_for(family))) if net.has_shortcut else "none"
    return [net.name, depth, None, option, count_params(model), count_macs(model, (1, 3, size, size)), None, None,
            None]


def _row(family: str, arch: str, depth: int, n: int | None, shortcut: str, num_classes: int,
         model_cfg: Mapping[str, Any] | None = None) -> list:
    """Build one net, count it, and find its reference count."""
    if arch not in ("plain", "resnet"):
        return _other_row(family, model_cfg or {"arch": arch}, depth, num_classes)
    option = shortcut if arch == "resnet" else "none"
    if family == "cifar":
        # Built and run for real: ~1.5 s for depth 1202 on one thread, where the meta device's Python shape
        # functions take 2-4 s (BN is decomposed op by op there).
        model: torch.nn.Module = cifar_net(arch, depth, shortcut, num_classes)
        paper = _paper_cifar(depth, arch, shortcut, num_classes)
        shape = (1, 3, 32, 32)
    else:
        with torch.device("meta"):  # up to 60M parameters and 11G MACs: shapes only, nothing computed
            model = imagenet_net(arch, depth, shortcut, num_classes)
        paper = _torchvision_params(depth, num_classes) if option == "B" else None
        shape = (1, 3, 224, 224)
    params = count_params(model)
    # the paper has no plain bottleneck nets; its plain 18/34 have their ResNets' multiply-adds
    table1 = family == "imagenet" and (arch == "resnet" or depth < BOTTLENECK_DEPTH)
    paper_macs = round(PAPER_IMAGENET_MACS[depth] * 1e9) if table1 else None
    return [arch, depth, n, option, params, count_macs(model, shape), paper_macs, paper,
            _matches(params, paper, depth, family)]


def models_table(
    depths: Sequence[int],
    archs: Sequence[str] = ("plain", "resnet"),
    shortcut: str | None = None,
    family: str = "cifar",
    num_classes: int | None = None,
    configs: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """One row per (depth, arch): arch, depth, n (None for ImageNet), shortcut ("none" for plain), params,
    macs (per image, measured), paper_macs (Table 1, ImageNet only), paper_params (None where there is no
    reference), match. shortcut None: the paper's option for each depth (`default_shortcut`).

    Every argument is checked before anything is built, so a bad depth fails at once with a UsageError.
    num_classes None: the family's own (10 for CIFAR, 1000 for ImageNet). `configs`: the model configs of
    networks that are not built in (a user's own, by name), composed from their YAMLs.
    """
    family = check_family(family)
    configs = dict(configs or {})
    archs = [arch if arch in configs else check_arch(arch) for arch in archs]
    shortcut = None if shortcut is None else check_shortcut(shortcut)
    cifar = family == "cifar"
    num_classes = check_num_classes((10 if cifar else 1000) if num_classes is None else num_classes)
    paper_nets = [a for a in archs if a in ("plain", "resnet")]
    checked = [(cifar_blocks_per_stage(d) if paper_nets else None, d) if cifar
               else (None, check_imagenet_depth(d) if paper_nets else d) for d in depths]
    for arch in (a for a in archs if a in NETWORKS):
        for _, depth in checked:
            NETWORKS[arch].check_depth(family, depth)
    with one_thread():
        rows = [_row(family, arch, depth, n, shortcut or default_shortcut(family, depth), num_classes,
                     configs.get(arch))
                for n, depth in checked for arch in archs]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.astype(
        {
            "depth": "int64",
            "n": "Int64",
            "params": "int64",
            "macs": "int64",
            "paper_macs": "Int64",
            "paper_params": "Int64",
            "match": "boolean",
        }
    )


def _millions(value: int) -> str:
    return f"{value / 1e9:.2f}G" if value >= 1e9 else f"{value / 1e6:.1f}M"


def print_models_table(df: pd.DataFrame) -> None:
    """A readable table: exact parameter counts, MACs in M/G, the reference count and whether it matches."""
    from rich.console import Console
    from rich.table import Table

    imagenet = bool(len(df)) and df["n"].isna().all()
    reference = "torchvision" if imagenet else "paper"
    table = Table(
        caption=(
            "macs: multiply-adds per image (convs + fc), measured; "
            + (
                "Table 1: the paper's multiply-adds; torchvision: resnetN(weights=None), option B only"
                if imagenet
                else "paper: He et al. Table 6 (rounded), no projections"
            )
        )
    )
    headers = ("arch", "depth", "n", "shortcut", "params", "macs", *(("Table 1",) if imagenet else ()), reference,
               "match")
    for header in headers:
        table.add_column(header, justify="left" if header in ("arch", "shortcut") else "right", no_wrap=True)
    for row in df.itertuples(index=False):
        if pd.isna(row.paper_params):
            paper = "-"
        elif imagenet:
            paper = f"{int(row.paper_params):,}"
        else:
            paper = f"{PAPER_CIFAR_PARAMS[int(row.depth)]}M"
        match = "-" if pd.isna(row.match) else ("yes" if row.match else "NO")
        n = "-" if pd.isna(row.n) else str(int(row.n))
        table1 = "-" if pd.isna(row.paper_macs) else _millions(int(row.paper_macs))
        macs = [_millions(row.macs), *((table1,) if imagenet else ())]
        table.add_row(row.arch, str(row.depth), n, row.shortcut, f"{row.params:,}", *macs, paper, match)
    Console(width=max(100, Console().width)).print(table)
