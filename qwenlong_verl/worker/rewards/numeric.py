"""Numeric answers, checked the DocMath way: relative tolerance 0.15 %, percent scaling accepted.

Reading a number (fast path, no sympy): currency signs and codes, thousands separators, ``%`` and the
words *percent* / *per cent*, scale words (*thousand*, *million*, *billion*, *trillion*, *mn*, *bn*, or
``k``/``m``/``b`` glued to the number), scientific notation (``1.2e6``, ``1.2 \\times 10^{6}``), plain and
``\\frac`` fractions of two numbers, and the usual LaTeX noise (``\\$``, ``\\%``, ``{,}``, ``\\text{}``).
When the answer is an equation, the part after the last ``=`` counts. Anything else that looks like math
(roots, powers, ``\\pi``) is evaluated by math-verify in a guarded child process
(:mod:`qwenlong_verl.worker.rewards.symbolic`).

Matching a prediction ``p`` to a gold ``g``:

* ``|p - g| <= 0.0015 * |g|`` (DocMath's tolerance; a zero gold needs an exact zero);
* ``p * 100`` or ``p / 100`` may match instead (``0.125`` for ``12.5%`` and back), as DocMath allows;
* the sign must agree, and no other power of ten is forgiven;
* a scale word is part of the value ("1.2 million" is 1,200,000), except when only one side has one: then
  that side may also match by the number as written, because "$1.2 million" answers a question asked
  "in millions" whose gold is ``1.2``.

A prediction offering several different numbers as alternatives ("5 or 6", "between 5 and 6", "5-6") is a
hedge: wrong, and not sent to the judge. With several numbers otherwise, the first one is the answer, not
counting bare years (1900-2100) when there is another number ("5.2 billion in 2019").
A side without any number (a gold like "N/A") is compared as normalised text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from qwenlong_verl.worker.rewards.qa import normalize_text
from qwenlong_verl.worker.rewards.verdict import RuleVerdict

TOLERANCE = 0.0015
"""DocMath's relative tolerance."""

_ZERO_TOLERANCE = 1e-9
_MAX_CHARS = 400

_SCALE_WORDS = {
    "thousand": 1e3,
    "k": 1e3,
    "million": 1e6,
    "mn": 1e6,
    "m": 1e6,
    "billion": 1e9,
    "bn": 1e9,
    "b": 1e9,
    "trillion": 1e12,
    "tn": 1e12,
}

_REPLACEMENTS = (
    ("\\$", "$"),
    ("\\%", "%"),
    ("{,}", ","),
    ("\\dfrac", "\\frac"),
    ("\\tfrac", "\\frac"),
    ("\\left", ""),
    ("\\right", ""),
    ("\\displaystyle", ""),
    ("\\approx", "="),
    ("≈", "="),
    ("\\quad", " "),
    ("\\,", ""),
    ("\\!", ""),
    ("\\;", " "),
    ("\\ ", " "),
    ("−", "-"),
    ("–", "-"),
    ("\u00a0", " "),
    ("\u202f", ""),
)
_TEXT_CMD = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_SCI = re.compile(r"(\d(?:[\d,]*\d)?(?:\.\d+)?)\s*(?:\\times|\\cdot|×|\*|x)\s*10\s*\^\s*\{?\s*([-+]?\d{1,3})\s*\}?")
_LATEX_FRAC = re.compile(r"\\frac\s*\{\s*([-+]?\d+(?:\.\d+)?)\s*\}\s*\{\s*([-+]?\d+(?:\.\d+)?)\s*\}")
_PLAIN_FRAC = re.compile(r"(?<![\w.,/])([-+]?\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)(?![\w.,/%])")
_STILL_MATH = re.compile(r"\\[a-zA-Z]+|\^|√|π|\bsqrt\b|\bpi\b")

_NUMBER = re.compile(
    r"""
    (?<![\w.])
    (?P<sign>[-+])?[ \t]*
    (?:(?:us\$|hk\$|a\$|c\$|[$€£¥₹]|usd|eur|gbp|rmb|cny|jpy|inr)[ \t]*)?
    (?P<sign2>[-+])?
    (?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)
    (?:e(?P<exp>[-+]?\d{1,4})(?!\d))?
    (?:
        (?P<percent>[ \t]*(?:%|percent\b|per[ \t]?cent\b|pct\b))
      | [ \t]*(?P<word>thousand|million|billion|trillion|mn|bn|tn)\b
      | (?P<letter>k|m|b)\b
    )?
    """,
    re.VERBOSE | re.IGNORECASE,
)
_HEDGE = re.compile(r"\b(?:or|either|between)\b|~|(?<=\d)\s*-\s*\$?\d|\d\s*/\s*\$?\d", re.IGNORECASE)


@dataclass(frozen=True)
class Quantity:
    """One number as written in an answer."""

    value: float
    """The value, scale word applied ("1.2 million" -> 1_200_000)."""

    written: float
    """The number as written, without the scale word (1.2)."""

    scaled: bool
    """A scale word (thousand, million...) follows the number."""


