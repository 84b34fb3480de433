#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: health_probe
short_description: Wait until an application or one of its dependencies is healthy
version_added: "0.1.0"
description:
  - Probes a target until it is healthy or a timeout passes, then reports what it saw.
  - The C(http) type reads C(application/health+json) documents as in draft-inadarei-api-health-check
    (status C(pass), C(warn) or C(fail), checks keyed C(component:measurement)); the aliases C(ok) and
    C(up) count as C(pass), C(down) and C(error) as C(fail). A non-JSON endpoint passes on any 2xx answer.
    A non-2xx answer always fails. Malformed health bodies fail with a message saying what is wrong.
  - The C(tcp) type opens a connection. The C(redis) type authenticates (with O(login_password)) and sends
    C(PING) through redis-py. The C(postgres) type runs C(SELECT 1). The C(pgbouncer)
    type runs C(SHOW VERSION) on PgBouncer's admin console.
  - Attempts start every O(interval) seconds until O(consecutive_successes) results in a row meet
    O(expect), or until O(timeout) has passed. With O(container), the wait ends as soon as that Docker
    container exits or restarts (it is inspected every quarter of a second between attempts), instead of
    waiting out the timeout.
  - With O(targets), many targets are probed at once, concurrently, and each gets its own result.
  - When a target stays unhealthy the failure message names the failing checks and their output,
    for example C(database:responseTime fail (connection refused)).
author:
  - unitehub platform team (@unitehub)
