"""Row schema and prompt template: validation names row and field; the template is what veRL renders and counts."""

from __future__ import annotations

import json

import pytest

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.tasks import ANSWER_TYPES, CHOICE, NUMERIC, QA
from qwenlong_verl.driver.data.schema import (
    EXTRA_INFO_KEYS,
    ROW_SCHEMA,
    NotUtf8Error,
    RowError,
    arrow_schema,
    canonical_golds,
    check_count,
    make_row,
    parse_record,
    question_from_prompt,
    read_json_file,
    read_json_lines,
    validate_row,
)
from qwenlong_verl.driver.data.template import (
    ANSWER_PHRASE,
    TemplateError,
    build_messages,
    count_prompt_tokens,
    join_documents,
    render_prompt,
)
from qwenlong_verl.driver.data.tokenizer import load_tokenizer

RAW = {
    "id": "ex-1",
    "documents": [{"title": "Report A", "text": "Revenue was 12.5."}, "Second document."],
    "question": "What was the revenue?",
    "answer": "12.5",
    "task": "numeric",
}


def _error(record, row=7) -> RowError:
    with pytest.raises(RowError) as err:
        parse_record(record, "in.jsonl", row)
    return err.value


# ----------------------------------------------------------------------------- template


def test_build_messages_shape_and_per_answer_type_instruction():
    for task in ANSWER_TYPES:
        choices = ["red", "green", "blue"] if task == CHOICE else None
        messages = build_messages("  The sky is blue.  ", " What colour is the sky? ", task, choices)
        assert [m["role"] for m in messages] == ["user"]
        content = messages[0]["content"]
        assert content.startswith("Please read the following text and answer the question below.\n\n<text>\n")
        assert "<text>\nThe sky is blue.\n</text>\n\nWhat colour is the sky?" in content
        assert f'"{ANSWER_PHRASE} (insert answer here)"' in content
        if task == CHOICE:
            assert "\n\nA. red\nB. green\nC. blue\n\n" in content and "letter" in content
        if task == NUMERIC:
            assert "single number" in content
    assert build_messages("d", "q", "docmath") == build_messages("d", "q", NUMERIC)  # aliases from tasks.py


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("", "q", QA), "document is empty"),
        (("d", "  ", QA), "question is empty"),
        (("d", "q", CHOICE, ["only one"]), "at least two"),
        (("d", "q", CHOICE, ["a", " "]), "choice is empty"),
        (("d", "q", NUMERIC, ["a", "b"]), "only for the 'choice' answer type"),
    ],
)
def test_build_messages_refuses_malformed_input(args, match):
    with pytest.raises(TemplateError, match=match):
        build_messages(*args)


def test_build_messages_unknown_answer_type():
    with pytest.raises(ValueError, match="unknown answer type 'poetry'"):
        build_messages("d", "q", "poetry")


def test_join_documents_numbers_and_titles():
    text = join_documents([{"title": "T1", "text": " body one "}, "body two", {"content": "body three"}])
    assert text == "Document 1: T1\nbody one\n\nDocument 2\nbody two\n\nDocument 3\nbody three"


def test_render_and_count_match_veRL_tokenize_path():
    """veRL's RLHFDataset counts with apply_chat_template(tokenize=True) + normalize_token_ids: we must agree."""
    from verl.utils.tokenizer import normalize_token_ids

    tok = load_tokenizer("builtin")
    messages = build_messages(join_documents(["Alpha 123.", "Beta 4,567.8 units."]), "Sum?", NUMERIC)
    rendered = render_prompt(messages, tok)
    assert rendered.endswith("<|im_end|>\n<|im_start|>assistant\n")
    theirs = len(normalize_token_ids(tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)))
    assert count_prompt_tokens(messages, tok) == theirs
    # veRL forces add_generation_prompt/tokenize itself: passing them in the kwargs changes nothing
    assert count_prompt_tokens(messages, tok, {"add_generation_prompt": False, "tokenize": False}) == theirs


# ----------------------------------------------------------------------------- raw records


