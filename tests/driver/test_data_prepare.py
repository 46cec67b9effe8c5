"""``prepare``: problems by row and field, exact veRL lengths, disjoint phase windows, determinism, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from qwenlong_verl.driver.data.prepare import (
    BadRowsError,
    PrepareError,
    parse_phases,
    phase_of,
    prepare,
)
from qwenlong_verl.driver.data.schema import validate_row
from qwenlong_verl.driver.data.tokenizer import builtin_tokenizer_path, load_tokenizer

SENTENCE = "The harbour office recorded 1,204 arrivals and 37 delays in the spring season. "


def raw(i: int, sentences: int, **over) -> dict:
    record = {
        "id": f"r{i}",
        "documents": [{"title": f"Log {i}", "text": SENTENCE * sentences}],
        "question": f"How many arrivals were recorded in log {i}?",
        "answer": "1204",
        "task": "numeric",
    }
    record.update(over)
    return record


def verl_row(i: int, sentences: int) -> dict:
    content = (
        "Please read the following text and answer the question below.\n\n<text>\n"
        + SENTENCE * sentences
        + "\n</text>\n\nWhich option is right?\nA. one\nB. two\n\nFormat your response as follows: "
        '"Therefore, the answer is (insert answer here)".'
    )
    return {
        "data_source": "long_toc_choices_0_20000",
        "prompt": [{"role": "user", "content": content}],
        "ability": "doc-qa",
        "reward_model": {"style": "rule", "ground_truth": "B"},
        "extra_info": {"index": 100 + i, "question": "Which option is right?\nA. one\nB. two", "split": "train"},
    }


@pytest.fixture
def inputs(tmp_path) -> list[str]:
    """A jsonl with good rows of several lengths and bad rows at known line numbers, plus a veRL-format parquet."""
    lines = [
        json.dumps(raw(0, 2)),  # line 1
        json.dumps(raw(1, 30)),  # line 2
        "",  # line 3: blank, skipped, still counted as a line
        json.dumps(raw(2, 8, answer="twelve hundred")),  # line 4: bad gold
        "{not json",  # line 5
        json.dumps(raw(3, 60)),  # line 6
        json.dumps(raw(4, 5, answer_type="poetry")),  # line 7: unknown answer type
        json.dumps(raw(5, 400)),  # line 8: longer than the last window
        json.dumps(raw(0, 3)),  # line 9: duplicate id r0
        json.dumps({k: v for k, v in raw(6, 4).items() if k != "question"}),  # line 10: missing question
        json.dumps(raw(7, 12, task="choice", choices=["1204", "37"], answer="A")),  # line 11
    ]
    jsonl = tmp_path / "raw.jsonl"
    jsonl.write_text("\n".join(lines) + "\n")
    parquet = tmp_path / "docqa.parquet"
    pq.write_table(pa.Table.from_pylist([verl_row(0, 10), verl_row(1, 45)]), parquet)
    return [str(jsonl), str(parquet)]


PHASES = [300, 1200, 2500]


def read_rows(path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def test_rows_phases_lengths_and_problems(inputs, tmp_path):
    from verl.utils.tokenizer import normalize_token_ids

    out = tmp_path / "out"
    seen_progress = []
    stats = prepare(
        inputs, str(out), "builtin", phases=PHASES, workers=1, progress=lambda d, t: seen_progress.append((d, t))
    )

    assert stats.rows_read == 12 and stats.rows_written == 6
    assert stats.dropped == {
        "bad_gold": 1,
        "duplicate_id": 1,
        "missing": 1,
        "too_long": 1,
        "unknown_task": 1,
        "unreadable": 1,
    }
    where = [(Path(p.source).name, p.row, p.field) for p in stats.problems]
    assert where == [
        ("raw.jsonl", 4, "answer"),
        ("raw.jsonl", 5, "<line>"),
        ("raw.jsonl", 7, "answer_type"),
        ("raw.jsonl", 8, "prompt"),
        ("raw.jsonl", 9, "id"),
        ("raw.jsonl", 10, "question"),
    ]
    too_long = stats.problems[3]
    assert f"longer than the last phase window {PHASES[-1]}" in too_long.message
    assert seen_progress[-1] == (7, 7)  # every row that passed validation was counted, the too-long one too

    tok = load_tokenizer("builtin")
    by_index = {}
    for phase_stats, low, high in zip(stats.phase_stats, [0, *PHASES[:-1]], PHASES, strict=True):
        rows = read_rows(out / phase_stats.file)
        assert phase_stats.rows == len(rows) and (phase_stats.min_exclusive, phase_stats.max_inclusive) == (low, high)
        assert [r["extra_info"]["index"] for r in rows] == sorted(r["extra_info"]["index"] for r in rows)
        for number, row in enumerate(rows, start=1):
            validate_row(row, number, phase_stats.file)
            ids = tok.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True)
            assert row["extra_info"]["input_tokens"] == len(normalize_token_ids(ids))  # exactly veRL's count
            assert low < row["extra_info"]["input_tokens"] <= high
            assert row["extra_info"]["phase"] == phase_stats.phase
            by_index[row["extra_info"]["index"]] = row
    # index = position among all input rows (jsonl: 10 non-blank lines, then the 2 parquet rows)
    assert {i: r["extra_info"]["source_id"] for i, r in by_index.items()} == {
        0: "r0", 1: "r1", 4: "r3", 9: "r7", 10: "100", 11: "101"
    }  # fmt: skip
    assert [len(read_rows(out / p.file)) for p in stats.phase_stats] == [1, 3, 2]

    docqa = [r for r in by_index.values() if r["data_source"].startswith("long_toc_choices")]
    assert [r["extra_info"]["task"] for r in docqa] == ["choice", "choice"]
    assert (
        docqa[0]["ability"] == "doc-qa" and json.loads(docqa[0]["extra_info"]["source_meta"])["original_index"] == 100
    )
    choice = next(r for r in by_index.values() if r["extra_info"]["source_id"] == "r7")
    assert choice["extra_info"]["choices"] == ["1204", "37"] and choice["reward_model"]["ground_truth"] == "A"
    assert "\nA. 1204\nB. 37\n" in choice["prompt"][0]["content"]

    saved = json.loads((out / "stats.json").read_text())
    assert saved["rows_written"] == 6 and saved["problems_total"] == 6 and "output_dir" not in saved
    assert [p["file"] for p in saved["phase_stats"]] == ["phase1.parquet", "phase2.parquet", "phase3.parquet"]
    assert (out / "lengths.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_indices_are_input_positions_and_do_not_move_with_phases(inputs, tmp_path):
    first = prepare(inputs, str(tmp_path / "a"), "builtin", phases=PHASES, workers=1, plot=False)
    second = prepare(inputs, str(tmp_path / "b"), "builtin", phases=[13000], workers=1, plot=False)

    def ids(stats):
        return {r["extra_info"]["source_id"]: r["extra_info"]["index"] for f in stats.phase_files for r in read_rows(f)}

    a, b = ids(first), ids(second)
    assert a == {"r0": 0, "r1": 1, "r3": 4, "r7": 9, "100": 10, "101": 11}
    assert b == {**a, "r5": 6}  # the long row fits the single larger window; nobody else moved
    assert len(second.phase_files) == 1


@pytest.mark.slow
def test_deterministic_bytes_in_process_and_with_a_process_pool(inputs, tmp_path):
    one = prepare(inputs, str(tmp_path / "one"), "builtin", phases=PHASES, workers=1, batch_size=2)
    two = prepare(inputs, str(tmp_path / "two"), "builtin", phases=PHASES, workers=2, batch_size=2)
    names = ["phase1.parquet", "phase2.parquet", "phase3.parquet", "stats.json", "lengths.png"]
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    assert one.rows_written == two.rows_written == 6


def test_strict_fails_naming_rows_and_writes_nothing(inputs, tmp_path):
    with pytest.raises(BadRowsError) as err:
        prepare(inputs, str(tmp_path / "strict"), "builtin", phases=PHASES, strict=True, workers=1)
    message = str(err.value)
    assert message.startswith("6 bad row(s) (strict mode, nothing written)")
    assert "raw.jsonl row 4: field 'answer'" in message and "raw.jsonl row 10: field 'question': missing" in message
    assert len(err.value.problems) == 6
    assert not (tmp_path / "strict").exists()


def test_fewer_phases_remove_stale_phase_files(inputs, tmp_path):
    out = tmp_path / "out"
    prepare(inputs, str(out), "builtin", phases=PHASES, workers=1, plot=False)
    assert (out / "phase3.parquet").exists()
    stats = prepare(inputs, str(out), "builtin", phases=[1200, 2500], workers=1, plot=False)
    assert sorted(p.name for p in out.glob("phase*.parquet")) == ["phase1.parquet", "phase2.parquet"]
    assert stats.histogram is None and not (out / "lengths.png").exists()


def test_chat_template_kwargs_change_the_count_like_veRL(tmp_path):
    """A Qwen3-style template that reads enable_thinking: we must count with the training config's kwargs."""
    from verl.utils import hf_tokenizer
    from verl.utils.tokenizer import normalize_token_ids

    tok_dir = tmp_path / "tok"
    shutil.copytree(builtin_tokenizer_path(), tok_dir)
    config = json.loads((tok_dir / "tokenizer_config.json").read_text())
    config["chat_template"] += (
        "{%- if add_generation_prompt and enable_thinking is defined and not enable_thinking -%}{{- '<think>\\n\\n</think>\\n\\n' -}}{%- endif -%}"
    )
    (tok_dir / "tokenizer_config.json").write_text(json.dumps(config))
    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps(raw(0, 3)) + "\n")

    plain = prepare([str(data)], str(tmp_path / "p"), tokenizer=str(tok_dir), phases=[5000], workers=1, plot=False)
    off = prepare(
        [str(data)], str(tmp_path / "o"), tokenizer=str(tok_dir), phases=[5000], workers=1, plot=False,
        apply_chat_template_kwargs={"enable_thinking": False},
    )  # fmt: skip
    (row_plain,) = read_rows(plain.phase_files[0])
    (row_off,) = read_rows(off.phase_files[0])
    theirs = hf_tokenizer(str(tok_dir))
    for row, kwargs in ((row_plain, {}), (row_off, {"enable_thinking": False})):
        ids = theirs.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True, **kwargs)
        assert row["extra_info"]["input_tokens"] == len(normalize_token_ids(ids))
    assert row_off["extra_info"]["input_tokens"] > row_plain["extra_info"]["input_tokens"]
    assert json.loads((tmp_path / "o" / "stats.json").read_text())["apply_chat_template_kwargs"] == {
        "enable_thinking": False
    }


