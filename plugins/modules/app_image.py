#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: app_image
short_description: Build or pull the app image for a version, remove it, prune old versions
version_added: "0.1.0"
description:
  - Makes C(<image>:<version>) present on the Docker host, by building it from O(build_context) (with the
    build arguments C(APP_VERSION) and C(BASE_IMAGE) and host networking) or, without O(build_context), by
    pulling it.
  - An image that is already present is left alone unless O(force_rebuild) is set, so a tag built before
    keeps the labels it was built with.
  - With O(state=absent) removes the tag; refuses when a container still uses the image.
  - With O(prune=true) also removes every other C(<image>:<tag>) whose tag is not in O(keep). Images used by a
    container (running or stopped) are never removed, only reported in RV(kept_in_use). Pass the versions the
    deploy state names in O(keep) so a rollback target is never pruned.
  - A pull sends O(registry_username) and O(registry_password), when given, to dockerd with that one request; nothing
    is stored on the host. Without them dockerd uses the host's own C(docker login), if any.
  - A failed pull fails the module with its cause in words (the registry has no such tag, refused the credentials,
    cannot be reached) and dockerd's own message.
  - With O(repo_digest), makes that one image present instead of whatever C(<image>:<version>) names now, pulling it by
    its digest when missing. This is how a rollback gets back the image its deploy pulled.
author:
  - unitehub platform team (@unitehub)
options:
  image:
    description:
      - Image repository without a tag, for example C(unitehub/app) or C(registry.example.com/unitehub/app).
    type: str
    required: true
  version:
    description:
      - The tag to build, pull or remove.
      - A build gets it as build argument C(APP_VERSION); the app's Dockerfile puts it into the
        C(io.unitehub.version) label and the C(APP_VERSION) environment variable of the image.
    type: str
    required: true
  state:
    description:
      - V(present) builds or pulls C(<image>:<version>) when it is missing.
      - V(absent) removes the C(<image>:<version>) tag.
    type: str
    choices: [present, absent]
    default: present
  build_context:
    description:
      - Directory on the managed host holding the Dockerfile. When set, V(present) builds; when not, it pulls.
    type: path
  dockerfile:
    description:
      - Dockerfile path inside O(build_context).
    type: str
    default: Dockerfile
  base_image:
    description:
      - Image passed to the build as build argument C(BASE_IMAGE).
      - Must be present on the host before the build; the module checks that first and names the role that
        builds it.
    type: str
  build_args:
    description:
      - Further build arguments. C(BASE_IMAGE) belongs to O(base_image) and C(APP_VERSION) to O(version);
        repeating either here with another value fails.
    type: dict
    default: {}
  force_rebuild:
    description:
      - Build (or pull) again even though the tag exists. Reports a change only when the image id changed.
    type: bool
    default: false
  nocache:
    description:
      - Build without Docker's layer cache.
    type: bool
    default: false
  build_timeout:
    description:
      - Seconds to wait for build or pull output before giving up.
      - Builds and pulls wait this long instead of O(timeout).
    type: int
    default: 600
  prune:
    description:
      - Remove every C(<image>:<tag>) whose tag is neither in O(keep) nor, with O(state=present), O(version).
    type: bool
    default: false
  keep:
    description:
      - Tags O(prune) must not remove, for example the versions of both slots in the deploy state.
    type: list
    elements: str
    default: []
  registry_username:
    description:
      - User name for the registry O(image) is pulled from.
      - Sent to dockerd with the pull request only; the host keeps no login.
    type: str
  registry_password:
    description:
      - Password or access token for O(registry_username). Never shown in a result, a log or a diff.
    type: str
  repo_digest:
    description:
      - One exact image, C(<repository>@sha256:<digest>), to make present instead of C(<image>:<version>), whatever
        that tag names now; pulled by its digest (with the registry credentials) when it is missing. The tag is left
        as it is.
      - The deploy state records it per slot for pulled images (C(repo_digest)); O(version) still names the release.
      - Never built, so it excludes O(build_context) and O(force_rebuild); with O(state=present) only.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - unitehub.platform.docker
attributes:
  check_mode:
    support: full
    details:
      - Reports what it would build, pull or remove and changes nothing.
      - With O(force_rebuild) it reports a change, since only a real build shows whether the id changes.
  diff_mode:
    support: full
    details: Shows the repository's tags before and after.
