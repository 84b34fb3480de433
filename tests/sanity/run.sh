#!/usr/bin/env bash
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# `ansible-test sanity` for unitehub.platform: no Docker, no internet, only PyPI.
#
#   tests/sanity/run.sh                      every sanity test, Python 3.11
#   tests/sanity/run.sh --test pep8          extra arguments go to ansible-test
#   SANITY_KEEP=1 tests/sanity/run.sh        keep the temporary tree for inspection
#
# ansible-test only tests a collection that sits in
# .../ansible_collections/<namespace>/<name>/, so the script copies the files git
# knows about (tracked, plus new files not ignored; never .venv, .git or the
# collections/ symlink) into such a tree under $TMPDIR and runs there.
#
# Offline: ansible-test builds one virtual environment per sanity test, created
# without pip, and bootstraps pip with a get-pip.py it downloads from
# ci-files.testing.ansible.com. That host is out of reach here, so the script
# saves tests/sanity/get_pip_offline.py at the cache path ansible-test reads
# first (its own error message names that path for manual downloads). Every
# other package (pylint, pycodestyle, voluptuous, yamllint, antsibull-docs-parser,
# ...) comes from PyPI at the exact pins of ansible-test's requirement files.
# Those environments, and that cache, live under a HOME of their own
# (.cache/ansible-test/home in the checkout, gitignored), never the user's
# ~/.ansible; they are reused by the next run.
#
# No test is skipped by this script; it refuses to run when shellcheck is missing
# rather than let ansible-test skip that test with a mere warning.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${VENV:-$repo/.venv}"
python_version="${SANITY_PYTHON:-3.11}"
state_dir="${SANITY_STATE_DIR:-$repo/.cache/ansible-test}"
ansible_test="$venv/bin/ansible-test"

namespace="$(sed -n 's/^namespace:[[:space:]]*//p' "$repo/galaxy.yml")"
name="$(sed -n 's/^name:[[:space:]]*//p' "$repo/galaxy.yml")"

if [[ ! -x "$ansible_test" ]]; then
    echo "run.sh: $ansible_test is missing: run 'make venv' first" >&2
    exit 2
fi
# ansible-test only warns and skips its shellcheck test without the program.
if ! command -v shellcheck >/dev/null 2>&1; then
    echo "run.sh: shellcheck is missing, so the shellcheck sanity test would be skipped:" \
        "apt-get install shellcheck (Debian), or pass --skip-test shellcheck knowingly" >&2
    if [[ " $* " != *" --skip-test shellcheck "* ]]; then
        exit 2
    fi
fi
if ! git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    echo "run.sh: $repo is not a git checkout: the file list comes from 'git ls-files'" >&2
    exit 2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/${namespace}-${name}-sanity.XXXXXX")"
cleanup() {
    if [[ -n "${SANITY_KEEP:-}" ]]; then
        echo "run.sh: tree kept at $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

tree="$work/ansible_collections/$namespace/$name"
mkdir -p "$tree"

# Tracked files plus untracked files that .gitignore does not exclude; a file
# deleted in the work tree but still in the index is left out, and so is the
# collections/ symlink that makes FQCNs resolve from a checkout.
(
    cd "$repo"
    git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' path; do
            case "$path" in
                collections/* | .venv/* | .git/* | .cache/* | tests/output/*) continue ;;
            esac
            if [[ -e "$path" || -L "$path" ]]; then
                printf '%s\0' "$path"
            fi
        done \
        | sort -z -u \
        | tar --null -T - -cf -
) | tar -C "$tree" -xf -

# The pip bootstrap that ansible-test would otherwise download.
pip_version="$("$venv/bin/python" -c '
from ansible_test._internal.python_requirements import get_venv_packages


class Python:
    version = "'"$python_version"'"


print(get_venv_packages(Python())["pip"])
')"
export HOME="$state_dir/home"
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
install -m 0644 "$repo/tests/sanity/get_pip_offline.py" "$cache/get_pip_${pip_version//./_}.py"

# pip's configuration (index, certificates) keeps coming from the user's files.
export XDG_CONFIG_HOME="${XDG_CONFIG_HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)/.config}"
# The checkout's ansible.cfg would point collections_path back at the checkout.
unset ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS

cd "$tree"
set -x
"$ansible_test" sanity --python "$python_version" --color no "$@"