def test_argument_errors(tmp_path, inputs):
    for bad, match in (
        ("", "not a token count"),
        ("100,50", "strictly increasing"),
        ("0", "positive"),
        ("x", "token count"),
        ("1e3", "not a token count"),  # was 1000, silently
        ("20.5", "not a token count"),  # was 20, silently
        ("nan", "not a token count"),
        ("inf", "not a token count"),  # was an OverflowError traceback
        ("9" * 5000, "not a token count"),
    ):
        with pytest.raises(PrepareError, match=match):
            parse_phases(bad)
    assert parse_phases("20k, 60K") == [20000, 60000] and parse_phases([1, 2]) == [1, 2]
    assert [phase_of(t, [10, 20]) for t in (1, 10, 11, 20, 21)] == [1, 1, 2, 2, None]
    with pytest.raises(PrepareError, match="not found: .*absent.jsonl"):
        prepare([str(tmp_path / "absent.jsonl")], str(tmp_path / "o"), "builtin")
    odd = tmp_path / "data.csv"
    odd.write_text("a,b\n")
    with pytest.raises(PrepareError, match="unsupported input format '.csv'"):
        prepare([str(odd)], str(tmp_path / "o"), "builtin", workers=1)
    with pytest.raises(PrepareError, match="at least one input"):
        prepare([], str(tmp_path / "o"), "builtin")
    for workers in (0, -3, 1.5):
        with pytest.raises(PrepareError, match=f"--workers must be .*, got {workers}"):
            prepare(inputs, str(tmp_path / "o"), "builtin", workers=workers)
    assert parse_phases("1.5k") == [1500] and not (tmp_path / "o").exists()


