"""Turn a recipe phase into the exact veRL config and arguments, validated by veRL itself.

For each phase its kind (:mod:`qwenlong_verl.driver.kinds`) gives the overrides; the config is composed as veRL's
entry point composes it (:mod:`~qwenlong_verl.driver.compose`), then the kind checks it — veRL's own
``validate_config`` and what veRL only finds at run time. No GPU and no weights are needed, so a broken recipe
fails on a laptop. A plan carries veRL's arguments without the program that runs them: ``plan`` prints them
after the kind's default program, ``train`` puts its launcher in front. A merge step composes no veRL config: its
plan is the merge's inputs and arguments (:mod:`qwenlong_verl.driver.kinds.merge`).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from qwenlong_verl.driver import layout
from qwenlong_verl.driver.compose import PlanError
from qwenlong_verl.driver.data.tokenizer import check_prepared
from qwenlong_verl.driver.kinds import PhaseKind, kind_of
from qwenlong_verl.driver.kinds.base import OutputOf
from qwenlong_verl.driver.recipe import MergeStepConfig, PhaseConfig, RecipeConfig

__all__ = ["PhasePlan", "PlanError", "plan_phase", "plan_recipe"]


@dataclass
class PhasePlan:
    """Everything needed to launch one phase."""

    index: int
    phase: PhaseConfig | MergeStepConfig
    kind: PhaseKind
    overrides: list[str]
    args: list[str]
    """veRL's arguments: ``--config-path=…``, ``--config-name=…`` and the overrides."""
    program: list[str]
    """The kind's default command for :attr:`args` (``python -m verl.trainer.main_ppo``, ``torchrun …``)."""
    config: Any = None
    """The composed veRL config (a merge step: its :class:`~qwenlong_verl.driver.merge.MergeSpec`)."""
    notes: list[str] = field(default_factory=list)
    """Facts ``plan`` prints under the command (what was checked, where the output goes)."""

    @property
    def command(self) -> list[str]:
        return [*self.program, *self.args]

    @property
    def command_line(self) -> str:
        return " ".join(shlex.quote(part) for part in self.command)


def plan_phase(
    recipe: RecipeConfig,
    index: int,
    model_path: str | None = None,
    check: bool = True,
    output_of: OutputOf | None = None,
) -> PhasePlan:
    """Compose (and by default validate) one phase; raises :class:`PlanError` naming phase and key.

    ``model_path``: the model the phase starts from (default: the recipe's); ``output_of``: phase index -> its
    output model, for a merge step's inputs (default: where each phase writes it)."""
    phase = recipe.phases[index]
    kind = kind_of(recipe, index)
    try:
        composed = kind.compose(recipe, index, model_path, output_of or partial(planned_output, recipe), check)
    except PlanError as exc:
        raise PlanError(f"{recipe.source}: phase {index + 1} ({phase.name}): {exc}") from None
    return PhasePlan(
        index=index,
        phase=phase,
        kind=kind,
        overrides=composed.overrides,
        args=composed.args,
        program=kind.program(recipe, composed.config),
        config=composed.config,
        notes=composed.notes,
    )


def planned_output(recipe: RecipeConfig, index: int) -> str:
    """Where phase ``index`` writes its output model (the next phase's model)."""
    return str(kind_of(recipe, index).output_model_path(recipe, index))


def plan_recipe(recipe: RecipeConfig) -> list[PhasePlan]:
    """Plan every phase in order, each from the model the previous one will write; stops at prepared data counted
    with another tokenizer than the recipe's, and at the first phase that does not validate."""
    for folder in dict.fromkeys(
        Path(f).parent for i in recipe.data_phases() for f in layout.own_train_files(recipe, i)
    ):
        check_prepared(folder, recipe.data_tokenizer, recipe.source)
    return [
        plan_phase(recipe, i, model_path=planned_output(recipe, i - 1) if i else None)
        for i in range(len(recipe.phases))
    ]
