"""The memory agent's prompts and how a memory reply is read (worker/agent/prompts.py)."""

from __future__ import annotations

from qwenlong_verl.worker.agent.prompts import NO_MEMORY, NO_PLAN, answer_messages, parse_update, update_messages


def test_update_prompt_carries_memory_plan_chunk_and_question():
    [message] = update_messages("Who won?", "chunk text", "m1", "look for dates", step=2, steps=5)
    content = message["content"]
    assert message["role"] == "user" and "section 2 of 5" in content
    order = [
        content.index(s)
        for s in (
            "<memory>\nm1\n</memory>",
            "<plan>\nlook for dates\n</plan>",
            "<text>\nchunk text\n</text>",
            "Who won?",
        )
    ]
    assert order == sorted(order)
    assert "<plan></plan>" in content  # asks for a plan back


def test_update_prompt_without_plans_and_first_step():
    [message] = update_messages("Q?", "x", "", None, step=1, steps=1)
    assert NO_MEMORY in message["content"] and "<plan>" not in message["content"]
    [message] = update_messages("Q?", "x", "", "", step=1, steps=2)
    assert NO_PLAN in message["content"]


def test_answer_prompt_has_memory_question_and_instruction_but_no_text():
    [message] = answer_messages("Q?", 'Format your response as follows: "Therefore, the answer is (x)".', "facts")
    content = message["content"]
    assert "<memory>\nfacts\n</memory>" in content and content.endswith('"Therefore, the answer is (x)".')
    assert "<text>" not in content
    [message] = answer_messages("Q?", "", "")
    assert message["content"].endswith("Q?") and NO_MEMORY in message["content"]


def test_reply_blocks_are_read():
    reply = "<think>the memory should be short</think>\n<memory>\nA=1\nB=2\n</memory>\n<plan>find C</plan>"
    update = parse_update(reply, with_plan=True)
    assert (update.memory, update.plan) == ("A=1\nB=2", "find C")
    assert parse_update(reply, with_plan=False).plan == ""


def test_reply_without_blocks_is_read_whole_and_reasoning_is_left_out():
    assert parse_update("just facts", with_plan=True).memory == "just facts"
    update = parse_update("reasoning</think> facts <plan>next", with_plan=True)
    assert (update.memory, update.plan) == ("facts", "next")
    # an unclosed memory block ends at the plan; the last block wins
    update = parse_update("<memory>old</memory><memory>new <plan>p</plan>", with_plan=True)
    assert (update.memory, update.plan) == ("new", "p")
    # a reply cut inside its reasoning is all the step wrote: kept (then cut to the budget)
    assert parse_update("<think>half a thought", with_plan=False).memory == "half a thought"
