"""The secret files of a container on the host, and the keyed digest of their values."""

from __future__ import annotations

import os
import stat

from ansible_collections.unitehub.platform.plugins.module_utils.secret_files import (
    digest_key,
    remove_secret_dir,
    secrets_digest,
    sync_secret_dir,
)

# As root the files go to a non-root uid, as for a container; otherwise to the tests' own uid.
UID = os.geteuid() or 10001


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_the_key_is_made_once_root_only_and_not_in_check_mode(tmp_path):
    base = tmp_path / "secrets"
    assert digest_key(str(base), create=False) is None and not base.exists()
    key = digest_key(str(base))
    assert len(key) == 32 and mode(base / ".digest-key") == 0o400 and mode(base) == 0o700
    assert digest_key(str(base)) == key and digest_key(str(base), create=False) == key


def test_the_digest_follows_every_name_and_value_and_the_key():
    key, other = b"k" * 32, b"o" * 32
    digest = secrets_digest(key, {"A": "1", "B": "2"})
    assert digest.startswith("hmac-sha256:") and digest == secrets_digest(key, {"B": "2", "A": "1"})
    assert len({digest, secrets_digest(key, {"A": "1", "B": "3"}), secrets_digest(key, {"A": "1"}),
                secrets_digest(key, {"A": "1", "C": "2"}), secrets_digest(other, {"A": "1", "B": "2"})}) == 5
    # The separator keeps a name and a value from sliding into each other.
    assert secrets_digest(key, {"AB": "C"}) != secrets_digest(key, {"A": "BC"})
    assert secrets_digest(None, {"A": "1"}) is None


def test_sync_writes_replaces_and_removes_files_and_says_whether_it_did(tmp_path):
    base = str(tmp_path / "secrets")
    assert sync_secret_dir(base, "app-blue", {"A": "one", "B": "two\n"}, UID) is True
    directory = tmp_path / "secrets" / "app-blue"
    assert {p.name: p.read_text() for p in directory.iterdir()} == {"A": "one", "B": "two\n"}
    assert mode(directory) == 0o700 and mode(directory / "A") == 0o400
    assert sync_secret_dir(base, "app-blue", {"A": "one", "B": "two\n"}, UID) is False
    assert sync_secret_dir(base, "app-blue", {"A": "uno"}, UID, check_mode=True) is True
    assert (directory / "B").exists() and (directory / "A").read_text() == "one"
    assert sync_secret_dir(base, "app-blue", {"A": "uno"}, UID) is True
    assert [p.name for p in directory.iterdir()] == ["A"] and (directory / "A").read_text() == "uno"
    assert remove_secret_dir(base, "app-blue", check_mode=True) is True and directory.exists()
    assert remove_secret_dir(base, "app-blue") is True and not directory.exists()
    assert remove_secret_dir(base, "app-blue") is False


def test_a_symlink_in_place_of_a_secret_file_is_replaced_not_followed(tmp_path):
    base = tmp_path / "secrets"
    sync_secret_dir(str(base), "app-blue", {"A": "one"}, UID)
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    (base / "app-blue" / "A").unlink()
    (base / "app-blue" / "A").symlink_to(victim)
    assert sync_secret_dir(str(base), "app-blue", {"A": "one"}, UID) is True
    assert victim.read_text() == "untouched"
    assert not (base / "app-blue" / "A").is_symlink() and (base / "app-blue" / "A").read_text() == "one"
