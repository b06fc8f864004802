"""Encrypted, content-addressed file storage under the data directory.

Layout (``$SECOPS_DATA_DIR``)::

    blobs/ab/<sha256>           stored files
    quarantine/ab/<sha256>      files with a malicious verdict (admin release or delete)
    dlp-text/<dlp scan id>      text submitted to DLP, removed once it is classified
    tmp/                        staging: uploads are written here, then renamed into place

The 256 ``ab/`` directories of each area are made when a store is opened, so storing a
file never creates a directory (on ext4 a new directory costs more than the file).
Stores in the older layout (``blobs/ab/cd/<sha256>``) are read as they are and
moved over by :meth:`BlobStore.migrate_layout`, which the API runs at start-up.

Every file is encrypted with AES-256-GCM: ``SOB2`` magic, a random 12-byte nonce per
file, the ciphertext, the 16-byte tag, then a 32-byte binding: HMAC-SHA256 over the
nonce, the tag and the plaintext's SHA-256, which ties the ciphertext to the name it is
stored under. The keys are derived with HKDF-SHA256 from the ``storage_key`` secret
(never stored or logged). Uploads are streamed: each chunk is hashed, counted against
the size limit and encrypted as it arrives; only a small file (up to the caller's
in-memory allowance) is held whole, as ciphertext, so that content already stored is
never written again. A staged file is moved into place with an atomic rename only once
it is complete and flushed to disk, so no reader ever sees half a file. Reading checks
the binding against the name (someone who can write the store but has no key cannot
put one stored file in another's place), then decrypts and checks the tag: the
plaintext is the one stored under that name without hashing it again. Files written
before the binding existed (``SOB1``: no binding) are read too, and their plaintext is
hashed and compared with the name.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, ParamSpec, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from secops.config import Settings
from secops.durable import fsync_directory
from secops.errors import InvalidInput, NotFound, PayloadTooLarge, SecOpsError, Unavailable

MAGIC = b"SOB2"
MAGIC_V1 = b"SOB1"  # no binding: read (with a hash check), never written
NONCE_BYTES = 12
TAG_BYTES = 16
BINDING_BYTES = 32
CHUNK = 1 << 20
SHA256_PATTERN = r"^[0-9a-f]{64}$"
SYNC_THREADS = 8
MAX_SPARES = 64  # staging files kept for reuse per store (see BlobStore._open_staging)
# Ciphertext of uploads held in memory before it is written (see StagedBlob): at most
# this much per file, and this much for all files being received by one process.
MEMORY_PER_FILE = 1 << 20
MEMORY_PER_STORE = 32 << 20
STALE_STAGING_SECONDS = 3600.0
AREAS = ("blobs", "quarantine")  # where stored files live (see the module's layout)
PREFIXES = tuple(f"{i:02x}" for i in range(256))
T = TypeVar("T")
P = ParamSpec("P")
log = logging.getLogger("secops.storage")


class CorruptBlob(SecOpsError):
    """A stored file failed authentication or no longer matches its name."""


def _writes(method: Callable[P, T]) -> Callable[P, T]:
    """A method that writes to the store: an ``OSError`` (disk full, quota, I/O error)
    becomes :class:`~secops.errors.Unavailable` (the server's failure, not the caller's),
    logged by error name, never by path."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except OSError as exc:
            log.error("upload could not be stored", extra={
                "error": type(exc).__name__, "errno": errno.errorcode.get(exc.errno or 0, "")})
            raise Unavailable("the file store cannot take the upload now") from None

    return wrapper


