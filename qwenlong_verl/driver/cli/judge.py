"""The judge options of ``score``, ``eval`` and ``demo``, declared once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qwenlong_verl.driver.cli.args import Flag

JUDGE_FLAGS = {
    "judge_urls": Flag("--judge-url", metavar="URL", comma=True),
    "judge_model": Flag(metavar="NAME"),
    "judge_timeout_s": Flag("--judge-timeout", metavar="S"),
    "judge_concurrency": Flag("--judge-concurrency", metavar="N"),
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

    def reward_kwargs(self, enable: bool | None = None) -> dict[str, Any]:
        """The reward keyword arguments for what was set (``enable=False``: rules only)."""
        from qwenlong_verl.worker.rewards.keys import judge_kwargs

        return judge_kwargs(
            urls=self.judge_urls,
            model=self.judge_model,
            timeout_s=self.judge_timeout_s,
            max_concurrency=self.judge_concurrency,
            enable=enable,
        )
