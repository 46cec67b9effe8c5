"""One memory-agent trajectory (QwenLong-L1.5 §2.3) as a plain async function, so training and evaluation run the
very same steps::

    ids   = the document, tokenized once                      (or ids the caller already has)
    x_1 … x_K = slices of ids, chunk_tokens each               (chunks.ChunkSchedule)
    for t = 1 … K:  generate(update_messages(q_core, x_t, m_{t-1}, p_{t-1}), update_tokens, t)
                    -> parse_update -> m_t, p_t cut to their budgets (chunks.cap_to_budget)
    generate(answer_messages(q_core, q_inst, m_K), answer_tokens, K + 1)  -> the answer

What generates is the caller's: the veRL agent loop wraps its server manager (and keeps each generation's token ids
for training), ``eval --agent memory`` wraps the OpenAI client. A caller may checkpoint a trajectory after each
memory update (``on_step``) and resume it there (``state``): a 4M-token document is 124 generations in a row.

Imports neither veRL nor torch: the eval side runs it without them.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qwenlong_verl.worker.agent.chunks import Capped, ChunkSchedule, cap_to_budget
from qwenlong_verl.worker.agent.prompts import answer_messages, parse_update, update_messages
from qwenlong_verl.worker.agent.query import MemoryQuery
from qwenlong_verl.worker.agent.record import ANSWER_ROLE, MEMORY_ROLE

DEFAULT_CHUNK_TOKENS = 32768
"""QwenLong-L1.5's Memory-RL chunk (x_t), in tokens."""
DEFAULT_MEMORY_TOKENS = 15360
"""QwenLong-L1.5's Memory-RL memory budget (m_t), in tokens."""

Messages = list[dict[str, str]]
Generate = Callable[[Messages, int, int], Awaitable[str]]
"""``generate(messages, max_tokens, step) -> reply text``: one generation; ``step`` is 1 … K for the memory updates
and K + 1 for the answer (an evaluation names its requests by it; training ignores it). What it raises ends the
trajectory and reaches the caller."""

EMPTY = Capped(text="", tokens=0, truncated=False)

PIECE_CHARS = 1 << 18
"""Characters per piece when a document is tokenized (:meth:`Tokens.encode_document`)."""
PIECES_AT_ONCE = 8
"""Pieces handed to the tokenizer in one batch (a fast tokenizer encodes a batch on all cores)."""


class BudgetError(ValueError):
    """A budget out of range; :attr:`name` is the field."""

    def __init__(self, name: str, least: int, value: Any):
        super().__init__(f"{name} must be an integer >= {least}, got {value!r}")
        self.name, self.least, self.value = name, least, value


@dataclass(frozen=True)
class Budgets:
    """The sizes of one trajectory, in tokens of the policy's tokenizer, with the generation budgets resolved."""

    update_tokens: int
    """New tokens one memory update may generate."""
    answer_tokens: int
    """New tokens the answer may generate."""
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS
    memory_tokens: int = DEFAULT_MEMORY_TOKENS
    plan_tokens: int = 0
    """0 = no plan: a step writes only a memory."""
    max_chunks: int = 0
    """At most this many chunks (the first ones); 0 = the whole document."""

    def __post_init__(self) -> None:
        for name, least in LEAST.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise BudgetError(name, least, value)

    @classmethod
    def resolve(cls, settings: Any, response_length: int) -> Budgets:
        """From anything with :class:`~qwenlong_verl.worker.agent.config.MemoryConfig`'s fields (``qwenlong.memory``,
        or eval's settings), where an update or answer budget of 0 means ``response_length``."""
        return cls(
            update_tokens=settings.update_tokens or response_length,
            answer_tokens=settings.answer_tokens or response_length,
            chunk_tokens=settings.chunk_tokens,
            memory_tokens=settings.memory_tokens,
            plan_tokens=settings.plan_tokens,
            max_chunks=settings.max_chunks,
        )


LEAST = {
    "update_tokens": 1,
    "answer_tokens": 1,
    "chunk_tokens": 1,
    "memory_tokens": 1,
    "plan_tokens": 0,
    "max_chunks": 0,
}
"""The smallest value of each :class:`Budgets` field."""


