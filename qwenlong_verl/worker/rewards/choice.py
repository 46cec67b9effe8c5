"""Multiple choice: exactly one option letter, inside the range of options offered.

Accepted forms: ``B``, ``(B)``, ``B)``, ``B.``, ``[B]``, ``B. <option text>``, ``(B) <option text>``,
``Option B``, ``choice (b)``, ``... is B``. More than one letter ("(A) or (B)", "A and C", "A/B") is a hedge: wrong.
A letter outside the offered range (``E`` when the question offers A-D) is wrong. An answer that gives
only an option's text ("Paris") counts as that option's letter when it equals exactly one option's text.

The offered range comes from ``extra_info["choices"]`` / ``["options"]`` (a list or mapping) or
``extra_info["num_choices"]``, else from the options listed in ``extra_info["question"]``, else A-D; it
always includes the gold letter. A wrong letter is final: the judge is asked only when the prediction names
no letter at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from qwenlong_verl.worker.rewards.qa import normalize_text
from qwenlong_verl.worker.rewards.verdict import RuleVerdict

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DEFAULT_OPTION_COUNT = 4

_SOLO = re.compile(r"[(\[{]?\s*([A-Za-z])\s*[)\]}]?[.:]?")
# A leading letter: bracketed, or a capital followed by a delimiter, or by a space and more text. "A" and
# "I" followed by a lower-case word are English words ("A cat", "I think"), not options.
_LEADING = re.compile(
    r"(?:(?:option|choice)\s*)?(?:[(\[{]\s*([A-Za-z])\s*[)\]}]|([A-Z])(?=[.:),/&]|\s*-\s|\s+\S)(?<![AI](?=\s+[a-z])))",
    re.I,
)
_MORE_LETTERS = re.compile(r"\s*[.:)]?\s*(?:,|/|&|\bor\b|\band\b|\band/or\b)\s*[(\[]?\s*([A-Za-z])\b", re.I)
_NAMED = re.compile(r"\b(?:option|choice)\s*[(\[]?\s*([A-Za-z])\b\s*[)\]]?", re.I)
_BRACKETED = re.compile(r"[(\[]\s*([A-Za-z])\s*[)\]]")
_LETTER_PAIR = re.compile(
    r"(?<![\w'])[(\[]?([A-Z])[)\]]?\s*(?:,|/|&|\bor\b|\band\b|\band/or\b)\s*[(\[]?([A-Z])(?![\w'])"
)
_TRAILING = re.compile(r"\b(?:is|be|was)\s*:?\s*[(\[]?([A-Z])[)\]]?[.!]?\s*$")
_OPTION_LINE = re.compile(r"^[ \t]*[(\[]?([A-Z])[)\].:][ \t]*(\S.*)$", re.M)
_OPTION_INLINE = re.compile(r"\(([A-Z])\)\s*([^()]+?)(?=\s*\([A-Z]\)|$)", re.S)
_QUESTION_SCAN_CHARS = 20_000


def read_letter(text: str) -> tuple[str, bool]:
    """``(letter, hedge)`` named by an answer: ``("", False)`` when it names none."""
    text = text.strip().strip("*_`'\" ")
    solo = _SOLO.fullmatch(text)
    if solo:
        return solo.group(1).upper(), False
    pair = _LETTER_PAIR.search(text)
    if pair and pair.group(1) != pair.group(2):
        return "", True
    letters: list[str] = []
    lead = _LEADING.match(text)
    if lead:
        letters.append((lead.group(1) or lead.group(2)).upper())
        more = _MORE_LETTERS.match(text, lead.end())
        if more:
            letters.append(more.group(1).upper())
    trailing = _TRAILING.search(text)
    if trailing:
        letters.append(trailing.group(1))
    letters += [m.group(1).upper() for m in _NAMED.finditer(text)]
    letters += [m.group(1).upper() for m in _BRACKETED.finditer(text)]
    distinct = sorted(set(letters))
    if len(distinct) > 1:
        return "", True
    return (distinct[0] if distinct else ""), False


@lru_cache(maxsize=4096)
def question_options(question: str) -> tuple[tuple[str, str], ...]:
    """``((letter, text), ...)`` listed in a question, one per line or inline as ``(A) ... (B) ...``."""
    tail = question[-_QUESTION_SCAN_CHARS:]
    for pattern in (_OPTION_LINE, _OPTION_INLINE):
        found: dict[str, str] = {}
        for match in pattern.finditer(tail):
            found.setdefault(match.group(1), match.group(2).strip())
        letters = "".join(sorted(found))
        if len(letters) >= 2 and LETTERS.startswith(letters):
            return tuple((letter, found[letter]) for letter in letters)
    return ()


def offered_letters(extra_info: Mapping[str, Any], gold_letters: Sequence[str] = ()) -> str:
    """The option letters a question offers (see module docs), always including the gold letters."""
    count = 0
    for key in ("choices", "options"):
        value = extra_info.get(key)
        if value is not None and not isinstance(value, str | bytes):
            try:
                count = len(value)
            except TypeError:
                count = 0
            if count:
                break
    if not count:
        for key in ("num_choices", "num_options"):
            value = extra_info.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                count = value
                break
    if not count:
        question = extra_info.get("question")
        count = len(question_options(question)) if isinstance(question, str) else 0
    count = min(max([count or DEFAULT_OPTION_COUNT, *(LETTERS.index(g) + 1 for g in gold_letters if g)]), 26)
    return LETTERS[:count]


def _letter_by_text(answer: str, extra_info: Mapping[str, Any]) -> str:
    question = extra_info.get("question")
    if not isinstance(question, str):
        return ""
    wanted = normalize_text(answer)
    matches = [letter for letter, text in question_options(question) if normalize_text(text) == wanted]
    return matches[0] if wanted and len(matches) == 1 else ""


def verify_choice(prediction: str, golds: Sequence[str], extra_info: Mapping[str, Any], symbolic: bool) -> RuleVerdict:
    gold_letters = [read_letter(g)[0] or _letter_by_text(g, extra_info) for g in golds]
    letter, hedge = read_letter(prediction)
    if hedge:
        return RuleVerdict(0.0, judgeable=False, reason="hedge")
    if not letter:
        letter = _letter_by_text(prediction, extra_info)
        if not letter:
            if any(not g for g in gold_letters):
                text = normalize_text(prediction)
                if text and any(text == normalize_text(g) for g, gl in zip(golds, gold_letters, strict=True) if not gl):
                    return RuleVerdict(1.0, reason="exact")
            return RuleVerdict(0.0, reason="no_letter")
    if letter not in offered_letters(extra_info, gold_letters):
        return RuleVerdict(0.0, judgeable=False, reason="out_of_range")
    if letter in gold_letters:
        return RuleVerdict(1.0, reason="letter")
    return RuleVerdict(0.0, judgeable=False, reason="letter")