def derive_key(secret: str, purpose: bytes) -> bytes:
    """32 bytes for ``purpose`` from a configured secret (HKDF-SHA256)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"secops " + purpose).derive(secret.encode())


def storage_key(settings: Settings) -> bytes:
    return derive_key(settings.secret("storage_key").get_secret_value(), b"storage aes-gcm v1")


_HEX_DIGITS = frozenset("0123456789abcdef")


def valid_sha256(value: str) -> str:
    if len(value) != 64 or not _HEX_DIGITS.issuperset(value):
        raise InvalidInput("sha256 must be 64 lower-case hex digits")
    return value


@dataclass
class StagedBlob:
    """A file being received: hashed, size-checked and encrypted chunk by chunk.

    The ciphertext goes to a staging file, or, up to ``memory`` bytes, is first kept in
    memory: a small upload of content already stored then never touches the disk, and a
    new one is written when it is committed (:meth:`sync`). Past ``memory`` bytes it
    spills to a staging file and streams on from there.

    With ``defer``, nothing touches the disk while it is written to: ciphertext past the
    allowance waits in memory until :meth:`write_pending` (or :meth:`sync`) writes it,
    so a caller on an event loop can hash and encrypt in place and hand only the disk
    writes to a thread (``pending_write`` says when there are some).
    """

    filename: str
    limit: int
    _encryptor: CipherContext = field(repr=False)
    _nonce: bytes = field(repr=False)
    _bind_key: bytes = field(repr=False)  # a key: never in a repr, a log or a traceback
    _open: Callable[[], tuple[Path, BinaryIO]] = field(repr=False)  # a new staging file
    _release: Callable[[int], None] = field(repr=False)  # gives ``memory`` back to the store
    memory: int = 0
    defer: bool = False
    temp_path: Path | None = None
    _handle: BinaryIO | None = None
    _pieces: list[bytes] = field(default_factory=list, repr=False)  # ciphertext not written yet
    _held: int = 0
    _sha: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)
    size: int = 0
    sha256: str = ""
    finished: bool = False
    kept: bool = False  # a copy of content already stored, kept (see BlobStore.commit_all)

    def __post_init__(self) -> None:
        self._emit(MAGIC + self._nonce)

    @property
    def in_memory(self) -> bool:
        return self._handle is None

    def _emit(self, data: bytes) -> None:
        if self._handle is not None and not self.defer:
            self._handle.write(data)
            return
        self._pieces.append(data)
        self._held += len(data)
        if self._held > self.memory and not self.defer:
            self._write_out()

    @property
    def pending_write(self) -> bool:
        """Whether ciphertext is waiting to be written (past the allowance, or the file
        has spilled already)."""
        return bool(self._pieces) and (self._handle is not None or self._held > self.memory)

    @_writes
    def write_pending(self) -> None:
        """Write what ``pending_write`` says is waiting (for ``defer``: off the event loop)."""
        if self.pending_write:
            self._write_out()

    def _write_out(self) -> None:
        """The held ciphertext to the staging file, opened (and the allowance given back)
        if this is the first write."""
        if self._handle is None:
            self.temp_path, self._handle = self._open()
            self._give_back()
        self._handle.writelines(self._pieces)
        self._pieces, self._held = [], 0

    def _give_back(self) -> None:
        if self.memory:
            self._release(self.memory)
            self.memory = 0

    @_writes
    def write(self, chunk: bytes | memoryview) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise PayloadTooLarge(f"file {self.filename!r} is larger than {self.limit} bytes")
        self._sha.update(chunk)
        self._emit(self._encryptor.update(chunk))

    @_writes
    def finish(self) -> None:
        """Add the tag; the file is complete but still in staging, and not yet on disk
        for sure: :meth:`BlobStore.commit_all` (or :meth:`sync`) makes it durable."""
        final = self._encryptor.finalize()
        tag: bytes = self._encryptor.tag  # type: ignore[attr-defined]
        self.sha256 = self._sha.hexdigest()
        self._emit(final + tag + _binding(self._bind_key, self._nonce, tag, self.sha256))
        if self._handle is not None and not self.defer:
            self._handle.flush()
        self.finished = True

    @_writes
    def sync(self) -> None:
        """Write what is still in memory and flush it to disk. The file stays open (and
        locked, see :meth:`BlobStore.prune_staging`) until it is renamed into place."""
        if self._handle is None or self._pieces:
            self._write_out()
        assert self._handle is not None
        if not self._handle.closed:
            # The file object's buffer first: fsync only flushes what the kernel has.
            self._handle.flush()
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None and not self._handle.closed:
            self._handle.close()

    def discard(self) -> None:
        self.close()
        self._pieces, self._held = [], 0
        self._give_back()
        if self.temp_path is not None:
            self.temp_path.unlink(missing_ok=True)


class BlobStore:
    """Encrypted content-addressed files; one instance per process is enough."""

    def __init__(self, root: Path, key: bytes) -> None:
        self.root = root
        self._root = str(root)
        self._spares: list[Path] = []  # staging files of discarded duplicates, for reuse
        self._memory_free = MEMORY_PER_STORE  # see stage()
        self._memory_lock = threading.Lock()
        self._key = key
        self._bind_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                              info=b"secops storage name binding v1").derive(key)
        make_layout(root)

    def __repr__(self) -> str:  # never the key
        return f"BlobStore(root={str(self.root)!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> BlobStore:
        return cls(settings.data_dir.resolve(), storage_key(settings))

    def _path(self, area: str, sha256: str) -> str:
        # Plain strings: pathlib's parsing cost more than the rest of committing a file.
        return os.path.join(self._root, area, sha256[:2], sha256)

    def _legacy_path(self, area: str, sha256: str) -> str:
        """Where a store written before the flat layout keeps the file."""
        return os.path.join(self._root, area, sha256[:2], sha256[2:4], sha256)

    @_writes
    def stage(self, filename: str, limit: int, *, in_memory: bool = False,
              defer: bool = False) -> StagedBlob:
        """Start receiving a file into staging (``discard()`` it on any failure).

        With ``in_memory``, up to ``MEMORY_PER_FILE`` bytes of it are held in memory
        before a staging file is opened, while this store's allowance for all files
        being received (``MEMORY_PER_STORE``) lasts; the rest go straight to disk, or
        with ``defer`` wait for :meth:`StagedBlob.write_pending`.
        """
        memory = self._reserve(MEMORY_PER_FILE) if in_memory else 0
        nonce = secrets.token_bytes(NONCE_BYTES)
        encryptor = Cipher(algorithms.AES(self._key), modes.GCM(nonce)).encryptor()
        return StagedBlob(filename=filename, limit=limit, _encryptor=encryptor, _nonce=nonce,
                          _bind_key=self._bind_key, _open=self._open_staging,
                          _release=self._unreserve, memory=memory, defer=defer)

    def _reserve(self, wanted: int) -> int:
        with self._memory_lock:
            granted = min(wanted, self._memory_free)
            self._memory_free -= granted
            return granted

    def _unreserve(self, amount: int) -> None:
        with self._memory_lock:
            self._memory_free += amount

    def _open_staging(self) -> tuple[Path, BinaryIO]:
        """A staging file to write, locked (``flock``) for as long as this process has it
        open, so that :meth:`prune_staging` in another process leaves it alone. A spare
        when there is one (see :meth:`_recycle`), since creating and removing a file
        costs more on ext4 than reusing one."""
        fd = -1
        while fd < 0 and self._spares:
            try:
                temp = self._spares.pop()
            except IndexError:  # another thread took the last one
                break
            try:
                fd = _locked(os.open(temp, os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0)), temp)
            except OSError:
                fd = -1  # removed meanwhile (prune_staging): make a new one
        while fd < 0:
            temp = Path(os.path.join(self._root, "tmp", f"{secrets.token_hex(16)}.part"))
            fd = _locked(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), temp)
        os.ftruncate(fd, 0)
        return temp, os.fdopen(fd, "wb")

    def stage_bytes(self, data: bytes, filename: str) -> StagedBlob:
        staged = self.stage(filename, max(1, len(data)))
        try:
            for i in range(0, len(data), CHUNK):
                staged.write(data[i : i + CHUNK])
            staged.finish()
        except BaseException:
            staged.discard()
            raise
        return staged

    def commit(self, staged: StagedBlob, *, quarantined: bool = False) -> str:
        """Move a finished staged file into place, durably (see :meth:`commit_all`)."""
        return self.commit_all([staged], quarantined=quarantined)[0]

    @_writes
    def commit_all(self, staged: list[StagedBlob], *, quarantined: bool = False,
                   keep: bool = False) -> list[str]:
        """Move finished staged files into place: flushed to disk, then renamed
        atomically, then their directories flushed, so a file is durably in place before
        the caller commits a database row naming it. A content already stored (in either
        area) keeps its copy and the staged one is dropped, or with ``keep`` kept
        (``kept``) until :meth:`release`: the caller that commits rows naming the content
        puts it back with :meth:`restore` if it is removed meanwhile (see
        :mod:`secops.services.content`).

        The flushes of a request's files run concurrently: the filesystem journal then
        commits them together instead of one disk round trip per file.
        """
        if any(not blob.finished for blob in staged):
            raise ValueError("staged file is not finished")
        stored = {blob.sha256: self._existing(blob.sha256) for blob in staged}
        new: dict[str, StagedBlob] = {}
        for blob in staged:  # a content stored before, or twice in this request, is not kept
            if stored[blob.sha256] is None and blob.sha256 not in new:
                new[blob.sha256] = blob
        _concurrently(StagedBlob.sync, list(new.values()))
        placed: list[str] = []
        directories: set[str] = set()
        for blob in staged:
            if new.get(blob.sha256) is not blob:
                if keep:
                    blob.kept = True
                else:
                    self._recycle(blob)
                placed.append(stored[blob.sha256] or self._path(
                    "quarantine" if quarantined else "blobs", blob.sha256))
                continue
            target = self._path("quarantine" if quarantined else "blobs", blob.sha256)
            directories.update(self._make_parents(target))
            assert blob.temp_path is not None  # sync() wrote it
            os.replace(blob.temp_path, target)
            blob.close()  # renamed: its staging lock is no longer needed
            placed.append(target)
        _concurrently(fsync_directory, sorted(directories))
        return placed

    @_writes
    def restore(self, staged: list[StagedBlob]) -> list[str]:
        """Put back, from its kept copy (see :meth:`commit_all`), each content of
        ``staged`` that is no longer stored, durably as :meth:`commit_all` does; returns
        their SHA-256s. Only a stat per content when all are in place."""
        missing: dict[str, StagedBlob] = {}
        for blob in staged:
            if blob.kept and blob.sha256 not in missing and self._existing(blob.sha256) is None:
                missing[blob.sha256] = blob
        if not missing:
            return []
        _concurrently(StagedBlob.sync, list(missing.values()))
        directories: set[str] = set()
        for blob in missing.values():
            target = self._path("blobs", blob.sha256)
            directories.update(self._make_parents(target))
            assert blob.temp_path is not None  # sync() wrote it
            os.replace(blob.temp_path, target)
            blob.close()
            blob.kept = False  # in place now: nothing to release
        _concurrently(fsync_directory, sorted(directories))
        return list(missing)

    def release(self, staged: list[StagedBlob]) -> None:
        """Drop the copies :meth:`commit_all` kept (once the rows naming them are
        committed or rolled back); the staging files become spares."""
        for blob in staged:
            if blob.kept:
                blob.kept = False
                self._recycle(blob)

    def _existing(self, sha256: str, areas: tuple[str, ...] = AREAS) -> str | None:
        """The stored file's path in the first of ``areas`` that holds it, in either
        layout. The legacy path is looked at first: a file that :meth:`migrate_layout`
        moves between the two looks is then found at its new place."""
        for area in areas:
            for path in (self._legacy_path(area, sha256), self._path(area, sha256)):
                if os.path.isfile(path):
                    return path
        return None

    def _recycle(self, blob: StagedBlob) -> None:
        """Keep a staged copy of already stored content as a spare staging file."""
        if blob.temp_path is None or len(self._spares) >= MAX_SPARES:
            blob.discard()  # nothing was written (in memory), or spares enough
            return
        blob.close()
        self._spares.append(blob.temp_path)
        blob.temp_path = None  # a spare now: a later discard() must not remove it

    def _make_parents(self, target: str) -> list[str]:
        """The directories whose entries change when ``target`` is placed (and must be
        flushed for the rename to be durable); its ``ab/`` directory is made again if
        someone removed it."""
        parent = os.path.dirname(target)
        if os.path.isdir(parent):
            return [parent]
        os.makedirs(parent, mode=0o700, exist_ok=True)
        return [parent, os.path.dirname(parent)]

    def locate(self, sha256: str) -> Path | None:
        path = self._existing(valid_sha256(sha256))
        return Path(path) if path is not None else None

    def read(self, sha256: str) -> bytes:
        """Decrypt a stored file; CorruptBlob if it was tampered with, NotFound if absent."""
        path = self.locate(sha256)
        if path is None:
            raise NotFound("stored file not found")
        return self._decrypt(path, sha256)

    def _decrypt(self, path: Path, sha256: str | None = None) -> bytes:
        """The plaintext of a stored file; with ``sha256``, also proof that it is the
        content stored under that name (the binding, or for ``SOB1`` a hash)."""
        raw = path.read_bytes()
        head = len(MAGIC) + NONCE_BYTES
        trailer = TAG_BYTES + BINDING_BYTES if raw.startswith(MAGIC) else TAG_BYTES
        if len(raw) < head + trailer or not raw.startswith((MAGIC, MAGIC_V1)):
            raise CorruptBlob("stored file is not in the storage format")
        nonce = raw[len(MAGIC) : head]
        tag = raw[len(raw) - trailer : len(raw) - trailer + TAG_BYTES]
        bound = trailer > TAG_BYTES
        if bound and sha256 is not None and not hmac.compare_digest(
                raw[-BINDING_BYTES:], _binding(self._bind_key, nonce, tag, sha256)):
            raise CorruptBlob("stored file does not match its SHA-256")
        decryptor = Cipher(algorithms.AES(self._key), modes.GCM(nonce, tag)).decryptor()
        # A view, not a slice, and no concatenation with finalize()'s empty output: the
        # file is copied once, into the plaintext.
        plain = decryptor.update(memoryview(raw)[head : len(raw) - trailer])
        try:
            decryptor.finalize()
        except InvalidTag:
            raise CorruptBlob("stored file failed authentication") from None
        if not bound and sha256 is not None and hashlib.sha256(plain).hexdigest() != sha256:
            raise CorruptBlob("stored file does not match its SHA-256")
        return plain

    def move(self, sha256: str, *, to_quarantine: bool) -> None:
        """Move a stored file into or out of the quarantine area (atomic rename)."""
        source = self._existing(valid_sha256(sha256),
                                ("blobs",) if to_quarantine else ("quarantine",))
        target = self._path("quarantine" if to_quarantine else "blobs", sha256)
        if source is None:
            return  # already there (a redelivered job) or never stored
        directories = self._make_parents(target)
        os.replace(source, target)
        _concurrently(fsync_directory, [*directories, os.path.dirname(source)])

    def delete(self, sha256: str) -> bool:
        return bool(self.delete_many([sha256]))

    def delete_many(self, sha256s: Sequence[str]) -> list[str]:
        """Remove these contents (from either area and layout), then flush the emptied
        directories together; returns those that were stored. Only for a caller that
        holds the content lock and has seen no row naming them (see
        :mod:`secops.services.content`)."""
        found: list[str] = []
        directories: set[str] = set()
        for sha256 in sha256s:
            valid_sha256(sha256)
            while (path := self._existing(sha256)) is not None:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    continue  # moved to the flat layout meanwhile: look again
                directories.add(os.path.dirname(path))
                if not found or found[-1] != sha256:
                    found.append(sha256)
        _concurrently(fsync_directory, sorted(directories))
        return found

    def migrate_layout(self) -> int:
        """Move files of the earlier layout (``area/ab/cd/<sha256>``) to ``area/ab/<sha256>``
        and remove the emptied ``cd/`` directories; returns how many files moved.

        Each move is an atomic rename within one filesystem, and readers look in both
        places, so it is safe while workers read, and safe to repeat after a crash: a
        file already in the new place (the same content) only loses its old copy. A
        store without old directories costs 512 ``stat`` calls where a directory's link
        count shows its subdirectories (ext4, XFS), else a listing of each directory.
        """
        moved = 0
        for area in AREAS:
            for prefix in PREFIXES:
                top = os.path.join(self._root, area, prefix)
                try:
                    if os.stat(top).st_nlink == 2:
                        continue  # ext4, XFS: no subdirectory, no need to list the files
                    with os.scandir(top) as entries:
                        subdirs = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
                except FileNotFoundError:
                    continue
                for subdir in subdirs:
                    moved += self._migrate_directory(top, subdir)
        return moved

    def _migrate_directory(self, top: str, subdir: str) -> int:
        """Move the stored files of one old ``ab/cd/`` directory; anything else in it (a
        name that is not the SHA-256 of that directory, a link) stays where it is."""
        moved = 0
        belongs = os.path.basename(top) + os.path.basename(subdir)
        with os.scandir(subdir) as entries:
            names = [e.name for e in entries if e.is_file(follow_symlinks=False)
                     and e.name.startswith(belongs) and len(e.name) == 64
                     and _HEX_DIGITS.issuperset(e.name)]
        for name in names:
            target = os.path.join(top, name)
            try:
                if os.path.isfile(target):
                    os.unlink(os.path.join(subdir, name))  # the same content, already moved
                else:
                    os.replace(os.path.join(subdir, name), target)
                    moved += 1
            except FileNotFoundError:
                continue  # another process moved it meanwhile
        if names:
            fsync_directory(top)
        try:
            os.rmdir(subdir)
        except OSError:
            pass  # not empty (something else was put there) or already gone
        return moved

    # -- text submitted to DLP: kept only until it is classified ------------------------

    @_writes
    def put_text(self, name: str, text: str) -> None:
        staged = self.stage_bytes(text.encode("utf-8"), name)
        try:
            staged.sync()
            assert staged.temp_path is not None  # sync() writes it
            os.replace(staged.temp_path, self.root / "dlp-text" / name)
            staged.close()
        except BaseException:
            staged.discard()  # a full disk leaves no half-written staging file
            raise
        fsync_directory(self.root / "dlp-text")

    def read_text(self, name: str) -> str | None:
        path = self.root / "dlp-text" / name
        if not path.is_file():
            return None
        return self._decrypt(path).decode("utf-8")

    def drop_text(self, name: str) -> None:
        (self.root / "dlp-text" / name).unlink(missing_ok=True)

    def prune_staging(self, older_than: float = STALE_STAGING_SECONDS) -> int:
        """Remove staging files no process is writing: leftovers of a process that died
        mid-upload (its ``flock`` went with it), and spares. A file being received or
        committed is locked by the process that has it open, so another API process
        sharing the data directory never loses a live upload; files untouched for
        ``older_than`` seconds go whatever their lock. Run at API start-up; returns the
        count."""
        self._spares.clear()
        cutoff = time.time() - older_than
        removed = 0
        with os.scandir(os.path.join(self._root, "tmp")) as entries:
            for entry in entries:
                try:
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    if entry.stat(follow_symlinks=False).st_mtime <= cutoff:
                        os.unlink(entry.path)
                        removed += 1
                    elif _remove_unlocked(entry.path):
                        removed += 1
                except FileNotFoundError:
                    continue  # committed or removed meanwhile
        return removed


def _locked(fd: int, path: Path) -> int:
    """``fd`` with an exclusive ``flock``, or -1 (closed) if another process holds the
    file or :meth:`BlobStore.prune_staging` removed it before the lock was taken."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino == os.stat(path, follow_symlinks=False).st_ino:
            return fd
    except (BlockingIOError, FileNotFoundError):
        pass
    os.close(fd)
    return -1


