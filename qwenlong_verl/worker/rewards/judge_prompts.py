"""Judge prompt presets: how the LLM judge is asked, and how its reply is read.

A preset is one row of :data:`JUDGE_PROMPTS`: the messages built from (question, prediction, gold) and the
verdict rule that reads the reply. The reward kwarg ``judge_prompt`` names one (``JudgeConfig.prompt``).
What every preset shares stays in :mod:`qwenlong_verl.worker.rewards.judge`: the question and the answers
are length-capped and ``[[``/``]]`` in them defused before a preset sees them, the prediction is put on one
line (so the policy's text cannot start a line of the layout, e.g. a second ``Answer 2:``), and a verdict is
read only after any ``</think>``.

Sources (prompt texts are quoted verbatim; they are data):

``qwenlong_l1``
    The QwenLong-L1 release (github.com/Tongyi-Zhiwen/QwenLong-L1): the system prompt ``GENERAL_ORM_PROMPT``
    and user template ``ORM_USER_TEMPLATE`` of ``verl/verl/utils/reward_score/docqa.py`` (training) and of
    ``eval/*_verify.py`` (evaluation), identical in both. ``Answer 1`` is the model's answer, ``Answer 2``
    the gold. Judges: in training ``Qwen/Qwen2.5-1.5B-Instruct`` served by vLLM (the README's
    ``VERIFIER_PATH``), asked only where sub-exact-match failed; in evaluation DeepSeek-V3 (``deepseek-chat``)
    at temperature 0, the score being max(exact match, judge). The release reads a verdict as ``"YES" in
    reply``; we read the format the prompt asks for instead (:func:`last_verdict`), because a substring test
    counts a ``YES`` anywhere in the explanation.
``qwenlong_l15``
    The QwenLong-L1.5 technical report (arXiv 2512.12967, Qwen-Doc repository ``QwenLong-L1.5/paper``),
    Table 6, "modified from QwenLong-L1": the same words, printed as one prompt (the instructions, then the
    Problem / Answer 1 / Answer 2 lines), so here one user message. Its evaluation judge is DeepSeek-V3
    (§5.1); its training judge is gpt-oss-120b, asked where the rule ("the ground truth is contained in the
    output") failed — the report gives no separate training prompt and says the hybrid reward follows
    QwenLong-L1, so this preset is our reading for training too. gpt-oss is a reasoning model: give it
    ``judge_reasoning_effort`` and room in ``judge_max_tokens``.
``strict``
    This project's own prompt (the default; see ``JudgeConfig.prompt``): the answers in tagged blocks, a
    different, partial, vaguer or hedged candidate counts as not equivalent, and the reply must *end* with
    the verdict (:func:`final_verdict`).

Cheap to import: no veRL, no torch, no aiohttp.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from qwenlong_verl.common.errors import InputError

VerdictRule = Callable[[str], "bool | None"]
"""A reply (the judge's message content) -> True (equivalent), False (not), None (no verdict)."""

_VERDICT = re.compile(r"\[\[\s*(YES|NO)\s*\]\]", re.IGNORECASE)
_VERDICT_TRAILER = " \t\r\n.!*_`'\")]}"
_ECHO_GAP = re.compile(r"\s*(?:or|/|\|)\s*", re.IGNORECASE)
_SCAN_CHARS = 4096
"""A verdict sits at the end of a reply: only its last characters are scanned, so a runaway reply costs little."""


def _answer_part(reply: str) -> str:
    cut = reply.rfind("</think>")
    if cut >= 0:
        reply = reply[cut + len("</think>") :]
    return reply[-_SCAN_CHARS:]


def final_verdict(reply: str) -> bool | None:
    """The strict rule: the reply (after any think block) must *end* with ``[[YES]]`` or ``[[NO]]``; only
    whitespace, punctuation or emphasis may follow. An earlier quote of a verdict does not count."""
    if not isinstance(reply, str):
        return None
    reply = _answer_part(reply)
    matches = list(_VERDICT.finditer(reply))
    last = matches[-1] if matches else None
    if last is None or reply[last.end() :].strip(_VERDICT_TRAILER):
        return None
    return last.group(1).upper() == "YES"


def last_verdict(reply: str) -> bool | None:
    """The published format's rule ("an explanation, then your final answer in the form [[YES]] or [[NO]]"):
    the last ``[[YES]]``/``[[NO]]`` after any think block is the verdict, whatever closing words follow it.
    A reply whose last two marks are the instruction echoed back (``[[YES]] or [[NO]]``) has no verdict."""
    if not isinstance(reply, str):
        return None
    reply = _answer_part(reply)
    matches = list(_VERDICT.finditer(reply))
    if not matches:
        return None
    last = matches[-1]
    if len(matches) >= 2:
        before = matches[-2]
        echoed = before.group(1).upper() != last.group(1).upper()
        if echoed and _ECHO_GAP.fullmatch(reply[before.end() : last.start()]):
            return None
    return last.group(1).upper() == "YES"


@dataclass(frozen=True)
class JudgePrompt:
    """One way to ask the judge: the message layout and the rule that reads the reply.

    The templates take ``{question}``, ``{prediction}`` and ``{gold}``, already capped and defused; a
    template's own text must not contain other braces.
    """

    user: str
    """The user message."""

    verdict: VerdictRule
    """How the reply is read."""

    reads_back: re.Pattern
    """Recovers ``prediction`` and ``gold`` (named groups) from the user message: the stand-in judge's side of
    the layout (:mod:`qwenlong_verl.worker.rewards.judge_server`), kept next to the template it inverts."""

    max_tokens: int
    """Reply budget when ``judge_max_tokens`` is not given and the judge does not reason: what the requested
    reply format needs (a reasoning judge gets ``REASONING_DEFAULT_TOKENS``, see ``judge.py``)."""

    source: str
    """Where the text comes from (one line, shown in docs and errors)."""

    system: str | None = None
    """The system message; None = the user message only."""

    question: str = "{question}"
    """How a non-empty question enters ``user``'s ``{question}``; an absent question leaves it empty."""

    def messages(self, question: str, prediction: str, gold: str) -> list[dict[str, str]]:
        """The chat for one judgement (inputs already capped and defused by the judge client)."""
        shown = self.question.format(question=question) if question else ""
        user = self.user.format(question=shown, prediction=prediction, gold=gold)
        chat = [{"role": "system", "content": self.system}] if self.system is not None else []
        return [*chat, {"role": "user", "content": user}]


# ----------------------------------------------------------------------------- the published prompt

QWENLONG_L1_SYSTEM = """You are an expert in verifying if two answers are the same.
Your input is a problem and two answers, Answer 1 and Answer 2. You need to check if they are equivalent.
Your task is to determine if two answers are equivalent, without attempting to solve the original problem.
Compare the answers to verify they represent identical values or meaning, even when written in different forms or notations.

Your output must follow the following format:
1) Provide an explanation for why the answers are equivalent or not.
2) Then provide your final answer in the form of: [[YES]] or [[NO]]
"""
"""``GENERAL_ORM_PROMPT`` of the QwenLong-L1 release, verbatim (Table 6 of the QwenLong-L1.5 report prints it too)."""

QWENLONG_L1_USER = """
Problem: {question}
Answer 1: {prediction}
Answer 2: {gold}
"""
"""``ORM_USER_TEMPLATE`` of the QwenLong-L1 release (``problem``, ``answer_1`` = the model's answer,
``answer_2`` = the gold), verbatim but for the placeholder names."""

_LINES_BACK = re.compile(r"\nAnswer 1: (?P<prediction>.*?)\nAnswer 2: (?P<gold>.*?)\n?\Z", re.S)

# ----------------------------------------------------------------------------- ours

STRICT_SYSTEM = (
    "You are a careful grader. You are given a question, a reference answer and a candidate answer. "
    "Decide whether the candidate answer means the same as the reference answer for this question: "
    "equivalent numbers (units, rounding, percent vs fraction), synonyms, aliases and equivalent phrasings "
    "count as the same; a different, partial, vaguer or hedged answer (several alternatives) does not. "
    "Reply with at most one short sentence of justification, then end your reply with exactly [[YES]] "
    "if they are equivalent or [[NO]] if they are not."
)

_TAGS_BACK = re.compile(
    r"<reference_answer>\n(?P<gold>.*?)\n</reference_answer>\n\n<candidate_answer>\n(?P<prediction>.*?)\n</candidate_answer>",
    re.S,
)

JUDGE_PROMPTS: dict[str, JudgePrompt] = {
    "strict": JudgePrompt(
        system=STRICT_SYSTEM,
        question="<question>\n{question}\n</question>\n\n",
        user=(
            "{question}<reference_answer>\n{gold}\n</reference_answer>\n\n"
            "<candidate_answer>\n{prediction}\n</candidate_answer>\n\n"
            "Is the candidate answer equivalent to the reference answer? End with [[YES]] or [[NO]]."
        ),
        verdict=final_verdict,
        reads_back=_TAGS_BACK,
        max_tokens=256,
        source="qwenlong-verl's own strict grader",
    ),
    "qwenlong_l1": JudgePrompt(
        system=QWENLONG_L1_SYSTEM,
        user=QWENLONG_L1_USER,
        verdict=last_verdict,
        reads_back=_LINES_BACK,
        max_tokens=1024,
        source="QwenLong-L1 release, verl/verl/utils/reward_score/docqa.py (system + user message)",
    ),
    "qwenlong_l15": JudgePrompt(
        user=QWENLONG_L1_SYSTEM + QWENLONG_L1_USER,
        verdict=last_verdict,
        reads_back=_LINES_BACK,
        max_tokens=1024,
        source="QwenLong-L1.5 report (arXiv 2512.12967), Table 6 (one user message)",
    ),
}
"""Preset name -> :class:`JudgePrompt`; a new prompt is a new row."""


def judge_prompt(name: str) -> JudgePrompt:
    """The preset called ``name``, or an :class:`InputError` naming the known ones."""
    preset = JUDGE_PROMPTS.get(name) if isinstance(name, str) else None
    if preset is None:
        raise InputError(f"unknown judge_prompt {name!r}; known: {', '.join(JUDGE_PROMPTS)}")
    return preset
