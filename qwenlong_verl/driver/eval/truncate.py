"""Fit each prompt into ``--max-input-tokens`` by cutting the middle of the document, as QwenLong-L1 does.

The QwenLong-L1 evaluation tokenizes the prompt and, when it has more than ``max_len`` tokens, keeps the first
``max_len // 2`` and the last ``max_len - max_len // 2`` tokens and decodes them back to text. Long-document
answers sit anywhere, so keeping both ends loses less than cutting the tail. We apply the same head-and-tail
rule to the *document* only, with the document's budget being ``max_input_tokens`` minus everything else in
the rendered prompt (chat template, instructions, question, options): the question and the answer-format
sentence are therefore never cut, which the reference does not guarantee for prompts whose question is long.

Token counts are those veRL would measure (:func:`qwenlong_verl.driver.data.template.count_prompt_tokens`, the
chat template included). Decoding and re-encoding can merge tokens at the seam, so the fitted prompt is
counted again and the budget shrunk until it fits: a fitted prompt never exceeds the limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.driver.data.template import (
    TemplateError,
    build_messages,
    count_prompt_tokens,
    count_rendered_tokens,
    render_prompt,
)
from qwenlong_verl.driver.eval.benchmarks import EvalItem

_MAX_REFITS = 8


class TruncationError(InputError):
    """A prompt that cannot fit even with an empty document; the message names the item and the fix."""


def middle_truncate(ids: Sequence[int], budget: int) -> list[int]:
    """Keep the first ``budget // 2`` and the last ``budget - budget // 2`` ids (all of them if they fit)."""
    if budget >= len(ids):
        return list(ids)
    if budget <= 0:
        return []
    head = budget // 2
    return list(ids[:head]) + list(ids[len(ids) - (budget - head) :])


@dataclass(frozen=True)
class FittedPrompt:
    """The messages sent for one item and what truncation did to them."""

    messages: list[dict]
    input_tokens: int | None
    """Tokens of the rendered prompt as sent (None without a tokenizer)."""

    original_input_tokens: int | None
    """Tokens of the prompt with the whole document."""

    truncated: bool


def messages_of(item: EvalItem, document: str | None = None) -> list[dict]:
    """The training template applied to ``item`` (optionally with a replacement document)."""
    choices = list(item.choices) if item.choices else None
    try:
        return build_messages(item.document if document is None else document, item.question, item.task, choices)
    except TemplateError as exc:
        raise TemplateError(f"{item.source or item.id} ({item.id}): {exc}") from None


def fit_prompts(
    items: Sequence[EvalItem],
    tokenizer=None,
    max_input_tokens: int | None = None,
    chat_template_kwargs: Mapping[str, Any] | None = None,
    batch_size: int = 32,
) -> list[FittedPrompt]:
    """One :class:`FittedPrompt` per item; without a tokenizer the prompts are sent whole and uncounted."""
    if max_input_tokens is not None and max_input_tokens <= 0:
        raise TruncationError(f"--max-input-tokens must be positive, got {max_input_tokens}")
    if tokenizer is None:
        if max_input_tokens is not None:
            raise TruncationError("--max-input-tokens needs a tokenizer (--tokenizer NAME_OR_PATH)")
        return [FittedPrompt(messages_of(item), None, None, False) for item in items]
    out: list[FittedPrompt] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        messages = [messages_of(item) for item in chunk]
        counts = count_rendered_tokens([render_prompt(m, tokenizer, chat_template_kwargs) for m in messages], tokenizer)
        for item, msgs, count in zip(chunk, messages, counts, strict=True):
            if max_input_tokens is None or count <= max_input_tokens:
                out.append(FittedPrompt(msgs, count, count, False))
            else:
                out.append(_truncate(item, count, tokenizer, max_input_tokens, chat_template_kwargs))
    return out


def _truncate(item: EvalItem, full_count: int, tokenizer, limit: int, kwargs) -> FittedPrompt:
    doc_ids = tokenizer.encode(item.document, add_special_tokens=False)
    overhead = full_count - len(doc_ids)
    budget = limit - overhead
    for _ in range(_MAX_REFITS):
        if budget <= 0:
            raise TruncationError(
                f"{item.id} ({item.source}): the prompt without its document already takes {overhead} tokens, "
                f"more than --max-input-tokens {limit}; raise --max-input-tokens"
            )
        kept = tokenizer.decode(middle_truncate(doc_ids, budget), skip_special_tokens=True)
        messages = messages_of(item, kept if kept.strip() else "…")
        count = count_prompt_tokens(messages, tokenizer, kwargs)
        if count <= limit:
            return FittedPrompt(messages, count, full_count, True)
        budget -= count - limit
    raise TruncationError(f"{item.id}: could not fit the prompt into {limit} tokens after {_MAX_REFITS} tries")
