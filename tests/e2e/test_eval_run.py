"""`qwenlong-verl eval` / `report` end to end: every fixture schema against a local OpenAI-compatible server.

The server answers from a plan fixed per item (``c`` correct samples out of ``N``), so accuracy, pass@k,
extraction failures and length buckets have known values, computed here from the closed form.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
import zlib
from fractions import Fraction
from pathlib import Path

import pytest
from support import ROOT, run_cli
from support.eval_server import Call, ChatServer, Reply

from qwenlong_verl.driver import cli
from qwenlong_verl.driver.eval.benchmarks import load_benchmarks
from qwenlong_verl.driver.eval.store import read_jsonl

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

FIXTURES = ROOT / "tests" / "fixtures" / "eval"
BENCHES = ["docmath", "frames", "2wikimqa", "hotpotqa", "musique", "narrativeqa", "qasper", "loong"]
N = 4
MAX_INPUT = 400


def correct_count(item_id: str) -> int:
    """How many of the N samples of an item the canned policy answers right (0..N)."""
    return zlib.crc32(item_id.encode()) % (N + 1)


def closed_form(n: int, c: int, k: int) -> float:
    return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


def wrong_answer(item) -> str:
    if item.task == "numeric":
        return "987654"
    if item.task == "choice":
        return "D" if item.gold != "D" else "A"
    return "zebra crossing"


class Policy:
    """Canned completions: sample k of an item is right iff k < c(item); narrativeqa's wrong ones never finish."""

    def __init__(self, items, hang_s: float = 0.0):
        self.items = {it.id: it for it in items}
        self.hang_s = hang_s

    def __call__(self, call: Call) -> Reply:
        item = self.items[call.item_id]
        assert item.question in call.prompt  # the training template carried the question
        if call.k < correct_count(call.item_id):
            return Reply(text=f"<think>I read it.</think>\nTherefore, the answer is {item.gold}.", hang_s=self.hang_s)
        if item.benchmark == "narrativeqa":
            return Reply(text="<think>Still reading the story and", finish_reason="length", hang_s=self.hang_s)
        return Reply(text=f"<think>Hmm.</think>\nTherefore, the answer is {wrong_answer(item)}.", hang_s=self.hang_s)


def long_bench(tmp_path: Path) -> Path:
    """A generic-schema item whose document must be middle-truncated to fit MAX_INPUT tokens."""
    body = " ".join(f"Filler sentence number {i} about nothing." for i in range(400))
    doc = f"HEADMARK opens the file. {body} MIDDLEMARK {body} TAILMARK closes the file."
    row = {"id": "l1", "document": doc, "question": "Which mark closes the file?", "answer": "TAILMARK"}
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps(row) + "\n")
    return path


def eval_args(url: str, out: Path, benches: list[str], *extra: str) -> list[str]:
    return [
        "eval",
        "--model-url",
        url,
        "--model",
        "policy",
        "--bench",
        *benches,
        "--data-dir",
        str(FIXTURES),
        "--out",
        str(out),
        *extra,
    ]


