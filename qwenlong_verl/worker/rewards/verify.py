"""Rule verifiers: one per answer type in :data:`VERIFIERS`, chosen by :func:`qwenlong_verl.common.tasks.answer_type_of`
(the answer type, not the task label).

A verifier takes the extracted prediction, the acceptable gold answers and the row's ``extra_info``, and
returns a :class:`RuleVerdict`. It never raises on odd text and never evaluates it. The numeric verifier may
need math-verify for LaTeX; that can be slow, so the caller says whether it may run here
(``symbolic=True``). When it may not, the verifier returns ``None`` and the caller re-runs it off the
event loop (see :mod:`qwenlong_verl.worker.rewards.hybrid`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qwenlong_verl.common.tasks import CHOICE, NUMERIC, QA
from qwenlong_verl.worker.rewards.choice import verify_choice
from qwenlong_verl.worker.rewards.numeric import verify_numeric
from qwenlong_verl.worker.rewards.qa import verify_qa
from qwenlong_verl.worker.rewards.verdict import RuleVerdict, Verifier

__all__ = ["VERIFIERS", "RuleVerdict", "get_verifier", "verify"]

VERIFIERS: dict[str, Verifier] = {NUMERIC: verify_numeric, CHOICE: verify_choice, QA: verify_qa}
"""Task label -> its verifier; a new verifier is a new entry here."""


def get_verifier(task: str) -> Verifier:
    try:
        return VERIFIERS[task]
    except KeyError:
        raise ValueError(f"no verifier for task {task!r}; have {', '.join(sorted(VERIFIERS))}") from None


def verify(
    task: str,
    prediction: str,
    golds: Sequence[str],
    extra_info: Mapping[str, Any] | None = None,
    *,
    symbolic: bool = True,
) -> RuleVerdict | None:
    """Rule verdict of ``prediction`` against ``golds`` for ``task``; empty prediction or golds score 0."""
    if not prediction or not golds:
        return RuleVerdict(0.0, judgeable=False, reason="empty")
    return get_verifier(task)(prediction, golds, extra_info or {}, symbolic)
