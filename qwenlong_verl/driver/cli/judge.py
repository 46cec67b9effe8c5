"""The judge options of ``score``, ``eval`` and ``demo``, declared once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qwenlong_verl.driver.cli.args import Flag


def _prompt_name(text: str) -> str:
    from qwenlong_verl.worker.rewards.judge_prompts import judge_prompt

    judge_prompt(text)  # InputError is a ValueError: argparse shows its message
    return text


def _reasoning_effort(text: str) -> str:
    from qwenlong_verl.worker.rewards.judge import REASONING_EFFORTS

    if text not in REASONING_EFFORTS:
        raise ValueError(f"choose from {', '.join(REASONING_EFFORTS)}")
    return text


JUDGE_FLAGS = {
    "judge_urls": Flag("--judge-url", metavar="URL", comma=True),
    "judge_model": Flag(metavar="NAME"),
    "judge_timeout_s": Flag("--judge-timeout", metavar="S"),
    "judge_concurrency": Flag("--judge-concurrency", metavar="N"),
    "judge_prompt": Flag(metavar="PRESET", parse=_prompt_name),
    "judge_max_tokens": Flag(metavar="N"),
    "judge_reasoning_effort": Flag(metavar="LEVEL", parse=_reasoning_effort),
}
"""How the judge fields appear on every command that has them (``EvalConfig`` has the same field names)."""


@dataclass
class JudgeArgs:
    """The judge settings a command passes to the hybrid reward; unset ones keep the reward's own."""

    judge_urls: list[str] = field(default_factory=list)
    """OpenAI-compatible judge endpoints; none: ``$QWENLONG_JUDGE_URLS``, else rules only."""

    judge_model: str | None = None
    """Judge model name (default: $QWENLONG_JUDGE_MODEL, else the first model the endpoint lists)."""

    judge_timeout_s: float | None = None
    """Timeout of one judge request in seconds."""

    judge_concurrency: int | None = None
    """Judge requests in flight per endpoint."""

    judge_prompt: str | None = None
    """Judge prompt preset: strict (ours, the reward's default) or the QwenLong papers' qwenlong_l1 /
    qwenlong_l15 (docs/rewards.md)."""

    judge_max_tokens: int | None = None
    """Judge reply budget in tokens (default: the preset's; 4096 for a reasoning judge)."""

    judge_reasoning_effort: str | None = None
    """reasoning_effort sent to a reasoning judge such as gpt-oss (low, medium, high)."""

    judge_chat_template_kwargs: dict[str, Any] | None = None
    """chat_template_kwargs sent to the judge, e.g. '{"enable_thinking": false}' for a Qwen3 judge."""

    def reward_kwargs(self, enable: bool | None = None) -> dict[str, Any]:
        """The reward keyword arguments for what was set (``enable=False``: rules only)."""
        from qwenlong_verl.worker.rewards.keys import judge_kwargs

        return judge_kwargs(self, enable)
