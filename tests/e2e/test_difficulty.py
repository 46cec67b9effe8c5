"""``synth`` -> ``prepare`` -> ``difficulty`` (a real local server) -> ``prepare --difficulty``, as a user runs them.

The server answers each example right in a fixed number of its samples, so the pass@k of every example, the bins
``prepare`` counts and the rows it leaves out are known in advance.
"""

from __future__ import annotations

import json
import socket

import pyarrow.parquet as pq
import pytest
from support import run_cli
from support.eval_server import Call, ChatServer, Reply

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]

N = 4
EXAMPLES = 8


class Policy:
    """Example i (in file order) gets i % 5 of its N samples right: 0, 1, 2, 3, 4, 0, 1, 2."""

    def __init__(self, rows: list[dict]):
        self.rows = {r["extra_info"]["source_id"]: r for r in rows}
        self.plan = {r["extra_info"]["source_id"]: i % (N + 1) for i, r in enumerate(rows)}

    def __call__(self, call: Call) -> Reply:
        row = self.rows[call.item_id]  # synth ids are header-safe, so the item id is the key itself
        gold = row["reward_model"]["ground_truth"]
        if call.k < self.plan[call.item_id]:
            answer = gold
        elif row["extra_info"]["choices"]:
            answer = "A" if gold != "A" else "B"
        else:
            answer = "zebra crossing 987654"
        return Reply(text=f"<think>Reading the reports.</think>\nTherefore, the answer is {answer}.")


def test_measure_then_filter_and_balance(tmp_path):
    raw, prepared, measured, balanced = (tmp_path / n for n in ("raw.jsonl", "prep", "meas", "balanced"))
    done = run_cli("synth", "--out", str(raw), "--n", str(EXAMPLES), "--min-tokens", "1500", "--max-tokens", "2500")
    assert done.returncode == 0, done.stderr
    common = ["--input", str(raw), "--tokenizer", "builtin", "--phases", "100000", "--no-plot"]
    done = run_cli("prepare", *common, "--output", str(prepared))
    assert done.returncode == 0, done.stderr
    rows = pq.read_table(prepared / "phase1.parquet").to_pylist()
    assert len(rows) == EXAMPLES
    policy = Policy(rows)

    with ChatServer(policy) as server:
        args = ["difficulty", "--input", str(prepared / "phase1.parquet"), "--out", str(measured)]
        args += ["--model-url", server.url, "--model", "policy", "--n", str(N), "--max-retries", "0"]
        done = run_cli(*args)
        assert done.returncode == 0, done.stdout + done.stderr
        assert len(server.calls_snapshot()) == EXAMPLES * N
    assert f"{EXAMPLES} examples, {N} samples each" in done.stdout and "measured 8, unmeasured 0" in done.stdout
    assert "solved 1, unsolvable 2" in done.stdout
    records = [json.loads(line) for line in (measured / "difficulty.jsonl").read_text().splitlines()]
    assert {r["key"]: r["correct"] for r in records} == policy.plan
    assert all(r["samples"] == N and r["pass_at"]["1"] == r["correct"] / N for r in records)

    # bins 0,.25,.5,.75,1 before: c = 0,1,2,3,4,0,1,2 -> [2, 2, 2, 2]; the solved (c=4) and unsolvable (c=0) rows
    # go; then each bin may hold at most 34% of the phase and the first none: [0, 2, 2, 1] -> [0, 1, 1, 1]
    options = ["--difficulty", str(measured / "difficulty.jsonl"), "--drop-solved", "--drop-unsolvable"]
    done = run_cli("prepare", *common, "--output", str(balanced), *options, "--bin-shares", "0,0.34,0.34,0.34")
    assert done.returncode == 0, done.stdout + done.stderr
    stats = json.loads((balanced / "stats.json").read_text())
    (phase,) = stats["difficulty"]["phases"]
    assert phase["bins_before"] == [2, 2, 2, 2] and phase["bins_after"] == [0, 1, 1, 1]
    assert stats["dropped"] == {"bin_share": 2, "solved": 1, "unsolvable": 2} and stats["rows_written"] == 3
    kept = pq.read_table(balanced / "phase1.parquet").to_pylist()
    assert sorted(r["extra_info"]["pass_rate"] for r in kept) == [0.25, 0.5, 0.75]
    assert "pass@1 bins, before → after" in done.stdout and "2 → 1" in done.stdout
    assert (balanced / "difficulty.md").is_file()


def test_a_dead_server_exits_1_with_every_example_unmeasured(tmp_path):
    rows = tmp_path / "rows.jsonl"
    row = {
        "data_source": "qwenlong_raw",
        "prompt": [{"role": "user", "content": "<text>\nA short log.\n</text>\n\nHow many logs are there?"}],
        "ability": "numeric",
        "reward_model": {"style": "rule", "ground_truth": "1"},
        "extra_info": {
            "index": 0,
            "task": "numeric",
            "question": "How many logs are there?",
            "input_tokens": 20,
            "source_id": "only",
            "choices": [],
            "phase": 1,
            "source_meta": "{}",
        },
    }
    rows.write_text(json.dumps(row) + "\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "meas"
    done = run_cli(
        "difficulty", "--input", str(rows), "--out", str(out), "--model-url", f"http://u:pw@127.0.0.1:{port}/v1",
        "--model", "policy", "--n", "2",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith("error: cannot reach") and len(done.stderr.strip().splitlines()) == 1
    assert "pw" not in done.stdout + done.stderr
    (record,) = [json.loads(line) for line in (out / "difficulty.jsonl").read_text().splitlines()]
    assert record["key"] == "only" and record["measured"] is False and record["pass_rate"] is None
    assert "measured 0, unmeasured 1" in done.stdout