def test_cli_prepare(cli, inputs, tmp_path):
    out = tmp_path / "cli"
    result = cli(
        "prepare", "--input", *inputs, "--output", str(out), "--tokenizer", "builtin", "--phases", "300,1200,2500"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 of 12 rows written" in result.stdout
    assert "raw.jsonl row 4" in result.stdout and "too_long" in result.stdout
    assert [len(read_rows(out / f"phase{n}.parquet")) for n in (1, 2, 3)] == [1, 3, 2]
    strict = cli(
        "prepare",
        "--input",
        *inputs,
        "--output",
        str(tmp_path / "s"),
        "--tokenizer",
        "builtin",
        "--phases",
        "300,1200,2500",
        "--strict",
    )
    assert strict.returncode == 2 and "6 bad row(s)" in strict.stderr and not (tmp_path / "s").exists()
    offline = cli(
        "prepare", "--input", inputs[0], "--output", str(tmp_path / "x"), "--tokenizer", "no-org/no-model-qwenlong",
        env={"HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert offline.returncode == 2 and "--tokenizer /path/to/no-model-qwenlong" in offline.stderr


def test_bad_bytes_and_wrong_types_are_counted_rows_never_a_traceback(tmp_path):
    lines = [
        b"\xef\xbb\xbf" + json.dumps(raw(0, 2)).encode(),  # BOM: the first row is still read
        json.dumps(raw(1, 2)).encode().replace(b"harbour", b"h\xe4rbour"),  # latin-1 byte
        json.dumps(raw(2, 2, documents=["a \ud800 b"])).encode(),  # lone surrogate from a JSON escape
        json.dumps(raw(3, 2, documents=[None, SENTENCE])).encode(),
        json.dumps(raw(4, 2, documents=[{"title": 5, "text": SENTENCE}])).encode(),
        json.dumps(raw(5, 2, question=3)).encode(),
        json.dumps(raw(6, 2, answer={"value": 1204})).encode(),
        json.dumps(raw(7, 2)).encode(),
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    stats = prepare([str(path)], str(tmp_path / "o"), "builtin", phases=[2000], plot=False)
    assert (stats.rows_read, stats.rows_written) == (8, 2)
    assert stats.dropped == {"bad_type": 3, "missing": 1, "not_text": 1, "not_utf8": 1}
    assert [(p.row, p.field) for p in stats.problems] == [
        (2, "<line>"),
        (3, "documents[0]"),
        (4, "documents[0]"),
        (5, "documents[0].title"),
        (6, "question"),
        (7, "answer"),
    ]
    prompts = [r["prompt"][0]["content"] for r in read_rows(stats.phase_files[0])]
    assert not any("None" in p for p in prompts)
    with pytest.raises(BadRowsError, match=r"6 bad row\(s\).*\n.*mixed.jsonl row 2: field '<line>': not UTF-8"):
        prepare([str(path)], str(tmp_path / "s"), "builtin", phases=[2000], plot=False, strict=True)
    wide = tmp_path / "wide.jsonl"
    wide.write_bytes(b"\n".join(lines[:1] + lines[-1:]).decode("utf-8-sig").encode("utf-16"))
    with pytest.raises(PrepareError, match=r"wide.jsonl: the file is UTF-16-LE, not UTF-8") as err:
        prepare([str(wide)], str(tmp_path / "w"), "builtin", phases=[2000], plot=False)
    assert "\n" not in str(err.value) and not (tmp_path / "w").exists()


_HUGE = """
import json, re, resource, sys, time
from pathlib import Path
from qwenlong_verl.driver.data.prepare import prepare
from qwenlong_verl.driver.data.tokenizer import load_tokenizer
def peak_kb():
    # this process's own peak: ru_maxrss keeps the forking parent's RSS across exec (pytest with veRL loaded: 600 MB)
    status = Path("/proc/self/status")
    peak = re.search(r"VmHWM:\\s*(\\d+) kB", status.read_text()) if status.exists() else None
    return int(peak.group(1)) if peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
load_tokenizer("builtin")  # transformers' and torch's imports are not what is measured
before = peak_kb()
start = time.perf_counter()
stats = prepare([sys.argv[1]], sys.argv[2], "builtin", phases=[20000, 60000], plot=False)
seconds = time.perf_counter() - start
growth_mb = (peak_kb() - before) / 1024
print(json.dumps({"seconds": seconds, "dropped": stats.dropped, "written": stats.rows_written, "growth_mb": growth_mb}))
"""


@pytest.mark.slow
def test_a_50mb_document_is_dropped_before_tokenising(tmp_path):
    """It used to be tokenised whole: 2 min 36 s and 11.3 GB before being dropped as too long."""
    import subprocess
    import sys

    path = tmp_path / "huge.jsonl"
    with path.open("w") as handle:
        handle.write(json.dumps(raw(0, 2)) + "\n")
        handle.write(json.dumps(raw(1, 50_000_000 // len(SENTENCE))) + "\n")
    assert path.stat().st_size > 50_000_000
    out = subprocess.run(
        [sys.executable, "-c", _HUGE, str(path), str(tmp_path / "o")], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["dropped"] == {"too_long": 1} and result["written"] == 1
    # Bounds an order of magnitude away from both sides: measured 0.5 s and ~105 MB over the imports on 2 shared
    # cores; tokenising the document whole took 156 s and 11 GB. Speed itself is the benchmarks' business.
    assert result["seconds"] < 60, result
    assert result["growth_mb"] < 1500, result


def test_rows_per_task_label_and_per_answer_type_in_each_phase(tmp_path):
    """Phase stats count the task labels actually present (five and more of the paper's task types from ``synth``,
    an old record's answer type) and, apart, the answer types."""
    from collections import Counter

    from qwenlong_verl.driver.data.synth import TASK_LABELS, synth

    labelled = tmp_path / "synth.jsonl"
    synth(labelled, n=12, min_tokens=1500, max_tokens=3000, seed=2, tasks="numeric,qa", labels="all")
    old = tmp_path / "old.jsonl"  # an old record: its task is an answer type and stands for both
    old.write_text(json.dumps(raw(0, 3)) + "\n")
    out = tmp_path / "out"
    stats = prepare([str(labelled), str(old)], str(out), "builtin", phases=[2200, 3600], workers=1, plot=False)
    assert stats.rows_written == 13

    totals: Counter[str] = Counter()
    for phase in stats.phase_stats:
        rows = read_rows(out / phase.file)
        assert sum(phase.tasks.values()) == phase.rows == len(rows)
        assert list(phase.answer_types) == ["numeric", "choice", "qa"] and phase.answer_types["choice"] == 0
        counted = Counter(r["extra_info"]["answer_type"] for r in rows)
        assert phase.answer_types == {t: counted.get(t, 0) for t in phase.answer_types}
        totals.update(phase.tasks)
        for row in rows:
            expected = {"niah": "qa", "numerical": "numeric", "counting": "numeric", "hypothetical": "numeric"}
            task, answer_type = row["extra_info"]["task"], row["extra_info"]["answer_type"]
            assert expected.get(task, answer_type) == answer_type and row["ability"] == task
    assert len(TASK_LABELS) >= 5
    assert totals == {**{label: 2 for label in TASK_LABELS}, "numeric": 1}
    saved = json.loads((out / "stats.json").read_text())
    assert [p["tasks"] for p in saved["phase_stats"]] == [p.tasks for p in stats.phase_stats]
    assert [p["answer_types"] for p in saved["phase_stats"]] == [p.answer_types for p in stats.phase_stats]


def test_no_usable_row_is_an_error_and_the_earlier_bins_stay(tmp_path):
    """Every row bad (an empty file, a latin-1 file): nothing to train on is an error naming the inputs and
    why the rows went, and the bins of an earlier run are not swapped for empty ones."""
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"context": "The sky is blue.", "question": "What colour?", "answer": "blue"}) + "\n")
    out = tmp_path / "data"
    prepare([str(good)], str(out), "builtin", phases=[4096], plot=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    empty, latin = tmp_path / "empty.jsonl", tmp_path / "latin.jsonl"
    empty.write_text("")
    latin.write_bytes('{"context": "caf\xe9", "question": "q?", "answer": "a"}\n'.encode("latin-1"))
    for bad in (empty, latin):
        with pytest.raises(PrepareError, match=rf"no usable rows in {bad} \(\d+ read; dropped: .*\); nothing written"):
            prepare([str(bad)], str(out), "builtin", phases=[4096], plot=False)
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
