#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deploy_state
short_description: Read and change the blue-green deploy state, lock and audit log
version_added: 0.1.0
description:
  - Owns the three deploy files on a load-balancer host, the state document
    C(<state_dir>/state.json), the deploy lock C(<state_dir>/deploy.lock) and the audit log.
  - I(action=read) returns the state, the lock holder, the last audit events, the idle slot,
    the rollback target and the images pruning must keep.
  - I(action=lock) takes the deploy lock for one controller run; a second run is refused with
    the holder named. Under the lock it then reads the state again and makes the run's decisions
    there, so a run that ended just before cannot have moved the state under this one - with
    I(upstream_dir), that the live-slot marker agrees with the state; with I(slot), the target slot;
    with I(for_rollback), the rollback target. A refusal releases the lock again.
    I(action=unlock) releases it.
  - I(action=record) records what a slot runs and, with I(activate), which slot serves traffic.
    With I(event) it also appends that event to the audit log once the state is written, and
    with I(release_lock) it then releases this run's lock, ending a deploy in one step.
  - I(action=audit) appends events to the audit log.
  - I(action=reconcile) records as live the slot the load balancer's marker names (in
    I(upstream_dir)), with the I(version) and image its containers run. It is how a state that
    disagrees with the marker (a run killed between the switch and its record, a state that could
    not be written) is repaired; C(playbooks/reconcile.yml) checks that the slot runs first.
  - The state is replaced atomically (temp file, fsync, rename); the lock is created with
    C(O_CREAT|O_EXCL), so of two concurrent runs exactly one wins.
author:
  - unitehub platform team (@unitehub)
