"""Benchmark loaders on the fixture files of every schema, --bench resolution, and bad-row errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwenlong_verl.common.tasks import CHOICE, NUMERIC, QA
from qwenlong_verl.driver.eval.benchmarks import (
    BENCHMARKS,
    BenchmarkFormatError,
    LoadOptions,
    load_benchmarks,
    load_file,
    resolve_bench,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "eval"
ALL = ["docmath", "frames", "2wikimqa", "hotpotqa", "musique", "narrativeqa", "qasper", "loong"]


def test_every_registered_benchmark_has_a_fixture_and_loads():
    assert sorted(BENCHMARKS) == sorted(ALL)
    sources, items = load_benchmarks(ALL, FIXTURES)
    assert [s.name for s in sources] == ALL
    by_bench = {}
    for it in items:
        by_bench.setdefault(it.benchmark, []).append(it)
        assert it.id.startswith(it.benchmark + "/") and it.document.strip() and it.question and it.gold
        assert str(FIXTURES) in it.source and ":" in it.source
    assert {b: len(v) for b, v in by_bench.items()} == {
        "docmath": 3,
        "frames": 2,
        "2wikimqa": 2,
        "hotpotqa": 2,
        "musique": 1,
        "narrativeqa": 1,
        "qasper": 1,
        "loong": 5,
    }
    assert len({it.id for it in items}) == len(items)


def test_docmath_schema():
    items = {it.id: it for it in load_file(FIXTURES / "docmath", "docmath")}
    it = items["docmath/simplong-testmini-0"]
    assert it.task == NUMERIC and it.gold == "62.5" and it.subset == "simplong" and it.data_source == "docmath"
    assert it.document.splitlines()[0] == "Harbor Mills annual report 2023."
    assert items["docmath/simplong-testmini-1"].gold == "42"
    assert items["docmath/compshort-testmini-0"].subset == "compshort"


def test_frames_and_longbench_schemas():
    frames = load_file(FIXTURES / "frames.jsonl", "frames")
    assert frames[0].id == "frames/0" and frames[0].gold == "Ostra" and frames[0].task == QA
    assert frames[0].document == (
        "Lanternfish Festival\nThe Lanternfish Festival began in Velmor in 1921.\n"
        "Velmor\nVelmor is a market town on the banks of the Ostra."
    )
    hotpot = load_file(FIXTURES / "hotpotqa.jsonl", "hotpotqa")
    assert hotpot[1].id == "hotpotqa/hotpotqa-001" and hotpot[1].gold == "yes" and hotpot[1].data_source == "hotpotqa"
    assert hotpot[0].meta["answers"] == ["Karsa"]


def test_loong_types_levels_and_documents():
    items = {it.id: it for it in load_file(FIXTURES / "loong" / "loong.jsonl", "loong")}
    assert {it.subset for it in items.values()} == {
        "spotlight_locating",
        "comparison",
        "clustering",
        "chain_of_reasoning",
    }
    fin = items["loong/loong-fin-1"]
    assert fin.question == "Answer with the amount only.\n\nWhat was Acme Corp's net income in 2024?"
    assert "Net income 3.2 million" in fin.document and "2023" not in fin.document  # levels 1-3: the 2024 report
    chain = items["loong/loong-fin-3"]
    assert chain.task == NUMERIC and chain.gold == "1.1"
    assert "Net income 2.1 million" in chain.document and "Net income 3.2 million" in chain.document
    cluster = items["loong/loong-paper-1"]
    assert json.loads(cluster.gold) == {
        "uses RL": ["Reward Shaping for Readers"],
        "no RL": ["Sparse Attention Revisited"],
    }
    assert cluster.document.startswith("Reward Shaping for Readers\n# Reward Shaping for Readers")
    legal = items["loong/loong-legal-1"]
    assert "Verdict: upheld." in legal.document and legal.meta == {"type": "legal", "level": 4, "set": 1}


def test_loong_rows_asking_in_the_instruction_load(tmp_path):
    """Loong's release has rows (every paper chain-of-reasoning one) with ``"question": ""`` and the task in
    ``instruction``; they load, and a row with neither is a named error."""
    row = {
        "id": "p4",
        "type": "paper",
        "level": 4,
        "question": "",
        "instruction": "Order the papers.",
        "answer": ["B", "A"],
        "docs": ["d"],
    }
    (tmp_path / "loong.jsonl").write_text(
        json.dumps(row) + "\n" + json.dumps({**row, "id": "p5", "instruction": ""}) + "\n"
    )
    with pytest.raises(BenchmarkFormatError, match=r"loong\.jsonl:2 \(loong\): fields 'question' and 'instruction'"):
        load_file(tmp_path / "loong.jsonl", "loong")
    (tmp_path / "loong.jsonl").write_text(json.dumps(row) + "\n")
    (item,) = load_file(tmp_path / "loong.jsonl", "loong")
    assert item.question == "Order the papers." and item.gold == "B, A"


def test_loong_doc_dir_option_and_missing_docs(tmp_path):
    row = json.loads((FIXTURES / "loong" / "loong.jsonl").read_text().splitlines()[0])
    (tmp_path / "loong.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(BenchmarkFormatError, match=r"loong\.jsonl:1 \(loong\).*--loong-doc-dir"):
        load_file(tmp_path / "loong.jsonl", "loong")
    items = load_file(tmp_path / "loong.jsonl", "loong", LoadOptions(loong_doc_dir=FIXTURES / "loong" / "doc"))
    assert "Acme Corp annual report 2024" in items[0].document
    row["doc"] = ["Nobody Ltd"]
    (tmp_path / "loong.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(BenchmarkFormatError, match="no financial report named like 'Nobody Ltd'"):
        load_file(tmp_path / "loong.jsonl", "loong", LoadOptions(loong_doc_dir=FIXTURES / "loong" / "doc"))


def test_generic_schema_with_choices():
    items = load_file(FIXTURES / "mcq.jsonl", "mcq")
    assert [it.task for it in items] == [CHOICE, CHOICE]
    assert items[0].choices == ("A new chair", "The budget", "A merger", "Nothing") and items[0].gold == "B"
    assert items[1].choices == ("May", "July", "September", "Never")  # {letter: text} in letter order
    assert items[1].document == "Chapter 1. The ship left port in May.\nChapter 2. It returned in September."
    assert items[0].data_source == "mcq" and items[0].id == "mcq/q1"


def test_resolution_forms(tmp_path):
    assert resolve_bench("hotpotqa", FIXTURES).paths == (FIXTURES / "hotpotqa.jsonl",)
    assert resolve_bench("docmath", FIXTURES).paths == (FIXTURES / "docmath",)
    assert resolve_bench(str(FIXTURES / "musique.jsonl")).name == "musique"
    src = resolve_bench(f"mine={FIXTURES / 'mcq.jsonl'}")
    assert src.name == "mine" and src.paths == (FIXTURES / "mcq.jsonl",)
    with pytest.raises(BenchmarkFormatError, match="did you mean 'hotpotqa'"):
        resolve_bench("hotpotq", FIXTURES)
    with pytest.raises(BenchmarkFormatError, match=r"no file found under .*THUDM/LongBench"):
        resolve_bench("qasper", tmp_path)
    with pytest.raises(BenchmarkFormatError, match="cannot tell the benchmark.*NAME="):
        resolve_bench(str(FIXTURES / "mcq.jsonl"))
    with pytest.raises(BenchmarkFormatError, match="does not exist"):
        resolve_bench(f"x={tmp_path / 'none.jsonl'}")


def test_data_dir_from_environment(monkeypatch):
    monkeypatch.setenv("QWENLONG_EVAL_DATA", str(FIXTURES))
    assert resolve_bench("frames").paths == (FIXTURES / "frames.jsonl",)


def _write(tmp_path, name, rows):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_missing_field_names_file_line_field_and_close_match(tmp_path):
    good = {"input": "q", "context": "c", "answers": ["a"], "_id": "1"}
    bad = {"question": "q", "context": "c", "answers": ["a"], "_id": "2"}
    path = _write(tmp_path, "hotpotqa.jsonl", [good, bad])
    with pytest.raises(BenchmarkFormatError) as exc:
        load_file(path, "hotpotqa")
    text = str(exc.value)
    assert f"{path}:2 (hotpotqa)" in text and "missing field 'input'" in text
    assert "hotpotqa rows need: input (question), context" in text


@pytest.mark.parametrize(
    "bench, row, message",
    [
        ("docmath", {"question": "q", "paragraphs": ["p"]}, "test split hides answers"),
        ("docmath", {"question": "q", "paragraphs": "p", "ground_truth": 1}, "'paragraphs' must be list"),
        (
            "docmath",
            {"question": "q", "paragraphs": ["p"], "ground_truth": "12"},
            "'ground_truth' must be int or float",
        ),
        ("frames", {"Prompt": "q", "Answer": "a", "wiki_items": []}, "fetch the articles"),
        ("frames", {"Prompt": "q", "Answer": "a", "wiki_items": ["text"]}, r"wiki_items\[0\] must be an object"),
        ("musique", {"input": " ", "context": "c", "answers": ["a"]}, "field 'input' is empty"),
        ("musique", {"input": "q", "context": "c", "answers": [""]}, "no non-empty answer"),
        ("loong", {"type": "news", "level": 1, "question": "q", "answer": "a", "docs": ["d"]}, "Loong types are"),
        ("loong", {"type": "paper", "level": 7, "question": "q", "answer": "a", "docs": ["d"]}, "levels are 1-4"),
        ("loong", {"type": "paper", "level": 1, "question": "q", "answer": "", "docs": ["d"]}, "empty field 'answer'"),
        ("mine", {"question": "q", "answer": "a"}, r"missing field 'documents' \(or 'document' / 'context'\)"),
        ("mine", {"document": "d", "question": "q", "answer": "a", "answer_type": "poem"}, "unknown answer type"),
        ("mine", {"document": "d", "question": "q", "answer": "a", "task": "a/b"}, "field 'task': task label 'a/b'"),
        ("mine", {"document": "d", "question": "q", "answer": "B", "task": "choice"}, "'choices' is missing"),
        ("mine", {"document": "d", "question": "q", "answer": "E", "choices": ["x", "y"]}, "beyond the 2 choices"),
        (
            "mine",
            {"document": "d", "question": "q", "answer": "many", "task": "numeric"},
            "field 'answer'.*not a number",
        ),
        # the training data's rules: never the text "5", "{}" or "nan"
        ("mine", {"documents": [{"title": 5, "text": "t"}], "question": "q", "answer": "a"}, r"documents\[0\]\.title"),
        ("mine", {"documents": [{"title": "t"}], "question": "q", "answer": "a"}, r"documents\[0\]\.text"),
        ("mine", {"document": "d", "question": "q", "answer": {}}, "field 'answer' must be text or a finite number"),
        ("mine", {"document": "d", "question": "q", "answer": float("nan")}, "got float 'nan'"),
        ("mine", {"document": "d", "question": "q", "answers": ["a", float("inf")]}, "field 'answers' must be text"),
    ],
)
def test_bad_rows(tmp_path, bench, row, message):
    path = _write(tmp_path, f"{bench}.jsonl", [row])
    with pytest.raises(BenchmarkFormatError, match=message) as exc:
        load_file(path, bench)
    assert f"{path}:1 ({bench})" in str(exc.value)


def test_invalid_json_line_duplicate_ids_and_empty_file(tmp_path):
    path = tmp_path / "qasper.jsonl"
    path.write_text('{"input": "q", "context": "c", "answers": ["a"]}\n{not json\n')
    with pytest.raises(BenchmarkFormatError, match=r"qasper\.jsonl:2: not valid JSON"):
        load_file(path, "qasper")
    row = {"input": "q", "context": "c", "answers": ["a"], "_id": "same"}
    path = _write(tmp_path, "qasper.jsonl", [row, row])
    with pytest.raises(
        BenchmarkFormatError, match=r"qasper\.jsonl:2: id 'qasper/same' already used at .*qasper\.jsonl:1"
    ):
        load_benchmarks([str(path)])
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(BenchmarkFormatError, match="no rows"):
        load_file(tmp_path / "empty.jsonl", "qasper")
    with pytest.raises(BenchmarkFormatError, match="given twice"):
        load_benchmarks(["hotpotqa", str(FIXTURES / "hotpotqa.jsonl")], FIXTURES)


def test_json_and_parquet_files_and_limit(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in (FIXTURES / "2wikimqa.jsonl").read_text().splitlines()]
    (tmp_path / "2wikimqa.json").write_text(json.dumps(rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "2wikimqa.parquet")
    from_json = load_file(tmp_path / "2wikimqa.json", "2wikimqa")
    from_parquet = load_file(tmp_path / "2wikimqa.parquet", "2wikimqa")
    from_jsonl = load_file(FIXTURES / "2wikimqa.jsonl", "2wikimqa")
    strip = [(i.id, i.document, i.question, i.gold) for i in from_jsonl]
    assert [(i.id, i.document, i.question, i.gold) for i in from_json] == strip
    assert [(i.id, i.document, i.question, i.gold) for i in from_parquet] == strip
    assert from_parquet[0].source.endswith("2wikimqa.parquet row 1")
    _, limited = load_benchmarks(["docmath", "frames"], FIXTURES, LoadOptions(limit=1))
    assert [i.benchmark for i in limited] == ["docmath", "frames"]


@pytest.mark.parametrize("content", [b"", b"PAR1 cut short", b'{"input": "q"}\n'])
def test_unreadable_parquet_is_one_error_naming_the_file(tmp_path, content):
    path = tmp_path / "qasper.parquet"
    path.write_bytes(content)
    with pytest.raises(BenchmarkFormatError, match=r"qasper\.parquet: not a readable parquet file"):
        load_file(path, "qasper")


def test_generic_gold_uses_the_training_gold_rules(tmp_path):
    rows = [
        {"id": 1, "document": "d", "question": "q", "choices": ["red", "green"], "answer": "green"},
        {"id": 2, "document": "d", "question": "q", "choices": ["red", "green"], "answer": "(a)"},
        {"id": 3, "document": "d", "question": "q", "answers": ["Paris", "paris, France"]},
        {"id": 4, "document": "d", "question": "q", "answer": 12.0},
    ]
    items = load_file(_write(tmp_path, "mine.jsonl", rows), "mine")
    assert [(i.task, i.gold) for i in items] == [("choice", "B"), ("choice", "A"), ("qa", "Paris"), ("numeric", "12")]
    assert items[2].meta == {"answers": ["Paris", "paris, France"]}


def test_generic_task_label_and_answer_type(tmp_path):
    """``answer_type`` picks template and verifier; a task label that is not an answer type becomes the subset."""
    rows = [
        {"id": 1, "document": "d", "question": "q", "answer": "1987", "task": "temporal", "answer_type": "numeric"},
        {"id": 2, "document": "d", "question": "q", "answer": "Oslo", "task": "NIAH"},  # answer type inferred: qa
        {"id": 3, "document": "d", "question": "q", "answer": "x", "task": "qa", "subset": "mine"},
        {"id": 4, "document": "d", "question": "q", "answer": "B", "task": "mcq", "choices": ["x", "y"]},
    ]
    items = load_file(_write(tmp_path, "mine.jsonl", rows), "mine")
    assert [(i.task, i.subset, i.gold) for i in items] == [
        ("numeric", "temporal", "1987"),
        ("qa", "niah", "Oslo"),
        ("qa", "mine", "x"),
        ("choice", "mcq", "B"),
    ]
