#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: warm_standby
short_description: Keep the old blue-green slot warm, and roll back to it in one step
version_added: 0.3.0
description:
  - A warm standby is the slot a deploy or rollback left, kept running for O(keep_warm) seconds as
    the C(backup) of the live slot in the nginx upstream, instead of being drained and stopped. The
    deploy state records it as C(warm_standby) (its slot and the deadline).
  - I(action=keep) records O(slot) as the warm standby until now + O(keep_warm) and starts the
    standby timer. The run must hold the deploy lock (O(run_id) and O(pid)).
  - I(action=rollback) is the fast path of C(playbooks/rollback.yml). It takes the deploy lock,
    refuses a state that disagrees with the live-slot marker or has nothing to roll back to (as
    M(unitehub.platform.deploy_state) does), and when the rollback target is the warm standby and
    answers healthy on every app host (one probe each), switches to it
    (M(unitehub.platform.slot_switch)'s logic, verified through the load balancer), records the
    state and a C(rollback) audit line, releases the lock, and hands the slot it left to the
    timer (warm for O(keep_warm) seconds, at least O(drain_seconds)).
    Otherwise it releases the lock and returns RV(rolled_back)=false with RV(why_not), and the full
    rollback then runs.
  - The standby timer is a detached process on this host that sleeps to the deadline, then, under
    the deploy lock, stops the standby's containers and records it C(stopped) - only while the state
    still names it warm with that deadline and neither the state nor the marker makes it live. Where
    systemd runs, the process is moved into a transient scope unit of its own. Its pid is recorded in
    C(<state_dir>/standby-timer.json); a new timer ends the previous one.
author:
  - unitehub platform team (@unitehub)
options:
  action:
    description: Keep O(slot) warm, or roll back to the warm standby.
    type: str
    required: true
    choices: [keep, rollback]
  app:
    description: The app; its containers are C(<app>-blue) and C(<app>-green).
    type: str
    default: unitehub
  state_dir:
    description: Directory of the deploy state and lock; C(/var/lib/unitehub/<app>) by default.
    type: path
  audit_log:
    description: The JSON-lines audit log; C(/var/log/unitehub/<app>/deploy-audit.jsonl) by default.
    type: path
  upstream_dir:
    description: The switch's directory, whose C(live/) marker names the slot nginx serves.
    type: path
    default: /etc/nginx/unitehub/unitehub
  owner:
    description: Who runs the rollback, recorded in the lock and the audit line.
    type: str
    default: unknown
  run_id:
    description: The id of the controller run, as for M(unitehub.platform.deploy_state).
    type: str
    required: true
  pid:
    description: The pid of the controller's C(ansible-playbook) process.
    type: int
    required: true
  controller_host:
    description: The host where O(pid) runs; this host by default.
    type: str
  ttl:
    description: Seconds after which the lock this run takes counts as stale.
    type: int
    default: 1800
  force:
    description: Break a stale deploy lock (audited by the next full run's lock, never a live one).
    type: bool
    default: false
  slot:
    description: I(action=keep) the slot to keep warm (the old live slot of the run).
    type: str
    choices: [blue, green]
  keep_warm:
    description:
      - Seconds, 0 to 86400, the slot left stays running as the warm standby.
      - I(action=rollback) with V(0) stops the slot it left after O(drain_seconds), through the timer.
    type: raw
    default: 0
  drain_seconds:
    description: I(action=rollback) seconds the slot it left keeps serving in-flight requests, at least.
    type: int
    default: 5
  slot_servers:
    description:
      - "I(action=rollback) the C(host:port) of each slot on every app host, C({blue: [...], green: [...]}),
        as the switch writes them into the upstream files."
    type: dict
  health_path:
    description: The health path probed on the standby, on every app host.
    type: str
    default: /api/health/system
  health_expect:
    description: Health the standby must report.
    type: str
    choices: [pass, pass_or_warn]
    default: pass
  verify_url:
    description: A URL served through the load balancer, on which the switch is verified (C(X-Upstream-Slot)).
    type: str
    default: http://127.0.0.1:8080/api/health/system
  ca_path:
    description: CA certificates the certificate of an C(https) O(verify_url) is checked against.
    type: path
  docker_hosts:
    description:
      - The Docker daemon of every app host, as the timer reaches it from this host; an empty string is this
        host's own socket. A daemon the timer cannot reach leaves the standby to the next deploy or rollback.
    type: list
    elements: str
    default: [""]
  stop_grace_period:
    description: Seconds the standby's containers get to stop before they are killed.
    type: int
    default: 30
  rollback_hooks:
    description:
      - I(action=rollback) the deploy hooks set to run on rollbacks (C(on_rollback) in C(blue_green_hooks)). The fast
        path runs no hook, so with any of them it is not taken.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Decides as it would and reports the switch and the state; takes no lock, moves nothing, starts no timer.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Run it on the load balancer host, where the state lives. The C(blue_green) role calls it; set
    C(blue_green_keep_warm) (or C(-e keep_warm=300)) rather than calling it yourself.
seealso:
  - module: unitehub.platform.deploy_state
  - module: unitehub.platform.slot_switch
"""

EXAMPLES = r"""
- name: Roll back at once if the previous slot is still warm
  unitehub.platform.warm_standby:
    action: rollback
    run_id: "{{ run_id }}"
    pid: "{{ controller_pid }}"
    slot_servers: {blue: ["127.0.0.1:3008"], green: ["127.0.0.1:3009"]}
  register: fast

- name: Keep the old slot blue warm for five minutes (the run holds the deploy lock)
  unitehub.platform.warm_standby:
    action: keep
    slot: blue
    keep_warm: 300
    run_id: "{{ run_id }}"
    pid: "{{ controller_pid }}"
"""

RETURN = r"""
rolled_back:
  description: I(action=rollback) whether the fast path switched traffic to the warm standby.
  returned: when action is rollback
  type: bool
why_not:
  description: I(action=rollback) why the fast path was not taken (the full rollback runs instead), or null.
  returned: when action is rollback
  type: str
  sample: "the standby blue was warm until 2026-01-06T09:35:00Z, which has passed"
slot:
  description: The slot traffic goes to (rollback), or the slot kept warm (keep).
  returned: always
  type: str
  sample: blue
from_slot:
  description: I(action=rollback) the slot it left, now the warm standby until RV(warm_standby.until).
  returned: when action is rollback
  type: str
  sample: green
version:
  description: I(action=rollback) the version now live.
  returned: when action is rollback
  type: str
  sample: v1
switch_seconds:
  description: Seconds from the marker's move to the first answer from the slot through the load balancer.
  returned: when the fast path was taken
  type: float
  sample: 0.002
warm_standby:
  description: The state's C(warm_standby) after the call, C({slot, until}) or null.
  returned: when the fast path was taken, or action is keep
  type: dict
  sample: {"slot": "green", "until": "2026-01-06T09:35:00Z"}
  contains:
    slot:
      description: The slot kept running.
      type: str
    until:
      description: Its deadline, when the timer stops it (ISO 8601 UTC).
      type: str
timer:
  description: The standby timer's record (C(pid), C(slot), C(until), C(systemd_unit)), or C(error) when it could not start.
  returned: when the fast path was taken, or action is keep, outside check mode
  type: dict
audit_event:
  description: The C(rollback) line appended to the audit log (in check mode, the one that would be).
  returned: when the fast path was taken
  type: dict
state:
  description: The deploy state after the fast path.
  returned: when the fast path was taken
  type: dict
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.unitehub.platform.plugins.module_utils import deploy_audit, deploy_state
from ansible_collections.unitehub.platform.plugins.module_utils.deploy_lock import LockHeld
from ansible_collections.unitehub.platform.plugins.module_utils.slots import SLOTS
from ansible_collections.unitehub.platform.plugins.module_utils.warm_rollback import Standby, WarmError
from ansible_collections.unitehub.platform.plugins.module_utils.warm_standby import keep_warm_problem


def stopper(app, docker_hosts, grace):
    """``stop(slot)``: stop that slot's container on every app host's Docker (what the timer runs).
    The Docker client is imported here, not with the module: a rollback that does not start a
    timer never pays for it, and one that does pays after its switch."""
    from ansible_collections.unitehub.platform.plugins.module_utils import docker_client
    from ansible_collections.unitehub.platform.plugins.module_utils.app_slot_spec import default_container_name

    def stop(slot):
        if not docker_client.HAS_DOCKER:
            raise RuntimeError("the Docker SDK for Python is missing on this host")
        name = default_container_name(app, slot)
        for host in docker_hosts:
            api = docker_client.docker_api_client(host or None, request_timeout=grace + 30)
            try:
                api.stop(name, timeout=grace)
            except docker_client.NotFound:
                pass  # removed meanwhile: nothing left to stop
    return stop


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", required=True, choices=["keep", "rollback"]),
            app=dict(type="str", default="unitehub"),
            state_dir=dict(type="path"),
            audit_log=dict(type="path"),
            upstream_dir=dict(type="path", default="/etc/nginx/unitehub/unitehub"),
            owner=dict(type="str", default="unknown"),
            run_id=dict(type="str", required=True),
            pid=dict(type="int", required=True),
            controller_host=dict(type="str"),
            ttl=dict(type="int", default=1800),
            force=dict(type="bool", default=False),
            slot=dict(type="str", choices=list(SLOTS)),
            keep_warm=dict(type="raw", default=0),
            drain_seconds=dict(type="int", default=5),
            slot_servers=dict(type="dict"),
            health_path=dict(type="str", default="/api/health/system"),
            health_expect=dict(type="str", choices=["pass", "pass_or_warn"], default="pass"),
            verify_url=dict(type="str", default="http://127.0.0.1:8080/api/health/system"),
            ca_path=dict(type="path"),
            docker_hosts=dict(type="list", elements="str", default=[""]),
            stop_grace_period=dict(type="int", default=30),
            rollback_hooks=dict(type="list", elements="str", default=[]),
        ),
        required_if=[("action", "keep", ("slot",)), ("action", "rollback", ("slot_servers",))],
        supports_check_mode=True,
    )
    p = dict(module.params)
    problem = keep_warm_problem(p["keep_warm"], "keep_warm")
    if problem:
        module.fail_json(msg=problem)
    p["keep_warm"] = int(float(str(p["keep_warm"])))
    p["state_dir"] = p["state_dir"] or deploy_state.default_state_dir(p["app"])
    p["audit_log"] = p["audit_log"] or deploy_audit.default_audit_log(p["app"])
    if p["action"] == "rollback" and sorted(p["slot_servers"]) != sorted(SLOTS):
        module.fail_json(msg="slot_servers needs the servers of both slots, {blue: [...], green: [...]}, got %s"
                         % sorted(p["slot_servers"]))
    standby = Standby(p, lambda: stopper(p["app"], p["docker_hosts"], p["stop_grace_period"]),
                      check_mode=module.check_mode)
    try:
        result = standby.keep() if p["action"] == "keep" else standby.rollback()
    except LockHeld as exc:
        module.fail_json(msg=str(exc), lock=exc.holder)
    except WarmError as exc:
        module.fail_json(msg=str(exc), **exc.details)
    except deploy_state.DeployStateError as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # a bug or an environment problem: report it with context, not a traceback
        module.fail_json(msg="unexpected %s during action=%s of the warm standby: %s"
                         % (type(exc).__name__, p["action"], exc), exception=traceback.format_exc())
    result.setdefault("slot", p["slot"])
    result.pop("until", None)
    timer = result.get("timer") or {}
    if timer.get("error"):
        module.warn(timer["error"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
