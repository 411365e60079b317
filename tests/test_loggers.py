"""logger=csv|tensorboard|wandb|mlflow: the curve parquet's numbers at its steps, plus the resolved config."""

from __future__ import annotations

import csv
import importlib.util
import json

import pytest
from _train_helpers import folder_of, tiny_cfg

from degradation.conf import compose, run_id, validate
from degradation.errors import UsageError
from degradation.store.runs import read_curves
from degradation.train.run import train


def _curve_rows(folder) -> list[tuple[int, str, str, float]]:
    frame = read_curves(folder)
    return sorted((int(r.step), r.split, r.metric, float(r.value)) for r in frame.itertuples())


def test_csv_logger_sends_the_parquet_numbers_and_the_config(tmp_path) -> None:
    cfg = tiny_cfg(tmp_path, "logger=csv")
    assert run_id(cfg) == run_id(tiny_cfg(tmp_path))  # a logger does not change what the run computes
    train(cfg)
    folder = folder_of(tmp_path, "logger=csv")
    with (folder / "logs" / "metrics.csv").open() as f:
        logged = sorted((int(r["step"]), r["split"], r["metric"], float(r["value"])) for r in csv.DictReader(f))
    assert logged == _curve_rows(folder)
    config = json.loads((folder / "logs" / "config.json").read_text())
    assert config["model"]["depth"] == 8 and config["logger"] == {"csv": {}}


def test_unknown_or_missing_logger_is_one_line(tmp_path) -> None:
    with pytest.raises(UsageError, match="logger"):
        validate(compose(["logger=nonsense"]))
    for name in ("tensorboard", "wandb", "mlflow"):
        if importlib.util.find_spec(name) is None:
            with pytest.raises(UsageError, match=f"pip install 'degradation\\[{name}\\]'"):
                validate(tiny_cfg(tmp_path, f"logger={name}"))
            assert not (tmp_path / "runs").exists()


def test_tensorboard_logger(tmp_path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tiny_cfg(tmp_path, "logger=tensorboard"))
    folder = folder_of(tmp_path, "logger=tensorboard")
    events = EventAccumulator(str(folder / "logs" / "tensorboard"))
    events.Reload()
    logged = sorted((e.step, *tag.split("/"), e.value) for tag in events.Tags()["scalars"]
                    for e in events.Scalars(tag))
    assert [r[:3] for r in logged] == [r[:3] for r in _curve_rows(folder)]
    assert [r[3] for r in logged] == pytest.approx([r[3] for r in _curve_rows(folder)], rel=1e-6)


def test_mlflow_logger(tmp_path) -> None:
    mlflow = pytest.importorskip("mlflow")
    train(tiny_cfg(tmp_path, "logger=mlflow"))
    folder = folder_of(tmp_path, "logger=mlflow")
    client = mlflow.tracking.MlflowClient(tracking_uri=(folder / "logs" / "mlruns").absolute().as_uri())
    run = client.search_runs([client.get_experiment_by_name("degradation").experiment_id])[0]
    logged = sorted((m.step, *key.split("/"), m.value) for key in run.data.metrics
                    for m in client.get_metric_history(run.info.run_id, key))
    assert [r[:3] for r in logged] == [r[:3] for r in _curve_rows(folder)]
    assert run.data.params["model.depth"] == "8"


def test_wandb_offline_logger(tmp_path, monkeypatch) -> None:
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    train(tiny_cfg(tmp_path, "logger=wandb"))
    folder = folder_of(tmp_path, "logger=wandb")
    assert list((folder / "logs" / "wandb").glob("offline-run-*"))


def test_several_loggers_at_once_each_get_every_row(tmp_path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = tiny_cfg(tmp_path, "logger=[csv,tensorboard]")
    assert run_id(cfg) == run_id(tiny_cfg(tmp_path))
    train(cfg)
    folder = folder_of(tmp_path, "logger=[csv,tensorboard]")
    with (folder / "logs" / "metrics.csv").open() as f:
        logged = sorted((int(r["step"]), r["split"], r["metric"], float(r["value"])) for r in csv.DictReader(f))
    assert logged == _curve_rows(folder)
    events = EventAccumulator(str(folder / "logs" / "tensorboard"))
    events.Reload()
    steps = sorted((e.step, *tag.split("/")) for tag in events.Tags()["scalars"] for e in events.Scalars(tag))
    assert steps == [r[:3] for r in _curve_rows(folder)]


class FakeWandb:
    """Stands in for the wandb package: records what wandb.init was asked for."""

    def __init__(self) -> None:
        self.inits: list[dict] = []
        self.logged: list[tuple[int, dict]] = []

    def module(self):
        import importlib.machinery
        import types

        module = types.ModuleType("wandb")
        module.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
        fake = self

        class Run:
            def log(self, values: dict, step: int) -> None:
                fake.logged.append((step, values))

            def finish(self) -> None:
                pass

        def init(**kwargs):
            fake.inits.append(kwargs)
            return Run()

        module.init = init
        return module


@pytest.mark.parametrize("extra,mode", [((), "offline"), (("logger.wandb.mode=online",), "online")])
def test_wandb_runs_offline_by_default_and_online_by_setting(tmp_path, monkeypatch, extra, mode) -> None:
    fake = FakeWandb()
    monkeypatch.setitem(__import__("sys").modules, "wandb", fake.module())
    train(tiny_cfg(tmp_path, "logger=[wandb,csv]", *extra))
    assert [init["mode"] for init in fake.inits] == [mode]
    assert fake.inits[0]["project"] == "degradation" and fake.inits[0]["id"] == fake.inits[0]["name"]
    folder = folder_of(tmp_path, "logger=[wandb,csv]", *extra)
    assert sorted((step, *key.split("/")) for step, values in fake.logged for key in values) == [
        r[:3] for r in _curve_rows(folder)]
    assert (folder / "logs" / "metrics.csv").is_file()


@pytest.mark.parametrize("override,message", [
    ("logger.wandb.mode=sometimes", "logger.wandb.mode='sometimes'; choose offline or online"),
    ("+logger.nonsense={}", "unknown logger 'nonsense'"),
])
def test_bad_logger_settings_are_one_line_before_anything_is_made(tmp_path, monkeypatch, override, message) -> None:
    monkeypatch.setitem(__import__("sys").modules, "wandb", FakeWandb().module())
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace("[", r"\[")):
        validate(tiny_cfg(tmp_path, "logger=wandb", override))
    assert not (tmp_path / "runs").exists()


def test_an_older_runs_logger_config_still_reads(tmp_path) -> None:
    from omegaconf import OmegaConf

    from degradation.conf import chosen_loggers

    assert chosen_loggers(OmegaConf.create({"name": "wandb", "project": "p"})) == {"wandb": {"project": "p"}}
    assert chosen_loggers(OmegaConf.create({"name": "none"})) == {} and chosen_loggers(None) == {}
    assert chosen_loggers(compose(["logger=[]"]).get("logger")) == {}