def test_fixtures_end_to_end_via_the_cli_then_report(tmp_path):
    long = long_bench(tmp_path)
    benches = [*BENCHES, f"mcq={FIXTURES / 'mcq.jsonl'}", f"long={long}"]
    _, items = load_benchmarks(benches, FIXTURES)
    out = tmp_path / "run"
    with ChatServer(Policy(items)) as server:
        args = eval_args(server.url, out, benches, "--n", str(N), "--tokenizer", "builtin")
        args += ["--max-input-tokens", str(MAX_INPUT), "--length-buckets", "150,200", "--concurrency", "8"]
        done = run_cli(*args)
        assert done.returncode == 0, done.stdout + done.stderr
        calls = server.calls_snapshot()
        assert "evaluation summary" in done.stdout and "average" in done.stdout
        assert f"{len(items)} items (1 truncated)" in done.stdout

        # every sample requested exactly once, with the sampling settings
        assert sorted((c.item_id, c.k) for c in calls) == sorted((it.id, k) for it in items for k in range(N))
        assert {(c.body["temperature"], c.body["top_p"], c.body["max_tokens"]) for c in calls} == {(0.7, 0.95, 10000)}
        long_prompt = next(c.prompt for c in calls if c.item_id == "long/l1")
        assert "HEADMARK" in long_prompt and "TAILMARK" in long_prompt and "MIDDLEMARK" not in long_prompt
        assert "Which mark closes the file?" in long_prompt

        summary = json.loads((out / "report" / "summary.json").read_text())
        rows = {r["name"]: r for r in summary["benchmarks"]}
        by_bench: dict[str, list] = {}
        for it in items:
            by_bench.setdefault(it.benchmark, []).append(it)
        for bench, members in by_bench.items():
            counts = [correct_count(it.id) for it in members]
            row = rows[bench]
            assert row["items"] == len(members) and row["n"] == N
            assert row["accuracy"] == pytest.approx(sum(counts) / (N * len(members)))
            for k in (1, 2, 4):
                expected = sum(closed_form(N, c, k) for c in counts) / len(members)
                assert row["pass_at"][str(k)] == pytest.approx(expected), (bench, k)
            assert row["rule_accuracy"] == pytest.approx(row["accuracy"])  # no judge: the rule decides alone
            no_answer = sum(N - c for c in counts) / (N * len(members)) if bench == "narrativeqa" else 0.0
            assert row["extraction_failures"] == pytest.approx(no_answer), bench
            assert row["cut_at_max_tokens"] == pytest.approx(no_answer)
            assert row["request_failures"] == 0 and row["unfinished"] == 0
        assert rows["average"]["accuracy"] == pytest.approx(sum(rows[b]["accuracy"] for b in by_bench) / len(by_bench))
        assert {"loong/spotlight_locating", "loong/comparison", "loong/clustering", "loong/chain_of_reasoning"} <= set(
            rows
        )

        item_rows = {r["id"]: r for r in read_jsonl(out / "items.jsonl")}
        long_row = item_rows["long/l1"]
        assert long_row["truncated"] and long_row["input_tokens"] <= MAX_INPUT < long_row["original_input_tokens"]
        assert sum(r["truncated"] for r in item_rows.values()) == 1
        for bucket in summary["length_buckets"]:
            lo, hi = bucket["lo"], bucket["hi"]
            inside = [
                it
                for it in items
                if (bucket["benchmark"] in ("all", it.benchmark))
                and lo <= item_rows[it.id]["input_tokens"] < (hi if hi is not None else math.inf)
            ]
            assert bucket["items"] == len(inside)
            assert bucket["accuracy"] == pytest.approx(sum(correct_count(it.id) for it in inside) / (N * len(inside)))

        readme = (out / "report" / "README.md").read_text()
        assert "| hotpotqa | 2 | 4 |" in readme and "## Accuracy by input length" in readme
        for png in ("accuracy_by_benchmark.png", "accuracy_by_length.png"):
            data = (out / "report" / png).read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000

        # `report DIR` rebuilds the same numbers from the folder, without sampling anything
        (out / "report" / "summary.json").unlink()
        rebuilt = run_cli("report", str(out))
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
        assert json.loads((out / "report" / "summary.json").read_text())["benchmarks"] == summary["benchmarks"]
        assert len(server.calls_snapshot()) == len(calls)


def test_resume_after_kill_requests_only_unfinished_samples(tmp_path):
    benches = ["hotpotqa", "2wikimqa", "musique", "narrativeqa", "qasper"]
    _, items = load_benchmarks(benches, FIXTURES)
    keys = {(it.id, k) for it in items for k in range(2)}
    out = tmp_path / "run"
    policy = Policy(items, hang_s=0.4)
    with ChatServer(policy) as server:
        args = eval_args(server.url, out, benches, "--n", "2", "--concurrency", "2")
        proc = subprocess.Popen([sys.executable, "-m", "qwenlong_verl.driver.cli", *args], cwd=ROOT)
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if len(read_jsonl(out / "generations.jsonl")) >= 4:
                    break
                assert proc.poll() is None, "eval finished before it could be interrupted"
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(30)
        assert proc.returncode == -signal.SIGKILL
        finished = {(r["id"], r["k"]) for r in read_jsonl(out / "generations.jsonl") if r["status"] == "ok"}
        assert 4 <= len(finished) < len(keys)
        before = len(server.calls_snapshot())

        policy.hang_s = 0.0
        done = run_cli(*args)
        assert done.returncode == 0, done.stdout + done.stderr
        again = [(c.item_id, c.k) for c in server.calls_snapshot()[before:]]

    assert not set(again) & finished, "finished samples were requested again"
    assert sorted(again) == sorted(keys - finished)  # each missing sample exactly once
    rows = read_jsonl(out / "generations.jsonl")
    assert sorted((r["id"], r["k"]) for r in rows) == sorted(keys)  # no duplicate, none missing
    scores = read_jsonl(out / "scores.jsonl")
    assert sorted((r["id"], r["k"]) for r in scores) == sorted(keys)
    summary = json.loads((out / "report" / "summary.json").read_text())
    hot = next(r for r in summary["benchmarks"] if r["name"] == "hotpotqa")
    expected = sum(min(correct_count(it.id), 2) for it in items if it.benchmark == "hotpotqa") / 4
    assert hot["accuracy"] == pytest.approx(expected) and hot["unfinished"] == 0


