# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PgBouncer against direct PostgreSQL, side by side, in one run, measured by pgbench.

1. pgbench, PostgreSQL's own client, straight to PostgreSQL and through PgBouncer,
   one after the other for each of: a new connection per transaction (-C) and
   persistent connections, each select-only (-S) and the TPC-B-like write mix.
   Latency, throughput and the ratio of each pair, with PASS/MISS against the
   targets: connect-per-transaction latency at least 10x lower through the pool,
   and at most 0.3 ms added per query on persistent connections.
   1b. The same SELECT 1, -C and persistent, as the app's user against the stack's
   own PgBouncer (6432, configured by the pgbouncer role) and PostgreSQL, with the
   local inventory's generated password (skipped when its file is absent).
2. Concurrency: thousands of client connections held open at once through
   PgBouncer in transaction mode, against a PostgreSQL whose max_connections is
   about 100, each running a query while all are connected; 0 errors is the target.

Both sides use the same user with the same SCRAM verifier: a throwaway role with a
generated password whose verifier (--iterations, the collection's default for
generated passwords unless told) is set on PostgreSQL and written to the userlist
of a throwaway PgBouncer that runs the collection's recommended production
settings on another loopback port. --userlist plain writes the password instead,
as PgBouncer used to get it, to show what that costs. Everything is removed at the
end; PgBouncer is stopped by its PID, pgbench runs are bounded by -T. Traffic goes
to 127.0.0.1 only. Run it as root (it uses runuser to reach PostgreSQL as postgres),
holding the stack lock so that nothing else takes the CPU meanwhile:

    flock /tmp/unitehub-stack.lock .venv/bin/python bench/pooling.py [--seconds 5] [--iterations 16]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import hashlib
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import psycopg

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "collections"))

from ansible_collections.unitehub.platform.plugins.module_utils import pool_rules, scram  # noqa: E402
from ansible_collections.unitehub.platform.tests.support.loopback import free_port, listening  # noqa: E402
from ansible_collections.unitehub.platform.tests.support.waiting import wait_until  # noqa: E402

HOST = "127.0.0.1"
DIRECT_PORT = 5432
TARGET_CONNECT_SPEEDUP = 10.0  # connect-per-transaction latency, direct / pooled
TARGET_PERSISTENT_OVERHEAD_MS = 0.3  # added latency per query through the pool
TARGET_CONCURRENT_CLIENTS = 3000
SCENARIOS = (  # (label, pgbench options, queries per transaction)
    ("connect per transaction, select-only", ["-C", "-S"], 1),
    ("connect per transaction, write mix", ["-C"], 7),
    ("persistent, select-only", ["-S"], 1),
    ("persistent, write mix", [], 7),
)


def log(message=""):
    print(message, flush=True)


def psql_as_postgres(sql):
    proc = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-Atqc", sql],
                          capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise SystemExit("psql as postgres failed: %s" % proc.stderr.strip())
    return proc.stdout.strip()


def find_pgbench():
    """pgbench from PATH or from Debian's versioned directory (package postgresql-<version>)."""
    found = shutil.which("pgbench") or sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))[-1:]
    if not found:
        raise SystemExit("pgbench not found: install postgresql-15 (the postgresql role does)")
    return found if isinstance(found, str) else found[0]


