"""Rows out of benchmark files: ``.jsonl`` (one object per line), ``.json`` (a list) and ``.parquet``, or a folder.

Each row comes with its line (jsonl) or row number, so every later error can say ``file:line``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from qwenlong_verl.driver.eval.benchmarks.item import BenchmarkFormatError

SUPPORTED_SUFFIXES = (".jsonl", ".json", ".parquet")


def read_rows(path: Path) -> Iterator[tuple[int, str, Any]]:
    """(line or row number, ``"line"`` or ``"row"``, row) for one supported file."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    yield number, "line", json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BenchmarkFormatError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
    elif suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise BenchmarkFormatError(f"{path}: not valid JSON ({exc})") from None
        if isinstance(data, Mapping) and isinstance(data.get("data"), list):
            data = data["data"]
        if not isinstance(data, list):
            raise BenchmarkFormatError(f"{path}: expected a JSON list of rows (or {{'data': [...]}})")
        for number, row in enumerate(data, start=1):
            yield number, "row", row
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        for number, row in enumerate(pq.read_table(path).to_pylist(), start=1):
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
