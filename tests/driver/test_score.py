"""``qwenlong-verl score``: offline scoring in a fresh interpreter, with a local judge over real HTTP."""

from __future__ import annotations

import json
import re

import pytest

from qwenlong_verl.worker.rewards.judge_server import LocalJudgeServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

THINK = "<think>\nreading\n</think>\n\n"

ROWS = [
    {"data_source": "docmath_a", "response": THINK + "The answer is 12.5%", "ground_truth": "0.125"},
    {"data_source": "docmath_a", "response": THINK + "The answer is 7", "ground_truth": "8"},
    {
        "data_source": "hotpotqa",
        "response": THINK + "The answer is NYC",
        "reward_model": {"ground_truth": "New York City", "style": "rule"},
        "extra_info": {"question": "Where is it?"},
    },
    {"data_source": "hotpotqa", "solution_str": THINK + "The answer is Boston", "ground_truth": ["New York City"]},
    {"data_source": "long_toc_choices_2", "response": THINK + "The answer is (B)", "ground_truth": "B"},
    {"extra_info": {"task": "choice"}, "response": "<think>never finished", "ground_truth": "C"},
]


def write_rows(path, rows) -> None:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_score_with_judge(cli, tmp_path):
    responses, scored = tmp_path / "responses.jsonl", tmp_path / "scored.jsonl"
    write_rows(responses, ROWS)
    with LocalJudgeServer(equivalents=[("NYC", "New York City")], lifetime_s=120) as judge:
        out = cli("score", "--input", str(responses), "--output", str(scored), "--judge-url", judge.url)
        assert judge.chat_requests == 3  # 7 vs 8, NYC, Boston; not the right ones, not the unfinished one
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [json.loads(line) for line in scored.read_text().splitlines()]
    assert [line["reward"]["score"] for line in lines] == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    assert lines[2]["reward"]["judge"] == 1.0 and lines[2]["data_source"] == "hotpotqa"
    table = {
        row.split("│")[1].strip(): [c.strip() for c in row.split("│")[2:-1]]
        for row in out.stdout.splitlines()
        if row.count("│") >= 9
    }
    # columns: samples, accuracy, rule acc, judge calls, judge flips, judge errors, no answer
    assert table["numeric"] == ["2", "50.0%", "50.0%", "1", "0", "0", "0"]
    assert table["qa"] == ["2", "50.0%", "0.0%", "2", "1", "0", "0"]
    assert table["choice"] == ["2", "50.0%", "50.0%", "0", "0", "0", "1"]
    assert table["all"] == ["6", "50.0%", "33.3%", "3", "1", "0", "1"]


