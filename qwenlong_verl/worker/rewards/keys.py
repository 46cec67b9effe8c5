"""Names of the reward settings: keyword arguments and environment variables (cheap to import).

Only names live here; :meth:`qwenlong_verl.worker.rewards.judge.JudgeConfig.from_kwargs` is the one place
that checks a mapping of reward kwargs against them.
"""

from __future__ import annotations

from typing import Any

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
    "judge_prompt",
    "judge_max_tokens",
    "judge_reasoning_effort",
    "judge_chat_template_kwargs",
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


CLI_JUDGE_FIELDS = {
    "judge_urls": "judge_urls",
    "judge_model": "judge_model",
    "judge_timeout_s": "judge_timeout_s",
    "judge_concurrency": "judge_max_concurrency",
    "judge_prompt": "judge_prompt",
    "judge_max_tokens": "judge_max_tokens",
    "judge_reasoning_effort": "judge_reasoning_effort",
    "judge_chat_template_kwargs": "judge_chat_template_kwargs",
}
"""The judge settings the ``score``, ``eval`` and ``demo`` commands take (field of their config -> reward kwarg)."""


def judge_kwargs(settings: Any, enable: bool | None = None) -> dict:
    """Reward kwargs for the judge settings a command was given (an object with the :data:`CLI_JUDGE_FIELDS`
    attributes); unset ones (None, empty) are left out, so the scorer's defaults and the environment
    fallbacks below apply. ``enable=False``: rules only."""
    given = {kwarg: getattr(settings, name) for name, kwarg in CLI_JUDGE_FIELDS.items()}
    given["judge_enable"] = enable
    if given["judge_urls"]:
        given["judge_urls"] = list(given["judge_urls"])
    if given["judge_chat_template_kwargs"]:
        given["judge_chat_template_kwargs"] = dict(given["judge_chat_template_kwargs"])
    return {key: value for key, value in given.items() if value is not None and value != "" and value != []}


ENV_URLS = "QWENLONG_JUDGE_URLS"
ENV_MODEL = "QWENLONG_JUDGE_MODEL"
ENV_API_KEY = "QWENLONG_JUDGE_API_KEY"