def test_raw_record_parses_and_keeps_unknown_keys():
    example = parse_record({**RAW, "kind": "sum", "meta": {"year": 2020}}, "in.jsonl", 3)
    assert (example.answer_type, example.task) == (NUMERIC, NUMERIC)
    assert example.answer == "12.5" and example.source_id == "ex-1"
    assert example.document.startswith("Document 1: Report A\nRevenue was 12.5.")
    assert example.source_meta == {"kind": "sum", "meta": {"year": 2020}}
    assert example.data_source == "qwenlong_raw"


def test_raw_record_without_id_gets_file_and_row():
    example = parse_record({k: v for k, v in RAW.items() if k != "id"}, "data/x.jsonl", 12)
    assert example.source_id == "data/x.jsonl:12"


@pytest.mark.parametrize(
    ("change", "field", "reason", "words"),
    [
        ({"documents": None}, "documents", "missing", "documents, context, document"),
        ({"documents": []}, "documents", "empty", "empty"),
        ({"documents": [" ", {"title": "t", "text": ""}]}, "documents[0]", "empty", "empty"),
        ({"documents": ["text", {"title": "t", "text": ""}]}, "documents[1].text", "empty", "empty"),
        ({"documents": ["text", None]}, "documents[1]", "missing", "document text"),
        ({"documents": [3]}, "documents[0]", "bad_type", "must be text"),
        ({"documents": [{"title": 5, "text": "t"}]}, "documents[0].title", "bad_type", "got int"),
        ({"documents": [{"title": "t", "text": ["a"]}]}, "documents[0].text", "bad_type", "got list"),
        ({"documents": None, "document": 3}, "document", "bad_type", "must be text"),
        ({"documents": None, "context": {"text": "x"}}, "context", "bad_type", "must be text"),
        ({"question": 5}, "question", "bad_type", "got int"),
        ({"question": ["why?"]}, "question", "bad_type", "got list"),
        ({"answer": {"value": 12}}, "answer", "bad_type", "text, a number or a list"),
        ({"answer": True}, "answer", "bad_type", "got bool"),
        ({"answer": float("nan")}, "answer", "bad_type", "got float"),
        ({"answer": [12, None]}, "answer", "bad_type", "got list"),
        ({"data_source": 7}, "data_source", "bad_type", "got int"),
        ({"documents": "not a list"}, "documents", "bad_type", "list"),
        ({"question": None}, "question", "missing", "missing"),
        ({"question": "   "}, "question", "empty", "empty"),
        ({"answer": None}, "answer", "missing", "gold answer"),
        ({"answer": ""}, "answer", "bad_gold", "empty"),
        ({"answer_type": "poetry"}, "answer_type", "unknown_task", "numeric, choice, qa"),
        ({"task": "poetry/verse"}, "task", "bad_task", "a-z, 0-9 and _"),
        ({"task": "x" * 40}, "task", "bad_task", "1 to 32 characters"),
        ({"task": ["numeric"]}, "task", "bad_task", "must be text, got list"),
        ({"answer": "about twelve"}, "answer", "bad_gold", "not a number"),
        ({"task": "choice", "choices": ["x"]}, "choices", "bad_choices", "at least two"),
        ({"task": "choice", "choices": ["x", "y"], "answer": "D"}, "answer", "bad_gold", "beyond the 2 choices"),
        ({"task": "choice", "choices": ["x", "y"], "answer": "zebra"}, "answer", "bad_gold", "neither an option"),
        ({"choices": ["x", "y"]}, "choices", "bad_choices", "set answer_type to 'choice'"),
        ({"task": "niah", "answer_type": "qa", "choices": ["x", "y"]}, "choices", "bad_choices", "answer type is 'qa'"),
        ({"choices": ["x", None], "task": "choice"}, "choices", "bad_choices", "empty option"),
    ],
)
def test_raw_record_errors_name_row_and_field(change, field, reason, words):
    err = _error({**RAW, **change})  # None stands for an absent value, as in a parquet column
    assert (err.source, err.row, err.field, err.reason) == ("in.jsonl", 7, field, reason)
    assert str(err).startswith(f"in.jsonl row 7: field {field!r}: ")
    assert words in str(err)


