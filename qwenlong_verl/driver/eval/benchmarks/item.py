"""What every benchmark loader produces (:class:`EvalItem`) and raises (:class:`BenchmarkFormatError`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qwenlong_verl.common.errors import InputError


class BenchmarkFormatError(InputError):
    """A benchmark file or row that cannot be used; the message names the file, line and field."""


@dataclass(frozen=True)
class EvalItem:
    """One benchmark question, ready for the prompt template and the scorer."""

    id: str
    """``<benchmark>/<native id>``; unique within a run and stable across reruns (the resume key)."""

    benchmark: str
    """Benchmark name, the first grouping of the report."""

    document: str
    """The long context put into the prompt (before truncation)."""

    question: str
    """The question; also passed to the scorer as ``extra_info["question"]`` (the judge reads it)."""

    gold: str
    """Reference answer as text (numbers in their shortest exact form)."""

    task: str
    """The answer type, one of :data:`qwenlong_verl.common.tasks.ANSWER_TYPES`: selects template and rule verifier
    (the scorer gets it as ``extra_info["task"]``, which names the answer type of a row without ``answer_type``)."""

    data_source: str
    """veRL ``data_source`` given to the scorer (as in training rows)."""

    choices: tuple[str, ...] | None = None
    """Option texts for ``choice`` items, in letter order (A, B, ...)."""

    subset: str = ""
    """Second grouping of the report (DocMath split, Loong task type); empty when none."""

    source: str = ""
    """``file:line`` of the row, for messages."""

    meta: Mapping[str, Any] = field(default_factory=dict)
    """Extra JSON-able facts kept in ``items.jsonl`` (all gold answers, Loong level/set...)."""
