"""A data set is prepared once per root: two preparations at once give one download and one verified copy;
a failure leaves nothing behind; a sweep checks its data in the parent before it creates or launches anything."""

from __future__ import annotations

import multiprocessing
import time
import urllib.error
from pathlib import Path

import pytest
from _data_helpers import make_tiny_archive, publish_checksums
from _sweep_helpers import TINY

from degradation.cli import main
from degradation.data import cifar, fetch, load_cifar
from degradation.errors import UsageError


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A fake downloader serving the tiny official-format archive slowly, counting its downloads in a file."""
    archive, arrays = make_tiny_archive(tmp_path / "server", per_file=2)
    publish_checksums(monkeypatch, "cifar10", tmp_path / "server" / "cifar-10-batches-py", archive)
    log = tmp_path / "downloads.txt"
    log.touch()

    def slow_download(url: str, folder: Path, filename: str, md5: str) -> None:
        with log.open("a") as handle:
            handle.write(f"{url}\n")
        data = archive.read_bytes()
        with open(Path(folder) / filename, "wb") as out:  # written in pieces: a reader could catch it half-done
            for i in range(0, len(data), max(1, len(data) // 4)):
                out.write(data[i:i + max(1, len(data) // 4)])
                out.flush()
                time.sleep(0.1)
        if cifar._md5(Path(folder) / filename) != md5:
            raise RuntimeError("md5 mismatch")

    monkeypatch.setattr(cifar, "_download", slow_download)
    return {"log": log, "arrays": arrays}


def _prepare_in_child(root: str, start_at: float, out: str) -> None:
    time.sleep(max(0.0, start_at - time.time()))
    try:
        folder = fetch.prepare("cifar10", root)
        Path(out).write_text(str(folder))
    except BaseException as exc:  # reported to the parent through the file
        Path(out).write_text(f"error: {exc}")


def test_two_preparations_at_once_download_once_and_agree(tmp_path: Path, served: dict) -> None:
    root = tmp_path / "data"
    ctx = multiprocessing.get_context("fork")  # the children inherit the fake downloader and the tiny checksums
    start_at = time.time() + 0.5
    outs = [tmp_path / f"out{i}.txt" for i in range(2)]
    procs = [ctx.Process(target=_prepare_in_child, args=(str(root), start_at, str(o))) for o in outs]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    folder = root / "cifar-10-batches-py"
    assert [o.read_text() for o in outs] == [str(folder)] * 2
    assert len(served["log"].read_text().splitlines()) == 1  # one download, the other waited
    assert fetch.check("cifar10", root) == folder  # every file matches its published md5
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]  # no lock
    loaded = load_cifar("cifar10", root, download=False)
    assert loaded["train_x"].shape[0] == 10 and loaded["test_x"].shape[0] == 2


def test_failed_download_leaves_no_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, folder: Path, filename: str, md5: str) -> None:
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(cifar, "_download", offline)
    root = tmp_path / "data"
    with pytest.raises(UsageError, match="downloading it failed"):
        fetch.prepare("cifar10", root)
    assert not root.exists()


def test_data_fetch_and_check_commands(tmp_path: Path, served: dict, capsys) -> None:
    root = tmp_path / "data"
    assert main(["data", "check", "cifar10", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "degradation data fetch cifar10" in err and not root.exists()
    assert main(["data", "fetch", "cifar10", "--root", str(root)]) == 0
    assert f"ready in {(root / 'cifar-10-batches-py').absolute()}" in capsys.readouterr().out
    assert main(["data", "fetch", "cifar10", "--root", str(root)]) == 0  # the second time: found, not downloaded
    assert len(served["log"].read_text().splitlines()) == 1
    batch = root / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-10])
    assert main(["data", "check", "cifar10", "--root", str(root)]) == 2
    assert "data_batch_3 is truncated or corrupt" in capsys.readouterr().err


def test_broken_folder_is_replaced_in_one_rename(tmp_path: Path, served: dict) -> None:
    root = tmp_path / "data"
    (root / "cifar-10-batches-py").mkdir(parents=True)
    (root / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"half")
    folder = fetch.prepare("cifar10", root)
    assert fetch.check("cifar10", root) == folder
    assert not [p for p in root.iterdir() if p.name.startswith(".")]


def test_sweep_without_data_stops_before_creating_anything(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEGRADATION_DATA", raising=False)
    code = main(["sweep", "--data", "cifar10", "--jobs", "2", "--preset", "smoke", "--depths", "8", "--",
                 "data.download=false", *[t for t in TINY if not t.startswith("data.")]])
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: CIFAR-10 is not under data/"), lines
    assert list(tmp_path.iterdir()) == []  # no results folder, no data folder


def test_sweep_prepares_data_once_in_the_parent(tmp_path: Path, served: dict, monkeypatch, capsys) -> None:
    """The parent fetches (fake download) before it launches anything; a dry run fetches nothing."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "data"
    results = tmp_path / "results"
    args = ["sweep", "--data", "cifar10", "--preset", "smoke", "--depths", "8,14", "--results", str(results),
            "--jobs", "2", "--", f"data.root={root}", "trainer.threads=1", "trainer.accelerator=cpu"]
    assert main([*args[:-4], "--dry-run", *args[-4:]]) == 0 and not root.exists()
    assert "downloaded once before the runs start" in capsys.readouterr().out
    seen: list[tuple[int, bool]] = []

    def launch(self, cells):  # stands in for the process pool: what the runs would find at launch
        seen.append((len(cells), fetch.check("cifar10", root).is_dir()))
        return []

    monkeypatch.setattr("degradation.sweep.launch.LocalLauncher.run", launch)
    assert main(args) == 0, capsys.readouterr()
    assert seen == [(4, True)] and len(served["log"].read_text().splitlines()) == 1
    assert main(args) == 0  # prepared already: no second download
    assert len(served["log"].read_text().splitlines()) == 1
