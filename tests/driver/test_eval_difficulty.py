"""``difficulty``: pass@k of prepared rows against a real local OpenAI-compatible server; resume; dead servers."""

from __future__ import annotations

import json
import math
import socket
from fractions import Fraction
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from support.eval_server import Call, ChatServer, Reply

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.driver.data.difficulty import load_difficulty
from qwenlong_verl.driver.data.prepare import prepare
from qwenlong_verl.driver.eval.difficulty import DifficultyConfig, measure, read_prepared
from qwenlong_verl.driver.eval.generate import GenerationConfig, header_safe
from qwenlong_verl.driver.eval.store import read_jsonl

pytestmark = pytest.mark.timeout(300)

SENTENCE = "The survey team counted 412 nests and 19 empty burrows along the northern ridge. "
N = 4

# key -> correct samples of N the canned policy gives; the odd key checks ids that no HTTP header could carry
PLAN = {"n0": 0, "n1": 1, "c2": 2, "c3": 3, "q4": 4, "odd\nid%é": 2}


def records() -> list[dict]:
    out = []
    for i, key in enumerate(PLAN):
        record = {
            "id": key,
            "documents": [{"title": f"Ridge log {i}", "text": SENTENCE * (2 + i)}],
            "question": f"How many nests were counted in ridge log {i}?",
        }
        if key.startswith("c"):
            record.update(task="choice", choices=["412", "19", "7"], answer="A")
        elif key.startswith("q"):
            record.update(task="qa", question=f"Which ridge does log {i} describe?", answer="the northern ridge")
        else:
            record.update(task="numeric", answer=str(400 + i))
        out.append(record)
    return out


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("prepared")
    raw = root / "raw.jsonl"
    raw.write_text("".join(json.dumps(r) + "\n" for r in records()))
    one = prepare([str(raw)], str(root / "one"), "builtin", phases=[100000], plot=False)
    lengths = sorted(r["extra_info"]["input_tokens"] for r in pq.read_table(one.phase_files[0]).to_pylist())
    stats = prepare([str(raw)], str(root / "data"), "builtin", phases=[lengths[2], lengths[-1]], plot=False)
    assert stats.rows_written == len(PLAN) and all(p.rows for p in stats.phase_stats)  # both phase files used
    return stats.phase_files


class Policy:
    """Sample k of an example is right iff k < PLAN[key]; the answers come from the prepared rows' golds."""

    def __init__(self, files: list[str], fail: set[str] = frozenset()):
        rows = [r for f in files for r in pq.read_table(f).to_pylist()]
        self.rows = {r["extra_info"]["source_id"]: r for r in rows}
        self.fail = fail

    def __call__(self, call: Call) -> Reply:
        row = self.rows[call.item_id]
        key = row["extra_info"]["source_id"]
        assert call.body["messages"] == row["prompt"]  # the prepared prompt, sent as it is
        if key in self.fail:
            return Reply(status=500, error="worker crashed")
        gold = row["reward_model"]["ground_truth"]
        if call.k < PLAN[key]:
            return Reply(text=f"<think>Counting.</think>\nTherefore, the answer is {gold}.")
        wrong = {"numeric": "987654", "choice": "C"}.get(row["extra_info"].get("answer_type"), "the southern valley")
        return Reply(text=f"<think>Guessing.</think>\nTherefore, the answer is {wrong}.")


def config(url: str, files: list[str], out: Path, **over) -> DifficultyConfig:
    generation = GenerationConfig(base_url=url, model="policy", max_retries=0, timeout_s=20, backoff_s=0)
    return DifficultyConfig(benches=files, out=out, generation=generation, n=over.pop("n", N), **over)


def exact(n: int, c: int, k: int) -> float:
    return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


def by_key(path: Path) -> dict[str, dict]:
    return {r["key"]: r for r in (json.loads(line) for line in path.read_text().splitlines())}


