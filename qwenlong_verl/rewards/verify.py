"""Rule verifiers: one per task label, registered by decorator, chosen by :func:`qwenlong_verl.tasks.task_of`.

A verifier takes the extracted prediction, the acceptable gold answers and the row's ``extra_info``, and
returns a :class:`RuleVerdict`. It never raises on odd text and never evaluates it. The numeric verifier may
need math-verify for LaTeX; that can be slow, so the caller says whether it may run here
(``symbolic=True``). When it may not, the verifier returns ``None`` and the caller re-runs it off the
event loop (see :mod:`qwenlong_verl.rewards.hybrid`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qwenlong_verl.tasks import TASKS


@dataclass(frozen=True)
class RuleVerdict:
    """What a rule says about one prediction."""

    score: float
    """1.0 when the prediction matches a gold answer, else 0.0."""

    judgeable: bool = True
    """False when the rule's "wrong" is final and the LLM judge must not be asked (a hedge, an option letter
    that differs from the gold letter): asking would only let a lenient judge reward it."""

    reason: str = ""
    """Short code of the deciding rule (``tolerance``, ``exact``, ``sub_em``, ``hedge``, ``letter``...)."""


Verifier = Callable[[str, Sequence[str], Mapping[str, Any], bool], "RuleVerdict | None"]
"""``(prediction, golds, extra_info, symbolic) -> RuleVerdict``, or ``None`` when ``symbolic`` is False and
only a math-verify evaluation can decide."""

VERIFIERS: dict[str, Verifier] = {}


def register_verifier(task: str) -> Callable[[Verifier], Verifier]:
    """Decorator: make ``fn`` the verifier of ``task`` (one of :data:`qwenlong_verl.tasks.TASKS`)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; verifiers exist for {', '.join(TASKS)}")

    def decorator(fn: Verifier) -> Verifier:
        if task in VERIFIERS and VERIFIERS[task] is not fn:
            raise ValueError(f"a verifier for task {task!r} is already registered: {VERIFIERS[task]}")
        VERIFIERS[task] = fn
        return fn

    return decorator


def get_verifier(task: str) -> Verifier:
    if task not in VERIFIERS:
        _load_builtin()
    try:
        return VERIFIERS[task]
    except KeyError:
        raise ValueError(f"no verifier for task {task!r}; registered: {', '.join(sorted(VERIFIERS))}") from None


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


def _load_builtin() -> None:
    from qwenlong_verl.rewards import choice, numeric, qa  # noqa: F401  (registers the three verifiers)
