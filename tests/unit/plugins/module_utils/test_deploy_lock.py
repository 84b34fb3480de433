"""Unit tests of the deploy lock, on real files and real processes."""

import errno
import json
import multiprocessing
import os
import re
import stat
import time

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import deploy_lock as locks
from ansible_collections.unitehub.platform.plugins.module_utils.clock import parse_ts

FORK = multiprocessing.get_context("fork")


# --------------------------------------------------------------------- lock

def take(path, run_id="run-a", pid=None, **kwargs):
    return locks.acquire_lock(str(path), "alice", run_id, os.getpid() if pid is None else pid, **kwargs)


def dead_pid():
    proc = FORK.Process(target=int)
    proc.start()
    proc.join()
    assert not locks.pid_alive(proc.pid)
    return proc.pid


def test_acquire_writes_the_holder_and_is_reentrant(tmp_path):
    path = tmp_path / "deploy.lock"
    first = take(path)
    assert first["acquired"] and first["broken"] is None
    doc = json.loads(path.read_text())
    assert {k: doc[k] for k in ("owner", "run_id", "pid", "host", "ttl")} == {
        "owner": "alice", "run_id": "run-a", "pid": os.getpid(), "host": locks.this_host(), "ttl": 1800}
    assert parse_ts(doc["started_at"]) == pytest.approx(time.time(), abs=5)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    again = take(path)
    assert not again["acquired"]
    assert again["lock"]["token"] == first["lock"]["token"]


def test_live_lock_is_refused_with_the_holder_named_even_with_force(tmp_path):
    path = tmp_path / "deploy.lock"
    take(path, run_id="run-a", now=time.time() - 125)
    for force in (False, True):
        with pytest.raises(locks.LockHeld) as err:
            take(path, run_id="run-b", pid=os.getpid(), force=force)
        message = str(err.value)
        assert "held by alice (run run-a, pid %d on %s)" % (os.getpid(), locks.this_host()) in message
        assert "taken 2m0" in message and "ttl 1800s" in message
        assert "force=true breaks only a stale lock" in message
        assert err.value.holder["stale"] is False
    assert json.loads(path.read_text())["run_id"] == "run-a"


def test_stale_by_ttl_needs_force_and_the_break_is_reported(tmp_path):
    path = tmp_path / "deploy.lock"
    take(path, run_id="run-a", now=time.time() - 3600)
    with pytest.raises(locks.LockHeld, match=r"stale: it is older than its ttl \(age 1h00m > ttl 1800s \+ 60s for clock "
                                             r"skew\). Rerun with force=true"):
        take(path, run_id="run-b")
    result = take(path, run_id="run-b", force=True)
    assert result["acquired"]
    assert result["broken"]["run_id"] == "run-a"
    assert result["broken"]["stale_reason"].startswith("it is older than its ttl")
    assert json.loads(path.read_text())["run_id"] == "run-b"


def test_stale_by_dead_pid_on_this_host(tmp_path):
    path = tmp_path / "deploy.lock"
    pid = dead_pid()
    take(path, run_id="run-a", pid=pid)
    with pytest.raises(locks.LockHeld, match="pid %d is no longer running on %s" % (pid, re.escape(locks.this_host()))):
        take(path, run_id="run-b")
    assert take(path, run_id="run-b", force=True)["broken"]["pid"] == pid


def test_dead_pid_on_another_host_is_not_judged(tmp_path):
    path = tmp_path / "deploy.lock"
    take(path, run_id="run-a", pid=dead_pid(), host="controller-elsewhere")
    with pytest.raises(locks.LockHeld) as err:
        take(path, run_id="run-b", force=True)
    assert err.value.holder["stale"] is False


def test_unreadable_lock_file_counts_as_held_until_its_mtime_passes_the_ttl(tmp_path):
    path = tmp_path / "deploy.lock"
    path.write_text("")
    with pytest.raises(locks.LockHeld, match="held by an unreadable lock file"):
        take(path, force=True)
    old = time.time() - 7200
    os.utime(path, (old, old))
    result = take(path, force=True)
    assert result["acquired"] and result["broken"]["readable"] is False


def test_dry_run_acquire_and_release_change_nothing(tmp_path):
    path = tmp_path / "deploy.lock"
    planned = take(path, dry_run=True)
    assert planned["acquired"] and planned["lock"]["run_id"] == "run-a"
    assert not path.exists()
    take(path)
    content = path.read_text()
    assert locks.release_lock(str(path), run_id="run-a", pid=os.getpid(), dry_run=True)["released"]
    assert path.read_text() == content


