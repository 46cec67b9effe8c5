"""What a phase kind is: one class per kind of phase, owning everything that differs between kinds.

A phase kind knows its veRL overrides, the program that runs them, the checks of its composed config, where its
output model lands and whether it must be merged there. :mod:`~qwenlong_verl.driver.plan` and
:mod:`~qwenlong_verl.driver.run` only ask the kind; a new kind (memory-agent RL, model merging) is a new subclass
registered in :data:`qwenlong_verl.driver.kinds.PHASE_KINDS`, not new branches.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwenlong_verl.driver import layout
from qwenlong_verl.driver.compose import check_value_types, compose, config_args, hydra_overrides
from qwenlong_verl.driver.recipe import TRACKERS, RecipeConfig

OutputOf = Callable[[int], str]
"""Phase index -> its output model (recorded by ``train``, else where the phase will write it)."""


@dataclass
class Composed:
    """What planning a phase yields before the plan is assembled: its settings, arguments, config and notes."""

    overrides: list[str]
    """What defines the run (its fingerprint): the Hydra overrides of a veRL phase, the arguments of a merge."""
    args: list[str]
    """The program's arguments."""
    config: Any
    """The composed veRL config (a merge step: its :class:`~qwenlong_verl.driver.merge.MergeSpec`)."""
    notes: list[str] = field(default_factory=list)


class PhaseKind:
    """Base of the phase kinds; subclasses set :attr:`name` and override what differs."""

    name: str = ""
    """The recipe's ``kind:`` value (the recipe format's table lists the same names)."""

    trains: bool = True
    """Launches a veRL run with checkpoints (else: produces its model in one step, :class:`MergeStep`)."""

    checked: str = "veRL config validated"
    """What ``plan`` says it checked for a phase of this kind."""

    def compose(
        self, recipe: RecipeConfig, index: int, model_path: str | None, output_of: OutputOf, check: bool = True
    ) -> Composed:
        """The phase's veRL config, composed as veRL's entry point composes it (then checked by :meth:`validate`
        when ``check``); raises :class:`~qwenlong_verl.driver.compose.PlanError`."""
        overrides = self.overrides(recipe, index, model_path=model_path)
        config = compose(recipe.base_config, overrides)
        notes = []
        if check:
            check_value_types(config, recipe.base_config)
            notes = self.validate(recipe, index, config)
        return Composed(overrides, config_args(recipe.base_config, overrides), config, notes)

    def table_cells(self, recipe: RecipeConfig, index: int, config) -> tuple[str, str, str, list[str]]:
        """``plan``'s row for the phase: input window, output window, length, the files it reads."""
        phase = recipe.phases[index]
        length = f"{phase.total_training_steps} steps" if phase.total_training_steps else f"{phase.total_epochs} epochs"
        return f"{phase.data_window:,}", f"{phase.max_response_length:,}", length, self.data_files(recipe, index)[0]

    def derived(self, recipe: RecipeConfig, index: int, model_path: str) -> dict[str, Any]:
        """veRL keys the phase derives from the recipe's own fields (before the recipe's overrides)."""
        raise NotImplementedError

    def overrides(self, recipe: RecipeConfig, index: int, model_path: str | None = None) -> list[str]:
        """The Hydra overrides of phase ``index``: derived keys, then shared overrides, then the phase's own."""
        phase = recipe.phases[index]
        derived = self.derived(recipe, index, model_path or layout.start_model_path(recipe))
        derived["trainer.logger"] = ["console"] + ([recipe.tracker] if recipe.tracker != "console" else [])
        return hydra_overrides({**derived, **recipe.overrides, **phase.overrides})

    def validate(self, recipe: RecipeConfig, index: int, config) -> list[str]:
        """Check the composed config; raise :class:`~qwenlong_verl.driver.compose.PlanError`, return notes."""
        return []

    def program(self, recipe: RecipeConfig, config) -> list[str]:
        """The command that runs veRL's arguments for this kind (without them)."""
        raise NotImplementedError

    def resume_args(self) -> list[str]:
        """Arguments ``train`` adds so a relaunch continues from veRL's last checkpoint."""
        return []

    def train_problems(self, config) -> list[str]:
        """What ``train`` needs beyond a valid config: checkpoints it can resume from and hand over, and the
        tracker's package where veRL will import it (this machine, for a one-node run)."""
        problems = []
        save_freq = config.trainer.save_freq
        if not save_freq or save_freq <= 0:
            problems.append(
                f"trainer.save_freq={save_freq}: `train` resumes from and hands over veRL checkpoints, so set "
                "trainer.save_freq > 0 (e.g. 10)"
            )
        for tracker in config.trainer.logger:
            module = TRACKERS.get(str(tracker))
            if module and importlib.util.find_spec(module) is None:
                problems.append(
                    f"tracker {tracker}: the {module} package is not installed; pip install -e '.[{tracker}]' "
                    "(or choose another tracker)"
                )
        return problems

    def preflight(self, config) -> str | None:
        """A problem with launching here and now (resources), checked just before the default launcher runs."""
        return None

    def model_path(self, recipe: RecipeConfig, config) -> str:
        """The model the phase starts from, as its config says."""
        raise NotImplementedError

    def data_files(self, recipe: RecipeConfig, index: int) -> tuple[list[str], list[str]]:
        """(train files, validation files) the phase's run reads."""
        phase = recipe.phases[index]
        return list(phase.train_files), list(phase.val_files)

    def builds_data(self, recipe: RecipeConfig) -> bool:
        """Whether ``train`` builds and checks the phase's data files before launching it."""
        return False

    def merge_source(self, config, final_step: int) -> Path | None:
        """The checkpoint to merge into :meth:`output_model_path` after training (None: nothing to merge)."""
        return None

    def output_model_path(self, recipe: RecipeConfig, index: int) -> Path:
        """The phase's output model (the next phase's ``model_path``)."""
        raise NotImplementedError
