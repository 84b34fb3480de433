#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nginx_config
short_description: Install an nginx configuration file only if C(nginx -t) accepts it
version_added: 0.1.0
description:
  - Replaces one nginx configuration file atomically, then checks the whole configuration
    with C(nginx -t).
  - When C(nginx -t) fails, the previous file (or no file, if there was none) is put back
    before the module fails, so the live configuration never holds a rejected candidate.
  - After a change that passed the test, nginx can be reloaded gracefully
    with C(nginx -s reload), so new workers take the new configuration while old workers finish
    their in-flight requests. A stopped nginx is left stopped.
  - The logic lives in the collection's C(module_utils/nginx.py) (C(replace_validated)).
author:
  - unitehub platform team (@unitehub)
options:
  path:
    description:
      - Absolute path of the configuration file to manage, for example
        C(/etc/nginx/conf.d/unitehub.conf).
      - Parent directories are created when missing.
    type: path
    required: true
  content:
    description:
      - The full text the file must hold. Usually rendered with
        C(lookup('ansible.builtin.template', 'site.conf.j2')).
    type: str
    required: true
  mode:
    description:
      - Permissions of the file, as an octal string such as V('0644') or an integer.
      - Applied when the file is written, and corrected when only the permissions differ.
    type: raw
    default: '0644'
  reload:
    description:
      - Reload nginx gracefully after the file changed and passed C(nginx -t).
      - Nothing is reloaded when the content is unchanged, in check mode, or when nginx is
        not running (see O(pid_file)).
    type: bool
    default: true
  nginx_binary:
    description:
      - The nginx executable used for C(nginx -t) and C(nginx -s reload). A bare name is
        looked up on E(PATH).
    type: str
    default: nginx
  pid_file:
    description:
      - The pid file of the nginx master process; nginx counts as running when it names a
        live process.
    type: path
    default: /run/nginx.pid
attributes:
  check_mode:
    support: full
    description:
      - Reports whether the file would change and shows the diff; writes nothing and does
        not run C(nginx -t), because the candidate can only be tested in place.
  diff_mode:
    support: full
    description:
      - Shows the file content before and after.
notes:
  - Needs permission to write O(path) and to run C(nginx -t), usually root.
seealso:
  - name: nginx command-line parameters
    description: The C(-t) and C(-s reload) switches.
    link: https://nginx.org/en/docs/switches.html
"""

EXAMPLES = r"""
- name: Install the load-balancer site, reload nginx if it changed
  unitehub.platform.nginx_config:
    path: /etc/nginx/conf.d/unitehub.conf
    content: "{{ lookup('ansible.builtin.template', 'unitehub-site.conf.j2') }}"
    mode: "0644"

- name: Write a candidate upstream without reloading (a later task reloads)
  unitehub.platform.nginx_config:
    path: /etc/nginx/unitehub/unitehub/blue.conf
    content: |
      server 127.0.0.1:3009;
    reload: false

- name: Use an nginx installed outside PATH
  unitehub.platform.nginx_config:
    path: /opt/nginx/conf/conf.d/app.conf
    content: "{{ site_config }}"
    nginx_binary: /opt/nginx/sbin/nginx
    pid_file: /opt/nginx/logs/nginx.pid
"""

RETURN = r"""
changed:
  description: Whether the file content or its permissions changed (or would change in check mode).
  returned: always
  type: bool
  sample: true
path:
  description: The managed file.
  returned: always
  type: str
  sample: /etc/nginx/conf.d/unitehub.conf
reloaded:
  description: Whether nginx was reloaded gracefully after the change.
  returned: always
  type: bool
  sample: true
nginx_output:
  description:
    - What C(nginx -t) printed. Empty when the test did not run (no change, or check mode).
    - On failure it is returned with the error, and the previous file is back in place.
  returned: always
  type: str
  sample: |-
    nginx: the configuration file /etc/nginx/nginx.conf syntax is ok
    nginx: configuration file /etc/nginx/nginx.conf test is successful
diff:
  description: The file content before and after, in Ansible's diff format.
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: The previous content; empty when the file did not exist.
      type: str
    after:
      description: The new content.
      type: str
    before_header:
      description: The managed path.
      type: str
    after_header:
      description: The managed path.
      type: str
"""

import contextlib
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.unitehub.platform.plugins.module_utils.nginx import (
    NginxConfigError,
    config_lock,
    reload_nginx,
    replace_validated,
)


def _parse_mode(value):
    """'0644', '644' or 420 -> 420. Returns None when the value is not a valid mode."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        mode = value
    else:
        text = str(value).strip()
        if not text or any(char not in "01234567" for char in text):
            return None
        mode = int(text, 8)
    return mode if 0 <= mode <= 0o7777 else None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            content=dict(type="str", required=True),
            mode=dict(type="raw", default="0644"),
            reload=dict(type="bool", default=True),
            nginx_binary=dict(type="str", default="nginx"),
            pid_file=dict(type="path", default="/run/nginx.pid"),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    mode = _parse_mode(module.params["mode"])
    result = dict(changed=False, path=path, reloaded=False, nginx_output="")

    if not os.path.isabs(path):
        module.fail_json(msg="path %r is not absolute; give the full path, e.g. /etc/nginx/conf.d/app.conf" % path, **result)
    if mode is None:
        module.fail_json(msg="mode %r is not an octal file mode; use a string such as '0644'" % (module.params["mode"],), **result)

    # The write, its nginx -t and the reload, never interleaved with another app's switch.
    with config_lock() if not module.check_mode else contextlib.nullcontext():
        try:
            outcome = replace_validated(
                path,
                module.params["content"],
                mode=mode,
                nginx_bin=module.params["nginx_binary"],
                check_mode=module.check_mode,
            )
        except NginxConfigError as exc:
            result["nginx_output"] = exc.output
            module.fail_json(msg="%s. nginx said: %s" % (exc, exc.output or "(no output)"), **result)

        result["changed"] = outcome["changed"]
        result["nginx_output"] = outcome["nginx_output"]
        if module._diff:
            result["diff"] = dict(before=outcome["before"], after=outcome["after"], before_header=path,
                                  after_header=path)

        if not outcome["changed"] and os.path.exists(path):
            # Same content: still converge the permissions (no reload needed for that).
            result["changed"] = module.set_mode_if_different(path, "0%o" % mode, False)

        if outcome["changed"] and module.params["reload"] and not module.check_mode:
            try:
                result["reloaded"] = reload_nginx(module.params["nginx_binary"], module.params["pid_file"])
            except NginxConfigError as exc:
                result["nginx_output"] = exc.output
                module.fail_json(
                    msg="%s passed nginx -t and is in place, but the graceful reload failed: %s. "
                    "Check the nginx error log, then reload nginx." % (path, exc.output or exc),
                    **result
                )

    module.exit_json(**result)


if __name__ == "__main__":
    main()
