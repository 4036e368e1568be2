"""A run's files on disk: atomic writes, output checks before any work, an exclusive lock on an
output, and the clean-up of temporaries that a killed process left behind.

* :func:`atomic_path` writes to a temporary file beside the target, flushes it to disk (fsync),
  renames it onto the target and fsyncs the folder: after a crash or a power loss the target is
  either the old file or the complete new one, never empty or half written.
* :func:`check_writable` says, before a run starts, whether a file could be written there (the
  path is not a folder, its folder exists or can be created, and files can be created in it).
* :class:`OutputLock` is an exclusive ``flock`` on ``<out>.lock``: a second run on the same
  output fails at once. The operating system releases the lock when its process ends, however it
  ends (``kill -9`` included), so a lock file left behind is never mistaken for a live run.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_SUFFIX = ".tmp"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (not ours, damaged, or of another configuration)."""


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}."


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform without directory file descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[str]:
    """Yield a temporary file name beside ``path``; on success it is flushed to disk and renamed
    onto ``path``.

    An interruption, an error or a crash while writing never leaves a half-written or empty
    ``path``: either the old file or the complete new one is there.
    """
    path = Path(path)
    if path.is_symlink():  # a link names where the file goes: write its target, keep the link
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_tmp_prefix(path), suffix=TMP_SUFFIX)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the data is on disk before the name points at it
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(path.parent)  # and the rename too
    except Exception as e:
        if isinstance(e, OSError) or not _write_failure(e):
            raise
        # torch's and safetensors' writers report a full disk in their own words (an "enforce fail at
        # inline_container.cc", a SafetensorError): as an OSError it is one error line, like any other
        full = shutil.disk_usage(path.parent).free < FULL_DISK_BYTES
        err = OSError(f"cannot write {path}: {'no space left on the device' if full else 'the write failed'} "
                      f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); the previous file is kept")
        err.errno = errno.ENOSPC if full else errno.EIO
        raise err from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


#: free bytes below which a failed write is reported as a full disk
FULL_DISK_BYTES = 1 << 20


def _write_failure(e: BaseException) -> bool:
    """Whether ``e`` is a file writer's report of a failed write (not a bug in what was being written)."""
    text = str(e)
    return ("inline_container" in text or "PytorchStreamWriter" in text or "file write failed" in text
            or (type(e).__name__ == "SafetensorError" and ("IoError" in text or "I/O error" in text)))


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete the temporaries of :func:`atomic_path` for ``path`` (and for files named
    ``path.*``, e.g. its checkpoint and log) that a killed process left behind. Call it only
    while holding the :class:`OutputLock` of ``path``: no other writer can then own them."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    removed = []
    for p in path.parent.glob(f"{_tmp_prefix(path)}*{TMP_SUFFIX}"):
        if p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def not_a_file(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as a file (None: it can): missing, a folder, or not a regular file
    (a FIFO would block the reader, a device or socket is not a file of ours)."""
    path = Path(path)
    if path.is_dir():
        return f"{path}: a folder, not a file"
    if path.exists() and not path.is_file():
        return f"{path}: not a regular file (a FIFO, device or socket)"
    if not path.exists():
        return f"{path}: no such file"
    return None


def check_writable(path: str | Path) -> None:
    """Raise ``ValueError`` (one line) unless a file could be written at ``path``, before any work
    is done: it is not a folder, and its nearest existing folder allows creating files (probed by
    creating and removing a temporary file, which also covers read-only file systems and root)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a file name")
    if path.exists() and not path.is_file():
        raise ValueError(f"{path} exists and is not a regular file")
    folder = path.parent
    while not folder.exists():
        if folder == folder.parent:
            break
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"cannot write {path}: {folder} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe.", suffix=TMP_SUFFIX)
    except OSError as e:
        raise ValueError(f"cannot write {path}: {folder} does not allow creating files ({e.strerror})") from None
    os.close(fd)
    os.unlink(probe)
    if path.exists() and not os.access(path, os.W_OK) and os.geteuid() != 0:
        raise ValueError(f"cannot write {path}: the file is read-only")


class LockError(ValueError):
    """Another live process holds the lock on an output."""


def lock_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".lock")


class OutputLock:
    """An exclusive lock on ``path`` held by this process (``with OutputLock(out): ...``).

    The lock is a ``flock`` on ``<path>.lock`` (created if needed, the owner's pid written into it,
    deleted on release). Taking a lock that a live process holds raises :class:`LockError` at once.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.file = lock_path(self.path)
        self._fd: int | None = None

    def acquire(self) -> "OutputLock":
        import fcntl

        self.file.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(10):  # the file may be deleted by its releasing owner between open and flock
            fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                raise self._busy() from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.file).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self._fd = fd
                return self
            os.close(fd)  # we locked a file its owner had just deleted: try the new one
        raise LockError(f"could not take the lock {self.file}")

    def check_free(self) -> None:
        """Raise :class:`LockError` if a live process holds the lock; creates nothing."""
        import fcntl

        try:
            fd = os.open(self.file, os.O_RDWR)
        except OSError:
            return  # no lock file (or not openable: acquire() will say so)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise self._busy() from None
        finally:
            os.close(fd)  # closing releases a lock taken here

    def _busy(self) -> LockError:
        try:
            pid = self.file.read_text().strip()
        except OSError:
            pid = ""
        owner = f" (pid {pid})" if pid.isdigit() else ""
        return LockError(f"{self.path} is being written by another run{owner} (lock {self.file}): wait for it to "
                         f"finish or choose another output")

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.file.unlink(missing_ok=True)  # while still holding it: a waiting process re-checks the inode
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
