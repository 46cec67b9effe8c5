"""Names of the reward settings: keyword arguments and environment variables (cheap to import).

Only names live here; :meth:`qwenlong_verl.worker.rewards.judge.JudgeConfig.from_kwargs` is the one place
that checks a mapping of reward kwargs against them.
"""

from __future__ import annotations

JUDGE_KWARG_NAMES = (
    "judge_urls",
    "judge_model",
    "judge_max_concurrency",
    "judge_timeout_s",
    "judge_budget_s",
    "judge_max_retries",
    "judge_backoff_s",
    "judge_cache_size",
    "judge_enable",
    "judge_max_tokens",
    "judge_api_key",
    "judge_max_answer_chars",
    "judge_max_question_chars",
)
"""Judge settings accepted as reward kwargs; each is ``judge_<field>`` of
:class:`qwenlong_verl.worker.rewards.judge.JudgeConfig`."""

PASSED_BY_VERL = frozenset({"reward_router_address", "reward_model_tokenizer"})
"""Keyword arguments veRL itself adds to ``compute_score`` calls when it serves a reward model."""

MANAGER_KEYS = ("overlong_buffer_cfg", "max_resp_len", "format_penalty")
"""Keys of ``reward.reward_kwargs`` read by the ``qwenlong`` reward manager besides the judge settings."""


def judge_kwargs(urls=None, model=None, timeout_s=None, max_concurrency=None, enable=None) -> dict:
    """Reward kwargs for the judge settings a caller gave; unset ones are left out, so the scorer's defaults
    and the environment fallbacks below apply (one mapping for the ``score``, ``eval`` and ``demo`` commands)."""
    given = {
        "judge_urls": list(urls) if urls else None,
        "judge_model": model or None,
        "judge_timeout_s": timeout_s,
        "judge_max_concurrency": max_concurrency,
        "judge_enable": enable,
    }
    return {key: value for key, value in given.items() if value is not None}


ENV_URLS = "QWENLONG_JUDGE_URLS"
ENV_MODEL = "QWENLONG_JUDGE_MODEL"
ENV_API_KEY = "QWENLONG_JUDGE_API_KEY"
