"""QwenLong hybrid reward for veRL: rule verifiers plus an LLM judge, and the ``qwenlong`` reward manager.

Use as veRL's custom reward function::

    reward.custom_reward_function.path=pkg://qwenlong_verl.worker.rewards
    reward.custom_reward_function.name=compute_score_async      # or compute_score
    +reward.custom_reward_function.reward_kwargs.judge_urls=http://judge:8000

or as the reward manager (``reward.reward_manager.name=qwenlong``, settings in ``reward.reward_kwargs``).
See ``docs/rewards.md``.
"""

from qwenlong_verl.worker.rewards.hybrid import compute_score, compute_score_async

__all__ = ["compute_score", "compute_score_async"]
