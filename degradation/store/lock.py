"""One lock per run folder, so that two sweeps (or a sweep and `degradation train`) never train one run twice.

The lock is `<run>/.lock`, created with O_EXCL and holding JSON: pid, hostname, the process's start time (so a
recycled pid is not mistaken for the owner), the SLURM/submitit job id when there is one, and a random token.

A lock is stale, and is taken over, when its owner is gone: on this host, no process with that pid and start
time; on another host (which this host cannot see), a lock left by our own job id (a requeued SLURM job
restarting on another node), or one whose heartbeat stopped: the holder touches the lock file every
HEARTBEAT_S while it holds it, and a lock that records a lease (`lease_s`, LEASE_S) and has not been touched
for that long is taken over, with one line on stderr naming the owner (its node died, say). A foreign lock
without a lease (written by an older version) is presumed live; the message then says how to clear it by hand.

Why not filelock's SoftFileLease: a contender there measures expiry on its own monotonic clock, so it must
watch an unchanged claim for the whole lease before taking it (a sweep decides in one look); its hold cannot
be handed to the training process a sweep starts (the token below); and `status`, the sweep and the results
read this file's JSON owner (pid, host, job) to say who trains a run.

A process started under a held lock (the sweep launching `python -m degradation.train`) finds the lock's token
in DEGRADATION_LOCK_TOKEN and enters `run_lock` without taking it again, so the training process may always
call `run_lock` whether or not a sweep started it.

A lock file holding a bare pid (what an flock-based trainer writes) is read as "that pid on this host".
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from degradation.errors import UsageError, unwritable

LOCK_FILE = ".lock"  # in the run folder, held by the process training the run
TOKEN_ENV = "DEGRADATION_LOCK_TOKEN"
TAKEOVER_SUFFIX = ".takeover"
UNREADABLE_GRACE_S = 60.0  # an empty or half-written lock younger than this is being created, not stale
HEARTBEAT_S = 60.0  # a holder touches its lock this often
LEASE_S = 600.0  # a foreign lock untouched this long is taken over: 10 heartbeats, room for clock skew and NFS


class LockOwner(TypedDict, total=False):
    """The JSON a lock file holds (and what is read back from it): who trains the run, and since when."""

    pid: Any  # int; "?" where a lock could not be read
    hostname: str | None  # None: this host (a bare-pid lock)
    start: str | None  # the process's start time: a recycled pid is not the owner
    job: str | None  # SLURM/submitit job id
    token: str  # handed to the training process a sweep starts (TOKEN_ENV)
    created_at: str
    lease_s: float  # others may take over a lock untouched this long (absent in older locks)
    child_pid: int  # the training process a sweep started under this lock
    child_start: str | None
    mtime: float  # read back: when the lock file was last touched (the heartbeat)
    legacy: bool  # read back: a bare pid, as an flock-based trainer writes
    unreadable: bool  # read back: empty or half-written


class RunLocked(UsageError):
    """The run is held by a live process; the message names it."""

    def __init__(self, run_dir: Path, owner: LockOwner) -> None:
        self.run_dir = Path(run_dir)
        self.owner = owner
        super().__init__(f"run {self.run_dir.name} is being trained by {describe_owner(owner)}; wait for it or stop "
                         f"it{clear_hint(self.run_dir / LOCK_FILE, owner)}")


def foreign(owner: LockOwner) -> bool:
    return owner.get("hostname") not in (None, socket.gethostname())


def heartbeat_age(owner: LockOwner) -> float:
    """Seconds since the holder last touched the lock (the file's mtime, set by the file server on NFS)."""
    return max(0.0, time.time() - float(owner.get("mtime", time.time())))


def describe_owner(owner: LockOwner) -> str:
    pid = owner.get("child_pid") or owner.get("pid", "?")
    where = owner.get("hostname") or "this host"
    job = f", job {owner['job']}" if owner.get("job") else ""
    beat = f", heartbeat {heartbeat_age(owner):.0f} s ago" if foreign(owner) and owner.get("lease_s") else ""
    return f"pid {pid} on {where}{job}{beat}"


def clear_hint(path: Path, owner: LockOwner) -> str:
    """For a lock held on another host: how to clear it by hand when that host or job is gone."""
    if not foreign(owner):
        return ""
    lease = owner.get("lease_s")
    after = f"; else it is taken over after {float(lease) / 60:.0f} min without a heartbeat" if lease else ""
    return f"; if {owner.get('hostname')} or its job is gone, remove {path} by hand{after}"


def _process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (Linux), to tell the owner from a later process reusing its pid."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[-1].split()[19]  # field 22 of stat, counted after the command name


def pid_alive(pid: int, start: str | None = None) -> bool:
    """Whether process `pid` exists (and, given its start time, is still the same process)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except OSError:
        return False
    if start is not None:
        now = _process_start(pid)
        return now is None or now == start
    return True


@functools.lru_cache(maxsize=1)
def current_job_id() -> str | None:
    """The submitit / SLURM job this process runs in (a requeued job keeps it), if any."""
    try:
        import submitit

        env = submitit.JobEnvironment()
        return str(env.job_id)
    except Exception:
        pass
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def read_lock(run_dir: str | os.PathLike, name: str = LOCK_FILE) -> LockOwner | None:
    """The lock's owner as a dict; None when there is no lock. Unreadable content -> {"unreadable": True}."""
    path = Path(run_dir) / name
    try:
        text = path.read_text()
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    except OSError:
        return {"unreadable": True, "mtime": time.time()}
    text = text.strip()
    if text.isdigit():
        return {"pid": int(text), "hostname": None, "legacy": True, "mtime": mtime}
    try:
        owner = json.loads(text)
        if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int):
            raise ValueError("no pid")
    except ValueError:
        return {"unreadable": True, "mtime": mtime}
    owner["mtime"] = mtime
    return LockOwner(**owner)


