"""THE QwenLong prompt: one function builds the chat messages for training data, evaluation and SFT.

The wording follows the QwenLong-L1 release (document inside ``<text>…</text>``, then the question, then
``Format your response as follows: "Therefore, the answer is (insert answer here)".``) with one sentence per
answer type (:mod:`qwenlong_verl.common.tasks`) saying what the answer must look like; the task label does not
change the prompt. Every variant asks for "Therefore, the answer is …", the phrase the reward's extractor
(:mod:`qwenlong_verl.worker.rewards`) recognises first; it also accepts ``Answer:`` and ``\\boxed{}``.

:func:`render_prompt` / :func:`count_prompt_tokens` reproduce what veRL's ``RLHFDataset`` does with a row's
``prompt`` (``apply_chat_template(..., add_generation_prompt=True)`` with ``data.apply_chat_template_kwargs``),
so a recorded ``input_tokens`` is exactly the length veRL compares with ``data.max_prompt_length``.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.tasks import CHOICE, NUMERIC, QA, normalize_answer_type

ANSWER_PHRASE = "Therefore, the answer is"
"""The phrase every prompt asks the model to end with (the reward extractor's primary pattern)."""

PREAMBLE = "Please read the following text and answer the question below."

_FORMAT = f'Format your response as follows: "{ANSWER_PHRASE} (insert answer here)".'

ANSWER_INSTRUCTIONS: dict[str, str] = {
    NUMERIC: f"{_FORMAT} The answer must be a single number, without units.",
    CHOICE: f"{_FORMAT} The answer must be the letter of the correct option only.",
    QA: f"{_FORMAT} The answer should be a short phrase taken from or supported by the text.",
}
"""Per-answer-type answer-format sentence appended after the question."""

OPTION_LETTERS = string.ascii_uppercase


class TemplateError(InputError):
    """Input that cannot make a well-formed prompt (empty document/question, choices missing or misplaced)."""


def option_letter(position: int) -> str:
    """``0 -> "A"``, ``1 -> "B"``, … (at most 26 options)."""
    if not 0 <= position < len(OPTION_LETTERS):
        raise TemplateError(f"option position {position} out of range (at most {len(OPTION_LETTERS)} options)")
    return OPTION_LETTERS[position]


def format_choices(choices: Sequence[str]) -> str:
    """``A. first`` / ``B. second`` lines, one option per line."""
    return "\n".join(f"{option_letter(i)}. {str(c).strip()}" for i, c in enumerate(choices))


def join_documents(documents: Sequence[str | Mapping[str, Any]]) -> str:
    """Several documents as one text: ``Document 1: <title>`` headings, blank lines between documents.

    An item is a string or a mapping with ``text`` (or ``content``) and an optional ``title``.
    """
    parts = []
    for number, doc in enumerate(documents, start=1):
        if isinstance(doc, Mapping):
            title = str(doc.get("title") or "").strip()
            text = str(doc.get("text", doc.get("content", "")) or "").strip()
        else:
            title, text = "", str(doc).strip()
        heading = f"Document {number}" + (f": {title}" if title else "")
        parts.append(f"{heading}\n{text}")
    return "\n\n".join(parts)


def build_messages(document: str, question: str, answer_type: str, choices: list[str] | None = None) -> list[dict]:
    """Chat messages (one user turn) for a long-context question; ``answer_type`` is one of
    :data:`qwenlong_verl.common.tasks.ANSWER_TYPES` (or an alias).

    ``choices`` is required for the choice answer type (at least two options, listed as ``A. …`` lines after the
    question) and refused for the others, so a prompt never offers options its reward will not check.
    """
    answer_type = normalize_answer_type(answer_type)
    document = str(document or "").strip()
    question = str(question or "").strip()
    if not document:
        raise TemplateError("document is empty")
    if not question:
        raise TemplateError("question is empty")
    if answer_type == CHOICE:
        if not choices or len(choices) < 2:
            raise TemplateError("the choice answer type needs at least two choices")
        if any(not str(c).strip() for c in choices):
            raise TemplateError("a choice is empty")
        question = f"{question}\n\n{format_choices(choices)}"
    elif choices:
        raise TemplateError(f"choices are only for the {CHOICE!r} answer type, not {answer_type!r}")
    content = f"{PREAMBLE}\n\n<text>\n{document}\n</text>\n\n{question}\n\n{ANSWER_INSTRUCTIONS[answer_type]}"
    return [{"role": "user", "content": content}]


def render_prompt(messages: list[dict], tokenizer, apply_chat_template_kwargs: Mapping[str, Any] | None = None) -> str:
    """The prompt text the policy sees, rendered exactly as veRL's ``RLHFDataset`` renders a row's ``prompt``."""
    kwargs = dict(apply_chat_template_kwargs or {})
    for key in ("tokenize", "return_dict", "return_tensors", "add_generation_prompt"):
        kwargs.pop(key, None)  # veRL forces these itself
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **kwargs)


def count_rendered_tokens(texts: list[str], tokenizer) -> list[int]:
    """Token counts of already rendered prompts, batched (what ``apply_chat_template(tokenize=True)`` counts)."""
    if not texts:
        return []
    encoded = tokenizer(texts, add_special_tokens=False, return_attention_mask=False)["input_ids"]
    return [len(ids) for ids in encoded]


def count_prompt_tokens(
    messages: list[dict], tokenizer, apply_chat_template_kwargs: Mapping[str, Any] | None = None
) -> int:
    """Length of ``messages`` as veRL measures it against ``data.max_prompt_length``."""
    return count_rendered_tokens([render_prompt(messages, tokenizer, apply_chat_template_kwargs)], tokenizer)[0]