def test_score_rules_only_and_unreachable_judge(cli, tmp_path):
    responses = tmp_path / "responses.jsonl"
    write_rows(responses, ROWS)
    out = cli("score", "--input", str(responses), "--no-judge", env={"QWENLONG_JUDGE_URLS": "http://127.0.0.1:9"})
    assert out.returncode == 0, out.stderr
    assert "judge: off (rules only)" in out.stdout
    dead = ("--judge-url", "http://user:pw@127.0.0.1:9", "--judge-timeout", "1")
    out = cli("score", "--input", str(responses), "--output", str(tmp_path / "scored.jsonl"), *dead)
    # a judge that answers none of its calls: the rule scores are written and shown, but the command fails
    assert out.returncode == 1, out.stdout + out.stderr
    assert "answered none of its 3 calls" in out.stderr and "--allow-judge-failures" in out.stderr
    assert "pw" not in out.stdout + out.stderr and (tmp_path / "scored.jsonl").is_file()
    all_row = next(r for r in out.stdout.splitlines() if "all" in r and r.count("│") >= 9)
    assert [c.strip() for c in all_row.split("│")[2:-1]][5] == "3"  # three judge errors, counted
    out = cli("score", "--input", str(responses), "--allow-judge-failures", *dead)
    assert out.returncode == 0, out.stderr  # told so: judge failures fall back to the rule score
    assert "answered none" in out.stdout


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"data_source": "x", "response": "a", "ground_truth": "b"}\nnot json\n', "line 2: not valid JSON"),
        ('{"data_source": "x", "ground_truth": "b"}\n', "line 1: field 'response'"),
        ('{"data_source": "x", "response": "a"}\n', "line 1: field 'ground_truth'"),
        ('{"response": "a", "ground_truth": "b"}\n', "line 1: needs 'data_source' or 'extra_info.answer_type'"),
        # a task label alone does not say which verifier to use
        ('{"response": "a", "ground_truth": "b", "extra_info": {"task": "poetry"}}\n', "needs 'data_source'"),
        (
            '{"response": "a", "ground_truth": "b", "extra_info": {"answer_type": "poetry"}}\n',
            "line 1: field 'extra_info.answer_type': unknown answer type 'poetry'",
        ),
        (
            '{"data_source": "x", "response": "a", "ground_truth": "b", "extra_info": {"task": "a/b"}}\n',
            "line 1: field 'extra_info.task': task label 'a/b' must be",
        ),
        ('{"data_source": "x", "response": "a", "ground_truth": "b", "task": "a b!"}\n', "field 'task': task label"),
        ("\n\n", "no rows"),
    ],
)
def test_bad_input_names_line_and_field(cli, tmp_path, content, message):
    responses = tmp_path / "responses.jsonl"
    responses.write_text(content)
    out = cli("score", "--input", str(responses))
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and "Traceback" not in out.stderr
    assert message in " ".join(out.stderr.split())


def test_bad_judge_setting_is_an_error(cli, tmp_path):
    responses = tmp_path / "responses.jsonl"
    write_rows(responses, ROWS[:1])
    out = cli("score", "--input", str(responses), "--judge-url", "http://x:1", "--judge-concurrency", "0")
    assert out.returncode == 2 and "judge_max_concurrency" in out.stdout + out.stderr


def test_output_equal_to_input_keeps_the_input(cli, tmp_path):
    responses = tmp_path / "responses.jsonl"
    write_rows(responses, ROWS)
    before = responses.read_text()
    out = cli("score", "--input", str(responses), "--output", str(responses), "--no-judge")
    assert out.returncode == 2 and "is also an input" in " ".join(out.stderr.split())
    assert responses.read_text() == before


def test_reader_names_undecodable_bytes_surrogates_and_wrong_types(tmp_path):
    from qwenlong_verl.driver.score import ScoreInputError, load_rows

    good = json.dumps(ROWS[0]).encode()
    path = tmp_path / "responses.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + good + b"\n" + good + b"\n")
    assert [row.line for row in load_rows(path)] == [1, 2]  # a BOM does not cost the first line
    path.write_bytes(
        good + b"\n"
        + good.replace(b"answer", b"r\xe9ponse") + b"\n"  # latin-1: was silently turned into U+FFFD and scored
        + json.dumps({**ROWS[0], "response": "x \ud800"}).encode() + b"\n"
        + json.dumps({**ROWS[0], "ground_truth": {"value": 1}}).encode() + b"\n"
    )  # fmt: skip
    with pytest.raises(ScoreInputError) as err:
        load_rows(path)
    assert str(err.value) == (
        f"{path} line 2: not UTF-8: byte 0xe9 at column 78 cannot be decoded; re-save the file as UTF-8 (e.g. iconv "
        "-f latin1 -t UTF-8) (and 2 more bad lines; fix them all, nothing was scored)"
    )
    for content, message in (
        (json.dumps({**ROWS[0], "response": "x \ud800"}), "line 1: field 'response': holds a lone surrogate \\ud800"),
        (json.dumps({**ROWS[0], "ground_truth": {"v": 1}}), "'ground_truth' must be text, a number or a list"),
        (json.dumps({**ROWS[0], "ground_truth": [True]}), "'ground_truth' must be text, a number or a list"),
        (json.dumps({**ROWS[0], "extra_info": {"question": 3}}), "'extra_info.question' must be a string"),
    ):
        path.write_text(content + "\n")
        with pytest.raises(ScoreInputError, match=re.escape(message)):
            load_rows(path)
    path.write_bytes("\n".join(json.dumps(r) for r in ROWS).encode("utf-16"))
    with pytest.raises(ScoreInputError, match="the file is UTF-16-LE, not UTF-8"):
        load_rows(path)


