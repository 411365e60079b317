"""The registries (one entry per network and per data set), the config schema, and the text formatters: what
the rest of the tool reads instead of re-typing names, defaults and checks (issue 26)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from degradation.conf import compose, resolved_dict, run_id, validate
from degradation.data.registry import DATASETS, FILE_BACKED, dataset, display_name, recipe_of, streams_files
from degradation.errors import UsageError
from degradation.models.registry import NETWORKS, label, legend_shortcut, network, shortcut_of
from degradation.text import clock, duration, percent, points


def test_each_network_says_its_label_families_and_default_shortcut() -> None:
    assert set(NETWORKS) == {"plain", "resnet", "preact"}
    assert [network(n).label for n in ("plain", "resnet", "preact")] == ["plain", "ResNet", "PreAct"]
    assert network("preact").families == ("cifar",)
    assert network("resnet").shortcut_for("cifar") == "A" and network("resnet").shortcut_for("imagenet") == "B"
    assert network("plain").shortcut_for("imagenet") == "none" and not network("plain").has_shortcut
    assert [legend_shortcut(a) for a in ("plain", "resnet", "preact", "mine")] == ["none", "A", "B", "none"]


def test_labels_name_a_shortcut_only_when_it_is_not_the_networks_own() -> None:
    assert label("plain", 20, "none") == "plain-20"
    assert label("resnet", 56, "A") == "ResNet-56" and label("resnet", 56, "B") == "ResNet-56 (B)"
    assert label("preact", 110, "B") == "PreAct-110" and label("preact", 110, "A") == "PreAct-110 (A)"
    assert label("rezero", 20, "none", "ReZero") == "ReZero-20" and label("mine", 8) == "mine-8"


def test_the_registry_holds_the_depth_rules() -> None:
    network("resnet").check_depth("cifar", 1202)
    network("resnet").check_depth("imagenet", 152)
    with pytest.raises(UsageError, match="nearest: 20 or 26"):
        network("plain").check_depth("cifar", 21)
    with pytest.raises(UsageError, match="use model.family=cifar"):
        network("preact").check_depth("imagenet", 18)
    with pytest.raises(UsageError, match="did you mean resnet"):
        network("resnt")


def test_a_run_records_its_shortcut_as_the_registry_says() -> None:
    assert shortcut_of({"arch": "plain", "shortcut": "B"}) == "none"
    assert shortcut_of({"arch": "resnet", "shortcut": "b"}) == "B"


def test_each_data_set_says_how_it_is_read_and_evaluated() -> None:
    assert FILE_BACKED == ("imagenet", "imagefolder")
    assert display_name("cifar10") == "CIFAR-10" and display_name("mine") == "mine"
    assert dataset("cifar10").eval_images({"split": "full"}) == 10_000
    assert dataset("cifar100").eval_images({"split": "holdout", "val_size": 5000}) == 15_000
    assert dataset("synthetic").eval_images({"test_size": 500, "split": "full"}) == 500  # not CIFAR's 10,000
    assert dataset("imagefolder").eval_images({"num_classes": 7}) == 350
    assert {d.recipe for d in DATASETS.values()} == {"cifar", "imagenet", "auto"}
    # an image folder's recipe is its config's (resolved when composed); a config from before the key: imagenet
    assert recipe_of({"name": "imagefolder", "recipe": "cifar"}) == "cifar" and not streams_files(
        {"name": "imagefolder", "recipe": "cifar"})
    assert recipe_of({"name": "imagefolder"}) == "imagenet" and streams_files({"name": "imagefolder"})
    assert recipe_of({"name": "cifar10", "recipe": "imagenet"}) == "cifar"  # CIFAR's own, whatever a key says
    with pytest.raises(UsageError, match="did you mean cifar10"):
        dataset("cifar1O")


def test_the_sweep_estimate_counts_the_registrys_test_set(tmp_path) -> None:
    from degradation.sweep.estimate import eval_images

    assert eval_images(compose(["data=synthetic", "data.test_size=321"]).data) == 321
    assert eval_images(compose(["data=cifar10", "data.split=holdout"]).data) == 15_000


@pytest.mark.parametrize(("overrides", "message"), [
    (["schedule.momentum=1"], "schedule.momentum=1 must be < 1"),
    (["schedule.gamma=1.5"], "schedule.gamma=1.5 must be <= 1"),
    (["schedule.warmup.lr=0"], "schedule.warmup.lr=0 must be > 0"),
    (["trainer.devices=0"], "trainer.devices=0 must be >= 1"),
    (["trainer.sync_batchnorm=3"], "trainer.sync_batchnorm=3; choose true or false"),
    (["trainer.progress=loud"], "trainer.progress='loud'; choose auto, lines, none"),
    (["data.normalize=zca"], "data.normalize='zca'; choose mean_image, channel"),
    (["data=synthetic", "data.train_size=big"], "data.train_size='big' is not a whole number"),
    (["model.width=-1"], "model.width=-1 must be > 0"),
    (["model.family=mnist"], "model.family='mnist'; choose cifar, imagenet"),
])
def test_the_schema_refuses_a_bad_value_when_the_config_is_composed(overrides, message) -> None:
    with pytest.raises(UsageError) as info:
        compose(overrides)  # before validate: the schema is checked as the config is composed
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_schema_check_leaves_the_config_as_composed() -> None:
    """Run ids hash the composed values: the typed check must not turn 1 into 1.0 or a name into an enum."""
    cfg = compose(["schedule.lr=1", "data=synthetic"])
    assert resolved_dict(cfg)["schedule"]["lr"] == 1 and isinstance(resolved_dict(cfg)["schedule"]["lr"], int)
    assert resolved_dict(cfg)["data"]["normalize"] == "mean_image"
    validate(cfg)
    assert run_id(cfg).startswith("resnet-20-A-synthetic-paper-s0-")


def test_the_text_of_numbers() -> None:
    assert percent(0.0734) == "7.34%" and percent(None) == "-" and percent(float("nan"), missing="?") == "?"
    assert percent(0.5, width=6) == " 50.00%" and percent(0.12345, digits=1) == "12.3%"
    assert points(7.3412) == "7.34" and points(7.3, std=0.123) == "7.30 ± 0.12" and points(None) == "—"
    assert points(7.3, std=float("nan")) == "7.30"
    assert clock(3723) == "1:02:03" and clock(-5) == "0:00:00"
    assert [duration(s) for s in (None, 45, 720, 3 * 3600 + 300, 5 * 86400)] == ["?", "45s", "12m", "3h 05m",
                                                                                 "5.0 days"]


def test_asking_the_registries_loads_no_torch() -> None:
    code = ("import sys; from degradation.models.registry import network; from degradation.data.registry import "
            "dataset; from degradation.conf import compose; network('resnet'); dataset('cifar10'); compose([]); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
