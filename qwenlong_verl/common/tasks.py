"""Answer types and task labels: the two things a row says about its question, kept apart.

* The **answer type** (:data:`ANSWER_TYPES`: numeric, choice, qa) says what the gold answer looks like, so it
  picks the rule verifier and the prompt's answer-format sentence. :func:`answer_type_of` routes a sample.
* The **task label** (any short label such as ``multi_hop``, ``numerical``, ``temporal``, ``niah``) says what
  kind of question it is. It is the group of task-balanced sampling, of the task-specific std of the
  ``grpo_task_norm`` advantage, of the ledger and of the per-task metrics: QwenLong-L1.5 balances and
  normalises over its task types so that dense- and sparse-reward tasks do not share one std.
  :func:`task_label_of` groups a sample.

A prepared row carries both as ``extra_info["answer_type"]`` and ``extra_info["task"]``. Older rows carry only
``task``, one of the answer types: it is then both the answer type and the label, exactly as before. Rows
without either (DocQA-RL-1.6K and the like) get their answer type from the veRL ``data_source``, as the
QwenLong reference routes them, and use it as their label too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from qwenlong_verl.common.errors import InputError

NUMERIC = "numeric"
"""Numeric answer checked with a relative tolerance (DocMath, corpus-level aggregation)."""

CHOICE = "choice"
"""One option letter out of the offered choices."""

QA = "qa"
"""Free-form extractive or multi-hop answer checked by normalised sub-exact match."""

ANSWER_TYPES: tuple[str, ...] = (NUMERIC, CHOICE, QA)
"""Every answer type; each has one rule verifier and one answer-format sentence."""

_ALIASES = {
    "math": NUMERIC,
    "docmath": NUMERIC,
    "number": NUMERIC,
    "numerical": NUMERIC,
    "multiple_choice": CHOICE,
    "mcq": CHOICE,
    "choices": CHOICE,
    "extractive": QA,
    "multihop": QA,
    "multi_hop": QA,
}
"""Other names of answer types, accepted in ``answer_type`` and (for rows without one) in ``task``."""

# Task labels of the QwenLong-L1.5 task types the generator in ``driver/data/synth`` produces; any other valid
# label is as good (see :func:`normalize_task_label`).
NUMERICAL = "numerical"
"""Numerical calculation over figures spread across documents."""
MULTI_HOP = "multi_hop"
"""Multi-hop reasoning: a chain of facts, each hop in another document."""
TEMPORAL = "temporal"
"""Temporal reasoning: dates, order of events, time between them."""
COUNTING = "counting"
"""Corpus-level counting / aggregation under a condition."""
NIAH = "niah"
"""Single-fact retrieval (needle in a haystack) among near-duplicates."""
HYPOTHETICAL = "hypothetical"
"""Hypothetical scenarios: a stated change to a fact, and its consequence."""

TASK_LABEL_MAX_CHARS = 32
"""Longest task label: it becomes part of metric names (``qwenlong/task_std/<label>``) and ledger lines."""

_LABEL = re.compile(r"[a-z0-9][a-z0-9_]*")
_SEPARATORS = re.compile(r"[\s\-]+")


class TaskFieldError(InputError):
    """A bad ``answer_type`` or ``task`` value; :attr:`field` names which of the two."""

    field = "task"


class UnknownAnswerTypeError(TaskFieldError):
    """An answer type outside :data:`ANSWER_TYPES` and its aliases."""

    field = "answer_type"


class TaskLabelError(TaskFieldError):
    """A task label that is empty, too long or has characters outside ``a-z 0-9 _``."""

    field = "task"


def _absent(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):  # an empty parquet cell
        return True
    return isinstance(value, str) and not value.strip()


def normalize_answer_type(value: Any) -> str:
    """Canonical answer type; raises :class:`UnknownAnswerTypeError` naming the allowed ones."""
    key = _SEPARATORS.sub("_", str(value).strip().lower())
    if key in ANSWER_TYPES:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    raise UnknownAnswerTypeError(f"unknown answer type {value!r}; use one of {', '.join(ANSWER_TYPES)}")


def normalize_task_label(value: Any) -> str:
    """The label as stored: trimmed, lower case, spaces and ``-`` as ``_`` (``Multi-Hop`` -> ``multi_hop``).

    Raises :class:`TaskLabelError` unless the result is 1 to :data:`TASK_LABEL_MAX_CHARS` characters of
    ``a-z``, ``0-9`` and ``_``, starting with a letter or digit: a label is a metric-name part and a group key.
    """
    if not isinstance(value, str):
        raise TaskLabelError(f"the task label must be text, got {type(value).__name__} {str(value)[:40]!r}")
    label = _SEPARATORS.sub("_", value.strip().lower())
    if not label:
        raise TaskLabelError("the task label is empty; give a short label such as multi_hop or numerical")
    if len(label) > TASK_LABEL_MAX_CHARS or not _LABEL.fullmatch(label):
        raise TaskLabelError(
            f"task label {value[:60]!r} must be 1 to {TASK_LABEL_MAX_CHARS} characters of a-z, 0-9 and _ "
            "(spaces and - become _), starting with a letter or digit, such as multi_hop"
        )
    return label


def answer_type_from_data_source(data_source: Any) -> str:
    """The QwenLong routing: ``docmath*`` is numeric, ``long_toc_choices*`` is choice, the rest QA."""
    source = str(data_source or "").lower()
    if source.startswith("docmath"):
        return NUMERIC
    if source.startswith("long_toc_choices") or "choice" in source:
        return CHOICE
    return QA


def resolve_task(task: Any, answer_type: Any, fallback: str) -> tuple[str, str]:
    """``(answer type, task label)`` of a row from its ``task`` and ``answer_type`` values, strictly.

    Answer type: ``answer_type`` when given; else ``task`` when it names an answer type or an alias; else
    ``fallback`` (what the caller infers: from options, the gold, or ``data_source``). Label: ``task`` when given,
    else the answer type. Raises :class:`UnknownAnswerTypeError` / :class:`TaskLabelError` for a bad value given.
    """
    label = None if _absent(task) else normalize_task_label(task)
    if not _absent(answer_type):
        kind = normalize_answer_type(answer_type)
    else:
        try:
            kind = fallback if label is None else normalize_answer_type(label)
        except UnknownAnswerTypeError:
            kind = fallback
    return kind, label if label is not None else kind


def answer_type_of(data_source: Any, extra_info: Mapping[str, Any] | None = None) -> str:
    """Answer type of one sample (picks the verifier): ``extra_info["answer_type"]``, else ``extra_info["task"]``
    when it names one, else from ``data_source``. Never raises: an unusable value is passed over."""
    info = extra_info if isinstance(extra_info, Mapping) else {}
    for value in (info.get("answer_type"), info.get("task")):
        if not _absent(value):
            try:
                return normalize_answer_type(value)
            except UnknownAnswerTypeError:
                continue
    return answer_type_from_data_source(data_source)


def task_label_of(data_source: Any, extra_info: Mapping[str, Any] | None = None) -> str:
    """Task label of one sample (its group for balance, task-norm std, ledger, metrics): ``extra_info["task"]``
    normalised, else the sample's answer type. Never raises: an unusable label falls back to the answer type, so
    whatever a foreign row holds, a label is always a valid metric-name part."""
    info = extra_info if isinstance(extra_info, Mapping) else {}
    task = info.get("task")
    if not _absent(task):
        try:
            return normalize_task_label(task)
        except TaskLabelError:
            pass
    return answer_type_of(data_source, info)
