"""The memory agent's prompts, in the family of our full-context template (``driver/data/template.py``).

Same layout and wording style: a one-line preamble, the document text inside ``<text>…</text>``, then the question,
then one instruction paragraph. The memory and the plan travel inside ``<memory>…</memory>`` and
``<plan>…</plan>``; a memory step asks for exactly those blocks back, and :func:`parse_update` reads them out of
the reply (a reply without them is read whole as the memory, so a model that ignores the format still carries
something forward and the budget cut bounds it).

Two prompts per trajectory kind:

* a memory update (step t of K): (m_{t-1}, p_{t-1}, x_t, q_core) -> new memory m_t and plan p_t;
* the answer: (m_K, q_core, q_inst) -> the reply the ``qwenlong`` reward scores, with the row's own answer
  instruction q_inst, so it asks for "Therefore, the answer is …" exactly as the full-context prompt does.
"""

from __future__ import annotations

from dataclasses import dataclass

TEXT_OPEN, TEXT_CLOSE = "<text>", "</text>"
"""Tags around document text (as in the full-context template)."""
MEMORY_OPEN, MEMORY_CLOSE = "<memory>", "</memory>"
PLAN_OPEN, PLAN_CLOSE = "<plan>", "</plan>"
THINK_CLOSE = "</think>"

UPDATE_PREAMBLE = "Please read the following section of a long text and update your memory for the question below."
ANSWER_PREAMBLE = "Please answer the question below from your memory of a long text you have read section by section."

NO_MEMORY = "(nothing yet)"
NO_PLAN = "(no plan yet: read the section for anything that helps to answer the question)"

_UPDATE_INSTRUCTION = (
    f"Write your updated memory inside {MEMORY_OPEN}{MEMORY_CLOSE}: keep what is still needed to answer the "
    "question, add what this section contributes, and leave out the rest. Do not answer the question yet."
)
_PLAN_INSTRUCTION = f" Then, inside {PLAN_OPEN}{PLAN_CLOSE}, write what to look for in the next section."


def _block(open_tag: str, close_tag: str, text: str) -> str:
    return f"{open_tag}\n{text}\n{close_tag}"


def update_messages(
    question: str, chunk: str, memory: str, plan: str | None, step: int, steps: int
) -> list[dict[str, str]]:
    """Chat messages of memory update ``step`` of ``steps`` (1-based); ``plan`` ``None`` = plans are off."""
    parts = [
        f"{UPDATE_PREAMBLE} This is section {step} of {steps}.",
        _block(MEMORY_OPEN, MEMORY_CLOSE, memory.strip() or NO_MEMORY),
    ]
    if plan is not None:
        parts.append(_block(PLAN_OPEN, PLAN_CLOSE, plan.strip() or NO_PLAN))
    parts += [
        _block(TEXT_OPEN, TEXT_CLOSE, chunk.strip()),
        question.strip(),
        _UPDATE_INSTRUCTION + (_PLAN_INSTRUCTION if plan is not None else ""),
    ]
    return [{"role": "user", "content": "\n\n".join(parts)}]


def answer_messages(question: str, instruction: str, memory: str) -> list[dict[str, str]]:
    """Chat messages of the final answer from the last memory."""
    parts = [ANSWER_PREAMBLE, _block(MEMORY_OPEN, MEMORY_CLOSE, memory.strip() or NO_MEMORY), question.strip()]
    if instruction.strip():
        parts.append(instruction.strip())
    return [{"role": "user", "content": "\n\n".join(parts)}]


@dataclass(frozen=True)
class Update:
    """What a memory step's reply says, before the budget cut."""

    memory: str
    plan: str


def _last_block(text: str, open_tag: str, close_tag: str, stop: str | None = None) -> str | None:
    """Content of the last ``open_tag`` in ``text``, up to its ``close_tag`` (or ``stop``, or the end)."""
    start = text.rfind(open_tag)
    if start < 0:
        return None
    body = text[start + len(open_tag) :]
    end = body.find(close_tag)
    if end < 0 and stop is not None:
        end = body.find(stop)
    return (body if end < 0 else body[:end]).strip()


def parse_update(reply: str, with_plan: bool) -> Update:
    """Memory and plan of a memory step's reply.

    Reasoning is left out: only what follows the last ``</think>`` counts (the whole reply when there is none).
    The memory is the last ``<memory>`` block; without one, the reply up to ``<plan>`` (or all of it). The plan is
    the last ``<plan>`` block, or empty."""
    text = reply.rsplit(THINK_CLOSE, 1)[-1].replace("<think>", "").strip()
    memory = _last_block(text, MEMORY_OPEN, MEMORY_CLOSE, stop=PLAN_OPEN)
    if memory is None:
        memory = text.split(PLAN_OPEN, 1)[0].strip()
    plan = (_last_block(text, PLAN_OPEN, PLAN_CLOSE) or "") if with_plan else ""
    return Update(memory=memory, plan=plan)