def run_main(capsys, args) -> tuple[int, str]:
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


def test_failing_server_records_failures_then_rerun_retries_only_them(tmp_path, capsys):
    benches = ["hotpotqa", "musique", "qasper"]
    _, items = load_benchmarks(benches, FIXTURES)
    good = Policy(items)
    healthy = {"on": False}

    def respond(call: Call) -> Reply:
        if not healthy["on"]:
            if call.item_id == "hotpotqa/hotpotqa-000":
                return Reply(status=503, error="engine overloaded")  # transient, but never recovers
            if call.item_id == "musique/musique-000" and call.k == 1:
                return Reply(status=400, error="prompt is too long")  # permanent: not retried
            if call.item_id == "qasper/qasper-000" and call.attempt == 1:
                return Reply(text="late", hang_s=3.0)  # hangs past the timeout once, then answers
        return good(call)

    out = tmp_path / "run"
    with ChatServer(respond) as server:
        args = eval_args(server.url, out, benches, "--n", "2", "--timeout", "0.5", "--max-retries", "2")
        code, text = run_main(capsys, args)
        calls = server.calls_snapshot()
        assert code == 1, text
        assert "3 samples failed" in text and "engine overloaded" in text and "prompt is too long" in text
        assert [c.attempt for c in calls if c.item_id == "hotpotqa/hotpotqa-000" and c.k == 0] == [1, 2, 3]
        assert [c.attempt for c in calls if c.item_id == "musique/musique-000" and c.k == 1] == [1]
        assert sorted(c.attempt for c in calls if c.item_id == "qasper/qasper-000") == [1, 1, 2, 2]
        summary = json.loads((out / "report" / "summary.json").read_text())
        hot = next(r for r in summary["benchmarks"] if r["name"] == "hotpotqa")
        assert hot["request_failures"] == 2 and hot["unfinished"] == 2
        assert "Incomplete" in (out / "report" / "README.md").read_text()

        healthy["on"] = True
        before = len(calls)
        code, text = run_main(capsys, args)
        assert code == 0, text
        again = sorted((c.item_id, c.k) for c in server.calls_snapshot()[before:])
    assert again == [("hotpotqa/hotpotqa-000", 0), ("hotpotqa/hotpotqa-000", 1), ("musique/musique-000", 1)]
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert all(r["request_failures"] == 0 and r["unfinished"] == 0 for r in summary["benchmarks"])
    assert "Incomplete" not in (out / "report" / "README.md").read_text()


