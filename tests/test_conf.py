"""The config tree composes, validates and names runs the way sweeps and resumes rely on."""

from __future__ import annotations

import pytest

from degradation.conf import compose, result_dict, run_id, validate
from degradation.errors import UsageError


def test_default_config_is_the_papers_recipe() -> None:
    cfg = compose([])
    validate(cfg)
    assert (cfg.model.arch, cfg.model.depth, cfg.model.shortcut) == ("resnet", 20, "A")
    assert cfg.data.name == "cifar10" and cfg.data.num_classes == 10
    s = cfg.schedule
    assert (s.batch_size, s.lr, s.momentum, s.weight_decay) == (128, 0.1, 0.9, 1e-4)
    assert (list(s.milestones), s.max_iters, s.gamma) == ([32000, 48000], 64000, 0.1)
    assert (s.warmup.min_depth, s.warmup.lr, s.warmup.until_train_error) == (110, 0.01, 0.8)


def test_every_preset_keeps_the_papers_shape() -> None:
    """Two lr steps at 50% and 75% of the run; the demo's come later, at 62.5% and 87.5% (README: at 400
    iterations the last quarter at lr/100 moves nothing, and ResNet-56 then ends level with ResNet-20)."""
    steps = {"demo": (0.625, 0.875)}
    for preset in ("paper", "quick", "demo", "smoke"):
        s = compose([f"schedule={preset}"]).schedule
        first, second = s.milestones
        assert (first / s.max_iters, second / s.max_iters) == pytest.approx(steps.get(preset, (0.5, 0.75))), preset
        assert s.checkpoint_every % s.log_every == 0 and s.eval_every % s.log_every == 0


def test_cifar100_sets_the_classes_of_the_model() -> None:
    cfg = compose(["data=cifar100"])
    assert cfg.model.num_classes == 100
    assert compose(["experiment=cifar100"]).data.name == "cifar100"


def test_run_id_is_readable_and_stable() -> None:
    cfg = compose(["model=plain", "model.depth=56", "data=synthetic", "schedule=demo", "seed=3"])
    rid = run_id(cfg)
    assert rid.startswith("plain-56-synthetic-demo-s3-") and len(rid.rsplit("-", 1)[1]) == 8
    assert run_id(compose(["model=plain", "model.depth=56", "data=synthetic", "schedule=demo", "seed=3"])) == rid


def test_run_id_ignores_where_and_how_but_not_what() -> None:
    base = ["data=synthetic", "schedule=demo"]
    rid = run_id(compose(base))
    assert run_id(compose(base + ["results_dir=/elsewhere", "trainer.threads=1", "trainer.progress=lines"])) == rid
    assert run_id(compose(base + ["seed=1"])) != rid
    assert run_id(compose(base + ["schedule.lr=0.07"])) != rid
    assert run_id(compose(base + ["model.shortcut=B"])) != rid


