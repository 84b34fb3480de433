# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connections of module_utils/postgres_client.py: the keyword arguments psycopg gets,
the one-line error messages, and the module-facing guards. psycopg is faked; the
probes and modules run these against the real servers in the integration tests."""

from __future__ import annotations

import pytest

from ansible_collections.unitehub.platform.plugins.module_utils import postgres_client
from ansible_collections.unitehub.platform.tests.unit.plugins.module_utils import pgbouncer_fakes as fakes


@pytest.fixture
def fake_psycopg(monkeypatch):
    fake = fakes.FakePsycopg({6432: fakes.CONSOLE, 5432: fakes.POSTGRES})
    monkeypatch.setattr(postgres_client, "psycopg", fake)
    return fake


class ModuleFailed(SystemExit):
    pass


class FakeModule:
    """Records fail_json and stops there, as AnsibleModule does."""

    def __init__(self):
        self.failed = None

    def fail_json(self, **kwargs):
        self.failed = kwargs
        raise ModuleFailed(1)


def test_postgres_kwargs_leave_unset_values_to_libpq():
    assert postgres_client.connect_kwargs("127.0.0.1", 5432, "unitehub", "pw", "unitehub", 0.5) == {
        "host": "127.0.0.1", "port": 5432, "user": "unitehub", "password": "pw", "dbname": "unitehub",
        "connect_timeout": 2, "autocommit": True}
    assert postgres_client.connect_kwargs("/var/run/postgresql", "5432", password="", application_name="app") == {
        "host": "/var/run/postgresql", "port": 5432, "connect_timeout": 2, "autocommit": True,
        "application_name": "app"}


@pytest.mark.parametrize("seconds, libpq", [(0, 2), (0.5, 2), (1, 2), (2, 2), (3.2, 4), (7, 7)])
def test_connect_timeout_is_whole_seconds_and_at_least_2(seconds, libpq):
    assert postgres_client.libpq_connect_timeout(seconds) == libpq


def test_admin_console_kwargs_use_the_simple_query_protocol(fake_psycopg):
    kwargs = postgres_client.admin_console_kwargs("127.0.0.1", "6432", "pgbouncer_admin", "s3cret", connect_timeout=7)

    assert kwargs == {"host": "127.0.0.1", "port": 6432, "user": "pgbouncer_admin", "password": "s3cret",
                      "dbname": "pgbouncer", "autocommit": True, "prepare_threshold": None, "connect_timeout": 7,
                      "cursor_factory": fakes.FakeClientCursor}


def test_admin_console_connection_gets_those_kwargs(fake_psycopg):
    conn = postgres_client.connect_admin_console("127.0.0.1", 6432, "pgbouncer_admin")

    assert conn is fake_psycopg.connections[0]
    assert conn.kwargs["dbname"] == "pgbouncer" and "password" not in conn.kwargs
    assert conn.kwargs["cursor_factory"] is fakes.FakeClientCursor


def test_postgres_connection_has_no_console_settings(fake_psycopg):
    conn = postgres_client.connect("/var/run/postgresql", 5432, "postgres", None, "postgres")
    assert conn.kwargs == {"host": "/var/run/postgresql", "port": 5432, "user": "postgres", "dbname": "postgres",
                           "connect_timeout": 2, "autocommit": True}


def test_connection_failure_names_the_endpoint_in_one_line_and_not_the_password(fake_psycopg):
    with pytest.raises(postgres_client.ConnectError) as excinfo:
        postgres_client.connect_admin_console("127.0.0.1", 6999, "pgbouncer_admin", "s3cret")

    assert str(excinfo.value) == "could not connect to 127.0.0.1:6999/pgbouncer as pgbouncer_admin: Connection refused"
    assert excinfo.value.reason == "Connection refused"
    assert (excinfo.value.host, excinfo.value.port, excinfo.value.user) == ("127.0.0.1", 6999, "pgbouncer_admin")


def test_login_options_connect_as_they_say(fake_psycopg):
    params = dict(login_host="127.0.0.1", login_port=5432, login_user="unitehub", login_password="pw",
                  login_db="unitehub", connect_timeout=3)

    conn = postgres_client.connect_with_login_options(params, application_name="unitehub.platform.test")

    assert conn.kwargs == {"host": "127.0.0.1", "port": 5432, "user": "unitehub", "password": "pw",
                           "dbname": "unitehub", "connect_timeout": 3, "autocommit": True,
                           "application_name": "unitehub.platform.test"}


def test_login_argument_spec_defaults():
    spec = postgres_client.login_argument_spec()
    assert spec["login_host"]["default"] == "/var/run/postgresql"
    assert spec["login_password"]["no_log"] is True
    assert spec["connect_timeout"]["default"] == 10
    assert postgres_client.login_argument_spec(host_default=None)["login_host"]["default"] is None


@pytest.mark.parametrize("raw, message", [
    ('connection failed: connection to server at "127.0.0.1", port 5999 failed: Connection refused\n'
     '\tIs the server running on that host and accepting TCP/IP connections?', "Connection refused"),
    ('connection failed: FATAL:  password authentication failed for user "app"',
     'FATAL: password authentication failed for user "app"; check user and password'),
    ("connection failed: fe_sendauth: no password supplied", "fe_sendauth: no password supplied; set password"),
    ('connection to server at "::1", port 6432 failed: FATAL:  SASL authentication failed',
     "FATAL: SASL authentication failed; check user and password"),
    ("invalid command 'SHOW NOTHING', use SHOW HELP;", "invalid command 'SHOW NOTHING', use SHOW HELP;"),
])
def test_error_message_is_one_line_without_the_libpq_preamble(raw, message):
    assert postgres_client.error_message(fakes.FakeError(raw)) == message


def test_error_message_of_an_empty_error_is_its_class():
    assert postgres_client.error_message(fakes.FakeError("")) == "FakeError"


def test_ensure_psycopg_fails_with_ansibles_message(monkeypatch):
    module = FakeModule()
    monkeypatch.setattr(postgres_client, "HAS_PSYCOPG", False)
    monkeypatch.setattr(postgres_client, "PSYCOPG_IMPORT_ERROR", "ImportError: No module named 'psycopg'")

    with pytest.raises(ModuleFailed):
        postgres_client.ensure_psycopg(module, {"changed": False})

    assert "Failed to import the required Python library (psycopg)" in module.failed["msg"]
    assert module.failed["exception"] == "ImportError: No module named 'psycopg'"
    assert module.failed["changed"] is False


def test_ensure_psycopg_passes_when_it_is_there(monkeypatch):
    monkeypatch.setattr(postgres_client, "HAS_PSYCOPG", True)
    postgres_client.ensure_psycopg(FakeModule())


def test_guard_lets_a_good_block_through():
    with postgres_client.failing_module_on_error(FakeModule(), "context"):
        value = 1
    assert value == 1


def test_guard_fails_a_client_error_with_context_hint_and_the_result_as_it_is_then():
    module = FakeModule()
    result = {"changed": False}

    with pytest.raises(ModuleFailed):
        with postgres_client.failing_module_on_error(module, "PgBouncer admin console", result, hint="; fix it"):
            result["changed"] = True
            raise postgres_client.ConnectError("127.0.0.1", 6432, "admin", "pgbouncer", "Connection refused")

    assert module.failed == {"msg": "PgBouncer admin console: could not connect to 127.0.0.1:6432/pgbouncer as admin: "
                                    "Connection refused; fix it", "changed": True}


def test_guard_fails_an_unexpected_error_naming_it_with_the_traceback_for_verbose_runs():
    module = FakeModule()

    with pytest.raises(ModuleFailed):
        with postgres_client.failing_module_on_error(module, "pool_validate"):
            {}["missing"]

    assert module.failed["msg"] == "pool_validate: unexpected KeyError: 'missing'"
    assert "Traceback" in module.failed["exception"]
