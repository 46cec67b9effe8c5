"""The memory agent (QwenLong-L1.5 §2.3, after MemAgent) as a veRL 0.9.1 agent loop, registered as ``qwenlong_memory``.

One trajectory reads a document of any length through a window of fixed size::

    split the row into document, q_core, q_inst                      (query.split_query)
    x_1 … x_K = the document in chunks of chunk_tokens tokens       (chunks.ChunkSchedule)
    for t = 1 … K:  (m_{t-1}, p_{t-1}, x_t, q_core) -> m_t, p_t      one generation; m_t, p_t cut to their budgets
    answer:         (m_K, q_core, q_inst)           -> the reply      one generation, scored by the reward manager

The steps are :func:`~qwenlong_verl.worker.agent.episode.run_episode`, shared with ``eval``; this class gives it
veRL's generation and keeps each generation's tokens as one :class:`AgentLoopOutput`.

Select it with ``actor_rollout_ref.rollout.agent.default_agent_loop=qwenlong_memory`` (or a row's ``agent_name``);
budgets in ``qwenlong.memory`` (:class:`~qwenlong_verl.worker.agent.config.MemoryConfig`).

Why this is the whole integration, and nothing of veRL is copied or patched. veRL 0.9.1's v1 trainer already
treats an agent loop that returns ``list[AgentLoopOutput]`` as one trajectory of several training sequences:

* ``AgentLoopWorkerTQ._agent_loop_postprocess`` stores each output under its own TransferQueue key
  ``{uid}_{session}_{i}``, scores the *last* one (our ``qwenlong`` reward manager reads only the last sequence it
  is handed) and copies that reward and its ``reward_extra_info`` to the others;
* each key is one row of the actor update, so each generation is trained once, as its own short sequence
  (prompt = its own context, response = only what it generated), never as one long concatenation;
* ``compute_advantage_for_multi_trajectories`` computes ``grpo`` on final outputs and broadcasts the advantage to
  every output of the trajectory; the ``qwenlong`` trainer mode does the same for ``grpo_task_norm`` and counts a
  trajectory once in the difficulty ledger (:mod:`~qwenlong_verl.worker.agent.turns`).

So the memory agent is an agent loop (this module) plus trainer-mode stages that count trajectories, not rows.
MemAgent forked veRL 0.2 to get the same; here veRL's own registry and output list carry it. What each output
records for the ``qwenlong/memory_*`` metrics: :mod:`~qwenlong_verl.worker.agent.record`.

Imported by the plugin when veRL imports ``verl.experimental.agent_loop`` (agent-loop workers and the trainer).
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, register
from verl.utils.profiler import simple_timer
from verl.utils.rollout_trace import rollout_trace_op

from qwenlong_verl.common.names import MEMORY_AGENT_LOOP
from qwenlong_verl.worker.agent.config import MemoryConfig
from qwenlong_verl.worker.agent.episode import Budgets, Tokens, run_episode
from qwenlong_verl.worker.agent.query import MemoryRowError, split_query
from qwenlong_verl.worker.agent.record import MEMORY_FIELD
from qwenlong_verl.worker.sections import qwenlong_section


@register(MEMORY_AGENT_LOOP)
class MemoryAgentLoop(AgentLoopBase):
    """K memory updates over the chunks of a document, then the answer; one training sequence per generation."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.settings: MemoryConfig = qwenlong_section(self.config, "memory", MemoryConfig)
        self.prompt_length = int(self.rollout_config.prompt_length)
        self.response_length = int(self.rollout_config.response_length)
        problems = self.settings.budget_problems(self.prompt_length, self.response_length)
        if problems:
            raise ValueError("; ".join(problems))
        self.tokens = Tokens.of(self.tokenizer)

    # ------------------------------------------------------------------ the trajectory

    @rollout_trace_op
    async def run(self, sampling_params: dict[str, Any], **kwargs) -> list[AgentLoopOutput]:
        query = split_query(kwargs.get("raw_prompt"), kwargs.get("extra_info"))
        request_id = uuid4().hex  # one id per trajectory: veRL routes its generations to the same server
        outputs: list[AgentLoopOutput] = []

        async def generate(messages: list[dict[str, str]], max_tokens: int, step: int) -> str:
            output, reply = await self._generate(messages, sampling_params, max_tokens, request_id, kwargs)
            outputs.append(output)  # each generation its own training sequence, in trajectory order
            return reply

        episode = await run_episode(query, generate, self.tokens, Budgets.resolve(self.settings, self.response_length))
        for output, record in zip(outputs, episode.record_dicts(), strict=True):
            output.extra_fields[MEMORY_FIELD] = record
        return outputs

    async def _generate(
        self,
        messages: list[dict[str, str]],
        sampling_params: dict[str, Any],
        max_tokens: int,
        request_id: str,
        row: dict[str, Any],
    ) -> tuple[AgentLoopOutput, str]:
        """One generation as its own training sequence: (output, decoded reply)."""
        prompt_ids = await self.loop.run_in_executor(
            None, lambda: self.continuous_token_builder.build_initial_tokens(messages)
        )
        if len(prompt_ids) > self.prompt_length:  # veRL would cut the prompt's head silently
            info = row.get("extra_info") if isinstance(row.get("extra_info"), dict) else {}
            raise MemoryRowError(
                f"row extra_info.index={info.get('index')!r}: a memory-agent prompt of {len(prompt_ids)} tokens "
                f"exceeds rollout.prompt_length {self.prompt_length} (question of the row + qwenlong.memory "
                "chunk/memory/plan budgets); lower qwenlong.memory.chunk_tokens or raise data.max_prompt_length"
            )
        metrics: dict[str, Any] = {}
        with simple_timer("generate_sequences", metrics):
            generated = await self.server_manager.generate(
                request_id=request_id,
                prompt_ids=prompt_ids,
                sampling_params={**sampling_params, "max_tokens": min(max_tokens, self.response_length)},
            )
        metrics["num_preempted"] = generated.num_preempted if generated.num_preempted is not None else -1
        merged, response_mask, response_logprobs = await self.ct_merge_assistant_token(
            prompt_ids,
            generated.token_ids,
            [],
            [] if generated.log_probs else None,
            assistant_logprobs=generated.log_probs or None,
        )
        response_ids = merged.token_ids[len(merged.token_ids) - len(response_mask) :] if response_mask else []
        prompt_ids = merged.token_ids[: len(merged.token_ids) - len(response_mask)]
        limit = self.response_length
        output = AgentLoopOutput(
            prompt_ids=prompt_ids,
            response_ids=response_ids[:limit],
            response_mask=response_mask[:limit],
            response_logprobs=response_logprobs[:limit] if response_logprobs else None,
            routed_experts=(
                generated.routed_experts[: len(prompt_ids) + limit] if generated.routed_experts is not None else None
            ),
            num_turns=2,
            metrics=metrics,
            extra_fields=dict(generated.extra_fields or {}),
        )
        reply = await self.loop.run_in_executor(None, self.tokens.decode, output.response_ids)
        return output, reply
