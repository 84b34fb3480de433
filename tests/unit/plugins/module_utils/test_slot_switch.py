"""Unit tests of the switch transaction with a fake nginx binary and fake answers."""

import fcntl
import os
import re
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
    """fetch() returning the given (slot, error) tuples, the last repeated."""
    seq = list(observations)

    def fetch():
        return seq.pop(0) if len(seq) > 1 else seq[0]
    return fetch


@pytest.fixture
def lb(tmp_path):
    """The directory the switch owns, apart from the fake nginx's files."""
    directory = tmp_path / "lb"
    directory.mkdir()
    return directory


BLUE = ["127.0.0.1:3008"]
GREEN = ["127.0.0.1:3009"]


def live_on(directory, slot):
    """A load balancer directory as the nginx role leaves it, with ``slot`` live."""
    for name, text in sw.render_files("blue", BLUE, GREEN).items():
        (directory / name).write_text(text)
    (directory / "live").mkdir(exist_ok=True)
    sw.set_live_marker(str(directory), slot)
    return snapshot(directory)


def snapshot(directory):
    return {str(p.relative_to(directory)): p.read_text() for p in sorted(directory.rglob("*")) if p.is_file()}


def do_switch(directory, fake, slot="green", servers=None, other=None, fetch=None, **kw):
    servers = servers or (GREEN if slot == "green" else BLUE)
    other = other or (BLUE if slot == "green" else GREEN)
    return sw.switch(str(directory), slot, list(servers), list(other), fetch or answers((slot, None)),
                     nginx_bin=fake["bin"], pidfile=fake["pidfile"], timeout=kw.pop("timeout", 1.0), **kw)


def test_render_names_the_slot_and_every_server():
    text = sw.render_slot_upstream("blue", ["10.0.0.1:3008", "10.0.0.2:3008"])
    assert "# slot: blue" in text
    assert "server 10.0.0.1:3008 max_fails=0;" in text
    assert "server 10.0.0.2:3008 max_fails=0;" in text


def test_each_slot_lists_the_other_as_backup():
    files = sw.render_files("green", GREEN, BLUE)
    assert "server 127.0.0.1:3009 max_fails=0;\nserver 127.0.0.1:3008 backup max_fails=0;" in files["green.conf"]
    assert "server 127.0.0.1:3008 max_fails=0;\nserver 127.0.0.1:3009 backup max_fails=0;" in files["blue.conf"]
    # The files do not depend on which slot is live: a switch need not rewrite them.
    assert files == sw.render_files("blue", BLUE, GREEN)


@pytest.mark.parametrize("servers, fragment", [
    ([], "servers is empty"),
    (["127.0.0.1"], "is not host:port"),
    (["127.0.0.1:70000"], "outside 1..65535"),
    (["bad host:80"], "is not host:port"),
])
def test_bad_servers_are_named(servers, fragment):
    assert any(fragment in p for p in sw.validate_servers(servers))


def test_switch_renames_the_marker_without_reloading(lb, fake_nginx):
    live_on(lb, "blue")
    result = do_switch(lb, fake_nginx, fetch=answers(("blue", None), ("green", None)))
    assert result["changed"] and not result["reloaded"]
    assert result["previous_slot"] == "blue"
    assert sw.current_slot(str(lb)) == "green"
    assert sorted(os.listdir(lb / "live")) == ["green"]
    assert not fake_nginx["log"].exists()


def test_changed_servers_are_written_and_reloaded_before_the_marker_moves(lb, fake_nginx):
    live_on(lb, "blue")
    result = do_switch(lb, fake_nginx, servers=["127.0.0.1:3009", "127.0.0.2:3009"])
    assert result["changed"] and result["reloaded"]
    assert "server 127.0.0.2:3009 max_fails=0;" in (lb / "green.conf").read_text()
    assert '"~(^|\\s)127\\.0\\.0\\.2:3009$" green;' in (lb / "slots.map").read_text()
    assert "server 127.0.0.2:3009 backup max_fails=0;" in (lb / "blue.conf").read_text()
    assert fake_nginx["log"].read_text().count("reload") == 1


