"""Names both sides use: what the driver writes into a veRL config and veRL finds in its registries.

The worker side registers these names (:mod:`qwenlong_verl.worker.plugin`); the driver sets them in the configs it
composes and checks them in plans. One module, so a rename cannot split the two sides.
"""

TRAINER_MODE = "qwenlong"
"""Our v1 trainer mode (``trainer.v1.trainer_mode``): ledger, task balance, task-norm labels, entropy masking."""

TASK_NORM_ESTIMATOR = "grpo_task_norm"
"""Task-specific advantage in veRL's ``ADV_ESTIMATOR_REGISTRY`` (``algorithm.adv_estimator``)."""

MEMORY_AGENT_LOOP = "qwenlong_memory"
"""The memory agent (QwenLong-L1.5 §2.3) in veRL's agent-loop registry, selected by
``actor_rollout_ref.rollout.agent.default_agent_loop`` (or a row's ``agent_name``)."""

REWARD_MANAGER = "qwenlong"
"""Our reward manager in veRL's ``REWARD_MANAGER`` registry (``reward.reward_manager.name``)."""

ROLLOUT = "hf"
"""The CPU backend's rollout in veRL's rollout registries (``actor_rollout_ref.rollout.name``)."""

CPU_PLATFORM = "cpu"
"""``VERL_PLATFORM`` value and ``trainer.device`` of the CPU backend."""
