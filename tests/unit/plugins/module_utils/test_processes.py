"""Unit tests of plugins/module_utils/processes.py on real processes."""

import multiprocessing
import os

from ansible_collections.unitehub.platform.plugins.module_utils.processes import pid_alive, running_pid


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
