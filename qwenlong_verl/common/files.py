"""The one way this package writes files: whole or not at all.

Every writer goes through here. A file is written to a temporary name in its own folder, flushed to disk and
renamed over the target, so a reader (or a rerun after ``kill -9``) sees the old file or the new one, never a
prefix. A multi-file output is written into a temporary sibling folder and swapped in as a whole. A writer
never overwrites one of its own inputs (:func:`refuse_overwriting`). Hand-written because no well-kept library
offers the folder swap and the input check together; ``os.replace`` and ``fsync`` are all it needs.

Append-only logs (``open(path, "a")``) do not come here: an append never loses what was there before.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.lock import FolderLock

T = TypeVar("T")

PARTIAL = ".partial"
"""Suffix of a folder being written; a leftover one (a killed writer) is removed by the next writer."""

OLD = ".old"
"""Suffix of the previous folder during a swap; :func:`recover_folder` puts it back if the swap was killed."""

STALE_TEMP_S = 600.0
"""A temporary file whose writer is gone and that nobody touched for this long is a killed write's leftover."""


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


class OutputError(InputError):
    """An output path that cannot be written (a folder where a file goes, no permission, a file in the way)."""


def _cannot(path: str | os.PathLike, exc: OSError) -> OutputError:
    return OutputError(f"cannot write {path}: {exc.strerror or exc}; choose another path or fix its permissions")


def _target(path: str | os.PathLike) -> Path:
    """The file a write to ``path`` lands in: through a symlink, like ``open(path, "w")``."""
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder; name a file")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot(path, exc) from None
    return target


def _temp_beside(target: Path) -> tuple[int, str]:
    """A fresh temporary file in ``target``'s folder (same file system, so the rename is atomic); it ends in the
    target's suffix, for library writers that pick the format by extension (``savefig``). Its name carries the
    writer's pid, so the next writer of ``target`` can tell a killed write's leftover (:func:`_remove_stale_temps`)."""
    _remove_stale_temps(target)
    try:
        return tempfile.mkstemp(
            prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp" + target.suffix, dir=target.parent
        )
    except OSError as exc:
        raise _cannot(target, exc) from None


def _remove_stale_temps(target: Path) -> None:
    """Delete the temporary files a killed writer of ``target`` left: its pid is not running here and the file is
    older than :data:`STALE_TEMP_S` (a writer on another host of a shared file system keeps writing it)."""
    prefix = f".{target.name}."
    now = time.time()
    try:
        entries = [e for e in os.scandir(target.parent) if e.name.startswith(prefix) and ".tmp" in e.name]
    except OSError:
        return
    for entry in entries:
        pid = entry.name[len(prefix) :].split(".", 1)[0]
        with contextlib.suppress(OSError):
            if pid.isdigit() and not _running(int(pid)) and now - entry.stat().st_mtime > STALE_TEMP_S:
                os.unlink(entry.path)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: it exists
        return True
    return True


def _commit(tmp: str, target: Path) -> None:
    """Give ``tmp`` the mode ``open()`` would, make it durable and rename it over ``target``."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)  # open() keeps an existing file's mode
    except OSError:
        mode = 0o666 & ~_UMASK  # mkstemp makes 0600; a new file gets what open() would give
    os.chmod(tmp, mode)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_writer(
    path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8", **kwargs: Any
) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path``, on an error it is removed."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_writer writes whole files (mode w or wb), got {mode!r}")
    target = _target(path)
    fd, tmp = _temp_beside(target)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding, **kwargs) as handle:
            yield handle
        _commit(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write(path: str | os.PathLike, data: str | bytes, encoding: str = "utf-8") -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_writer(path, "wb" if isinstance(data, bytes) else "w", encoding=encoding) as handle:
        handle.write(data)


def write_with(path: str | os.PathLike, writer: Callable[[str], T]) -> T:
    """Atomically produce the file ``path`` with a library writer that takes a file name (``pq.write_table``,
    ``figure.savefig``): ``writer(tmp_path)`` writes a temporary file beside it, which then replaces ``path``;
    returns what ``writer`` returned. A writer of a folder (``save_pretrained``) goes into :func:`atomic_folder`."""
    target = _target(path)
    fd, tmp = _temp_beside(target)
    os.close(fd)
    try:
        result = writer(tmp)
        _commit(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return result


def _remove(path: Path) -> None:
    """Delete a folder or a file, whichever ``path`` is (a leftover may be either)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _sync_tree(root: Path) -> None:
    """fsync every file and folder under ``root`` so the swap cannot publish entries not yet on disk."""
    for folder, _dirs, names in os.walk(root):
        for name in names:
            file = os.path.join(folder, name)
            if not os.path.islink(file):
                with open(file, "rb") as handle:
                    os.fsync(handle.fileno())
        fsync_dir(folder)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, keep: Callable[[str], bool] | None = None) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on a clean exit it replaces ``path`` as a whole.

    The old folder is renamed aside first and deleted after the swap, so ``kill -9`` leaves either the old
    folder, the new one, or (between the two renames) the old one under ``<name>.old`` next to the new
    ``<name>.partial``: :func:`recover_folder` puts the old one back, and every writer calls it first.
    ``keep(name)`` marks entries of the old folder that are not this writer's (say an input the user keeps beside
    the output): they are hard-linked (or copied) into the new folder before the swap, so they survive it.
    Writers of one folder exclude each other through a lock file beside it, removed when they are done; a second
    writer fails at once, naming the first one's pid.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise OutputError(f"cannot write the folder {path}: a file of that name is in the way; name a folder")
    with _folder_lock(target):
        yield from _swap_in(target, keep)


