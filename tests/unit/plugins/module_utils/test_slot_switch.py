"""Unit tests of the switch transaction with a fake nginx binary and fake answers."""

import os
import stat

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import slot_switch as sw


@pytest.fixture
def fake_nginx(tmp_path):
    """A stand-in nginx: `-t` fails while a file named BROKEN exists; `-s reload`
    is recorded in reloads.log. The pidfile points at this test process."""
    log = tmp_path / "reloads.log"
    script = tmp_path / "nginx"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-t" ]; then [ -e "%s" ] && { echo "emerg: broken" >&2; exit 1; }; echo ok; exit 0; fi\n'
        'if [ "$1" = "-s" ]; then echo reload >> "%s"; exit 0; fi\n' % (tmp_path / "BROKEN", log)
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    pidfile = tmp_path / "nginx.pid"
    pidfile.write_text(str(os.getpid()))
    return {"bin": str(script), "pidfile": str(pidfile), "log": log, "broken": tmp_path / "BROKEN"}


def answers(*observations):
    """fetch() returning the given (slot, version, error) tuples, the last repeated."""
    seq = list(observations)

    def fetch():
        return seq.pop(0) if len(seq) > 1 else seq[0]
    return fetch


def do_switch(path, fake, slot="green", servers=("127.0.0.1:3009",), fetch=None, **kw):
    return sw.switch(str(path), slot, list(servers), fetch or answers((slot, "v2", None)),
                     nginx_bin=fake["bin"], pidfile=fake["pidfile"], verify_timeout=kw.pop("verify_timeout", 1.0), **kw)


def test_render_names_the_slot_and_every_server():
    text = sw.render_upstream("blue", ["10.0.0.1:3008", "10.0.0.2:3008"])
    assert "# slot: blue" in text
    assert "server 10.0.0.1:3008 max_fails=0;" in text
    assert "server 10.0.0.2:3008 max_fails=0;" in text


@pytest.mark.parametrize("servers, fragment", [
    ([], "servers is empty"),
    (["127.0.0.1"], "is not host:port"),
    (["127.0.0.1:70000"], "outside 1..65535"),
    (["bad host:80"], "is not host:port"),
])
def test_bad_servers_are_named(servers, fragment):
    assert any(fragment in p for p in sw.validate_servers(servers))


def test_switch_writes_reloads_and_verifies(tmp_path, fake_nginx):
    path = tmp_path / "upstream.conf"
    path.write_text(sw.render_upstream("blue", ["127.0.0.1:3008"]))
    result = do_switch(path, fake_nginx, fetch=answers(("blue", "v1", None), ("green", "v2", None)), expect_version="v2")
    assert result["changed"] and result["reloaded"]
    assert result["previous_slot"] == "blue"
    assert sw.current_slot(str(path)) == "green"
    assert fake_nginx["log"].read_text().count("reload") == 1


def test_second_switch_to_same_slot_is_unchanged_and_does_not_reload(tmp_path, fake_nginx):
    path = tmp_path / "upstream.conf"
    do_switch(path, fake_nginx)
    result = do_switch(path, fake_nginx)
    assert not result["changed"]
    assert fake_nginx["log"].read_text().count("reload") == 1


def test_check_mode_changes_nothing(tmp_path, fake_nginx):
    path = tmp_path / "upstream.conf"
    before = sw.render_upstream("blue", ["127.0.0.1:3008"])
    path.write_text(before)
    result = do_switch(path, fake_nginx, check_mode=True)
    assert result["changed"]
    assert "# slot: green" in result["after"]
    assert path.read_text() == before
    assert not fake_nginx["log"].exists()


def test_nginx_t_failure_refuses_and_keeps_previous_file(tmp_path, fake_nginx):
    path = tmp_path / "upstream.conf"
    before = sw.render_upstream("blue", ["127.0.0.1:3008"])
    path.write_text(before)
    fake_nginx["broken"].write_text("x")
    with pytest.raises(sw.SwitchError) as err:
        do_switch(path, fake_nginx)
    assert "refused" in str(err.value)
    assert "emerg: broken" in err.value.details["nginx_output"]
    assert path.read_text() == before
    assert not fake_nginx["log"].exists()


def test_verification_failure_restores_previous_file_and_reloads(tmp_path, fake_nginx):
    path = tmp_path / "upstream.conf"
    before = sw.render_upstream("blue", ["127.0.0.1:3008"])
    path.write_text(before)
    with pytest.raises(sw.SwitchError) as err:
        do_switch(path, fake_nginx, fetch=answers(("blue", "v1", None)), verify_timeout=0.2)
    assert "undone" in str(err.value) and "slot blue, version v1" in str(err.value)
    assert path.read_text() == before
    assert fake_nginx["log"].read_text().count("reload") == 2


def test_stopped_nginx_is_reported_and_file_restored(tmp_path, fake_nginx):
    path = tmp_path / "upstream.conf"
    before = sw.render_upstream("blue", ["127.0.0.1:3008"])
    path.write_text(before)
    with open(fake_nginx["pidfile"], "w") as handle:
        handle.write("999999999")
    with pytest.raises(sw.SwitchError, match="nginx is not running"):
        do_switch(path, fake_nginx)
    assert path.read_text() == before


def test_wait_for_slot_needs_consecutive_answers():
    clock = iter(x * 0.01 for x in range(1000))
    fetch = answers(("green", "v2", None), ("blue", "v1", None), ("green", "v2", None), ("green", "v2", None),
                    ("green", "v2", None))
    first, last = sw.wait_for_slot(fetch, "green", "v2", timeout=5, consecutive=3,
                                   clock=lambda: next(clock), sleep=lambda s: None)
    assert last["slot"] == "green"
    assert first < 0.05


def test_wait_for_slot_reports_last_error_on_deadline():
    ticks = iter(range(100))
    with pytest.raises(sw.SwitchError, match="connection refused"):
        sw.wait_for_slot(answers((None, None, "connection refused")), "green", None, timeout=3, consecutive=1,
                         clock=lambda: next(ticks), sleep=lambda s: None)


def test_backup_servers_are_rendered_as_backup():
    text = sw.render_upstream("green", ["127.0.0.1:3009"], ["127.0.0.1:3008"])
    assert "server 127.0.0.1:3009 max_fails=0;" in text
    assert "server 127.0.0.1:3008 backup max_fails=0;" in text


def test_a_server_cannot_be_live_and_backup(tmp_path, fake_nginx):
    with pytest.raises(sw.SwitchError, match="both live and backup"):
        do_switch(tmp_path / "u.conf", fake_nginx, backup_servers=["127.0.0.1:3009"])