def test_task_inferred_from_choices_or_data_source():
    example = parse_record({**RAW, "task": None, "choices": ["a", "b"], "answer": "b"}, "f", 1)
    assert (example.task, example.answer) == (CHOICE, "B")  # the text of option B becomes its letter
    example = parse_record({**RAW, "task": None, "data_source": "docmath_qa"}, "f", 1)
    assert example.task == NUMERIC
    example = parse_record({**RAW, "task": None, "answer": "Paris"}, "f", 1)
    assert example.task == QA


@pytest.mark.parametrize(
    ("change", "answer_type", "task"),
    [
        ({"task": "temporal", "answer_type": "numeric"}, NUMERIC, "temporal"),
        ({"task": "Multi-Hop", "answer_type": "QA", "answer": "Paris"}, QA, "multi_hop"),
        ({"task": "niah", "choices": ["a", "b"], "answer": "b"}, CHOICE, "niah"),  # options make it choice
        ({"task": "temporal", "data_source": "docmath_x"}, NUMERIC, "temporal"),  # no answer type: data_source
        ({"task": "numeric"}, NUMERIC, NUMERIC),  # an old record: the task is both
        ({"task": "docmath"}, NUMERIC, "docmath"),  # an alias names the answer type; the label is kept as given
        ({"task": None, "answer_type": "numeric"}, NUMERIC, NUMERIC),  # no label: the answer type is the label
    ],
)
def test_raw_record_answer_type_and_task_label(change, answer_type, task):
    example = parse_record({**RAW, **change}, "f", 1)
    assert (example.answer_type, example.task) == (answer_type, task)
    row = make_row(example, build_messages("d", "q", answer_type, example.choices or None), 0, 10, 1)
    assert (row["extra_info"]["answer_type"], row["extra_info"]["task"], row["ability"]) == (answer_type, task, task)
    validate_row(row, 1)


def test_canonical_golds():
    assert canonical_golds(NUMERIC, 1234.5) == "1234.5"
    assert canonical_golds(NUMERIC, "1,234.5") == "1,234.5"
    assert canonical_golds(NUMERIC, "-12%") == "-12%"
    assert canonical_golds(CHOICE, "(c)", ["a", "b", "c"]) == "C"
    assert canonical_golds(QA, ["Paris", "City of Paris", "Paris"]) == '["Paris", "City of Paris"]'
    assert canonical_golds(QA, '["x"]') == "x"
    assert canonical_golds(QA, "[citation needed]") == "[citation needed]"
    for bad in ("1.2.3", "12 apples", "", "$"):
        with pytest.raises(ValueError):
            canonical_golds(NUMERIC, bad)


# ----------------------------------------------------------------------------- veRL-format rows


def _verl_row(**over):
    content = (
        "Please read the following text and answer the question below.\n\n<text>\nDoc body.\n</text>\n\n"
        'What is the total?\n\nFormat your response as follows: "Therefore, the answer is (insert answer here)".'
    )
    row = {
        "data_source": "docmath_qa",
        "prompt": [{"role": "user", "content": content}],
        "ability": "doc-math",
        "reward_model": {"style": "rule", "ground_truth": "42.0"},
        "extra_info": {"index": 17, "question": "What is the total?", "split": "train"},
    }
    row.update(over)
    return row


def test_verl_row_keeps_prompt_and_routes_task_by_data_source():
    example = parse_record(_verl_row(), "docqa.parquet", 5)
    assert (example.answer_type, example.task) == (NUMERIC, NUMERIC) and example.answer == "42.0"
    assert example.prompt[0]["content"].startswith("Please read")
    assert example.ability == "doc-math" and example.source_id == "17"
    assert example.source_meta == {"split": "train", "original_index": 17}


