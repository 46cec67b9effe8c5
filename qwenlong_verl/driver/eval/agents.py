"""How ``eval`` answers an item (``--agent``): the whole document in one request, or the memory agent reading it
in chunks.

One class per agent in one table (:data:`AGENTS`): what it checks in the settings, whether it counts tokens, what it
records in ``run.json`` (a rerun with other agent settings is refused, as other sampling settings are: the
folder would mix two experiments), its default input-length buckets, and how it draws the pending samples. Both
write one ``generations.jsonl`` row per sample (id, k), so scoring, rating, resume and the report read either.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from qwenlong_verl.driver.eval.benchmarks import EvalItem
from qwenlong_verl.driver.eval.generate import GenerationStats, SampleRequest, generate
from qwenlong_verl.driver.eval.scoring import DEFAULT_LENGTH_EDGES
from qwenlong_verl.driver.eval.store import EvalFolder
from qwenlong_verl.driver.eval.truncate import FittedPrompt, fit_prompts, messages_of

if TYPE_CHECKING:
    from qwenlong_verl.worker.agent.episode import Budgets

EvalConfig = Any
"""An :class:`~qwenlong_verl.driver.eval.runner.EvalConfig` (the runner imports this table, not the reverse)."""

FULL_CONTEXT, MEMORY_AGENT = "full", "memory"

MEMORY_LENGTH_EDGES = (32768, 131072, 524288, 1048576, 2097152, 4194304)
"""Input-length buckets of a memory-agent run: <32K, 32–128K, 128–512K, 512K–1M, 1–2M, 2–4M, >4M tokens."""

MEMORY_FIELDS = ("chunk_tokens", "memory_tokens", "plan_tokens", "max_chunks", "update_tokens", "answer_tokens")
"""The :class:`~qwenlong_verl.driver.eval.runner.EvalConfig` fields of the memory agent (``MemoryConfig``'s names)."""

OnRow = Callable[[dict[str, Any]], None]

PLACEHOLDER = "document"
"""Stands in for the document when the template around it is counted."""


class FullContext:
    """One request per sample with the (``--max-input-tokens`` middle-truncated) document: the default."""

    name = FULL_CONTEXT
    length_edges = DEFAULT_LENGTH_EDGES

    def problems(self, config: EvalConfig) -> list[str]:
        return []

    def counts_tokens(self, config: EvalConfig) -> bool:
        return config.max_input_tokens is not None

    def settings(self, config: EvalConfig) -> dict[str, Any]:
        return {"name": self.name}

    def fit(self, items: Sequence[EvalItem], tokenizer, config: EvalConfig) -> list[FittedPrompt]:
        """Each item's prompt, middle-truncated to ``--max-input-tokens`` (and counted) when a tokenizer is given."""
        kwargs = config.generation.extra_body.get("chat_template_kwargs")
        return fit_prompts(items, tokenizer, config.max_input_tokens, kwargs)

    async def sample(
        self,
        config: EvalConfig,
        folder: EvalFolder,
        rows: Mapping[str, Mapping[str, Any]],
        requests: list[SampleRequest],
        on_row: OnRow,
    ) -> GenerationStats:
        return await generate(requests, config.generation, on_row)


class MemoryAgent:
    """QwenLong-L1.5's memory agent (:mod:`qwenlong_verl.driver.eval.memory`): K memory updates + 1 answer per
    sample, any document length, the whole document read."""

    name = MEMORY_AGENT
    length_edges = MEMORY_LENGTH_EDGES

    def budgets(self, config: EvalConfig) -> Budgets:
        """The trajectory's budgets; update and answer budgets of 0 are ``--max-tokens``."""
        from qwenlong_verl.worker.agent.episode import Budgets

        return Budgets.resolve(config, config.generation.max_tokens)

    def problems(self, config: EvalConfig) -> list[str]:
        from qwenlong_verl.worker.agent.episode import BudgetError

        problems = []
        if config.max_input_tokens is not None:
            problems.append(
                "--max-input-tokens cuts the document of a full-context prompt; the memory agent reads all of it in "
                "chunks of --chunk-tokens: drop --max-input-tokens (or bound the reading with --max-chunks)"
            )
        try:
            self.budgets(config)
        except BudgetError as exc:
            problems.append(f"--{exc.name.replace('_', '-')} must be an integer >= {exc.least}, got {exc.value!r}")
        return problems

    def counts_tokens(self, config: EvalConfig) -> bool:
        return True  # chunks are token spans

    def fit(self, items: Sequence[EvalItem], tokenizer, config: EvalConfig) -> list[FittedPrompt]:
        """Each item's full-context prompt (the agent splits it into document, q_core and q_inst, as training splits a
        prepared row), never truncated, counted as the template around the document plus the document's tokens
        (``Tokens.encode_document``: a 4M-token document in pieces, not through the chat template whole)."""
        from qwenlong_verl.driver.data.template import count_prompt_tokens
        from qwenlong_verl.worker.agent.episode import Tokens

        tokens = Tokens.of(tokenizer)
        kwargs = config.generation.extra_body.get("chat_template_kwargs")
        out = []
        for item in items:
            frame = count_prompt_tokens(messages_of(item, PLACEHOLDER), tokenizer, kwargs) - len(
                tokens.encode(PLACEHOLDER)
            )
            count = frame + len(tokens.encode_document(str(item.document or "").strip()))
            out.append(FittedPrompt(messages_of(item), count, count, False))
        return out

    def tokenizer_name(self, config: EvalConfig) -> str:
        return config.tokenizer or config.generation.model

    def settings(self, config: EvalConfig) -> dict[str, Any]:
        return {
            "name": self.name,
            **{key: getattr(config, key) for key in MEMORY_FIELDS},
            "tokenizer": self.tokenizer_name(config),
        }

    async def sample(
        self,
        config: EvalConfig,
        folder: EvalFolder,
        rows: Mapping[str, Mapping[str, Any]],
        requests: list[SampleRequest],
        on_row: OnRow,
    ) -> GenerationStats:
        from qwenlong_verl.driver.data.tokenizer import load_tokenizer
        from qwenlong_verl.driver.eval.memory import Checkpoints, generate_trajectories
        from qwenlong_verl.worker.agent.episode import Tokens

        tokens = Tokens.of(load_tokenizer(self.tokenizer_name(config)))  # cached: the one load() counted with
        shas = {item_id: str(row.get("prompt_sha", "")) for item_id, row in rows.items()}
        return await generate_trajectories(
            requests, config.generation, self.budgets(config), tokens, Checkpoints(folder.trajectories), shas, on_row
        )


AGENTS: dict[str, FullContext | MemoryAgent] = {agent.name: agent for agent in (FullContext(), MemoryAgent())}
"""``--agent`` name -> the agent."""
