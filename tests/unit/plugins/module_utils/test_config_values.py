# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit and property tests of plugins/module_utils/config_values.py."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, strategies as st

from ansible_collections.unitehub.platform.plugins.module_utils.config_values import (
    KINDS,
    postgresql_conf_value,
    redis_conf_args,
    value_errors,
)

ADMIN_EXPOSED = "_; location ^~ /api/admin/ { proxy_pass http://127.0.0.1:3008; }"


def errors(kind, name, value):
    return value_errors({kind: {name: value}})


# --- values that would break out of their file are refused, naming the variable ------------

@pytest.mark.parametrize("kind, name, value, words", [
    ("server_names", "nginx_server_name", ADMIN_EXPOSED, ["contains ';'", "host names separated by spaces"]),
    ("server_names", "nginx_server_name", "example.org\n    location / {", ["contains '\\n'"]),
    ("server_names", "nginx_server_name", "~^(?<sub>.+)\\.example\\.org$", ["contains '\\\\'"]),
    ("server_names", "nginx_server_name", "", ["is empty"]),
    ("server_names", "nginx_server_name", "a/b", ["'a/b', not a host name"]),
    ("listen_address", "nginx_listen_address", "127.0.0.1:8080 default_server; include /x", ["not an IP address"]),
    ("address", "pgbouncer_server_host", "127.0.0.1 port=1 dbname=postgres", ["not an IP address"]),
    ("address_list", "pgbouncer_listen_address", "127.0.0.1\nauth_type = trust", ["comma-separated list"]),
    ("address_list", "postgresql_listen_address", "127.0.0.1'; ssl = 'off", ["comma-separated list"]),
    ("absolute_path", "nginx_upstream_dir", "/etc/nginx/x; include /etc/shadow", ["contains ';'"]),
    ("absolute_path", "pgbouncer_logfile", "/var/log/pgbouncer.log\n%include /tmp/evil.ini", ["contains '\\n'"]),
    ("absolute_path", "nginx_site_file", "conf.d/x.conf", ["not an absolute path"]),
    ("optional_absolute_path", "pgbouncer_unix_socket_dir", "run/pg", ["not an absolute path"]),
    ("url_path", "nginx_health_path", "/health { return 200; } location /api/admin/", ["contains ' '"]),
    ("url_path", "nginx_denied_locations", "api/admin/", ["does not start with '/'"]),
    ("count", "nginx_upstream_keepalive", "16; include /etc/nginx/evil.conf", ["not a whole number"]),
    ("count", "pgbouncer_open_files_limit", "65536; touch /tmp/owned", ["not a whole number"]),
    ("count", "nginx_proxy_read_timeout", True, ["not a whole number"]),
    ("port", "pgbouncer_listen_port", 70000, ["not a TCP port"]),
    ("name", "pgbouncer_admin_user", "admin\nauth_type = trust", ["not a plain name"]),
    ("name", "pgbouncer_admin_user", "admin, postgres", ["not a plain name"]),
    ("sql_query", "pgbouncer_auth_query", "SELECT usename, passwd FROM pg_shadow WHERE usename=$1\nauth_type = trust",
     ["line break"]),
    ("sql_query", "pgbouncer_auth_query", "SELECT 1; DROP TABLE x", ["contains ';'"]),
    ("sql_query", "pgbouncer_auth_query", "SELECT usename, passwd FROM pg_shadow", ["does not use $1"]),
    ("deletable_directory", "base_image_build_dir", "/", ["is / or a system"]),
    ("deletable_directory", "base_image_build_dir", "/etc", ["is / or a system"]),
    ("deletable_directory", "base_image_build_dir", "/var/tmp", ["is / or a system"]),
    ("deletable_directory", "base_image_build_dir", "/data", ["top-level"]),
    ("deletable_directory", "base_image_build_dir", "/var/tmp/x/../..", ["not a normalised path", "'/var'"]),
    ("deletable_directory", "base_image_build_dir", "//", ["is / or a system"]),
    ("deletable_directory", "base_image_build_dir", "var/tmp/rootfs", ["not an absolute path"]),
])
def test_a_value_that_could_break_out_is_refused_naming_the_variable(kind, name, value, words):
    problems = errors(kind, name, value)

    assert len(problems) == 1, problems
    assert problems[0].startswith(name), problems
    if isinstance(value, str) and value:
        assert repr(value) in problems[0]
    for word in words:
        assert word in problems[0], (word, problems[0])


