"""One memory-agent trajectory as a plain async function (worker/agent/episode.py), with the builtin tokenizer.

``generate`` here is a small scripted policy (the function the episode is given, not a stand-in for anything the
package calls): it answers each memory update with a memory block naming the step, so every test can read back
exactly what each generation saw.
"""

from __future__ import annotations

import asyncio
import json
import math
import re

import pytest

from qwenlong_verl.driver.data.tokenizer import load_tokenizer
from qwenlong_verl.worker.agent.episode import (
    BudgetError,
    Budgets,
    EpisodeState,
    Tokens,
    run_episode,
    split_pieces,
)
from qwenlong_verl.worker.agent.prompts import ANSWER_PREAMBLE, TEXT_CLOSE, TEXT_OPEN
from qwenlong_verl.worker.agent.query import MemoryQuery

TOKENS = Tokens.of(load_tokenizer("builtin"))
DOCUMENT = " ".join(f"Line {i}: the depot of Cresk stored {17 * i % 953} crates of salt." for i in range(60))
QUERY = MemoryQuery(document=DOCUMENT, core="How many crates in line 7?", instruction="Answer with a number.")
IDS = TOKENS.encode(DOCUMENT)


class Script:
    """Replies ``<memory>seen t</memory>`` (and a plan) to update ``t``; records every call."""

    def __init__(self, memory=lambda step: f"seen {step}", plan=lambda step: f"look for line {step + 1}", fail_at=0):
        self.calls: list[tuple[list[dict], int, int]] = []
        self.memory, self.plan, self.fail_at = memory, plan, fail_at

    async def __call__(self, messages, max_tokens, step):
        self.calls.append((messages, max_tokens, step))
        if step == self.fail_at:
            raise ConnectionError(f"server fault at step {step}")
        if ANSWER_PREAMBLE in messages[0]["content"]:
            return "<think>from memory</think>Therefore, the answer is 119."
        return f"<think>reading</think><memory>{self.memory(step)}</memory><plan>{self.plan(step)}</plan>"

    @property
    def steps(self):
        return [step for _, _, step in self.calls]

    def prompt(self, step):
        return next(m[0]["content"] for m, _, s in self.calls if s == step)


def run(script, budgets, **kwargs):
    return asyncio.run(run_episode(QUERY, script, TOKENS, budgets, **kwargs))


def chunk_text(prompt: str) -> str:
    return prompt[prompt.index(TEXT_OPEN) + len(TEXT_OPEN) : prompt.index(TEXT_CLOSE)].strip()


def test_reads_every_chunk_in_order_then_answers_from_the_last_memory():
    budgets = Budgets(update_tokens=50, answer_tokens=30, chunk_tokens=200, memory_tokens=40)
    script = Script()
    episode = run(script, budgets)
    k = math.ceil(len(IDS) / 200)
    assert k >= 4 and episode.generations == k + 1 == len(script.calls)
    assert script.steps == list(range(1, k + 2))
    assert [t for _, t, _ in script.calls] == [50] * k + [30]
    for step in range(1, k + 1):
        prompt = script.prompt(step)
        assert f"This is section {step} of {k}." in prompt and QUERY.core in prompt
        assert chunk_text(prompt) == TOKENS.decode(IDS[(step - 1) * 200 : step * 200]).strip()
        assert (f"seen {step - 1}" in prompt) == (step > 1)  # the previous memory, and only it
        assert "Answer with a number." not in prompt  # q_inst only at the answer
    answer = script.prompt(k + 1)
    assert f"seen {k}" in answer and QUERY.core in answer and "Answer with a number." in answer
    assert episode.answer.endswith("the answer is 119.")
    assert [r.role for r in episode.records] == ["memory"] * k + ["answer"]
    assert all(r.memory_tokens == len(TOKENS.encode(f"seen {r.step}")) for r in episode.records[:-1])
    assert not any(r.memory_truncated for r in episode.records) and episode.resumed_from == 0
    assert all(r.plan_tokens is None for r in episode.records)  # plans off: not even asked for
    assert "<plan>" not in script.prompt(2)


def test_the_records_are_the_training_loops_memory_records():
    budgets = Budgets(update_tokens=50, answer_tokens=30, chunk_tokens=300, memory_tokens=40, plan_tokens=4)
    episode = run(Script(), budgets)
    records = episode.record_dicts()
    k = len(episode.schedule)
    shared = {"steps": k, "document_tokens": len(IDS), "document_cut": False}
    assert all({key: r[key] for key in shared} == shared for r in records)
    assert set(records[0]) == {
        *shared,
        "role",
        "step",
        "memory_tokens",
        "memory_truncated",
        "plan_tokens",
        "plan_truncated",
    }
    assert set(records[-1]) == {*shared, "role", "step", "memory_tokens", "memory_truncated"}
    assert records[-1]["step"] == k + 1 and records[-1]["memory_tokens"] == records[-2]["memory_tokens"]