def test_rerun_guards_and_growing_n(tmp_path, capsys):
    src = FIXTURES / "qasper.jsonl"
    data = tmp_path / "qasper.jsonl"
    data.write_text(src.read_text())
    _, items = load_benchmarks([str(data)])
    out = tmp_path / "run"
    with ChatServer(Policy(items)) as server:
        code, text = run_main(capsys, eval_args(server.url, out, [str(data)], "--n", "2"))
        assert code == 0, text
        # more samples: only k = 2 is drawn
        before = len(server.calls_snapshot())
        code, text = run_main(capsys, eval_args(server.url, out, [str(data)], "--n", "3"))
        assert code == 0, text
        assert [(c.item_id, c.k) for c in server.calls_snapshot()[before:]] == [("qasper/qasper-000", 2)]
        # other sampling settings would mix two experiments in one folder
        code, text = run_main(capsys, eval_args(server.url, out, [str(data)], "--n", "3", "--temperature", "0.2"))
        assert code == 2 and "temperature: 0.7 -> 0.2" in text and "new --out" in text
        # so would a changed prompt for an item that already has samples
        data.write_text(src.read_text().replace("Which dataset", "What dataset"))
        code, text = run_main(capsys, eval_args(server.url, out, [str(data)], "--n", "3"))
        assert code == 2 and "prompt of qasper/qasper-000 differs" in text
        # bad input fails before any request, naming file, line and field
        bad = tmp_path / "hotpotqa.jsonl"
        bad.write_text(json.dumps({"input": "q", "answers": ["a"]}) + "\n")
        before = len(server.calls_snapshot())
        code, text = run_main(capsys, eval_args(server.url, tmp_path / "other", [str(bad)]))
        assert code == 2 and f"{bad}:1 (hotpotqa): missing field 'context'" in text
        assert len(server.calls_snapshot()) == before


def test_judge_rescues_a_paraphrase(tmp_path, capsys):
    _, items = load_benchmarks(["narrativeqa"], FIXTURES)
    paraphrase = "to go and look for her brother's only daughter's aunt"

    def policy(call: Call) -> Reply:
        answer = "To find his sister" if call.k == 0 else paraphrase
        return Reply(text=f"<think>.</think>\nTherefore, the answer is {answer}.")

    def judge(call: Call) -> Reply:
        return Reply(text="Same meaning. [[YES]]" if paraphrase in call.prompt else "Different. [[NO]]")

    out = tmp_path / "run"
    with ChatServer(policy) as server, ChatServer(judge, model="judge") as judge_server:
        args = eval_args(server.url, out, ["narrativeqa"], "--n", "2", "--judge-url", judge_server.url)
        code, text = run_main(capsys, [*args, "--judge-model", "judge"])
        assert code == 0, text
        judged = judge_server.calls_snapshot()
    assert len(judged) == 1 and "Why does Pell leave the lighthouse?" in judged[0].prompt
    row = next(r for r in json.loads((out / "report" / "summary.json").read_text())["benchmarks"])
    assert row["accuracy"] == 1.0 and row["rule_accuracy"] == 0.5
    scores = {r["k"]: r for r in read_jsonl(out / "scores.jsonl")}
    assert scores[1]["rule"] == 0.0 and scores[1]["judge"] == 1.0 and scores[1]["correct"] is True


def test_eval_has_its_own_judge_prompt_and_budget(tmp_path, capsys):
    """Eval's judge is the one its flags name (here the L1.5 report's Table 6 prompt to a reasoning judge, as
    the papers evaluated with their own judge), recorded in the manifest; the score is max(rule, judge)."""
    paraphrase = "to go and look for her brother's only daughter's aunt"

    def policy(call: Call) -> Reply:
        return Reply(text=f"<think>.</think>\nTherefore, the answer is {paraphrase}.")

    def judge(call: Call) -> Reply:
        return Reply(text="1) Same person.\n2) [[YES]]\n\nBoth answers mean the aunt.", reasoning="[[NO]]?")

    out = tmp_path / "run"
    judge_flags = ("--judge-prompt", "qwenlong_l15", "--judge-max-tokens", "2048", "--judge-reasoning-effort", "low")
    with ChatServer(policy) as server, ChatServer(judge, model="judge") as judge_server:
        args = eval_args(server.url, out, ["narrativeqa"], "--judge-url", judge_server.url, *judge_flags)
        code, text = run_main(capsys, [*args, "--judge-model", "judge"])
        assert code == 0, text
        (judged,) = judge_server.calls_snapshot()
    (message,) = judged.body["messages"]
    assert message["role"] == "user" and message["content"].startswith("You are an expert in verifying")
    assert f"Answer 1: {paraphrase}\n" in message["content"]
    assert (judged.body["max_tokens"], judged.body["reasoning_effort"]) == (2048, "low")
    (score,) = read_jsonl(out / "scores.jsonl")
    assert (score["rule"], score["judge"], score["correct"]) == (0.0, 1.0, True)
    from qwenlong_verl.driver.eval.store import EvalFolder

    recorded = EvalFolder(out).read_manifest()["judge"]
    assert (recorded["judge_prompt"], recorded["judge_max_tokens"]) == ("qwenlong_l15", 2048)


