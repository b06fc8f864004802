"""The encrypted, content-addressed store: round trips, tampering, durability paths."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from secops.errors import InvalidInput, NotFound
from secops.services import storage
from secops.services.storage import MAGIC, MAGIC_V1, BlobStore, CorruptBlob


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "data", secrets.token_bytes(32))


def _put(store: BlobStore, data: bytes, name: str = "f.bin") -> str:
    staged = store.stage_bytes(data, name)
    store.commit(staged)
    return staged.sha256


def _path(store: BlobStore, sha: str) -> Path:
    found = store.locate(sha)
    assert found is not None
    return found


def test_round_trip_is_encrypted_and_named_by_content(store):
    data = b"quarterly report\n" * 10_000
    sha = _put(store, data)
    assert sha == hashlib.sha256(data).hexdigest()
    raw = _path(store, sha).read_bytes()
    assert raw.startswith(MAGIC) and b"quarterly" not in raw
    assert store.read(sha) == data
    assert os.listdir(store.root / "tmp") == []


def test_a_flipped_bit_anywhere_is_refused(store):
    sha = _put(store, os.urandom(5000))
    path = _path(store, sha)
    original = path.read_bytes()
    for offset in (4, 20, len(original) // 2, len(original) - 40, len(original) - 1):
        tampered = bytearray(original)
        tampered[offset] ^= 0x80
        path.write_bytes(bytes(tampered))
        with pytest.raises(CorruptBlob):
            store.read(sha)
    path.write_bytes(original[:30])
    with pytest.raises(CorruptBlob, match="storage format"):
        store.read(sha)


def test_a_stored_file_put_in_anothers_place_is_refused(store):
    """Someone who can write the store but has no key swaps two valid files."""
    first, second = _put(store, b"invoice 1\n" * 100), _put(store, b"malware?\n" * 100)
    _path(store, first).write_bytes(_path(store, second).read_bytes())
    with pytest.raises(CorruptBlob, match="does not match its SHA-256"):
        store.read(first)
    assert store.read(second) == b"malware?\n" * 100


def test_another_key_cannot_read(store, tmp_path):
    sha = _put(store, b"secret plans")
    other = BlobStore(store.root, secrets.token_bytes(32))
    with pytest.raises(CorruptBlob):
        other.read(sha)


def test_files_in_the_first_format_are_still_read_and_hash_checked(store):
    data = b"written before the binding existed\n" * 50
    sha = hashlib.sha256(data).hexdigest()
    nonce = secrets.token_bytes(12)
    encryptor = Cipher(algorithms.AES(store._key), modes.GCM(nonce)).encryptor()
    body = encryptor.update(data) + encryptor.finalize()
    target = store.root / "blobs" / sha[:2] / sha
    target.write_bytes(MAGIC_V1 + nonce + body + encryptor.tag)
    assert store.read(sha) == data
    other = hashlib.sha256(b"x").hexdigest()  # a valid v1 file under another name
    (store.root / "blobs" / other[:2] / other).write_bytes(target.read_bytes())
    with pytest.raises(CorruptBlob, match="does not match"):
        store.read(other)


def test_identical_content_is_stored_once_and_missing_is_not_found(store):
    staged = [store.stage_bytes(b"same", "a"), store.stage_bytes(b"same", "b"),
              store.stage_bytes(b"other", "c")]
    placed = store.commit_all(staged)
    assert placed[0] == placed[1] != placed[2]
    assert sorted(p.name for p in (store.root / "blobs").rglob("*") if p.is_file()) == sorted(
        {hashlib.sha256(b"same").hexdigest(), hashlib.sha256(b"other").hexdigest()})
    # the duplicate's staging file is kept as a spare, and the next upload reuses it
    [spare] = os.listdir(store.root / "tmp")
    again = store.stage_bytes(b"new content, shorter", "d")
    assert again.temp_path.name == spare and again.temp_path.stat().st_size < 100
    assert store.commit(again).endswith(again.sha256)
    assert store.read(again.sha256) == b"new content, shorter"
    assert os.listdir(store.root / "tmp") == []
    store.commit_all([store.stage_bytes(b"same", "e")])  # a spare again...
    live = store.stage("g", 100)  # ...taken by an upload in progress
    old = store.root / "tmp" / "crashed.part"  # left by a process that died mid-upload
    old.write_bytes(b"x")
    os.utime(old, (0, 0))
    young = store.root / "tmp" / "killed.part"  # a process killed a moment ago: no lock
    young.write_bytes(b"y")
    assert store.prune_staging() == 2 and not old.exists() and not young.exists()
    assert live.temp_path.exists()
    assert store.prune_staging(older_than=-1) == 1  # with no age limit, even that one
    live.discard()
    fresh = store.stage_bytes(b"after a restart", "f")  # no pruned spare is used
    assert fresh.temp_path.exists()
    with pytest.raises(NotFound):
        store.read(hashlib.sha256(b"never stored").hexdigest())


def test_unfinished_staging_is_never_committed_and_discard_leaves_nothing(store):
    staged = store.stage("x", 100)
    staged.write(b"half")
    with pytest.raises(ValueError):
        store.commit_all([staged])
    staged.discard()
    assert os.listdir(store.root / "tmp") == []
    assert not any(p.is_file() for p in (store.root / "blobs").rglob("*"))


def test_dlp_text_round_trip(store):
    store.put_text("scan-1", "card 4111 1111 1111 1111")
    raw = (store.root / "dlp-text" / "scan-1").read_bytes()
    assert b"4111" not in raw
    assert store.read_text("scan-1") == "card 4111 1111 1111 1111"
    store.drop_text("scan-1")
    assert store.read_text("scan-1") is None


def _receive(store: BlobStore, data: bytes, name: str, piece: int = 64 * 1024):
    staged = store.stage(name, 1 << 30, in_memory=True)
    for i in range(0, len(data), piece):
        staged.write(data[i : i + piece])
    staged.finish()
    return staged


def test_small_uploads_wait_in_memory_and_stored_content_is_never_written_again(store):
    tmp = store.root / "tmp"
    first = _receive(store, b"attachment" * 1000, "a.txt")
    assert first.in_memory and os.listdir(tmp) == []
    store.commit_all([first])  # new content: written, flushed and renamed at commit
    assert store.read(first.sha256) == b"attachment" * 1000
    stored = _path(store, first.sha256)
    before = stored.stat().st_mtime_ns, stored.read_bytes()
    again = _receive(store, b"attachment" * 1000, "b.txt")
    assert store.commit_all([again]) == [str(stored)]
    assert (stored.stat().st_mtime_ns, stored.read_bytes()) == before
    assert os.listdir(tmp) == [] and store._spares == []  # nothing was written for it
    assert store._memory_free == storage.MEMORY_PER_STORE  # every allowance came back


def test_a_large_upload_spills_to_disk_and_the_allowance_is_shared(store, monkeypatch):
    monkeypatch.setattr(storage, "MEMORY_PER_FILE", 4096)
    store._memory_free = 6000  # room for one file's allowance, and part of another
    big = os.urandom(50_000)
    first = store.stage("big.bin", 1 << 20, in_memory=True)
    second = store.stage("second.bin", 1 << 20, in_memory=True)
    third = store.stage("third.bin", 1 << 20, in_memory=True)
    assert (first.memory, second.memory, third.memory) == (4096, 6000 - 4096, 0)
    assert not third.in_memory and third.temp_path is not None  # straight to disk
    first.write(big[:3000])
    assert first.in_memory
    first.write(big[3000:])  # past its allowance: now a staging file, given back
    assert not first.in_memory and first.temp_path is not None and first.temp_path.exists()
    assert store._memory_free == 4096
    first.finish()
    second.discard()
    third.discard()
    assert store._memory_free == 6000
    store.commit_all([first])
    assert store.read(first.sha256) == big
    assert os.listdir(store.root / "tmp") == []


def test_discarding_an_upload_held_in_memory_leaves_nothing(store):
    staged = store.stage("x", 100, in_memory=True)
    staged.write(b"half")
    with pytest.raises(ValueError):
        store.commit_all([staged])
    staged.discard()
    assert os.listdir(store.root / "tmp") == [] and store._memory_free == storage.MEMORY_PER_STORE


def test_sha256_names_are_exactly_64_lower_case_hex_digits():
    good = hashlib.sha256(b"x").hexdigest()
    assert storage.valid_sha256(good) == good
    for bad in (good.upper(), good[:-1], good + "0", "g" * 64, "\u0660" * 64, "../" + good[3:]):
        with pytest.raises(InvalidInput):
            storage.valid_sha256(bad)


def _to_legacy(store: BlobStore, sha: str, area: str = "blobs") -> Path:
    """Move a stored file to where the layout before the flat one kept it."""
    legacy = store.root / area / sha[:2] / sha[2:4] / sha
    legacy.parent.mkdir(mode=0o700)
    (store.root / area / sha[:2] / sha).rename(legacy)
    return legacy


def test_the_layout_is_flat_and_made_when_the_store_opens(store):
    for area in ("blobs", "quarantine"):
        prefixes = sorted(p.name for p in (store.root / area).iterdir())
        assert prefixes == [f"{i:02x}" for i in range(256)]
    sha = _put(store, b"flat\n" * 100)
    assert _path(store, sha) == store.root / "blobs" / sha[:2] / sha
    assert [p for p in (store.root / "blobs" / sha[:2]).iterdir() if p.is_dir()] == []


def test_files_of_the_earlier_layout_are_read_moved_and_deleted(store):
    kept, quarantined, gone = (_put(store, f"legacy {i}\n".encode() * 50) for i in range(3))
    store.move(quarantined, to_quarantine=True)
    legacy = [_to_legacy(store, kept), _to_legacy(store, quarantined, "quarantine"),
              _to_legacy(store, gone)]
    # read where it is, released from the old quarantine path, deleted there
    assert store.read(kept) == b"legacy 0\n" * 50
    store.move(quarantined, to_quarantine=False)
    assert _path(store, quarantined) == store.root / "blobs" / quarantined[:2] / quarantined
    assert store.delete(gone) and store.locate(gone) is None and not legacy[2].exists()
    # a re-upload of content stored the old way is not stored twice
    staged = store.stage_bytes(b"legacy 0\n" * 50, "again")
    assert store.commit(staged) == str(legacy[0])
    assert store.migrate_layout() == 1
    assert _path(store, kept) == store.root / "blobs" / kept[:2] / kept
    assert store.read(kept) == b"legacy 0\n" * 50
    assert not legacy[0].parent.exists()  # the emptied cd/ directory is removed
    assert store.migrate_layout() == 0


def test_migration_moves_only_stored_files_that_belong_where_they_are(store):
    sha = _put(store, b"mine\n" * 10)
    legacy = _to_legacy(store, sha)
    other = hashlib.sha256(b"elsewhere").hexdigest()
    strays = [legacy.parent / "notes.txt", legacy.parent / other]
    for stray in strays:
        stray.write_bytes(b"not ours")
    (legacy.parent / ("0" * 64)).symlink_to(legacy)
    assert store.migrate_layout() == 1
    assert store.read(sha) == b"mine\n" * 10
    assert all(stray.read_bytes() == b"not ours" for stray in strays)
    assert sorted(p.name for p in (store.root / "blobs" / sha[:2]).iterdir()) == sorted(
        [sha, legacy.parent.name])  # the strays' directory stays


def test_migration_keeps_the_new_copy_when_both_exist(store):
    sha = _put(store, b"twice\n" * 10)
    legacy = _to_legacy(store, sha)
    (store.root / "blobs" / sha[:2] / sha).write_bytes(legacy.read_bytes())  # moved, crashed
    assert store.migrate_layout() == 0
    assert not legacy.exists() and store.read(sha) == b"twice\n" * 10


def test_every_byte_is_in_the_file_when_it_is_flushed_to_disk(store, monkeypatch):
    """The tag and binding (the last, small write) sit in the file object's buffer
    unless it is flushed before fsync; a crash after the rename would then leave a file
    that fails authentication."""
    seen: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if os.path.isfile(f"/proc/self/fd/{fd}"):
            seen.append(os.fstat(fd).st_size)
        real_fsync(fd)

    monkeypatch.setattr(storage.os, "fsync", fsync)
    for staged in (_receive(store, b"small, held in memory", "a.txt"),
                   _receive(store, os.urandom(3 * storage.MEMORY_PER_FILE), "b.bin")):
        sizes_before = len(seen)
        store.commit_all([staged])
        path = _path(store, staged.sha256)
        assert seen[sizes_before:] == [path.stat().st_size]
        assert store.read(staged.sha256)


def test_deferred_staging_writes_nothing_until_asked(store, monkeypatch):
    monkeypatch.setattr(storage, "MEMORY_PER_FILE", 4096)
    store._memory_free = 4096  # one allowance: the second file has none
    data = os.urandom(20_000)
    first = store.stage("first.bin", 1 << 20, in_memory=True, defer=True)
    second = store.stage("second.bin", 1 << 20, in_memory=True, defer=True)
    assert (first.memory, second.memory) == (4096, 0)
    assert second.pending_write and not first.pending_write  # nothing may stay in memory
    first.write(data[:3000])
    assert not first.pending_write
    first.write(data[3000:])  # past the allowance, and still nothing on disk
    assert first.pending_write and os.listdir(store.root / "tmp") == []
    first.write_pending()  # a staging file now, the allowance given back
    assert not first.in_memory and not first.pending_write and store._memory_free == 4096
    on_disk = first.temp_path.stat().st_size
    first.finish()  # the tag waits too
    assert first.pending_write and first.temp_path.stat().st_size == on_disk
    second.write(b"x" * 10)
    second.finish()
    second.write_pending()
    assert second.temp_path is not None and not second.pending_write
    store.commit_all([first, second])
    assert store.read(first.sha256) == data and store.read(second.sha256) == b"x" * 10
    assert os.listdir(store.root / "tmp") == []


def test_a_deferred_staged_file_that_fails_to_write_is_unavailable_and_leaves_nothing(store):
    staged = store.stage("x.bin", 1 << 20, defer=True)  # no allowance: everything waits
    staged.write(b"data")
    tmp = store.root / "tmp"
    tmp.rmdir()
    tmp.write_bytes(b"")  # the staging file cannot be made (even by root)
    try:
        with pytest.raises(storage.Unavailable):
            staged.write_pending()
    finally:
        staged.discard()
        tmp.unlink()
        tmp.mkdir()
    assert staged.temp_path is None and store._memory_free == storage.MEMORY_PER_STORE
