"""Benchmark files on local disk -> :class:`EvalItem` (id, document, question, gold, task, choices, data_source).

Users download the data themselves (``docs/eval.md`` says from where); nothing here touches a network.
Each benchmark is one module that registers its row parser with :func:`register_benchmark`, which also
records the schema it reads, so the docs, the error messages and ``--bench`` resolution come from one table.

Modules: :mod:`.item` (the item type and the format error), :mod:`.rows` (what a parser gets: context, field
checks, gold text), :mod:`.registry` (the table), :mod:`.generic` (the schema of unregistered names),
:mod:`.docmath`, :mod:`.frames`, :mod:`.longbench`, :mod:`.loong` (one per benchmark), :mod:`.reading`
(jsonl/json/parquet rows), :mod:`.resolve` (``--bench`` values) and :mod:`.loading` (files -> items).
A new benchmark is a new module here, imported below.
"""

from qwenlong_verl.driver.eval.benchmarks import docmath, frames, longbench, loong  # noqa: F401  (register)
from qwenlong_verl.driver.eval.benchmarks.generic import GENERIC
from qwenlong_verl.driver.eval.benchmarks.item import BenchmarkFormatError, EvalItem
from qwenlong_verl.driver.eval.benchmarks.loading import load_benchmarks, load_file
from qwenlong_verl.driver.eval.benchmarks.loong import LOONG_LEVELS
from qwenlong_verl.driver.eval.benchmarks.reading import SUPPORTED_SUFFIXES
from qwenlong_verl.driver.eval.benchmarks.registry import BENCHMARKS, register_benchmark, spec_for
from qwenlong_verl.driver.eval.benchmarks.resolve import (
    DATA_DIR_ENV,
    DEFAULT_DATA_DIR,
    BenchSource,
    default_data_dir,
    resolve_bench,
)
from qwenlong_verl.driver.eval.benchmarks.rows import BenchmarkSpec, LoadOptions, RowContext, gold_text, native_id

__all__ = [
    "BENCHMARKS",
    "DATA_DIR_ENV",
    "DEFAULT_DATA_DIR",
    "GENERIC",
    "LOONG_LEVELS",
    "SUPPORTED_SUFFIXES",
    "BenchSource",
    "BenchmarkFormatError",
    "BenchmarkSpec",
    "EvalItem",
    "LoadOptions",
    "RowContext",
    "default_data_dir",
    "gold_text",
    "load_benchmarks",
    "load_file",
    "native_id",
    "register_benchmark",
    "resolve_bench",
    "spec_for",
]