def test_plain_nets_ignore_the_shortcut_option() -> None:
    a = compose(["model=plain", "model.shortcut=A"])
    b = compose(["model=plain", "model.shortcut=B"])
    assert run_id(a) == run_id(b)
    assert result_dict(a)["model"]["shortcut"] == "none"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["foo=1"], "unknown config key 'foo'"),
        (["model=bar"], "Could not find 'model/bar'"),
        (["model.depth=21"], "depth 21 is not of the form 6n+2; nearest: 20 or 26"),
        (["model.depth=abc"], "is not a whole number"),
        (["model.depth=-4"], "too small"),
        (["model.arch=foo"], "unknown arch 'foo'"),
        (["model.shortcut=Z"], "unknown shortcut option 'Z'"),
        (["schedule.batch_size=0"], "schedule.batch_size=0 must be >= 1"),
        (["schedule.lr=0"], "schedule.lr=0 must be > 0"),
        (["schedule.lr=abc"], "is not a number"),
        (["schedule.checkpoint_every=15"], "multiple of log_every"),
        (["trainer.precision=fp8"], "trainer.precision"),
    ],
)
def test_bad_overrides_give_one_line(overrides: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        validate(compose(overrides))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


# Where and how a run computes, typed here from what each key does (not read from conf.NON_RESULT_KEYS, which this
# checks): the folders, the data's download/decoding/verification, the devices and threads, speed switches that
# compute the same numbers, what is recorded or shown, and the launcher and logger groups.
WHERE_OR_HOW = {
    "results_dir", "data.root", "data.download", "data.workers", "data.decode", "data.verify", "data.eval_batch_size",
    "trainer.accelerator", "trainer.devices", "trainer.num_nodes", "trainer.threads", "trainer.progress",
    "trainer.compile", "trainer.cuda_graphs", "trainer.activation_checkpointing", "trainer.cudnn_benchmark",
    "trainer.channels_last", "trainer.record_layers", "trainer.deterministic", "data.max_pixels", "data.bad_images",
    "data.max_bad_images", "data.recipe_why",
}
# An image folder under the CIFAR recipe never reads the ImageNet recipe's keys: changing one is no new result.
IMAGENET_ONLY = {f"data.{k}" for k in ("crop", "scale_min", "scale_max", "eval_resize", "lighting", "mean_samples")}
WHERE_OR_HOW_GROUPS = ("logger.", "launcher.")


def _changed(value: object) -> object:
    """Another value of the same kind (what a user's override would make)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2 + 0.5
    if isinstance(value, list):
        return [*value, value[-1]] if value else [1]
    return f"{value}-other"


def _digest(cfg) -> str:
    return run_id(cfg).rsplit("-", 1)[1]


@pytest.mark.parametrize("preset", [[], ["model=preact"], ["data=synthetic", "schedule=demo"], ["launcher=slurm"],
                                    ["data=imagefolder", "data.recipe=imagenet", "model.family=imagenet",
                                     "model.depth=18"],
                                    ["data=imagefolder", "data.recipe=cifar", "data.train_subset=10"]])
def test_every_result_leaf_changes_the_run_id_and_no_other_does(preset: list[str], tmp_path) -> None:
    """Walk every leaf of the composed config: a result-changing one (anything not in WHERE_OR_HOW) changes the run
    id's hash, so two recipes never share a folder; a where/how one leaves it, so a resume on another machine (or
    with another thread count) finds its run."""
    import copy

    from omegaconf import OmegaConf

    from degradation.conf import _flat, resolved_dict

    if "data=imagefolder" in preset:
        for name in ("a", "b"):
            (tmp_path / "train" / name).mkdir(parents=True)
        preset = [*preset, f"data.root={tmp_path}"]
    cfg = compose(preset)
    base = _digest(cfg)
    leaves = _flat(resolved_dict(cfg))
    assert len(leaves) > 40 and "schedule.weight_decay" in leaves
    for key, value in leaves.items():
        other = copy.deepcopy(cfg)
        OmegaConf.update(other, key, _changed(value), merge=False)
        where_or_how = key in WHERE_OR_HOW or key.startswith(WHERE_OR_HOW_GROUPS)
        where_or_how |= "data.recipe=cifar" in preset and key in IMAGENET_ONLY
        assert (_digest(other) == base) == where_or_how, f"{key}: {value!r} -> {_changed(value)!r}"


def test_a_variant_is_the_result_settings_without_the_seed() -> None:
    """Seeds of one experiment share a variant (pooled as seeds); any other result setting makes another."""
    from omegaconf import OmegaConf

    from degradation.conf import resolved_dict, variant_id, variant_settings

    base = compose(["data=synthetic"])
    settings = variant_settings(resolved_dict(base))
    assert "seed" not in settings and "results_dir" not in settings and "trainer.threads" not in settings
    assert (settings["schedule.lr"], settings["model.depth"], settings["data.name"]) == (0.1, 20, "synthetic")
    assert settings["schedule.milestones"] == [32000, 48000]
    variant = variant_id(base)
    assert len(variant) == 8 and int(variant, 16) >= 0
    assert variant_id(compose(["data=synthetic", "seed=7"])) == variant
    assert variant_id(compose(["data=synthetic", "schedule.lr=0.05"])) != variant
    assert variant_id(compose(["data=synthetic", "trainer.threads=1"])) == variant
    tree = OmegaConf.create({"a": 1, "b": "${a}"})
    assert resolved_dict(tree) == {"a": 1, "b": 1}  # interpolations resolved, as run.json stores them


def test_result_tree_keeps_old_run_ids_and_leaves_its_input_alone() -> None:
    """run.json's config is read back by collect and variants: result_tree must not edit it, and a config from
    before trainer.sync_batchnorm existed hashes as the same config with it false (BN per device, the default)."""
    import copy

    from degradation.conf import resolved_dict, result_tree

    tree = resolved_dict(compose(["data=synthetic"]))
    before = copy.deepcopy(tree)
    result = result_tree(tree)
    assert tree == before, "result_tree changed its argument"
    assert "results_dir" not in result and "sync_batchnorm" not in result["trainer"]
    old = copy.deepcopy(tree)
    del old["trainer"]["sync_batchnorm"]
    assert result_tree(old) == result
    tree["trainer"]["sync_batchnorm"] = True
    assert result_tree(tree)["trainer"]["sync_batchnorm"] is True
    assert result_tree({"seed": 3, "results_dir": "r", "launcher": {"name": "local"}}) == {"seed": 3}


def test_keys_added_later_keep_the_run_ids_made_before_them(tmp_path) -> None:
    """data.train_subset and data.resize unset, and an image folder on ImageNet's recipe, hash as the configs made
    before those keys existed (their runs keep their folders); set, they are part of the result."""
    from degradation.conf import resolved_dict, result_tree

    for name in ("a", "b"):
        (tmp_path / "train" / name).mkdir(parents=True)
    folder = ["data=imagefolder", f"data.root={tmp_path}"]
    for overrides in (["data=cifar10"], [*folder, "data.recipe=imagenet"]):
        tree = resolved_dict(compose(overrides))
        old = {k: v for k, v in tree["data"].items() if k not in ("train_subset", "resize", "recipe")}
        assert result_tree(tree)["data"] == result_tree({**tree, "data": old})["data"], overrides
    subset = result_tree(resolved_dict(compose([*folder, "data.recipe=cifar", "data.train_subset=100",
                                                "data.resize=32"])))["data"]
    assert (subset["train_subset"], subset["resize"], subset["recipe"]) == (100, 32, "cifar")


def test_run_id_names_the_shortcut_and_ignores_key_order() -> None:
    """The prefix says arch-depth-shortcut-data-schedule-seed; the hash reads the settings, not their order (a
    config written back from run.json, or composed with overrides in another order, finds the same folder)."""
    from omegaconf import OmegaConf

    from degradation.conf import resolved_dict

    cfg = compose(["model.shortcut=B"])
    rid = run_id(cfg)
    assert rid.startswith("resnet-20-B-cifar10-paper-s0-")
    tree = resolved_dict(cfg)
    reordered = OmegaConf.create({k: (dict(reversed(list(v.items()))) if isinstance(v, dict) else v)
                                  for k, v in reversed(list(tree.items()))})
    assert list(resolved_dict(reordered)) != list(tree)
    assert run_id(reordered) == rid


def test_variant_ignores_key_order_and_needs_no_seed() -> None:
    from degradation.conf import resolved_dict, variant_of, variant_settings

    tree = resolved_dict(compose(["data=synthetic"]))
    reordered = {k: (dict(reversed(list(v.items()))) if isinstance(v, dict) else v) for k, v in reversed(tree.items())}
    assert variant_of(reordered) == variant_of(tree)
    assert variant_settings({"schedule": {"lr": 0.1}}) == {"schedule.lr": 0.1}  # a hand-made config without a seed


def test_a_preset_changed_by_an_override_says_what_changed() -> None:
    """`schedule=quick schedule.max_iters=1000` is not the quick preset (issue 27): the keys it changed are found
    against the preset's YAML, for titles to name; the run id keeps the schedule's name, its hash tells them apart."""
    from degradation.conf import preset_changes, resolved_dict, variant_settings

    def changes(*overrides: str) -> dict:
        cfg = compose(list(overrides))
        return preset_changes(str(cfg.schedule.name), variant_settings(resolved_dict(cfg)))

    assert changes("schedule=quick") == {}
    changed = compose(["schedule=quick", "schedule.max_iters=1000"])
    assert changes("schedule=quick", "schedule.max_iters=1000") == {"schedule.max_iters": 1000}
    assert "-quick-s0-" in run_id(changed)
    assert changes("schedule=quick", "schedule.max_iters=6400") == {}  # the preset's own value
    assert changes("schedule=paper", "schedule.warmup.lr=0.02") == {"schedule.warmup.lr": 0.02}
