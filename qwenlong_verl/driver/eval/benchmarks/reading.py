"""Rows out of benchmark files: ``.jsonl`` (one object per line), ``.json`` (a list) and ``.parquet``, or a folder.

Each row comes with its line (jsonl) or row number, so every later error can say ``file:line``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from qwenlong_verl.driver.data.schema import RowError, read_json_file, read_json_lines, text_problem
from qwenlong_verl.driver.eval.benchmarks.item import BenchmarkFormatError

SUPPORTED_SUFFIXES = (".jsonl", ".json", ".parquet")


def read_rows(path: Path) -> Iterator[tuple[int, str, Any]]:
    """(line or row number, ``"line"`` or ``"row"``, row) for one supported file.

    jsonl is read as bytes, one line at a time: a line that is not UTF-8 JSON (undecodable bytes, a lone surrogate,
    more than 256 MiB) fails with ``file:line`` and what to do, and a UTF-16 file with one error naming the
    encoding, not with a traceback.
    """
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        for number, row in read_json_lines(path, error=BenchmarkFormatError):
            if isinstance(row, RowError):
                raise BenchmarkFormatError(row.at(f"{path}:{number}"))
            yield number, "line", row
    elif suffix == ".json":
        data = read_json_file(path, error=BenchmarkFormatError)
        if isinstance(data, Mapping) and isinstance(data.get("data"), list):
            data = data["data"]
        if not isinstance(data, list):
            raise BenchmarkFormatError(f"{path}: expected a JSON list of rows (or {{'data': [...]}})")
        for number, row in enumerate(data, start=1):
            problem = text_problem(row)
            if problem:
                raise BenchmarkFormatError(f"{path} row {number}: field {problem[0]!r}: {problem[1]}")
            yield number, "row", row
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except (pa.ArrowException, OSError) as exc:  # 0 bytes, cut short, not parquet at all
            raise BenchmarkFormatError(f"{path}: not a readable parquet file ({str(exc)[:200]})") from None
        for number, row in enumerate(rows, start=1):
            yield number, "row", row
    else:
        raise BenchmarkFormatError(f"{path}: unsupported file type; use {', '.join(SUPPORTED_SUFFIXES)}")


def files_of(path: Path) -> list[Path]:
    """``path`` itself, or the supported files of a folder in name order (DocMath ships one file per split)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
        if not files:
            raise BenchmarkFormatError(f"{path}: no {', '.join(SUPPORTED_SUFFIXES)} files in this directory")
        return files
    return [path]