def test_verl_row_question_recovered_from_the_template_prompt():
    row = _verl_row(extra_info={"index": 1})
    assert parse_record(row, "f", 1).question == "What is the total?"
    assert question_from_prompt([{"role": "user", "content": "no tags here"}]) is None


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"prompt": []}, "prompt", "bad_prompt"),
        ({"prompt": [{"role": "user", "content": ""}]}, "prompt[0].content", "bad_prompt"),
        ({"prompt": [{"role": "", "content": "x"}]}, "prompt[0].role", "bad_prompt"),
        ({"prompt": [{"role": "system", "content": "x"}]}, "prompt", "bad_prompt"),
        ({"data_source": ""}, "data_source", "missing"),
        ({"reward_model": {"style": "rule", "ground_truth": " "}}, "reward_model.ground_truth", "missing"),
        ({"reward_model": {"style": "rule", "ground_truth": "n/a"}}, "reward_model.ground_truth", "bad_gold"),
        ({"extra_info": {"answer_type": "poetry", "question": "q"}}, "extra_info.answer_type", "unknown_task"),
        ({"extra_info": {"task": "poetry & prose", "question": "q"}}, "extra_info.task", "bad_task"),
        (
            {"prompt": [{"role": "user", "content": "plain prompt"}], "extra_info": {}},
            "extra_info.question",
            "missing",
        ),
        ({"data_source": 7}, "data_source", "bad_type"),
        ({"reward_model": {"style": "rule", "ground_truth": {"v": 42}}}, "reward_model.ground_truth", "bad_type"),
        ({"extra_info": {"question": 12}}, "extra_info.question", "bad_type"),
    ],
)
def test_verl_row_errors_name_row_and_field(change, field, reason):
    err = _error(_verl_row(**change), row=31)
    assert (err.row, err.field, err.reason) == (31, field, reason)
    assert f"row 31: field {field!r}" in str(err)


# ----------------------------------------------------------------------------- prepared rows


def test_make_row_matches_documented_schema_and_validates():
    example = parse_record({**RAW, "task": "choice", "choices": ["12.5", "13"], "answer": "A"}, "f", 1)
    messages = build_messages(example.document, example.question, example.answer_type, example.choices)
    row = make_row(example, messages, index=4, input_tokens=321, phase=1)
    documented = {f.name.split(".")[0] for f in ROW_SCHEMA}
    assert set(row) == documented
    assert tuple(row["extra_info"]) == EXTRA_INFO_KEYS
    assert [f.name for f in arrow_schema().field("extra_info").type] == list(EXTRA_INFO_KEYS)
    assert row["reward_model"] == {"style": "rule", "ground_truth": "A"}
    assert json.loads(row["extra_info"]["source_meta"]) == {}
    validate_row(row, 1)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("extra_info", "input_tokens"), 0, "extra_info.input_tokens"),
        (("extra_info", "index"), -1, "extra_info.index"),
        (("extra_info", "task"), "poetry/verse", "extra_info.task"),
        (("extra_info", "task"), " ", "extra_info.task"),
        (("extra_info", "answer_type"), "poetry", "extra_info.answer_type"),
        (("extra_info", "question"), "", "extra_info.question"),
        (("reward_model", "ground_truth"), "E", "reward_model.ground_truth"),
    ],
)
def test_validate_row_names_row_and_field(path, value, field):
    example = parse_record({**RAW, "task": "choice", "choices": ["x", "y"], "answer": "B"}, "f", 1)
    row = make_row(example, build_messages("d", "q", CHOICE, ["x", "y"]), 0, 10, 1)
    row[path[0]][path[1]] = value
    with pytest.raises(RowError, match=rf"row 9: field '{field}'"):
        validate_row(row, 9)
    row = make_row(example, build_messages("d", "q", CHOICE, ["x", "y"]), 0, 10, 1)
    del row["extra_info"]["phase"]
    with pytest.raises(RowError, match="extra_info.phase.*re-run"):
        validate_row(row, 2)


# ----------------------------------------------------------------------------- reading files as bytes

GOOD = {"question": "q?", "answer": "1", "documents": ["text"]}


def _lines(tmp_path, *lines: bytes, **kwargs) -> list:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return list(read_json_lines(path, **kwargs))