def owner_alive(owner: LockOwner) -> bool:
    """Whether the lock's owner may still be training (see the module docstring for the rules)."""
    if owner.get("unreadable"):
        return time.time() - float(owner.get("mtime", 0)) < UNREADABLE_GRACE_S
    if foreign(owner):
        job = current_job_id()
        if job and owner.get("job") == job:
            return False  # our own job, requeued onto another node: whatever held it before is gone
        lease = owner.get("lease_s")
        return not (isinstance(lease, int | float) and heartbeat_age(owner) > float(lease))
    pids = [(owner["pid"], owner.get("start"))]
    if owner.get("child_pid"):
        pids.append((owner["child_pid"], owner.get("child_start")))
    return any(pid_alive(int(pid), start) for pid, start in pids)


def live_owner(run_dir: str | os.PathLike) -> LockOwner | None:
    """The owner of a live lock on the run, or None when the run is free (no lock, or a stale one)."""
    owner = read_lock(run_dir)
    if owner is None or not owner_alive(owner):
        return None
    if os.environ.get(TOKEN_ENV) and owner.get("token") == os.environ.get(TOKEN_ENV):
        return None  # held for us by our parent
    return owner


@dataclass
class Lock:
    """A held lock. `release()` removes the file only while it is still ours."""

    run_dir: Path
    owner: LockOwner
    inherited: bool = False
    child_pid: int | None = field(default=None)
    name: str = LOCK_FILE

    @property
    def path(self) -> Path:
        return self.run_dir / self.name

    _beat: threading.Event | None = field(default=None, repr=False)

    @property
    def token(self) -> str:
        return str(self.owner["token"])

    def start_heartbeat(self) -> None:
        """Touch the lock every HEARTBEAT_S from a daemon thread while it is ours, so other hosts see it live."""
        if self._beat is not None:
            return
        self._beat = threading.Event()
        threading.Thread(target=self._heartbeat, args=(self._beat,), name=f"lock-heartbeat {self.run_dir.name}",
                         daemon=True).start()

    def _heartbeat(self, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_S):
            current = read_lock(self.run_dir, self.name)
            if current is None or current.get("token") != self.token:
                return  # released, or taken over: never refresh someone else's lock
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def set_child(self, pid: int) -> None:
        """Record the training process we started, so the lock stays live even if we die first."""
        self.child_pid = pid
        self.owner = {**self.owner, "child_pid": pid, "child_start": _process_start(pid)}
        _replace_with(self.path, self.owner)

    def release(self) -> None:
        if self._beat is not None:
            self._beat.set()
        if self.inherited:
            return
        current = read_lock(self.run_dir, self.name)
        if current is None:
            return
        ours = current.get("token") == self.token
        # an flock-based trainer rewrites the file with its bare pid: still ours when that is our child or us
        clobbered = current.get("legacy") and current.get("pid") in (self.child_pid, os.getpid())
        if ours or clobbered:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def _new_owner() -> LockOwner:
    pid = os.getpid()
    return {
        "pid": pid,
        "hostname": socket.gethostname(),
        "start": _process_start(pid),
        "job": current_job_id(),
        "token": secrets.token_hex(8),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "lease_s": LEASE_S,  # others may take the lock over when it goes this long without a heartbeat
    }


