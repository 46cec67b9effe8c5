"""Phase kinds, one class each; :data:`PHASE_KINDS` maps a phase's ``kind:`` to its kind object."""

from __future__ import annotations

from qwenlong_verl.driver.kinds.base import PhaseKind
from qwenlong_verl.driver.kinds.memory import MemoryPhase
from qwenlong_verl.driver.kinds.merge import MergeStep
from qwenlong_verl.driver.kinds.rl import RLPhase
from qwenlong_verl.driver.kinds.sft import SFTPhase

PHASE_KINDS: dict[str, PhaseKind] = {kind.name: kind for kind in (RLPhase(), MemoryPhase(), MergeStep(), SFTPhase())}


def kind_of(recipe, index: int) -> PhaseKind:
    """The kind of phase ``index`` of a (validated) recipe."""
    return PHASE_KINDS[recipe.phases[index].kind]


__all__ = ["PHASE_KINDS", "PhaseKind", "kind_of"]