def test_release_by_holder_token_or_force_only(tmp_path):
    path = tmp_path / "deploy.lock"
    token = take(path)["lock"]["token"]
    with pytest.raises(locks.LockError, match=r"held by alice \(run run-a.*not by this run \(run run-b, pid %d\).*force=true"
                       % os.getpid()):
        locks.release_lock(str(path), run_id="run-b", pid=os.getpid())
    with pytest.raises(locks.LockError, match="not by this run"):
        locks.release_lock(str(path), run_id="run-a", pid=os.getpid() + 1)
    with pytest.raises(locks.LockError, match="not by this run"):
        locks.release_lock(str(path), token="not-the-token")
    assert path.exists()
    released = locks.release_lock(str(path), token=token)
    assert (released["released"], released["forced"], released["lock"]["run_id"]) == (True, False, "run-a")
    assert not path.exists()
    assert locks.release_lock(str(path), run_id="run-a", pid=os.getpid())["released"] is False

    take(path)
    forced = locks.release_lock(str(path), run_id="run-z", pid=1, force=True)
    assert forced["released"] and forced["forced"] and forced["lock"]["run_id"] == "run-a"
    assert not path.exists()


def test_lock_identity_is_validated(tmp_path):
    with pytest.raises(locks.LockError, match="pid 0 is not a process id"):
        take(tmp_path / "deploy.lock", pid=0)
    with pytest.raises(locks.LockError, match="run_id '' is empty"):
        take(tmp_path / "deploy.lock", run_id="")


def _contender(path, run_id, barrier, results):
    barrier.wait(10)
    try:
        locks.acquire_lock(path, "racer", run_id, os.getpid())
        results.put((run_id, "won"))
    except locks.LockHeld:
        results.put((run_id, "held"))


def test_concurrent_processes_exactly_one_wins(tmp_path):
    contenders = 6
    for round_number in range(10):
        path = str(tmp_path / ("deploy-%d.lock" % round_number))
        barrier, results = FORK.Barrier(contenders), FORK.Queue()
        procs = [FORK.Process(target=_contender, args=(path, "run-%d" % i, barrier, results))
                 for i in range(contenders)]
        for proc in procs:
            proc.start()
        outcomes = dict(results.get(timeout=30) for _unused in procs)
        for proc in procs:
            proc.join(10)
        winners = [run for run, outcome in outcomes.items() if outcome == "won"]
        assert len(winners) == 1, outcomes
        assert json.loads(open(path).read())["run_id"] == winners[0]


def test_a_lock_just_past_its_ttl_is_not_stale_within_the_clock_tolerance(tmp_path):
    path = tmp_path / "deploy.lock"
    take(path, run_id="run-a", ttl=100, now=time.time() - 130)
    with pytest.raises(locks.LockHeld, match="force=true breaks only a stale lock"):
        take(path, run_id="run-b", force=True)
    assert json.loads(path.read_text())["run_id"] == "run-a"


def test_a_lock_from_the_future_is_held_and_young(tmp_path):
    """A clock stepped back after the lock was taken: its age is 0, never negative."""
    path = tmp_path / "deploy.lock"
    take(path, run_id="run-a", now=time.time() + 3600)
    info = locks.read_lock(str(path))
    assert info["age_s"] == 0 and not info["stale"]


def test_a_failed_lock_write_leaves_no_lock_behind(tmp_path, monkeypatch):
    path = tmp_path / "deploy.lock"
    real_write = os.write

    def full_disk(fd, data):
        if os.fstat(fd).st_ino == os.stat(path).st_ino:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(locks.LockError, match="cannot create the deploy lock .*No space left on device"):
        take(path)
    monkeypatch.setattr(os, "write", real_write)
    assert not path.exists(), "an empty lock would block every deploy for its whole ttl"
    assert take(path, run_id="run-b")["acquired"]


def test_a_lock_path_that_is_a_directory_gives_a_clear_error(tmp_path):
    path = tmp_path / "deploy.lock"
    path.mkdir()
    for call in (lambda: take(path), lambda: locks.read_lock(str(path)),
                 lambda: locks.release_lock(str(path), run_id="run-a", pid=os.getpid())):
        with pytest.raises(locks.LockError, match="is not a regular file \\(it is a directory\\); remove it"):
            call()
