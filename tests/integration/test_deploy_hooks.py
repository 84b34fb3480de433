"""Deploy hooks against the real stack: one-off containers of the new release's image, with the
app's environment and secrets, at the four points of a deploy, each audited.

The hooks are small Python programs run by the reference app's image (python3 and psycopg are
in it). The pre_deploy hook really migrates: it creates a table in the app's database through
the same DATABASE_URL the slots get, and the test reads it back. Each test starts from the
stack's base release live; the module leaves it live again.
"""

from __future__ import annotations

import json
import os

import docker
import psycopg
import pytest

from ansible_collections.unitehub.platform.tests.integration.deploy_helpers import (
    BASE_RELEASE, DEPLOY, FAST, LOCK_FILE, ROLLBACK, audit_lines, deploy, ensure_live, lb_version, read_state,
    routing_snapshot,
)
from ansible_collections.unitehub.platform.tests.integration.ansible_runner import run_playbook
from ansible_collections.unitehub.platform.tests.integration.stack_helpers import local_secret

pytestmark = pytest.mark.integration

NEXT = "it-next"
TABLE = "it_hook_migrations"
# The deploy_events callback's own log (ansible.cfg): one event per run, with its phase timings.
EVENTS_LOG = "/var/log/unitehub/deploy-events.jsonl"
HOOK_PHASES = {"pre_deploy", "post_switch", "post_deploy", "on_failure"}

# Whether the target slot answers on its port: the pre_deploy hook runs before it starts.
PRE_DEPLOY = """
import os, socket, psycopg
port = {"blue": 3008, "green": 3009}[os.environ["APP_SLOT"]]
with socket.socket() as probe:
    serving = probe.connect_ex(("127.0.0.1", port)) == 0
print("slot", os.environ["APP_SLOT"], "serving" if serving else "not started yet")
# The secret is a file, as the slots get it (DATABASE_URL_FILE); never a value in the environment.
with open(os.environ["DATABASE_URL_FILE"], encoding="utf-8") as secret:
    url = secret.read()
with psycopg.connect(url, autocommit=True) as conn:
    conn.execute("CREATE TABLE IF NOT EXISTS %s (version text PRIMARY KEY, slot text NOT NULL)")
    conn.execute("INSERT INTO %s VALUES (%%s, %%s) ON CONFLICT (version) DO NOTHING",
                 (os.environ["APP_VERSION"], os.environ["APP_SLOT"]))
print("migrated to", os.environ["APP_VERSION"], "as", os.environ["APP_DEPLOY_ACTION"], "from",
      os.environ["APP_PREVIOUS_VERSION"])
""" % (TABLE, TABLE)

# What nginx serves right after the switch, asked without any proxy.
POST_SWITCH = """
import json, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
with opener.open("http://127.0.0.1:8080/api/version", timeout=5) as answer:
    print("nginx serves slot", answer.headers["X-Upstream-Slot"], "version", json.load(answer)["version"])
"""

POST_DEPLOY = """
import os, psycopg
with open(os.environ["DATABASE_URL_FILE"], encoding="utf-8") as secret, psycopg.connect(secret.read()) as conn:
    rows = conn.execute("SELECT version, slot FROM %s ORDER BY version").fetchall()
print("schema has", rows)
""" % TABLE


def hook(program, **settings):
    return dict(settings, command=["python3", "-c", program])


def failing(message, code):
    return hook("import sys; print(%r); sys.exit(%d)" % (message, code))


def other(slot):
    return "green" if slot == "blue" else "blue"


def app_db():
    return psycopg.connect(host="127.0.0.1", port=5432, dbname="unitehub", user="unitehub",
                           password=local_secret("postgresql_app_password"), connect_timeout=5)


def container(name):
    """(id, started at, image, running) of a container, or None when there is none."""
    try:
        attrs = docker.from_env().api.inspect_container(name)
    except docker.errors.NotFound:
        return None
    return attrs["Id"], attrs["State"]["StartedAt"], attrs["Config"]["Image"], attrs["State"]["Running"]


def hook_containers():
    return [c.name for c in docker.from_env().containers.list(all=True) if c.name.startswith("unitehub-hook-")]


def last_run_phases():
    with open(EVENTS_LOG, encoding="utf-8") as handle:
        return json.loads(handle.readlines()[-1])["phases"]


def new_audit_lines(before):
    return audit_lines()[before:]


def hook_line(lines, name):
    found = [line for line in lines if line["event"] == "hook" and line["hook"] == name]
    assert len(found) == 1, json.dumps(lines, indent=1)
    return found[0]


