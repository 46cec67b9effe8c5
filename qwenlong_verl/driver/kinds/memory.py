"""The Memory-RL phase kind (``kind: memory``, QwenLong-L1.5 §2.3): an RL phase whose rollouts are the memory agent.

The run is an RL phase's (``main_ppo`` in our trainer mode, resumed and handed over the same way); what differs is
derived from the phase's memory keys: veRL's agent loop becomes ``qwenlong_memory``, the ``qwenlong.memory``
section gets the budgets, the windows are one step's (a chunk, the memory, the plan and the question in; a new
memory or the answer out), and veRL keeps documents longer than a step's prompt, which the agent reads chunk by
chunk (which documents the phase gets is its ``max_input_tokens``). The agent checks its budgets against the
windows when it starts; ``plan`` runs the same check first.
"""

from __future__ import annotations

from typing import Any

from qwenlong_verl.common.names import MEMORY_AGENT_LOOP
from qwenlong_verl.driver.compose import PlanError
from qwenlong_verl.driver.kinds.rl import RLPhase
from qwenlong_verl.driver.recipe import AGENT_LOOP_KEY, MEMORY_FIELDS, MEMORY_SECTION, OVERLONG_FILTER_KEY, RecipeConfig


class MemoryPhase(RLPhase):
    name = "memory"

    def derived(self, recipe: RecipeConfig, index: int, model_path: str) -> dict[str, Any]:
        phase = recipe.phases[index]
        derived = super().derived(recipe, index, model_path)
        derived[AGENT_LOOP_KEY] = MEMORY_AGENT_LOOP
        derived[OVERLONG_FILTER_KEY] = False
        derived.update({f"{MEMORY_SECTION}.{name}": getattr(phase, name) for name in MEMORY_FIELDS})
        return derived

    def validate(self, recipe: RecipeConfig, index: int, config) -> list[str]:
        from qwenlong_verl.worker.agent.config import MemoryConfig
        from qwenlong_verl.worker.sections import qwenlong_section

        notes = super().validate(recipe, index, config)
        rollout = config.actor_rollout_ref.rollout
        memory = qwenlong_section(config, MEMORY_SECTION.rpartition(".")[2], MemoryConfig)
        problems = memory.budget_problems(int(rollout.prompt_length), int(rollout.response_length))
        if problems:
            raise PlanError("; ".join(problems))
        phase = recipe.phases[index]
        notes.append(
            f"memory agent: inputs up to {phase.max_input_tokens:,} tokens read in at most {phase.max_chunks} chunks "
            f"of {phase.chunk_tokens:,}, memory {phase.memory_tokens:,}; one step {rollout.prompt_length:,} tokens in, "
            f"{rollout.response_length:,} out"
        )
        return notes

    def table_cells(self, recipe: RecipeConfig, index: int, config) -> tuple[str, str, str, list[str]]:
        window, output, length, files = super().table_cells(recipe, index, config)
        phase = recipe.phases[index]
        return f"{window} ({phase.max_chunks} x {phase.chunk_tokens:,})", output, length, files
