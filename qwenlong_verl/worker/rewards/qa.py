"""Free-form QA: SQuAD-style normalisation, exact or sub-exact match, and a guard against hedging.

Sub-exact match (the gold, as whole words, inside the prediction) accepts "The capital is Paris" for
"Paris", which a policy quickly learns to exploit by answering with everything it can think of. So a
sub-exact match (not an exact one) is refused when the prediction

* offers alternatives: "or", "either", "and/or", or "/" between words, unless the gold itself has them;
* is a list of three or more items (commas, semicolons, "and") while the gold is not a list;
* is far longer than the gold: more than ``3 * gold_words + 5`` normalised words. Only this one still goes
  to the judge, which reads the question and may find a long answer right.
"""

from __future__ import annotations

import re
import unicodedata
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


def verify_qa(prediction: str, golds: Sequence[str], extra_info: Mapping[str, Any], symbolic: bool) -> RuleVerdict:
    pred_norm = normalize_text(prediction)
    if not pred_norm:
        return RuleVerdict(0.0, judgeable=False, reason="empty")
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
