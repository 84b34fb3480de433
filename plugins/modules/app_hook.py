#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: app_hook
short_description: Run a deploy hook command in a one-off container of the app's image
version_added: "0.2.0"
description:
  - Runs O(command) once in a new container C(<app_name>-hook-<hook>) created from C(<image>:<version>), or from
    the exact image O(image_id), on the host network, with O(env) and O(secret_env) and the variables C(APP_NAME),
    C(APP_VERSION), C(APP_HOOK) and, with O(slot), C(APP_SLOT). Database migrations are the usual command.
  - Waits for the command to end, at most O(run_timeout) seconds. A command that runs longer is stopped (C(SIGTERM),
    then C(SIGKILL) after O(stop_grace_period) seconds) and reported as timed out.
  - The secrets of O(secret_env) are files, as for M(unitehub.platform.app_slot), in C(<secrets_dir>/<container name>),
    removed again after the run. The container is hardened the same way as a slot's.
  - Returns the exit code, the duration and the last O(output_lines) lines of the output (stdout and stderr), then
    removes the container, whatever happened. The image's C(HEALTHCHECK) is turned off for the run.
  - Fails on a non-zero exit code or a timeout, with the same return values as a success, so a playbook can report
    and audit both.
  - A container of that name left by an earlier run that was killed is removed first when it has ended. One that
    still runs is refused, because it may be half-way through a migration.
  - The image must already be on the host; build or pull it first with M(unitehub.platform.app_image).
    This module never pulls.
author:
  - unitehub platform team (@unitehub)
options:
  hook:
    description:
      - Name of the hook, for example V(pre_deploy). Names the container and goes into C(APP_HOOK) and the
        C(io.unitehub.hook) label.
      - A lowercase letter, then up to 62 lowercase letters, digits or C(_).
    type: str
    required: true
  app_name:
    description:
      - Name of the app; names the container and goes into C(APP_NAME) and the C(io.unitehub.app) label.
    type: str
    default: unitehub
  image:
    description:
      - Image repository without a tag, for example C(unitehub/app).
    type: str
    required: true
  version:
    description:
      - Image tag and app version; goes into C(APP_VERSION) and the C(io.unitehub.version) label.
      - Without O(image_id) the container runs C(<image>:<version>).
    type: str
    required: true
  image_id:
    description:
      - Run exactly this image (C(sha256:...)) instead of whatever C(<image>:<version>) names now, for example the
        image id the deploy state recorded for a release.
    type: str
  slot:
    description:
      - The slot the deploy is for; handed to the command as C(APP_SLOT). Omit it to set no C(APP_SLOT).
    type: str
    choices: [blue, green]
  command:
    description:
      - The command and its arguments, run as the image's C(CMD) would be (through the image's C(ENTRYPOINT), if it
        has one). No shell is involved; give V([sh, -c, "..."]) for one.
    type: list
    elements: str
    required: true
  env:
    description:
      - Environment variables. Values are turned into strings; booleans become V(true)/V(false).
      - May repeat C(APP_NAME), C(APP_VERSION), C(APP_HOOK) and C(APP_SLOT) only with the value the module derives
        from its options.
    type: dict
    default: {}
  secret_env:
    description:
      - Secrets (database URLs, API keys), each a file C(/run/secrets/<NAME>) that C(<NAME>_FILE) points at, unless
        listed in O(secret_env_in_environment).
      - Never returned or logged; a value that the command prints is replaced by C(********) in RV(output).
      - A variable may be in O(env) or O(secret_env), not both.
    type: dict
    default: {}
  run_timeout:
    description:
      - Seconds the command may run, from 1 to 86400. After that the container is stopped and the module fails with
        RV(timed_out).
      - Named so because O(timeout) is the deprecated alias of O(request_timeout).
    type: float
    default: 600
  stop_grace_period:
    description:
      - Seconds between C(SIGTERM) and C(SIGKILL) when a command outlives O(run_timeout), so a migration can roll back
        its transaction.
    type: int
    default: 10
  output_lines:
    description:
      - How many of the last output lines to return in RV(output), from 0 to 1000. A line longer than 2000
        characters is cut.
    type: int
    default: 20
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - unitehub.platform.docker
  - unitehub.platform.app_container
attributes:
  check_mode:
    support: full
    details: Checks the options and that the image is present, and reports the command it would run (RV(ran) is
      V(false)). Nothing runs.
  diff_mode:
    support: none
