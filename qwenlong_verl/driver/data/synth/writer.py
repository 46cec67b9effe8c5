"""A ``synth`` run: argument checks, the lazy record stream, and the jsonl file written whole with its stats.

The file is written through :mod:`qwenlong_verl.common.files`, so a killed run leaves the previous file or the
new complete one, never a shorter file that ``prepare`` would read as valid.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.files import atomic_writer
from qwenlong_verl.common.tasks import ANSWER_TYPES, TaskFieldError, normalize_answer_type, normalize_task_label
from qwenlong_verl.driver.data.schema import check_count
from qwenlong_verl.driver.data.synth.corpus import (
    MAX_CORPUS_TOKENS,
    MAX_DOCS,
    MIN_DOCS,
    TOKENS_PER_DOC,
    CorpusOptions,
    plan_corpus_example,
)
from qwenlong_verl.driver.data.synth.corpus_kinds import CORPUS_KINDS
from qwenlong_verl.driver.data.synth.example import generate_example
from qwenlong_verl.driver.data.synth.length import MIN_TOKENS_FLOOR
from qwenlong_verl.driver.data.synth.questions import QUESTION_KINDS, Kinds, kinds_of, presentations, task_labels

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
    """Examples per task label (the answer types, unless the run labels by task)."""
    answer_types: dict[str, int]
    kinds: dict[str, int]
    min_tokens: int
    max_tokens: int
    seed: int
    docs: int = 0
    """Documents per example of a corpus run (0: single-context examples)."""


def _items(value: str | Sequence[str]) -> list[str]:
    return [str(t) for t in (value.split(",") if isinstance(value, str) else value) if str(t).strip()]


def parse_tasks(tasks: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"numeric,choice"`` (or a list, or None for all) -> canonical answer types, order kept, no repeats."""
    if tasks is None:
        return ANSWER_TYPES
    try:
        types = tuple(dict.fromkeys(normalize_answer_type(t) for t in _items(tasks)))
    except TaskFieldError as exc:
        raise SynthError(f"--tasks: {exc}") from None
    if not types:
        raise SynthError(f"--tasks: give at least one answer type of {', '.join(ANSWER_TYPES)}")
    return types


def parse_labels(
    labels: str | Sequence[str] | None, tasks: Sequence[str] = ANSWER_TYPES, kinds: Kinds = QUESTION_KINDS
) -> tuple[str, ...]:
    """``"temporal,niah"`` (or a list; ``all`` for every label) -> task labels of the question ``kinds``, order kept;
    ``()`` for None (label by answer type). Each label must have a kind that can be asked as one of ``tasks``."""
    if labels is None:
        return ()
    known = task_labels(kinds)
    items = _items(labels)
    if [t.strip().lower() for t in items] == ["all"]:
        items = list(known)
    try:
        chosen = tuple(dict.fromkeys(normalize_task_label(t) for t in items))
    except TaskFieldError as exc:
        raise SynthError(f"--labels: {exc}") from None
    if not chosen:
        raise SynthError(f"--labels: give at least one of {', '.join(known)} (or all)")
    corpus = "corpus " if kinds is CORPUS_KINDS else ""
    for label in chosen:
        if label not in known:
            raise SynthError(f"--labels: no {corpus}question kind has task label {label!r}; use {', '.join(known)}")
        names = kinds_of(task=label, kinds=kinds)
        if not any(presentations(kind, tasks, kinds) for kind in names):
            raise SynthError(
                f"--labels: the {label} kinds ({', '.join(names)}) cannot be asked as "
                f"{', '.join(tasks)}; add their answer type or choice to --tasks"
            )
    return chosen


MAX_EXAMPLES = 1_000_000
"""Most examples one run writes (``--n``): more is a typo, not a data set (a million 60K-token examples is
~240 GB)."""

MAX_TOKENS = 4_000_000
"""Longest target input (``--max-tokens``): four million tokens, past the longest context QwenLong-L1.5's memory
agent trains on; ``2000000000`` would try to hold gigabytes of one document."""


def check_args(n: int, min_tokens: int, max_tokens: int, corpus: CorpusOptions | None = None) -> None:
    """Fail before generating anything, with the CLI flag and its limit named."""
    corpus = corpus or CorpusOptions()
    if corpus.docs is not None and not corpus.active:
        raise SynthError(f"--docs {corpus.docs} sets the documents of corpus examples; add --corpus")
    longest = MAX_CORPUS_TOKENS if corpus.active else MAX_TOKENS
    check_count("--n", n, 1, MAX_EXAMPLES, error=SynthError)
    check_count("--min-tokens", min_tokens, MIN_TOKENS_FLOOR, longest, error=SynthError)
    check_count("--max-tokens", max_tokens, MIN_TOKENS_FLOOR, longest, error=SynthError)
    if max_tokens < min_tokens:
        raise SynthError(f"--max-tokens ({max_tokens}) must not be smaller than --min-tokens ({min_tokens})")
    if corpus.active:
        docs = check_count("--docs", corpus.n_docs, MIN_DOCS, MAX_DOCS, error=SynthError)
        if min_tokens < docs * TOKENS_PER_DOC:
            raise SynthError(
                f"--min-tokens ({min_tokens:,}) is too short for --docs {docs}: a corpus needs {TOKENS_PER_DOC} "
                f"tokens per document ({docs * TOKENS_PER_DOC:,}); raise --min-tokens or lower --docs"
            )


