"""A dataset row as the memory agent reads it: the document, the core question q_core and the instruction q_inst.

QwenLong-L1.5 splits the query into what to look for while reading (q_core, shown at every memory step) and how
to format the answer (q_inst, shown only to the answer step). From a row (``raw_prompt`` + ``extra_info``):

==============  =====================================================================================
document        ``extra_info.document`` or ``extra_info.context`` when the row carries one; else the
                ``<text>…</text>`` block of the last user message (our full-context template).
q_inst          ``extra_info.instruction`` when present; else the last paragraph of the user message
                after the document (the template's answer-format sentence).
q_core          the user message after the document, without q_inst: the question as the full-context
                prompt shows it, options included; ``extra_info.question`` when that is empty.
==============  =====================================================================================

``prepare`` writes rows with the document inside the prompt only, so no text is stored twice: veRL stores every
generation of a trajectory with all columns of its dataset row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qwenlong_verl.worker.agent.prompts import TEXT_CLOSE, TEXT_OPEN

DOCUMENT_KEYS = ("document", "context")
"""``extra_info`` keys that hold the document, in order of preference."""
INSTRUCTION_KEY = "instruction"
"""``extra_info`` key of q_inst."""


class MemoryRowError(ValueError):
    """A row the memory agent cannot read (no document, no question)."""


@dataclass(frozen=True)
class MemoryQuery:
    document: str
    core: str
    """q_core: what to look for while reading."""
    instruction: str
    """q_inst: how to write the answer ("" when the row has none)."""


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _user_text(raw_prompt: Any) -> str:
    messages = list(raw_prompt) if isinstance(raw_prompt, Sequence) and not isinstance(raw_prompt, str) else []
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return _text(message.get("content"))
    return ""


def split_query(raw_prompt: Any, extra_info: Mapping[str, Any] | None) -> MemoryQuery:
    """Document, q_core and q_inst of a row (see the module docstring); :class:`MemoryRowError` names the row."""
    info = extra_info if isinstance(extra_info, Mapping) else {}
    where = f"row extra_info.index={info.get('index')!r}"
    user = _user_text(raw_prompt)
    document = next((_text(info.get(key)) for key in DOCUMENT_KEYS if _text(info.get(key))), "")
    rest = user
    start, end = user.find(TEXT_OPEN), user.rfind(TEXT_CLOSE)
    if 0 <= start < end:
        document = document or user[start + len(TEXT_OPEN) : end].strip()
        rest = user[end + len(TEXT_CLOSE) :]
    elif document and document in rest:  # a row's own layout: the document is not part of the question
        rest = rest.replace(document, "")
    if not document:
        raise MemoryRowError(
            f"{where}: no document: put it in extra_info.document (or .context), or inside "
            f"{TEXT_OPEN}…{TEXT_CLOSE} of the user message as `qwenlong-verl prepare` writes it"
        )
    rest = rest.strip()
    instruction = _text(info.get(INSTRUCTION_KEY))
    if instruction:
        if rest.endswith(instruction):
            rest = rest[: -len(instruction)].strip()
    elif "\n\n" in rest:
        rest, instruction = (part.strip() for part in rest.rsplit("\n\n", 1))
    core = rest or _text(info.get("question"))
    if not core:
        raise MemoryRowError(f"{where}: no question: neither the user message nor extra_info.question has one")
    return MemoryQuery(document=document, core=core, instruction=instruction)
