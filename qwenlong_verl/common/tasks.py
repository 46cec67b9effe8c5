"""Task labels: one vocabulary for data preparation, reward routing, task balance and task-norm advantage.

Every prepared row carries ``extra_info["task"]``, one of :data:`TASKS`. Rows from elsewhere (for instance
DocQA-RL-1.6K) may lack it; then the veRL ``data_source`` decides, as the QwenLong reference does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qwenlong_verl.common.errors import InputError

NUMERIC = "numeric"
"""Numeric answer checked with a relative tolerance (DocMath, corpus-level aggregation)."""

CHOICE = "choice"
"""One option letter out of the offered choices."""

QA = "qa"
"""Free-form extractive or multi-hop answer checked by normalised sub-exact match."""

TASKS: tuple[str, ...] = (NUMERIC, CHOICE, QA)

_ALIASES = {
    "math": NUMERIC,
    "docmath": NUMERIC,
    "number": NUMERIC,
    "multiple_choice": CHOICE,
    "mcq": CHOICE,
    "choices": CHOICE,
    "extractive": QA,
    "multihop": QA,
    "multi_hop": QA,
}


class UnknownTaskError(InputError):
    """A task label outside :data:`TASKS` and its aliases."""


def normalize_task(label: str) -> str:
    """Canonical task label; raises :class:`UnknownTaskError` naming the allowed labels."""
    key = str(label).strip().lower().replace("-", "_")
    if key in TASKS:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    raise UnknownTaskError(f"unknown task {label!r}; use one of {', '.join(TASKS)}")


def task_from_data_source(data_source: str) -> str:
    """The QwenLong routing: ``docmath*`` is numeric, ``long_toc_choices*`` is choice, the rest QA."""
    source = str(data_source or "").lower()
    if source.startswith("docmath"):
        return NUMERIC
    if source.startswith("long_toc_choices") or "choice" in source:
        return CHOICE
    return QA


def task_of(data_source: str, extra_info: Mapping[str, Any] | None = None) -> str:
    """Task of one sample: ``extra_info["task"]`` when present and known, else from ``data_source``."""
    if extra_info:
        label = extra_info.get("task")
        if label:
            try:
                return normalize_task(label)
            except UnknownTaskError:
                pass
    return task_from_data_source(data_source)
