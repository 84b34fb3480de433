"""docs/your-own-app.md, run exactly as the page shows it, in an empty directory.

Every fenced block after a ``<!-- file: NAME -->`` marker is written to NAME; every block after
``<!-- run -->`` is run with bash (``set -e``), with UNITEHUB set to this checkout, as the
page says. The output is what the page promises.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from ansible_collections.unitehub.platform.tests.integration.ansible_runner import REPO_ROOT
from ansible_collections.unitehub.platform.tests.integration.deploy_helpers import remove_app

pytestmark = pytest.mark.integration

PAGE = os.path.join(REPO_ROOT, "docs", "your-own-app.md")
STEP = re.compile(r"<!-- (file: (?P<file>\S+)|run) -->\n```[a-z]*\n(?P<body>.*?)```", re.S)


def steps():
    with open(PAGE, encoding="utf-8") as handle:
        return [(match.group("file"), match.group("body")) for match in STEP.finditer(handle.read())]


@pytest.fixture
def workdir(tmp_path):
    yield tmp_path
    remove_app("hello", "local/hello")


def test_the_page_takes_an_empty_directory_to_a_deployed_app(workdir):
    found = steps()
    assert [name for name, _body in found if name] == ["app.py", "Dockerfile", "inventory.yml"]
    assert len([1 for name, _body in found if name is None]) == 2
    outputs = []
    env = dict(os.environ, UNITEHUB=REPO_ROOT, ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_CONFIG", None)  # the page runs outside the checkout, with its own settings
    for name, body in found:
        if name:
            (workdir / name).write_text(body)
            continue
        proc = subprocess.run(["bash", "-c", "set -e\n" + body], cwd=workdir, env=env, capture_output=True,
                              text=True, timeout=900, check=False)
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
        outputs.append([line for line in proc.stdout.splitlines() if line.startswith("hello from")])
    assert outputs == [["hello from v1"], ["hello from v2", "hello from v1"]]
