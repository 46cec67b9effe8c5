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
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(StoreError, match="not an eval folder"):  # a file given as the folder
        EvalFolder(tmp_path / "a_file").read_manifest()
    (tmp_path / "run.json").write_bytes(b'{"n": 1, "model": "caf\xe9"}')
    with pytest.raises(StoreError, match=r"run\.json: not valid JSON"):  # latin-1 bytes, not a traceback
        EvalFolder(tmp_path).read_manifest()
    (tmp_path / "run.json").write_text("[1]")
    with pytest.raises(StoreError, match="expected a JSON object"):
        EvalFolder(tmp_path).read_manifest()


def test_a_complete_line_that_is_not_utf8_is_an_error_not_replacement_characters(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_bytes(b'{"id": "a", "k": 0}\n{"id": "caf\xe9", "k": 1}\n')
    with pytest.raises(StoreError, match=r"items\.jsonl:2: not UTF-8 text"):
        read_jsonl(path)


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


def test_a_lone_surrogate_is_stored_escaped_and_reads_back(tmp_path):
    from qwenlong_verl.driver.eval.store import write_json, write_jsonl

    row = {"id": "a", "k": 0, "error": "bad \ud800 text", "text": "é"}
    path = tmp_path / "g.jsonl"
    with JsonlAppender(path) as sink:
        sink.append(row)
        sink.append({"id": "a", "k": 1, "text": "é"})
    assert read_jsonl(path) == [row, {"id": "a", "k": 1, "text": "é"}]
    lines = path.read_bytes().decode("utf-8").splitlines()  # valid UTF-8 throughout
    assert "\\ud800" in lines[0] and "é" in lines[1]  # escaped only where needed
    write_jsonl(tmp_path / "items.jsonl", [row])
    write_json(tmp_path / "run.json", row)
    assert read_jsonl(tmp_path / "items.jsonl") == [row]
    assert json.loads((tmp_path / "run.json").read_text(encoding="utf-8")) == row


def test_a_second_holder_of_the_folder_lock_is_refused_naming_the_folder_and_pid(tmp_path):
    import os

    from qwenlong_verl.common.lock import FolderLocked

    folder = EvalFolder(tmp_path / "run")
    with folder.lock():
        with pytest.raises(FolderLocked) as caught:
            with folder.lock():
                pass
    message = str(caught.value)
    assert str(folder.root) in message and f"pid {os.getpid()}" in message and "\n" not in message
    with folder.lock():  # released
        pass