def test_a_bad_judge_setting_fails_before_anything_is_sampled(tmp_path, capsys):
    with ChatServer(lambda call: Reply(text="x")) as server:
        args = eval_args(server.url, tmp_path / "run", ["narrativeqa"])
        with pytest.raises(SystemExit) as exit_:  # an unknown preset is a usage error of the option itself
            cli.main([*args, "--judge-prompt", "qwenlong"])
        assert exit_.value.code == 2
        assert "unknown judge_prompt 'qwenlong'; known: strict, qwenlong_l1, qwenlong_l15" in capsys.readouterr().err
        code, text = run_main(capsys, [*args, "--judge-reasoning-effort", "high", "--judge-max-tokens", "100"])
        assert code == 2 and "judge_max_tokens=100 is too small for a reasoning judge" in text, text
        assert server.calls_snapshot() == []
    assert not (tmp_path / "run").exists()


def test_judge_failures_are_counted_and_reported(tmp_path, capsys):
    def policy(call: Call) -> Reply:
        return Reply(text="<think>.</think>\nTherefore, the answer is to visit a relative.")

    out = tmp_path / "run"
    with ChatServer(policy) as server, ChatServer(lambda c: Reply(text="I am not sure."), model="judge") as judge:
        args = eval_args(server.url, out, ["narrativeqa"], "--n", "2", "--judge-url", judge.url)
        code, text = run_main(capsys, [*args, "--judge-model", "judge"])
    assert code == 0, text
    assert "the judge failed on 2 samples" in text and "--rescore" in text
    row = next(r for r in json.loads((out / "report" / "summary.json").read_text())["benchmarks"])
    assert row["judge_failures"] == 2 and row["accuracy"] == 0.0
    assert {r["judge_error"] for r in read_jsonl(out / "scores.jsonl")} == {"no_verdict"}


def test_odd_replies_are_failed_samples_and_the_run_goes_on(tmp_path, capsys):
    """A reply whose message is text, whose usage is text, or whose content holds a lone surrogate costs its
    sample only; the run scores the rest and writes the report, and a rerun retries just those samples."""
    _, items = load_benchmarks(["hotpotqa"], FIXTURES)
    good = Policy(items)
    odd = {
        0: {"choices": [{"message": "Therefore, the answer is x.", "finish_reason": "stop"}]},
        1: b'{"choices": [{"message": {"content": "Therefore, the answer is \\ud800."}, "finish_reason": "stop"}]}',
    }
    healthy = {"on": False}

    def respond(call: Call) -> Reply:
        if not healthy["on"] and call.item_id == items[0].id and call.k in odd:
            return Reply(body=odd[call.k])
        if call.k == 2:  # usage of the wrong type: the sample stands, its counts are unknown
            text = f"<think>.</think>\nTherefore, the answer is {items[0].gold}."
            return Reply(body={"choices": [{"message": {"content": text}, "finish_reason": "stop"}], "usage": "n/a"})
        return good(call)

    out = tmp_path / "run"
    with ChatServer(respond) as server:
        args = eval_args(server.url, out, ["hotpotqa"], "--n", "3", "--max-retries", "1")
        code, text = run_main(capsys, args)
        assert code == 1 and "2 samples failed" in text and "Traceback" not in text, text
        rows = read_jsonl(out / "generations.jsonl")
        failed = {(r["id"], r["k"]): r["code"] for r in rows if r["status"] != "ok"}
        assert failed == {(items[0].id, 0): "bad_reply", (items[0].id, 1): "bad_text"}
        assert all(r["prompt_tokens"] is None for r in rows if r["k"] == 2)
        assert (out / "report" / "summary.json").is_file()
        (out / "generations.jsonl").read_bytes().decode("utf-8")  # every byte valid UTF-8

        healthy["on"] = True
        before = len(server.calls_snapshot())
        code, text = run_main(capsys, args)
        assert code == 0, text
        again = sorted((c.item_id, c.k) for c in server.calls_snapshot()[before:])
    assert again == [(items[0].id, 0), (items[0].id, 1)]