options:
  action:
    description: What to do.
    type: str
    required: true
    choices: [read, lock, unlock, record, audit, reconcile]
  state_dir:
    description:
      - Directory of C(state.json) and C(deploy.lock).
      - Defaults to C(/var/lib/unitehub/<app>), so every app has its own state and lock.
    type: path
  audit_log:
    description:
      - The JSON-lines audit log.
      - Defaults to C(/var/log/unitehub/<app>/deploy-audit.jsonl).
    type: path
  legacy_state_dir:
    description:
      - Where every app's state lived before 0.2.0. When I(state_dir) holds no state yet and this directory
        holds I(app)'s, the state is moved to I(state_dir) (the old file is renamed
        C(state.json.migrated-to-<app>)), so an upgrade never loses track of the live slot. A state of another
        app is left alone.
      - An empty value turns the move off.
    type: path
    default: /var/lib/unitehub/deploy
  app:
    description:
      - The app the state belongs to. A state file of another app is refused.
    type: str
    default: unitehub
  owner:
    description:
      - The person or system behind the run, recorded in the lock and shown to whoever it
        blocks. Defaults to the user the module runs as.
    type: str
  run_id:
    description:
      - An id naming the controller run, the same for every task of that run.
      - With I(pid), identifies the lock holder. Required for I(action=lock).
    type: str
  pid:
    description:
      - The pid of the controller's C(ansible-playbook) process (not of this module, which
        lives for one task). A lock whose pid is dead on I(controller_host) is stale when that
        is this host. Required for I(action=lock).
    type: int
  controller_host:
    description:
      - The host where I(pid) runs. Pid liveness is checked only when it equals this host's
        name, so set it whenever the controller is not the managed host.
      - Defaults to this host's name.
    type: str
  token:
    description:
      - The C(lock.token) returned by I(action=lock); identifies the holder on I(action=unlock)
        instead of I(run_id) and I(pid).
    type: str
  ttl:
    description: Seconds after which a lock taken now counts as stale.
    type: int
    default: 1800
  force:
    description:
      - I(action=lock) breaks a stale lock (one past its I(ttl), or whose pid is dead on this
        host); a live lock is never broken. The break is audited as C(lock_broken).
      - I(action=unlock) removes the lock even when another run holds it (audited).
      - I(action=record) writes even while another run holds the lock.
      - I(action=read) with I(slot) allows targeting the active slot.
    type: bool
    default: false
  slot:
    description:
      - I(action=record) the slot to record, C(blue) or C(green).
      - I(action=lock) and I(action=read) the slot a deploy asks for; C(auto) means the idle slot.
        The resolved slot is returned as RV(target_slot); the active slot is refused unless I(force).
      - I(action=reconcile) may name the slot it expects the marker to name.
    type: str
    choices: [blue, green, auto]
  version:
    description:
      - The version (image tag) I(slot) runs. Required the first time a slot is recorded.
      - A new version replaces the slot's I(image), I(image_id) and I(repo_digest) and stamps C(deployed_at).
    type: str
  image:
    description: The image reference the slot runs, for example C(unitehub/app:v2).
    type: str
  image_id:
    description:
      - The image id (C(sha256:...)) the slot runs; a rollback runs exactly this image.
      - A new image id replaces the slot's I(repo_digest) too, with the one given or null.
    type: str
  repo_digest:
    description:
      - The repo digest (C(<repository>@sha256:...)) of that image, for images pulled from a registry. A rollback
        pulls it by this digest when the image is gone from an app host.
      - State files written before this field existed read it as null.
    type: str
  status:
    description:
      - The slot's status. Defaults to C(active) for the active slot, otherwise to the slot's
        current status (C(standby) for a slot recorded for the first time).
    type: str
    choices: [active, standby, stopped, failed]
  activate:
    description:
      - Make I(slot) the active slot. The slot it replaces becomes the previous slot (the
        rollback target) and turns I(replaced_status).
    type: bool
    default: false
  replaced_status:
    description:
      - I(action=record) with I(activate), the status of the slot it replaces. C(standby) while
        it still runs, C(stopped) once it was drained and stopped.
    type: str
    choices: [standby, stopped]
    default: standby
  for_rollback:
    description:
      - I(action=lock) for a rollback, which has nothing to decide before it locks. Refuses,
        without taking the lock, when the state names no rollback target (the message says
        why); otherwise the state is read again under the lock and RV(rollback) is the target.
      - Saves the separate I(action=read) on the way back.
    type: bool
    default: false
  release_lock:
    description:
      - I(action=record) releases this run's lock (I(run_id) and I(pid), or I(token)) after the
        state is written and the I(event) audited.
    type: bool
    default: false
  upstream_dir:
    description:
      - The load balancer's switch directory (C(nginx_upstream_dir)), whose C(live/) marker names the
        slot nginx serves. The marker is the truth of what is live.
      - I(action=lock) refuses, and releases the lock, when the state disagrees with the marker.
        I(action=read) reports the marker and any disagreement. Required for I(action=reconcile).
    type: path
  event:
    description:
      - I(action=audit) the event to append; I(action=record) and I(action=reconcile) an event to
        append after the write. A list appends several events, in order.
      - When the state cannot be written, the events are appended anyway, their C(reason) saying so,
        and the action then fails.
      - C(event) is one of C(deploy), C(rollback),
        C(switch), C(failure), C(auto_revert), C(lock_broken), C(reconcile), C(hook); the other fields are C(slot),
        C(from_slot), C(version), C(previous_version), C(outcome) (C(success) or C(failed)),
        C(reason), C(duration_s), C(phases) (phase name to seconds), C(source) and C(ts).
      - A C(hook) event also names its C(hook), the command's C(exit_code) and its last C(output) lines.
      - C(app), C(run_id) and C(user) default to I(app), I(run_id) and I(owner); C(ts) to now.
    type: raw
  last_n:
    description: I(action=read) how many of the latest audit events to return.
    type: int
    default: 10
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - I(action=read) runs as usual. The other actions report what they would change and
        change nothing; a lock held by another run still fails.
  diff_mode:
    support: full
    details: I(action=record) shows the state document before and after.
  platform:
    platforms: posix
notes:
  - Run it on the load balancer host, where the state lives.
  - Identify the run once, on the controller, and pass the same values to every call, for
    example C(pid) from C(lookup('ansible.builtin.pipe', 'ps -o ppid= -p $PPID')), which is
    the C(ansible-playbook) process that ran the lookup's worker.
seealso:
  - module: unitehub.platform.slot_switch
"""

EXAMPLES = r"""
- name: Identify this controller run
  ansible.builtin.set_fact:
    deploy_pid: "{{ lookup('ansible.builtin.pipe', 'ps -o ppid= -p $PPID') | trim | int }}"
    deploy_run_id: "{{ now(utc=true, fmt='%Y%m%dT%H%M%SZ') }}-{{ 1000000 | random }}"
    deploy_controller: "{{ lookup('ansible.builtin.pipe', 'hostname') }}"
  run_once: true

- name: Take the deploy lock
  unitehub.platform.deploy_state:
    action: lock
    owner: "{{ lookup('ansible.builtin.env', 'USER') }}"
    run_id: "{{ deploy_run_id }}"
    pid: "{{ deploy_pid }}"
    controller_host: "{{ deploy_controller }}"
  register: deploy_lock

