"""The table of benchmarks: one :class:`~.rows.BenchmarkSpec` per name, filled by :func:`register_benchmark`.

Docs, error messages and ``--bench NAME`` lookup all read this table; a name not in it uses the generic schema.
"""

from __future__ import annotations

from qwenlong_verl.driver.eval.benchmarks.generic import GENERIC
from qwenlong_verl.driver.eval.benchmarks.rows import BenchmarkSpec, RowParser

BENCHMARKS: dict[str, BenchmarkSpec] = {}


def register_benchmark(name: str, *, fields: str, download: str, files: tuple[str, ...] = ()):
    """Register ``parse(row, ctx) -> EvalItem`` under ``name`` (stackable for shared schemas)."""

    def deco(parse: RowParser) -> RowParser:
        if name in BENCHMARKS:
            raise ValueError(f"benchmark {name!r} registered twice")
        BENCHMARKS[name] = BenchmarkSpec(
            name=name,
            parse=parse,
            fields=fields,
            download=download,
            files=files or (f"{name}.jsonl", f"{name}.json", f"{name}.parquet", name),
        )
        return parse

    return deco


def spec_for(benchmark: str) -> BenchmarkSpec:
    """The registered schema of ``benchmark``, or the generic one."""
    return BENCHMARKS.get(benchmark, GENERIC)