@pytest.mark.parametrize("kind, value", [
    ("server_names", "_"),
    ("server_names", "example.org www.example.org *.example.org example.* .example.net"),
    ("listen_address", "*"),
    ("listen_address", "::"),
    ("listen_address", "[::1]"),
    ("address", "db-1.internal.example.org"),
    ("address_list", "*"),
    ("address_list", "127.0.0.1, ::1"),
    ("absolute_path", "/etc/nginx/conf.d/unitehub.conf"),
    ("optional_absolute_path", ""),
    ("url_path", "/api/admin/"),
    ("count", 0),
    ("count", "16"),
    ("port", "6432"),
    ("name", "pgbouncer_admin"),
    ("name", "app@example.org"),
    ("sql_query", ""),
    ("sql_query", "SELECT usename, passwd FROM pg_shadow WHERE usename=$1"),
    ("deletable_directory", "/var/tmp/unitehub-base-rootfs"),
    ("deletable_directory", "/srv/build/rootfs/"),
])
def test_good_values_pass(kind, value):
    assert errors(kind, "some_variable", value) == []


def test_a_list_is_checked_item_by_item_and_every_problem_is_reported():
    problems = value_errors({
        "url_path": {"nginx_denied_locations": ["/api/admin/", "/x; return 200;"]},
        "server_names": {"nginx_server_name": ADMIN_EXPOSED},
    })

    assert [p.split("=")[0] for p in problems] == ["nginx_server_name", "nginx_denied_locations[1]"]


def test_an_unknown_kind_is_named():
    assert value_errors({"colour": {"x": 1}}) == [
        "'colour' is not a kind of configuration value: use one of %s" % ", ".join(sorted(KINDS))]


# --- PgBouncer's databases and userlist ----------------------------------------------------

def test_database_entries_are_checked_key_by_key():
    problems = errors("pgbouncer_databases", "pgbouncer_databases", [
        {"name": "app", "dbname": "app", "host": "127.0.0.1", "port": 5432},
        {"name": "app2", "dbname": "app2 host=evil.example.org", "host": "/var/run/postgresql"},
        {"name": "app3", "host": "10.0.0.1 auth_user=postgres", "pool_size": 3},
    ])

    assert problems == [
        "pgbouncer_databases[1].dbname='app2 host=evil.example.org' is not a plain name: use letters, digits and "
        "_ . @ $ - only, starting with a letter, digit or _",
        "pgbouncer_databases[2] has the keys 'pool_size', which the role does not write: use name, dbname, host and "
        "port only",
        "pgbouncer_databases[2].host='10.0.0.1 auth_user=postgres' is not an IP address or host name: write e.g. "
        "127.0.0.1, 0.0.0.0, ::1 or db.example.org",
    ]
    assert errors("pgbouncer_databases", "pgbouncer_databases", [])[0].startswith("pgbouncer_databases=[] must list")


def test_a_password_with_a_line_break_is_refused_without_showing_it():
    secret = 'pw-9f2\n"attacker" "known"'
    problems = value_errors({
        "userlist": {"pgbouncer_auth_users": [{"name": "app", "password": "fine"}, {"name": "x", "password": secret}]},
        "secret": {"pgbouncer_admin_password": "adm\r\n" + secret},
    })

    assert [p.split(" ")[0] for p in problems] == ["pgbouncer_admin_password", "pgbouncer_auth_users[1].password"]
    assert all("value not shown: it is a secret" in p for p in problems)
    assert not any("pw-9f2" in p or "attacker" in p for p in problems)


# --- PostgreSQL: identifier keys, values quoted ---------------------------------------------

