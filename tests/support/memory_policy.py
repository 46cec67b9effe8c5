"""A policy for :class:`support.eval_server.ChatServer` that plays the memory agent deterministically, and the
documents it reads.

Documents are filler sentences with facts ``The code of vault NAME is NUMBER.``; a question asks for one vault's
code. A memory update is answered with a ``<memory>`` block holding the facts of the memory it was shown followed
by every fact of its chunk, in order; the answer prompt is answered with the code its memory holds for the vault
asked about, or ``unknown``. So an answer is right exactly when the fact reached the last memory: it was in a chunk
that was read and it survived every budget cut.
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from qwenlong_verl.worker.agent.prompts import ANSWER_PREAMBLE, MEMORY_CLOSE, MEMORY_OPEN, TEXT_CLOSE, TEXT_OPEN
from support.eval_server import Call, Reply

FACT = re.compile(r"The code of vault (\w+) is (\d+)\.")
QUESTION = re.compile(r"What is the code of vault (\w+)\?")
SECTION = re.compile(r"This is section (\d+) of (\d+)\.")
FILLER = (
    "The archive keeps ledgers of grain, timber and salt in the lower hall.",
    "Clerks copy each ledger twice before the winter inspection begins.",
    "A courier brings sealed letters from the northern depots every week.",
    "The west gate stays closed while the river is in flood.",
)


def fact(vault: str, code: int) -> str:
    return f"The code of vault {vault} is {code}."


def question(vault: str) -> str:
    return f"What is the code of vault {vault}?"


def document(sentences: int, facts: dict[int, list[str]] | None = None) -> str:
    """``sentences`` filler sentences with ``facts[i]`` inserted before sentence ``i``."""
    facts = facts or {}
    parts = []
    for i in range(sentences):
        parts.extend(facts.get(i, ()))
        parts.append(FILLER[i % len(FILLER)])
    return " ".join(parts)


def chunk_of(ids: list[int], needle: str, chunk_tokens: int, tokenizer) -> int | None:
    """1-based chunk of a document's ``ids`` (cut every ``chunk_tokens`` tokens) that holds ``needle`` whole, or None
    when the needle straddles a cut (no chunk shows it): how a test checks that its documents mean what it expects."""
    for number, start in enumerate(range(0, len(ids), chunk_tokens), start=1):
        if needle in tokenizer.decode(ids[start : start + chunk_tokens], skip_special_tokens=True):
            return number
    return None


def write_bench(path: Path, rows: list[dict]) -> Path:
    """A generic-schema benchmark file (``--bench NAME=FILE``)."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def block(prompt: str, open_tag: str, close_tag: str) -> str:
    start = prompt.index(open_tag) + len(open_tag)
    return prompt[start : prompt.index(close_tag, start)].strip()


class MemoryPolicy:
    """The server's ``respond``: plays the memory agent (see the module docstring) and logs every step it served.

    ``fault(call, step)`` may return a reply to serve instead (an HTTP error, a hang). ``steps[(id, k)]`` lists the
    generation steps served per sample (1..K memory updates, K + 1 the answer), in order, retries included."""

    def __init__(self, fault: Callable[[Call, int], Reply | None] | None = None, hang_s: float = 0.0):
        self.fault = fault
        self.hang_s = hang_s
        self.steps: dict[tuple[str, int], list[int]] = defaultdict(list)
        self.sections: dict[tuple[str, int], int] = {}
        """K of each sample, as its update prompts said."""
        self.lock = threading.Lock()

    def __call__(self, call: Call) -> Reply:
        prompt = call.prompt
        section = SECTION.search(prompt)
        key = (call.item_id, call.k)
        with self.lock:
            if section:
                step = int(section.group(1))
                self.sections[key] = int(section.group(2))
            else:
                assert ANSWER_PREAMBLE in prompt, prompt[:200]
                step = self.sections.get(key, 0) + 1
            self.steps[key].append(step)
        if self.fault is not None and (reply := self.fault(call, step)) is not None:
            return reply
        memory = block(prompt, MEMORY_OPEN, MEMORY_CLOSE)
        known = FACT.findall(memory)
        if section:
            found = FACT.findall(block(prompt, TEXT_OPEN, TEXT_CLOSE))
            lines = "\n".join(fact(v, int(c)) for v, c in [*known, *found])
            return Reply(
                text=f"<think>Reading section {step}.</think>\n{MEMORY_OPEN}\n{lines}\n{MEMORY_CLOSE}",
                hang_s=self.hang_s,
            )
        asked = QUESTION.search(prompt).group(1)
        code = next((c for v, c in known if v == asked), "unknown")
        return Reply(text=f"<think>From memory.</think>\nTherefore, the answer is {code}.", hang_s=self.hang_s)
