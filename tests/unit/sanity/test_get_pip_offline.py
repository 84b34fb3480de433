# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tests/sanity/get_pip_offline.py, the pip bootstrap tests/sanity/run.sh hands to ansible-test.

It must do what ansible-test asks of get-pip.py: put pip into a virtual environment
created without pip, taking get-pip.py's arguments, with no download. The test
installs the interpreter's bundled pip wheel by path, so no index is contacted.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import venv

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCRIPT = os.path.join(REPO_ROOT, "tests", "sanity", "get_pip_offline.py")


def bundled_wheel():
    import ensurepip  # pylint: disable=import-outside-toplevel

    wheels = glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl"))
    if not wheels:
        pytest.fail("this interpreter has no bundled pip wheel; install it with its ensurepip module")
    return sorted(wheels)[-1]


def test_bootstraps_pip_into_an_empty_venv_with_get_pip_arguments(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(str(env_dir))
    python = str(env_dir / "bin" / "python")
    assert subprocess.run([python, "-c", "import pip"], capture_output=True, check=False).returncode != 0

    wheel = bundled_wheel()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    environ.update(PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    # The arguments ansible-test gives get-pip.py, with the wheel in place of "pip==<version>".
    proc = subprocess.run([python, SCRIPT, "--disable-pip-version-check", wheel, "--no-setuptools", "--no-wheel"],
                          capture_output=True, text=True, env=environ, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    version = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True, check=True).stdout
    expected = os.path.basename(wheel).split("-")[1]
    assert version.startswith("pip %s from %s" % (expected, env_dir))
    installed = subprocess.run([python, "-m", "pip", "list", "--format", "freeze"], capture_output=True,
                               text=True, check=True).stdout.split()
    assert installed == ["pip==%s" % expected], "only pip: no setuptools, no wheel"


def test_runs_as_ansible_test_runs_it_through_runpy(tmp_path):
    """quiet_pip.py imports the script as a module named after the file and runs it as __main__."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(str(env_dir))
    python = str(env_dir / "bin" / "python")
    runner = (
        "import runpy, sys; sys.path.insert(0, %r); sys.argv = ['quiet_pip.py'] + sys.argv[1:]; "
        "runpy.run_module('get_pip_offline', run_name='__main__', alter_sys=True)" % os.path.dirname(SCRIPT)
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    environ.update(PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull)
    proc = subprocess.run([python, "-c", runner, bundled_wheel(), "--no-setuptools", "--no-wheel"],
                          capture_output=True, text=True, env=environ, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert subprocess.run([python, "-m", "pip", "--version"], capture_output=True, check=False).returncode == 0


def test_names_the_fix_when_the_interpreter_has_no_bundled_pip(tmp_path):
    fake = tmp_path / "ensurepip"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    environ = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.run([sys.executable, SCRIPT, "pip==24.2"], capture_output=True, text=True, env=environ,
                          timeout=60, check=False)
    assert proc.returncode != 0
    assert "no pip wheel matches" in proc.stderr and "python3-venv" in proc.stderr
