"""Free-form QA: SQuAD-style normalisation, exact or sub-exact match, and a guard against hedging.

Sub-exact match (the gold, as whole words, inside the prediction) accepts "The capital is Paris" for
"Paris", which a policy quickly learns to exploit by answering with everything it can think of. So a
sub-exact match (not an exact one) is refused when the prediction

* offers alternatives: "or", "either", "and/or", or "/" between words, unless the gold itself has them;
* is a list of three or more items (commas, semicolons, "and") while the gold is not a list;
* is far longer than the gold: more than ``3 * gold_words + 5`` normalised words. Only this one still goes
  to the judge, which reads the question and may find a long answer right.

Structured golds (Loong's clustering objects, lists of lists) are compared as structures: when a gold parses as
JSON or as a Python literal (``ast.literal_eval``, never ``eval``) into a list or an object, and the prediction
parses the same way, the two structures decide. Punctuation-stripped text cannot: ``{"a":["x","y"]}`` and
``{"a": ["x", "y"]}`` normalise to different strings. See :func:`structure_key` for what counts as equal.
A prediction that does not parse is compared as text, as before; so is every gold that does not parse.
"""

from __future__ import annotations

import ast
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from qwenlong_verl.worker.rewards.verdict import RuleVerdict

_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_SPACERS = re.compile(r"[-‐‑‒–—―/_]+")
_NON_WORD = re.compile(r"[^\w\s]+")
_WHITESPACE = re.compile(r"\s+")

_ALTERNATIVE = re.compile(r"\b(?:or|either|and/or)\b|\w\s*/\s*\w", re.IGNORECASE)
_LIST_SPLIT = re.compile(r"\s*(?:[,;]|\band\b|&)\s*", re.IGNORECASE)