def test_measures_pass_at_k_per_example(prepared, tmp_path):
    with ChatServer(Policy(prepared)) as server:
        url = server.url.replace("http://", "http://user:s3cret@")  # credentials must never reach a file
        result = measure(config(url, prepared, tmp_path / "m"))
        assert len(server.calls) == len(PLAN) * N
    assert result.setup_error is None and result.failed_samples == 0 and result.measured == len(PLAN)
    records = by_key(tmp_path / "m" / "difficulty.jsonl")
    assert list(records) == [e.key for e in read_prepared(prepared)[0]]  # one per example, in input order
    assert sorted(records) == sorted(PLAN)
    for key, c in PLAN.items():
        r = records[key]
        assert (r["samples"], r["correct"], r["n"], r["failed"], r["measured"]) == (N, c, N, 0, True)
        assert r["model"] == "policy" and r["pass_rate"] == c / N
        assert set(r["pass_at"]) == {"1", "2", "4"}
        for k, value in r["pass_at"].items():
            assert value == pytest.approx(exact(N, c, int(k)), abs=1e-12)
    assert {r["phase"] for r in records.values()} == {1, 2}
    for path in (tmp_path / "m").rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".md"):
            assert "s3cret" not in path.read_text(), path
    assert "user:***@" in (tmp_path / "m" / "run.json").read_text()
    # the file is what prepare reads back
    table = load_difficulty(tmp_path / "m" / "difficulty.jsonl")
    assert {key: (m.samples, m.correct) for key, m in table.records.items()} == {k: (N, c) for k, c in PLAN.items()}


def test_failures_are_counted_unmeasured_and_a_rerun_draws_only_what_is_missing(prepared, tmp_path):
    out = tmp_path / "m"
    with ChatServer(Policy(prepared, fail={"n1", "q4"})) as server:
        first = measure(config(server.url, prepared, out))
    assert first.failed_samples == 2 * N and first.eval.failed_samples == 2 * N
    records = by_key(out / "difficulty.jsonl")
    for key in ("n1", "q4"):  # no answered sample: unmeasured, not a pass rate of 0
        assert records[key]["measured"] is False and records[key]["pass_rate"] is None
        assert records[key]["samples"] == 0 and records[key]["failed"] == N
    assert records["c3"]["correct"] == 3 and records["c3"]["measured"] is True

    with ChatServer(Policy(prepared)) as server:
        second = measure(config(server.url, prepared, out))
        retried = sorted({call.item_id for call in server.calls})
        assert retried == ["n1", "q4"] and len(server.calls) == 2 * N
    assert second.failed_samples == 0
    assert {k: r["correct"] for k, r in by_key(out / "difficulty.jsonl").items()} == PLAN

    # a run killed mid-way: the last two samples were never written, the line before them torn
    generations = out / "generations.jsonl"
    lines = generations.read_text().splitlines(keepends=True)
    ok = [json.loads(line) for line in lines if json.loads(line)["status"] == "ok"]
    lost = {(ok[-1]["id"], ok[-1]["k"]), (ok[-2]["id"], ok[-2]["k"])}
    kept = [line for line in lines if (json.loads(line)["id"], json.loads(line)["k"]) not in lost]
    generations.write_text("".join(kept) + '{"id": "torn')
    with ChatServer(Policy(prepared)) as server:
        third = measure(config(server.url, prepared, out))
        assert sorted((c.item_id, c.k) for c in server.calls) == sorted(lost)  # nothing done is drawn again
    assert third.failed_samples == 0
    assert {k: r["correct"] for k, r in by_key(out / "difficulty.jsonl").items()} == PLAN

    with ChatServer(Policy(prepared)) as server:  # complete: a rerun sends nothing
        measure(config(server.url, prepared, out))
        assert server.calls == []

    with ChatServer(Policy(prepared)) as server:  # more samples: only the new ones
        grown = measure(config(server.url, prepared, out, n=6))
        assert sorted({c.k for c in server.calls}) == [4, 5] and len(server.calls) == 2 * len(PLAN)
    assert {m.key: m.samples for m in grown.measurements} == dict.fromkeys(PLAN, 6)
    assert len(read_jsonl(out / "scores.jsonl")) >= 6 * len(PLAN)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_dead_server_writes_every_example_unmeasured(prepared, tmp_path):
    result = measure(config(f"http://127.0.0.1:{closed_port()}/v1", prepared, tmp_path / "m"))
    assert result.setup_error and "cannot reach" in result.setup_error
    assert result.measured == 0 and result.failed_samples == len(PLAN) * N
    records = by_key(tmp_path / "m" / "difficulty.jsonl")
    assert sorted(records) == sorted(PLAN)
    assert all(r["measured"] is False and r["pass_rate"] is None and r["samples"] == 0 for r in records.values())