seealso:
  - module: unitehub.platform.app_slot
"""

EXAMPLES = r"""
- name: Build unitehub/app:v2 from the checkout on top of the local base image
  unitehub.platform.app_image:
    image: unitehub/app
    version: v2
    build_context: /srv/unitehub/app
    base_image: unitehub/base:bookworm
  register: built

- name: Pull the release from the registry instead, with its credentials
  unitehub.platform.app_image:
    image: registry.example.com/unitehub/app
    version: v2
    registry_username: deploy
    registry_password: "{{ vault_registry_token }}"

- name: Make present the exact image a deploy recorded, even if the tag was pushed again since
  unitehub.platform.app_image:
    image: registry.example.com/unitehub/app
    version: v1
    repo_digest: "{{ deploy_state.slots.blue.repo_digest }}"
    registry_username: deploy
    registry_password: "{{ vault_registry_token }}"

- name: Keep only the versions the deploy state names
  unitehub.platform.app_image:
    image: unitehub/app
    version: "{{ deploy_state.slots[deploy_state.active_slot].version }}"
    prune: true
    keep: "{{ deploy_state.slots.values() | map(attribute='version') | list }}"

- name: Remove one version
  unitehub.platform.app_image:
    image: unitehub/app
    version: v1
    state: absent
"""

RETURN = r"""
image:
  description:
    - The image C(<image>:<version>) (or O(repo_digest)) after the run; V({}) with O(state=absent).
    - In check mode, as it is now.
  returned: always
  type: dict
  contains:
    id:
      description: Image id.
      type: str
      sample: sha256:9a0b...
    tags:
      description: Every tag pointing at this image.
      type: list
      elements: str
      sample: [unitehub/app:v2]
    repo_digests:
      description: The image's repo digests, C(<repository>@sha256:...); V([]) for an image never pulled or pushed.
      type: list
      elements: str
      sample: [registry.example.com/unitehub/app@sha256:2fd2aa1c...]
    created:
      description: When the image was created (RFC 3339).
      type: str
      sample: "2026-11-29T08:00:00.123456789Z"
    size:
      description: Size in bytes.
      type: int
      sample: 171234567
actions:
  description: What the module did, or would do in check mode, in order.
  returned: always
  type: list
  elements: str
  sample: [build, "remove unitehub/app:v0"]
removed:
  description: Tags removed (or, in check mode, that would be removed).
  returned: always
  type: list
  elements: str
  sample: [v0]
kept_in_use:
  description: Tags O(prune) left in place because a container uses their image.
  returned: always
  type: list
  elements: dict
  contains:
    tag:
      description: The tag.
      type: str
      sample: v1
    reason:
      description: Why it stayed.
      type: str
      sample: used by container(s) unitehub-blue
build_log:
  description: The last lines of the build or pull output.
  returned: when the module built or pulled, and on a failed build
  type: list
  elements: str
  sample: ["Step 5/5 : CMD [\"python3\", \"-m\", \"app\"]", "Successfully tagged unitehub/app:v2"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.unitehub.platform.plugins.module_utils.app_image import (
    IMAGE_MUTUALLY_EXCLUSIVE,
    IMAGE_REQUIRED_TOGETHER,
    STATES,
    ImageManager,
    ImageSpec,
    image_argument_spec,
)
from ansible_collections.unitehub.platform.plugins.module_utils.docker_client import docker_argument_spec, run_docker_module


def argument_spec():
    spec = dict(
        image=dict(type="str", required=True),
        version=dict(type="str", required=True),
        state=dict(type="str", choices=list(STATES), default="present"),
        dockerfile=dict(type="str", default="Dockerfile"),
        build_args=dict(type="dict", default={}),
        nocache=dict(type="bool", default=False),
    )
    spec.update(image_argument_spec())
    spec.update(docker_argument_spec())
    return spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_together=IMAGE_REQUIRED_TOGETHER,
        mutually_exclusive=IMAGE_MUTUALLY_EXCLUSIVE,
        supports_check_mode=True,
    )
    run_docker_module(module, ImageSpec, lambda api, spec: ImageManager(api, check_mode=module.check_mode).ensure(spec))


if __name__ == "__main__":
    main()
