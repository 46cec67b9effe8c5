"""The eval folder's append-only files survive a writer killed mid-line."""

from __future__ import annotations

import json

import pytest

from qwenlong_verl.driver.eval.store import (
    EvalFolder,
    JsonlAppender,
    StoreError,
    latest_by_key,
    latest_generations,
    read_jsonl,
)


def test_append_and_read(tmp_path):
    path = tmp_path / "g.jsonl"
    with JsonlAppender(path) as sink:
        sink.append({"id": "a", "k": 0, "text": "é\nline"})
        sink.append({"id": "a", "k": 1})
    assert read_jsonl(path) == [{"id": "a", "k": 0, "text": "é\nline"}, {"id": "a", "k": 1}]
    assert read_jsonl(tmp_path / "absent.jsonl") == []


def test_torn_last_line_is_skipped_then_cut_before_appending(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps({"id": "a", "k": 0}) + "\n" + '{"id": "a", "k": 1, "resp')
    assert read_jsonl(path) == [{"id": "a", "k": 0}]
    with JsonlAppender(path) as sink:
        sink.append({"id": "a", "k": 1})
    assert path.read_text().splitlines() == ['{"id": "a", "k": 0}', '{"id": "a", "k": 1}']


def test_torn_only_line_and_long_tail(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text('{"id": "x", "k": 0, "response": "' + "y" * 200_000)  # longer than one read block
    assert read_jsonl(path) == []
    with JsonlAppender(path) as sink:
        sink.append({"id": "x", "k": 0})
    assert read_jsonl(path) == [{"id": "x", "k": 0}]


def test_bad_line_in_the_middle_is_an_error(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text('{"id": "a", "k": 0}\nnot json\n{"id": "a", "k": 1}\n')
    with pytest.raises(StoreError, match=r"g\.jsonl:2: not valid JSON"):
        read_jsonl(path)


def test_latest_rows():
    rows = [
        {"id": "a", "k": 0, "status": "error", "n": 1},
        {"id": "a", "k": 0, "status": "ok", "n": 2},
        {"id": "a", "k": 0, "status": "error", "n": 3},
        {"id": "b", "k": 0, "status": "error", "n": 4},
        {"id": "b", "k": 0, "status": "error", "n": 5},
    ]
    assert {k: r["n"] for k, r in latest_generations(rows).items()} == {("a", 0): 2, ("b", 0): 5}
    assert {k: r["n"] for k, r in latest_by_key(rows).items()} == {("a", 0): 3, ("b", 0): 5}


def test_manifest_errors(tmp_path):
    with pytest.raises(StoreError, match="not an eval folder"):
        EvalFolder(tmp_path).read_manifest()
    (tmp_path / "run.json").write_text("[1]")
    with pytest.raises(StoreError, match="expected a JSON object"):
        EvalFolder(tmp_path).read_manifest()


def test_complete_last_row_missing_only_its_newline_is_kept(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text('{"id": "a", "k": 0}\n{"id": "a", "k": 1}')
    assert len(read_jsonl(path)) == 2
    with JsonlAppender(path) as sink:
        sink.append({"id": "a", "k": 2})
    assert [r["k"] for r in read_jsonl(path)] == [0, 1, 2]


def test_line_torn_inside_a_multibyte_character(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_bytes(b'{"id": "a", "k": 0}\n' + '{"id": "a", "k": 1, "response": "caf\u00e9'.encode()[:-1])
    assert read_jsonl(path) == [{"id": "a", "k": 0}]
    with JsonlAppender(path) as sink:
        sink.append({"id": "a", "k": 1})
    assert [r["k"] for r in read_jsonl(path)] == [0, 1]
