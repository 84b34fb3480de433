# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Crash-safe file replacement and file locks, shared by every module that owns a file."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile


def read_text(path):
    """Return the file's text, or None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def atomic_write(path, content, mode=0o644, owner=None):
    """Replace ``path`` with ``content`` (text or bytes) so that readers see the old or the new
    file, never a torn one: temp file in the same directory, fsync, rename,
    fsync of the directory so the rename survives a power cut. ``owner`` gives the file to
    that uid. The temp file is private (0600, a fresh name) until it is complete."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        binary = isinstance(content, bytes)
        with os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), mode)
            if owner is not None:
                os.fchown(handle.fileno(), owner, -1)
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise
    fsync_dir(directory)


def fsync_dir(directory):
    """Make a rename or unlink in ``directory`` survive a power cut."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_files(paths, check_mode=False):
    """Remove those of ``paths`` that exist (none in check mode); return them, in order."""
    present = [path for path in paths if os.path.lexists(path)]
    if not check_mode:
        for path in present:
            os.unlink(path)
    return present


def restore_file(path, previous, mode=0o644):
    """Put back what ``path`` held: ``previous`` text, or no file when it is None."""
    if previous is None:
        if os.path.exists(path):
            os.unlink(path)
    else:
        atomic_write(path, previous, mode)


@contextlib.contextmanager
def flocked(path, flags=os.O_RDONLY):
    """Hold an exclusive flock on ``path`` (a file or a directory) for the block. The kernel
    drops it when the process dies, so a crashed holder never leaves it held."""
    fd = os.open(path, flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
