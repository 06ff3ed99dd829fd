"""Key-encryption key rotation: what it re-wraps, what it destroys, and what a crash leaves.

Real ``keystore.db`` and ``kek.json`` files, real AES-GCM; a second ``KeyStore`` on the same
directory stands for another process (``serve`` beside ``logwarden purge``).
"""

from __future__ import annotations

import base64
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import logwarden.vault.keystore as keystore_module
from logwarden.errors import VaultError
from logwarden.vault import ADDRESS, TEXT, KeyStore, NewDataKey
from logwarden.vault.keys import KeyEncryptionKey
from tests.vault.conftest import (
    DAY,
    HOLD,
    HOLD_CLASS,
    KEYSTORE_FILES,
    OTHER,
    RAW_IP_CLASS,
    SESSION,
    SESSION_CLASS,
    T0,
    TODAY,
    TOMORROW,
    OpenKeyStore,
    bucket_rows,
    data_key_rows,
    files_holding,
    kek_file,
    open_data_key,
    run_in_threads,
    session_keys,
    sid,
    stale_rows,
    unwrap_bucket,
)


def traces(key: bytes) -> list[bytes]:
    """The forms a KEK could take on disk: raw, and base64 as kek.json holds it."""
    return [key, base64.b64encode(key)]


def copy_keystore_db(keys_dir: Path, into: Path, *, how: str) -> None:
    """Copy keystore.db as a backup would: through SQLite's backup API, or the files (db + WAL)."""
    into.mkdir(mode=0o700)
    if how == "backup":
        source = sqlite3.connect(f"file:{keys_dir / 'keystore.db'}?mode=ro", uri=True)
        target = sqlite3.connect(into / "keystore.db")
        source.backup(target)
        source.close()
        target.close()
    else:
        for name in ("keystore.db", "keystore.db-wal"):
            shutil.copyfile(keys_dir / name, into / name)
    for path in into.iterdir():
        path.chmod(0o600)


