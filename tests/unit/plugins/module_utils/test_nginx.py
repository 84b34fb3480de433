# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""replace_validated / reload_nginx against a fake nginx binary.

The fake is a real executable script: ``-t`` copies the file under test to a
witness file (so a test can see what was in place while nginx checked it) and
fails when that file contains the word ``broken``; ``-s reload`` is recorded.
"""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import nginx

FAKE_NGINX = """#!/bin/sh
echo "$*" >> "{calls}"
case "$1" in
  -t)
    if [ -e "{target}" ]; then cp "{target}" "{witness}"; else rm -f "{witness}"; fi
    if [ -e "{target}" ] && grep -q broken "{target}"; then
      echo 'nginx: [emerg] unknown directive "broken" in {target}:1' >&2
      echo 'nginx: configuration file /etc/nginx/nginx.conf test failed' >&2
      exit 1
    fi
    echo 'nginx: the configuration file /etc/nginx/nginx.conf syntax is ok' >&2
    echo 'nginx: configuration file /etc/nginx/nginx.conf test is successful' >&2
    exit 0 ;;
  -s)
    exit {reload_rc} ;;
esac
exit 2
"""


class FakeNginx:
    def __init__(self, tmp_path, target, reload_rc=0):
        self.target = str(target)
        self.calls_file = tmp_path / "calls.log"
        self.witness = tmp_path / "seen-by-nginx-t.conf"
        self.binary = tmp_path / "nginx"
        self.binary.write_text(
            FAKE_NGINX.format(calls=self.calls_file, target=self.target, witness=self.witness, reload_rc=reload_rc)
        )
        self.binary.chmod(0o755)

    @property
    def calls(self):
        if not self.calls_file.exists():
            return []
        return self.calls_file.read_text().splitlines()


@pytest.fixture
def target(tmp_path):
    return tmp_path / "conf.d" / "app.conf"


def test_new_file_is_written_with_mode_after_nginx_accepts_it(tmp_path, target):
    fake = FakeNginx(tmp_path, target)
    result = nginx.replace_validated(str(target), "server { listen 8080; }\n", mode=0o640, nginx_bin=str(fake.binary))

    assert result["changed"] is True
    assert result["before"] == ""
    assert result["after"] == "server { listen 8080; }\n"
    assert "test is successful" in result["nginx_output"]
    assert target.read_text() == "server { listen 8080; }\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    # nginx -t ran with the candidate already in place
    assert fake.calls == ["-t"]
    assert fake.witness.read_text() == "server { listen 8080; }\n"


def test_unchanged_content_does_not_run_nginx(tmp_path, target):
    target.parent.mkdir()
    target.write_text("same\n")
    fake = FakeNginx(tmp_path, target)

    result = nginx.replace_validated(str(target), "same\n", nginx_bin=str(fake.binary))

    assert result["changed"] is False
    assert result["nginx_output"] == ""
    assert fake.calls == []


def test_check_mode_reports_the_change_and_touches_nothing(tmp_path, target):
    target.parent.mkdir()
    target.write_text("old\n")
    fake = FakeNginx(tmp_path, target)

    result = nginx.replace_validated(str(target), "new\n", nginx_bin=str(fake.binary), check_mode=True)

    assert result["changed"] is True
    assert (result["before"], result["after"]) == ("old\n", "new\n")
    assert target.read_text() == "old\n"
    assert fake.calls == []


def test_rejected_candidate_restores_the_previous_file(tmp_path, target):
    target.parent.mkdir()
    target.write_text("good config\n")
    target.chmod(0o644)
    fake = FakeNginx(tmp_path, target)

    with pytest.raises(nginx.NginxConfigError) as excinfo:
        nginx.replace_validated(str(target), "broken config\n", nginx_bin=str(fake.binary))

    assert "previous file was restored" in str(excinfo.value)
    assert str(target) in str(excinfo.value)
    assert 'unknown directive "broken"' in excinfo.value.output
    # the candidate was what nginx tested; the old content is back afterwards
    assert fake.witness.read_text() == "broken config\n"
    assert target.read_text() == "good config\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    # no temp file left behind by the atomic writes
    assert sorted(os.listdir(target.parent)) == ["app.conf"]


def test_rejected_new_file_is_removed_again(tmp_path, target):
    fake = FakeNginx(tmp_path, target)

    with pytest.raises(nginx.NginxConfigError):
        nginx.replace_validated(str(target), "broken\n", nginx_bin=str(fake.binary))

    assert not target.exists()
    assert fake.witness.read_text() == "broken\n"


def test_missing_nginx_binary_counts_as_a_failed_test(tmp_path, target):
    target.parent.mkdir()
    target.write_text("old\n")

    with pytest.raises(nginx.NginxConfigError) as excinfo:
        nginx.replace_validated(str(target), "new\n", nginx_bin=str(tmp_path / "no-such-nginx"))

    assert "could not run" in excinfo.value.output
    assert target.read_text() == "old\n"


def test_reload_signals_a_running_master(tmp_path, target):
    fake = FakeNginx(tmp_path, target)
    pidfile = tmp_path / "nginx.pid"
    pidfile.write_text("%d\n" % os.getpid())  # a pid that is certainly alive

    assert nginx.reload_nginx(str(fake.binary), str(pidfile)) is True
    assert fake.calls == ["-s reload"]


@pytest.mark.parametrize("pid_text", [None, "", "not-a-pid\n", "999999999\n"])
def test_reload_leaves_a_stopped_nginx_stopped(tmp_path, target, pid_text):
    fake = FakeNginx(tmp_path, target)
    pidfile = tmp_path / "nginx.pid"
    if pid_text is not None:
        pidfile.write_text(pid_text)

    assert nginx.nginx_master_pid(str(pidfile)) is None
    assert nginx.reload_nginx(str(fake.binary), str(pidfile)) is False
    assert fake.calls == []


def test_failed_reload_raises_with_output(tmp_path, target):
    fake = FakeNginx(tmp_path, target, reload_rc=1)
    pidfile = tmp_path / "nginx.pid"
    pidfile.write_text(str(os.getpid()))

    with pytest.raises(nginx.NginxConfigError, match="reload failed"):
        nginx.reload_nginx(str(fake.binary), str(pidfile))


def test_nginx_test_reports_success_and_output(tmp_path, target):
    fake = FakeNginx(tmp_path, target)
    ok, output = nginx.nginx_test(str(fake.binary))
    assert ok is True
    assert "syntax is ok" in output


def test_the_config_lock_serialises_writers_across_processes(tmp_path):
    """Two apps' switches on one host: the second waits until the first released the lock."""
    import multiprocessing
    import time

    from ansible_collections.unitehub.platform.plugins.module_utils.nginx import config_lock

    lock_path = str(tmp_path / "run" / "nginx-config.lock")
    log = tmp_path / "log"

    def writer(name, hold):
        with config_lock(lock_path):
            with open(log, "a", encoding="utf-8") as handle:
                handle.write("%s in\n" % name)
            time.sleep(hold)
            with open(log, "a", encoding="utf-8") as handle:
                handle.write("%s out\n" % name)

    fork = multiprocessing.get_context("fork")
    first = fork.Process(target=writer, args=("a", 0.4))
    first.start()
    time.sleep(0.1)
    second = fork.Process(target=writer, args=("b", 0))
    second.start()
    first.join(10)
    second.join(10)
    assert log.read_text().split("\n")[:4] == ["a in", "a out", "b in", "b out"]
