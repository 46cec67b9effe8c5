"""Phase kinds, one class each; :data:`PHASE_KINDS` maps a recipe's ``kind:`` to its kind object."""

from __future__ import annotations

from qwenlong_verl.driver.kinds.base import PhaseKind
from qwenlong_verl.driver.kinds.rl import RLPhase
from qwenlong_verl.driver.kinds.sft import SFTPhase

PHASE_KINDS: dict[str, PhaseKind] = {kind.name: kind for kind in (RLPhase(), SFTPhase())}


def kind_of(recipe) -> PhaseKind:
    """The phase kind of a (validated) recipe."""
    return PHASE_KINDS[recipe.kind]


__all__ = ["PHASE_KINDS", "PhaseKind", "kind_of"]
