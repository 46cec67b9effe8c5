"""The memory agent's reading schedule and budgets, as plain functions of token counts.

A document of ``n`` tokens is read in ``K = ceil(n / chunk_tokens)`` chunks (at most ``max_chunks``); a trajectory
is then ``K`` memory updates and one answer, ``K + 1`` generations, each trained as its own sequence. The memory
and plan a step writes are cut to their budgets before the next step reads them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ChunkSchedule:
    """Which token spans of a document the steps read."""

    spans: tuple[tuple[int, int], ...]
    """``(start, end)`` token offsets of each chunk, in reading order."""

    document_tokens: int
    """Tokens of the whole document."""

    cut: bool
    """The document had more than ``max_chunks`` chunks; only the first ``max_chunks`` are read."""

    @classmethod
    def of(cls, document_tokens: int, chunk_tokens: int, max_chunks: int = 0) -> ChunkSchedule:
        """The schedule of a document of ``document_tokens`` (``max_chunks`` 0 = no limit)."""
        if chunk_tokens < 1:
            raise ValueError(f"chunk_tokens must be >= 1, got {chunk_tokens}")
        wanted = chunk_count(document_tokens, chunk_tokens)
        read = min(wanted, max_chunks) if max_chunks > 0 else wanted
        spans = tuple((i * chunk_tokens, min((i + 1) * chunk_tokens, document_tokens)) for i in range(read))
        return cls(spans=spans, document_tokens=document_tokens, cut=read < wanted)

    def __len__(self) -> int:
        return len(self.spans)


def chunk_count(document_tokens: int, chunk_tokens: int) -> int:
    """``ceil(document_tokens / chunk_tokens)``: the memory updates a document needs (0 for an empty one)."""
    return math.ceil(max(document_tokens, 0) / chunk_tokens)


def generations_per_trajectory(document_tokens: int, chunk_tokens: int, max_chunks: int = 0) -> int:
    """Generations (training sequences) of one trajectory: one per chunk read, plus the answer."""
    return len(ChunkSchedule.of(document_tokens, chunk_tokens, max_chunks)) + 1


@dataclass(frozen=True)
class Capped:
    """A text cut to a token budget."""

    text: str
    tokens: int
    """Tokens of :attr:`text` (at most the budget)."""
    truncated: bool
    """The text was longer than the budget."""


def cap_to_budget(
    text: str, budget: int, encode: Callable[[str], Sequence[int]], decode: Callable[[Sequence[int]], str]
) -> Capped:
    """``text`` cut to its first ``budget`` tokens (``encode``/``decode``: the policy's tokenizer, no special
    tokens); a budget of 0 keeps nothing."""
    ids = list(encode(text))
    if len(ids) <= budget:
        return Capped(text=text, tokens=len(ids), truncated=False)
    kept = ids[:budget]
    return Capped(text=decode(kept) if kept else "", tokens=len(kept), truncated=True)
