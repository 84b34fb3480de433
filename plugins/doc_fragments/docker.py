# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How a module reaches the Docker daemon: the options of
    # module_utils.docker_client.docker_argument_spec() and the SDK they need.
    DOCUMENTATION = r"""
requirements:
  - docker (the Python Docker SDK) >= 5.0 on the managed host
  - a Docker daemon the SDK can reach
attributes:
  platform:
    platforms: posix
options:
  docker_host:
    description:
      - Docker daemon to talk to, for example C(unix:///run/docker.sock) or C(tcp://127.0.0.1:2375).
      - Defaults to C(DOCKER_HOST) from the environment, else the local socket.
    type: str
  request_timeout:
    description:
      - Seconds to wait for one Docker API call.
      - The alias O(timeout) is deprecated and will be removed in 2.0.0; C(timeout) means an overall
        wait everywhere else in this collection.
    type: int
    default: 60
    aliases: [timeout]
"""
