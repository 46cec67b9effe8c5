"""What a row parser receives and checks with: the benchmark's spec, the row's place, and typed field access.

Every parser reports problems through :meth:`RowContext.error` and :meth:`RowContext.field`, so each message
names the file, the line, the field and the schema the benchmark expects.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qwenlong_verl.driver.eval.benchmarks.item import BenchmarkFormatError, EvalItem

if TYPE_CHECKING:
    from qwenlong_verl.driver.eval.rating import RatingSpec


@dataclass
class LoadOptions:
    """Settings that some loaders need besides the file."""

    loong_doc_dir: Path | None = None
    """Loong's ``data/doc`` folder; default: ``doc/`` next to the Loong jsonl."""

    limit: int | None = None
    """Keep only the first N items of each benchmark (smoke runs)."""

    _cache: dict[str, Any] = field(default_factory=dict, repr=False)
    """Side files a loader read once per run (Loong's ``legal.json``)."""


RowParser = Callable[[Mapping[str, Any], "RowContext"], EvalItem]


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark schema: its parser, where its files live, and the documentation of its fields."""

    name: str
    parse: RowParser
    fields: str
    """Required/optional fields, as shown in errors and docs."""

    download: str
    """Where users get the files."""

    files: tuple[str, ...] = ()
    """Globs tried under the data dir when ``--bench NAME`` is given."""

    rating: RatingSpec | None = None
    """The benchmark's published LLM rating (Loong's 0-100 score), run after scoring; None: accuracy only."""


@dataclass
class RowContext:
    """Where a row came from, for error messages and loaders that read side files."""

    benchmark: str
    """The name given in ``--bench`` (for the generic schema: the user's NAME)."""
    spec: BenchmarkSpec
    path: Path
    line: int
    options: LoadOptions
    line_kind: str = "line"

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line_kind == "line" else f"{self.path} row {self.line}"

    def error(self, problem: str, fix: str = "") -> BenchmarkFormatError:
        text = f"{self.where} ({self.benchmark}): {problem}"
        return BenchmarkFormatError(text + (f"; {fix}" if fix else ""))

    def field(self, row: Mapping[str, Any], name: str, kinds: tuple[type, ...] = (str,), *, required: bool = True):
        """``row[name]`` checked against ``kinds``; a missing field names close matches and the schema."""
        if name not in row or row[name] is None:
            if not required:
                return None
            close = difflib.get_close_matches(name, [str(k) for k in row], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.error(
                f"missing field {name!r}{hint}; row has {sorted(map(str, row))}",
                f"{self.spec.name} rows need: {self.spec.fields}",
            )
        value = row[name]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise self.error(f"field {name!r} must be {names}, got {type(value).__name__}")
        if isinstance(value, str) and required and not value.strip():
            raise self.error(f"field {name!r} is empty")
        return value


def number_text(value: int | float) -> str:
    """Shortest exact text of a number: ``12``, ``0.125``, ``1e-07``; integral floats lose ``.0``."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def native_id(row: Mapping[str, Any], ctx: RowContext, *names: str) -> str:
    """The row's own id from the first usable field of ``names``, else ``<file stem>-<line>``."""
    for name in names:
        value = row.get(name)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return f"{ctx.path.stem}-{ctx.line}"


def gold_text(value: Any, ctx: RowContext, name: str) -> str:
    """A gold answer as text: booleans as Yes/No, numbers exact, other JSON values as JSON."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, (int, float)):
        return number_text(value)
    if isinstance(value, str):
        if not value.strip():
            raise ctx.error(f"field {name!r} is empty")
        return value.strip()
    return json.dumps(value, ensure_ascii=False)
