# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection as users get it: built, installed from the tarball, used by FQCN.

``ansible-galaxy collection build`` makes the tarball from this checkout and
``ansible-galaxy collection install --offline --no-deps`` puts it into a fresh
directory. Everything after that runs with a fresh ``ANSIBLE_CONFIG`` and
``ANSIBLE_COLLECTIONS_PATH`` naming only that directory, from a temporary working
directory, so nothing can resolve from the checkout or its ``collections/``
symlink: ``ansible-doc`` renders every module, filter, callback and role, and one
playbook uses filters, ``health_probe`` (against an http.server on 127.0.0.1
started here), the ``deploy_events`` callback and every role's argument spec.

No stack is needed; the test is marked ``integration`` so ``make integration``
(and ``make test``) run it.
"""

from __future__ import annotations

import glob
import importlib
import json
import os
import re
import subprocess
import sys
import tarfile
from http.server import BaseHTTPRequestHandler

import pytest
import yaml

from ansible_collections.unitehub.platform.tests.support.loopback import serve_http

pytestmark = pytest.mark.integration

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
NAMESPACE, NAME = "unitehub", "platform"
FQ = "%s.%s" % (NAMESPACE, NAME)
TIMEOUT = 300

# Path components that must never ship, and top-level directories that must not either.
FORBIDDEN_PARTS = {".venv", "__pycache__", ".pytest_cache", ".git", ".cache", ".ansible", ".secrets", ".tox",
                   ".mypy_cache", ".ruff_cache"}
FORBIDDEN_PREFIXES = ("collections/", "tests/output/", "bench/output/", "inventories/local/.secrets/")


# ------------------------------------------------------------------ the tree

def tree_modules():
    return sorted(os.path.splitext(os.path.basename(p))[0]
                  for p in glob.glob(os.path.join(REPO_ROOT, "plugins", "modules", "*.py"))
                  if not p.endswith("__init__.py"))


def tree_callbacks():
    return sorted(os.path.splitext(os.path.basename(p))[0]
                  for p in glob.glob(os.path.join(REPO_ROOT, "plugins", "callback", "*.py"))
                  if not p.endswith("__init__.py"))


def tree_filters():
    """Every filter the FilterModule classes of plugins/filter/ register."""
    names = set()
    for path in sorted(glob.glob(os.path.join(REPO_ROOT, "plugins", "filter", "*.py"))):
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem == "__init__":
            continue
        module = importlib.import_module("ansible_collections.%s.%s.plugins.filter.%s" % (NAMESPACE, NAME, stem))
        names.update(module.FilterModule().filters())
    return sorted(names)


def tree_filter_docs():
    """The filter names documented by plugins/filter/*.yml."""
    names = set()
    for path in glob.glob(os.path.join(REPO_ROOT, "plugins", "filter", "*.yml")):
        with open(path, encoding="utf-8") as handle:
            names.add(yaml.safe_load(handle)["DOCUMENTATION"]["name"])
    return sorted(names)


def tree_roles():
    return sorted(os.path.basename(os.path.dirname(os.path.dirname(p)))
                  for p in glob.glob(os.path.join(REPO_ROOT, "roles", "*", "meta", "argument_specs.yml")))


def tree_role_dirs():
    return sorted(d for d in os.listdir(os.path.join(REPO_ROOT, "roles"))
                  if os.path.isdir(os.path.join(REPO_ROOT, "roles", d)))


def tree_plugin_files():
    """Every plugin source and doc file, relative to the collection root."""
    found = []
    for path in glob.glob(os.path.join(REPO_ROOT, "plugins", "**", "*"), recursive=True):
        rel = os.path.relpath(path, REPO_ROOT)
        if os.path.isfile(path) and "__pycache__" not in rel.split(os.sep) and not rel.endswith(".pyc"):
            found.append(rel)
    return sorted(found)


# ------------------------------------------------------------------ helpers

def fresh_env(base, collections_root):
    """The environment of every command: no setting inherited from the checkout or the caller."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "DD_", "UNITEHUB_"))}
    env.update({
        "ANSIBLE_CONFIG": str(base / "packaging.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(collections_root),
        "ANSIBLE_HOME": str(base / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(base / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    })
    return env


def run(args, base, env):
    proc = subprocess.run([str(a) for a in args], cwd=str(base), env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    return proc


def ok(proc):
    assert proc.returncode == 0, "%s\nrc=%s\n--- stdout\n%s\n--- stderr\n%s" % (
        " ".join(proc.args), proc.returncode, proc.stdout[-6000:], proc.stderr[-6000:])
    return proc


def member_name(member):
    """A tar member's path relative to the collection root."""
    return member.name[2:] if member.name.startswith("./") else member.name


class Packaged:
    """Where the build and the install went."""

    def __init__(self, base, tarball, root, env):
        self.base = base
        self.tarball = tarball
        self.root = root                      # the ANSIBLE_COLLECTIONS_PATH entry
        self.installed = root / "ansible_collections" / NAMESPACE / NAME
        self.env = env

    def run(self, *args):
        return run(args, self.base, self.env)


@pytest.fixture(name="packaged", scope="module")
def packaged_fixture(tmp_path_factory):
    base = tmp_path_factory.mktemp("packaging")
    root = base / "collections_root"
    env = fresh_env(base, root)
    (base / "packaging.cfg").write_text(
        "[defaults]\n"
        "collections_path = %s\n"
        "collections_scan_sys_path = false\n"
        "callbacks_enabled = %s.deploy_events\n"
        "retry_files_enabled = false\n"
        "[callback_deploy_events]\n"
        "audit_log = %s\n" % (root, FQ, base / "deploy-events.jsonl"),
        encoding="utf-8",
    )
    dist = base / "dist"
    ok(run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", REPO_ROOT, "--output-path", dist],
           base, env))
    tarballs = sorted(dist.glob("%s-%s-*.tar.gz" % (NAMESPACE, NAME)))
    assert len(tarballs) == 1, tarballs
    ok(run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", tarballs[0], "-p", root,
            "--offline", "--no-deps"], base, env))
    return Packaged(base, tarballs[0], root, env)


# ------------------------------------------------------------------ the tarball

def test_tarball_leaves_out_local_and_generated_files(packaged):
    with tarfile.open(packaged.tarball) as tar:
        names = [member_name(m) for m in tar.getmembers()]
    shipped_junk = sorted(n for n in names
                          if FORBIDDEN_PARTS & set(n.split("/")) or n.startswith(FORBIDDEN_PREFIXES)
                          or n == "collections" or n.endswith((".pyc", ".tar.gz")))
    assert shipped_junk == []


def test_tarball_ships_every_plugin_role_and_the_metadata(packaged):
    with tarfile.open(packaged.tarball) as tar:
        names = {member_name(m) for m in tar.getmembers()}
    assert {"MANIFEST.json", "FILES.json", "README.md", "CHANGELOG.md", "meta/runtime.yml"} <= names
    assert [f for f in tree_plugin_files() if f not in names] == []
    assert [r for r in tree_role_dirs() if "roles/%s/meta/argument_specs.yml" % r not in names] == []
    with open(os.path.join(REPO_ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        galaxy = yaml.safe_load(handle)
    with tarfile.open(packaged.tarball) as tar:
        manifest = json.load(tar.extractfile(next(m for m in tar.getmembers()
                                                  if member_name(m) == "MANIFEST.json")))
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == (NAMESPACE, NAME, galaxy["version"])
    assert packaged.tarball.name == "%s-%s-%s.tar.gz" % (NAMESPACE, NAME, galaxy["version"])


def test_install_lands_only_in_the_fresh_path(packaged):
    assert (packaged.installed / "MANIFEST.json").is_file()
    listing = json.loads(ok(packaged.run(os.path.join(BIN, "ansible-galaxy"), "collection", "list", FQ,
                                         "--format", "json")).stdout)
    assert list(listing) == [str(packaged.root / "ansible_collections")]
    assert FQ in listing[str(packaged.root / "ansible_collections")]


# ------------------------------------------------------------------ ansible-doc

def test_every_plugin_of_the_tree_is_listed_from_the_installed_collection(packaged):
    assert tree_filters() == tree_filter_docs(), "every filter has a plugins/filter/<name>.yml doc"
    expected = {
        "module": tree_modules(),
        "filter": tree_filters(),
        "callback": tree_callbacks(),
        "role": tree_roles(),
    }
    assert tree_roles() == tree_role_dirs(), "every role ships meta/argument_specs.yml"
    for plugin_type, names in expected.items():
        listed = json.loads(ok(packaged.run(os.path.join(BIN, "ansible-doc"), "-t", plugin_type, "-l", FQ,
                                            "--json")).stdout)
        assert sorted(listed) == ["%s.%s" % (FQ, n) for n in names], plugin_type


@pytest.mark.parametrize("plugin_type, names", [
    ("module", tree_modules),
    ("filter", tree_filters),
    ("callback", tree_callbacks),
])
def test_ansible_doc_renders_every_plugin_from_the_installed_path(packaged, plugin_type, names):
    fqcns = ["%s.%s" % (FQ, n) for n in names()]
    assert fqcns
    text = ok(packaged.run(os.path.join(BIN, "ansible-doc"), "-t", plugin_type, *fqcns))
    assert "[ERROR]" not in text.stderr and "[WARNING]" not in text.stderr, text.stderr
    for fqcn in fqcns:
        header = re.search(r"^> %s %s \((?P<path>[^)]+)\)$" % (plugin_type.upper(), re.escape(fqcn)),
                           text.stdout, re.M)
        assert header, "no rendered documentation for %s" % fqcn
        assert header.group("path").startswith(str(packaged.installed) + os.sep), header.group("path")

    docs = json.loads(ok(packaged.run(os.path.join(BIN, "ansible-doc"), "-t", plugin_type, "--json",
                                      *fqcns)).stdout)
    assert sorted(docs) == sorted(fqcns)
    bad_authors = {fqcn: entry["doc"].get("author") for fqcn, entry in docs.items()
                   if not _as_list(entry["doc"].get("author"))
                   or not all(re.fullmatch(r".+ \(@[A-Za-z0-9-]+\)", a) for a in _as_list(entry["doc"]["author"]))}
    assert bad_authors == {}, "author must read 'Name (@github)'"
    for fqcn, entry in docs.items():
        doc = entry["doc"]
        assert doc["short_description"].strip(), fqcn
        assert doc["description"], fqcn
        if plugin_type in ("module", "filter"):
            assert entry["examples"].strip(), "%s has no EXAMPLES" % fqcn
            assert FQ + "." in entry["examples"], "%s EXAMPLES do not use FQCNs" % fqcn
            assert entry["return"], "%s has no RETURN" % fqcn


def test_ansible_doc_renders_every_role_argument_spec(packaged):
    roles = ["%s.%s" % (FQ, r) for r in tree_roles()]
    text = ok(packaged.run(os.path.join(BIN, "ansible-doc"), "-t", "role", *roles))
    assert "[ERROR]" not in text.stderr, text.stderr
    for role in roles:
        header = re.search(r"^> ROLE: \*?%s\*? \((?P<path>[^)]+)\)$" % re.escape(role), text.stdout, re.M)
        assert header, "no rendered argument spec for %s" % role
        assert header.group("path") == str(packaged.installed)


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# ------------------------------------------------------------------ a playbook from the installed path

HEALTH = json.dumps({
    "status": "pass", "version": "v9.9.9", "releaseId": "r-1",
    "checks": {"database:responseTime": [{"status": "pass", "observedValue": 3, "observedUnit": "ms"}]},
}).encode()


class HealthHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/health+json")
        self.send_header("Content-Length", str(len(HEALTH)))
        self.send_header("X-App-Slot", "green")
        self.send_header("X-App-Version", "v9.9.9")
        self.end_headers()
        self.wfile.write(HEALTH)


@pytest.fixture(name="health_url")
def health_url_fixture():
    with serve_http(HealthHandler) as base_url:
        yield base_url + "/api/health/system"


USE_PLAY = """
- name: Use the installed collection by FQCN
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    deploy_event_kind: deploy
  tasks:
    - name: Check deploy inputs with the filter
      ansible.builtin.assert:
        that:
          - "({'slot': 'blue', 'version': 'v1.2.3'} | unitehub.platform.deploy_errors) == []"
          - "({'slot': 'purple'} | unitehub.platform.deploy_errors) | length == 1"
          - "'purple' in ({'slot': 'purple'} | unitehub.platform.deploy_errors | first)"
          - "('warn' | unitehub.platform.health_http_status) == 206"
      vars:
        deploy_phase: preflight

    - name: Probe the loopback app
      unitehub.platform.health_probe:
        type: http
        url: "{{ health_url }}"
        timeout: 10
        interval: 0.2
      register: probe

    - name: Keep the probe result
      ansible.builtin.copy:
        content: "{{ probe | to_json }}"
        dest: "{{ out_dir }}/probe.json"
        mode: "0600"
"""


def bad_input(options):
    """(option, value) that argument validation must refuse: a word for an int, a value outside
    the choices, or a word that is no boolean; (None, None) when the spec has none of them."""
    for name, spec in options.items():
        if spec.get("type") == "int":
            return name, "not-a-number"
    for name, spec in options.items():
        if spec.get("choices") and spec.get("type", "str") == "str":
            return name, "not-one-of-the-choices"
    for name, spec in options.items():
        if spec.get("type") == "bool":
            return name, "not-a-boolean"
    return None, None


def role_options(packaged, role):
    """The options of ``role``'s main entry point, as the installed collection declares them."""
    spec_path = packaged.installed / "roles" / role / "meta" / "argument_specs.yml"
    return yaml.safe_load(spec_path.read_text(encoding="utf-8"))["argument_specs"]["main"]["options"]


def role_validation_play(packaged):
    """One block per role: a bad value must stop the role in argument validation, before its first task."""
    tasks = []
    for role in tree_roles():
        options = role_options(packaged, role)
        if not options:
            continue  # a role that takes no variables (service_manager) has nothing to refuse
        option, bad = bad_input(options)
        assert option, "%s has no int, choices or bool option to feed a bad value" % role
        tasks.append({
            "name": "Refuse a bad %s for %s" % (option, role),
            "block": [
                {"name": "Include %s.%s" % (FQ, role),
                 "ansible.builtin.include_role": {"name": "%s.%s" % (FQ, role)},
                 "vars": {option: bad}},
                {"name": "Record that %s ran" % role,
                 "ansible.builtin.set_fact": {"ran": "{{ ran | default([]) + ['%s'] }}" % role}},
            ],
            "rescue": [
                {"name": "Record the refusal of %s" % role,
                 "ansible.builtin.set_fact": {
                     "refused": "{{ refused | default({}) | combine({'%s': {'option': '%s', "
                                "'msg': ansible_failed_result.msg, 'task': ansible_failed_task.name}}) }}"
                                % (role, option),
                 }},
            ],
        })
    tasks.append({
        "name": "Keep the refusals",
        "ansible.builtin.copy": {
            "content": "{{ {'refused': refused | default({}), 'ran': ran | default([])} | to_json }}",
            "dest": "{{ out_dir }}/refusals.json",
            "mode": "0600",
        },
    })
    return [{"name": "Validate role inputs from the installed collection", "hosts": "localhost",
             "connection": "local", "gather_facts": False, "tasks": tasks}]


def test_playbook_runs_from_the_installed_collection(packaged, health_url):
    out = packaged.base / "out"
    out.mkdir(exist_ok=True)
    playbook = packaged.base / "use.yml"
    playbook.write_text(USE_PLAY + "\n" + yaml.safe_dump(role_validation_play(packaged), sort_keys=False),
                        encoding="utf-8")
    events_log = packaged.base / "deploy-events.jsonl"
    if events_log.exists():
        events_log.unlink()

    proc = ok(packaged.run(
        os.path.join(BIN, "ansible-playbook"), "-i", "localhost,",
        "-e", "ansible_python_interpreter=%s" % sys.executable,
        "-e", "health_url=%s" % health_url, "-e", "out_dir=%s" % out, playbook))
    assert "[ERROR]" not in proc.stderr, proc.stderr

    probe = json.loads((out / "probe.json").read_text())
    assert (probe["status"], probe["ok"], probe["http_status"]) == ("pass", True, 200)
    assert (probe["slot"], probe["version"]) == ("green", "v9.9.9")
    assert probe["changed"] is False

    refusals = json.loads((out / "refusals.json").read_text())
    assert refusals["ran"] == []
    assert sorted(refusals["refused"]) == [role for role in tree_roles() if role_options(packaged, role)]
    for role, refusal in refusals["refused"].items():
        assert refusal["option"] in refusal["msg"], (role, refusal)
        assert refusal["msg"].startswith("Validation of arguments failed"), (role, refusal)
        assert refusal["task"].startswith("Validating arguments against arg spec 'main'"), (role, refusal)

    # The callback was loaded from the installed collection and timed the preflight phase.
    events = [json.loads(line) for line in events_log.read_text().splitlines() if line.strip()]
    assert [(e["event"], e["outcome"], e["source"]) for e in events] == [("deploy", "success", "callback")]
    assert list(events[0]["phases"]) == ["preflight"]