def _create(path: Path, owner: LockOwner) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(owner))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:  # a full disk: an empty lock would look "being created" to others for a minute
        with contextlib.suppress(OSError):
            path.unlink()
        raise unwritable(path, exc) from None
    return True


def _replace_with(path: Path, owner: LockOwner) -> None:
    """Write `owner` to the lock through a temporary file (the lock file is never seen half-written)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(owner))
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise unwritable(path, exc) from None


def _take_over(path: Path, stale: LockOwner, owner: LockOwner) -> bool:
    """Replace a stale lock with ours; a guard file makes sure only one process does so at a time."""
    guard = path.with_name(path.name + TAKEOVER_SUFFIX)
    try:
        fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        with contextlib.suppress(OSError):
            if time.time() - guard.stat().st_mtime > UNREADABLE_GRACE_S:
                guard.unlink()  # left by a process killed in the middle of a takeover
        return False
    os.close(fd)
    try:
        again = read_lock(path.parent, path.name)
        if again is not None and (again.get("token"), again.get("pid")) != (stale.get("token"), stale.get("pid")):
            return False  # someone else changed it meanwhile
        if again is not None and owner_alive(again):
            return False
        _replace_with(path, owner)
        if foreign(stale) and not stale.get("unreadable"):
            print(f"took over the lock {path} from {describe_owner(stale)}: no heartbeat for "
                  f"{heartbeat_age(stale) / 60:.0f} min (lease {float(stale.get('lease_s') or 0) / 60:.0f} min)",
                  file=sys.stderr, flush=True)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            guard.unlink()


def _held(lock: Lock) -> Lock:
    lock.start_heartbeat()
    return lock


def try_acquire(run_dir: str | os.PathLike, name: str = LOCK_FILE) -> Lock | LockOwner:
    """Take the run's lock: a `Lock`, or the live owner's dict when someone else holds it.

    Creates the run folder (the lock lives in it); call only once the run is known to be valid. `name`: another
    lock file in the folder (a data root holds one per data set, see `wait_lock`).
    """
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise unwritable(run_dir, exc) from None
    path = run_dir / name
    token = os.environ.get(TOKEN_ENV)
    for _ in range(5):
        owner = _new_owner()
        if _create(path, owner):
            return _held(Lock(run_dir, owner, name=name))
        current = read_lock(run_dir, name)
        if current is None:
            continue  # released between our attempt and our look: try again
        if token and current.get("token") == token:
            return _held(Lock(run_dir, current, inherited=True, name=name))  # the child beats too: it may outlive us
        if owner_alive(current):
            return current
        if _take_over(path, current, owner):
            return _held(Lock(run_dir, owner, name=name))
    current = read_lock(run_dir, name)
    return current or {"pid": "?", "hostname": None}


@contextlib.contextmanager
def wait_lock(folder: str | os.PathLike, name: str, *, poll_s: float = 0.2,
              on_wait: Callable[[LockOwner], None] | None = None) -> Iterator[Lock]:
    """Hold lock file `name` in `folder`, waiting while a live process holds it (once: `on_wait(owner)`).

    For work that every process needs done once, such as preparing a data set: the second process waits, then
    finds the work done. Same file format and stale take-over as a run's lock.
    """
    told = False
    while True:
        got = try_acquire(folder, name)
        if isinstance(got, Lock):
            break
        if on_wait is not None and not told:
            on_wait(got)
            told = True
        time.sleep(poll_s)
    try:
        yield got
    finally:
        got.release()


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike) -> Iterator[Lock]:
    """Hold the run's lock for the duration; RunLocked (a one-line UsageError) when a live process holds it.

    The training process should wrap its work in this: `with run_lock(run_dir(cfg)): ...`.
    """
    got = try_acquire(run_dir)
    if not isinstance(got, Lock):
        raise RunLocked(Path(run_dir), got)
    try:
        yield got
    finally:
        got.release()
