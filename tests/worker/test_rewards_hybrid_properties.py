"""Property tests: hostile text never raises, never evaluates, stays bounded; numeric and extraction laws hold."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from qwenlong_verl.worker.rewards import compute_score, compute_score_async
from qwenlong_verl.worker.rewards.extract import MAX_ANSWER_CHARS, extract_answer, gold_answers
from qwenlong_verl.worker.rewards.numeric import numbers_match, read_number

SOURCES = ["docmath_x", "long_toc_choices_0", "hotpotqa"]
PER_CALL_BOUND_S = 3.0
"""Generous: a call may at worst wait for one math-verify timeout (2 s); anything near it is a hang."""

HOSTILE_PIECES = [
    "1e400",
    "-1e400",
    "1" * 5000,
    "\x00",
    "\ud800",
    "\udfff",
    "{" * 3000,
    "}" * 3000,
    "\\boxed{" * 500,
    "\\frac{" * 200,
    "9^{9^{9^{9}}}",
    "\\boxed{10000000!}",
    "__import__('os').system('touch PWNED')",
    "eval('1+1')",
    "exec('import os')",
    "```python\nimport shutil; shutil.rmtree('/')\n```",
    "</think>",
    "<think>",
    "The answer is ",
    "Answer:",
    "[[YES]]",
    "$",
    "\\",
    "%",
    "NaN",
    "inf",
    "(A) or (B)",
    "\u202e",
    "🙂" * 10,
]

hostile_text = st.lists(
    st.one_of(st.sampled_from(HOSTILE_PIECES), st.text(max_size=200)),
    max_size=12,
).map("".join)

any_gold = st.one_of(
    hostile_text,
    st.lists(hostile_text, max_size=4),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.none(),
)


def _assert_well_formed(result: dict) -> None:
    assert set(result) == {"score", "acc", "pred", "rule", "judge", "judge_error"}
    assert result["score"] in (0.0, 1.0) and isinstance(result["score"], float)
    assert result["acc"] is (result["score"] >= 0.5)
    assert isinstance(result["pred"], str) and len(result["pred"]) <= MAX_ANSWER_CHARS
    assert result["rule"] in (0.0, 1.0) and result["judge"] == -1.0 and result["judge_error"] == ""


@pytest.fixture(autouse=True)
def _cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a canary file written by evaluated code would land here
    yield
    assert not Path("PWNED").exists()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(SOURCES), response=hostile_text, gold=any_gold, question=hostile_text)
def test_hostile_inputs_never_raise_and_stay_bounded(source, response, gold, question):
    start = time.perf_counter()
    result = compute_score(source, response, gold, {"question": question})
    assert time.perf_counter() - start < PER_CALL_BOUND_S
    _assert_well_formed(result)


@settings(max_examples=60, deadline=None)
@given(source=st.sampled_from(SOURCES), response=hostile_text, gold=any_gold)
def test_async_path_agrees_with_sync_path(source, response, gold):
    sync = compute_score(source, response, gold, None)
    assert asyncio.run(compute_score_async(source, response, gold, None)) == sync


@settings(max_examples=40, deadline=None)
@given(extra=st.one_of(st.none(), st.integers(), st.text(), st.dictionaries(st.text(max_size=8), hostile_text)))
def test_any_extra_info_shape_is_tolerated(extra):
    _assert_well_formed(compute_score("hotpotqa", "The answer is London", "London", extra))


@pytest.mark.parametrize(
    "response",
    [
        "x" * 1_000_000,
        "<think>" + "y" * 1_000_000,
        "a</think>" + "The answer is 1. " * 60_000,
        "{" * 1_000_000,
        "\\boxed{" * 150_000,
        "answer " * 150_000,
        "\x00" * 1_000_000,
    ],
    ids=["plain", "unfinished-think", "many-markers", "braces", "boxed-heads", "answer-words", "nul"],
)
def test_one_megabyte_responses(response):
    for source in SOURCES:
        start = time.perf_counter()
        result = compute_score(source, response, "1")
        assert time.perf_counter() - start < PER_CALL_BOUND_S
        _assert_well_formed(result)


def test_pathological_latex_hits_the_math_verify_timeout_not_the_caller():
    from qwenlong_verl.worker.rewards.symbolic import TIMEOUT_S

    # the helper process starts (imports sympy) on first use, whichever test that is: not what is timed here
    assert compute_score("docmath", "The answer is $\\sqrt{1}$", "1")["score"] == 1.0
    start = time.perf_counter()
    result = compute_score("docmath", "The answer is $9^{9^{9^{9}}}$", "1")
    assert time.perf_counter() - start < TIMEOUT_S + 1.5  # the evaluation's own timeout, not an unbounded one
    assert result["score"] == 0.0
    # and the guarded evaluator still works afterwards (a fresh helper process)
    assert compute_score("docmath", "The answer is $\\sqrt{16}$", "4")["score"] == 1.0


def test_code_in_answers_is_never_executed():
    for source in SOURCES:
        compute_score(source, "The answer is __import__('os').system('touch PWNED')", "0")
        compute_score(source, "\\boxed{__import__('os').system('touch PWNED')}", "__import__('os')")
    assert not Path("PWNED").exists()


# ------------------------------------------------------------------ laws

safe_answer = st.text(alphabet=st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=40)
reasoning = st.text(max_size=300).filter(lambda s: "think>" not in s)


@settings(max_examples=150, deadline=None)
@given(thought=reasoning, answer=safe_answer, phrase=st.sampled_from(["The answer is", "Final Answer:", "**Answer:**"]))
def test_answer_after_think_is_extracted(thought, answer, phrase):
    assert extract_answer(f"<think>{thought}</think>\n{phrase} {answer}") == answer


@settings(max_examples=100, deadline=None)
@given(thought=reasoning, answer=safe_answer)
def test_unfinished_think_never_has_an_answer(thought, answer):
    assert extract_answer(f"<think>{thought} The answer is {answer}") == ""


@settings(max_examples=100, deadline=None)
@given(first=safe_answer, last=safe_answer, filler=reasoning)
def test_last_stated_answer_wins(first, last, filler):
    assume("answer" not in filler.lower() and "boxed" not in filler)
    text = f"The answer is {first}\n{filler}\nThe answer is {last}"
    assert extract_answer(text) == last


finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False).filter(lambda x: abs(x) > 1e-6)


@settings(max_examples=200, deadline=None)
@given(gold=finite)
def test_six_significant_digits_match(gold):
    pred = read_number(f"{gold:.6g}").quantity
    truth = read_number(repr(gold)).quantity
    assert pred is not None and truth is not None
    assert numbers_match(pred, truth)


@settings(max_examples=200, deadline=None)
@given(gold=finite)
def test_sign_and_powers_of_ten(gold):
    truth = read_number(repr(gold)).quantity
    flipped = read_number(repr(-gold)).quantity
    times_ten = read_number(repr(gold * 10)).quantity
    times_hundred = read_number(repr(gold * 100)).quantity
    assert not numbers_match(flipped, truth)
    assert not numbers_match(times_ten, truth)
    assert numbers_match(times_hundred, truth)


@settings(max_examples=100, deadline=None)
@given(gold=finite, digits=st.integers(min_value=0, max_value=4))
def test_thousands_separators_and_currency(gold, digits):
    formatted = f"${abs(gold):,.{digits}f}"
    assume(float(formatted[1:].replace(",", "")) != 0)
    pred = read_number(("-" if gold < 0 else "") + formatted).quantity
    truth = read_number(f"{(-1 if gold < 0 else 1) * float(formatted[1:].replace(',', '')):.{digits}f}").quantity
    assert numbers_match(pred, truth)


@settings(max_examples=100, deadline=None)
@given(items=st.lists(safe_answer, min_size=1, max_size=5, unique=True))
def test_gold_lists_keep_every_answer(items):
    assert set(gold_answers(items)) == set(items)


def test_no_stdout_from_library_calls(capfd):
    compute_score("docmath", "<think>x</think> The answer is \\frac{\\sqrt{3}}{2}", "0.866")
    compute_score("hotpotqa", "The answer is London or Paris", "London")
    out, _ = capfd.readouterr()
    assert out == ""


def test_overflowing_numbers_are_not_numbers():
    # float("1e400") == float("1e401") == inf: comparing them as numbers would call them equal
    assert compute_score("docmath", "The answer is 1e400", "1e401")["score"] == 0.0
    assert compute_score("docmath", "The answer is 5", math.inf)["score"] == 0.0
    assert compute_score("docmath", "The answer is 5", math.nan)["score"] == 0.0


def test_math_verify_helper_that_cannot_start_is_not_retried_at_once():
    from qwenlong_verl.worker.rewards.symbolic import SymbolicEvaluator

    evaluator = SymbolicEvaluator(startup_timeout_s=0.001)  # the helper cannot be ready this fast
    try:
        assert evaluator.value("\\sqrt{4}") is None
        start = time.perf_counter()
        assert evaluator.value("\\sqrt{9}") is None
        assert time.perf_counter() - start < 0.05 and evaluator._proc is None  # no second helper started
    finally:
        evaluator.close()
