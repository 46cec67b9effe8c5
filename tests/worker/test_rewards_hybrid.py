"""Labelled cases for the rule reward: formats, think tags, numbers, choices, QA, hedges, gold shapes.

Each row is scored with ``compute_score`` (no judge configured) and checked against the label a careful
human grader would give. Rows marked ``KNOWN_MISS`` are answers the rules get wrong on purpose (the
judge's job); they are strict xfails, so fixing one fails loudly and the label must move. The last test
prints the labelled-case accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from qwenlong_verl.worker.rewards import compute_score

T = "<think>\nLet me read the document carefully. The answer is probably 3, but let me check.\n</think>\n\n"
"""A finished reasoning block that states a *different* answer: only what follows it may count."""

Q_ABCD = "Which city hosts the HQ?\n(A) Paris\n(B) London\n(C) Berlin\n(D) Rome"


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    response: str
    gold: Any
    right: bool
    pred: str | None = None
    extra: dict = field(default_factory=dict)
    known_miss: bool = False


KNOWN_MISS = True

CASES: list[Case] = [
    # ------------------------------------------------------------------ think tags and answer location
    Case("think/after-close", "hotpotqa", T + "The answer is Paris.", "Paris", True, "Paris"),
    Case("think/unfinished", "hotpotqa", "<think>\nThe answer is Paris", "Paris", False, ""),
    Case("think/unfinished-long", "docmath_x", "<think>" + "so 12.5 " * 400, "12.5", False, ""),
    Case("think/answer-inside-only", "hotpotqa", "<think>The answer is Paris.</think>", "Paris", False, ""),
    Case("think/no-tags", "hotpotqa", "The answer is Paris.", "Paris", True, "Paris"),
    Case("think/bare-short", "hotpotqa", "Paris", "Paris", True, "Paris"),
    Case("think/bare-after-close", "hotpotqa", T + "Paris", "Paris", True, "Paris"),
    Case("think/two-blocks-last-wins", "hotpotqa", T + "wrong</think> The answer is Paris", "Paris", True, "Paris"),
    Case("think/close-without-open", "hotpotqa", "reasoning here</think>The answer is Paris", "Paris", True, "Paris"),
    Case("think/empty-after-close", "hotpotqa", T, "3", False, ""),
    Case("think/whitespace-after-close", "hotpotqa", T + "  \n\n ", "3", False, ""),
    Case("think/long-bare-no-marker", "hotpotqa", T + "Paris is mentioned. " * 30, "Paris", False, ""),
    Case("think/inner-answer-ignored", "docmath", T + "Final answer: 7", "3", False, "7"),
    # ------------------------------------------------------------------ answer markers
    Case("marker/the-answer-is", "hotpotqa", T + "the answer is London", "London", True, "London"),
    Case("marker/capitalised", "hotpotqa", T + "The Answer Is London", "London", True, "London"),
    Case("marker/upper", "hotpotqa", T + "THE ANSWER IS LONDON", "London", True, "LONDON"),
    Case("marker/correct-answer", "hotpotqa", T + "The correct answer is London.", "London", True, "London"),
    Case("marker/final-answer-colon", "hotpotqa", T + "Final Answer: London", "London", True, "London"),
    Case("marker/answer-colon", "hotpotqa", T + "Answer: London", "London", True, "London"),
    Case("marker/bold-answer", "hotpotqa", T + "**Answer:** London", "London", True, "London"),
    Case("marker/bold-label-colon-outside", "hotpotqa", T + "**Answer**: London", "London", True, "London"),
    Case("marker/bold-value", "hotpotqa", T + "The answer is **London**.", "London", True, "London"),
    Case("marker/italic-value", "hotpotqa", T + "The answer is *London*", "London", True, "London"),
    Case("marker/whole-line-bold", "hotpotqa", T + "**The answer is London.**", "London", True, "London"),
    Case("marker/next-line", "hotpotqa", T + "The answer is:\n\n**London**", "London", True, "London"),
    Case("marker/boxed", "docmath", T + "So $\\boxed{12.5}$.", "12.5", True, "12.5"),
    Case("marker/boxed-nested", "docmath", T + "\\boxed{\\frac{1}{4}}", "0.25", True, "\\frac{1}{4}"),
    Case("marker/boxed-text", "hotpotqa", T + "\\boxed{\\text{London}}", "London", True, "London"),
    Case("marker/answer-tag", "hotpotqa", T + "<answer>London</answer>", "London", True, "London"),
    Case("marker/answer-tag-phrase", "hotpotqa", T + "<answer>The answer is London</answer>", "London", True, "London"),
    Case("marker/last-wins", "hotpotqa", T + "The answer is Paris. Wait, the answer is London.", "London", True),
    Case(
        "marker/last-wins-wrong", "hotpotqa", T + "The answer is London. Actually the answer is Paris.", "London", False
    ),
    Case("marker/phrase-after-boxed", "docmath", T + "\\boxed{5}. On reflection the answer is 7.", "7", True, "7"),
    Case("marker/boxed-after-phrase", "docmath", T + "The answer is \\boxed{7}", "7", True, "7"),
    Case("marker/sentence-cut", "hotpotqa", T + "The answer is London. It is the capital.", "London", True, "London"),
    Case("marker/abbreviation-kept", "hotpotqa", T + "The answer is St. Louis. It is in Missouri.", "St. Louis", True),
    Case("marker/initials-kept", "hotpotqa", T + "The answer is J. K. Rowling. She wrote it.", "J. K. Rowling", True),
    Case("marker/empty-answer-colon", "hotpotqa", T + "Answer:", "London", False, ""),
    Case("marker/empty-boxed", "docmath", T + "\\boxed{}", "3", False, ""),
    Case("marker/answered-not-marker", "hotpotqa", T + "I answered London", "London", True),
    Case("marker/latex-dollars", "docmath", T + "The answer is $42$.", "42", True, "42"),
    Case("marker/quoted", "hotpotqa", T + 'The answer is "London".', "London", True, "London"),
    Case("marker/answers-are", "hotpotqa", T + "The answers are Lennon and McCartney", "Lennon and McCartney", True),
    # ------------------------------------------------------------------ numeric (DocMath tolerance)
    Case("num/exact", "docmath", T + "The answer is 12.5", "12.5", True),
    Case("num/integer-vs-float", "docmath", T + "The answer is 12", "12.0", True),
    Case("num/within-tolerance", "docmath", T + "The answer is 12.51", "12.5", True),
    Case("num/outside-tolerance", "docmath", T + "The answer is 12.52", "12.5", False),
    Case("num/rounded-2dp", "docmath", T + "The answer is 3.14", "3.14159", True),
    Case("num/rounded-too-coarse", "docmath", T + "The answer is 0.06", "0.0567", False),
    Case("num/thousands", "docmath", T + "The answer is 1,234,567", "1234567", True),
    Case("num/thousands-decimal", "docmath", T + "The answer is 1,234.56", "1234.56", True),
    Case("num/currency-dollar", "docmath", T + "The answer is $1,234.50", "1234.5", True),
    Case("num/currency-latex", "docmath", T + "The answer is \\$1,234.50", "1234.5", True),
    Case("num/currency-euro", "docmath", T + "The answer is €300", "300", True),
    Case("num/currency-code", "docmath", T + "The answer is USD 300", "300", True),
    Case("num/currency-word-after", "docmath", T + "The answer is 300 dollars", "300", True),
    Case("num/unit-after", "docmath", T + "The answer is 45 km", "45", True),
    Case("num/percent-sign", "docmath", T + "The answer is 12.5%", "12.5", True),
    Case("num/percent-latex", "docmath", T + "The answer is $12.5\\%$", "12.5", True),
    Case("num/percent-word", "docmath", T + "The answer is 12.5 percent", "12.5", True),
    Case("num/percent-to-fraction", "docmath", T + "The answer is 12.5%", "0.125", True),
    Case("num/fraction-to-percent", "docmath", T + "The answer is 0.125", "12.5", True),
    Case("num/gold-with-percent", "docmath", T + "The answer is 12.5", "12.5%", True),
    Case("num/million-word", "docmath", T + "The answer is 1.2 million", "1200000", True),
    Case("num/billion-word", "docmath", T + "The answer is $3.4 billion", "3400000000", True),
    Case("num/thousand-word", "docmath", T + "The answer is 12 thousand", "12000", True),
    Case("num/million-vs-in-millions-gold", "docmath", T + "The answer is $1.2 million", "1.2", True),
    Case("num/mn-suffix", "docmath", T + "The answer is $5mn", "5000000", True),
    Case("num/M-suffix", "docmath", T + "The answer is $5M", "5000000", True),
    Case("num/bn-suffix", "docmath", T + "The answer is 2.5bn", "2500000000", True),
    Case("num/million-wrong-scale", "docmath", T + "The answer is 1.2 billion", "1200000", False),
    Case("num/no-power-of-ten-leniency", "docmath", T + "The answer is 1200000", "1.2", False),
    Case("num/no-x10", "docmath", T + "The answer is 125", "12.5", False),
    Case("num/no-x1000", "docmath", T + "The answer is 12500", "12.5", False),
    Case("num/sign-respected", "docmath", T + "The answer is -5", "5", False),
    Case("num/sign-respected-2", "docmath", T + "The answer is 5", "-5", False),
    Case("num/negative", "docmath", T + "The answer is -3.5", "-3.5", True),
    Case("num/unicode-minus", "docmath", T + "The answer is −3.5", "-3.5", True),
    Case("num/negative-currency", "docmath", T + "The answer is -$3", "-3", True),
    Case("num/currency-negative", "docmath", T + "The answer is $-3", "-3", True),
    Case("num/zero", "docmath", T + "The answer is 0", "0", True),
    Case("num/zero-needs-exact", "docmath", T + "The answer is 0.001", "0", False),
    Case("num/latex-frac", "docmath", T + "The answer is \\frac{3}{4}", "0.75", True),
    Case("num/latex-dfrac", "docmath", T + "The answer is $\\dfrac{1}{8}$", "0.125", True),
    Case("num/plain-fraction", "docmath", T + "The answer is 3/4", "0.75", True),
    Case("num/fraction-third", "docmath", T + "The answer is 1/3", "0.333", True),
    Case("num/latex-sqrt", "docmath", T + "The answer is \\frac{\\sqrt{3}}{2}", "0.866", True),
    Case("num/latex-power", "docmath", T + "The answer is $2^{10}$", "1024", True),
    Case("num/latex-pi", "docmath", T + "The answer is $\\pi$", "3.1416", True),
    Case("num/scientific-e", "docmath", T + "The answer is 1.2e6", "1200000", True),
    Case("num/scientific-times", "docmath", T + "The answer is $1.2 \\times 10^{6}$", "1200000", True),
    Case("num/latex-thousands-brace", "docmath", T + "The answer is $1{,}234$", "1234", True),
    Case("num/equation-last", "docmath", T + "The answer is 3 + 4 = 7", "7", True),
    Case("num/equation-approx", "docmath", T + "The answer is 22/7 \\approx 3.142", "3.142", True),
    Case("num/sentence", "docmath", T + "The answer is about 7% of sales.", "0.07", True),
    Case("num/year-context", "docmath", T + "The answer is 5.2 billion in 2019", "5.2", True),
    Case("num/bare-year-answer", "docmath", T + "The answer is 2019", "2019", True),
    Case("num/first-number", "docmath", T + "The answer is 12 (up from 10)", "12", True),
    Case("num/hedge-or", "docmath", T + "The answer is 5 or 6", "5", False),
    Case("num/hedge-between", "docmath", T + "The answer is between 5 and 6", "5", False),
    Case("num/hedge-range", "docmath", T + "The answer is 5-6", "5", False),
    Case("num/same-value-twice", "docmath", T + "The answer is 12.5% (0.125)", "12.5", True),
    Case("num/boxed-percent", "docmath", T + "\\boxed{12.5\\%}", "0.125", True),
    Case("num/no-number", "docmath", T + "The answer is unknown", "12", False),
    Case("num/text-gold", "docmath", T + "The answer is N/A", "N/A", True),
    Case("num/overflow", "docmath", T + "The answer is 1e400", "1", False),
    Case("num/gold-phrased", "docmath", T + "The answer is 12.5", "Therefore, the answer is 12.5", True),
    Case("num/gold-list", "docmath", T + "The answer is 0.5", ["50%", "0.5"], True),
    Case("num/task-override", "some_source", T + "The answer is 12.5%", "0.125", True, extra={"task": "numeric"}),
    Case("num/number-word", "docmath", T + "The answer is twelve", "12", True, known_miss=KNOWN_MISS),
    Case("num/accounting-negative", "docmath", T + "The answer is (1,200)", "-1200", True, known_miss=KNOWN_MISS),
    # ------------------------------------------------------------------ multiple choice
    Case("mc/letter", "long_toc_choices_0", T + "The answer is B", "B", True, extra={"question": Q_ABCD}),
    Case("mc/paren", "long_toc_choices_0", T + "The correct answer is (B)", "B", True, extra={"question": Q_ABCD}),
    Case("mc/lower", "long_toc_choices_0", T + "The answer is b", "B", True, extra={"question": Q_ABCD}),
    Case("mc/letter-dot", "long_toc_choices_0", T + "Answer: B.", "B", True, extra={"question": Q_ABCD}),
    Case("mc/with-text", "long_toc_choices_0", T + "The answer is (B) London", "B", True, extra={"question": Q_ABCD}),
    Case("mc/letter-paren-text", "long_toc_choices_0", T + "Answer: B) London", "B", True, extra={"question": Q_ABCD}),
    Case("mc/option-word", "long_toc_choices_0", T + "The answer is option B", "B", True, extra={"question": Q_ABCD}),
    Case("mc/bold", "long_toc_choices_0", T + "**Answer: B**", "B", True, extra={"question": Q_ABCD}),
    Case("mc/boxed", "long_toc_choices_0", T + "\\boxed{B}", "B", True, extra={"question": Q_ABCD}),
    Case("mc/bracket", "long_toc_choices_0", T + "The answer is [B]", "B", True, extra={"question": Q_ABCD}),
    Case("mc/because", "long_toc_choices_0", T + "The answer is B because of page 3", "B", True),
    Case("mc/it-is", "long_toc_choices_0", T + "I think it is B", "B", True, extra={"question": Q_ABCD}),
    Case("mc/option-text", "long_toc_choices_0", T + "The answer is London", "B", True, extra={"question": Q_ABCD}),
    Case(
        "mc/wrong-option-text", "long_toc_choices_0", T + "The answer is Paris", "B", False, extra={"question": Q_ABCD}
    ),
    Case("mc/wrong-letter", "long_toc_choices_0", T + "The answer is C", "B", False, extra={"question": Q_ABCD}),
    Case("mc/hedge-or", "long_toc_choices_0", T + "The answer is (A) or (B)", "B", False, extra={"question": Q_ABCD}),
    Case("mc/hedge-plain-or", "long_toc_choices_0", T + "The answer is A or B", "B", False),
    Case("mc/hedge-and", "long_toc_choices_0", T + "The answer is B and C", "B", False),
    Case("mc/hedge-slash", "long_toc_choices_0", T + "The answer is A/B", "B", False),
    Case("mc/hedge-comma", "long_toc_choices_0", T + "The answer is B, C", "B", False),
    Case("mc/out-of-range", "long_toc_choices_0", T + "The answer is E", "B", False, extra={"question": Q_ABCD}),
    Case("mc/gold-extends-range", "long_toc_choices_0", T + "The answer is E", "E", True, extra={"question": Q_ABCD}),
    Case("mc/out-of-range-default", "long_toc_choices_0", T + "The answer is F", "B", False),
    Case(
        "mc/range-from-choices",
        "long_toc_choices_0",
        T + "The answer is E",
        "E",
        True,
        extra={"choices": list("abcde")},
    ),
    Case("mc/range-from-count", "long_toc_choices_0", T + "The answer is F", "F", True, extra={"num_choices": 6}),
    Case("mc/gold-phrased", "long_toc_choices_0", T + "The answer is B", "The correct answer is (B)", True),
    Case("mc/gold-paren", "long_toc_choices_0", T + "B", "(B)", True),
    Case("mc/gold-with-text", "long_toc_choices_0", T + "B", "B. London", True),
    Case("mc/task-label", "longbench_v2", T + "The answer is C", "C", True, extra={"task": "choice"}),
    Case("mc/source-contains-choice", "my_choice_set", T + "The answer is D", "D", True),
    Case("mc/no-answer", "long_toc_choices_0", "<think>maybe B", "B", False, ""),
    Case("mc/english-a", "long_toc_choices_0", T + "A cat sat on the mat", "A", False),
    Case("mc/just-a", "long_toc_choices_0", T + "The answer is A", "A", True),
    # ------------------------------------------------------------------ QA (SQuAD normalisation, sub-EM)
    Case("qa/exact", "hotpotqa", T + "The answer is Barack Obama", "Barack Obama", True),
    Case("qa/case", "hotpotqa", T + "The answer is barack obama", "Barack Obama", True),
    Case("qa/article", "hotpotqa", T + "The answer is The Beatles", "Beatles", True),
    Case("qa/punctuation", "hotpotqa", T + "The answer is U.S.A.", "USA", True),
    Case("qa/diacritics", "hotpotqa", T + "The answer is Zoe Saldana", "Zoë Saldaña", True),
    Case("qa/diacritics-reverse", "hotpotqa", T + "The answer is Pelé", "Pele", True),
    Case("qa/hyphen", "hotpotqa", T + "The answer is Jean-Paul Sartre", "Jean Paul Sartre", True),
    Case("qa/sub-em-sentence", "hotpotqa", T + "The answer is the city of London", "London", True),
    Case("qa/sub-em-phrase", "hotpotqa", T + "The answer is President Barack Obama", "Barack Obama", True),
    Case("qa/sub-em-word-boundary", "hotpotqa", T + "The answer is Londonderry", "London", False),
    Case("qa/number-boundary", "hotpotqa", T + "The answer is 1990s", "1990", False),
    Case("qa/partial-not-enough", "hotpotqa", T + "The answer is Obama", "Barack Obama", False),
    Case("qa/wrong", "hotpotqa", T + "The answer is Paris", "London", False),
    Case("qa/only-article", "hotpotqa", T + "The answer is the", "the", False),
    Case("qa/only-punctuation", "hotpotqa", T + "The answer is ...", "London", False),
    Case("qa/numbers-commas", "hotpotqa", T + "The answer is 1,000", "1000", True),
    Case("qa/gold-list", "hotpotqa", T + "The answer is NYC", ["New York City", "NYC"], True),
    Case("qa/gold-json-list", "hotpotqa", T + "The answer is NYC", '["New York City", "NYC"]', True),
    Case("qa/gold-tuple", "hotpotqa", T + "The answer is New York City", ("NYC", "New York City"), True),
    Case("qa/gold-phrased", "hotpotqa", T + "The answer is London", "The answer is London.", True),
    Case("qa/gold-dict", "hotpotqa", T + "The answer is London", {"answers": ["London"]}, True),
    Case("qa/gold-number", "hotpotqa", T + "The answer is 42", 42, True),
    Case("qa/empty-gold", "hotpotqa", T + "The answer is London", "", False),
    Case("qa/multi-word-gold", "hotpotqa", T + "The answer is the University of Oxford", "University of Oxford", True),
    Case("qa/yes", "hotpotqa", T + "The answer is yes.", "yes", True),
    Case("qa/yes-no-wrong", "hotpotqa", T + "The answer is no", "yes", False),
    Case("qa/unicode-quote", "hotpotqa", T + "The answer is “London”", "London", True),
    Case("qa/synonym", "hotpotqa", T + "The answer is NYC", "New York City", True, known_miss=KNOWN_MISS),
    Case("qa/bare-non-reasoning", "multifieldqa", "London", "London", True),
    Case("qa/bare-sentence", "multifieldqa", "It was founded in London.", "London", True),
    Case("qa/newline-answer", "hotpotqa", T + "Answer:\nLondon\n\nExplanation: the text says so.", "London", True),
    # ------------------------------------------------------------------ QA hedging guard
    Case("hedge/or", "hotpotqa", T + "The answer is London or Paris", "London", False),
    Case("hedge/either", "hotpotqa", T + "The answer is either London or Paris", "London", False),
    Case("hedge/slash", "hotpotqa", T + "The answer is London/Paris", "London", False),
    Case("hedge/and-or", "hotpotqa", T + "The answer is London and/or Paris", "London", False),
    Case("hedge/list3", "hotpotqa", T + "The answer is London, Paris, Berlin", "London", False),
    Case("hedge/list-and", "hotpotqa", T + "The answer is London, Paris and Berlin", "London", False),
    Case(
        "hedge/too-long",
        "hotpotqa",
        T + "The answer is that many cities could be meant here but the document most strongly suggests London",
        "London",
        False,
    ),
    Case("hedge/two-items-ok", "hotpotqa", T + "The answer is London, England", "London", True),
    Case("hedge/gold-has-or", "hotpotqa", T + "The answer is Tom or Jerry", "Tom or Jerry", True),
    Case("hedge/gold-is-list", "hotpotqa", T + "The answer is red, green and blue", "red, green and blue", True),
    Case("hedge/exact-with-or-word", "hotpotqa", T + "The answer is Or Yehuda", "Or Yehuda", True),
    Case(
        "hedge/long-gold-long-answer",
        "hotpotqa",
        T + "The answer is the treaty signed in Paris in 1783",
        "the treaty signed in Paris",
        True,
    ),
    # ------------------------------------------------------------------ routing
    Case("route/docmath-prefix", "docmath_complong", T + "The answer is 50%", "0.5", True),
    Case("route/qa-default", "narrativeqa", T + "The answer is 50%", "0.5", False),
    Case("route/task-beats-source", "docmath_x", T + "The answer is London", "London", True, extra={"task": "qa"}),
    Case("route/unknown-task-label", "docmath_x", T + "The answer is 0.5", "50%", True, extra={"task": "weird"}),
]


def _check(case: Case) -> tuple[bool, dict]:
    result = compute_score(case.source, case.response, case.gold, dict(case.extra))
    ok = result["acc"] is case.right and (case.pred is None or result["pred"] == case.pred)
    return ok, result


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_labelled_case(case: Case):
    if case.known_miss:
        pytest.xfail("known rule miss: left to the judge")
    ok, result = _check(case)
    assert ok, (
        f"expected {'right' if case.right else 'wrong'}"
        + (f", pred {case.pred!r}" if case.pred else "")
        + f"; got {result}"
    )


@pytest.mark.parametrize("case", [c for c in CASES if c.known_miss], ids=lambda c: c.id)
def test_known_misses_still_miss(case: Case):
    ok, result = _check(case)
    assert not ok, f"{case.id} is now scored right; move it out of KNOWN_MISS: {result}"


def test_case_table_is_large_and_unique():
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)
    assert sum(c.right for c in CASES) >= 50 and sum(not c.right for c in CASES) >= 50


def test_labelled_case_accuracy(capsys):
    correct = sum(_check(c)[0] for c in CASES)
    accuracy = correct / len(CASES)
    with capsys.disabled():
        print(f"\nlabelled-case accuracy of the rule reward: {correct}/{len(CASES)} = {accuracy:.1%}")
    assert correct == len(CASES) - sum(c.known_miss for c in CASES)