- name: Resolve the target slot (auto = the idle one)
  unitehub.platform.deploy_state:
    action: read
    slot: auto
  register: deploy_plan

- name: Record the new version as active
  unitehub.platform.deploy_state:
    action: record
    slot: "{{ deploy_plan.target_slot }}"
    version: v2
    image: unitehub/app:v2
    image_id: sha256:4f5d0c1e...
    repo_digest: registry.example.com/unitehub/app@sha256:2fd2aa1c...
    activate: true
    run_id: "{{ deploy_run_id }}"
    pid: "{{ deploy_pid }}"

- name: Audit the deploy
  unitehub.platform.deploy_state:
    action: audit
    run_id: "{{ deploy_run_id }}"
    event:
      event: deploy
      slot: "{{ deploy_plan.target_slot }}"
      from_slot: "{{ deploy_plan.state.active_slot }}"
      version: v2
      outcome: success

- name: Release the deploy lock
  unitehub.platform.deploy_state:
    action: unlock
    run_id: "{{ deploy_run_id }}"
    pid: "{{ deploy_pid }}"

- name: Or end a deploy in one step - record, audit, release the lock
  unitehub.platform.deploy_state:
    action: record
    slot: green
    version: v2
    activate: true
    replaced_status: stopped  # the old slot was drained and stopped
    run_id: "{{ deploy_run_id }}"
    pid: "{{ deploy_pid }}"
    event:
      event: deploy
      slot: green
      from_slot: blue
      version: v2
      outcome: success
    release_lock: true

- name: Find the rollback target
  unitehub.platform.deploy_state:
    action: read
  register: deploy_now

- name: Stop when there is nothing to roll back to
  ansible.builtin.fail:
    msg: "{{ deploy_now.rollback_error }}"
  when: deploy_now.rollback is none

- name: Break a lock left by a crashed run (only works once it is stale)
  unitehub.platform.deploy_state:
    action: lock
    run_id: "{{ deploy_run_id }}"
    pid: "{{ deploy_pid }}"
    force: true
"""

RETURN = r"""
state:
  description:
    - The state document after the action (in check mode, as it would be).
    - Null when the state file is unreadable; I(action=lock), I(action=unlock) and I(action=audit)
      still run then, with a warning, while I(action=read) and I(action=record) fail.
  returned: always
  type: dict
  contains:
    schema:
      description: Format version of the document.
      type: int
      sample: 1
    app:
      description: The app the state belongs to.
      type: str
      sample: unitehub
    active_slot:
      description: The slot serving traffic, or null before the first deploy.
      type: str
      sample: green
    previous_slot:
      description: The slot that served before it (the rollback target), or null.
      type: str
      sample: blue
    slots:
      description: Per slot C(version), C(image), C(image_id), C(repo_digest), C(deployed_at) and C(status).
      type: dict
      sample: {"blue": {"version": "v1", "image": "unitehub/app:v1", "image_id": "sha256:1a2b", "repo_digest": null,
               "deployed_at": "2026-01-05T10:00:00Z", "status": "standby"},
               "green": {"version": "v2", "image": "registry.example.com/unitehub/app:v2", "image_id": "sha256:3c4d",
               "repo_digest": "registry.example.com/unitehub/app@sha256:5e6f",
               "deployed_at": "2026-01-06T09:30:00Z", "status": "active"}}
    updated_at:
      description: When the document last changed.
      type: str
      sample: "2026-01-06T09:30:00Z"
lock:
  description:
    - The deploy lock after the action, or null when nobody holds it.
    - C(token) is returned only by I(action=lock), to the run that holds it.
  returned: always
  type: dict
  contains:
    path:
      description: The lock file.
      type: str
      sample: /var/lib/unitehub/unitehub/deploy.lock
    owner:
      description: Who took it.
      type: str
      sample: alice
    run_id:
      description: The run holding it.
      type: str
      sample: 20260106T093000Z-4242
    pid:
      description: The controller pid of that run.
      type: int
      sample: 4242
    host:
      description: The host where that pid runs.
      type: str
      sample: ctl1
    started_at:
      description: When it was taken.
      type: str
      sample: "2026-01-06T09:30:00Z"
    ttl:
      description: Seconds after which it is stale.
      type: int
      sample: 1800
    age_s:
      description: Seconds since it was taken.
      type: float
      sample: 12.5
    stale:
      description: Whether it is past its ttl or its pid is dead on this host.
      type: bool
      sample: false
    stale_reason:
      description: Why it is stale, or null.
      type: str
      sample: pid 4242 is no longer running on lb1
    readable:
      description: False when the lock file is empty or corrupt.
      type: bool
      sample: true
    token:
      description: Handle that releases the lock in place of run_id and pid (I(action=lock) only).
      type: str
      sample: 0f3c9a7d2b8e4d1f9a6b5c4d3e2f1a0b
