"""The final answer of a response, and the acceptable answers of a gold label.

One place decides what "the answer" is, so every verifier, the judge and the format penalty agree:

* Reasoning models: the answer is what follows the **last** ``</think>``. A ``<think>`` that is never
  closed means the model ran out of budget inside its reasoning: no answer.
* Responses without think tags (non-reasoning models) are used whole.
* In that section the **last stated answer wins**: ``\\boxed{...}``, ``<answer>...</answer>``, or a phrase
  ending in "answer" followed by *is*, *are*, *would be* or a colon ("The correct answer is", "**Final
  Answer:**", any case, with or without markdown emphasis).
* With no such marker, a short section (at most :data:`BARE_ANSWER_MAX_CHARS`) is itself the answer; a
  long one has no answer.

Speed: responses are 10K-60K characters and rewards are computed for every rollout, so the marker
search scans backwards from the end in windows with ``str.rfind`` (C speed) instead of running a regex
over the whole text; only the few candidate positions are checked with anchored regexes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

MAX_ANSWER_CHARS = 1000
"""Longer extracted answers are cut: nothing a verifier or the judge needs is that long."""

BARE_ANSWER_MAX_CHARS = 300
"""A section without any answer marker counts as the answer only up to this length."""

_WINDOW = 4096
_OVERLAP = 64
_MAX_BRACE_SCAN = 4 * MAX_ANSWER_CHARS
_MAX_GOLD_JSON_CHARS = 100_000

# Checked at a position where "answer" was found (case-insensitively): "answer(s)" + optional emphasis
# + "is" / "are" / "would be" / "should be" / ":".
_PHRASE_TAIL = re.compile(
    r"answers?(?:[ \t]*[*_]{1,3})?[ \t]*(?:(?:is|are|was|would[ \t]+be|should[ \t]+be)\b|[:：])[ \t]*",
    re.IGNORECASE,
)
_BOXED_HEAD = re.compile(r"\\(?:boxed|fbox)[ \t]*\{")
_LEAD_NOISE = " \t*_:："

# Sentence end inside a one-line answer: ". " followed by a capital; abbreviations and initials do not end
# a sentence ("St. Louis", "J. K. Rowling").
_SENTENCE_END = re.compile(r"[.!?][ \t]+(?=[A-Z(\[\"'])")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr vs no inc ltd co corp mt ft gen col lt sgt prof rev dept univ est approx fig "
    "e.g i.e etc u.s u.k a.m p.m jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_LAST_WORD = re.compile(r"(\S+)$")

_MATH_WRAPPERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_TEXT_CMD = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mbox|emph)\s*\{([^{}]*)\}")
_EMPHASIS_RUN = re.compile(r"\*\*|__")


def answer_section(response: str) -> str | None:
    """The part of ``response`` that may hold the final answer; ``None`` when reasoning never finished."""
    cut = response.rfind(THINK_CLOSE)
    if cut >= 0:
        return response[cut + len(THINK_CLOSE) :]
    if response.rfind(THINK_OPEN) >= 0:  # rfind: ~3x faster than `in` on long texts (CPython fastsearch)
        return None
    return response


def extract_answer(response: str) -> str:
    """The final answer stated in ``response``, cleaned of markup; ``""`` when there is none."""
    if not isinstance(response, str) or not response:
        return ""
    section = answer_section(response)
    if section is None:
        return ""
    found = _marked_answer(section)
    if found is None:
        bare = section.strip()
        if len(bare) > BARE_ANSWER_MAX_CHARS:
            return ""
        found = bare
    return clean_answer(found)


_MAX_CANDIDATES = 256
"""Marker candidates checked per text at most: bounds the work on hostile input ("\\boxed{" repeated)."""

_BRACE_TOKEN = re.compile(r"\\.|[{}]", re.S)


def _marked_answer(section: str) -> str | None:
    """Text of the last non-empty answer marker in ``section`` (unclean).

    ``""`` when the section has markers but all are empty ("Answer:" and nothing after), ``None`` when it has
    no marker at all.
    """
    end = len(section)
    empty_seen = False
    budget = [_MAX_CANDIDATES]
    while end > 0 and budget[0] > 0:
        start = max(0, end - _WINDOW)
        hit, empty = _last_marker_in(section, start, min(len(section), end + _OVERLAP), budget)
        if hit is not None:
            return hit
        empty_seen = empty_seen or empty
        end = start
    return "" if empty_seen else None


def _last_marker_in(section: str, start: int, stop: int, budget: list[int]) -> tuple[str | None, bool]:
    """The rightmost non-empty marker starting in ``section[start:stop]``, and whether an empty one was seen."""
    window = section[start:stop]
    lowered = window.lower()
    best_pos = -1
    best_text: str | None = None
    empty_seen = False

    end = len(lowered)
    while True:
        pos = lowered.rfind("answer", 0, end)
        if pos < 0:
            break
        end = pos + len("answer") - 1  # the next search must not find this occurrence again
        budget[0] -= 1
        if budget[0] < 0:
            break
        absolute = start + pos
        text = None
        if absolute > 0 and section[absolute - 1] == "<":
            if lowered.startswith("<answer>", pos - 1):
                text = _tag_content(section, absolute + len("answer>"))
        elif absolute == 0 or not section[absolute - 1].isalpha():
            match = _PHRASE_TAIL.match(section, absolute)
            if match:
                text = _phrase_content(section, match.end())
        if text is not None:
            if clean_answer(text):
                best_pos, best_text = absolute, text
                break
            empty_seen = True

    for head in ("\\boxed", "\\fbox"):
        pos = window.rfind(head)
        while pos >= 0:
            absolute = start + pos
            budget[0] -= 1
            if absolute <= best_pos or budget[0] < 0:
                break
            match = _BOXED_HEAD.match(section, absolute)
            if match:
                content = _balanced(section, match.end())
                if content is not None and clean_answer(content):
                    best_pos, best_text = absolute, content
                    break
                empty_seen = empty_seen or content is not None
            pos = window.rfind(head, 0, pos)
    return best_text, empty_seen


def _tag_content(section: str, begin: int) -> str | None:
    close = section.find("</answer>", begin, begin + _MAX_BRACE_SCAN)
    content = section[begin:close] if close >= 0 else section[begin : begin + MAX_ANSWER_CHARS]
    inner = _marked_answer(content) if len(content) < _MAX_BRACE_SCAN else None
    return inner if inner is not None else content


def _balanced(section: str, begin: int) -> str | None:
    """Content of a ``{...}`` group whose opening brace ends just before ``begin``; ``None`` if unclosed."""
    depth = 1
    for token in _BRACE_TOKEN.finditer(section, begin, min(len(section), begin + _MAX_BRACE_SCAN)):
        char = token.group()
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return section[begin : token.start()]
    return None


def _phrase_content(section: str, begin: int) -> str:
    rest = section[begin : begin + 2 * MAX_ANSWER_CHARS]
    close = rest.find("</answer>")
    if close >= 0:
        rest = rest[:close]
    rest = rest.lstrip(_LEAD_NOISE)
    if rest[:2] in ("- ", "– ", "— "):  # "Answer - B"; a minus sign glued to a number stays
        rest = rest[2:]
    lines = rest.split("\n", 4)
    line = next((ln for ln in lines[:4] if ln.strip(_LEAD_NOISE)), "")
    boxed = _BOXED_HEAD.search(line)
    if boxed:
        content = _balanced(line, boxed.end())
        if content is not None:
            return content
    return _first_sentence(line)


def _first_sentence(line: str) -> str:
    for match in _SENTENCE_END.finditer(line):
        word = _LAST_WORD.search(line, 0, match.start())
        token = word.group(1).lower().strip("\"'(").rstrip(".") if word else ""
        if token and ((len(token) == 1 and token.isalpha()) or token in _ABBREVIATIONS):
            continue
        return line[: match.start()]
    return line


def clean_answer(text: str) -> str:
    """Strip markup that is not part of an answer: emphasis, math delimiters, ``\\text{}``, quotes, end dots."""
    text = text.strip()[: 2 * MAX_ANSWER_CHARS]
    if not text:
        return ""
    text = _EMPHASIS_RUN.sub("", text).strip().strip("*_`").strip()
    for _ in range(3):
        before = text
        for left, right in _MATH_WRAPPERS:
            if len(text) > len(left) + len(right) and text.startswith(left) and text.endswith(right):
                text = text[len(left) : -len(right)].strip()
        if len(text) >= 2 and text[0] + text[-1] in ('""', "''", "“”", "‘’", "``"):
            text = text[1:-1].strip()
        text = text.rstrip(" \t.,;:!。").strip()
        if text == before:
            break
    if "\\" in text:
        text = _TEXT_CMD.sub(r"\1", text).strip()
    return text[:MAX_ANSWER_CHARS]


def gold_answers(ground_truth: Any) -> tuple[str, ...]:
    """The acceptable answers of a label: a bare answer, a phrased one, a list, or a JSON list string."""
    if isinstance(ground_truth, str):
        return _gold_from_str(ground_truth)
    if isinstance(ground_truth, bytes):
        return _gold_from_str(ground_truth.decode("utf-8", "replace"))
    if isinstance(ground_truth, dict):
        for key in ("answers", "answer", "ground_truth", "target"):
            if key in ground_truth:
                return gold_answers(ground_truth[key])
        return ()
    if ground_truth is None:
        return ()
    if isinstance(ground_truth, Iterable):
        out: list[str] = []
        for item in ground_truth:
            for gold in gold_answers(item) if not isinstance(item, str) else _gold_from_str(item):
                if gold not in out:
                    out.append(gold)
        return tuple(out)
    return _gold_from_str(str(ground_truth))


@lru_cache(maxsize=8192)
def _gold_from_str(text: str) -> tuple[str, ...]:
    stripped = text.strip()
    if stripped.startswith("[") and stripped.endswith("]") and len(stripped) <= _MAX_GOLD_JSON_CHARS:
        try:
            items = json.loads(stripped)
        except ValueError:
            items = None
        if isinstance(items, list) and all(isinstance(x, str | int | float) for x in items):
            return gold_answers([str(x) for x in items])
    marked = _marked_answer(stripped)
    gold = clean_answer(marked if marked is not None else stripped)
    return (gold,) if gold else ()
