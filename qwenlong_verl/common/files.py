"""The one way this package writes files: whole or not at all.

Every writer goes through here. A file is written to a temporary name in its own folder, flushed to disk and
renamed over the target, so a reader (or a rerun after ``kill -9``) sees the old file or the new one, never a
prefix. A multi-file output is written into a temporary sibling folder and swapped in as a whole. A writer
never overwrites one of its own inputs (:func:`refuse_overwriting`). Hand-written because no well-kept library
offers the folder swap and the input check together; ``os.replace`` and ``fsync`` are all it needs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from qwenlong_verl.common.errors import InputError

PARTIAL = ".partial"
"""Suffix of a folder being written; a leftover one (a killed writer) is removed by the next writer."""


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename in ``path`` durable (best effort: some file systems cannot sync a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(
    path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8", **kwargs: Any
) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path``, on an error it is removed."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_writer writes whole files (mode w or wb), got {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)


def atomic_write(path: str | os.PathLike, data: str | bytes, encoding: str = "utf-8") -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_writer(path, "wb" if isinstance(data, bytes) else "w", encoding=encoding) as handle:
        handle.write(data)


def write_with(path: str | os.PathLike, writer) -> None:
    """Atomically produce ``path`` with a library writer that takes a file name (``pq.write_table``,
    ``save_pretrained``): ``writer(tmp_path)`` writes a temporary file beside it, which then replaces ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        writer(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on a clean exit it replaces ``path`` as a whole.

    The old folder is renamed aside first and deleted after the swap, so ``kill -9`` leaves either the old
    folder, the new one, or (between the two renames) the old one under ``<name>.old`` next to the new
    ``<name>.partial``: :func:`recover_folder` puts the old one back, and every writer calls it first.
    """
    target = Path(path)
    recover_folder(target)
    partial = target.with_name(target.name + PARTIAL)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        yield partial
        for root, _dirs, names in os.walk(partial):
            for name in names:
                with open(os.path.join(root, name), "rb") as handle:
                    os.fsync(handle.fileno())
        old = target.with_name(target.name + ".old")
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(partial, target)
        fsync_dir(target.parent)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def recover_folder(path: str | os.PathLike) -> None:
    """Undo a folder swap killed between its two renames: the old folder goes back in place."""
    target = Path(path)
    old = target.with_name(target.name + ".old")
    if old.exists() and not target.exists():
        os.replace(old, target)
    shutil.rmtree(target.with_name(target.name + PARTIAL), ignore_errors=True)


def refuse_overwriting(output: str | os.PathLike, inputs: Iterable[str | os.PathLike], flag: str = "--output") -> None:
    """Raise :class:`InputError` when ``output`` is one of ``inputs`` (same file, by inode where it exists)."""
    out = Path(output)
    for given in inputs:
        src = Path(given)
        same = out.resolve() == src.resolve()
        if not same and out.exists() and src.exists():
            with contextlib.suppress(OSError):
                same = os.path.samefile(out, src)
        if same:
            raise InputError(f"{flag} {output} is also an input; write to another file (the input is kept as it is)")


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()
"""Read once at import (``os.umask`` can only be read by setting it, which is not thread-safe later)."""