def assert_no_secret(*texts):
    password = local_secret("postgresql_app_password")
    for text in texts:
        assert password not in text


@pytest.fixture(scope="module", autouse=True)
def base_release_live_after():
    yield
    ensure_live(BASE_RELEASE)
    with app_db() as conn:
        conn.execute("DROP TABLE IF EXISTS %s" % TABLE)


def test_a_failing_pre_deploy_hook_stops_the_deploy_before_the_new_slot_starts():
    live = ensure_live(BASE_RELEASE)
    idle = other(live)
    idle_before, routing_before, audited = container("unitehub-" + idle), routing_snapshot(), len(audit_lines())

    result = deploy(NEXT, blue_green_hooks={
        "pre_deploy": failing("migration 0042 refused: column email already exists", 3),
        "on_failure": hook("import os; print('on_failure saw', os.environ['APP_HOOK'], os.environ['APP_VERSION'],"
                           " os.environ['APP_DEPLOY_ACTION'])"),
    })

    assert result.rc != 0
    assert "Traceback" not in result.output
    assert "pre_deploy hook (python3 -c" in result.output and "exited with code 3" in result.output
    assert "Traffic stayed on slot %s" % live in result.output, result.output[-6000:]
    # Nothing started, nothing switched: the idle slot's container is the one it was, traffic unchanged.
    assert container("unitehub-" + idle) == idle_before
    assert routing_snapshot() == routing_before and lb_version() == (live, BASE_RELEASE)
    assert read_state()["active_slot"] == live and not os.path.exists(LOCK_FILE)
    assert hook_containers() == []

    lines = new_audit_lines(audited)
    assert [(line["event"], line["hook"]) for line in lines] == [
        ("hook", "pre_deploy"), ("failure", None), ("hook", "on_failure")]
    pre = hook_line(lines, "pre_deploy")
    assert pre["outcome"] == "failed" and pre["exit_code"] == 3 and pre["duration_s"] > 0
    assert pre["output"] == ["migration 0042 refused: column email already exists"]
    assert pre["slot"] == idle and pre["version"] == NEXT and "exited with code 3" in pre["reason"]
    on_failure = hook_line(lines, "on_failure")
    assert on_failure["outcome"] == "success" and on_failure["exit_code"] == 0
    assert on_failure["output"] == ["on_failure saw on_failure %s deploy" % NEXT]
    assert "The on_failure hook passed (exit code 0" in result.output
    assert_no_secret(result.output, json.dumps(lines))


def test_passing_hooks_migrate_before_the_start_and_run_after_the_switch_and_the_record():
    live = ensure_live(BASE_RELEASE)
    idle = other(live)
    audited = len(audit_lines())

    result = deploy(NEXT, blue_green_hooks={
        "pre_deploy": hook(PRE_DEPLOY, timeout=120),
        "post_switch": hook(POST_SWITCH),
        "post_deploy": hook(POST_DEPLOY),
    })

    assert result.rc == 0, result.output[-6000:]
    assert lb_version() == (idle, NEXT)
    lines = new_audit_lines(audited)
    assert [line["hook"] or line["event"] for line in lines] == ["pre_deploy", "post_switch", "deploy", "post_deploy"]
    assert all(line["outcome"] == "success" for line in lines)
    pre = hook_line(lines, "pre_deploy")
    assert pre["exit_code"] == 0 and 0 < pre["duration_s"] < 120
    assert pre["output"] == ["slot %s not started yet" % idle,
                             "migrated to %s as deploy from %s" % (NEXT, BASE_RELEASE)]
    assert hook_line(lines, "post_switch")["output"] == ["nginx serves slot %s version %s" % (idle, NEXT)]
    assert hook_line(lines, "post_deploy")["output"] == ["schema has [('%s', '%s')]" % (NEXT, idle)]
    # The migration went through the slot's own DATABASE_URL into the app's database.
    with app_db() as conn:
        assert conn.execute("SELECT version, slot FROM %s" % TABLE).fetchall() == [(NEXT, idle)]
    # The callback times each hook as a phase of its own, in the order they ran.
    assert [name for name in last_run_phases() if name in HOOK_PHASES] == ["pre_deploy", "post_switch", "post_deploy"]
    assert hook_containers() == []
    assert_no_secret(result.output, json.dumps(lines))


