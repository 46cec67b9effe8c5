"""A dataset row as the memory agent reads it (worker/agent/query.py), on rows of our full-context template."""

from __future__ import annotations

import pytest

from qwenlong_verl.driver.data.template import build_messages
from qwenlong_verl.worker.agent.query import MemoryRowError, split_query

DOC = "Paragraph one about Arden.\n\nParagraph two about Belmora."


@pytest.mark.parametrize(("answer_type", "choices"), [("numeric", None), ("qa", None), ("choice", ["12", "15", "19"])])
def test_template_rows_split_exactly(answer_type, choices):
    messages = build_messages(DOC, "How many depots?", answer_type, choices)
    content = messages[0]["content"]
    query = split_query(messages, {"index": 3, "question": "How many depots?"})
    assert query.document == DOC
    assert query.instruction == content.rsplit("\n\n", 1)[1] and query.instruction.startswith("Format your response")
    assert query.core.startswith("How many depots?")
    if choices:
        assert query.core.endswith("A. 12\nB. 15\nC. 19")  # the options belong to the question, not the format
    else:
        assert query.core == "How many depots?"
    # the pieces put back give the user message after its preamble
    assert content.endswith(f"<text>\n{query.document}\n</text>\n\n{query.core}\n\n{query.instruction}")


def test_extra_info_fields_win():
    messages = [{"role": "user", "content": "Question: who?\n\nAnswer in one word."}]
    info = {"index": 1, "document": "the text", "instruction": "Answer in one word."}
    query = split_query(messages, info)
    assert (query.document, query.core, query.instruction) == ("the text", "Question: who?", "Answer in one word.")
    # context is the other document key; a prompt that repeats the document does not put it in the question
    messages = [{"role": "user", "content": "the text\n\nwho?"}]
    query = split_query(messages, {"context": "the text", "instruction": "x"})
    assert (query.document, query.core) == ("the text", "who?")


def test_question_falls_back_to_extra_info():
    messages = [{"role": "user", "content": "<text>\nabc\n</text>"}]
    assert split_query(messages, {"question": "Q?"}).core == "Q?"


def test_rows_it_cannot_read_are_named():
    with pytest.raises(MemoryRowError, match=r"extra_info.index=7: no document"):
        split_query([{"role": "user", "content": "just a question?"}], {"index": 7})
    with pytest.raises(MemoryRowError, match=r"extra_info.index=8: no question"):
        split_query([{"role": "user", "content": "<text>\nabc\n</text>"}], {"index": 8})
