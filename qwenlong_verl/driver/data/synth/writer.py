"""A ``synth`` run: argument checks, the lazy record stream, and the jsonl file written whole with its stats.

The file is written through :mod:`qwenlong_verl.common.files`, so a killed run leaves the previous file or the
new complete one, never a shorter file that ``prepare`` would read as valid.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.files import atomic_writer
from qwenlong_verl.common.tasks import TASKS, normalize_task
from qwenlong_verl.driver.data.schema import check_count
from qwenlong_verl.driver.data.synth.example import generate_example
from qwenlong_verl.driver.data.synth.length import MIN_TOKENS_FLOOR

logger = logging.getLogger(__name__)


class SynthError(InputError):
    """Bad synth arguments (exit 2)."""


@dataclass
class SynthStats:
    """What :func:`synth` wrote."""

    path: str
    examples: int
    document_tokens: int
    """Tokens of all documents (builtin tokenizer, estimate within a few percent)."""
    tasks: dict[str, int]
    kinds: dict[str, int]
    min_tokens: int
    max_tokens: int
    seed: int


def parse_tasks(tasks: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"numeric,choice"`` (or a list, or None for all) -> canonical task labels, order kept, no repeats."""
    if tasks is None:
        return TASKS
    items = tasks.split(",") if isinstance(tasks, str) else list(tasks)
    labels = tuple(dict.fromkeys(normalize_task(t) for t in items if str(t).strip()))
    if not labels:
        raise SynthError(f"give at least one task of {', '.join(TASKS)}")
    return labels


MAX_EXAMPLES = 1_000_000
"""Most examples one run writes (``--n``): more is a typo, not a data set (a million 60K-token examples is
~240 GB)."""

MAX_TOKENS = 4_000_000
"""Longest target input (``--max-tokens``): four million tokens, past the longest context QwenLong-L1.5's memory
agent trains on; ``2000000000`` would try to hold gigabytes of one document."""


def check_args(n: int, min_tokens: int, max_tokens: int) -> None:
    """Fail before generating anything, with the CLI flag and its limit named."""
    check_count("--n", n, 1, MAX_EXAMPLES, error=SynthError)
    check_count("--min-tokens", min_tokens, MIN_TOKENS_FLOOR, MAX_TOKENS, error=SynthError)
    check_count("--max-tokens", max_tokens, MIN_TOKENS_FLOOR, MAX_TOKENS, error=SynthError)
    if max_tokens < min_tokens:
        raise SynthError(f"--max-tokens ({max_tokens}) must not be smaller than --min-tokens ({min_tokens})")


def iter_examples(
    n: int, min_tokens: int, max_tokens: int, seed: int = 0, tasks: str | Sequence[str] | None = None
) -> Iterator[dict]:
    """The ``n`` records in order (lazy)."""
    check_args(n, min_tokens, max_tokens)
    labels = parse_tasks(tasks)
    for index in range(n):
        yield generate_example(index, n, min_tokens, max_tokens, seed, labels)


def synth(
    out: str | Path,
    n: int,
    min_tokens: int,
    max_tokens: int,
    seed: int = 0,
    tasks: str | Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SynthStats:
    """Write ``n`` records as jsonl to ``out`` (whole or not at all); identical bytes for identical arguments."""
    check_args(n, min_tokens, max_tokens)
    labels = parse_tasks(tasks)
    path = Path(out)
    task_counts: Counter[str] = Counter()
    kind_counts: Counter[str] = Counter()
    doc_tokens = 0
    with atomic_writer(path) as handle:
        for done, record in enumerate(iter_examples(n, min_tokens, max_tokens, seed, labels), start=1):
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            task_counts[record["task"]] += 1
            kind_counts[record["kind"]] += 1
            doc_tokens += record["approx_tokens"]
            if progress is not None:
                progress(done, n)
    logger.info("wrote %d synthetic examples (%d document tokens) to %s", n, doc_tokens, path)
    return SynthStats(str(path), n, doc_tokens, dict(task_counts), dict(kind_counts), min_tokens, max_tokens, seed)