def test_first_switch_creates_files_and_marker(lb, fake_nginx):
    result = do_switch(lb, fake_nginx)
    assert result["previous_slot"] is None and result["reloaded"]
    assert sw.current_slot(str(lb)) == "green"
    assert (lb / "blue.conf").exists() and (lb / "green.conf").exists()


def test_second_switch_to_same_slot_is_unchanged_and_still_verified(lb, fake_nginx):
    live_on(lb, "blue")
    do_switch(lb, fake_nginx)
    before = snapshot(lb)
    result = do_switch(lb, fake_nginx)
    assert not result["changed"]
    assert result["verified"]["slot"] == "green"
    assert snapshot(lb) == before
    with pytest.raises(sw.SwitchError, match="did not answer from slot green"):
        do_switch(lb, fake_nginx, fetch=answers(("blue", None)), timeout=0.1)
    assert snapshot(lb) == before


def test_check_mode_changes_nothing_and_describes_the_move(lb, fake_nginx):
    before = live_on(lb, "blue")
    result = do_switch(lb, fake_nginx, check_mode=True)
    assert result["changed"]
    assert "# live slot: blue" in result["before"] and "# live slot: green" in result["after"]
    assert snapshot(lb) == before
    assert not fake_nginx["log"].exists()


def test_a_broken_nginx_configuration_refuses_the_switch(lb, fake_nginx):
    before = live_on(lb, "blue")
    fake_nginx["broken"].write_text("x")
    with pytest.raises(sw.SwitchError) as err:
        do_switch(lb, fake_nginx)
    assert "refused" in str(err.value) and "nginx -t" in str(err.value)
    assert "emerg: broken" in err.value.details["nginx_output"]
    assert snapshot(lb) == before
    assert sw.current_slot(str(lb)) == "blue"


def test_verification_failure_moves_the_marker_back(lb, fake_nginx):
    before = live_on(lb, "blue")
    with pytest.raises(sw.SwitchError) as err:
        do_switch(lb, fake_nginx, fetch=answers(("blue", None)), timeout=0.2)
    assert "undone" in str(err.value) and "from slot blue" in str(err.value)
    assert snapshot(lb) == before
    assert not fake_nginx["log"].exists()


def test_verification_failure_after_new_servers_restores_files_and_reloads(lb, fake_nginx):
    before = live_on(lb, "blue")
    with pytest.raises(sw.SwitchError, match="undone"):
        do_switch(lb, fake_nginx, servers=["127.0.0.2:3009"], fetch=answers((None, "HTTP 502")),
                  timeout=0.2)
    assert snapshot(lb) == before
    assert fake_nginx["log"].read_text().count("reload") == 2


def test_stopped_nginx_is_reported_and_nothing_moves(lb, fake_nginx):
    before = live_on(lb, "blue")
    with open(fake_nginx["pidfile"], "w") as handle:
        handle.write("999999999")
    with pytest.raises(sw.SwitchError, match="nginx is not running"):
        do_switch(lb, fake_nginx)
    assert snapshot(lb) == before


def test_the_marker_is_read_the_way_nginx_reads_it(tmp_path):
    assert sw.current_slot(str(tmp_path)) is None
    (tmp_path / "live").mkdir()
    (tmp_path / "live" / "blue").write_text("")
    assert sw.current_slot(str(tmp_path)) == "blue"
    (tmp_path / "live" / "green").write_text("")
    assert sw.current_slot(str(tmp_path)) == "green"  # the site tests -f live/green
    sw.set_live_marker(str(tmp_path), "blue")
    assert sorted(os.listdir(tmp_path / "live")) == ["blue"]


def test_wait_for_slot_needs_consecutive_answers():
    clock = iter(x * 0.01 for x in range(1000))
    fetch = answers(("green", None), ("blue", None), ("green", None), ("green", None),
                    ("green", None))
    first, last = sw.wait_for_slot(fetch, "green", timeout=5, consecutive=3,
                                   clock=lambda: next(clock), sleep=lambda s: None)
    assert last["slot"] == "green"
    assert first < 0.05


