"""The smallest valid one-phase RL recipe, as a mapping the tests vary."""

from __future__ import annotations

from typing import Any


def one_phase_recipe(
    name: str = "t",
    model_path: str = "/models/tiny",
    max_prompt_length: int = 1000,
    max_response_length: int = 2048,
    **overrides: Any,
) -> dict[str, Any]:
    """A recipe on one GPU, batch 8, mini-batch 4, two steps over ``a.parquet``; ``overrides`` are veRL keys."""
    return {
        "name": name,
        "model_path": model_path,
        "overrides": {
            "trainer.n_gpus_per_node": 1,
            "data.train_batch_size": 8,
            "actor_rollout_ref.actor.ppo_mini_batch_size": 4,
            **overrides,
        },
        "phases": [
            {
                "name": "p1",
                "max_prompt_length": max_prompt_length,
                "max_response_length": max_response_length,
                "total_training_steps": 2,
                "train_files": ["a.parquet"],
            }
        ],
    }