@dataclass(frozen=True)
class Tokens:
    """How the episode counts and cuts text: the policy's tokenizer, without special tokens."""

    encode: Callable[[str], Sequence[int]]
    decode: Callable[[Sequence[int]], str]
    encode_many: Callable[[list[str]], Sequence[Sequence[int]]] | None = None
    """Several texts at once (None: one :attr:`encode` each)."""

    @classmethod
    def of(cls, tokenizer: Any) -> Tokens:
        """A Hugging Face tokenizer's ``encode``/``decode`` (no special tokens added, special tokens skipped)."""
        return cls(
            encode=lambda text: tokenizer.encode(text, add_special_tokens=False),
            decode=lambda ids: tokenizer.decode(list(ids), skip_special_tokens=True),
            encode_many=lambda texts: tokenizer(texts, add_special_tokens=False, return_attention_mask=False)[
                "input_ids"
            ],
        )

    def encode_document(self, text: str) -> array:
        """The ids of a document of any length, as 4-byte ints (16 MB for 4M tokens).

        Tokenized in pieces of about :data:`PIECE_CHARS` characters (:func:`split_pieces`), a batch at a time: a
        fast tokenizer holds ~400 bytes per token while it encodes one text (1.6 GB for a 4M-token document), a
        piece ~100 MB. A piece ends before a space that follows a non-space, where a byte-level BPE's
        pre-tokenizer splits anyway, so the ids are those of the whole text (tested with the builtin tokenizer);
        a tokenizer that merges across such a cut would differ there by a token, never in the text the chunks
        decode to. A text of one piece is encoded whole, exactly as :attr:`encode` does."""
        pieces = split_pieces(text, PIECE_CHARS)
        ids = array("I")
        for start in range(0, len(pieces), PIECES_AT_ONCE):
            group = pieces[start : start + PIECES_AT_ONCE]
            for piece in self.encode_many(group) if self.encode_many and len(group) > 1 else map(self.encode, group):
                ids.extend(piece)
        return ids


def split_pieces(text: str, size: int) -> list[str]:
    """``text`` as consecutive pieces of at most ``size`` characters, each cut before the last space (that follows
    a non-space) in the second half of its window, or at ``size`` where that half has none (text without spaces)."""
    pieces, start = [], 0
    while len(text) - start > size:
        end, low = start + size, start + size // 2
        cut = text.rfind(" ", low, end)
        while cut > low and text[cut - 1].isspace():
            cut = text.rfind(" ", low, cut)
        if cut <= low:
            cut = end
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


@dataclass(frozen=True)
class StepRecord:
    """What one generation of a trajectory did to the memory (the ``qwenlong_memory`` record, per generation)."""

    role: str
    """:data:`~qwenlong_verl.worker.agent.record.MEMORY_ROLE` or :data:`~qwenlong_verl.worker.agent.record.ANSWER_ROLE`."""
    step: int
    """1 … K for the memory updates, K + 1 for the answer."""
    memory_tokens: int
    """Tokens of the memory after the budget cut (the answer: of the memory it read)."""
    memory_truncated: bool
    plan_tokens: int | None = None
    """Plans only (``plan_tokens`` > 0)."""
    plan_truncated: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "role": self.role,
            "step": self.step,
            "memory_tokens": self.memory_tokens,
            "memory_truncated": self.memory_truncated,
        }
        if self.plan_tokens is not None:
            out.update(plan_tokens=self.plan_tokens, plan_truncated=bool(self.plan_truncated))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepRecord:
        return cls(
            role=str(data["role"]),
            step=int(data["step"]),
            memory_tokens=int(data["memory_tokens"]),
            memory_truncated=bool(data["memory_truncated"]),
            plan_tokens=int(data["plan_tokens"]) if data.get("plan_tokens") is not None else None,
            plan_truncated=bool(data["plan_truncated"]) if data.get("plan_tokens") is not None else None,
        )


