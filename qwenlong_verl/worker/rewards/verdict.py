"""What a rule verifier returns, and the verifier's signature: the leaf every verifier module imports."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


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