class TestKekRotation:
    def test_every_bucket_opens_under_the_new_kek(self, keystore: KeyStore, keys_dir: Path) -> None:
        """After rotation every bucket is wrapped by the new KEK alone, and every key opens."""
        keys = keystore.create_data_keys(
            session_keys(SESSION, OTHER) + session_keys(sid(1), day=DAY + 1)
        )
        raw_buckets = {b: unwrap_bucket(keys_dir, b) for b in bucket_rows(keys_dir)}
        old = keystore.current_kek()

        new = keystore.rotate_kek_at(T0 + 1000)

        assert new.id != old.id
        assert new.created_at == T0 + 1000
        assert kek_file(keys_dir) == {new.id: new.key}
        assert keystore.current_kek().id == new.id
        assert [k.id for k in keystore.key_encryption_keys()] == [new.id]
        assert {b.kek_id for b in keystore.buckets()} == {new.id}
        # Opened with plain AES-GCM under the new KEK: the same bucket keys as before.
        assert {b: unwrap_bucket(keys_dir, b) for b in bucket_rows(keys_dir)} == raw_buckets
        sessions = [SESSION, OTHER, sid(1)]
        assert [keystore.data_key(s, p) for s in sessions for p in (TEXT, ADDRESS)] == keys

    def test_old_kek_is_gone_from_disk(self, keystore: KeyStore, keys_dir: Path) -> None:
        """After rotation the old KEK, and bucket keys wrapped by it, are in no file."""
        keystore.create_data_keys(session_keys(SESSION, OTHER))
        old = keystore.current_kek()
        old_wrapped = [w for _, w in bucket_rows(keys_dir).values()]
        assert files_holding(keys_dir, base64.b64encode(old.key)) == ["kek.json"]

        keystore.rotate_kek_at(T0 + 1000)

        for needle in [*traces(old.key), *old_wrapped]:
            assert files_holding(keys_dir, needle) == [], needle.hex()
        assert {f.name for f in keys_dir.iterdir()} == KEYSTORE_FILES
        assert (keys_dir / "keystore.db-wal").stat().st_size == 0

    def test_rotations_repeat(self, keystore: KeyStore, keys_dir: Path) -> None:
        """Keys still open after many rotations, with buckets made between them."""
        made: dict[tuple[str, str], bytes] = {}
        for n in range(5):
            wanted = session_keys(sid(n), day=DAY + n)
            made.update(
                zip(
                    [(k.session_id, k.purpose) for k in wanted],
                    keystore.create_data_keys(wanted),
                    strict=True,
                )
            )
            keystore.rotate_kek_at(T0 + n)
        assert len(kek_file(keys_dir)) == 1
        assert all(keystore.data_key(*where) == key for where, key in made.items())

    def test_rotation_with_no_buckets(self, keystore: KeyStore, keys_dir: Path) -> None:
        """An empty keystore rotates too, and its next bucket is wrapped by the new KEK."""
        new = keystore.rotate_kek_at(T0 + 1)
        assert list(kek_file(keys_dir)) == [new.id]
        keystore.create_data_keys(session_keys(SESSION))
        assert {kek for kek, _ in bucket_rows(keys_dir).values()} == {new.id}

    @pytest.mark.parametrize("how", ["backup", "files"])
    def test_an_earlier_copy_is_useless_after_rotation(
        self,
        keystore: KeyStore,
        keys_dir: Path,
        tmp_path: Path,
        open_keystore: OpenKeyStore,
        how: str,
    ) -> None:
        """An earlier copy of keystore.db opens with the kek.json of its time, not today's."""
        keystore.create_data_keys(session_keys(SESSION, OTHER))
        with_old_keks, with_new_keks = tmp_path / "then", tmp_path / "now"
        copy_keystore_db(keys_dir, with_old_keks, how=how)
        copy_keystore_db(keys_dir, with_new_keks, how=how)
        shutil.copy2(keys_dir / "kek.json", with_old_keks / "kek.json")

        keystore.rotate_kek_at(T0 + 1000)
        shutil.copy2(keys_dir / "kek.json", with_new_keks / "kek.json")

        # With the keys of its time the copy opened: it is the rotation that makes it useless.
        then = open_keystore(with_old_keks)
        assert then.data_key(SESSION, TEXT) == keystore.data_key(SESSION, TEXT)
        now = open_keystore(with_new_keks)
        for session_id in (SESSION, OTHER):
            for purpose in (TEXT, ADDRESS):
                with pytest.raises(VaultError, match=r"not in kek\.json"):
                    now.data_key(session_id, purpose)
        # And not by any trick either: no key in today's kek.json opens any bucket of the copy.
        (new_kek,) = kek_file(keys_dir).values()
        for bucket, (kek_id, wrapped) in bucket_rows(with_new_keks).items():
            for named in (kek_id, keystore.current_kek().id):
                aad = (
                    b"\x01logwarden bucket key v1\x00" + bucket.encode() + b"\x00" + named.encode()
                )
                with pytest.raises(InvalidTag):
                    AESGCM(new_kek).decrypt(wrapped[1:13], wrapped[13:], aad)

    def test_another_instance_follows_a_rotation(
        self, keys_dir: Path, open_keystore: OpenKeyStore
    ) -> None:
        """A second keystore (another process) that knew only the old KEK keeps working and
        wraps its new buckets under the new KEK."""
        rotating, other = open_keystore(keys_dir), open_keystore(keys_dir)
        keys = rotating.create_data_keys(session_keys(SESSION))
        old = other.current_kek()
        assert other.data_key(SESSION, TEXT) == keys[0]

        new = rotating.rotate_kek_at(T0 + 1000)

        assert other.data_key(SESSION, TEXT) == keys[0]
        [later] = other.create_data_keys([NewDataKey(OTHER, TEXT, SESSION_CLASS, DAY + 1)])
        assert bucket_rows(keys_dir)[TOMORROW][0] == new.id != old.id
        assert rotating.data_key(OTHER, TEXT) == later
        assert other.current_kek().id == new.id

    def test_concurrent_rotations_keep_every_bucket_openable(
        self, keys_dir: Path, open_keystore: OpenKeyStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Two rotations at once (two purges) leave kek.json holding the KEK of every bucket.

        The first rotation is held just before it drops the old KEKs from kek.json, while the
        second tries to rotate: it must not be able to slip in between.
        """
        first, second = open_keystore(keys_dir), open_keystore(keys_dir)
        keys = first.create_data_keys(session_keys(SESSION))
        real_write_keks = keystore_module.write_keks
        writes: list[int] = []
        dropping = threading.Event()

        def write_keks(where: Path, keks: list[KeyEncryptionKey]) -> None:
            if threading.current_thread().name == "first":
                writes.append(len(keks))
                if len(writes) == 2:  # the old KEKs are about to leave kek.json
                    dropping.set()
                    held.wait(timeout=1)  # let the other rotation run now, if it can
            real_write_keks(where, keks)

        held = threading.Event()
        monkeypatch.setattr(keystore_module, "write_keks", write_keks)
        errors: list[BaseException] = []

        def rotate_first() -> None:
            try:
                first.rotate_kek_at(T0 + 1)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=rotate_first, name="first")
        thread.start()
        assert dropping.wait(timeout=10)
        second.rotate_kek_at(T0 + 2)
        held.set()
        thread.join(timeout=30)
        assert errors == []

        fresh = open_keystore(keys_dir)
        assert [fresh.data_key(SESSION, TEXT), fresh.data_key(SESSION, ADDRESS)] == keys
        assert {b.kek_id for b in fresh.buckets()} <= set(kek_file(keys_dir))

    def test_making_keys_while_another_keystore_rotates(
        self, keys_dir: Path, open_keystore: OpenKeyStore
    ) -> None:
        """Keys made through one keystore while another rotates its KEK all stay openable."""
        maker, rotator = open_keystore(keys_dir), open_keystore(keys_dir)
        made: dict[str, bytes] = {}

        def make() -> None:
            for n in range(200):
                [key] = maker.create_data_keys([NewDataKey(sid(n), TEXT, SESSION_CLASS, n)])
                made[sid(n)] = key

        def rotate() -> None:
            for n in range(20):
                rotator.rotate_kek_at(T0 + n)

        assert run_in_threads(make, rotate) == []
        fresh = open_keystore(keys_dir)
        assert {s: fresh.data_key(s, TEXT) for s in made} == made
        assert {b.kek_id for b in fresh.buckets()} == set(kek_file(keys_dir))


def attack(copy: Path, keys_dir: Path, session_id: str, purpose: str) -> bytes:
    """A data key as an earlier copy of keystore.db wraps it, opened with today's bucket key.

    Plain AES-GCM, as an attacker holding the copy and today's keys directory would do it: the
    bucket key is unwrapped from today's keystore.db under today's kek.json. Raises
    ``InvalidTag`` if it does not open.
    """
    where, wrapped = data_key_rows(copy)[session_id, purpose]
    return open_data_key(unwrap_bucket(keys_dir, where), wrapped, session_id, purpose, where)


class TestEarlierCopyAfterDestruction:
    """A data key destroyed while its bucket lives does not open from an earlier copy of
    keystore.db and today's keys directory once the bucket has been re-keyed.

    Rotation alone does not do it: it re-wraps the bucket key the copy's wrapping opens with.
    """

    def test_destroyed_data_key(
        self, keystore: KeyStore, keys_dir: Path, tmp_path: Path, open_keystore: OpenKeyStore
    ) -> None:
        """An erased session's keys open from an earlier copy until its buckets are re-keyed;
        the other keys of those buckets keep their raw bytes."""
        wanted = session_keys(SESSION, OTHER, sid(1))
        made = {
            (k.session_id, k.purpose): key
            for k, key in zip(wanted, keystore.create_data_keys(wanted), strict=True)
        }
        then = tmp_path / "then"
        copy_keystore_db(keys_dir, then, how="backup")
        old_buckets = {b: unwrap_bucket(keys_dir, b) for b in bucket_rows(keys_dir)}

        assert keystore.destroy_data_keys([SESSION]) == 2  # the erasure
        keystore.rotate_kek_at(T0 + 1000)  # the purge rotates too: that alone does not help

        # The defect: the copy's wrapping of a destroyed key opens with today's bucket key.
        assert keystore.data_key(SESSION, TEXT) is None
        for purpose in (TEXT, ADDRESS):
            assert attack(then, keys_dir, SESSION, purpose) == made[SESSION, purpose]
        assert keystore.stale_buckets() == sorted(old_buckets)

        assert keystore.rekey_stale() == 2

        for purpose in (TEXT, ADDRESS):
            with pytest.raises(InvalidTag):
                attack(then, keys_dir, SESSION, purpose)
        for bucket, old in old_buckets.items():
            assert unwrap_bucket(keys_dir, bucket) != old, bucket
        remaining = {where: key for where, key in made.items() if where[0] != SESSION}
        assert len(remaining) == 4
        assert {where: keystore.data_key(*where) for where in remaining} == remaining
        fresh = open_keystore(keys_dir)  # as after a restart, or another process
        assert {where: fresh.data_key(*where) for where in remaining} == remaining
        assert keystore.stale_buckets() == []

    def test_key_moved_out_of_the_hold_bucket(
        self, keystore: KeyStore, keys_dir: Path, tmp_path: Path, open_keystore: OpenKeyStore
    ) -> None:
        """A key that was once in the never-expiring hold bucket, released and then destroyed
        with its day, opens from an earlier copy until the hold bucket is re-keyed."""
        mine, _, other, _ = keystore.create_data_keys(session_keys(SESSION, OTHER))
        for session_id in (SESSION, OTHER):  # both held
            keystore.move_data_key(session_id, TEXT, cls=HOLD_CLASS, day=0)
        assert keystore.stale_buckets() == []  # a move into a longer bucket lets nothing go
        then = tmp_path / "then"
        copy_keystore_db(keys_dir, then, how="backup")
        old_hold = unwrap_bucket(keys_dir, HOLD)

        # Released: back to its day, which then expires, taking the key.
        keystore.move_data_key(SESSION, TEXT, cls=SESSION_CLASS, day=DAY, rekey_source=True)
        assert keystore.destroy_buckets([TODAY]).data_keys == 1
        keystore.rotate_kek_at(T0 + 1000)

        assert keystore.data_key(SESSION, TEXT) is None
        assert attack(then, keys_dir, SESSION, TEXT) == mine  # the defect: open forever
        assert keystore.stale_buckets() == [HOLD]

        assert keystore.rekey_stale() == 1

        with pytest.raises(InvalidTag):
            attack(then, keys_dir, SESSION, TEXT)
        assert unwrap_bucket(keys_dir, HOLD) != old_hold
        assert keystore.data_key(OTHER, TEXT) == other
        assert open_keystore(keys_dir).data_key(OTHER, TEXT) == other
        assert keystore.stale_buckets() == []


class SimulatedCrash(BaseException):
    """Stands for the process dying: nothing may catch it."""


CRASH_MIDWAY = """
import os, sys
from pathlib import Path
from logwarden.vault.keystore import KeyStore

keystore = KeyStore(Path(sys.argv[1]))
wrap = keystore._wrap_bucket
done = []

def wrap_then_die(*args):
    if done:  # one bucket re-wrapped (not committed), then the power goes
        os._exit(17)
    done.append(1)
    return wrap(*args)

keystore._wrap_bucket = wrap_then_die
keystore.rotate_kek_at(int(sys.argv[2]))
"""


class TestRotationCrash:
    """A rotation interrupted at any point leaves every key openable, and a later one completes."""

    @pytest.fixture
    def made(self, keystore: KeyStore) -> dict[tuple[str, str], bytes]:
        wanted = session_keys(SESSION, OTHER) + session_keys(sid(1), day=DAY + 1)
        keys = keystore.create_data_keys(wanted)
        return {(k.session_id, k.purpose): key for k, key in zip(wanted, keys, strict=True)}

    @staticmethod
    def assert_all_open(keys_dir: Path, made: dict[tuple[str, str], bytes]) -> None:
        fresh = KeyStore(keys_dir)  # as after a restart
        try:
            assert {where: fresh.data_key(*where) for where in made} == made
            assert {b.kek_id for b in fresh.buckets()} <= set(kek_file(keys_dir))
        finally:
            fresh.close()

    def test_crash_before_the_rewrap_commits(
        self,
        keystore: KeyStore,
        keys_dir: Path,
        made: dict[tuple[str, str], bytes],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A crash after the new KEK is written but before the re-wrap commits loses nothing."""
        old = keystore.current_kek()
        real_wrap = keystore._wrap_bucket
        calls: list[str] = []

        def wrap_then_crash(kek: KeyEncryptionKey, where: str, key: bytes) -> bytes:
            calls.append(where)
            if len(calls) == 2:
                raise SimulatedCrash
            return real_wrap(kek, where, key)

        monkeypatch.setattr(keystore, "_wrap_bucket", wrap_then_crash)
        with pytest.raises(SimulatedCrash):
            keystore.rotate_kek_at(T0 + 1)
        monkeypatch.undo()

        keks = kek_file(keys_dir)
        assert len(keks) == 2 and old.id in keks  # the new KEK was added first
        assert {kek for kek, _ in bucket_rows(keys_dir).values()} == {old.id}
        self.assert_all_open(keys_dir, made)
        assert keystore.data_key(SESSION, TEXT) == made[SESSION, TEXT]

        newest = keystore.rotate_kek_at(T0 + 2)
        assert list(kek_file(keys_dir)) == [newest.id]
        for key in keks.values():
            for needle in traces(key):
                assert files_holding(keys_dir, needle) == []
        self.assert_all_open(keys_dir, made)

    def test_process_dies_midway(
        self, keystore: KeyStore, keys_dir: Path, made: dict[tuple[str, str], bytes]
    ) -> None:
        """A process killed midway through re-wrapping (uncommitted) loses nothing."""
        old = keystore.current_kek()
        child = subprocess.run(
            [sys.executable, "-c", CRASH_MIDWAY, str(keys_dir), str(T0 + 1)],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert child.returncode == 17, child.stderr.decode()
        assert len(kek_file(keys_dir)) == 2
        assert {kek for kek, _ in bucket_rows(keys_dir).values()} == {old.id}
        self.assert_all_open(keys_dir, made)
        keystore.rotate_kek_at(T0 + 2)
        assert len(kek_file(keys_dir)) == 1
        self.assert_all_open(keys_dir, made)

    def test_crash_after_the_rewrap_commits(
        self,
        keystore: KeyStore,
        keys_dir: Path,
        made: dict[tuple[str, str], bytes],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A crash after the re-wrap commits, before the old KEK leaves kek.json, loses nothing;
        the next rotation removes both."""
        old = keystore.current_kek()
        real_write_keks = keystore_module.write_keks

        def write_keks(where: Path, keks: list[KeyEncryptionKey]) -> None:
            if len(keks) == 1:  # the write that drops the old KEK
                raise SimulatedCrash
            real_write_keks(where, keks)

        monkeypatch.setattr(keystore_module, "write_keks", write_keks)
        with pytest.raises(SimulatedCrash):
            keystore.rotate_kek_at(T0 + 1)
        monkeypatch.undo()

        keks = kek_file(keys_dir)
        [half] = [kek_id for kek_id in keks if kek_id != old.id]
        assert {kek for kek, _ in bucket_rows(keys_dir).values()} == {half}
        self.assert_all_open(keys_dir, made)

        newest = keystore.rotate_kek_at(T0 + 2)
        assert list(kek_file(keys_dir)) == [newest.id]
        for needle in [*traces(old.key), *traces(keks[half])]:
            assert files_holding(keys_dir, needle) == []
        self.assert_all_open(keys_dir, made)


class TestRekeyCrash:
    """A re-keying interrupted midway leaves every key openable, and a later one completes."""

    def test_crash_midway_through_a_bucket(
        self, keystore: KeyStore, keys_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A crash inside the second bucket's re-wrap keeps the first bucket re-keyed and the
        second wholly under its old key, still marked; the next rekey_stale finishes it."""
        wanted = session_keys(*(sid(n) for n in range(6)))
        made = {
            (k.session_id, k.purpose): key
            for k, key in zip(wanted, keystore.create_data_keys(wanted), strict=True)
        }
        keystore.destroy_data_keys([sid(0)])
        first, second = f"{RAW_IP_CLASS}:{DAY}", TODAY  # rekey_stale goes in id order
        assert keystore.stale_buckets() == [first, second]
        old_first, old_second = unwrap_bucket(keys_dir, first), unwrap_bucket(keys_dir, second)
        rows_before = data_key_rows(keys_dir)
        real_wrap = keystore._wrap_data_key
        calls: list[str] = []

        def wrap_then_crash(
            bucket_key: bytes, key: bytes, session_id: str, purpose: str, where: str
        ) -> bytes:
            calls.append(where)
            if calls.count(second) == 2:  # one key of the second bucket re-wrapped, then death
                raise SimulatedCrash
            return real_wrap(bucket_key, key, session_id, purpose, where)

        monkeypatch.setattr(keystore, "_wrap_data_key", wrap_then_crash)
        with pytest.raises(SimulatedCrash):
            keystore.rekey_stale()
        monkeypatch.undo()

        assert stale_rows(keys_dir) == [second]
        assert unwrap_bucket(keys_dir, first) != old_first
        assert unwrap_bucket(keys_dir, second) == old_second
        rows = data_key_rows(keys_dir)
        assert {k: v for k, v in rows.items() if v[0] == second} == {
            k: v for k, v in rows_before.items() if v[0] == second and k[0] != sid(0)
        }
        remaining = {where: key for where, key in made.items() if where[0] != sid(0)}
        fresh = KeyStore(keys_dir)  # as after a restart
        try:
            assert {where: fresh.data_key(*where) for where in remaining} == remaining
            assert fresh.rekey_stale() == 1
            assert {where: fresh.data_key(*where) for where in remaining} == remaining
        finally:
            fresh.close()
        assert unwrap_bucket(keys_dir, second) != old_second
        assert keystore.stale_buckets() == []
        assert {where: keystore.data_key(*where) for where in remaining} == remaining
