"""``--bench`` values -> (benchmark name, files): a registered name under the data dir, a path, or ``NAME=PATH``.

Errors say where we looked and where to download from, taken from the registry.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from qwenlong_verl.driver.eval.benchmarks.item import BenchmarkFormatError
from qwenlong_verl.driver.eval.benchmarks.reading import SUPPORTED_SUFFIXES
from qwenlong_verl.driver.eval.benchmarks.registry import BENCHMARKS

DEFAULT_DATA_DIR = "data/eval"
DATA_DIR_ENV = "QWENLONG_EVAL_DATA"


@dataclass(frozen=True)
class BenchSource:
    """A resolved ``--bench`` value."""

    name: str
    paths: tuple[Path, ...]


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def _name_of_path(path: Path) -> str | None:
    stem = path.name if path.is_dir() else path.stem
    key = stem.lower().replace("-", "_")
    matches = [n for n in BENCHMARKS if key.startswith(n)]
    if not matches and key.endswith("_testmini"):
        return "docmath"
    return max(matches, key=len) if matches else None


def resolve_bench(value: str, data_dir: str | Path | None = None) -> BenchSource:
    """``NAME``, ``PATH`` or ``NAME=PATH`` -> (benchmark name, path); errors say where we looked."""
    value = value.strip()
    if "=" in value:
        name, _, raw = value.partition("=")
        name = name.strip().lower()
        if not name or not raw.strip():
            raise BenchmarkFormatError(f"--bench {value!r}: expected NAME=PATH")
        path = Path(raw.strip()).expanduser()
        if not path.exists():
            raise BenchmarkFormatError(f"--bench {value!r}: {path} does not exist")
        return BenchSource(name, (path,))
    path = Path(value).expanduser()
    if path.exists() and (path.is_dir() or path.suffix.lower() in SUPPORTED_SUFFIXES):
        name = _name_of_path(path)
        if name is None:
            raise BenchmarkFormatError(
                f"--bench {value!r}: cannot tell the benchmark from the file name; pass NAME={value} "
                f"(registered: {', '.join(sorted(BENCHMARKS))}; any other NAME uses the generic schema)"
            )
        return BenchSource(name, (path,))
    name = value.lower()
    if name not in BENCHMARKS:
        close = difflib.get_close_matches(name, list(BENCHMARKS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise BenchmarkFormatError(
            f"--bench {value!r}: not a file and not a benchmark{hint}; registered: {', '.join(sorted(BENCHMARKS))}"
        )
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    spec = BENCHMARKS[name]
    for pattern in spec.files:
        found = sorted(root.glob(pattern))
        if found:  # several split files (DocMath) are loaded as one benchmark
            return BenchSource(name, tuple(found))
    raise BenchmarkFormatError(
        f"--bench {name}: no file found under {root} (tried {', '.join(spec.files)}); download it from "
        f"{spec.download}, then pass --data-dir or --bench {name}=PATH"
    )
