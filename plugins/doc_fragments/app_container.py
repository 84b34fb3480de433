# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How the app's containers get their secrets and are confined: the options of
    # module_utils.app_slot_spec.container_argument_spec(), shared by app_slot and app_hook.
    DOCUMENTATION = r"""
options:
  secret_env_in_environment:
    description:
      - Names of O(secret_env) handed to the app as environment variables with their values, for an app that
        cannot read a file. C(docker inspect), C(/proc/<pid>/environ) and every child process of the app then
        show the value. Names that are not in O(secret_env) are ignored.
      - Every other secret is a file, see O(secrets_dir).
    type: list
    elements: str
    default: []
  secrets_dir:
    description:
      - Directory of the containers' secret directories on the host, created C(0700) when missing.
      - The secrets of container C(<name>) are the files C(<secrets_dir>/<name>/<NAME>), mode C(0400), in a directory
        mode C(0700), both owned by the uid the container runs as. The directory is mounted read-only at
        C(/run/secrets), and the app gets C(<NAME>_FILE=/run/secrets/<NAME>) instead of C(<NAME>).
      - Keep it on a persistent file system; Docker restarts the container after a reboot with the same mount.
      - The file C(.digest-key) in it (root only) keys the digest of the secret values that a label of the
        container records, so a changed value recreates the container while the label reveals nothing.
    type: path
    default: /etc/unitehub/secrets
  user:
    description:
      - User the container runs as, V(<uid>) or V(<uid>:<gid>). Empty uses the image's C(USER).
      - The uid must be numeric, because the secret files are given to it; a user name is refused.
    type: str
    default: ""
  allow_root:
    description:
      - Run the container as root (uid 0) when the image or O(user) says so.
      - Without it, an image that would run as root runs as C(nobody) (V(65534:65534)) instead, and a O(user) naming
        root is refused.
    type: bool
    default: false
  cap_add:
    description:
      - Linux capabilities given back to the container, for example V(NET_BIND_SERVICE). All others are dropped.
    type: list
    elements: str
    default: []
  read_only:
    description:
      - Mount the container's root file system read-only. The app writes to the O(tmpfs) mounts only.
    type: bool
    default: true
  tmpfs:
    description:
      - tmpfs mounts of the container, path to mount options.
    type: dict
    default: {/tmp: "rw,noexec,nosuid,nodev,size=64m"}
  pids_limit:
    description:
      - The most processes and threads the container may run at once.
    type: int
    default: 256
  memory:
    description:
      - The container's memory limit in Docker's notation, for example V(512m) or V(1g); at least V(6m).
    type: str
    default: 512m
notes:
  - The container runs with every capability dropped but O(cap_add), with C(no-new-privileges), and with the
    memory and pids limits.
"""