def test_memory_and_plan_are_cut_to_their_budgets():
    long = " ".join(f"fact{i}" for i in range(80))
    budgets = Budgets(update_tokens=50, answer_tokens=30, chunk_tokens=400, memory_tokens=12, plan_tokens=3)
    script = Script(memory=lambda step: long, plan=lambda step: long)
    episode = run(script, budgets)
    updates = episode.records[:-1]
    assert all(r.memory_tokens == 12 and r.memory_truncated for r in updates)
    assert all(r.plan_tokens == 3 and r.plan_truncated for r in updates)
    kept = TOKENS.decode(TOKENS.encode(long)[:12])
    assert kept in script.prompt(2) and long not in script.prompt(2)


def test_max_chunks_reads_only_the_first_chunks():
    budgets = Budgets(update_tokens=5, answer_tokens=5, chunk_tokens=100, memory_tokens=40, max_chunks=2)
    script = Script()
    episode = run(script, budgets)
    assert script.steps == [1, 2, 3] and episode.schedule.cut and "section 2 of 2" in script.prompt(2)


def test_a_trajectory_resumed_from_a_saved_state_goes_on_where_it_stopped():
    budgets = Budgets(update_tokens=50, answer_tokens=30, chunk_tokens=150, memory_tokens=40, plan_tokens=20)
    saved: list[EpisodeState] = []

    async def keep(state):
        saved.append(state)

    whole = run(Script(), budgets, on_step=keep)
    k = len(whole.schedule)
    assert [s.step for s in saved] == list(range(1, k + 1))
    state = EpisodeState.from_dict(json.loads(json.dumps(saved[1].as_dict())))  # as a checkpoint file holds it
    assert state == saved[1]
    script = Script()
    resumed = run(script, budgets, state=state, document_ids=IDS)
    assert script.steps == list(range(3, k + 2))  # steps 1 and 2 are not generated again
    assert "seen 2" in script.prompt(3) and "look for line 3" in script.prompt(3)
    assert resumed.records == whole.records and resumed.answer == whole.answer and resumed.resumed_from == 2


def test_a_state_of_another_document_is_refused():
    budgets = Budgets(update_tokens=5, answer_tokens=5, chunk_tokens=100)
    with pytest.raises(ValueError, match="does not fit this document"):
        run(Script(), budgets, state=EpisodeState(document_tokens=len(IDS) + 1, step=1))
    with pytest.raises(ValueError, match="do not lead to step 2"):
        EpisodeState.from_dict({**EpisodeState(document_tokens=3).as_dict(), "step": 2})


def test_what_generate_raises_ends_the_trajectory_after_the_saved_steps():
    budgets = Budgets(update_tokens=5, answer_tokens=5, chunk_tokens=100, memory_tokens=40)
    saved = []

    async def keep(state):
        saved.append(state.step)

    with pytest.raises(ConnectionError, match="step 3"):
        run(Script(fail_at=3), budgets, on_step=keep)
    assert saved == [1, 2]


def test_budgets_resolve_zero_to_the_response_length_and_name_a_bad_field():
    class Settings:
        chunk_tokens, memory_tokens, plan_tokens, max_chunks, update_tokens, answer_tokens = 64, 8, 0, 0, 0, 16

    budgets = Budgets.resolve(Settings, 100)
    assert (budgets.update_tokens, budgets.answer_tokens, budgets.chunk_tokens) == (100, 16, 64)
    with pytest.raises(BudgetError, match=re.escape("chunk_tokens must be an integer >= 1, got 0")) as caught:
        Budgets(update_tokens=1, answer_tokens=1, chunk_tokens=0)
    assert caught.value.name == "chunk_tokens"
    with pytest.raises(BudgetError, match="plan_tokens"):
        Budgets(update_tokens=1, answer_tokens=1, plan_tokens=True)


@pytest.mark.parametrize(
    "text",
    [
        DOCUMENT,
        "word " * 300 + "  two  spaces  \n\n new paragraph  " * 40,
        "长文本没有空格" * 200 + " then words " * 50,  # no space for long stretches: hard cuts there
        "",
    ],
)
def test_a_document_is_cut_into_pieces_that_join_back(text):
    pieces = split_pieces(text, 64)
    assert "".join(pieces) == text and all(len(p) <= 64 for p in pieces)
    for before, after in zip(pieces, pieces[1:], strict=False):
        window = (before + after)[32:64]  # the second half of the window the cut was chosen in
        clean = after.startswith(" ") and not before[-1].isspace()  # before a word's space: BPE splits there too
        assert clean or (len(before) == 64 and not any(c == " " for c in window)), (before, after)


def test_a_document_tokenized_in_pieces_has_the_ids_of_the_whole_text(monkeypatch):
    import qwenlong_verl.worker.agent.episode as episode

    text = "\n\n".join(f"Paragraph {i}:  the depot of Cresk stored {17 * i} crates, (and more)." for i in range(400))
    whole = TOKENS.encode(text)
    monkeypatch.setattr(episode, "PIECE_CHARS", 97)  # hundreds of pieces, cut in every kind of place
    assert len(split_pieces(text, 97)) > 200
    ids = TOKENS.encode_document(text)
    assert list(ids) == whole and ids.itemsize == 4
    one_by_one = Tokens(encode=TOKENS.encode, decode=TOKENS.decode)  # no batch encoder: the same ids
    assert list(one_by_one.encode_document(text)) == whole
