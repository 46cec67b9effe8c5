"""Files -> checked :class:`~.item.EvalItem` lists: each row through its benchmark's parser, ids unique per run.

A bad row fails here, before any request is sent, with ``file:line``, the field and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from qwenlong_verl.driver.eval.benchmarks.item import BenchmarkFormatError, EvalItem
from qwenlong_verl.driver.eval.benchmarks.reading import files_of, read_rows
from qwenlong_verl.driver.eval.benchmarks.registry import spec_for
from qwenlong_verl.driver.eval.benchmarks.resolve import BenchSource, resolve_bench
from qwenlong_verl.driver.eval.benchmarks.rows import LoadOptions, RowContext


def load_file(path: str | Path, benchmark: str, options: LoadOptions | None = None) -> list[EvalItem]:
    """Items of one benchmark file or directory, parsed with ``benchmark``'s schema (generic if unregistered)."""
    options = options or LoadOptions()
    spec = spec_for(benchmark)
    path = Path(path)
    if not path.exists():
        raise BenchmarkFormatError(f"{path}: no such file or directory")
    items: list[EvalItem] = []
    for file in files_of(path):
        for number, kind, row in read_rows(file):
            ctx = RowContext(benchmark=benchmark, spec=spec, path=file, line=number, options=options, line_kind=kind)
            if not isinstance(row, Mapping):
                raise ctx.error(f"expected a JSON object, got {type(row).__name__}")
            items.append(replace(spec.parse(row, ctx), source=ctx.where))
    if not items:
        raise BenchmarkFormatError(f"{path}: no rows")
    return items


def load_benchmarks(
    values: list[str], data_dir: str | Path | None = None, options: LoadOptions | None = None
) -> tuple[list[BenchSource], list[EvalItem]]:
    """Resolve and load every ``--bench`` value; ids must be unique across the whole run."""
    options = options or LoadOptions()
    sources = [resolve_bench(v, data_dir) for v in values]
    names = [s.name for s in sources]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise BenchmarkFormatError(f"benchmark {', '.join(sorted(dup))} given twice in --bench")
    items: list[EvalItem] = []
    seen: dict[str, str] = {}
    for source in sources:
        loaded = [i for path in source.paths for i in load_file(path, source.name, options)]
        for item in loaded[: options.limit]:
            if item.id in seen:
                raise BenchmarkFormatError(
                    f"{item.source}: id {item.id!r} already used at {seen[item.id]}; ids must be unique per benchmark"
                )
            seen[item.id] = item.source
            items.append(item)
    return sources, items