def raise_open_files(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        raise SystemExit("open files limit %d is below the %d this bench needs; raise the hard limit (ulimit -Hn)"
                         % (soft, needed))
    return soft


def parse_pgbench(output):
    """Latency (ms), tps and failed transactions from pgbench's summary."""
    def number(pattern):
        found = re.search(pattern, output, re.MULTILINE)
        return float(found.group(1)) if found else None
    return {
        "latency": number(r"^latency average = ([0-9.]+) ms"),
        "tps": number(r"^tps = ([0-9.]+)"),
        "done": int(number(r"^number of transactions actually processed: ([0-9]+)") or 0),
        "failed": int(number(r"^number of failed transactions: ([0-9]+)") or 0),
    }


class Bench(object):
    def __init__(self, args):
        self.args = args
        suffix = secrets.token_hex(3)
        self.name = "uh_bench_%s" % suffix
        # A generated password, as the inventories make them; its verifier is the one both sides check.
        self.password = secrets.token_urlsafe(32)
        self.verifier = scram.generated_password_verifier(self.password, self.name, args.iterations)
        self.port = args.pgbouncer_port or free_port()
        self.workdir = None
        self.pid = None
        self.created = False

    # --- setup / teardown ------------------------------------------------------------

    def setup(self):
        wait_until(lambda: listening(5432), 2, interval=0.1,
                   what="PostgreSQL to listen on %s:5432 (run playbooks/site.yml first)" % HOST)
        psql_as_postgres("CREATE ROLE %s LOGIN PASSWORD '%s'" % (self.name, self.verifier))
        self.created = True
        psql_as_postgres("CREATE DATABASE %s OWNER %s" % (self.name, self.name))
        self.pgbench(DIRECT_PORT, ["-i", "-q", "-s", "1"], check=True)
        self.server_facts = {
            "server_max_connections": int(psql_as_postgres("SHOW max_connections")),
            "superuser_reserved_connections": int(psql_as_postgres("SHOW superuser_reserved_connections")),
        }
        version = subprocess.run(["pgbouncer", "--version"], capture_output=True, text=True, check=True).stdout
        self.server_facts["pgbouncer_version"] = version.splitlines()[0]
        self.server_facts["cores"] = os.cpu_count() or 1

        settings = pool_rules.recommended_settings("production", self.server_facts)
        # Room for every client the concurrency part opens, plus the console.
        settings["max_client_conn"] = max(settings["max_client_conn"], self.args.clients + 100)
        report = pool_rules.validate(settings, self.server_facts)
        if report["errors"]:
            raise SystemExit("the bench's pool settings are refused: %s" % "; ".join(report["errors"]))
        self.settings = report["effective"]

        self.open_files = raise_open_files(self.settings["max_client_conn"] + self.args.clients + 512)
        self.workdir = tempfile.mkdtemp(prefix="uh-pgbouncer-bench-")
        shutil.chown(self.workdir, "postgres", "postgres")
        userlist = os.path.join(self.workdir, "userlist.txt")
        # The verifier PostgreSQL stores: PgBouncer checks a client against it without deriving a
        # key, and logs in to PostgreSQL with the client's proof (SCRAM pass-through).
        stored = psql_as_postgres("SELECT rolpassword FROM pg_authid WHERE rolname = '%s'" % self.name)
        assert stored == self.verifier, "PostgreSQL stores another verifier than the one set"
        with open(userlist, "w") as handle:
            handle.write('"%s" "%s"\n' % (self.name, self.verifier if self.args.userlist == "verifier" else self.password))
        os.chmod(userlist, 0o600)
        shutil.chown(userlist, "postgres", "postgres")
        config = os.path.join(self.workdir, "pgbouncer.ini")
        lines = [
            "[databases]",
            "%s = host=%s port=5432 dbname=%s" % (self.name, HOST, self.name),
            "[pgbouncer]",
            "listen_addr = %s" % HOST,
            "listen_port = %d" % self.port,
            "listen_backlog = 4096",
            "unix_socket_dir = %s" % self.workdir,
            "pidfile = %s" % os.path.join(self.workdir, "pgbouncer.pid"),
            "logfile = %s" % os.path.join(self.workdir, "pgbouncer.log"),
            "auth_file = %s" % userlist,
            "admin_users = %s" % self.name,
            "log_connections = %d" % self.args.log_connections,
            "log_disconnections = %d" % self.args.log_connections,
        ]
        for key, value in sorted(self.settings.items()):
            if key == "max_prepared_statements" and not value:
                continue  # PgBouncer < 1.21 does not know the setting
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            lines.append("%s = %s" % (key, value))
        with open(config, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        # -d daemonises; -u drops to postgres. The open files limit raised above is inherited.
        subprocess.run(["pgbouncer", "-d", "-u", "postgres", config], check=True, timeout=30)
        wait_until(lambda: listening(self.port), 15, interval=0.1,
                   what="PgBouncer to listen on %s:%d (see %s)" % (HOST, self.port, self.workdir))
        with open(os.path.join(self.workdir, "pgbouncer.pid")) as handle:
            self.pid = int(handle.read().strip())

    def teardown(self):
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
        if self.created:
            psql_as_postgres("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.name)
            psql_as_postgres("DROP ROLE IF EXISTS %s" % self.name)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --- part 1: pgbench, direct and pooled --------------------------------------------------

    def connect_kwargs(self, port):
        return dict(host=HOST, port=port, dbname=self.name, user=self.name, password=self.password,
                    connect_timeout=10, prepare_threshold=None)

    def pgbench(self, port, options, check=False, login=None):
        """pgbench as the bench user on its database, or as ``login`` (user, password, database)."""
        user, password, dbname = login or (self.name, self.password, self.name)
        env = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="10")
        argv = [self.args.pgbench, "-h", HOST, "-p", str(port), "-U", user] + options + [dbname]
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False,
                              timeout=self.args.seconds * 4 + 60)
        if check and proc.returncode != 0:
            raise SystemExit("%s failed: %s" % (" ".join(argv), proc.stderr.strip()[-2000:]))
        return proc

    def measure(self, port, options, login=None):
        """One bounded pgbench run (-T seconds), its figures, and its first error if any."""
        proc = self.pgbench(port, ["-n", "-c", str(self.args.pgbench_clients), "-j", str(self.args.pgbench_threads),
                                   "-T", str(self.args.seconds)] + options, login=login)
        figures = parse_pgbench(proc.stdout)
        errors = [line for line in proc.stderr.splitlines() if "error" in line.lower() or "fatal" in line.lower()]
        figures["error"] = (errors[0] if errors else "") if proc.returncode == 0 or errors else proc.stderr.strip()[-300:]
        figures["ok"] = proc.returncode == 0 and figures["latency"] is not None
        return figures

    # --- part 2: many clients at once --------------------------------------------------------

    async def hold_many(self):
        clients = self.args.clients
        # Autocommit: between queries a client holds no transaction, so in transaction mode
        # its server connection goes back to the pool at once.
        kwargs = dict(self.connect_kwargs(self.port), autocommit=True)
        gate = asyncio.Semaphore(self.args.connect_concurrency)
        all_connected = asyncio.Event()
        measured = asyncio.Event()
        state = {"connected": 0, "queried": 0, "errors": [], "peak_connected": 0}

        async def one_client():
            conn = None
            try:
                async with gate:
                    conn = await psycopg.AsyncConnection.connect(**kwargs)
                    await (await conn.execute("SELECT 1")).fetchone()
                state["connected"] += 1
                state["peak_connected"] = max(state["peak_connected"], state["connected"])
                if state["connected"] == clients:
                    all_connected.set()
                await all_connected.wait()
                # Every client runs a query while all of them are connected.
                await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
                state["queried"] += 1
                await measured.wait()
            except Exception as exc:  # every failure is counted and reported, none hidden
                state["errors"].append("%s: %s" % (type(exc).__name__, str(exc).splitlines()[0] if str(exc) else ""))
                if state["connected"] + len(state["errors"]) >= clients:
                    all_connected.set()
            finally:
                if conn is not None:
                    await conn.close()

        started = time.perf_counter()
        tasks = [asyncio.ensure_future(one_client()) for _client in range(clients)]
        snapshot = {}
        try:
            await asyncio.wait_for(all_connected.wait(), timeout=self.args.timeout / 2.0)
            connect_seconds = time.perf_counter() - started
            deadline = time.monotonic() + 60
            while state["queried"] + len(state["errors"]) < clients and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            snapshot = await self.snapshot()
        finally:
            measured.set()
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=60)
        return dict(state, connect_seconds=connect_seconds, seconds=time.perf_counter() - started, **snapshot)

    async def snapshot(self):
        """What PgBouncer and PostgreSQL see while every client is connected."""
        console = await psycopg.AsyncConnection.connect(host=HOST, port=self.port, dbname="pgbouncer", user=self.name,
                                                        password=self.password, autocommit=True,
                                                        prepare_threshold=None)
        try:
            cursor = await console.execute("SHOW POOLS")
            names = [c.name for c in cursor.description]
            pools = [dict(zip(names, row)) for row in await cursor.fetchall()]
        finally:
            await console.close()
        pool = [p for p in pools if p["database"] == self.name][0]
        backends = int(psql_as_postgres("SELECT count(*) FROM pg_stat_activity WHERE datname = '%s'" % self.name))
        total = int(psql_as_postgres("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"))
        return {
            "cl_active": pool["cl_active"],
            "cl_waiting": pool["cl_waiting"],
            "sv_open": pool["sv_active"] + pool["sv_idle"] + pool["sv_used"] + pool["sv_tested"] + pool["sv_login"],
            "server_backends": backends,
            "server_backends_total": total,
        }

    def direct_limit(self, attempts):
        """Open connections straight to PostgreSQL until it refuses; release them at once."""
        held, refused, first_error = [], 0, ""
        try:
            for _attempt in range(attempts):
                try:
                    held.append(psycopg.connect(**self.connect_kwargs(5432)))
                except psycopg.OperationalError as exc:
                    refused += 1
                    first_error = first_error or str(exc).strip().splitlines()[-1]
        finally:
            for conn in held:
                conn.close()
        return len(held), refused, first_error


