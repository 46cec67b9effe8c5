"""The table of benchmarks: one :class:`~.rows.BenchmarkSpec` per name, filled by :func:`register_benchmark`.

Docs, error messages and ``--bench NAME`` lookup all read this table; a name not in it uses the generic schema.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from qwenlong_verl.driver.eval.benchmarks.generic import GENERIC
from qwenlong_verl.driver.eval.benchmarks.rows import BenchmarkSpec, RowParser

if TYPE_CHECKING:
    from qwenlong_verl.driver.eval.rating import RatingSpec

BENCHMARKS: dict[str, BenchmarkSpec] = {}


def register_benchmark(
    name: str, *, fields: str, download: str, files: tuple[str, ...] = (), rating: RatingSpec | None = None
):
    """Register ``parse(row, ctx) -> EvalItem`` under ``name`` (stackable for shared schemas); ``rating``: the
    benchmark's published LLM rating, if its metric is one."""

    def deco(parse: RowParser) -> RowParser:
        if name in BENCHMARKS:
            raise ValueError(f"benchmark {name!r} registered twice")
        BENCHMARKS[name] = BenchmarkSpec(
            name=name,
            parse=parse,
            fields=fields,
            download=download,
            files=files or (f"{name}.jsonl", f"{name}.json", f"{name}.parquet", name),
            rating=rating,
        )
        return parse

    return deco


def spec_for(benchmark: str) -> BenchmarkSpec:
    """The registered schema of ``benchmark``, or the generic one."""
    return BENCHMARKS.get(benchmark, GENERIC)


def rating_specs(benchmarks: Iterable[str]) -> dict[str, RatingSpec]:
    """Benchmark -> its LLM rating, for those of ``benchmarks`` that declare one (``register_benchmark(rating=)``)."""
    specs = {name: spec_for(name).rating for name in dict.fromkeys(benchmarks)}
    return {name: spec for name, spec in specs.items() if spec is not None}