broken_lock:
  description: The lock removed by I(force), or null. The break is also in the audit log.
  returned: always
  type: dict
  sample: null
target_slot:
  description: The slot the deploy goes to, resolved from I(slot) under the lock (I(action=lock)).
  returned: when action is lock or read and slot is set
  type: str
  sample: green
live_slot:
  description:
    - The slot the live-slot marker in I(upstream_dir) names, or null when there is none.
    - I(action=read) returns it even when it fails because the state file cannot be read.
  returned: when upstream_dir is set
  type: str
  sample: green
serving_slot:
  description:
    - I(action=lock) the slot that carries traffic - the state's active slot or, while the state records no
      deploy, the one the marker names (a first deploy stopped after its switch left it serving). Null when
      nothing was ever switched to.
  returned: when action is lock
  type: str
  sample: blue
migrated_from:
  description: The legacy state file whose content was moved to I(state_dir) by this call (see I(legacy_state_dir)).
  returned: when a legacy state was moved
  type: str
  sample: /var/lib/unitehub/deploy/state.json
divergence:
  description: I(action=read) why the state disagrees with the marker, or null when they agree.
  returned: when action is read and upstream_dir is set
  type: str
  sample: null
idle_slot:
  description: The slot not serving traffic, where C(slot=auto) deploys.
  returned: always
  type: str
  sample: blue
rollback:
  description: The rollback target (C(slot), C(version), C(image), C(image_id), C(repo_digest)), or null.
  returned: always
  type: dict
  sample: {"slot": "blue", "version": "v1", "image": "unitehub/app:v1", "image_id": "sha256:1a2b", "repo_digest": null}
rollback_error:
  description: Why there is nothing to roll back to, or null when there is.
  returned: always
  type: str
  sample: "nothing to roll back to: blue (v1) is the only deploy recorded; deploy the version you want instead"
protected_images:
  description: Every image, image id and repo digest the state names; image pruning must keep them.
  returned: always
  type: list
  elements: str
  sample: ["sha256:1a2b", "sha256:3c4d", "unitehub/app:v1", "unitehub/app:v2"]
audit:
  description: I(action=read) the last I(last_n) audit events, oldest first.
  returned: always
  type: list
  elements: dict
  sample: [{"ts": "2026-01-06T09:31:02.120Z", "event": "deploy", "app": "unitehub", "slot": "green",
            "from_slot": "blue", "version": "v2", "previous_version": "v1", "outcome": "success",
            "reason": null, "run_id": "20260106T093000Z-4242", "user": "alice", "duration_s": 92.4,
            "phases": {"health_gate": 11.2}, "source": "module"}]
audit_event:
  description:
    - The (last) event appended by I(action=audit), or by I(action=record) or I(action=reconcile) with
      I(event); in check mode, the one that would be.
  returned: when action is audit, or record or reconcile with event
  type: dict
  sample: {"ts": "2026-01-06T09:31:02.120Z", "event": "switch", "app": "unitehub", "slot": "green",
           "from_slot": "blue", "version": "v2", "previous_version": "v1", "outcome": "success",
           "reason": null, "run_id": "20260106T093000Z-4242", "user": "alice", "duration_s": null,
           "phases": null, "source": "module"}
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.unitehub.platform.plugins.module_utils import deploy_actions
from ansible_collections.unitehub.platform.plugins.module_utils.deploy_lock import LockHeld
from ansible_collections.unitehub.platform.plugins.module_utils.deploy_state import DeployStateError


def main():
    module = AnsibleModule(
        argument_spec=deploy_actions.argument_spec(),
        required_if=deploy_actions.REQUIRED_IF,
        supports_check_mode=True,
    )
    run = deploy_actions.Run(module.params, check_mode=module.check_mode, diff=module._diff, warn=module.warn)
    try:
        result = run.run()
    except LockHeld as exc:
        module.fail_json(msg=str(exc), lock=exc.holder)
    except deploy_actions.ActionError as exc:
        module.fail_json(msg=str(exc), **exc.details)
    except DeployStateError as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # a bug or an environment problem: report it with context, not a traceback
        module.fail_json(msg="unexpected %s during action=%s on %s: %s"
                         % (type(exc).__name__, module.params["action"], module.params["state_dir"], exc),
                         exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
