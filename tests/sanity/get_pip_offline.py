# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for the ``get-pip.py`` bootstrap script of ansible-test.

``ansible-test sanity`` creates each test's virtual environment without pip,
then runs ``~/.ansible/test/cache/get_pip_<version>.py`` with pip install
arguments such as ``--disable-pip-version-check pip==24.2 --no-setuptools
--no-wheel``. It downloads that script from ci-files.testing.ansible.com, which
this machine cannot reach. ansible-test's own error message says the script may
be saved to the cache path by hand; ``tests/sanity/run.sh`` saves this one there.

It does what get-pip.py does, with the pip wheel that ships inside the
interpreter's ``ensurepip`` package instead of one embedded in the script: put
the wheel on ``sys.path`` and run ``pip install`` with the given arguments. pip
then fetches the exact pinned packages (``pip==24.2``) from the package index
configured for pip (PyPI), so the environment ends up as ansible-test expects.
"""

from __future__ import annotations

import glob
import os
import sys

# get-pip.py options that are not pip options: they only tell get-pip.py not to
# add setuptools and wheel, which this script never adds anyway.
GET_PIP_ONLY_OPTIONS = ('--no-setuptools', '--no-wheel')


def bundled_pip_wheel() -> str:
    """Return the path of the pip wheel bundled with this interpreter."""
    import ensurepip  # pylint: disable=import-outside-toplevel

    pattern = os.path.join(os.path.dirname(ensurepip.__file__), '_bundled', 'pip-*.whl')
    wheels = sorted(glob.glob(pattern))
    if not wheels:
        raise SystemExit(
            'no pip wheel matches %s: install the interpreter with its ensurepip '
            'module (Debian: apt-get install python3-venv)' % pattern
        )
    return wheels[-1]


def main() -> int:
    """Install the requested packages with the bundled pip."""
    sys.path.insert(0, bundled_pip_wheel())
    from pip._internal.cli.main import main as pip_main  # pylint: disable=import-outside-toplevel

    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
    return pip_main(['install', '--upgrade', '--force-reinstall'] + args)


if __name__ == '__main__':
    sys.exit(main())
