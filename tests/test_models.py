"""The networks are the paper's: exact parameter counts, shapes, strides, shortcuts, MACs, responses, CLI."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from degradation.cli import main
from degradation.conf import compose
from degradation.errors import UsageError
from degradation.models import (
    ResponseRecorder,
    build_model,
    cifar_net,
    count_macs,
    count_params,
    imagenet_net,
    response_layers,
)
from degradation.models.blocks import PadShortcut, PlainBasicBlock, Projection, make_shortcut
from degradation.models.imagenet import ImageNetNet
from degradation.models.table import models_table

PAPER_PARAMS = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962, 1202: 19_421_274}


@pytest.fixture(scope="module")
def paper_table():
    """Every paper depth up to 110, plain and residual-A, built and counted once for several tests."""
    return models_table([20, 32, 44, 56, 110], ["plain", "resnet"], "A", "cifar", 10)


def _inputs(batch: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


# --- parameter counts -------------------------------------------------------------------------------------


def test_paper_parameter_counts_for_plain_and_resnet_a(paper_table) -> None:
    for row in paper_table.itertuples():
        assert row.params == PAPER_PARAMS[row.depth], (row.arch, row.depth)
        assert row.n == (row.depth - 2) // 6
    assert list(paper_table["shortcut"]) == ["none", "A"] * 5
    assert paper_table["match"].all()
    assert count_params(cifar_net("plain", 20)) == count_params(cifar_net("resnet", 20)) == 269_722


def test_depth_1202_counts_on_the_meta_device() -> None:
    with torch.device("meta"):  # shapes only: no 19M-parameter init, no arithmetic
        counts = {arch: count_params(cifar_net(arch, 1202)) for arch in ("plain", "resnet")}
    assert counts == {"plain": 19_421_274, "resnet": 19_421_274}


def _projection_params(pairs: list[tuple[int, int]]) -> int:
    return sum(cin * cout + 2 * cout for cin, cout in pairs)  # 1x1 conv without bias + BN scale and shift


def test_option_a_adds_nothing_b_and_c_add_projections() -> None:
    plain = count_params(cifar_net("plain", 20))
    assert count_params(cifar_net("resnet", 20, "A")) == plain
    # B: projections only at the two stage changes (16->32, 32->64).
    assert count_params(cifar_net("resnet", 20, "B")) == plain + _projection_params([(16, 32), (32, 64)])
    # C: a projection on each of the 9 blocks.
    every = [(16, 16)] * 3 + [(16, 32)] + [(32, 32)] * 2 + [(32, 64)] + [(64, 64)] * 2
    assert count_params(cifar_net("resnet", 20, "C")) == plain + _projection_params(every)
    modules = [type(m) for m in cifar_net("resnet", 20, "A").modules()]
    assert modules.count(PadShortcut) == 2 and Projection not in modules
    assert sum(isinstance(m, Projection) for m in cifar_net("resnet", 20, "B").modules()) == 2
    plain_blocks = [
        type(b)
        for name, b in cifar_net("plain", 20).named_modules()
        if name.startswith("stage") and name.count(".") == 1
    ]
    assert plain_blocks == [PlainBasicBlock] * 9  # no shortcut attribute, no addition


def test_layer_structure_follows_the_paper() -> None:
    model = cifar_net("resnet", 8)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 7 and all(c.bias is None and c.kernel_size == (3, 3) for c in convs)
    assert [c.out_channels for c in convs] == [16, 16, 16, 32, 32, 64, 64]
    assert [c.stride for c in convs] == [(1, 1)] * 3 + [(2, 2), (1, 1), (2, 2), (1, 1)]
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 7 and all(bool((b.weight == 1).all()) and bool((b.bias == 0).all()) for b in bns)
    assert model.fc.bias is not None and (model.fc.in_features, model.fc.out_features) == (64, 10)


def test_he_initialisation_uses_fan_in() -> None:
    torch.manual_seed(0)
    conv = cifar_net("plain", 56).stage3[1].conv1  # 64 -> 64, 3x3: fan_in = 576, 36,864 weights
    assert conv.weight.std().item() == pytest.approx((2 / 576) ** 0.5, rel=0.02)
    # 16 -> 32 (the first conv of stage 2): fan_in = 16*9 = 144, fan_out = 32*9 = 288, so the two modes differ
    # by sqrt(2); 4,608 weights estimate the std within about 1%.
    for arch in ("plain", "resnet"):
        conv = cifar_net(arch, 56).stage2[0].conv1
        assert (conv.in_channels, conv.out_channels) == (16, 32)
        assert conv.weight.std().item() == pytest.approx((2 / 144) ** 0.5, rel=0.04)


# --- shapes, classes, width, strides ----------------------------------------------------------------------


@pytest.mark.parametrize("arch,shortcut", [("plain", "A"), ("resnet", "A"), ("resnet", "B"), ("resnet", "C")])
def test_output_shape_and_feature_maps(arch: str, shortcut: str) -> None:
    model = cifar_net(arch, 8, shortcut).eval()
    x = _inputs()
    sizes = []
    hooks = [
        getattr(model, s).register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape)))
        for s in ("stem", "stage1", "stage2", "stage3")
    ]
    with torch.no_grad():
        out = model(x)
        features = model.forward_features(x)
    for hook in hooks:
        hook.remove()
    assert sizes[:4] == [(2, 16, 32, 32), (2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8)]
    assert out.shape == (2, 10) and features.shape == (2, 64, 8, 8)
    assert torch.equal(model.forward_head(features), out)


def test_num_classes_and_width() -> None:
    assert cifar_net("resnet", 8, num_classes=100)(_inputs()).shape == (2, 100)
    wide = cifar_net("resnet", 8, width=2.0)
    assert (wide.stem.conv.out_channels, wide.stage2[0].conv1.out_channels, wide.fc.in_features) == (32, 64, 128)
    assert wide.forward_features(_inputs()).shape == (2, 128, 8, 8)
    odd = cifar_net("resnet", 8, width=1.3)  # 20.8, 41.6, 83.2 rounded
    assert (odd.stem.conv.out_channels, odd.stage2[0].conv1.out_channels, odd.fc.in_features) == (21, 42, 83)
    assert odd(_inputs()).shape == (2, 10)


def test_option_a_shortcut_is_subsampled_identity_with_zero_channels() -> None:
    x = torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(0))
    out = PadShortcut(16, 32, stride=2)(x)
    assert out.shape == (2, 32, 4, 4)
    assert torch.equal(out[:, :16], x[:, :, ::2, ::2]) and not out[:, 16:].any()
    # A residual block whose residual branch is zeroed passes relu(shortcut(x)) through.
    block = cifar_net("resnet", 8, "A").stage2[0]
    nn.init.zeros_(block.bn2.weight)
    block.eval()
    with torch.no_grad():
        assert torch.equal(block(x), torch.relu(out))


# --- ImageNet ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_imagenet_option_b_is_torchvision(depth: int) -> None:
    torchvision = pytest.importorskip("torchvision")
    with torch.device("meta"):
        reference = getattr(torchvision.models, f"resnet{depth}")(weights=None)
        ours = imagenet_net("resnet", depth, "B")
        plain, option_a = imagenet_net("plain", depth), imagenet_net("resnet", depth, "A")
    assert count_params(ours) == count_params(reference)
    assert [p.shape for p in ours.parameters()] == [p.shape for p in reference.parameters()]  # same layout
    assert count_params(option_a) == count_params(plain) < count_params(ours)


def test_imagenet_resnet18_computes_torchvisions_function_given_its_weights() -> None:
    """Built with its defaults (option B, 1,000 classes, full width), ResNet-18 is torchvision's, tensor for tensor
    and op for op: the stem's 7x7 conv and 3x3/2 max pool, the blocks, the head. (The bottleneck nets differ on
    purpose: the paper strides the first 1x1 conv, torchvision the 3x3; tests/test_blocks.py checks ours.)"""
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None).eval()
    ours = ImageNetNet(18).eval()
    theirs = reference.state_dict()
    assert [v.shape for v in ours.state_dict().values()] == [v.shape for v in theirs.values()]
    ours.load_state_dict(dict(zip(ours.state_dict(), theirs.values(), strict=True)))
    assert list(ours.state_dict())[:2] == ["stem.conv.weight", "stem.bn.weight"]  # checkpoints keep their keys
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x))


def test_nets_say_what_they_are() -> None:
    plain20, resnet20 = cifar_net("plain", 20), cifar_net("resnet", 20, "b")
    assert (plain20.arch, plain20.depth, plain20.shortcut) == ("plain", 20, "none")
    assert (resnet20.arch, resnet20.depth, resnet20.shortcut) == ("resnet", 20, "B")
    with torch.device("meta"):
        plain, residual = ImageNetNet(34, None), imagenet_net("resnet", 18)
        thin = ImageNetNet(18, width=0.001)
    assert (plain.arch, plain.depth, plain.shortcut) == ("plain", 34, "none")
    assert (residual.arch, residual.depth, residual.shortcut) == ("resnet", 18, "B")
    assert [thin.stem.conv.out_channels] + [s[0].conv2.out_channels for s in (thin.stage1, thin.stage2,
                                                                             thin.stage3, thin.stage4)] == [1] * 5


def test_a_net_of_another_arch_or_an_unknown_shortcut_is_refused_by_name() -> None:
    for build in (cifar_net, imagenet_net):
        with pytest.raises(UsageError, match="arch 'preact' is not built here; use build_model"):
            build("preact", 20 if build is cifar_net else 18)
    with pytest.raises(ValueError, match="unknown shortcut option 'D'"):
        make_shortcut("D", 16, 32, 2)
    with pytest.raises(ValueError, match=r"option A cannot shrink channels \(32 -> 16\)"):
        PadShortcut(32, 16, 2)
    x = torch.randn(1, 16, 6, 6)
    assert torch.equal(PadShortcut(16, 16, 2)(x), x[:, :, ::2, ::2])  # same width: the subsample alone


def test_imagenet_macs_follow_table_1() -> None:
    # Table 1: 1.8e9 (18) and 3.8e9 (50) FLOPs (multiply-adds). Stride in the first 1x1 of a bottleneck,
    # as in the paper; torchvision's stride-in-3x3 variant has 4.1e9 for 50.
    with torch.device("meta"):
        macs = {d: count_macs(imagenet_net("resnet", d, "B"), (1, 3, 224, 224)) for d in (18, 50)}
    assert macs[18] == pytest.approx(1.8e9, rel=0.02) and macs[50] == pytest.approx(3.8e9, rel=0.02)


def test_imagenet_forward_with_option_a_bottleneck_padding() -> None:
    model = imagenet_net("resnet", 50, "A", num_classes=7, width=0.25).eval()
    assert isinstance(model.stage1[0].shortcut, PadShortcut)  # 16 -> 64 channels without stride
    with torch.no_grad():
        features = model.forward_features(_inputs(1, 64))
    assert features.shape == (1, 512, 2, 2) and model.forward_head(features).shape == (1, 7)


# --- multiply-adds ----------------------------------------------------------------------------------------


def test_macs_match_the_published_counts(paper_table) -> None:
    macs = {(row.arch, row.depth): row.macs for row in paper_table.itertuples()}
    assert macs[("resnet", 20)] == pytest.approx(40.8e6, rel=0.01)
    assert macs[("resnet", 56)] == pytest.approx(125.8e6, rel=0.01)
    assert macs[("resnet", 110)] == pytest.approx(255e6, rel=0.01)
    assert macs[("plain", 56)] == macs[("resnet", 56)]  # additions are not multiply-adds


def test_count_macs_is_conv_plus_fc_and_leaves_the_model_alone() -> None:
    model = cifar_net("resnet", 8).train()
    threads = torch.get_num_threads()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # By hand: stem 27*16, stage1 2 * 144*16, stage2 144*32 + 288*32, stage3 288*64 + 576*64, per pixel; fc.
    expected = 432 * 1024 + 2 * 2304 * 1024 + (4608 + 9216) * 256 + (18432 + 36864) * 64 + 640
    assert count_macs(model) == expected
    assert model.training and torch.get_num_threads() == threads
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert count_macs(model, (4, 3, 32, 32)) == 4 * expected


# --- responses (Figure 7) ---------------------------------------------------------------------------------


@pytest.mark.parametrize("arch,shortcut", [("plain", "A"), ("resnet", "A"), ("resnet", "C")])
def test_response_layers_are_every_3x3_bn_in_order(arch: str, shortcut: str) -> None:
    model = cifar_net(arch, 14, shortcut)  # n = 2: 13 layers
    layers = response_layers(model)
    assert len(layers) == 6 * 2 + 1
    assert layers[0][0] == "stem.bn" and layers[1][0] == "stage1.0.bn1" and layers[-1][0] == "stage3.1.bn2"
    called: list[str] = []
    names = {module: name for name, module in model.named_modules()}
    hooks = [
        m.register_forward_hook(lambda m, i, o: called.append(names[m]))
        for m in model.modules()
        if isinstance(m, nn.BatchNorm2d)
    ]
    model(_inputs())
    for hook in hooks:
        hook.remove()
    assert [name for name, _ in layers] == [name for name in called if "shortcut" not in name]


def test_imagenet_response_layers_are_3x3_only() -> None:
    with torch.device("meta"):
        assert len(response_layers(imagenet_net("resnet", 18))) == 16  # no 7x7 stem, no 1x1 projection
        assert len(response_layers(imagenet_net("resnet", 50))) == 16  # the middle conv of 16 bottlenecks


@pytest.mark.parametrize("train_mode", [False, True])
def test_recorder_leaves_the_output_bit_identical(train_mode: bool) -> None:
    torch.manual_seed(0)
    model = cifar_net("resnet", 8).train(train_mode)
    x = _inputs(4)
    with torch.no_grad():
        plain = model(x)
        with ResponseRecorder(model) as recorder:
            recorded = model(x)
        after = model(x)
    assert torch.equal(plain, recorded) and torch.equal(plain, after)
    assert all(not module._forward_hooks for _, module in recorder.layers)  # hooks removed on exit


def test_recorder_std_equals_torch_std_over_the_captured_responses() -> None:
    torch.manual_seed(0)
    model = cifar_net("plain", 8).eval()
    captured: dict[str, list[torch.Tensor]] = {name: [] for name, _ in response_layers(model)}
    hooks = [
        m.register_forward_hook(lambda m, i, o, n=name: captured[n].append(o.detach().clone()))
        for name, m in response_layers(model)
    ]
    with torch.no_grad(), ResponseRecorder(model) as recorder:
        model(_inputs(3, seed=1))
        model(_inputs(5, seed=2))
    for hook in hooks:
        hook.remove()
    stds = recorder.std()
    assert list(stds) == list(captured) and len(stds) == 7
    for name, chunks in captured.items():
        values = torch.cat([c.flatten() for c in chunks]).double()
        assert recorder.counts[name] == values.numel()
        assert stds[name] == pytest.approx(values.std().item(), rel=1e-9)
        assert recorder.mean()[name] == pytest.approx(values.mean().item(), rel=1e-9, abs=1e-12)


# --- configs and bad input ----------------------------------------------------------------------------------


def test_build_model_from_the_hydra_model_group() -> None:
    model = build_model(compose(["model=plain", "model.depth=14", "data=cifar100"]).model)
    assert (model.arch, model.depth, model.shortcut, model.fc.out_features) == ("plain", 14, "none", 100)
    model = build_model({"arch": "resnet", "depth": 8, "shortcut": "b", "width": 0.5})
    assert (model.shortcut, model.fc.in_features, model.fc.out_features) == ("B", 32, 10)
    model = build_model({"arch": "resnet", "family": "imagenet", "depth": 18, "width": 0.25})
    assert model.shortcut == "B" and model.fc.out_features == 1000


@pytest.mark.parametrize(
    "cfg,message",
    [
        ({"arch": "plain", "depth": 21}, "depth 21 is not of the form 6n+2; nearest: 20 or 26"),
        ({"arch": "plain", "depth": 0}, "depth 0 is too small"),
        ({"arch": "plain", "depth": -4}, "depth -4 is too small"),
        ({"arch": "plain", "depth": "abc"}, "depth 'abc' is not a whole number"),
        ({"arch": "foo", "depth": 20}, "unknown arch 'foo'; choose from plain, resnet, preact"),
        ({"arch": "resnet", "depth": 20, "shortcut": "Z"}, "unknown shortcut option 'Z'; choose from A, B, C"),
        ({"arch": "resnet", "depth": 20, "family": "x"}, "unknown model family 'x'"),
        ({"arch": "resnet", "depth": 20, "family": "imagenet"}, "ImageNet depth 20 does not exist"),
        ({"arch": "resnet", "depth": 20, "num_classes": 0}, "num_classes 0 must be a whole number >= 1"),
        ({"arch": "resnet", "depth": 20, "width": 0}, "width 0 must be a positive number"),
        ({"depth": 20}, "model config needs 'arch'"),
    ],
)
def test_bad_model_configs_are_one_line_usage_errors(cfg: dict, message: str) -> None:
    with pytest.raises(UsageError) as info:
        build_model(cfg)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


# --- the `degradation models` command -------------------------------------------------------------------------


def test_cli_models_prints_the_table(capsys) -> None:
    assert main(["models", "--depths", "20,56"]) == 0
    out = capsys.readouterr().out
    for text in ("plain", "resnet", "269,722", "853,018", "0.27M", "0.85M", "40.6M", "125.5M", "yes"):
        assert text in out, text
    assert "NO" not in out


def test_cli_models_imagenet_compares_with_torchvision(capsys) -> None:
    assert (
        main(
            [
                "models",
                "--family",
                "imagenet",
                "--depths",
                "18",
                "--archs",
                "resnet",
                "--num-classes",
                "1000",
                "--shortcut",
                "B",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.count("11,689,512") == 2 and "torchvision" in out and "yes" in out


@pytest.mark.parametrize(
    "args,line",
    [
        (["--depths", "21"], "error: depth 21 is not of the form 6n+2; nearest: 20 or 26"),
        (["--depths", "0"], "error: depth 0 is too small; CIFAR depths are 6n+2 with n >= 1: 8, 14, 20, ..."),
        (["--depths", "-4"], "error: depth -4 is too small; CIFAR depths are 6n+2 with n >= 1: 8, 14, 20, ..."),
        (["--depths", "abc"], "error: --depths: 'abc' is not a whole number"),
        (["--depths", "20,21"], "error: depth 21 is not of the form 6n+2; nearest: 20 or 26"),
        (["--archs", "foo"], "error: --archs: unknown arch 'foo'; choose from plain, preact, resnet"),
        (["--shortcut", "Z"], "error: unknown shortcut option 'Z'; choose from A, B, C"),
        (["--family", "imagenet", "--depths", "20"], "error: ImageNet depth 20 does not exist; choose one of"),
        (["--family", "imagenet", "--depths", ""], "error: --depths got an empty item"),
    ],
)
def test_cli_models_bad_input_is_one_line_exit_2(capsys, args: list[str], line: str) -> None:
    assert main(["models", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(line) and captured.err.count("\n") == 1


def test_recorder_accumulates_across_inference_mode_and_grad_batches() -> None:
    model = cifar_net("resnet", 8).eval()
    with ResponseRecorder(model) as recorder:
        with torch.inference_mode():
            model(_inputs(2, seed=3))
        model(_inputs(2, seed=4)).sum().backward()
    assert set(recorder.counts.values()) == {2 * 2 * 16 * 32 * 32, 2 * 2 * 32 * 16 * 16, 2 * 2 * 64 * 8 * 8}
    assert all(0 < value < 10 for value in recorder.std().values())


def test_models_table_defaults_to_each_familys_classes() -> None:
    frame = models_table([18], ["resnet"], "B", "imagenet")
    assert list(frame.columns) == ["arch", "depth", "n", "shortcut", "params", "macs", "paper_macs", "paper_params",
                                   "match"]
    row = frame.iloc[0]
    assert (row.params, row.paper_params, bool(row.match)) == (11_689_512, 11_689_512, True)
    assert pd.isna(row.n) and row.shortcut == "B"
    cifar = models_table([8], ["plain"], "A", "cifar").iloc[0]
    assert (cifar.n, cifar.shortcut, cifar.params) == (1, "none", 75_290) and pd.isna(cifar.paper_params)


def test_cli_models_imagenet_defaults_to_18_and_34_beside_table_1s_multiply_adds(capsys) -> None:
    assert main(["models", "--family", "imagenet", "--archs", "resnet"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if "│ resnet" in line]
    assert [row.split()[3] for row in rows] == ["18", "34"]  # the Figure 4 nets, not "depth 20 does not exist"
    assert "Table 1" in out and "1.80G" in out and "3.60G" in out and "1.79G" in out and "3.64G" in out


def test_models_table_bottleneck_nets_default_to_option_b_with_table_1s_multiply_adds() -> None:
    frame = models_table([18, 50, 101, 152], ["resnet"], None, "imagenet")
    assert list(frame["shortcut"]) == ["A", "B", "B", "B"]  # the paper's Table 3 builds 50/101/152 with B
    assert list(frame["paper_macs"]) == [1_800_000_000, 3_800_000_000, 7_600_000_000, 11_300_000_000]
    measured = (frame["macs"] / 1e9).round(2).tolist()
    assert measured == [1.79, 3.86, 7.57, 11.28] and bool(frame["match"].iloc[1:].all())  # torchvision's params
    assert list(models_table([18], ["resnet"], "A", "imagenet")["shortcut"]) == ["A"]  # an explicit option wins


def test_cli_models_depths_all_lists_the_five_imagenet_nets(monkeypatch) -> None:
    from degradation.models import table

    seen = {}
    monkeypatch.setattr(table, "models_table", lambda **kw: seen.update(kw) or table.pd.DataFrame())
    monkeypatch.setattr(table, "print_models_table", lambda frame: None)
    assert main(["models", "--family", "imagenet", "--depths", "all"]) == 0
    assert seen["depths"] == [18, 34, 50, 101, 152] and seen["shortcut"] is None