def test_wait_for_slot_reports_last_error_on_deadline():
    ticks = iter(range(100))
    with pytest.raises(sw.SwitchError, match="connection refused"):
        sw.wait_for_slot(answers((None, "connection refused")), "green", timeout=3, consecutive=1,
                         clock=lambda: next(ticks), sleep=lambda s: None)


def test_a_server_cannot_be_in_both_slots(lb, fake_nginx):
    with pytest.raises(sw.SwitchError, match="in both slots"):
        do_switch(lb, fake_nginx, other=["127.0.0.1:3009"])
    assert list(lb.iterdir()) == []


# ------------------------------------------------------------ the slot that answered

def nginx_map_lookup(map_text, upstream_addr):
    """The slot an nginx map with this text gives for ``upstream_addr`` (first regex that matches)."""
    for line in map_text.splitlines():
        if line.startswith('"~'):
            pattern, slot = line[2:].rsplit('" ', 1)
            if re.search(pattern, upstream_addr):
                return slot.rstrip(";")
    return ""


@pytest.mark.parametrize("upstream_addr, slot", [
    ("127.0.0.1:3009", "green"),
    ("127.0.0.1:3008", "blue"),
    # The live slot refused, nginx retried on the backup: the client got the backup's answer.
    ("127.0.0.1:3009, 127.0.0.1:3008", "blue"),
    ("127.0.0.1:3008, 127.0.0.1:3009", "green"),
    ("127.0.0.10:3008", ""),
    ("127.0.0.1:30080", ""),
])
def test_the_map_names_the_slot_of_the_last_server_reached(upstream_addr, slot):
    files = sw.render_files("green", GREEN, BLUE)
    assert nginx_map_lookup(files["slots.map"], upstream_addr) == slot


def test_host_names_are_mapped_by_the_addresses_they_resolve_to():
    def getaddrinfo(host, port, proto):
        assert (host, port) == ("app1.example", 3009)
        return [(2, 1, 6, "", ("10.0.0.7", port)), (10, 1, 6, "", ("fe80::7", port, 0, 0))]

    assert sw.resolve_addresses("app1.example:3009", getaddrinfo) == ["10.0.0.7:3009", "[fe80::7]:3009"]
    assert sw.resolve_addresses("[::1]:3008") == ["[::1]:3008"]


def test_an_unresolvable_host_is_refused_before_anything_changes(lb, fake_nginx):
    before = live_on(lb, "blue")

    def resolve(server):
        raise sw.SwitchError("cannot resolve the app host 'nowhere' of server nowhere:3009: no such host")

    with pytest.raises(sw.SwitchError, match="cannot resolve"):
        do_switch(lb, fake_nginx, servers=["nowhere:3009"], resolve=resolve)
    assert snapshot(lb) == before


@pytest.mark.parametrize("name, value", [("timeout", float("nan")), ("timeout", float("inf")), ("timeout", -1),
                                         ("consecutive", 0)])
def test_verification_bounds_are_refused_before_anything_changes(lb, fake_nginx, name, value):
    before = live_on(lb, "blue")
    with pytest.raises(sw.SwitchError, match="must be a finite number"):
        do_switch(lb, fake_nginx, **{name: value})
    assert snapshot(lb) == before


# ---------------------------------------------------------- faults during a switch

def test_an_unexpected_error_after_the_marker_moved_is_undone(lb, fake_nginx):
    before = live_on(lb, "blue")

    def fetch():
        raise OSError(28, "No space left on device")

    with pytest.raises(sw.SwitchError) as err:
        do_switch(lb, fake_nginx, fetch=fetch)
    assert "switch to green failed and was undone: OSError" in str(err.value)
    assert snapshot(lb) == before