def test_a_second_eval_on_the_same_folder_fails_at_once(tmp_path, capsys):
    import os

    from qwenlong_verl.driver.eval.store import EvalFolder

    _, items = load_benchmarks(["qasper"], FIXTURES)
    out = tmp_path / "run"
    with ChatServer(Policy(items)) as server:
        with EvalFolder(out).lock():  # as a running eval holds it
            code, text = run_main(capsys, eval_args(server.url, out, ["qasper"]))
            assert server.calls_snapshot() == []
        assert code == 1 and text.count("error:") == 1
        assert f"another `qwenlong-verl eval or report` is running on {out} (pid {os.getpid()} holds" in text
        assert not (out / "run.json").exists()  # nothing of the folder touched
        code, text = run_main(capsys, eval_args(server.url, out, ["qasper"]))
        assert code == 0, text
    before = (out / "report" / "README.md").read_text()
    with EvalFolder(out).lock():  # a report is never built from a run still writing
        code, text = run_main(capsys, ["report", str(out)])
    assert code == 1 and text.count("error:") == 1 and "is running on" in text
    assert (out / "report" / "README.md").read_text() == before
    code, text = run_main(capsys, ["report", str(out)])
    assert code == 0, text
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [".eval.lock"]  # no other leftover
    (out / "items.jsonl").unlink()  # damage: the report says what is missing instead of an empty table
    code, text = run_main(capsys, ["report", str(out)])
    assert code == 2 and text.count("error:") == 1 and "items.jsonl is missing" in text
    code, text = run_main(capsys, ["report", str(out / "run.json")])  # a file, not a folder
    assert code == 2 and text.count("error:") == 1 and "is not an eval folder" in text


def test_a_sample_count_no_machine_could_hold_is_refused_before_anything_is_sent(tmp_path, capsys):
    _, items = load_benchmarks(["qasper"], FIXTURES)
    with ChatServer(Policy(items)) as server:
        code, text = run_main(capsys, [*eval_args(server.url, tmp_path / "run", ["qasper"]), "--n", str(10**30)])
        assert server.calls_snapshot() == []
    assert code == 2 and text.count("error:") == 1 and "--n must be at most 4,096" in text


def test_credentials_in_urls_are_never_written_nor_printed(tmp_path):
    """Every file an eval writes and everything it prints (debug logging on), with credentials in the policy
    URL and in the judge URL, a failing sample and a judge that cannot be reached: no password anywhere."""

    def respond(call: Call) -> Reply:
        if call.k == 1:
            return Reply(status=400, error="prompt is too long")
        return Reply(text="<think>.</think>\nTherefore, the answer is to visit a relative.")

    secret, judge_secret = "hunter2policy", "hunter2judge"
    with socket_port() as dead:
        judge_url = f"http://jim:{judge_secret}@127.0.0.1:{dead}/v1"
    out = tmp_path / "run"
    with ChatServer(respond) as server:
        url = server.url.replace("http://", f"http://bob:{secret}@")
        args = eval_args(url, out, ["narrativeqa"], "--n", "2", "--max-retries", "0", "--judge-url", judge_url)
        done = run_cli("-v", *args, "--judge-timeout", "2")
        unreachable = run_cli(*eval_args(url.replace(str(server.port), str(dead)), tmp_path / "down", ["narrativeqa"]))
    assert done.returncode == 1, done.stdout + done.stderr
    readme = (out / "report" / "README.md").read_text()
    assert "bob:***@" in readme and "jim:***@" in readme  # the URLs are shown, redacted
    assert "jim:***@" in done.stderr  # the judge's failure names its endpoint, redacted
    assert unreachable.returncode == 1 and "bob:***@" in unreachable.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {"run.json", "generations.jsonl", "scores.jsonl", "README.md", "summary.json"} <= {p.name for p in written}
    for text in [done.stdout, done.stderr, unreachable.stdout, unreachable.stderr, *(p.read_bytes() for p in written)]:
        data = text if isinstance(text, bytes) else text.encode()
        assert secret.encode() not in data and judge_secret.encode() not in data


class socket_port:
    """A port nothing listens on (bound, then released)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def __exit__(self, *exc) -> None:
        pass