def _folder_lock(target: Path) -> FolderLock:
    """The lock of writers of the folder ``target`` (a hidden file beside it, removed on release)."""
    return FolderLock(target.parent, f".{target.name}.lock", f"writer of {target.name}/", transient=True)


def _swap_in(target: Path, keep: Callable[[str], bool] | None) -> Iterator[Path]:
    _recover(target)
    partial = target.with_name(target.name + PARTIAL)
    old = target.with_name(target.name + OLD)
    try:
        partial.mkdir(parents=True)
    except OSError as exc:
        raise _cannot(target, exc) from None
    try:
        yield partial
        if keep is not None and target.is_dir():
            _carry(target, partial, keep)
        _sync_tree(partial)
        moved = False
        if target.exists() or target.is_symlink():
            os.replace(target, old)
            moved = True
        try:
            os.replace(partial, target)
        except BaseException:
            if moved:
                os.replace(old, target)
            raise
        fsync_dir(target.parent)
    except BaseException:
        _remove(partial)
        raise
    _remove(old)


def _carry(source: Path, dest: Path, keep: Callable[[str], bool]) -> None:
    """Link the entries of ``source`` that ``keep`` names into ``dest``, unless the writer made one of that name."""
    for entry in source.iterdir():
        into = dest / entry.name
        if not keep(entry.name) or into.exists() or into.is_symlink():
            continue
        if entry.is_symlink():
            os.symlink(os.readlink(entry), into)
        elif entry.is_dir():
            shutil.copytree(entry, into, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, into)


def _link_or_copy(source: str | os.PathLike, dest: str | os.PathLike) -> None:
    """A hard link (instant, no extra space), or a copy where the file system has none."""
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def recover_folder(path: str | os.PathLike) -> None:
    """Finish what a killed :func:`atomic_folder` left: the old folder goes back in place if the new one never
    arrived, a stale old one is deleted if it did, and a half-written new one is deleted either way. Under the
    writers' lock, so a live writer's half-written folder is never taken for a leftover."""
    target = Path(path)
    with _folder_lock(target):
        _recover(target)


def _recover(target: Path) -> None:
    old = target.with_name(target.name + OLD)
    if old.exists() or old.is_symlink():
        if target.exists() or target.is_symlink():
            _remove(old)
        else:
            os.replace(old, target)
            fsync_dir(target.parent)
    _remove(target.with_name(target.name + PARTIAL))


def refuse_overwriting(output: str | os.PathLike, inputs: Iterable[str | os.PathLike], flag: str = "--output") -> None:
    """Raise :class:`InputError` when writing ``output`` would replace one of ``inputs``: the same file (by path,
    through symlinks, or by inode for a hard link), or an input inside ``output`` when that is a folder."""
    out = Path(output).resolve()
    for given in inputs:
        src = Path(given).resolve()
        same = out == src or out in src.parents
        if not same and out.exists() and src.exists():
            with contextlib.suppress(OSError):
                same = os.path.samefile(out, src)
        if same:
            raise InputError(
                f"{flag} {output} is also an input ({given}); write elsewhere (inputs are kept as they are)"
            )


def _read_umask() -> int:
    """The process umask: from /proc where it can be read, else by setting and restoring it (at import only)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()
"""Read once at import (``os.umask`` can only be read by setting it, which is not thread-safe later)."""


def input_problem(paths: Iterable[str | os.PathLike]) -> str | None:
    """Why some of ``paths`` cannot be read as input files (a folder, or nothing there), or ``None``: one
    sentence that says which and what to do."""
    folders = [str(p) for p in paths if Path(p).is_dir()]
    missing = [str(p) for p in paths if not Path(p).exists()]
    parts = []
    if folders:
        parts.append(
            f"{', '.join(folders)} {'is a folder' if len(folders) == 1 else 'are folders'}; name the file(s) in it"
        )
    if missing:
        parts.append(f"input file(s) not found: {', '.join(missing)}")
    return "; ".join(parts) or None