def test_a_failed_undo_is_reported_with_the_cause(lb, fake_nginx, monkeypatch):
    live_on(lb, "blue")
    real_set = sw.set_live_marker
    calls = []

    def set_marker(directory, slot):
        calls.append(slot)
        if len(calls) > 1:
            raise OSError(5, "Input/output error")
        real_set(directory, slot)

    monkeypatch.setattr(sw, "set_live_marker", set_marker)
    with pytest.raises(sw.SwitchError) as err:
        do_switch(lb, fake_nginx, fetch=answers(("blue", None)), timeout=0.1)
    assert "undoing it failed too (OSError" in str(err.value)
    assert "did not answer from slot green" in str(err.value)
    assert err.value.details["undo_error"].startswith("OSError")


def test_a_reload_that_hangs_is_undone(lb, fake_nginx, monkeypatch):
    before = live_on(lb, "blue")

    def reload_nginx(nginx_bin, pidfile):
        raise sw.NginxConfigError("could not run nginx -s reload: timed out after 30 seconds")

    monkeypatch.setattr(sw, "reload_nginx", reload_nginx)
    with pytest.raises(sw.SwitchError, match="timed out"):
        do_switch(lb, fake_nginx, servers=["127.0.0.2:3009"])
    assert snapshot(lb) == before


def test_the_undo_restores_and_reloads_under_the_config_lock(lb, fake_nginx, tmp_path, monkeypatch):
    before = live_on(lb, "blue")
    lock_path = str(tmp_path / "run" / "nginx-config.lock")
    real_reload = sw.reload_nginx
    held = []

    def reload_nginx(nginx_bin, pidfile):
        fd = os.open(lock_path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held.append(False)
        except BlockingIOError:
            held.append(True)
        finally:
            os.close(fd)
        return real_reload(nginx_bin, pidfile)

    monkeypatch.setattr(sw, "reload_nginx", reload_nginx)
    with pytest.raises(sw.SwitchError, match="was undone"):
        do_switch(lb, fake_nginx, servers=["127.0.0.2:3009"], fetch=answers(("blue", None)), timeout=0.1,
                  lock_path=lock_path)
    assert held == [True, True], "the new files' reload and the undo's both hold the host's nginx configuration lock"
    assert snapshot(lb) == before


# --------------------------------------------------------------------- put back

def put_back(directory, fake, slot="blue", fetch=None, **kw):
    return sw.put_back(str(directory), slot, fetch or answers((slot, None)), pidfile=fake["pidfile"],
                       timeout=kw.pop("timeout", 1.0), **kw)


def test_put_back_moves_the_marker_while_nginx_t_fails(lb, fake_nginx):
    live_on(lb, "green")
    files = {name: (lb / name).read_text() for name in sw.FILES}
    fake_nginx["broken"].write_text("x")
    result = put_back(lb, fake_nginx)
    assert result["changed"] and result["verified"] == {"slot": "blue", "error": None}
    assert sw.current_slot(str(lb)) == "blue"
    assert {name: (lb / name).read_text() for name in sw.FILES} == files, "the files are not touched"
    assert not fake_nginx["log"].exists(), "no reload"


def test_put_back_moves_the_marker_while_nginx_is_down(lb, fake_nginx):
    live_on(lb, "green")
    with open(fake_nginx["pidfile"], "w") as handle:
        handle.write("999999999")
    result = put_back(lb, fake_nginx, fetch=answers((None, "connection refused")))
    assert result["changed"] and result["verified"] is None
    assert "as soon as it is started" in result["warning"]
    assert sw.current_slot(str(lb)) == "blue"


def test_put_back_keeps_the_marker_when_the_old_slot_does_not_answer(lb, fake_nginx):
    live_on(lb, "green")
    with pytest.raises(sw.SwitchError, match="put back on blue, but the load balancer does not answer from it"):
        put_back(lb, fake_nginx, fetch=answers((None, "HTTP 502")), timeout=0.1)
    assert sw.current_slot(str(lb)) == "blue"


def test_put_back_in_check_mode_changes_nothing(lb, fake_nginx):
    before = live_on(lb, "green")
    assert put_back(lb, fake_nginx, check_mode=True)["changed"]
    assert snapshot(lb) == before
