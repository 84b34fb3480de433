# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's secrets as files on the host, instead of values in its environment.

Each container the collection creates gets its own directory ``<secrets_dir>/<container
name>``, mode 0700, owned by the uid the container runs as, with one file per secret
(named after its variable, mode 0400, same owner). The directory is bind-mounted
read-only at ``/run/secrets``; the app reads ``<NAME>_FILE``. Nothing here returns or
logs a value.

Whether a container runs with the current values is told by a label holding an HMAC of
them, keyed with a random key kept root-only in ``secrets_dir``: the label changes with
any value, and ``docker inspect`` readers cannot test guesses against it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import stat

from ansible_collections.unitehub.platform.plugins.module_utils.docker_client import DockerModuleError
from ansible_collections.unitehub.platform.plugins.module_utils.fileio import atomic_write, fsync_dir

DIR_MODE = 0o700
FILE_MODE = 0o400
KEY_FILE = ".digest-key"
KEY_BYTES = 32


def container_secret_dir(secrets_dir, name):
    """The directory of container ``name``'s secret files."""
    return os.path.join(secrets_dir, name)


def _read_bytes(path):
    """The file's bytes, or None when it is missing or not a regular file (a symlink is never followed)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def _ensure_base(secrets_dir):
    """``secrets_dir`` as a real directory, created 0700 (root-only) when missing."""
    if os.path.islink(secrets_dir) or (os.path.exists(secrets_dir) and not os.path.isdir(secrets_dir)):
        raise DockerModuleError("secrets_dir %s is not a directory; give a directory for the containers' secret files"
                                % secrets_dir)
    if not os.path.isdir(secrets_dir):
        os.makedirs(secrets_dir, mode=DIR_MODE)


def digest_key(secrets_dir, create=True):
    """The host's key for the secrets label (bytes), created when missing unless ``create`` is
    false (check mode), then None."""
    path = os.path.join(secrets_dir, KEY_FILE)
    key = _read_bytes(path)
    if key and len(key) >= KEY_BYTES:
        return key
    if not create:
        return None
    _ensure_base(secrets_dir)
    key = os.urandom(KEY_BYTES)
    atomic_write(path, key, FILE_MODE, owner=0)
    return key


def secrets_digest(key, secrets):
    """The label value for ``secrets`` (name -> value); None without a key."""
    if key is None:
        return None
    message = b"".join(b"%s\0%s\0" % (name.encode("utf-8"), secrets[name].encode("utf-8")) for name in sorted(secrets))
    return "hmac-sha256:" + hmac.new(key, message, hashlib.sha256).hexdigest()


def _dir_needs_fix(path, uid):
    info = os.lstat(path)
    return stat.S_IMODE(info.st_mode) != DIR_MODE or info.st_uid != uid


def _file_is_current(path, value, uid):
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    return (stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == FILE_MODE and info.st_uid == uid
            and _read_bytes(path) == value)


def sync_secret_dir(secrets_dir, name, secrets, uid, check_mode=False):
    """Make ``<secrets_dir>/<name>`` hold exactly ``secrets`` (name -> value) as files 0400 owned by
    ``uid`` in a directory 0700 owned by ``uid``. Returns whether anything changed (or would)."""
    path = container_secret_dir(secrets_dir, name)
    if os.path.islink(path) or (os.path.exists(path) and not os.path.isdir(path)):
        raise DockerModuleError("%s is not a directory; remove it so the secret files of %s can go there" % (path, name))
    if uid != os.geteuid() and os.geteuid() != 0:
        raise DockerModuleError(
            "the secret files of %s must be owned by uid %s, the container's user, and only root can give them to "
            "another user; run with become: true" % (name, uid))
    exists = os.path.isdir(path)
    wanted = {key: value.encode("utf-8") for key, value in secrets.items()}
    present = set(os.listdir(path)) if exists else set()
    changed = (not exists or _dir_needs_fix(path, uid) or present != set(wanted)
               or any(not _file_is_current(os.path.join(path, key), value, uid) for key, value in wanted.items()))
    if not changed or check_mode:
        return changed
    if not exists:
        _ensure_base(secrets_dir)
        os.mkdir(path, DIR_MODE)
    os.chmod(path, DIR_MODE, follow_symlinks=False)
    os.chown(path, uid, -1, follow_symlinks=False)
    for extra in present - set(wanted):
        extra_path = os.path.join(path, extra)
        if os.path.isdir(extra_path) and not os.path.islink(extra_path):
            shutil.rmtree(extra_path)
        else:
            os.unlink(extra_path)
    for key, value in wanted.items():
        target = os.path.join(path, key)
        if not _file_is_current(target, value, uid):
            atomic_write(target, value, FILE_MODE, owner=uid)
    fsync_dir(path)
    return True


def remove_secret_dir(secrets_dir, name, check_mode=False):
    """Remove ``<secrets_dir>/<name>`` and its files; whether there was one."""
    path = container_secret_dir(secrets_dir, name)
    if not os.path.lexists(path):
        return False
    if not check_mode:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    return True
