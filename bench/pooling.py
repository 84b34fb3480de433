# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PgBouncer against direct PostgreSQL, side by side, in one run.

1. Connect-per-transaction: every transaction opens a connection, runs one query
   and closes it, as a serverless or CGI-style client does. N transactions over a
   few threads, straight to PostgreSQL and through PgBouncer; p50/p99 latency,
   throughput and their ratios.
2. Concurrency: thousands of client connections held open at once through
   PgBouncer in transaction mode, against a PostgreSQL whose max_connections is
   about 100, each running queries while all are connected; errors counted.

The bench creates a throwaway role and database, starts its own PgBouncer on
another loopback port with a temporary configuration made of the collection's
recommended production settings (validated against the live server), and
removes all of it at the end, stopping PgBouncer by its PID. Traffic goes to
127.0.0.1 only. Run it as root (it uses runuser to reach PostgreSQL as postgres):

    .venv/bin/python bench/pooling.py [--transactions 2000] [--threads 4] [--clients 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psycopg

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "collections"))

from ansible_collections.unitehub.platform.plugins.module_utils import pool_rules  # noqa: E402
from ansible_collections.unitehub.platform.tests.support.loopback import free_port, listening  # noqa: E402
from ansible_collections.unitehub.platform.tests.support.waiting import wait_until  # noqa: E402

HOST = "127.0.0.1"
SEED_LATENCY_REDUCTION = "60-80%"
SEED_CONCURRENT_CLIENTS = 3000


def log(message=""):
    print(message, flush=True)


def psql_as_postgres(sql):
    proc = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-Atqc", sql],
                          capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise SystemExit("psql as postgres failed: %s" % proc.stderr.strip())
    return proc.stdout.strip()


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