@lru_cache(maxsize=16384)
def normalize_text(text: str) -> str:
    """Lower case, no diacritics, no punctuation, no articles, single spaces (SQuAD, plus diacritics)."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = _SPACERS.sub(" ", text)
    text = _NON_WORD.sub("", text)
    text = _ARTICLES.sub(" ", text)
    return _WHITESPACE.sub(" ", text).strip()


def contains_words(haystack: str, needle: str) -> bool:
    """``needle`` occurs in ``haystack`` as whole words (both already normalised)."""
    if not needle:
        return False
    start = haystack.find(needle)
    while start >= 0:
        end = start + len(needle)
        if (start == 0 or haystack[start - 1] == " ") and (end == len(haystack) or haystack[end] == " "):
            return True
        start = haystack.find(needle, start + 1)
    return False


def hedge_reason(prediction: str, gold: str, pred_norm: str, gold_norm: str) -> str:
    """Why ``prediction`` is a hedge with respect to ``gold`` (``""`` when it is not)."""
    if _ALTERNATIVE.search(prediction) and not _ALTERNATIVE.search(gold):
        return "alternatives"
    if _count_items(prediction) >= 3 and _count_items(gold) < 2:
        return "list"
    if len(pred_norm.split()) > 3 * len(gold_norm.split()) + 5:
        return "too_long"
    return ""


def _count_items(text: str) -> int:
    return sum(1 for part in _LIST_SPLIT.split(text) if part.strip())


# ----------------------------------------------------------------------------- structured answers

MAX_STRUCTURE_CHARS = 20_000
"""Longest text parsed as a structure; a longer one is compared as text. Bounds the work per rollout (an
extracted prediction is at most 1,000 characters anyway; this bounds the gold)."""

MAX_STRUCTURE_DEPTH = 16
"""Deeper nesting is not an answer anyone writes: compared as text."""

_FENCE = re.compile(r"^`{3}[ \t]*(?:json|python|py)?[ \t]*\n?(.*?)\n?[ \t]*`{3}$", re.IGNORECASE | re.DOTALL)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NUMBER_START = frozenset("0123456789+-.")
_LITERAL_ERRORS = (ValueError, TypeError, SyntaxError, MemoryError, RecursionError)
_SEQUENCES = (list, tuple, set, frozenset)


class _TooDeep(Exception):
    pass


def parse_structure(text: str) -> list | tuple | dict | set | frozenset | None:
    """The list or object ``text`` writes as JSON, else as a Python literal (``ast.literal_eval``: literals only,
    nothing is evaluated); ``None`` for anything else, a scalar, or a text over :data:`MAX_STRUCTURE_CHARS`.
    A fenced code block (```json ... ```) counts as its content."""
    if not isinstance(text, str) or len(text) > MAX_STRUCTURE_CHARS:
        return None
    text = text.strip()
    fenced = _FENCE.match(text) if text.startswith("```") else None
    if fenced:
        text = fenced.group(1).strip()
    if len(text) < 2 or text[0] not in "[{(" or text[-1] not in "]})":
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        try:
            value = ast.literal_eval(text)
        except _LITERAL_ERRORS:
            return None
    return value if isinstance(value, (dict, *_SEQUENCES)) else None


@lru_cache(maxsize=8192)
def structure_key(text: str) -> tuple | None:
    """Canonical form of the structure ``text`` writes (see :func:`parse_structure`); equal forms are the same
    answer. ``None`` when ``text`` is not a structure.

    * Objects: key order is ignored; keys and values compare by their canonical forms.
    * Strings compare by :func:`normalize_text` (case, punctuation, articles, diacritics), so ``"Acme Corp."``
      equals ``"acme corp"``; a string that is a plain number is that number.
    * Numbers compare by value (``1``, ``1.0`` and ``"1"`` are equal); booleans and null as the words
      ``true`` / ``false`` / ``null``.
    * Lists keep their order, since an ordering or a chain is itself the answer, **except a list that is the value
      of an object key**: the members of a named group (Loong's clustering answers, ``{"group": [members]}``)
      have no order and compare as a multiset. Sets (a Python literal) never have an order.
    """
    value = parse_structure(text)
    if value is None:
        return None
    try:
        return _key(value, 0, False)
    except (_TooDeep, RecursionError):
        return None


def _key(value: Any, depth: int, members: bool) -> tuple:
    """Hashable canonical form; unordered parts are frozensets (multisets as item counts): C-speed to build and
    compare, no sorting of mixed types."""
    if depth > MAX_STRUCTURE_DEPTH:
        raise _TooDeep
    if isinstance(value, dict):
        return ("{}", frozenset((_key(k, depth + 1, False), _key(v, depth + 1, True)) for k, v in value.items()))
    if isinstance(value, _SEQUENCES):
        items = [_key(v, depth + 1, False) for v in value]
        if members or isinstance(value, (set, frozenset)):
            return ("[]~", frozenset(Counter(items).items()))
        return ("[]", tuple(items))
    return _scalar_key(value)


def _scalar_key(value: Any) -> tuple:
    if value is None or isinstance(value, bool):
        return ("s", "null" if value is None else str(value).lower())
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in _NUMBER_START and _NUMBER.fullmatch(text):
            value = float(text)
        else:  # a bare article ("A", a group label) would normalise to nothing: then its lower case
            return ("s", normalize_text(value) or value.strip().lower())
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float range: its digits
            return ("s", str(value))
        return ("s", "nan") if math.isnan(number) else ("n", number)
    return ("s", normalize_text(str(value)))  # complex, bytes: as their text


def _structured(prediction: str, golds: Sequence[str]) -> tuple[RuleVerdict | None, Sequence[str]]:
    """The verdict when a gold and the prediction are both structures, and the golds left for the text rules."""
    shapes = [structure_key(g) for g in golds]
    if all(shape is None for shape in shapes):
        return None, golds
    predicted = structure_key(prediction)
    if predicted is None:
        return None, golds  # written as prose: the text rules below
    if predicted in shapes:
        return RuleVerdict(1.0, reason="structure"), ()
    rest = [g for g, shape in zip(golds, shapes, strict=True) if shape is None]
    return (None if rest else RuleVerdict(0.0, reason="structure_mismatch")), rest


def verify_qa(prediction: str, golds: Sequence[str], extra_info: Mapping[str, Any], symbolic: bool) -> RuleVerdict:
    pred_norm = normalize_text(prediction)
    if not pred_norm:
        return RuleVerdict(0.0, judgeable=False, reason="empty")
    structured, golds = _structured(prediction, golds)
    if structured is not None:
        return structured
    hedge = ""
    for gold in golds:
        gold_norm = normalize_text(gold)
        if not gold_norm:
            continue
        if pred_norm == gold_norm:
            return RuleVerdict(1.0, reason="exact")
        if contains_words(pred_norm, gold_norm):
            hedge = hedge_reason(prediction, gold, pred_norm, gold_norm)
            if not hedge:
                return RuleVerdict(1.0, reason="sub_em")
    if hedge:
        # A long answer may still be right (the judge reads it); alternatives and lists may not.
        return RuleVerdict(0.0, judgeable=hedge == "too_long", reason=f"hedge_{hedge}")
    if any(hedge_reason(prediction, g, pred_norm, normalize_text(g)) == "alternatives" for g in golds):
        return RuleVerdict(0.0, judgeable=False, reason="hedge_alternatives")
    return RuleVerdict(0.0, reason="mismatch")
