# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus exporter of PgBouncer's SHOW POOLS and SHOW STATS (unitehub.platform.monitoring).

Debian 12's prometheus-pgbouncer-exporter (1.7) asks SHOW STATS for a column PgBouncer
renamed in 1.8 and fails at start against Debian's PgBouncer 1.18. This one exports every
numeric column PgBouncer sends, so a new PgBouncer adds series instead of breaking it:
SHOW POOLS as pgbouncer_pools_<column>{database,user}, SHOW STATS as
pgbouncer_stats_<column>{database}, and pgbouncer_up (0 when PgBouncer cannot be read).

    PGBOUNCER_EXPORTER_LISTEN=127.0.0.1:9127 PGHOST=127.0.0.1 PGPORT=6432 PGUSER=stats \\
    PGPASSFILE=/path/to/pgpass python3 pgbouncer_exporter.py

Everything else comes from libpq's environment; the password only from PGPASSFILE, never
from the command line. Python 3 standard library and psycopg 3 (python3-psycopg).
"""

from __future__ import annotations

import decimal
import http.server
import math
import os
import re
import sys

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# (command, metric prefix, label columns) of each admin console command exported.
COMMANDS = (
    ("SHOW POOLS", "pgbouncer_pools", ("database", "user")),
    ("SHOW STATS", "pgbouncer_stats", ("database",)),
)
_METRIC_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _label_value(value) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value):
    """The value as exposition text when it is a count or a time, else None (text columns, flags).
    Counters stay exact: PgBouncer's microsecond totals outgrow six significant digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal)):
        return None
    number = float(value)
    if math.isfinite(number) and value == int(value):
        return str(int(value))
    return repr(number)


def exposition(tables: list[tuple[str, tuple[str, ...], list[str], list[tuple]]], up: bool) -> str:
    """The text exposition of ``(prefix, label columns, column names, rows)`` tables."""
    lines = ["# HELP pgbouncer_up 1 when PgBouncer's admin console answered this scrape.",
             "# TYPE pgbouncer_up gauge", f"pgbouncer_up {1 if up else 0}"]
    for prefix, label_columns, columns, rows in tables:
        for index, column in enumerate(columns):
            name = f"{prefix}_{column}"
            if column in label_columns or not _METRIC_NAME.match(name):
                continue
            samples = []
            for row in rows:
                value = _number(row[index])
                if value is None:
                    continue
                labels = ",".join(f'{label}="{_label_value(row[columns.index(label)])}"'
                                  for label in label_columns if label in columns)
                samples.append(f"{name}{{{labels}}} {value}")
            if samples:
                lines += [f"# TYPE {name} gauge"] + samples
    return "\n".join(lines) + "\n"


def scrape() -> str:
    """Read PgBouncer's admin console (database "pgbouncer") and render what it said."""
    import psycopg  # imported here so that the pure functions above load without it

    tables = []
    try:
        # The console speaks only the simple query protocol: autocommit, client-side cursors.
        with psycopg.connect(dbname="pgbouncer", autocommit=True, prepare_threshold=None, connect_timeout=5,
                             cursor_factory=psycopg.ClientCursor) as conn:
            for command, prefix, label_columns in COMMANDS:
                cursor = conn.execute(command)
                columns = [column.name for column in cursor.description]
                tables.append((prefix, label_columns, columns, cursor.fetchall()))
    except Exception as exc:  # any failure is a scrape with pgbouncer_up 0, never a dead exporter
        print(f"pgbouncer_exporter: cannot read PgBouncer: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return exposition([], up=False)
    return exposition(tables, up=True)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the name http.server calls)
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404)
            return
        body = scrape().encode()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # one line per scrape would only fill the log
        pass


def main() -> int:
    host, _sep, port = os.environ.get("PGBOUNCER_EXPORTER_LISTEN", "127.0.0.1:9127").rpartition(":")
    server = http.server.HTTPServer((host.strip("[]") or "127.0.0.1", int(port)), Handler)
    print(f"pgbouncer_exporter: serving /metrics on {host}:{port}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
