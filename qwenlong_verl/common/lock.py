"""An exclusive lock on a folder, so two ``qwenlong-verl`` processes never write the same run at once.

An ``flock`` on a lock file inside the folder: the kernel drops it when the holder dies (even by SIGKILL), so a
crashed run never leaves a stale lock. The holder writes its pid into the file, and a refused process names it.
A run's lock file stays (it holds no state). A ``transient`` lock (the one :func:`~qwenlong_verl.common.files.
atomic_folder` takes beside its output) removes its file on release; a taker then checks that the file it locked
is still the one at the path, since a file removed between its open and its lock protects nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from qwenlong_verl.common.errors import InputError, QwenLongError, RunFailed


class FolderLocked(RunFailed):
    """Another process holds the folder's lock; the message names the folder and its pid."""


class FolderLock:
    """``with FolderLock(folder, ".eval.lock", "qwenlong-verl eval"):`` -- fail at once when another holds it.

    ``error`` is the exception class raised when the lock is taken (a command's own :class:`QwenLongError`);
    ``transient``: remove the lock file on release, so nothing is left beside an output."""

    def __init__(
        self,
        folder: str | Path,
        lock_name: str,
        what: str,
        error: type[QwenLongError] = FolderLocked,
        transient: bool = False,
    ):
        self.folder = Path(folder)
        self.path = self.folder / lock_name
        self.what = what
        self.error = error
        self.transient = transient
        self.fd: int | None = None

    def holder(self) -> str:
        """The pid the holder wrote, or ``?`` (it may not have written it yet)."""
        try:
            text = self.path.read_text().strip()
        except OSError:
            return "?"
        return text if text.isdigit() else "?"

    def __enter__(self) -> FolderLock:
        import fcntl

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file where the folder goes, or above it
            raise InputError(f"cannot use {self.folder} as a folder ({exc.strerror}); name a folder") from None
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by children (PEP 446)
            except OSError as exc:  # no write permission, or a folder of the lock file's name
                raise InputError(
                    f"cannot create the lock file {self.path} ({exc.strerror}); fix the folder's permissions or "
                    "choose another folder"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise self.error(
                    f"another `{self.what}` is running on {self.folder} (pid {self.holder()} holds {self.path}); "
                    "wait for it to finish or stop it"
                ) from None
            if not self.transient or self._still_at_path(fd):
                break
            os.close(fd)  # its holder removed it on release: lock the file at the path now
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def _still_at_path(self, fd: int) -> bool:
        try:
            return os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:
            return False

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            if self.transient:
                try:
                    os.unlink(self.path)
                except OSError:
                    pass
            os.close(self.fd)
            self.fd = None