class Bench(object):
    def __init__(self, args):
        self.args = args
        suffix = secrets.token_hex(3)
        self.name = "uh_bench_%s" % suffix
        self.password = secrets.token_urlsafe(16)
        self.port = args.pgbouncer_port or free_port()
        self.workdir = None
        self.pid = None
        self.created = False

    # --- setup / teardown ------------------------------------------------------------

    def setup(self):
        wait_until(lambda: listening(5432), 2, interval=0.1,
                   what="PostgreSQL to listen on %s:5432 (run playbooks/site.yml first)" % HOST)
        psql_as_postgres("CREATE ROLE %s LOGIN PASSWORD '%s'" % (self.name, self.password))
        self.created = True
        psql_as_postgres("CREATE DATABASE %s OWNER %s" % (self.name, self.name))
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
        # The role's SCRAM secret as PostgreSQL stores it: PgBouncer checks a client against it
        # without redoing the password hashing, and logs in to PostgreSQL with the client's proof.
        secret = psql_as_postgres("SELECT rolpassword FROM pg_authid WHERE rolname = '%s'" % self.name)
        with open(userlist, "w") as handle:
            handle.write('"%s" "%s"\n' % (self.name, secret if self.args.userlist == "secret" else self.password))
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
            "log_connections = 0",
            "log_disconnections = 0",
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

    # --- part 1: connect per transaction ---------------------------------------------------

    def connect_kwargs(self, port):
        return dict(host=HOST, port=port, dbname=self.name, user=self.name, password=self.password,
                    connect_timeout=10, prepare_threshold=None)

    def one_transaction(self, port):
        start = time.perf_counter()
        with psycopg.connect(**self.connect_kwargs(port)) as conn:
            conn.execute("SELECT 1").fetchone()
        return time.perf_counter() - start

    def connect_per_transaction(self, port):
        total, threads = self.args.transactions, self.args.threads
        latencies = []
        errors = []
        lock = threading.Lock()
        counter = iter(range(total))
        deadline = time.monotonic() + self.args.timeout / 3.0

        def worker():
            while time.monotonic() < deadline:
                with lock:
                    if next(counter, None) is None:
                        return
                try:
                    elapsed = self.one_transaction(port)
                except psycopg.Error as exc:
                    with lock:
                        errors.append(str(exc).splitlines()[0])
                    continue
                with lock:
                    latencies.append(elapsed)

        for _warmup in range(20):  # warm up both paths alike
            self.one_transaction(port)
        started = time.perf_counter()
        pool = [threading.Thread(target=worker) for _thread in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        wall = time.perf_counter() - started
        latencies.sort()
        return {
            "done": len(latencies),
            "errors": len(errors),
            "first_error": errors[0] if errors else "",
            "p50": statistics.median(latencies) * 1000,
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
            "mean": statistics.fmean(latencies) * 1000,
            "tps": len(latencies) / wall,
        }

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--transactions", type=int, default=2000, help="transactions per path (default 2000)")
    parser.add_argument("--threads", type=int, default=4, help="client threads in the connect-per-transaction part")
    parser.add_argument("--clients", type=int, default=SEED_CONCURRENT_CLIENTS,
                        help="client connections held at once through PgBouncer (default 3000)")
    parser.add_argument("--connect-concurrency", type=int, default=128,
                        help="connection attempts in flight at once while opening the clients")
    parser.add_argument("--pgbouncer-port", type=int, default=0, help="loopback port for the bench's PgBouncer")
    parser.add_argument("--userlist", choices=["secret", "plain"], default="secret",
                        help="write the role's SCRAM secret (default) or its plain password to the userlist")
    parser.add_argument("--timeout", type=float, default=300, help="seconds the whole bench may take")
    parser.add_argument("--show-direct-limit", action="store_true",
                        help="also open --clients connections straight to PostgreSQL, to show where it refuses "
                             "(briefly takes every free server connection)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the bench creates a role and a database through runuser -u postgres")

    bench = Bench(args)
    bench_started = time.monotonic()
    try:
        bench.setup()
        facts, settings = bench.server_facts, bench.settings
        log("PgBouncer pooling bench (%s, PostgreSQL max_connections %d, superuser_reserved %d, %d cores)"
            % (facts["pgbouncer_version"], facts["server_max_connections"], facts["superuser_reserved_connections"],
               facts["cores"]))
        log("Bench PgBouncer pid %d on %s:%d: pool_mode %s, default_pool_size %d, reserve_pool_size %d, "
            "max_client_conn %d, open files limit %d"
            % (bench.pid, HOST, bench.port, settings["pool_mode"], settings["default_pool_size"],
               settings["reserve_pool_size"], settings["max_client_conn"], bench.open_files))
        log()

        log("1. Connect per transaction: %d transactions per path, %d threads (connect, SELECT 1, close)"
            % (args.transactions, args.threads))
        direct = bench.connect_per_transaction(5432)
        pooled = bench.connect_per_transaction(bench.port)
        log("   %-22s %9s %9s %9s %10s %7s %7s" % ("", "p50 ms", "p99 ms", "mean ms", "tx/s", "done", "errors"))
        for label, row in (("direct to PostgreSQL", direct), ("through PgBouncer", pooled)):
            log("   %-22s %9.2f %9.2f %9.2f %10.1f %7d %7d"
                % (label, row["p50"], row["p99"], row["mean"], row["tps"], row["done"], row["errors"]))
            if row["errors"]:
                log("      first error: %s" % row["first_error"])
        log("   ratios (direct / PgBouncer): p50 x%.2f, p99 x%.2f; throughput x%.2f (PgBouncer / direct)"
            % (direct["p50"] / pooled["p50"], direct["p99"] / pooled["p99"], pooled["tps"] / direct["tps"]))
        log("   latency reduction through PgBouncer: p50 %.0f%%, p99 %.0f%% (the target is %s)"
            % (100 * (1 - pooled["p50"] / direct["p50"]), 100 * (1 - pooled["p99"] / direct["p99"]),
               SEED_LATENCY_REDUCTION))
        log()

        log("2. %d client connections held at once through PgBouncer, each querying while all are connected"
            % args.clients)
        remaining = args.timeout - (time.monotonic() - bench_started)
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
            log("   clients per server connection: %.0f" % (held["peak_connected"] / max(held["sv_open"], 1)))
        passed = not held["errors"] and held["peak_connected"] == args.clients
        log("   result: %s, %d concurrent clients, %d errors (the target is %d+ with pooling)"
            % ("PASS" if passed else "FAIL", held["peak_connected"], len(held["errors"]), SEED_CONCURRENT_CLIENTS))

        if args.show_direct_limit:
            log()
            opened, refused, error = bench.direct_limit(args.clients)
            log("3. The same %d clients straight to PostgreSQL: %d opened, %d refused (%s)"
                % (args.clients, opened, refused, error))
        log()
        log("bench took %.0f s" % (time.monotonic() - bench_started))
        return 0 if passed else 1
    finally:
        bench.teardown()


if __name__ == "__main__":
    sys.exit(main())
