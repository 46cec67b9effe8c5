"""The RL phase kind: one ``python -m verl.trainer.main_ppo`` run per phase in our trainer mode.

Its model is handed to the next phase by veRL's model merger (the final actor checkpoint into a Hugging Face
folder, :func:`~qwenlong_verl.driver.layout.merged_model_dir`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qwenlong_verl.driver import checks, layout
from qwenlong_verl.driver.kinds.base import PhaseKind
from qwenlong_verl.driver.recipe import RecipeConfig

PPO_MODULE = "verl.trainer.main_ppo"


class RLPhase(PhaseKind):
    name = "rl"

    def derived(self, recipe: RecipeConfig, index: int, model_path: str) -> dict[str, Any]:
        phase = recipe.phases[index]
        derived: dict[str, Any] = {
            "actor_rollout_ref.model.path": model_path,
            "data.train_files": layout.train_files(recipe, index),
            "data.val_files": layout.val_files(recipe, index),
            "data.max_prompt_length": phase.max_prompt_length,
            "data.max_response_length": phase.max_response_length,
            "trainer.experiment_name": f"{recipe.name}-{phase.name}",
            "trainer.default_local_dir": str(layout.checkpoint_dir(recipe, index)),
        }
        if phase.total_training_steps is not None:
            derived["trainer.total_training_steps"] = phase.total_training_steps
        else:
            derived["trainer.total_epochs"] = phase.total_epochs
        derived.update(layout.curriculum_overrides(recipe, index))
        return derived

    def validate(self, recipe: RecipeConfig, index: int, config) -> list[str]:
        checks.validate(config)
        checks.check_batch_shapes(config)
        checks.check_sequence_budget(config)
        checks.check_remove_padding(config)
        checks.check_node_resources(config)
        checks.validate_qwenlong_sections(config)
        checks.check_algorithm_stages(config)
        checks.check_reward_settings(config)
        checks.check_dynamic_sampling(config)
        return batch_notes(recipe, index, config)

    def program(self, recipe: RecipeConfig, config) -> list[str]:
        return ["python", "-m", PPO_MODULE]

    def resume_args(self) -> list[str]:
        return ["trainer.resume_mode=auto"]

    def train_problems(self, config) -> list[str]:
        problems = super().train_problems(config)
        if config.actor_rollout_ref.actor.checkpoint.get("async_save", False):
            problems.append(
                f"actor checkpoint.async_save=true makes veRL skip {layout.TRACKER_FILE}, which resuming and the "
                "hand-over read; turn it off"
            )
        return problems

    def preflight(self, config) -> str | None:
        return checks.launch_problem(config)

    def model_path(self, recipe: RecipeConfig, config) -> str:
        return str(config.actor_rollout_ref.model.path)

    def data_files(self, recipe: RecipeConfig, index: int) -> tuple[list[str], list[str]]:
        return list(layout.train_files(recipe, index)), list(layout.val_files(recipe, index))

    def builds_data(self, recipe: RecipeConfig) -> bool:
        return True

    def merge_source(self, config, final_step: int) -> Path | None:
        return Path(config.trainer.default_local_dir) / f"global_step_{final_step}" / "actor"

    def output_model_path(self, recipe: RecipeConfig, index: int) -> Path:
        return layout.merged_model_dir(recipe, index)


def batch_notes(recipe: RecipeConfig, index: int, config) -> list[str]:
    """What one step trains on and what the phase carries: the facts a paper's setup is checked against (the
    L1.5 report trains "purely on-policy": one gradient update per batch of 128 prompts x 8 rollouts)."""
    import math

    actor = config.actor_rollout_ref.actor
    batch, mini = int(config.data.train_batch_size), int(actor.ppo_mini_batch_size)
    updates = int(actor.ppo_epochs) * math.ceil(batch / mini)
    shape = "on-policy" if updates == 1 else "each update after the first is off the sampling policy"
    notes = [
        f"batch: {batch} prompts x {config.actor_rollout_ref.rollout.n} rollouts; {updates} gradient "
        f"update{'s' if updates != 1 else ''} per batch (mini-batch {mini} prompts, {actor.ppo_epochs} "
        f"epoch{'s' if actor.ppo_epochs != 1 else ''}: {shape})"
    ]
    retro = recipe.phases[index].retrospective
    if retro is not None:
        sources = ", ".join(recipe.phases[j].name for j in recipe.carry_sources(index))
        notes.append(
            f"retrospective: carries {retro.ratio:g} x its own examples from {sources}, drawn "
            f"{'by difficulty' if retro.weighting == 'difficulty' else 'uniformly'} from their ledgers"
            f"{', solved ones dropped' if retro.drop_solved else ''}"
        )
    return notes