options:
  type:
    description:
      - What to probe.
      - Required unless O(targets) is given; then it is the default type of every target.
    type: str
    choices: [http, tcp, redis, postgres, pgbouncer]
  url:
    description:
      - The URL to GET, for O(type=http), for example V(http://127.0.0.1:3008/api/health/system).
      - Redirects are not followed and proxy environment variables are ignored, so the probe reaches
        the instance it names.
    type: str
  login_host:
    description:
      - Host or address to connect to, for every type but C(http).
    type: str
    default: 127.0.0.1
    aliases: [host]
  login_port:
    description:
      - Port to connect to. Required for O(type=tcp).
      - Defaults to 6379 for C(redis), 5432 for C(postgres) and 6432 for C(pgbouncer).
    type: int
    aliases: [port]
  login_user:
    description:
      - User for C(postgres) and C(pgbouncer) (an admin or stats user of PgBouncer's console).
      - ACL user for C(redis); sent with C(AUTH) only when O(login_password) is set.
    type: str
    aliases: [user]
  login_password:
    description:
      - Password for C(postgres), C(pgbouncer) and C(redis). Never logged or returned.
    type: str
    aliases: [password]
  login_db:
    description:
      - Database for C(postgres). For C(pgbouncer) the admin console database, V(pgbouncer) by default.
    type: str
    aliases: [database]
  expect:
    description:
      - Which results count as healthy.
      - V(pass) accepts only C(pass). V(pass_or_warn) also accepts C(warn), a degraded but serving target.
    type: str
    choices: [pass, pass_or_warn]
    default: pass
  timeout:
    description:
      - Total seconds to keep probing. The last attempt starts at this deadline, so the run can last up to
        O(request_timeout) longer.
      - V(0) makes exactly one attempt, for a snapshot of the current health.
    type: float
    default: 60
  interval:
    description:
      - Seconds between the starts of two attempts. A target that starts failing is seen within one interval.
    type: float
    default: 5
  request_timeout:
    description:
      - Seconds one attempt may take to connect and to wait for each answer.
      - The C(postgres) and C(pgbouncer) types round it up to whole seconds, at least 2 (a libpq limit).
    type: float
    default: 2
  consecutive_successes:
    description:
      - How many results in a row must meet O(expect). A result that misses it starts the count again.
    type: int
    default: 1
  max_failures:
    description:
      - End the wait, unhealthy, as soon as this many attempts have missed O(expect).
      - Unset, failed attempts are tolerated until O(timeout). Set V(1) to watch a stability window, where
        the first breach must stop the run at once.
    type: int
  container:
    description:
      - Name of a Docker container that serves the target.
      - Its C(RestartCount) and C(StartedAt) are recorded at the start. The wait fails as soon as the
        container exits, is removed, pauses or restarts; between attempts it is inspected every quarter
        of a second, so a crash is noticed within a second even with a long O(interval).
      - Needs the Docker SDK for Python on the host that runs the module.
    type: str
  host_header:
    description:
      - Value for the HTTP C(Host) header, to reach a virtual host through an address, for O(type=http).
    type: str
  validate_certs:
    description:
      - Verify the TLS certificate of an C(https) URL. Set V(false) only for self-signed test certificates.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file, on the host that runs the module, with the CA certificates an C(https) URL's certificate
        is checked against, instead of the system's. For a load balancer whose certificate a private CA
        signed, such as the local stack's C(inventories/local/.secrets/tls/ca.crt).
    type: path
  expect_slot:
    description:
      - For an C(http) probe through the collection's load balancer, the slot every answer must come from.
      - The load balancer names the slot of the server it reached in the C(X-Upstream-Slot) header. An
        answer from another slot (the backup, while the expected one refuses connections) or without the
        header fails, whatever its body says. This is how the stability window watches the new slot only.
    type: str
    choices: [blue, green]
  targets:
    description:
      - Probe several targets concurrently instead of one. Each item takes the options above; an option
        an item leaves out is taken from the module's own option.
      - Each target gets an entry in RV(target_results), in the same order.
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - A label for the target in results and messages, for example V(redis) or V(app-blue).
          - Defaults to the target itself (URL or C(type://host:port)).
        type: str
      type:
        description: See O(type).
        type: str
        choices: [http, tcp, redis, postgres, pgbouncer]
      url:
        description: See O(url).
        type: str
      login_host:
        description: See O(login_host).
        type: str
        aliases: [host]
      login_port:
        description: See O(login_port).
        type: int
        aliases: [port]
      login_user:
        description: See O(login_user).
        type: str
        aliases: [user]
      login_password:
        description: See O(login_password).
        type: str
        aliases: [password]
      login_db:
        description: See O(login_db).
        type: str
        aliases: [database]
      expect:
        description: See O(expect).
        type: str
        choices: [pass, pass_or_warn]
      timeout:
        description: See O(timeout).
        type: float
      interval:
        description: See O(interval).
        type: float
      request_timeout:
        description: See O(request_timeout).
        type: float
      consecutive_successes:
        description: See O(consecutive_successes).
        type: int
      max_failures:
        description: See O(max_failures).
        type: int
      container:
        description: See O(container).
        type: str
      host_header:
        description: See O(host_header).
        type: str
      validate_certs:
        description: See O(validate_certs).
        type: bool
      ca_path:
        description: See O(ca_path).
        type: path
      expect_slot:
        description: See O(expect_slot).
        type: str
        choices: [blue, green]
  fail_on_unhealthy:
    description:
      - Fail the task when a target is not healthy in time.
      - V(false) reports the result without failing, for status pages and summaries.
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads, so it probes in check mode too and never reports a change.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - psycopg >= 3.1 for the C(postgres) and C(pgbouncer) types
  - redis (redis-py) >= 5.0 for the C(redis) type
  - docker (the Docker SDK for Python) for O(container)
notes:
  - The connection options are named as in community.postgresql, C(login_host), C(login_port), C(login_user),
    C(login_password) and C(login_db). Their old names C(host), C(port), C(user), C(password) and C(database)
    still work as aliases; they are deprecated and will be removed in 2.0.0.
  - The HTTP status of a health document follows its status, C(pass) 200, C(warn) 206, C(fail) 503;
    see the P(unitehub.platform.health_http_status#filter) filter.
  - A health body larger than 1 MiB is refused without reading the rest.
seealso:
  - name: Health Check Response Format for HTTP APIs
    description: The draft that defines application/health+json.
    link: https://datatracker.ietf.org/doc/html/draft-inadarei-api-health-check
  - plugin: unitehub.platform.health_failing
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Wait for the green slot to pass three times in a row, failing fast if its container dies
  unitehub.platform.health_probe:
    type: http
    url: http://127.0.0.1:3009/api/health/system
    container: unitehub-green
    consecutive_successes: 3
    timeout: 60
    interval: 5

- name: Watch the load balancer for 30 s; the first breach ends the watch
  unitehub.platform.health_probe:
    type: http
    url: http://127.0.0.1:8080/api/health/system
    expect: pass_or_warn
    consecutive_successes: 7
    interval: 5
    timeout: 30
    max_failures: 1
  register: stability

- name: Check Redis as the ops ACL user of the redis role
  unitehub.platform.health_probe:
    type: redis
    port: 6379
    user: "{{ redis_ops_user }}"
    password: "{{ redis_ops_password }}"
    timeout: 10

- name: Snapshot every dependency at once, without failing
  unitehub.platform.health_probe:
    timeout: 0
    fail_on_unhealthy: false
    targets:
      - name: postgresql
        type: postgres
        user: unitehub
        password: "{{ postgresql_app_password }}"
        database: unitehub
      - name: pgbouncer
        type: pgbouncer
        user: pgbouncer
        password: "{{ pgbouncer_admin_password }}"
      - name: nginx
        type: http
        url: http://127.0.0.1:8080/api/health/system
  register: snapshot

- name: Show the targets that are not healthy
  ansible.builtin.debug:
    msg: "{{ snapshot.target_results | rejectattr('ok') | map(attribute='msg') | list }}"
"""

RETURN = r"""
status:
  description:
    - The status of the last attempt, C(pass), C(warn) or C(fail). An unreachable target is C(fail).
    - With O(targets), the worst status of all targets.
  returned: always
  type: str
  sample: pass
ok:
  description: Whether the target (with O(targets), every target) met O(expect) in time.
  returned: always
  type: bool
  sample: true
msg:
  description: One line per target saying what was seen, naming failing checks.
  returned: always
  type: str
  sample: >-
    http://127.0.0.1:3009/api/health/system is fail after 3 attempts in 12.1 s:
    database:responseTime fail (connection refused)
elapsed:
  description: Seconds spent probing (with O(targets), wall time of the whole run).
  returned: always
  type: float
  sample: 10.02
name:
  description: The target's label.
  returned: when O(targets) is not set
  type: str
  sample: http://127.0.0.1:3008/api/health/system
type:
  description: The probe type.
  returned: when O(targets) is not set
  type: str
  sample: http
target:
  description: The probed target, as a URL or C(type://host:port); never contains a password.
  returned: when O(targets) is not set
  type: str
  sample: redis://127.0.0.1:6379
reason:
  description:
    - Why the wait ended. C(passed), C(timeout), C(max_failures) or C(container) (the container exited or
      restarted).
  returned: when O(targets) is not set
  type: str
  sample: passed
http_status:
  description: HTTP status code of the last answer; null for other types and when nothing answered.
  returned: when O(targets) is not set
  type: int
  sample: 503
latency_ms:
  description: Duration of the last attempt in milliseconds, from connect to the end of the answer.
  returned: when O(targets) is not set
  type: float
  sample: 3.4
attempts:
  description: Number of attempts made.
  returned: when O(targets) is not set
  type: int
  sample: 3
checks:
  description:
    - The C(checks) of the last health document, keyed C(component:measurement), each a list of check
      objects whose C(status) is normalised to C(pass), C(warn) or C(fail) (null when the check has none).
    - Empty for non-HTTP types and for endpoints that do not answer with a health document.
  returned: when O(targets) is not set
  type: dict
  sample:
    "database:responseTime":
      - status: fail
        observedValue: 2003
        observedUnit: ms
        time: "2026-01-01T00:00:00Z"
        output: connection refused
failing:
  description:
    - The checks of the last health document that do not meet O(expect), one entry per check object
      (checks that warn are listed when O(expect=pass)).
  returned: when O(targets) is not set
  type: list
  elements: dict
  contains:
    name:
      description: The check's key, C(component:measurement).
      type: str
      sample: database:responseTime
    status:
      description: C(fail) or C(warn).
      type: str
      sample: fail
    output:
      description: The check's output, its error text; null when it has none.
      type: str
      sample: connection refused
    observedValue:
      description: The check's observed value.
      type: raw
      sample: 2003
    observedUnit:
      description: The unit of the observed value.
      type: str
      sample: ms
slot:
  description: The C(X-App-Slot) header of the last answer, to tell which slot answered through a load balancer.
  returned: when O(targets) is not set
  type: str
  sample: green
version:
  description:
    - The C(X-App-Version) header of the last answer (else the health document's C(version)).
    - For C(pgbouncer) and C(postgres), the server's version.
  returned: when O(targets) is not set
  type: str
  sample: v2
error:
  description: What went wrong on the last attempt (refused, timed out, HTTP code, malformed body, container exit).
  returned: when O(targets) is not set
  type: str
  sample: connection refused
target_results:
  description:
    - One entry per item of O(targets), in order, with the keys returned for a single target
      (C(name), C(type), C(target), C(ok), C(status), C(reason), C(http_status), C(latency_ms), C(attempts),
      C(elapsed), C(checks), C(failing), C(slot), C(version), C(error), C(msg)).
  returned: when O(targets) is set
  type: list
  elements: dict
  sample:
    - name: redis
      type: redis
      target: redis://127.0.0.1:6379
      ok: true
      status: pass
      reason: passed
      http_status: null
      latency_ms: 0.6
      attempts: 1
      elapsed: 0.001
      checks: {}
      failing: []
      slot: null
      version: null
      error: null
      msg: redis://127.0.0.1:6379 is pass after 1 attempt in 0.0 s
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.unitehub.platform.plugins.module_utils.docker_client import (
    DOCKER_IMPORT_ERROR,
    HAS_DOCKER,
    docker_api_client,
    inspect_container_or_none,
)
from ansible_collections.unitehub.platform.plugins.module_utils.health_format import EXPECTATIONS, ProbeConfigError
from ansible_collections.unitehub.platform.plugins.module_utils.health_targets import TARGET_DEFAULTS, resolve_target
from ansible_collections.unitehub.platform.plugins.module_utils.health_wait import ContainerWatch, probe_targets, summary
from ansible_collections.unitehub.platform.plugins.module_utils.probes import PROBE_TYPES, missing_library
from ansible_collections.unitehub.platform.plugins.module_utils.slots import SLOTS


def _deprecated(alias):
    return dict(name=alias, version="2.0.0", collection_name="unitehub.platform")


def _probe_options(for_targets):
    """The per-target options; at the top level they carry the defaults of TARGET_DEFAULTS."""
    options = dict(
        type=dict(type="str", choices=list(PROBE_TYPES)),
        url=dict(type="str"),
        login_host=dict(type="str", aliases=["host"], deprecated_aliases=[_deprecated("host")]),
        login_port=dict(type="int", aliases=["port"], deprecated_aliases=[_deprecated("port")]),
        login_user=dict(type="str", aliases=["user"], deprecated_aliases=[_deprecated("user")]),
        login_password=dict(type="str", no_log=True, aliases=["password"],
                            deprecated_aliases=[_deprecated("password")]),
        login_db=dict(type="str", aliases=["database"], deprecated_aliases=[_deprecated("database")]),
        expect=dict(type="str", choices=list(EXPECTATIONS)),
        timeout=dict(type="float"),
        interval=dict(type="float"),
        request_timeout=dict(type="float"),
        consecutive_successes=dict(type="int"),
        max_failures=dict(type="int"),
        container=dict(type="str"),
        host_header=dict(type="str"),
        validate_certs=dict(type="bool"),
        ca_path=dict(type="path"),
        expect_slot=dict(type="str", choices=list(SLOTS)),
    )
    if for_targets:
        options["name"] = dict(type="str")
        return options
    for key, option in options.items():
        if TARGET_DEFAULTS[key] is not None:
            option["default"] = TARGET_DEFAULTS[key]
    return options


def argument_spec():
    spec = _probe_options(for_targets=False)
    spec["targets"] = dict(type="list", elements="dict", options=_probe_options(for_targets=True))
    spec["fail_on_unhealthy"] = dict(type="bool", default=True)
    return spec


def docker_inspector(name):
    """A callable returning the container's inspect document, or None once it is gone."""
    api = docker_api_client()
    return lambda: inspect_container_or_none(api, name)


def watch_container(spec):
    """The container check of a target: a crash ends its wait within a fraction of a second."""
    try:
        return ContainerWatch(spec["container"], docker_inspector(spec["container"]))
    except ProbeConfigError:
        raise
    except Exception as exc:  # docker.errors.DockerException and friends: daemon unreachable
        raise ProbeConfigError("%s: cannot inspect container %s through the Docker daemon (%s)"
                               % (spec["name"], spec["container"], exc)) from None


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_one_of=[("type", "targets")],
        supports_check_mode=True,
    )
    params = module.params
    defaults = {key: value for key, value in params.items() if key not in ("targets", "fail_on_unhealthy")}
    started = time.monotonic()
    try:
        if params["targets"] is not None and not params["targets"]:
            module.fail_json(msg="targets is empty; give at least one target or use type and url/host instead")
        specs = [resolve_target(target, defaults) for target in (params["targets"] or [{}])]
        for probe_type in sorted({spec["type"] for spec in specs}):
            missing = missing_library(probe_type)
            if missing:
                module.fail_json(msg=missing_required_lib(missing[0]), exception=missing[1])
        if any(spec["container"] for spec in specs) and not HAS_DOCKER:
            module.fail_json(msg=missing_required_lib("docker"), exception=DOCKER_IMPORT_ERROR)
        results = probe_targets(specs, watch_container)
    except ProbeConfigError as exc:
        module.fail_json(msg=str(exc))

    if params["targets"] is None:
        output = dict(results[0], changed=False)
    else:
        output = dict(summary(results, time.monotonic() - started), changed=False)
    if not output["ok"] and params["fail_on_unhealthy"]:
        module.fail_json(**output)
    module.exit_json(**output)


if __name__ == "__main__":
    main()
