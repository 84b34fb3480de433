# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Values that the roles write into configuration files: checks and quoting.

Pure functions, no I/O. A role hands every variable that reaches one of its
files to ``value_errors`` before anything on the host changes, grouped by the
kind of value it is::

    value_errors({"absolute_path": {"nginx_site_file": "/etc/nginx/conf.d/x.conf"},
                  "server_names": {"nginx_server_name": "_"}})

Each message names the variable, shows the bad value (never a secret's) and
says what to write instead. Formats with proper quoting are quoted
(``postgresql_conf_value``, ``redis_conf_args``); where a format has none, a
value that could end its line or directive (a newline, ``;``, ``{``, ``}``,
a quote) is refused. A new variable joins its kind in the role's validate
tasks; a new kind of value is one checker in ``KINDS``.
"""

from __future__ import annotations

import functools
import ipaddress
import posixpath
import re

# Characters that end a line or a directive in one of the formats, or start a
# quoted string or an nginx variable. No plain value needs them.
_BREAKOUT = re.compile(r"[\x00-\x20\x7f;{}'\"`\\#$]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")
# nginx server names: host names, "*.example.org", "example.*", "_" (any Host) and ".example.org".
_SERVER_NAME = re.compile(r"(\*\.|\.)?[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*(\.\*)?")
# Names of users, databases and startup parameters in pgbouncer.ini and its userlist.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@$-]*")
# PostgreSQL's configuration file: an identifier, or one qualified by a dot (custom settings).
_POSTGRESQL_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?")
_REDIS_KEY = re.compile(r"[a-z][a-z0-9-]*")
# Directories a role may never delete: removing one (or its contents) breaks the host.
SYSTEM_DIRECTORIES = frozenset((
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt", "/opt",
    "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var",
    "/usr/bin", "/usr/include", "/usr/lib", "/usr/lib64", "/usr/libexec", "/usr/local", "/usr/local/bin",
    "/usr/local/lib", "/usr/local/sbin", "/usr/sbin", "/usr/share", "/usr/src",
    "/var/backups", "/var/cache", "/var/lib", "/var/lib/docker", "/var/lib/postgresql", "/var/local", "/var/lock",
    "/var/log", "/var/mail", "/var/opt", "/var/run", "/var/spool", "/var/tmp", "/var/www",
))
_SECRET = "(value not shown: it is a secret)"


def _shown(value):
    return repr(value)


def _breakout(name, value, allowed):
    """The message for a value holding a character that could break out, or None."""
    found = _BREAKOUT.search(value)
    if not found:
        return None
    return "%s=%s contains %r, which could end the directive and add others: %s" % (
        name, _shown(value), found.group(0), allowed)


def _single_value(check):
    """``check(name, text, ...)`` gets the value as the template writes it; a list, a
    mapping, a boolean or None is refused before it, as no template writes one."""
    @functools.wraps(check)
    def checked(name, value, *args):
        if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
            return ["%s=%s is not a single value: give one string" % (name, _shown(value))]
        return check(name, str(value), *args)
    return checked


@_single_value
def check_server_names(name, text):
    allowed = "give host names separated by spaces, e.g. 'example.org www.example.org', or '_' for any Host"
    found = _BREAKOUT.search(text.replace(" ", ""))  # spaces separate the names
    if found:
        return ["%s=%s contains %r, which could end the directive and add others: %s" % (
            name, _shown(text), found.group(0), allowed)]
    names = text.split()
    if not names:
        return ["%s is empty: %s" % (name, allowed)]
    wrong = [n for n in names if not _SERVER_NAME.fullmatch(n)]
    if wrong:
        return ["%s=%s holds %s, not a host name: %s (regular expressions are not accepted)" % (
            name, _shown(text), ", ".join(repr(n) for n in wrong), allowed)]
    return []


def _is_address(text):
    candidate = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        ipaddress.ip_address(candidate)
        return True
    except ValueError:
        return candidate == text and len(text) <= 253 and _HOSTNAME.fullmatch(text) is not None


@_single_value
def check_address(name, text):
    """One IP address (IPv6 with or without brackets) or host name."""
    if not _is_address(text):
        return ["%s=%s is not an IP address or host name: write e.g. 127.0.0.1, 0.0.0.0, ::1 or db.example.org"
                % (name, _shown(text))]
    return []


def check_listen_address(name, value):
    """An address to listen on: one IP address or host name, or * for every address."""
    if value == "*":
        return []
    return check_address(name, value)


@_single_value
def check_address_list(name, text):
    """Comma-separated addresses, or * for all (PgBouncer's listen_addr, PostgreSQL's listen_addresses)."""
    parts = [part.strip() for part in text.split(",")]
    if text.strip() == "*" or (all(parts) and all(_is_address(part) for part in parts)):
        return []
    return ["%s=%s is not a comma-separated list of IP addresses or host names: write e.g. 127.0.0.1, "
            "'127.0.0.1,::1' or * for every address" % (name, _shown(text))]


@_single_value
def _path_errors(name, text, allowed, what_is_missing):
    bad = _breakout(name, text, allowed)
    if bad:
        return [bad]
    if not text.startswith("/"):
        return ["%s=%s %s: %s" % (name, _shown(text), what_is_missing, allowed)]
    return []


def check_absolute_path(name, value):
    return _path_errors(name, value, "write an absolute path without spaces, quotes, ';', '{', '}', '$', '#' or "
                        "backslashes", "is not an absolute path")


def check_optional_absolute_path(name, value):
    """An absolute path, or "" for none (PgBouncer's unix_socket_dir)."""
    if value == "":
        return []
    return check_absolute_path(name, value)


def check_url_path(name, value):
    return _path_errors(name, value, "write a URL path such as /api/admin/ (no spaces, quotes, ';', '{', '}', '$' "
                        "or '#')", "does not start with '/'")


def _as_integer(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value.strip())
    return None


def check_count(name, value):
    """A whole number of 0 or more, written as a number (a trailing '; ...' is no number)."""
    number = _as_integer(value)
    if number is None or number < 0:
        return ["%s=%s is not a whole number of 0 or more: write digits only, e.g. 16" % (name, _shown(value))]
    return []


def check_port(name, value):
    number = _as_integer(value)
    if number is None or not 1 <= number <= 65535:
        return ["%s=%s is not a TCP port: write a number from 1 to 65535" % (name, _shown(value))]
    return []


@_single_value
def check_name(name, text):
    """A user, database or parameter name in pgbouncer.ini and its userlist."""
    if not _NAME.fullmatch(text):
        return ["%s=%s is not a plain name: use letters, digits and _ . @ $ - only, starting with a letter, "
                "digit or _" % (name, _shown(text))]
    return []


@_single_value
def check_sql_query(name, text):
    """PgBouncer's auth_query: one statement on one line, taking the user name as $1 ("" = none)."""
    if text == "":
        return []
    if _CONTROL.search(text):
        return ["%s=%s contains a line break or control character, which would end the setting and start "
                "another: write the query on one line" % (name, _shown(text))]
    if ";" in text:
        return ["%s=%s contains ';': PgBouncer runs one statement, write it without ';'" % (name, _shown(text))]
    if "$1" not in text:
        return ["%s=%s does not use $1, where PgBouncer puts the user name: write e.g. SELECT usename, passwd "
                "FROM pg_shadow WHERE usename=$1" % (name, _shown(text))]
    return []


@_single_value
def check_deletable_directory(name, text):
    """A scratch directory a role removes with everything in it."""
    problems = check_absolute_path(name, text)
    if problems:
        return problems
    normal = posixpath.normpath(text)
    if normal.startswith("//"):
        normal = normal[1:]
    if normal != (text.rstrip("/") or "/"):
        return ["%s=%s is not a normalised path (no '.', '..' or '//'): the role deletes it, so write it as %r"
                % (name, _shown(text), normal)]
    if normal in SYSTEM_DIRECTORIES or normal.count("/") < 2:
        return ["%s=%s is / or a system or top-level directory, which the role would delete with everything in "
                "it: use a directory of its own, e.g. /var/tmp/unitehub-base-rootfs" % (name, _shown(text))]
    return []


def check_pgbouncer_databases(name, value):
    """pgbouncer_databases: [{name, dbname, host, port}], written to [databases] as key=value pairs."""
    if not isinstance(value, list) or not value:
        return ["%s=%s must list at least one database as {name, dbname, host, port}" % (name, _shown(value))]
    errors = []
    for index, entry in enumerate(value):
        where = "%s[%d]" % (name, index)
        if not isinstance(entry, dict) or "name" not in entry:
            errors.append("%s=%s must be a mapping with at least a name" % (where, _shown(entry)))
            continue
        unknown = sorted(set(entry) - {"name", "dbname", "host", "port"}, key=str)
        if unknown:
            errors.append("%s has the keys %s, which the role does not write: use name, dbname, host and port only"
                          % (where, ", ".join(repr(k) for k in unknown)))
        errors += check_name(where + ".name", entry["name"])
        if "dbname" in entry:
            errors += check_name(where + ".dbname", entry["dbname"])
        if "host" in entry:
            host = entry["host"]
            if not (isinstance(host, str) and host.startswith("/")):
                errors += check_address(where + ".host", host)
            else:
                errors += check_absolute_path(where + ".host", host)
        if "port" in entry:
            errors += check_port(where + ".port", entry["port"])
    return errors


def check_userlist(name, value):
    """Users written to PgBouncer's auth_file, [{name, password}]: one user per line, so no line breaks.

    The names are checked as names; a password only for line breaks, and never shown.
    """
    if not isinstance(value, list):
        return ["%s must be a list of {name, password}" % name]
    errors = []
    for index, entry in enumerate(value):
        where = "%s[%d]" % (name, index)
        if not isinstance(entry, dict):
            errors.append("%s must be a mapping {name, password}" % where)
            continue
        errors += check_name(where + ".name", entry.get("name"))
        errors += check_secret(where + ".password", entry.get("password", ""))
    return errors


def check_secret(name, value):
    """A password written on one line of a file: no line break or control character. Never shown."""
    if value is None:
        return []
    if not isinstance(value, str):
        value = str(value)
    if _CONTROL.search(value):
        return ["%s contains a line break or control character %s, which would end its line and start "
                "another: use printable characters only" % (name, _SECRET)]
    return []


def _settings_errors(name, value, key_is_good, key_rule, write):
    """Problems with an extra-settings mapping: each key must pass ``key_is_good`` (else
    ``key_rule`` is the fix), each value must be one ``write`` can write."""
    if not isinstance(value, dict):
        return ["%s=%s must be a mapping of setting names to values" % (name, _shown(value))]
    errors = []
    for key in sorted(value, key=str):
        if not isinstance(key, str) or not key_is_good(key):
            errors.append("%s has the key %s, %s" % (name, _shown(key), key_rule))
            continue
        try:
            write(value[key])
        except ValueError as exc:
            errors.append("%s[%r]=%s %s" % (name, key, _shown(value[key]), exc))
    return errors


def check_postgresql_settings(name, value):
    """postgresql_extra_settings: identifier keys; values are quoted by postgresql_conf_value."""
    return _settings_errors(
        name, value, _POSTGRESQL_KEY.fullmatch,
        "which is not a PostgreSQL setting name: use letters, digits and _, e.g. work_mem, or one dot for an "
        "extension's setting (pg_stat_statements.max)", postgresql_conf_value)


def check_redis_settings(name, value):
    """redis_extra_settings: directive names as keys; values as redis_conf_args writes them."""
    return _settings_errors(
        name, value, lambda key: _REDIS_KEY.fullmatch(key) and key != "include",
        "which is not a Redis directive: use lowercase letters, digits and -, e.g. timeout or tcp-keepalive "
        "(include is not allowed)", redis_conf_args)


KINDS = {
    "server_names": check_server_names,
    "address": check_address,
    "listen_address": check_listen_address,
    "address_list": check_address_list,
    "absolute_path": check_absolute_path,
    "optional_absolute_path": check_optional_absolute_path,
    "url_path": check_url_path,
    "count": check_count,
    "port": check_port,
    "name": check_name,
    "sql_query": check_sql_query,
    "deletable_directory": check_deletable_directory,
    "pgbouncer_databases": check_pgbouncer_databases,
    "userlist": check_userlist,
    "secret": check_secret,
    "postgresql_settings": check_postgresql_settings,
    "redis_settings": check_redis_settings,
}
# Kinds whose checker takes the whole list; for every other kind a list value is
# checked item by item (nginx_denied_locations[0], ...).
_WHOLE_LIST_KINDS = ("pgbouncer_databases", "userlist")


def value_errors(values_by_kind):
    """Every problem with ``{kind: {variable name: value}}``; [] when all are good."""
    if not isinstance(values_by_kind, dict):
        return ["config values must be a mapping of kinds to {variable: value}, got %s" % type(values_by_kind).__name__]
    errors = []
    for kind in sorted(values_by_kind, key=str):
        checker = KINDS.get(kind)
        if checker is None:
            errors.append("%r is not a kind of configuration value: use one of %s" % (kind, ", ".join(sorted(KINDS))))
            continue
        variables = values_by_kind[kind] or {}
        for name in sorted(variables, key=str):
            value = variables[name]
            if isinstance(value, list) and kind not in _WHOLE_LIST_KINDS:
                for index, item in enumerate(value):
                    errors += checker("%s[%d]" % (name, index), item)
            else:
                errors += checker(name, value)
    return errors


def postgresql_conf_value(value):
    """``value`` as a quoted string of postgresql.conf.

    PostgreSQL's configuration file reads '...' with a quote written twice and
    backslash escapes (\\n, \\\\, ...): both are escaped, so the server reads
    exactly ``value``. A line break cannot be written at all and is refused.
    Raises ValueError naming the problem.
    """
    if value is None or isinstance(value, (list, dict)):
        raise ValueError("is not a single value: give a string, number or boolean")
    text = str(value)
    if _CONTROL.search(text):
        raise ValueError("contains a line break or control character, which postgresql.conf cannot hold: "
                         "write the value on one line")
    return "'%s'" % text.replace("\\", "\\\\").replace("'", "''")


def _redis_quoted(text):
    if text and not re.search(r"[\s\"'\\]", text):
        return text
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')


def redis_conf_args(value):
    """The arguments of a redis.conf directive as Redis splits them.

    A list is one argument per item, each quoted the way redis.conf reads
    "..." (backslash and double quote escaped) when it needs it. A scalar is
    written as it is and may hold several arguments separated by spaces
    ("normal 0 0 0"), so it may not hold a quote or backslash. Nothing may hold
    a line break, which would end the directive and start another.
    Raises ValueError naming the problem.
    """
    if isinstance(value, dict) or value is None:
        raise ValueError("is not a value: give a string, a number or a list of arguments")
    items = value if isinstance(value, list) else [value]
    texts = []
    for item in items:
        if isinstance(item, (list, dict)) or item is None:
            raise ValueError("holds %r, which is not an argument: give strings or numbers" % (item,))
        text = ("yes" if item else "no") if isinstance(item, bool) else str(item)
        if _CONTROL.search(text):
            raise ValueError("contains a line break or control character, which would end the directive and "
                             "start another: write it on one line")
        texts.append(text)
    if isinstance(value, list):
        return " ".join(_redis_quoted(text) for text in texts)
    if re.search(r"[\"'\\]", texts[0]):
        raise ValueError("contains a quote or backslash, which redis.conf would read as quoting: give the "
                         "arguments as a list, and each is quoted for you")
    if not texts[0].strip():
        raise ValueError("is empty: give the directive's arguments")
    return texts[0]