def test_a_failing_post_switch_hook_reverts_the_deploy():
    live = ensure_live(BASE_RELEASE)
    audited = len(audit_lines())

    result = deploy(NEXT, blue_green_hooks={"post_switch": failing("smoke test: checkout answered 500", 1)})

    assert result.rc != 0 and "Traceback" not in result.output
    assert "Traffic was switched back to slot %s" % live in result.output, result.output[-6000:]
    assert lb_version() == (live, BASE_RELEASE) and read_state()["active_slot"] == live
    lines = new_audit_lines(audited)
    assert [line["hook"] or line["event"] for line in lines] == ["post_switch", "auto_revert", "failure"]
    assert hook_line(lines, "post_switch")["output"] == ["smoke test: checkout answered 500"]
    assert not os.path.exists(LOCK_FILE)


def test_a_failing_post_deploy_hook_fails_the_run_but_traffic_stays_on_the_new_release():
    live = ensure_live(BASE_RELEASE)
    idle = other(live)
    audited = len(audit_lines())

    result = deploy(NEXT, blue_green_hooks={"post_deploy": failing("cache warm-up timed out", 2)})

    assert result.rc != 0 and "Traceback" not in result.output
    assert "Traffic stays there; only the post_deploy hook failed" in result.output, result.output[-6000:]
    assert lb_version() == (idle, NEXT)
    state = read_state()
    assert state["active_slot"] == idle and state["slots"][idle]["version"] == NEXT
    lines = new_audit_lines(audited)
    assert [line["hook"] or line["event"] for line in lines] == ["deploy", "post_deploy"]
    assert lines[0]["outcome"] == "success" and lines[1]["outcome"] == "failed" and lines[1]["exit_code"] == 2
    assert not os.path.exists(LOCK_FILE)


def test_a_rollback_runs_only_the_hooks_set_for_rollbacks():
    live = ensure_live(BASE_RELEASE)
    assert deploy(NEXT).rc == 0 and lb_version() == (other(live), NEXT)
    assert HOOK_PHASES.isdisjoint(last_run_phases()), "a deploy without hooks times no hook phase"
    audited = len(audit_lines())

    result = run_playbook(ROLLBACK, extra_vars={"stability_window": 2, "drain_seconds": 1, "blue_green_hooks": {
        "pre_deploy": failing("a migration must not run on a rollback", 1),
        "post_deploy": hook("import os; print(os.environ['APP_DEPLOY_ACTION'], os.environ['APP_VERSION'],"
                            " 'from', os.environ['APP_PREVIOUS_VERSION'])", on_rollback=True),
    }})

    assert result.rc == 0, result.output[-6000:]
    assert lb_version() == (live, BASE_RELEASE)
    lines = new_audit_lines(audited)
    assert [line["hook"] or line["event"] for line in lines] == ["rollback", "post_deploy"]
    assert lines[1]["output"] == ["rollback %s from %s" % (BASE_RELEASE, NEXT)] and lines[1]["exit_code"] == 0
    assert hook_containers() == []


def test_check_mode_says_what_each_hook_would_run_and_runs_none():
    live = ensure_live(BASE_RELEASE)
    audited = len(audit_lines())

    result = run_playbook(DEPLOY, check=True, diff=True, extra_vars=dict(
        FAST, version=NEXT, blue_green_hooks={"pre_deploy": failing("must not run", 9), "post_deploy": hook("print(1)")}))

    assert result.rc == 0, result.output[-6000:]
    assert "Check mode: the pre_deploy hook would run [" in result.output
    assert "in a one-off container of version %s" % NEXT in result.output
    assert "Check mode: the post_deploy hook would run" in result.output
    assert "must not run" not in "".join(json.dumps(line) for line in audit_lines()[audited:])
    assert [line for line in audit_lines()[audited:] if line["event"] == "hook"] == []
    assert lb_version() == (live, BASE_RELEASE) and hook_containers() == []


def test_bad_hook_settings_are_refused_before_anything_changes():
    ensure_live(BASE_RELEASE)
    audited, routing = len(audit_lines()), routing_snapshot()

    result = deploy(NEXT, blue_green_hooks={"pre_deploy": {"command": "make migrate", "timeout": "nan"}})

    assert result.rc != 0
    assert "blue_green_hooks.pre_deploy.command is the string 'make migrate'" in result.output
    assert "blue_green_hooks.pre_deploy.timeout=nan is not a finite number of seconds" in result.output
    assert audit_lines()[audited:] == [] and routing_snapshot() == routing and not os.path.exists(LOCK_FILE)