def test_one_bad_line_is_a_named_row_error_and_the_rest_is_read(tmp_path):
    rows = _lines(
        tmp_path,
        b"\xef\xbb\xbf" + json.dumps({**GOOD, "id": 1}).encode(),  # a UTF-8 BOM (Notepad) is not part of the row
        b'{"question": "caf\xe9?", "answer": "1", "documents": ["x"]}',  # latin-1
        json.dumps({**GOOD, "documents": [{"title": "t", "text": "a \ud800 b"}]}).encode(),  # JSON escape \ud800
        b"",
        b"[[[[" * 50_000,  # deeper than Python's stack
        b'{"answer": ' + b"9" * 5000 + b"}",  # more digits than int() accepts
        json.dumps({**GOOD, "id": 6}).encode(),
    )
    assert [n for n, _ in rows] == [1, 2, 3, 5, 6, 7]
    assert rows[0][1]["id"] == 1 and rows[-1][1]["id"] == 6
    latin, surrogate, deep, digits = (value for _, value in rows[1:5])
    assert (latin.row, latin.field, latin.reason) == (2, "<line>", "not_utf8")
    assert "byte 0xe9 at column 18" in str(latin) and "UTF-8" in str(latin)
    assert (surrogate.row, surrogate.field, surrogate.reason) == (3, "documents[0].text", "not_text")
    assert "\\ud800" in str(surrogate)
    assert deep.reason == digits.reason == "unreadable"
    assert all("\n" not in str(err) for err in (latin, surrogate, deep, digits))


def test_an_oversized_line_is_skipped_without_losing_the_next(tmp_path):
    rows = _lines(tmp_path, json.dumps({**GOOD, "documents": ["x" * 5000]}).encode(), b'{"id": 2}', max_line_bytes=1000)
    assert rows[0][1].reason == "too_large" and "1,000 bytes" in str(rows[0][1])
    assert rows[1] == (2, {"id": 2})


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_a_utf16_file_is_one_error_naming_the_encoding(tmp_path, encoding):
    path = tmp_path / "wide.jsonl"
    path.write_bytes("\n".join(json.dumps({**GOOD, "id": i}) for i in range(500)).encode(encoding))
    with pytest.raises(NotUtf8Error, match=r"wide.jsonl: the file is UTF-(16|32).*not UTF-8; re-save it as UTF-8"):
        list(read_json_lines(path))
    with pytest.raises(NotUtf8Error, match="UTF-"):
        read_json_file(path.rename(tmp_path / "wide.json"))


def test_json_file_errors_name_the_line(tmp_path):
    path = tmp_path / "in.json"
    path.write_bytes(b'[\n{"a": 1},\n{"b": "\xff"}\n]')
    with pytest.raises(NotUtf8Error, match=r"in.json line 3: not UTF-8 \(byte 0xff\)"):
        read_json_file(path)
    path.write_bytes(b'\xef\xbb\xbf[\n{"a": 1},\n{"b": }\n]')
    with pytest.raises(NotUtf8Error, match=r"in.json line 3: not valid JSON"):
        read_json_file(path)
    path.write_bytes(b'\xef\xbb\xbf[{"a": 1}]')
    assert read_json_file(path) == [{"a": 1}]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "--n must be at least 1, got 0"),
        (-3, "at least 1"),
        (1.5, "whole number"),
        (True, "whole number"),
        ("4", "whole number"),
        (11, "--n must be at most 10, got 11"),
    ],
)
def test_check_count_names_the_flag(value, message):
    with pytest.raises(InputError, match=message):
        check_count("--n", value, 1, 10)
    assert check_count("--n", 10, 1, 10) == 10


def test_verl_row_with_a_task_label_and_an_answer_type():
    example = parse_record(_verl_row(extra_info={"index": 3, "task": "numerical", "answer_type": "numeric"}), "f", 1)
    assert (example.answer_type, example.task) == (NUMERIC, "numerical")
    assert "answer_type" not in example.source_meta and "task" not in example.source_meta


def test_validate_row_accepts_rows_prepared_before_answer_types():
    """Rows written before ``extra_info.answer_type`` existed: their task is an answer type and stands for both."""
    example = parse_record({**RAW, "task": "choice", "choices": ["x", "y"], "answer": "B"}, "f", 1)
    row = make_row(example, build_messages("d", "q", CHOICE, ["x", "y"]), 0, 10, 1)
    del row["extra_info"]["answer_type"]
    validate_row(row, 1)
    row["reward_model"]["ground_truth"] = "E"  # still checked against the choice answer type the task names
    with pytest.raises(RowError, match="field 'reward_model.ground_truth'.*beyond the 2 choices"):
        validate_row(row, 1)
