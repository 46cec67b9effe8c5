"""Middle truncation to a token budget, with the real builtin tokenizer and the training template."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qwenlong_verl.driver.data.template import count_prompt_tokens
from qwenlong_verl.driver.data.tokenizer import load_tokenizer
from qwenlong_verl.driver.eval.benchmarks import EvalItem
from qwenlong_verl.driver.eval.scoring import parse_length_edges
from qwenlong_verl.driver.eval.truncate import TruncationError, fit_prompts, messages_of, middle_truncate


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer("builtin")


def item(document: str, question: str = "Which mark closes the file?", **kw) -> EvalItem:
    return EvalItem(
        id="t/1", benchmark="t", document=document, question=question, gold="x", task="qa", data_source="t", **kw
    )


@given(st.lists(st.integers(0, 50), max_size=60), st.integers(-3, 70))
def test_middle_truncate_keeps_head_and_tail(ids, budget):
    kept = middle_truncate(ids, budget)
    if budget >= len(ids):
        assert kept == ids
        return
    size = max(budget, 0)
    assert len(kept) == size
    head = size // 2  # as the QwenLong-L1 reference: max_len // 2 from the front, the rest from the back
    assert kept[:head] == ids[:head]
    assert kept[head:] == (ids[len(ids) - (size - head) :] if size - head else [])


def test_short_prompts_are_untouched_and_counted_like_verl(tok):
    it = item("A short document.")
    (fitted,) = fit_prompts([it], tok, 10_000)
    assert not fitted.truncated and fitted.messages == messages_of(it)
    assert fitted.input_tokens == fitted.original_input_tokens == count_prompt_tokens(fitted.messages, tok)


def test_long_document_is_cut_in_the_middle_and_fits(tok):
    body = " ".join(f"Filler sentence {i}." for i in range(2000))
    it = item(f"HEADMARK starts. {body} MIDDLEMARK {body} TAILMARK ends.")
    (fitted,) = fit_prompts([it], tok, 300)
    content = fitted.messages[0]["content"]
    assert fitted.truncated and fitted.original_input_tokens > 300
    assert fitted.input_tokens == count_prompt_tokens(fitted.messages, tok) <= 300
    assert fitted.input_tokens >= 295  # the budget is used, not wasted
    assert "HEADMARK" in content and "TAILMARK" in content and "MIDDLEMARK" not in content
    assert it.question in content and "Therefore, the answer is" in content  # never cut


@settings(max_examples=25, deadline=None)
@given(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=50, max_size=3000),
    st.integers(120, 400),
)
def test_any_text_fits_the_limit(document, limit):
    tok = load_tokenizer("builtin")
    it = item(document if document.strip() else "x" + document)
    (fitted,) = fit_prompts([it], tok, limit)
    assert fitted.input_tokens == count_prompt_tokens(fitted.messages, tok) <= limit
    assert fitted.truncated == (fitted.original_input_tokens > limit)


def test_choices_survive_truncation(tok):
    it = dataclasses.replace(item("word " * 3000), task="choice", choices=("red", "green", "blue"), gold="B")
    (fitted,) = fit_prompts([it], tok, 200)
    content = fitted.messages[0]["content"]
    assert fitted.truncated and "A. red\nB. green\nC. blue" in content and fitted.input_tokens <= 200


def test_errors(tok):
    with pytest.raises(TruncationError, match=r"t/1 .*already takes \d+ tokens.*raise --max-input-tokens"):
        fit_prompts([item("word " * 500, question="why " * 300)], tok, 100)
    with pytest.raises(TruncationError, match="needs a tokenizer"):
        fit_prompts([item("doc")], None, 100)
    from qwenlong_verl.driver.data.template import TemplateError

    with pytest.raises(TemplateError, match=r"x\.jsonl:3 \(t/1\): the choice answer type needs at least two choices"):
        fit_prompts([dataclasses.replace(item("doc"), task="choice", choices=("one",), source="x.jsonl:3")], tok)
    uncounted = fit_prompts([item("doc")], None, None)[0]
    assert uncounted.input_tokens is None and not uncounted.truncated


def test_parse_length_edges():
    assert parse_length_edges("4k, 8K,32768") == [4096, 8192, 32768]
    assert parse_length_edges("0.5k") == [512]
    for bad in ("", "8k,4k", "4k,4k", "x", "-1"):
        with pytest.raises(ValueError):
            parse_length_edges(bad)