def test_postgresql_keys_must_be_identifiers_and_values_one_line():
    problems = errors("postgresql_settings", "postgresql_extra_settings", {
        "work_mem": "4MB",
        "pg_stat_statements.max": 1000,
        "ssl = off\nwork_mem": "1",
        "log_line_prefix": "%m\nlisten_addresses = '*'",
    })

    assert problems == [
        "postgresql_extra_settings[%r]=%r contains a line break or control character, which postgresql.conf cannot "
        "hold: write the value on one line" % ("log_line_prefix", "%m\nlisten_addresses = '*'"),
        "postgresql_extra_settings has the key %r, which is not a PostgreSQL setting name: use letters, digits and _, "
        "e.g. work_mem, or one dot for an extension's setting (pg_stat_statements.max)" % "ssl = off\nwork_mem",
    ]


@pytest.mark.parametrize("value, quoted", [
    ("4MB", "'4MB'"),
    (100, "'100'"),
    ("it's", "'it''s'"),
    ("C:\\new", "'C:\\\\new'"),
    ("ends with \\", "'ends with \\\\'"),
    ("x' ; shared_preload_libraries = 'evil", "'x'' ; shared_preload_libraries = ''evil'"),
])
def test_postgresql_values_are_quoted(value, quoted):
    assert postgresql_conf_value(value) == quoted


_GUC_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def read_postgresql_string(token):
    """What PostgreSQL's configuration file reader (guc-file.l, GUC_scanstr) makes of a quoted value."""
    assert re.fullmatch(r"'([^'\\\n]|\\.|'')*'", token), token
    body, out, i = token[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            nxt = body[i + 1]
            if nxt in "01234567":
                digits = re.match(r"[0-7]{1,3}", body[i + 1:]).group(0)
                out.append(chr(int(digits, 8)))
                i += 1 + len(digits)
                continue
            out.append(_GUC_ESCAPES.get(nxt, nxt))
            i += 2
        elif char == "'":
            out.append("'")
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


@given(st.text(st.characters(blacklist_categories=("Cc", "Cs"))))
def test_postgresql_reads_back_exactly_the_value(value):
    assert read_postgresql_string(postgresql_conf_value(value)) == value


@given(st.text(min_size=1).filter(lambda t: re.search(r"[\x00-\x1f\x7f]", t)))
def test_postgresql_refuses_every_control_character(value):
    with pytest.raises(ValueError, match="line break or control character"):
        postgresql_conf_value(value)


# --- Redis: directive names, arguments quoted or refused ---------------------------------------

def test_redis_keys_and_values():
    problems = errors("redis_settings", "redis_extra_settings", {
        "timeout": 300,
        "notify-keyspace-events": "Ex",
        "client-output-buffer-limit": "pubsub 32mb 8mb 60",
        "tcp-keepalive": "60\nrequirepass \"\"",
        "include": "/tmp/evil.conf",
        "Bad Key": "x",
        "rename-command": 'CONFIG ""',
    })

    assert [p.split(" ")[0].split("=")[0] for p in problems] == [
        "redis_extra_settings", "redis_extra_settings", "redis_extra_settings['rename-command']",
        "redis_extra_settings['tcp-keepalive']"]
    assert "key 'Bad Key'" in problems[0] and "key 'include'" in problems[1]
    assert "give the arguments as a list" in problems[2]
    assert "line break" in problems[3]


def read_redis_args(line):
    """The arguments redis.conf's reader (sdssplitargs) makes of a line of bare and "..." words."""
    args = []
    for match in re.finditer(r'"((?:[^"\\]|\\.)*)"|(\S+)', line):
        if match.group(2) is not None:
            args.append(match.group(2))
        else:
            args.append(re.sub(r"\\(.)", r"\1", match.group(1)))
    return args


@given(st.lists(st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters=" "), min_size=1),
                min_size=1, max_size=4))
def test_redis_reads_back_each_argument_of_a_list(arguments):
    assert read_redis_args(redis_conf_args(arguments)) == arguments


@given(st.text())
def test_whatever_passes_the_redis_check_stays_on_its_line(value):
    problems = errors("redis_settings", "redis_extra_settings", {"timeout": value})
    if not problems:
        assert "\n" not in redis_conf_args(value) and "\r" not in redis_conf_args(value)


@given(st.text())
def test_no_accepted_nginx_value_holds_a_character_that_breaks_out(value):
    for kind in ("server_names", "listen_address", "absolute_path", "url_path"):
        if not errors(kind, "nginx_value", value):
            assert not re.search(r"[;{}'\"\n\r\\$#]", value), (kind, value)
