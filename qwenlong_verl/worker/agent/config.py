"""``qwenlong.memory``: the budgets of the memory agent (:mod:`qwenlong_verl.worker.agent.memory_loop`).

The section sits in our Hydra configs with ``_target_: qwenlong_verl.worker.agent.config.MemoryConfig``, so
``qwenlong-verl plan`` instantiates it and a bad value fails on a laptop, naming the field. The budgets that span
veRL keys (a step's prompt must fit ``rollout.prompt_length``, a generation ``rollout.response_length``) are
:meth:`MemoryConfig.budget_problems`, which the agent loop checks when it starts and a planner can call.

All sizes are tokens of the policy's own tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass

from verl.base_config import BaseConfig

PROMPT_ROOM = 64
"""Tokens a memory step's prompt needs beyond chunk, memory and plan at the very least (chat template and the
fixed instructions); the question comes on top and is checked per row."""


@dataclass
class MemoryConfig(BaseConfig):
    """Budgets of the memory agent (section ``qwenlong.memory``); defaults are QwenLong-L1.5's Memory-RL stage."""

    chunk_tokens: int = 32768
    """Tokens of the document the policy reads per step (x_t). A document of n tokens is read in
    ``ceil(n / chunk_tokens)`` steps (at most :attr:`max_chunks`)."""

    memory_tokens: int = 15360
    """Budget of the memory m_t carried to the next step; a longer memory is cut to its first ``memory_tokens``
    tokens (``qwenlong/memory_truncated_share``)."""

    plan_tokens: int = 0
    """Budget of the plan p_t (what to look for in the next chunk), cut like the memory; 0 = no plan: the policy
    writes only a memory."""

    max_chunks: int = 0
    """At most this many chunks per document: a longer document keeps its first ``max_chunks`` chunks
    (``qwenlong/memory_document_cut_share``); 0 = no limit (evaluation of very long inputs)."""

    update_tokens: int = 0
    """New tokens one memory update may generate (reasoning, memory and plan); 0 = ``rollout.response_length``."""

    answer_tokens: int = 0
    """New tokens the final answer may generate; 0 = ``rollout.response_length``."""

    def __post_init__(self) -> None:
        for name, least in (
            ("chunk_tokens", 1),
            ("memory_tokens", 1),
            ("plan_tokens", 0),
            ("max_chunks", 0),
            ("update_tokens", 0),
            ("answer_tokens", 0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"qwenlong.memory.{name} must be an integer >= {least}, got {value!r}")

    def budget_problems(self, prompt_length: int, response_length: int) -> list[str]:
        """What cannot fit a rollout of ``prompt_length`` / ``response_length`` (veRL's ``rollout.prompt_length``
        and ``rollout.response_length``, i.e. ``data.max_prompt_length`` / ``data.max_response_length``)."""
        problems = []
        step = self.chunk_tokens + self.memory_tokens + self.plan_tokens
        if step + PROMPT_ROOM > prompt_length:
            problems.append(
                f"qwenlong.memory: chunk_tokens + memory_tokens + plan_tokens = {step} (+{PROMPT_ROOM} for the "
                f"template and the question) does not fit rollout.prompt_length {prompt_length} "
                "(data.max_prompt_length); lower chunk_tokens or raise data.max_prompt_length"
            )
        for name in ("update_tokens", "answer_tokens"):
            value = getattr(self, name)
            if value > response_length:
                problems.append(
                    f"qwenlong.memory.{name}={value} exceeds rollout.response_length {response_length} "
                    "(data.max_response_length); lower it or raise data.max_response_length"
                )
        return problems
