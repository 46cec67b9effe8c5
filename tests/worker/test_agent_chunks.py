"""The memory agent's chunk schedule and budget cut (worker/agent/chunks.py), with the builtin tokenizer."""

from __future__ import annotations

import math

import pytest

from qwenlong_verl.worker.agent.chunks import ChunkSchedule, cap_to_budget, chunk_count, generations_per_trajectory


@pytest.mark.parametrize("n", [1, 2, 99, 100, 101, 250, 1000, 4_000_000])
@pytest.mark.parametrize("chunk", [1, 7, 100, 32768])
def test_a_document_of_n_tokens_is_read_in_ceil_n_over_chunk_steps(n, chunk):
    schedule = ChunkSchedule.of(n, chunk)
    assert len(schedule) == math.ceil(n / chunk) == chunk_count(n, chunk)
    # contiguous, in order, every token exactly once, no chunk longer than the budget
    assert schedule.spans[0][0] == 0 and schedule.spans[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(schedule.spans, schedule.spans[1:], strict=False))
    assert all(0 < end - start <= chunk for start, end in schedule.spans)
    assert not schedule.cut
    assert generations_per_trajectory(n, chunk) == len(schedule) + 1


def test_max_chunks_keeps_the_first_chunks_and_says_so():
    schedule = ChunkSchedule.of(1000, 100, max_chunks=3)
    assert schedule.spans == ((0, 100), (100, 200), (200, 300)) and schedule.cut
    assert not ChunkSchedule.of(300, 100, max_chunks=3).cut  # exactly three chunks: nothing cut
    assert generations_per_trajectory(1000, 100, max_chunks=3) == 4


def test_four_million_tokens_at_the_paper_chunk():
    assert generations_per_trajectory(4_000_000, 32768) == 123 + 1


def test_an_empty_document_has_no_chunk():
    assert len(ChunkSchedule.of(0, 100)) == 0
    with pytest.raises(ValueError, match="chunk_tokens"):
        ChunkSchedule.of(10, 0)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from qwenlong_verl.driver.data.tokenizer import builtin_tokenizer_path

    return AutoTokenizer.from_pretrained(builtin_tokenizer_path())


def _codec(tokenizer):
    return (lambda t: tokenizer.encode(t, add_special_tokens=False)), (lambda ids: tokenizer.decode(ids))


@pytest.mark.parametrize("budget", [0, 1, 3, 10, 1000])
def test_memory_is_cut_to_its_budget(tokenizer, budget):
    encode, decode = _codec(tokenizer)
    text = "The depot of Arden stored 412 crates of copper in 1931, and Belmora 77 crates of salt."
    n = len(encode(text))
    capped = cap_to_budget(text, budget, encode, decode)
    assert capped.tokens == min(n, budget) and capped.truncated == (n > budget)
    assert len(encode(capped.text)) <= budget or not capped.truncated
    if capped.truncated:
        assert capped.text == decode(encode(text)[:budget])  # the head of the memory, token for token
    else:
        assert capped.text == text