notes:
  - The container uses host networking, like the slots, so the command reaches the app's database and cache on the
    addresses the slots use. It gets no C(PORT) or C(HOST), because a hook must not listen on a slot's port.
  - The command runs as the image's C(USER), or O(user); as root only with O(allow_root).
seealso:
  - module: unitehub.platform.app_image
  - module: unitehub.platform.app_slot
"""

EXAMPLES = r"""
- name: Migrate the database with the new release before it starts
  unitehub.platform.app_hook:
    hook: pre_deploy
    app_name: unitehub
    image: unitehub/app
    version: v2
    slot: green
    command: [python3, -m, unitehub_app.migrate]
    run_timeout: 600
    env:
      ENABLE_DB_POOLER: true
    secret_env:
      DATABASE_URL: "{{ vault_database_url }}"
  register: migration

- name: Show how it went
  ansible.builtin.debug:
    msg: "exit {{ migration.exit_code }} after {{ migration.duration_s }} s: {{ migration.output | last | default('') }}"

- name: Run a check with the exact image a release recorded
  unitehub.platform.app_hook:
    hook: smoke_check
    image: unitehub/app
    version: v1
    image_id: sha256:9a0b4c...
    command: [sh, -c, "python3 -m unitehub_app.probe"]
"""

RETURN = r"""
hook:
  description: The hook's name.
  returned: always
  type: str
  sample: pre_deploy
container:
  description: Name of the one-off container (removed again).
  returned: always
  type: str
  sample: unitehub-hook-pre_deploy
image:
  description: The image reference C(<image>:<version>).
  returned: always
  type: str
  sample: unitehub/app:v2
image_id:
  description: Id of the image the command ran in (or would run in, in check mode).
  returned: always
  type: str
  sample: sha256:9a0b...
command:
  description: The command as given.
  returned: always
  type: list
  elements: str
  sample: [python3, -m, unitehub_app.migrate]
ran:
  description: Whether the command was started; V(false) in check mode.
  returned: always
  type: bool
exit_code:
  description:
    - The command's exit code; null when it did not run. A stopped command reports what its process returned on
      C(SIGTERM), or 137 after C(SIGKILL).
  returned: always
  type: int
  sample: 0
timed_out:
  description: Whether the command outlived O(run_timeout) and was stopped. A timed-out hook fails whatever its exit code.
  returned: always
  type: bool
duration_s:
  description: Seconds from the start of the container to the end of the command (monotonic clock); null when it did not run.
  returned: always
  type: float
  sample: 1.482
output:
  description:
    - The last O(output_lines) lines of the command's stdout and stderr, with secret values masked.
  returned: always
  type: list
  elements: str
  sample: ["applied 2 migrations", "schema at 0042"]
removed:
  description: Whether the container was removed after the run (a failure to remove it is a warning).
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.unitehub.platform.plugins.module_utils.app_hook import (
    DEFAULT_OUTPUT_LINES,
    DEFAULT_STOP_GRACE,
    DEFAULT_TIMEOUT,
    HookSpec,
    run_hook,
)
from ansible_collections.unitehub.platform.plugins.module_utils.app_slot_spec import container_argument_spec
from ansible_collections.unitehub.platform.plugins.module_utils.docker_client import docker_argument_spec, run_docker_module
from ansible_collections.unitehub.platform.plugins.module_utils.slots import SLOTS


def argument_spec():
    spec = dict(
        hook=dict(type="str", required=True),
        app_name=dict(type="str", default="unitehub"),
        image=dict(type="str", required=True),
        version=dict(type="str", required=True),
        image_id=dict(type="str"),
        slot=dict(type="str", choices=list(SLOTS)),
        command=dict(type="list", elements="str", required=True),
        env=dict(type="dict", default={}),
        secret_env=dict(type="dict", default={}, no_log=True),
        run_timeout=dict(type="float", default=DEFAULT_TIMEOUT),
        stop_grace_period=dict(type="int", default=DEFAULT_STOP_GRACE),
        output_lines=dict(type="int", default=DEFAULT_OUTPUT_LINES),
    )
    spec.update(container_argument_spec())
    spec.update(docker_argument_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_docker_module(module, HookSpec, lambda api, spec: run_hook(api, spec, check_mode=module.check_mode))


if __name__ == "__main__":
    main()