def load_average():
    """The 1-minute load average: other work on the machine skews every figure here."""
    return "%.2f" % os.getloadavg()[0]


def key_derivation_ms(iterations, rounds=20):
    """What one PBKDF2-SHA-256 key derivation costs here, the client's share of a SCRAM login."""
    started = time.perf_counter()
    for _round in range(rounds):
        hashlib.pbkdf2_hmac("sha256", b"x" * 43, b"s" * 16, iterations)
    return (time.perf_counter() - started) * 1000 / rounds


def pair_ok(pair):
    return pair["direct"]["ok"] and pair["pooled"]["ok"]


def median_pair(pairs):
    """The pair with the median direct/pooled ratio (the lower middle one for an even count);
    a failed pair, if any, so that a failure is never hidden."""
    failed = [pair for pair in pairs if not pair_ok(pair)]
    if failed:
        return failed[0]
    ranked = sorted(pairs, key=lambda pair: pair["direct"]["latency"] / pair["pooled"]["latency"])
    return ranked[(len(ranked) - 1) // 2]


def pgbench_part(bench):
    """Each scenario direct, then pooled; returns the PASS/MISS verdicts."""
    args = bench.args
    log("1. pgbench %s, %d clients, %d threads, %d s per run; direct = PostgreSQL %s:%d, pooled = PgBouncer %s:%d"
        % (os.path.basename(args.pgbench), args.pgbench_clients, args.pgbench_threads, args.seconds,
           HOST, DIRECT_PORT, HOST, bench.port))
    log("   user %s, SCRAM verifier with %d iterations on both sides; PgBouncer's userlist holds the %s"
        % (bench.name, args.iterations, "verifier" if args.userlist == "verifier" else "PLAIN PASSWORD (experiment)"))
    log("   one PBKDF2 key derivation here: %.2f ms at %d iterations, %.2f ms at 4096"
        % (key_derivation_ms(args.iterations), args.iterations, key_derivation_ms(scram.SCRAM_ITERATIONS)))
    log("   %-38s %-7s %11s %10s %8s %7s" % ("", "", "latency ms", "tps", "done", "failed"))
    results = {}
    for label, options, queries in SCENARIOS:
        # The target pair runs --rounds times, interleaved, and is judged on its median pair: one
        # run's ratio moves by +-15 % here whenever other work takes the CPU.
        pairs = []
        for _round in range(args.rounds if "-C" in options and "-S" in options else 1):
            pair = {}
            for side, port in (("direct", DIRECT_PORT), ("pooled", bench.port)):
                row = bench.measure(port, options)
                pair[side] = row
                log("   %-38s %-7s %11s %10s %8d %7d%s"
                    % (label if side == "direct" and not pairs else "", side,
                       "%.3f" % row["latency"] if row["latency"] is not None else "-",
                       "%.1f" % row["tps"] if row["tps"] is not None else "-", row["done"], row["failed"],
                       ("   " + row["error"]) if row["error"] else ""))
            pairs.append(pair)
        results[label] = (median_pair(pairs), options, queries)
        if len(pairs) > 1:
            ratios = ["x%.2f" % (p["direct"]["latency"] / p["pooled"]["latency"]) if pair_ok(p) else "failed"
                      for p in pairs]
            log("   %-38s ratios of the %d pairs: %s; the median pair counts" % ("", len(pairs), ", ".join(ratios)))

    verdicts = []
    log()
    for label, (pair, options, queries) in results.items():
        direct, pooled = pair["direct"], pair["pooled"]
        if not (direct["ok"] and pooled["ok"]):
            log("   %-38s no ratio: a run failed" % label)
            verdicts.append(False)
            continue
        ratio = direct["latency"] / pooled["latency"]
        line = "   %-38s latency direct/pooled x%.2f, tps pooled/direct x%.2f" % (
            label, ratio, pooled["tps"] / direct["tps"])
        if "-C" in options and "-S" in options:  # a connection per query: the pool must make it much cheaper
            passed = ratio >= TARGET_CONNECT_SPEEDUP
            line += "; target >= x%.0f: %s" % (TARGET_CONNECT_SPEEDUP, "PASS" if passed else "MISS")
            verdicts.append(passed)
        elif "-C" in options:  # writes dominate: no target, the ratio is shown
            pass
        else:  # persistent connections: the pool may add little per query
            overhead = (pooled["latency"] - direct["latency"]) / queries
            passed = overhead <= TARGET_PERSISTENT_OVERHEAD_MS
            line += "; %+.3f ms per query, target <= %.1f ms: %s" % (
                overhead, TARGET_PERSISTENT_OVERHEAD_MS, "PASS" if passed else "MISS")
            verdicts.append(passed)
        log(line)
    return verdicts


def stack_part(bench):
    """The stack's own PgBouncer (as the pgbouncer role configured it) against its PostgreSQL,
    as the app's user with the inventory's generated password: SELECT 1, -C and persistent."""
    args = bench.args
    with open(args.stack_password_file) as handle:
        password = handle.read().split()[0]
    script = os.path.join(bench.workdir, "select1.sql")
    with open(script, "w") as handle:
        handle.write("SELECT 1;\n")
    login = (args.stack_user, password, args.stack_database)
    log("1b. The stack's own PgBouncer %s:%d and PostgreSQL %s:%d, as %s (the userlist the role wrote), SELECT 1"
        % (HOST, args.stack_port, HOST, DIRECT_PORT, args.stack_user))
    verdicts = []
    for label, options in (("connect per transaction", ["-C", "-f", script]), ("persistent", ["-f", script])):
        pairs = [{"direct": bench.measure(DIRECT_PORT, options, login),
                  "pooled": bench.measure(args.stack_port, options, login)}
                 for _round in range(args.rounds if "-C" in options else 1)]
        direct, pooled = median_pair(pairs)["direct"], median_pair(pairs)["pooled"]
        if len(pairs) > 1:
            log("   %-25s ratios of the %d pairs: %s; the median pair counts" % (label, len(pairs), ", ".join(
                "x%.2f" % (p["direct"]["latency"] / p["pooled"]["latency"]) if pair_ok(p) else "failed" for p in pairs)))
        if not (direct["ok"] and pooled["ok"]):
            log("   %-25s a run failed: %s" % (label, direct["error"] or pooled["error"]))
            verdicts.append(False)
            continue
        ratio = direct["latency"] / pooled["latency"]
        line = "   %-25s direct %.3f ms, pooled %.3f ms: x%.2f" % (label, direct["latency"], pooled["latency"], ratio)
        if "-C" in options:
            passed = ratio >= TARGET_CONNECT_SPEEDUP
            line += "; target >= x%.0f: %s" % (TARGET_CONNECT_SPEEDUP, "PASS" if passed else "MISS")
        else:
            passed = pooled["latency"] - direct["latency"] <= TARGET_PERSISTENT_OVERHEAD_MS
            line += "; %+.3f ms per query, target <= %.1f ms: %s" % (
                pooled["latency"] - direct["latency"], TARGET_PERSISTENT_OVERHEAD_MS, "PASS" if passed else "MISS")
        log(line)
        verdicts.append(passed)
    return verdicts


def concurrency_part(bench, remaining):
    args, facts, settings = bench.args, bench.server_facts, bench.settings
    log("2. %d client connections held at once through PgBouncer, each querying while all are connected"
        % args.clients)
    args.timeout = max(remaining, 60)
    held = asyncio.run(bench.hold_many())
    log("   connected %d of %d in %.1f s, %d queried while all were connected, errors %d"
        % (held["peak_connected"], args.clients, held["connect_seconds"], held["queried"], len(held["errors"])))
    if held["errors"]:
        log("      first error: %s" % held["errors"][0])
    if "cl_active" in held:
        log("   PgBouncer saw cl_active %d, cl_waiting %d, served by %d server connections (pool %d + reserve %d)"
            % (held["cl_active"], held["cl_waiting"], held["sv_open"], settings["default_pool_size"],
               settings["reserve_pool_size"]))
        log("   PostgreSQL had %d backends for the bench database, %d client backends in all, max_connections %d"
            % (held["server_backends"], held["server_backends_total"], facts["server_max_connections"]))
    passed = not held["errors"] and held["peak_connected"] == args.clients >= TARGET_CONCURRENT_CLIENTS
    log("   %d concurrent clients against max_connections %d, %d errors; target %d+ with 0 errors: %s"
        % (held["peak_connected"], facts["server_max_connections"], len(held["errors"]), TARGET_CONCURRENT_CLIENTS,
           "PASS" if passed else "MISS"))
    return passed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--seconds", type=int, default=5, help="seconds per pgbench run (-T; default 5, 12 runs)")
    parser.add_argument("--pgbench-clients", type=int, default=8, help="pgbench clients (-c; default 8)")
    # pgbench opens a -C connection with a blocking connect, so a thread logs in one client at a time;
    # a thread per client lets the 8 clients log in at once, as 8 app workers would, on both sides.
    parser.add_argument("--pgbench-threads", type=int, default=None,
                        help="pgbench threads (-j; default one per client)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved direct/pooled pairs of each -C select-only run (1 and 1b), judged on "
                             "the median pair (default 3)")
    parser.add_argument("--iterations", type=int, default=scram.GENERATED_PASSWORD_ITERATIONS,
                        help="SCRAM iterations of the bench user's verifier (default %d, the collection's for "
                             "generated passwords; 4096 is PostgreSQL's)" % scram.GENERATED_PASSWORD_ITERATIONS)
    parser.add_argument("--userlist", choices=["verifier", "plain"], default="verifier",
                        help="write the verifier (default) or, as an experiment, the plain password to the userlist")
    parser.add_argument("--log-connections", type=int, choices=[0, 1], default=1,
                        help="PgBouncer's log_connections and log_disconnections (default 1, as the role leaves them)")
    parser.add_argument("--stack-port", type=int, default=6432, help="the stack's PgBouncer (default 6432)")
    parser.add_argument("--stack-user", default="unitehub", help="the app's user on the stack (default unitehub)")
    parser.add_argument("--stack-database", default="unitehub", help="the app's database (default unitehub)")
    parser.add_argument("--stack-password-file", default=os.path.join(REPO_ROOT, "inventories", "local", ".secrets",
                                                                      "postgresql_app_password"),
                        help="the app user's generated password (default: the local inventory's); absent skips 1b")
    parser.add_argument("--clients", type=int, default=TARGET_CONCURRENT_CLIENTS,
                        help="client connections held at once through PgBouncer (default 3000; 0 skips)")
    parser.add_argument("--connect-concurrency", type=int, default=128,
                        help="connection attempts in flight at once while opening the clients")
    parser.add_argument("--pgbouncer-port", type=int, default=0, help="loopback port for the bench's PgBouncer")
    parser.add_argument("--pgbench", default=None, help="pgbench to run (default: PATH, then /usr/lib/postgresql/*/bin)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds the concurrency part may take")
    parser.add_argument("--show-direct-limit", action="store_true",
                        help="also open --clients connections straight to PostgreSQL, to show where it refuses "
                             "(briefly takes every free server connection)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the bench creates a role and a database through runuser -u postgres")
    args.pgbench = args.pgbench or find_pgbench()
    args.pgbench_threads = args.pgbench_threads or args.pgbench_clients

    bench = Bench(args)
    bench_started = time.monotonic()
    load_at_start = load_average()
    try:
        bench.setup()
        facts, settings = bench.server_facts, bench.settings
        log("PgBouncer pooling bench (%s, PostgreSQL max_connections %d, superuser_reserved %d, %d cores)"
            % (facts["pgbouncer_version"], facts["server_max_connections"], facts["superuser_reserved_connections"],
               facts["cores"]))
        log("Bench PgBouncer pid %d on %s:%d: pool_mode %s, default_pool_size %d, reserve_pool_size %d, "
            "max_client_conn %d, auth_type %s, log_connections %d, open files limit %d"
            % (bench.pid, HOST, bench.port, settings["pool_mode"], settings["default_pool_size"],
               settings["reserve_pool_size"], settings["max_client_conn"], settings["auth_type"], args.log_connections,
               bench.open_files))
        log()
        verdicts = pgbench_part(bench)
        log()
        if os.path.exists(args.stack_password_file):
            verdicts.extend(stack_part(bench))
            log()
        if args.clients:
            verdicts.append(concurrency_part(bench, args.timeout))
        if args.show_direct_limit:
            log()
            opened, refused, error = bench.direct_limit(args.clients)
            log("3. The same %d clients straight to PostgreSQL: %d opened, %d refused (%s)"
                % (args.clients, opened, refused, error))
        log()
        log("%d of %d targets met; bench took %.0f s; load average %s before it started (its own runs raise it; "
            "quote a figure only from a run that started on an idle machine, below 1)"
            % (sum(verdicts), len(verdicts), time.monotonic() - bench_started, load_at_start))
        return 0  # a bench reports; it never fails a build on a timing
    finally:
        bench.teardown()


if __name__ == "__main__":
    sys.exit(main())
