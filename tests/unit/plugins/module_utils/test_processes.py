"""Unit tests of plugins/module_utils/processes.py on real processes."""

import multiprocessing
import os
import signal
import subprocess
import time

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils.processes import (
    PidError,
    checked_pid,
    pid_alive,
    running_pid,
    signal_checked_pid,
)
from ansible_collections.unitehub.platform.plugins.module_utils.fileio import read_text
from ansible_collections.unitehub.platform.tests.support.waiting import wait_until


def dead_pid():
    proc = multiprocessing.get_context("fork").Process(target=int)
    proc.start()
    proc.join()
    return proc.pid


def test_pid_alive():
    assert pid_alive(os.getpid())
    assert not pid_alive(dead_pid())
    for not_a_pid in (0, -1, True, "1", None, 2 ** 80):
        assert not pid_alive(not_a_pid)


def test_running_pid_reads_a_pid_file(tmp_path):
    pidfile = tmp_path / "app.pid"
    assert running_pid(str(pidfile)) is None
    pidfile.write_text("%d\n" % os.getpid())
    assert running_pid(str(pidfile)) == os.getpid()
    pidfile.write_text("%d\n" % dead_pid())
    assert running_pid(str(pidfile)) is None
    pidfile.write_text("not a pid\n")
    assert running_pid(str(pidfile)) is None
    assert running_pid(str(tmp_path)) is None, "a directory is no pid file"


# --- signalling only the process a pid file should name ------------------------------------

def started_sleep():
    """``sleep 60``, once it runs sleep: right after the fork it is still a copy of this process."""
    # SIGHUP back to its default action: a runner under nohup would hand its ignore down.
    proc = subprocess.Popen(["sleep", "60"], preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    wait_until(lambda: read_text("/proc/%d/comm" % proc.pid) == "sleep\n", 5, what="sleep to start")
    return proc


@pytest.fixture
def sleeper():
    """A real process that SIGHUP would end (its default action), so a signal shows."""
    proc = started_sleep()
    yield proc
    proc.kill()
    proc.wait()


def pidfile_of(tmp_path, pid):
    path = tmp_path / "pgbouncer.pid"
    path.write_text("%d\n" % pid)
    return str(path)


def test_a_pid_file_naming_another_program_is_refused_and_nothing_is_signalled(tmp_path, sleeper):
    pidfile = pidfile_of(tmp_path, sleeper.pid)

    with pytest.raises(PidError, match=r"names %d, which is 'sleep' \(sleep\), not pgbouncer: refusing" % sleeper.pid):
        signal_checked_pid(pidfile, "pgbouncer", os.getuid(), signal.SIGHUP)
    with pytest.raises(PidError, match="not pgbouncer"):
        checked_pid(pidfile, "pgbouncer", os.getuid())
    time.sleep(0.2)
    assert sleeper.poll() is None, "the process got a signal"


def test_a_process_of_another_user_is_refused_and_nothing_is_signalled(tmp_path, sleeper):
    pidfile = pidfile_of(tmp_path, sleeper.pid)
    other_uid = os.getuid() + 1

    with pytest.raises(PidError, match="a sleep run by uid %d .*not by uid %d: refusing" % (os.getuid(), other_uid)):
        signal_checked_pid(pidfile, "sleep", other_uid, signal.SIGHUP)
    time.sleep(0.2)
    assert sleeper.poll() is None, "the process got a signal"


def test_the_checked_process_gets_the_signal(tmp_path, sleeper):
    pidfile = pidfile_of(tmp_path, sleeper.pid)

    assert checked_pid(pidfile, "sleep", os.getuid()) == sleeper.pid
    assert signal_checked_pid(pidfile, "sleep", os.getuid(), signal.SIGHUP) == sleeper.pid
    assert sleeper.wait(timeout=5) == -signal.SIGHUP


@pytest.mark.parametrize("content, words", [
    (None, "does not exist"),
    ("1\n", "not a process id"),
    ("0\n", "not a process id"),
    ("12 34\n", "not a process id"),
    ("-5\n", "not a process id"),
])
def test_a_pid_file_without_a_usable_pid_is_refused(tmp_path, content, words):
    path = tmp_path / "pgbouncer.pid"
    if content is not None:
        path.write_text(content)
    with pytest.raises(PidError, match=words):
        signal_checked_pid(str(path), "pgbouncer", os.getuid(), signal.SIGHUP)


def test_a_pid_that_no_longer_runs_is_refused(tmp_path):
    with pytest.raises(PidError, match="which is not running"):
        signal_checked_pid(pidfile_of(tmp_path, dead_pid()), "pgbouncer", os.getuid(), signal.SIGHUP)


def test_where_proc_hides_the_executable_the_command_name_and_uid_decide(tmp_path, monkeypatch):
    proc_root = tmp_path / "proc"
    (proc_root / "4242").mkdir(parents=True)
    (proc_root / "4242" / "comm").write_text("pgbouncer\n")
    (proc_root / "4242" / "status").write_text("Name:\tpgbouncer\nUid:\t105\t105\t105\t105\n")

    def hidden(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(os, "readlink", hidden)
    pidfile = pidfile_of(tmp_path, 4242)

    assert checked_pid(pidfile, "pgbouncer", 105, proc=str(proc_root)) == 4242
    with pytest.raises(PidError, match="run by uid 105 .*not by uid 0"):
        checked_pid(pidfile, "pgbouncer", 0, proc=str(proc_root))
