"""The lock file of run and phase-2 folders: one holder, named when it is busy, taken over when it is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from mmxfer.runs import lock as lockmod
from mmxfer.runs.lock import FileLock, LockHeld, locked, read_holder


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_lock(folder, **record):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "LOCK").write_text(
        json.dumps({"host": lockmod.hostname(), "token": "other", **record})
    )


def test_held_lock_names_its_holder_and_is_released(tmp_path):
    folder = tmp_path / "run"
    with locked(folder, "run folder") as got:
        assert got
        holder = read_holder(folder / "LOCK")
        assert holder.pid == os.getpid() and holder.host == lockmod.hostname()
        with pytest.raises(
            LockHeld, match=rf"run folder {folder} is in use by pid {os.getpid()} on host"
        ):
            FileLock(folder, "run folder").acquire()
    assert not (folder / "LOCK").exists()
    assert not folder.exists()  # made only to hold the lock, and empty: removed again
    assert [p.name for p in tmp_path.iterdir()] == []


def test_lock_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path):
    _write_lock(tmp_path, pid=_dead_pid())
    start = time.monotonic()
    with locked(tmp_path) as got:
        assert got and read_holder(tmp_path / "LOCK").pid == os.getpid()
    assert time.monotonic() - start < 2
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_killed_but_unreaped_process_counts_as_dead(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_lock(tmp_path, pid=proc.pid)
        with pytest.raises(LockHeld):
            FileLock(tmp_path).acquire()
        proc.kill()
        time.sleep(0.3)  # a zombie until waited for: os.kill(pid, 0) still succeeds
        with locked(tmp_path) as got:
            assert got
    finally:
        proc.kill()
        proc.wait()


def test_reused_pid_is_not_the_holder(tmp_path):
    # a live pid, but it started at another time
    _write_lock(tmp_path, pid=os.getppid(), pid_started="1")
    with locked(tmp_path) as got:
        assert got


def test_lock_of_another_host_waits_for_the_heartbeat_timeout(tmp_path):
    _write_lock(tmp_path, pid=12345, host="node-that-is-gone")
    with pytest.raises(LockHeld, match="node-that-is-gone"):
        FileLock(tmp_path, stale_after=60).acquire()
    old = time.time() - 120
    os.utime(tmp_path / "LOCK", (old, old))  # no heartbeat for two minutes
    with FileLock(tmp_path, stale_after=60) as lock:
        assert lock.owned()


def test_stopped_heartbeat_of_another_host_is_waited_out_not_refused(tmp_path):
    _write_lock(tmp_path, pid=12345, host="node-that-died")
    old = time.time() - 100  # three heartbeats missed, not yet stale
    os.utime(tmp_path / "LOCK", (old, old))
    start = time.monotonic()
    lock = FileLock(tmp_path, heartbeat=30, stale_after=101.5)
    assert lock.acquire(poll=0.1) is True  # no LockHeld: it waited until the heartbeat timed out
    lock.release()
    assert 0.5 < time.monotonic() - start < 10


def test_a_lock_file_that_is_no_json_record_names_no_holder_and_goes_stale_by_age(tmp_path):
    # not the lock record: not read as one
    (tmp_path / "LOCK").write_text(f"{_dead_pid()}@{lockmod.hostname()}")
    holder = read_holder(tmp_path / "LOCK")
    assert (holder.pid, holder.host, holder.alive()) == (None, None, None)
    with pytest.raises(LockHeld, match="in use by an unknown process"):
        FileLock(tmp_path, heartbeat=30, stale_after=60).acquire()
    old = time.time() - 120
    os.utime(tmp_path / "LOCK", (old, old))  # no heartbeat for two minutes
    with FileLock(tmp_path, stale_after=60) as lock:
        assert lock.owned()


def test_heartbeat_touches_the_lock_while_held(tmp_path):
    lock = FileLock(tmp_path, heartbeat=0.05)
    lock.acquire()
    try:
        old = time.time() - 100
        os.utime(lock.path, (old, old))
        time.sleep(0.3)
        assert read_holder(lock.path).heartbeat_age < 5
    finally:
        lock.release()


def test_waiting_ends_when_the_work_is_done_or_the_holder_dies(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_lock(tmp_path, pid=proc.pid)
        done = tmp_path / "DONE"
        threading.Timer(0.3, done.touch).start()
        assert FileLock(tmp_path).acquire(wait=True, until=done.is_file, poll=0.05) is False
        done.unlink()
        threading.Timer(0.3, proc.kill).start()
        lock = FileLock(tmp_path)
        assert lock.acquire(wait=True, until=done.is_file, poll=0.05) is True
        lock.release()
    finally:
        proc.kill()
        proc.wait()


def test_two_takeovers_of_one_stale_lock_leave_one_holder(tmp_path):
    _write_lock(tmp_path, pid=_dead_pid())
    stale = read_holder(tmp_path / "LOCK")
    first = FileLock(tmp_path)
    first.acquire()
    try:
        # a second process read the stale record before the first took over, and acts on it now
        FileLock(tmp_path)._take_over(stale)
        assert first.owned()  # the new holder's lock was put back
    finally:
        first.release()
