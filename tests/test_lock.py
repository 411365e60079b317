"""The per-run lock: taken with O_EXCL, live owners respected, stale ones taken over, handed down to a child."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from _sweep_helpers import dead_pid

from degradation.errors import UsageError
from degradation.store import lock as lock_mod
from degradation.store.lock import TOKEN_ENV, Lock, live_owner, read_lock, run_lock, try_acquire


def write_lock(run_dir, **owner) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / ".lock").write_text(json.dumps({"hostname": socket.gethostname(), "token": "theirs", **owner}))


def test_the_lock_names_its_owner_and_goes_on_release(tmp_path) -> None:
    run = tmp_path / "runs" / "r1"
    with run_lock(run) as held:
        owner = json.loads((run / ".lock").read_text())
        assert owner["pid"] == os.getpid() and owner["hostname"] == socket.gethostname()
        assert owner["token"] == held.token and owner["start"] == lock_mod._process_start(os.getpid())
        assert live_owner(run)["pid"] == os.getpid()
    assert not (run / ".lock").exists()


def test_a_live_owner_keeps_the_run(tmp_path, sleeper) -> None:
    run = tmp_path / "r"
    write_lock(run, pid=sleeper.pid, start=lock_mod._process_start(sleeper.pid))
    got = try_acquire(run)
    assert not isinstance(got, Lock) and got["pid"] == sleeper.pid
    with pytest.raises(UsageError, match=f"run r is being trained by pid {sleeper.pid} on "), run_lock(run):
        pass
    assert json.loads((run / ".lock").read_text())["pid"] == sleeper.pid  # untouched


@pytest.mark.parametrize(
    "owner",
    [
        {"pid": "dead"},                                   # the process is gone
        {"pid": "self", "start": "1"},                     # the pid was reused by another process
        {"pid": "dead", "child_pid": "dead"},              # a sweep and its child, both gone
    ],
    ids=["dead pid", "recycled pid", "dead sweep and child"],
)
def test_a_stale_lock_is_taken_over(tmp_path, owner) -> None:
    run = tmp_path / "r"
    values = {k: dead_pid() if v == "dead" else os.getpid() if v == "self" else v for k, v in owner.items()}
    write_lock(run, **values)
    assert live_owner(run) is None
    with run_lock(run) as held:
        assert json.loads((run / ".lock").read_text())["token"] == held.token
    assert not (run / ".lock").exists()


def test_a_sweep_whose_child_still_trains_keeps_the_run(tmp_path, sleeper) -> None:
    run = tmp_path / "r"
    write_lock(run, pid=dead_pid(), child_pid=sleeper.pid)
    assert live_owner(run)["child_pid"] == sleeper.pid


def test_a_bare_pid_lock_is_read_as_that_pid_here(tmp_path, sleeper) -> None:
    run = tmp_path / "r"
    run.mkdir()
    (run / ".lock").write_text(f"{sleeper.pid}\n")
    assert live_owner(run)["pid"] == sleeper.pid
    (run / ".lock").write_text(f"{dead_pid()}\n")
    assert live_owner(run) is None and isinstance(try_acquire(run), Lock)


def test_another_hosts_lock_is_presumed_live_unless_it_is_our_requeued_job(tmp_path, monkeypatch) -> None:
    run = tmp_path / "r"
    write_lock(run, pid=dead_pid(), hostname="node-17", job="4242_3")
    monkeypatch.setattr(lock_mod, "current_job_id", lambda: None)
    assert live_owner(run)["hostname"] == "node-17"
    monkeypatch.setattr(lock_mod, "current_job_id", lambda: "4242_3")
    assert live_owner(run) is None
    assert isinstance(try_acquire(run), Lock)


def test_a_half_written_lock_is_live_while_young_and_stale_when_old(tmp_path) -> None:
    run = tmp_path / "r"
    run.mkdir()
    (run / ".lock").write_text("")
    assert live_owner(run) == {"unreadable": True, "mtime": pytest.approx(time.time(), abs=5)}
    old = time.time() - 3600
    os.utime(run / ".lock", (old, old))
    assert live_owner(run) is None


def test_a_child_started_under_the_lock_inherits_it(tmp_path, monkeypatch) -> None:
    run = tmp_path / "r"
    parent = try_acquire(run)
    assert isinstance(parent, Lock)
    monkeypatch.setenv(TOKEN_ENV, parent.token)
    assert live_owner(run) is None  # not an obstacle for the child it was taken for
    with run_lock(run) as inner:
        assert inner.inherited
    assert read_lock(run)["token"] == parent.token  # the child does not release its parent's lock
    monkeypatch.delenv(TOKEN_ENV)
    parent.release()
    assert not (run / ".lock").exists()


def test_release_removes_the_lock_a_flock_trainer_rewrote_with_its_pid(tmp_path, sleeper) -> None:
    run = tmp_path / "r"
    held = try_acquire(run)
    held.set_child(sleeper.pid)
    assert json.loads((run / ".lock").read_text())["child_pid"] == sleeper.pid
    (run / ".lock").write_text(f"{sleeper.pid}\n")  # what train's flock lock writes into the same file
    held.release()
    assert not (run / ".lock").exists()


def test_release_leaves_a_lock_that_someone_else_took_over(tmp_path) -> None:
    run = tmp_path / "r"
    held = try_acquire(run)
    write_lock(run, pid=os.getpid(), token="someone-else")
    held.release()
    assert json.loads((run / ".lock").read_text())["token"] == "someone-else"


def test_processes_racing_for_a_stale_lock_get_it_once(tmp_path) -> None:
    run, go = tmp_path / "r", tmp_path / "go"
    write_lock(run, pid=dead_pid())
    script = (
        "import os, sys, time; from degradation.store.lock import try_acquire, Lock\n"
        "print('ready', flush=True)\n"
        "while not os.path.exists(sys.argv[2]): time.sleep(0.001)\n"
        "got = try_acquire(sys.argv[1]); print('got' if isinstance(got, Lock) else 'busy', flush=True)\n"
        "sys.stdin.read()  # hold on (alive) until the test has every answer\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(run), str(go)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    assert [p.stdout.readline().strip() for p in procs] == ["ready"] * 4
    go.touch()
    answers = sorted(p.stdout.readline().strip() for p in procs)
    for p in procs:
        p.communicate("", timeout=30)
    assert answers == ["busy", "busy", "busy", "got"]


# A holder "on another host": this interpreter's lock module with another hostname and a short lease.
FOREIGN_HOLDER = r"""
import socket, sys, time
from degradation.store import lock
socket.gethostname = lambda: "node-dead-17"
lock.HEARTBEAT_S, lock.LEASE_S = 0.1, 1.5
got = lock.try_acquire(sys.argv[1])
print("held" if isinstance(got, lock.Lock) else "refused", flush=True)
time.sleep(600)
"""


def test_a_foreign_hosts_lock_lives_while_it_beats_and_is_taken_over_when_it_stops(tmp_path, capsys) -> None:
    run = tmp_path / "r"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen([sys.executable, "-c", FOREIGN_HOLDER, str(run)], stdout=subprocess.PIPE, text=True,
                              env=env)
    try:
        assert holder.stdout.readline().strip() == "held"
        time.sleep(2.5)  # longer than its lease: only its heartbeat keeps it live
        owner = live_owner(run)
        assert owner is not None and owner["hostname"] == "node-dead-17" and owner["lease_s"] == 1.5
        with pytest.raises(UsageError) as refused, run_lock(run):
            pass
        message = str(refused.value)
        assert "\n" not in message and f"pid {holder.pid} on node-dead-17" in message and "heartbeat" in message
        assert f"remove {run / '.lock'} by hand" in message and "taken over after" in message
    finally:
        holder.kill()  # the node dies: no more heartbeats
        holder.wait()
    time.sleep(2.0)
    capsys.readouterr()
    got = try_acquire(run)
    assert isinstance(got, Lock) and read_lock(run)["token"] == got.token
    line = capsys.readouterr().err
    assert line.count("\n") == 1 and f"took over the lock {run / '.lock'} from pid {holder.pid} on node-dead-17" in line
    assert "no heartbeat for" in line
    got.release()


def test_a_foreign_lock_without_a_lease_stays_live_and_says_how_to_clear_it(tmp_path) -> None:
    run = tmp_path / "r"
    write_lock(run, pid=12345, hostname="node-old", job="77")  # written by a version without heartbeats
    old = time.time() - 86400
    os.utime(run / ".lock", (old, old))
    with pytest.raises(UsageError, match=r"pid 12345 on node-old, job 77; wait for it or stop it; if node-old or "
                                         r"its job is gone, remove .*\.lock by hand$"), run_lock(run):
        pass


def test_the_holder_touches_its_lock_while_it_holds_it_and_stops_after(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(lock_mod, "HEARTBEAT_S", 0.05)
    run = tmp_path / "r"
    got = try_acquire(run)
    past = time.time() - 3600
    os.utime(run / ".lock", (past, past))
    time.sleep(0.5)
    assert time.time() - (run / ".lock").stat().st_mtime < 60  # refreshed by the heartbeat
    got.release()
    write_lock(run, pid=dead_pid(), hostname="node-2", lease_s=600)  # someone else's now
    os.utime(run / ".lock", (past, past))
    time.sleep(0.3)
    assert (run / ".lock").stat().st_mtime == pytest.approx(past, abs=1)  # our stopped beat leaves it alone