def _remove_unlocked(path: str) -> bool:
    """Remove the staging file at ``path`` if no process holds it (see ``_locked``); the
    lock is held while it is removed, so a process reopening it as a spare sees it gone."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.unlink(path)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def make_layout(root: Path) -> None:
    """The store's directories (owner only), including each area's 256 ``ab/``
    directories; cheap when they exist."""
    for area in ("dlp-text", "tmp", *AREAS):
        (root / area).mkdir(parents=True, exist_ok=True, mode=0o700)
    for area in AREAS:
        base = os.path.join(root, area)
        if os.path.isdir(os.path.join(base, PREFIXES[-1])):
            continue  # made before (the last one is made last)
        for prefix in PREFIXES:
            os.makedirs(os.path.join(base, prefix), mode=0o700, exist_ok=True)


def _binding(key: bytes, nonce: bytes, tag: bytes, sha256: str) -> bytes:
    """What ties a stored ciphertext (by its nonce and tag) to its content's SHA-256."""
    return hmac.new(key, b"secops blob v2\0" + nonce + tag + sha256.encode(),
                    hashlib.sha256).digest()


_sync_pool: ThreadPoolExecutor | None = None
_sync_pool_lock = threading.Lock()


def _concurrently(fn: Callable[[T], object], items: Sequence[T]) -> None:
    """``fn`` over ``items`` on a small shared pool (fsync releases the GIL)."""
    global _sync_pool
    if len(items) <= 1:
        for item in items:
            fn(item)
        return
    with _sync_pool_lock:
        if _sync_pool is None:
            _sync_pool = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="fsync")
    for future in [_sync_pool.submit(fn, item) for item in items]:
        future.result()


_stores: dict[tuple[Path, bytes], BlobStore] = {}


def get_store(settings: Settings) -> BlobStore:
    root, key = settings.data_dir.resolve(), storage_key(settings)
    store = _stores.get((root, key))
    if store is None:
        store = _stores[(root, key)] = BlobStore(root, key)
    return store
