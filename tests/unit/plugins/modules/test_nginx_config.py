# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""unitehub.platform.nginx_config run in-process, as Ansible would run it:
arguments in, JSON result on stdout, exit code. nginx is a fake script."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.unitehub.platform.plugins.modules import nginx_config

FAKE_NGINX = """#!/bin/sh
echo "$*" >> "{calls}"
case "$1" in
  -t)
    if grep -q broken "{target}" 2>/dev/null; then
      echo 'nginx: [emerg] unknown directive "broken"' >&2; exit 1
    fi
    echo 'nginx: configuration file /etc/nginx/nginx.conf test is successful' >&2; exit 0 ;;
  -s) exit 0 ;;
esac
exit 2
"""


@pytest.fixture
def env(tmp_path):
    target = tmp_path / "conf.d" / "site.conf"
    calls = tmp_path / "calls.log"
    binary = tmp_path / "nginx"
    binary.write_text(FAKE_NGINX.format(calls=calls, target=target))
    binary.chmod(0o755)
    pidfile = tmp_path / "nginx.pid"
    pidfile.write_text(str(os.getpid()))  # "running"

    class Env:
        path = target

        def args(self, **extra):
            base = dict(path=str(target), content="server {}\n", nginx_binary=str(binary), pid_file=str(pidfile))
            base.update(extra)
            return base

        @property
        def calls(self):
            return calls.read_text().splitlines() if calls.exists() else []

        def stop_nginx(self):
            pidfile.unlink()

    return Env()


def test_new_file_is_validated_written_and_reloaded(env, run_module):
    rc, result, _out = run_module(nginx_config, env.args())

    assert rc == 0, result
    assert result["changed"] is True
    assert result["reloaded"] is True
    assert result["path"] == str(env.path)
    assert "test is successful" in result["nginx_output"]
    assert env.path.read_text() == "server {}\n"
    assert stat.S_IMODE(env.path.stat().st_mode) == 0o644
    assert env.calls == ["-t", "-s reload"]
    assert "diff" not in result


def test_second_run_is_a_no_op(env, run_module):
    run_module(nginx_config, env.args())
    rc, result, _out = run_module(nginx_config, env.args())

    assert rc == 0
    assert result["changed"] is False
    assert result["reloaded"] is False
    assert env.calls == ["-t", "-s reload"]  # nothing more ran


def test_check_and_diff_mode_show_the_change_and_write_nothing(env, run_module):
    env.path.parent.mkdir()
    env.path.write_text("old\n")

    rc, result, _out = run_module(nginx_config, env.args(content="new\n", _ansible_check_mode=True, _ansible_diff=True))

    assert rc == 0
    assert result["changed"] is True
    assert result["reloaded"] is False
    assert result["diff"] == {
        "before": "old\n",
        "after": "new\n",
        "before_header": str(env.path),
        "after_header": str(env.path),
    }
    assert env.path.read_text() == "old\n"
    assert env.calls == []


def test_rejected_config_fails_with_nginx_output_and_restores(env, run_module):
    env.path.parent.mkdir()
    env.path.write_text("good\n")

    rc, result, _out = run_module(nginx_config, env.args(content="broken\n"))

    assert rc == 1
    assert result["failed"] is True
    assert "previous file was restored" in result["msg"]
    assert 'unknown directive "broken"' in result["msg"]
    assert 'unknown directive "broken"' in result["nginx_output"]
    assert result["reloaded"] is False
    assert env.path.read_text() == "good\n"
    assert env.calls == ["-t"]  # never reloaded


def test_no_reload_when_disabled(env, run_module):
    rc, result, _out = run_module(nginx_config, env.args(reload=False))

    assert rc == 0
    assert result["changed"] is True
    assert result["reloaded"] is False
    assert env.calls == ["-t"]


def test_stopped_nginx_is_not_reloaded(env, run_module):
    env.stop_nginx()
    rc, result, _out = run_module(nginx_config, env.args())

    assert rc == 0
    assert result["changed"] is True
    assert result["reloaded"] is False
    assert env.calls == ["-t"]


@pytest.mark.parametrize("mode, expected", [("0600", 0o600), ("640", 0o640), (0o600, 0o600)])
def test_mode_is_applied(env, run_module, mode, expected):
    rc, result, _out = run_module(nginx_config, env.args(mode=mode))
    assert rc == 0
    assert stat.S_IMODE(env.path.stat().st_mode) == expected


def test_mode_only_change_is_fixed_without_reload(env, run_module):
    run_module(nginx_config, env.args())
    rc, result, _out = run_module(nginx_config, env.args(mode="0600"))

    assert rc == 0
    assert result["changed"] is True
    assert result["reloaded"] is False
    assert stat.S_IMODE(env.path.stat().st_mode) == 0o600
    assert env.calls == ["-t", "-s reload"]


@pytest.mark.parametrize("mode", ["rw-r--r--", "0999", ""])
def test_bad_mode_fails_naming_the_value(env, run_module, mode):
    rc, result, _out = run_module(nginx_config, env.args(mode=mode))

    assert rc == 1
    assert repr(mode) in result["msg"]
    assert "'0644'" in result["msg"]
    assert not env.path.exists()


def test_relative_path_is_refused(env, run_module):
    rc, result, _out = run_module(nginx_config, env.args(path="conf.d/site.conf"))

    assert rc == 1
    assert "not absolute" in result["msg"]