def check_options(
    n: int,
    min_tokens: int,
    max_tokens: int,
    tasks: str | Sequence[str] | None = None,
    labels: str | Sequence[str] | None = None,
    corpus: CorpusOptions | None = None,
):
    """Every option of a run checked, nothing generated (``plan`` checks a recipe's ``data.synth`` with it);
    returns the answer types and the labels' kinds the run draws from."""
    corpus = corpus or CorpusOptions()
    check_args(n, min_tokens, max_tokens, corpus)
    types = parse_tasks(tasks)
    return types, parse_labels(labels, types, CORPUS_KINDS if corpus.active else QUESTION_KINDS)


class Planned(Protocol):
    """An example ready to be written: whole (:meth:`record`) or as one jsonl line (:meth:`write`, which returns
    the fields the run's stats count: task, answer_type, kind, approx_tokens)."""

    def record(self) -> dict[str, Any]: ...

    def write(self, handle: IO[str]) -> dict[str, Any]: ...


class _Whole:
    """A single-context record, built whole and written as one line."""

    def __init__(self, record: dict[str, Any]):
        self._record = record

    def record(self) -> dict[str, Any]:
        return self._record

    def write(self, handle: IO[str]) -> dict[str, Any]:
        handle.write(json.dumps(self._record, ensure_ascii=False) + "\n")
        return self._record


def _planned(
    n: int,
    min_tokens: int,
    max_tokens: int,
    seed: int,
    tasks: str | Sequence[str] | None,
    labels: str | Sequence[str] | None,
    corpus: CorpusOptions | None,
) -> Iterator[Planned]:
    """Each example as something that writes itself (a corpus example streams its documents); checked first."""
    corpus = corpus or CorpusOptions()
    types, chosen = check_options(n, min_tokens, max_tokens, tasks, labels, corpus)
    for index in range(n):
        if corpus.active:
            yield plan_corpus_example(index, n, min_tokens, max_tokens, seed, types, chosen, corpus.n_docs)
        else:
            yield _Whole(generate_example(index, n, min_tokens, max_tokens, seed, types, chosen))


def iter_examples(
    n: int,
    min_tokens: int,
    max_tokens: int,
    seed: int = 0,
    tasks: str | Sequence[str] | None = None,
    labels: str | Sequence[str] | None = None,
    corpus: CorpusOptions | None = None,
) -> Iterator[dict]:
    """The ``n`` records in order (lazy); ``tasks`` and ``labels`` as :func:`parse_tasks` / :func:`parse_labels`.
    Each is built whole: :func:`synth` writes corpus examples a document at a time instead."""
    for example in _planned(n, min_tokens, max_tokens, seed, tasks, labels, corpus):
        yield example.record()


def synth(
    out: str | Path,
    n: int,
    min_tokens: int,
    max_tokens: int,
    seed: int = 0,
    tasks: str | Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    labels: str | Sequence[str] | None = None,
    corpus: CorpusOptions | None = None,
) -> SynthStats:
    """Write ``n`` records as jsonl to ``out`` (whole or not at all); identical bytes for identical arguments.

    ``tasks``: answer types (default all three). ``labels``: task labels of the question kinds (``all`` for every
    one): the examples take them in turn and carry them as ``task``; without it they are labelled by answer type.
    ``corpus``: corpus-scale examples (:mod:`.corpus`), written a document at a time.
    """
    examples = _planned(n, min_tokens, max_tokens, seed, tasks, labels, corpus)
    first = next(examples)  # the arguments are checked before the output file is opened
    path = Path(out)
    task_counts: Counter[str] = Counter()
    type_counts: Counter[str] = Counter()
    kind_counts: Counter[str] = Counter()
    doc_tokens = 0
    with atomic_writer(path) as handle:
        for done, example in enumerate(itertools.chain([first], examples), start=1):
            record = example.write(handle)
            task_counts[record["task"]] += 1
            type_counts[record["answer_type"]] += 1
            kind_counts[record["kind"]] += 1
            doc_tokens += record["approx_tokens"]
            if progress is not None:
                progress(done, n)
    logger.info("wrote %d synthetic examples (%d document tokens) to %s", n, doc_tokens, path)
    docs = corpus.n_docs if corpus is not None and corpus.active else 0
    return SynthStats(
        str(path),
        n,
        doc_tokens,
        dict(task_counts),
        dict(type_counts),
        dict(kind_counts),
        min_tokens,
        max_tokens,
        seed,
        docs,
    )