def test_task_labels_group_and_answer_types_route(tmp_path, monkeypatch):
    """A labelled row is verified by its answer type and summarised under its task label; a raw record's top-level
    ``task`` / ``answer_type`` count as they do in ``prepare``."""
    import asyncio

    from qwenlong_verl.driver.score import load_rows, score_rows

    monkeypatch.delenv("QWENLONG_JUDGE_URLS", raising=False)
    rows = [  # "12.50" is 12.5 to the numeric verifier, not to the qa one
        {"data_source": "mine", "extra_info": {"task": "temporal", "answer_type": "numeric"}, "ground_truth": "12.5"},
        {"data_source": "mine", "task": "hypothetical", "answer_type": "numeric", "answer": "12.5"},
        {"data_source": "mine", "extra_info": {"task": "temporal"}, "ground_truth": "12.5"},  # qa from data_source
        {"data_source": "mine", "extra_info": {"task": "numeric"}, "ground_truth": "12.5"},  # an old row
    ]
    path = tmp_path / "responses.jsonl"
    write_rows(path, [{**r, "response": "Therefore, the answer is 12.50"} for r in rows])
    loaded = load_rows(path)
    assert [r.task for r in loaded] == ["temporal", "hypothetical", "temporal", "numeric"]
    results = asyncio.run(score_rows(loaded, {}))
    assert [r["score"] for r in results] == [1.0, 1.0, 0.0, 1.0]


def test_score_takes_the_judge_prompt_and_reply_budget(cli, tmp_path):
    """``--judge-prompt`` / ``--judge-max-tokens`` / ``--judge-reasoning-effort`` reach the judge's requests."""
    from support.eval_server import ChatServer, Reply

    responses = tmp_path / "responses.jsonl"
    write_rows(responses, ROWS[2:4])  # NYC (judged equivalent) and Boston (not)

    def judge(call) -> Reply:
        same = "Answer 1: NYC\n" in call.prompt
        return Reply(text="1) Same city.\n2) [[YES]]" if same else "1) Different cities.\n2) [[NO]]")

    with ChatServer(judge, model="judge") as server:
        flags = ("--judge-url", server.url, "--judge-prompt", "qwenlong_l1", "--judge-max-tokens", "2048")
        out = cli("score", "--input", str(responses), *flags, "--judge-reasoning-effort", "low")
        calls = server.calls_snapshot()
    assert out.returncode == 0, out.stdout + out.stderr
    assert len(calls) == 2 and all(c.body["messages"][0]["content"].startswith("You are an expert") for c in calls)
    assert {(c.body["max_tokens"], c.body["reasoning_effort"]) for c in calls} == {(2048, "low")}
    all_row = next(row for row in out.stdout.splitlines() if "all" in row and row.count("│") >= 9)
    assert [c.strip() for c in all_row.split("│")[2:-1]][:5] == ["2", "50.0%", "0.0%", "2", "1"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (("--judge-prompt", "qwenlong"), "unknown judge_prompt 'qwenlong'; known: strict, qwenlong_l1, qwenlong_l15"),
        (("--judge-reasoning-effort", "extreme"), "choose from minimal, low, medium, high"),
        (("--judge-reasoning-effort", "low", "--judge-max-tokens", "256"), "too small for a reasoning judge"),
    ],
)
def test_bad_judge_prompt_or_budget_is_a_one_line_error(cli, tmp_path, flags, message):
    responses = tmp_path / "responses.jsonl"
    write_rows(responses, ROWS[:1])
    out = cli("score", "--input", str(responses), "--judge-url", "http://127.0.0.1:9", *flags)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert message in " ".join(out.stderr.split())
