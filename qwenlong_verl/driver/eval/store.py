"""The eval folder: what ``eval`` writes and ``report`` reads, append-only so that a killed run resumes.

Layout of ``--out DIR``::

    run.json            settings of the run; a rerun with other settings is refused (see runner)
    items.jsonl         one row per benchmark item: ids, gold, task, prompt fingerprint, input length
    generations.jsonl   append-only; one row per finished sample (id, k): the response, or the error
    scores.jsonl        append-only; one row per scored sample (id, k)
    ratings.jsonl       append-only; one row per LLM-rated sample (id, k) of a rated benchmark (Loong)
    trajectories/       ``--agent memory``: one file per unfinished trajectory, its state after its last finished
                        memory update (removed when the trajectory's row is in generations.jsonl)
    report/             README.md, summary.json and the PNG plots

Rows are appended one whole line at a time and flushed, so a run killed at any moment leaves at most
one torn last line; readers skip it and :class:`JsonlAppender` cuts it off before appending again. Every write
goes through :func:`dumps`, so text that is not valid Unicode (a lone surrogate) is stored escaped, never fails.
One ``eval`` at a time writes a folder: it holds ``.eval.lock`` (see :class:`EvalFolder.lock`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.files import atomic_write, atomic_writer
from qwenlong_verl.common.lock import FolderLock

logger = logging.getLogger(__name__)

LOCK_FILE = ".eval.lock"

Key = tuple[str, int]
"""A sample: (item id, sample index k)."""


class StoreError(InputError):
    """An eval folder that cannot be read; the message names the file and line."""


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """All rows of a JSONL file; a torn last line (killed writer) is skipped, any other bad line raises (this
    package wrote the file: a bad line in it is damage, not data to guess at)."""
    path = Path(path)
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    loads = json.loads
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            torn = not raw.endswith(b"\n")  # only the last line can lack its newline
            try:
                row = loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                if not raw.strip():
                    continue
                if torn:  # cut inside a line, maybe inside a multi-byte character
                    logger.warning("%s: ignoring the torn last line %d (interrupted write)", path, number)
                    continue
                what = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else "not valid JSON"
                raise StoreError(f"{path}:{number}: {what} ({exc}); delete that line or the file") from None
            if not isinstance(row, dict):
                raise StoreError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            rows.append(row)
    return rows


def dumps(value: Any, indent: int | None = None) -> str:
    """JSON text that can always be written as UTF-8: readable non-ASCII text as is, and where a string holds a
    lone surrogate (a broken reply), the value escaped as ASCII (``\\udXXX``), which reads back the same."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, indent=indent)
    return text


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """Replace ``path`` atomically with ``rows`` (for derived files such as ``items.jsonl``)."""
    with atomic_writer(path) as f:
        for row in rows:
            f.write(dumps(row) + "\n")


def write_json(path: str | Path, value: Any) -> None:
    """Replace ``path`` atomically with ``value`` as indented JSON."""
    atomic_write(path, dumps(value, indent=2) + "\n")


class JsonlAppender:
    """Append-only JSONL writer: one ``write`` + ``flush`` per row, torn tail repaired on open."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file = None

    def __enter__(self) -> JsonlAppender:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _cut_torn_tail(self.path)
        self._file = self.path.open("a", encoding="utf-8")

    def append(self, row: dict[str, Any]) -> None:
        if self._file is None:
            raise RuntimeError(f"{self.path} is not open")
        self._file.write(dumps(row) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _cut_torn_tail(path: Path) -> None:
    """Make the file end on a newline: a torn last line is cut, a complete one (only its newline lost) kept."""
    if not path.exists():
        return
    with path.open("rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        # Walk back to the last newline in blocks (a response can be long).
        pos, block, start = size, 1 << 16, 0
        while pos > 0:
            lo = max(0, pos - block)
            f.seek(lo)
            cut = f.read(pos - lo).rfind(b"\n")
            if cut >= 0:
                start = lo + cut + 1
                break
            pos = lo
        f.seek(start)
        try:
            json.loads(f.read())
        except (json.JSONDecodeError, UnicodeDecodeError):
            f.truncate(start)
            logger.warning("%s: cut a torn last line (interrupted write) before appending", path)
        else:
            f.seek(0, os.SEEK_END)
            f.write(b"\n")


def sample_key(row: dict[str, Any]) -> Key:
    return (str(row["id"]), int(row["k"]))


def latest_generations(rows: Iterable[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    """The row that counts per sample: the last successful one, else the last failure."""
    out: dict[Key, dict[str, Any]] = {}
    for row in rows:
        key = sample_key(row)
        prev = out.get(key)
        if prev is not None and prev.get("status") == "ok" and row.get("status") != "ok":
            continue
        out[key] = row
    return out


def latest_by_key(rows: Iterable[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    """Last row per sample (later rows supersede earlier ones)."""
    return {sample_key(row): row for row in rows}


class EvalFolder:
    """Paths of one eval folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def manifest(self) -> Path:
        return self.root / "run.json"

    @property
    def items(self) -> Path:
        return self.root / "items.jsonl"

    @property
    def generations(self) -> Path:
        return self.root / "generations.jsonl"

    @property
    def scores(self) -> Path:
        return self.root / "scores.jsonl"

    @property
    def ratings(self) -> Path:
        """LLM ratings 0-100 (see :mod:`qwenlong_verl.driver.eval.rating`); latest row per sample counts."""
        return self.root / "ratings.jsonl"

    @property
    def trajectories(self) -> Path:
        """Checkpoints of unfinished memory-agent trajectories (see :mod:`qwenlong_verl.driver.eval.memory`)."""
        return self.root / "trajectories"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    def lock(self) -> FolderLock:
        """The folder's lock: a second ``eval`` on it (or a ``report`` of it) fails at once, naming the holder's
        pid."""
        return FolderLock(self.root, LOCK_FILE, "qwenlong-verl eval or report")

    def exists(self) -> bool:
        return self.manifest.exists()

    def read_manifest(self) -> dict[str, Any]:
        try:
            value = json.loads(self.manifest.read_text(encoding="utf-8"))
        except (FileNotFoundError, NotADirectoryError):
            raise StoreError(
                f"{self.root} is not an eval folder (no run.json); run `qwenlong-verl eval` first"
            ) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoreError(f"{self.manifest}: not valid JSON ({exc})") from None
        except OSError as exc:
            raise StoreError(f"cannot read {self.manifest}: {exc.strerror or exc}") from None
        if not isinstance(value, dict):
            raise StoreError(f"{self.manifest}: expected a JSON object")
        if not isinstance(value.get("n"), int) or value["n"] < 1:
            raise StoreError(
                f"{self.manifest}: 'n' (samples per item) must be a positive integer, got {value.get('n')!r}"
            )
        return value

    def iter_items(self) -> Iterator[dict[str, Any]]:
        for row in read_jsonl(self.items):
            if not isinstance(row.get("id"), str) or not isinstance(row.get("benchmark"), str):
                raise StoreError(
                    f"{self.items}: a row without 'id' or 'benchmark' ({str(row)[:80]}); "
                    "rerun `qwenlong-verl eval` with the same arguments to rewrite it"
                )
            yield row