def test_bad_rows_are_skipped_and_bad_inputs_refused(prepared, tmp_path):
    rows = [r for f in prepared for r in pq.read_table(f).to_pylist()]
    broken = dict(rows[1], reward_model={"style": "rule", "ground_truth": ""})
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("".join(json.dumps(r) + "\n" for r in [rows[0], broken, rows[0], rows[2]]))
    examples, skipped = read_prepared([str(mixed)])
    assert [e.key for e in examples] == [rows[0]["extra_info"]["source_id"], rows[2]["extra_info"]["source_id"]]
    assert len(skipped) == 2
    assert f"{mixed} row 2: field 'reward_model.ground_truth'" in skipped[0]
    assert f"{mixed} row 3: field 'extra_info.source_id'" in skipped[1] and "repeats" in skipped[1]
    assert [e.key for e in read_prepared(prepared, limit=2)[0]] == [e.key for e in read_prepared(prepared)[0][:2]]

    with pytest.raises(InputError, match="not found"):
        config("http://127.0.0.1:9/v1", [str(tmp_path / "none.parquet")], tmp_path / "m")
    with pytest.raises(InputError, match="--output .* is also an input"):
        config("http://127.0.0.1:9/v1", prepared, tmp_path / "m", output=prepared[0])
    with pytest.raises(InputError, match="--output .*generations.jsonl is also"):
        config("http://127.0.0.1:9/v1", prepared, tmp_path / "m", output=str(tmp_path / "m" / "generations.jsonl"))
    raw_only = tmp_path / "raw.jsonl"
    raw_only.write_text(json.dumps(records()[0]) + "\n")
    with pytest.raises(InputError, match="no usable prepared row"):
        measure(config("http://127.0.0.1:9/v1", [str(raw_only)], tmp_path / "m"))


def test_item_ids_are_header_safe_and_injective():
    assert header_safe("plain-id:7/a b") == "plain-id:7/a b"
    assert header_safe("odd\nid%é") == "odd%0Aid%25é"
    assert header_safe("%0A") != header_safe("\n")


def test_the_command_takes_eval_options_and_its_own_defaults(prepared, tmp_path):
    from qwenlong_verl.driver.cli import build_parser
    from qwenlong_verl.driver.cli.args import build
    from qwenlong_verl.driver.cli.command import COMMANDS

    command = COMMANDS["difficulty"]
    base = ["difficulty", "--input", *prepared, "--out", str(tmp_path / "m"), "--model-url", "http://m/v1"]
    args = build_parser().parse_args([*base, "--model", "m", "--judge-url", "http://j/v1", "--timeout", "30"])
    config = build(command.config, args, command.flags)
    assert config.benches == prepared and config.n == 8 and not config.rating
    assert config.generation.timeout_s == 30 and config.judge_urls == ["http://j/v1"]
    assert config.output_path == tmp_path / "m" / "difficulty.jsonl"
    for hidden in ("--bench", "--max-input-tokens", "--length-buckets", "--no-rating", "--data-dir"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*base, "--model", "m", hidden, "1"])