@dataclass(frozen=True)
class Reading:
    """What an answer says numerically."""

    quantity: Quantity | None
    """The answer's number, or ``None`` when it has none."""

    hedge: bool = False
    """Several different numbers offered as alternatives."""

    symbolic: str = ""
    """LaTeX left for math-verify (set only when the fast path could not read the answer)."""


def within_tolerance(pred: float, gold: float) -> bool:
    """DocMath's check: relative error at most :data:`TOLERANCE` of the gold."""
    return abs(pred - gold) <= max(abs(gold) * TOLERANCE, _ZERO_TOLERANCE)


def numbers_match(pred: Quantity, gold: Quantity) -> bool:
    """``pred`` equals ``gold`` within tolerance, allowing x100 percent scaling (see module docs)."""
    pred_values = [pred.value]
    gold_values = [gold.value]
    if pred.scaled and not gold.scaled:
        pred_values.append(pred.written)
    if gold.scaled and not pred.scaled:
        gold_values.append(gold.written)
    for g in gold_values:
        for p in pred_values:
            if within_tolerance(p, g) or within_tolerance(p * 100.0, g) or within_tolerance(p / 100.0, g):
                return True
    return False


@lru_cache(maxsize=16384)
def read_number(text: str) -> Reading:
    """The number an answer states (fast path only; see :attr:`Reading.symbolic`)."""
    text = _prepare(text[:_MAX_CHARS])
    if "=" in text:
        tail = text.rsplit("=", 1)[1]
        if any(ch.isdigit() for ch in tail) or "\\" in tail:
            text = tail
    text = _SCI.sub(lambda m: f"{m.group(1)}e{m.group(2)}", text)
    text = _LATEX_FRAC.sub(_frac_value, text)
    if _STILL_MATH.search(text):
        return Reading(None, symbolic=text.strip())
    text = _PLAIN_FRAC.sub(_frac_value, text)
    quantities = [q for q in map(_quantity, _NUMBER.finditer(text)) if q is not None]
    if not quantities:
        return Reading(None)
    # "5.2 billion in 2019": a bare year is context, not the answer, when there is another number.
    quantities = [q for q in quantities if not _is_year(q)] or quantities
    first = quantities[0]
    distinct = [q for q in quantities[1:] if not numbers_match(q, first)]
    if distinct and _HEDGE.search(text):
        return Reading(first, hedge=True)
    return Reading(first)


def _is_year(q: Quantity) -> bool:
    return not q.scaled and q.value.is_integer() and 1900 <= q.value <= 2100


def _prepare(text: str) -> str:
    for old, new in _REPLACEMENTS:
        if old in text:
            text = text.replace(old, new)
    if "\\" in text:
        for _ in range(3):
            text, n = _TEXT_CMD.subn(r" \1 ", text)
            if not n:
                break
    return text.strip().strip("$").strip()


def _frac_value(match: re.Match) -> str:
    num, den = float(match.group(1)), float(match.group(2))
    if den == 0 or not math.isfinite(num / den):
        return match.group(0)
    return repr(num / den)


def _quantity(match: re.Match) -> Quantity | None:
    try:
        written = float(match.group("num").replace(",", ""))
        if match.group("exp"):
            written *= 10.0 ** int(match.group("exp"))
    except (OverflowError, ValueError):
        return None
    if (match.group("sign") or match.group("sign2") or "+") == "-":
        written = -written
    scale_word = (match.group("word") or match.group("letter") or "").lower()
    scale = _SCALE_WORDS.get(scale_word, 1.0)
    value = written * scale
    if not (math.isfinite(written) and math.isfinite(value)):
        return None
    return Quantity(value=value, written=written, scaled=scale != 1.0)


def _resolve(text: str, symbolic: bool) -> Reading | None:
    """:func:`read_number`, finishing LaTeX with math-verify when allowed; ``None`` = needs math-verify."""
    reading = read_number(text)
    if not reading.symbolic:
        return reading
    if not symbolic:
        return None
    from qwenlong_verl.worker.rewards.symbolic import latex_value

    value = latex_value(reading.symbolic)
    if value is None:
        return Reading(None)
    return Reading(Quantity(value=value, written=value, scaled=False))


def verify_numeric(
    prediction: str, golds: Sequence[str], extra_info: Mapping[str, Any], symbolic: bool
) -> RuleVerdict | None:
    pred = _resolve(prediction, symbolic)
    if pred is None:
        return None
    if pred.hedge:
        return RuleVerdict(0.0, judgeable=False, reason="hedge")
    undecided = False
    for gold_text in golds:
        gold = _resolve(gold_text, symbolic)
        if gold is None:
            undecided = True
            continue
        if pred.quantity is not None and gold.quantity is not None:
            if numbers_match(pred.quantity, gold.quantity):
                return RuleVerdict(1.0, reason="tolerance")
        elif pred.quantity is None and gold.quantity is None:
            if normalize_text(prediction) and normalize_text(prediction) == normalize_text(gold_text):
                return RuleVerdict(1.0, reason="exact")
    if undecided:
        return None
    return RuleVerdict(0.0, reason="mismatch")
