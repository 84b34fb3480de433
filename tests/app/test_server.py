"""The connection cap in-process: which connection is shed, and when a newcomer is refused."""

from __future__ import annotations

import resource

from unitehub_app.server import HEAD_GRACE, ConnectionCap, raise_open_files_limit


class Connection:
    """Stands in for AppProtocol: records whether the cap shed it."""

    def __init__(self, name: str):
        self.name = name
        self.was_shed = False

    def shed(self) -> None:
        self.was_shed = True

    def __repr__(self) -> str:
        return self.name


def opened(cap: ConnectionCap, names: str, at: float) -> list[Connection]:
    connections = [Connection(name) for name in names]
    for connection in connections:
        assert cap.admit(connection, at) is True
    return connections


def test_past_the_limit_the_oldest_connection_without_a_request_is_shed():
    cap = ConnectionCap(limit=3, ceiling=100)
    a, b, c = opened(cap, "abc", at=0.0)
    cap.started(b)  # b sent its request head: it is never shed
    (d,) = opened(cap, "d", at=10.0)
    assert [x.was_shed for x in (a, b, c, d)] == [True, False, False, False] and cap.open == 3
    (e,) = opened(cap, "e", at=10.0 + HEAD_GRACE / 4)
    assert c.was_shed and not b.was_shed and cap.open == 3
    (f,) = opened(cap, "f", at=10.0 + HEAD_GRACE / 2)  # d and e are younger than the grace: f is taken anyway
    assert not (d.was_shed or e.was_shed or f.was_shed) and cap.open == 4


def test_connections_that_sent_a_request_are_never_shed_and_the_newcomer_still_gets_in():
    cap = ConnectionCap(limit=2, ceiling=100)
    keepalive = opened(cap, "kl", at=0.0)
    for connection in keepalive:
        cap.started(connection)
    (newcomer,) = opened(cap, "n", at=60.0)
    assert not any(c.was_shed for c in keepalive + [newcomer]) and cap.open == 3


def test_the_ceiling_refuses_a_newcomer_and_a_closed_connection_makes_room():
    cap = ConnectionCap(limit=1, ceiling=2)
    a, b = opened(cap, "ab", at=0.0)
    assert cap.admit(Connection("c"), 0.1) is False and cap.open == 2  # both too young to shed
    cap.forget(a)
    assert cap.admit(Connection("d"), 0.2) is True and cap.open == 2 and not b.was_shed


def test_a_shed_connection_is_counted_once():
    cap = ConnectionCap(limit=1, ceiling=10)
    (a,) = opened(cap, "a", at=0.0)
    (b,) = opened(cap, "b", at=HEAD_GRACE)
    assert a.was_shed and cap.open == 1
    cap.forget(a)  # its connection_lost comes later
    assert cap.open == 1
    cap.forget(b)
    assert cap.open == 0


def test_the_open_files_soft_limit_is_raised_to_the_hard_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))
        assert raise_open_files_limit() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_without_a_grace_a_newcomer_past_the_limit_may_shed_itself_but_nothing_breaks():
    cap = ConnectionCap(limit=1, ceiling=10, grace=0.0)
    (a,) = opened(cap, "a", at=0.0)
    cap.started(a)
    (b,) = opened(cap, "b", at=1.0)  # the only connection without a request is b itself
    assert b.was_shed and not a.was_shed and cap.open == 1