@dataclass(frozen=True)
class EpisodeState:
    """Where a trajectory stands after memory update :attr:`step` (0: nothing read yet): enough to go on from there."""

    document_tokens: int
    """Tokens of the document it reads (a state resumes only the same document)."""
    step: int = 0
    memory: Capped = EMPTY
    plan: Capped = EMPTY
    records: tuple[StepRecord, ...] = ()
    """One per memory update done."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-able, for a checkpoint file."""
        return {
            "document_tokens": self.document_tokens,
            "step": self.step,
            "memory": {"text": self.memory.text, "tokens": self.memory.tokens, "truncated": self.memory.truncated},
            "plan": {"text": self.plan.text, "tokens": self.plan.tokens, "truncated": self.plan.truncated},
            "records": [r.as_dict() for r in self.records],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpisodeState:
        """The state :meth:`as_dict` wrote; ``KeyError``/``TypeError``/``ValueError`` for anything else."""

        def capped(part: Mapping[str, Any]) -> Capped:
            if not isinstance(part["text"], str):
                raise TypeError("memory/plan text must be a string")
            return Capped(text=part["text"], tokens=int(part["tokens"]), truncated=bool(part["truncated"]))

        state = cls(
            document_tokens=int(data["document_tokens"]),
            step=int(data["step"]),
            memory=capped(data["memory"]),
            plan=capped(data["plan"]),
            records=tuple(StepRecord.from_dict(r) for r in data["records"]),
        )
        if state.step < 0 or [r.step for r in state.records] != list(range(1, state.step + 1)):
            raise ValueError(f"records of steps {[r.step for r in state.records]} do not lead to step {state.step}")
        return state


@dataclass(frozen=True)
class Episode:
    """A finished trajectory."""

    answer: str
    """The answer generation's reply, as generated (the reward or the eval scorer reads it)."""
    schedule: ChunkSchedule
    records: tuple[StepRecord, ...]
    """K memory updates, then the answer: one per generation, in order."""
    resumed_from: int = 0
    """Memory updates taken from a saved state (not generated by this call)."""

    @property
    def generations(self) -> int:
        """Generations of the whole trajectory, K + 1."""
        return len(self.records)

    def shared(self) -> dict[str, Any]:
        """What every generation's record repeats about the trajectory."""
        return {
            "steps": len(self.schedule),
            "document_tokens": self.schedule.document_tokens,
            "document_cut": self.schedule.cut,
        }

    def record_dicts(self) -> list[dict[str, Any]]:
        """The ``qwenlong_memory`` record of each generation, in order (what the trainer's metrics read)."""
        shared = self.shared()
        return [{**shared, **record.as_dict()} for record in self.records]


@dataclass
class _Offload:
    """Tokenizer work off the event loop (a 4M-token document takes seconds; fast tokenizers release the GIL)."""

    tokens: Tokens
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)

    async def encode_document(self, text: str) -> Sequence[int]:
        return await self.loop.run_in_executor(None, self.tokens.encode_document, text)

    async def decode(self, ids: Sequence[int]) -> str:
        return await self.loop.run_in_executor(None, self.tokens.decode, ids)

    async def cap(self, text: str, budget: int) -> Capped:
        return await self.loop.run_in_executor(
            None, cap_to_budget, text, budget, self.tokens.encode, self.tokens.decode
        )


async def run_episode(
    query: MemoryQuery,
    generate: Generate,
    tokens: Tokens,
    budgets: Budgets,
    *,
    document_ids: Sequence[int] | None = None,
    state: EpisodeState | None = None,
    on_step: Callable[[EpisodeState], Awaitable[None]] | None = None,
) -> Episode:
    """Read ``query.document`` chunk by chunk and answer (see the module docstring).

    ``document_ids``: the document's ids when the caller has them (several trajectories of one question share
    them); else it is tokenized here, once (:meth:`Tokens.encode_document`). ``state``: go on after that memory update (its document must have
    as many tokens; ``ValueError`` otherwise). ``on_step(state)`` is awaited after each memory update."""
    work = _Offload(tokens)
    ids = document_ids if document_ids is not None else await work.encode_document(query.document)
    schedule = ChunkSchedule.of(len(ids), budgets.chunk_tokens, budgets.max_chunks)
    steps = len(schedule)
    state = state if state is not None else EpisodeState(document_tokens=len(ids))
    if state.document_tokens != len(ids) or state.step > steps:
        raise ValueError(
            f"a saved state after step {state.step} of a {state.document_tokens}-token document does not fit this "
            f"document of {len(ids)} tokens in {steps} chunks"
        )
    resumed_from = state.step
    plans = budgets.plan_tokens > 0
    for step in range(state.step + 1, steps + 1):
        start, end = schedule.spans[step - 1]
        chunk = await work.decode(ids[start:end])
        messages = update_messages(
            query.core, chunk, state.memory.text, state.plan.text if plans else None, step, steps
        )
        update = parse_update(await generate(messages, budgets.update_tokens, step), with_plan=plans)
        memory = await work.cap(update.memory, budgets.memory_tokens)
        plan = await work.cap(update.plan, budgets.plan_tokens) if plans else EMPTY
        record = StepRecord(
            role=MEMORY_ROLE,
            step=step,
            memory_tokens=memory.tokens,
            memory_truncated=memory.truncated,
            plan_tokens=plan.tokens if plans else None,
            plan_truncated=plan.truncated if plans else None,
        )
        state = EpisodeState(state.document_tokens, step, memory, plan, (*state.records, record))
        if on_step is not None:
            await on_step(state)
    messages = answer_messages(query.core, query.instruction, state.memory.text)
    answer = await generate(messages, budgets.answer_tokens, steps + 1)
    final = StepRecord(role=ANSWER_ROLE, step=steps + 1, memory_tokens=state.memory.tokens, memory_truncated=False)
    return Episode(answer=answer, schedule=schedule, records=(*state.records, final), resumed_from=resumed_from)
