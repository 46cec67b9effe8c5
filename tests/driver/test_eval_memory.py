"""``eval --agent memory`` in process, against a real local server that plays the memory agent (support.memory_policy):
K + 1 generations per trajectory, accuracy decided by what reached the last memory, faults counted, a rerun that
goes on at the failed step, the report's memory section and ``report --compare``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from support.eval_server import Call, ChatServer, Reply
from support.memory_policy import FACT, QUESTION, MemoryPolicy, chunk_of, document, fact, question, write_bench

from qwenlong_verl.driver import cli
from qwenlong_verl.driver.data.tokenizer import load_tokenizer
from qwenlong_verl.driver.eval.generate import GenerationConfig
from qwenlong_verl.driver.eval.memory import Checkpoints
from qwenlong_verl.driver.eval.store import read_jsonl
from qwenlong_verl.worker.agent.episode import EpisodeState

pytestmark = pytest.mark.timeout(120)

CHUNK, MEMORY = 200, 64
ROWS = [
    # the needle is read in a middle chunk and kept: right
    {"id": "a", "document": document(30, {5: [fact("Belmora", 17)], 20: [fact("Arden", 4812)]}),
     "question": question("Arden"), "answer": "4812", "task": "numeric"},
    # one chunk: right
    {"id": "b", "document": document(3, {1: [fact("Cresk", 99)]}), "question": question("Cresk"), "answer": "99",
     "task": "numeric"},
    # five facts fill the memory in chunk 1; the needle of a later chunk is cut with the memory: wrong
    {"id": "c", "document": document(20, {0: [fact(f"D{i}", 10 + i) for i in range(5)], 15: [fact("Elvane", 7)]}),
     "question": question("Elvane"), "answer": "7", "task": "numeric"},
]  # fmt: skip
RIGHT = {"bench/a": True, "bench/b": True, "bench/c": False}


def ids(row: dict) -> list[int]:
    return load_tokenizer("builtin").encode(row["document"].strip(), add_special_tokens=False)


def chunks(row: dict) -> int:
    return math.ceil(len(ids(row)) / CHUNK)


K = {f"bench/{row['id']}": chunks(row) for row in ROWS}


def args(url: str, out: Path, bench: Path, *extra: str) -> list[str]:
    return [
        "eval", "--model-url", url, "--model", "policy", "--bench", f"bench={bench}", "--out", str(out),
        "--tokenizer", "builtin", "--agent", "memory", "--chunk-tokens", str(CHUNK), "--memory-tokens", str(MEMORY),
        "--update-tokens", "300", "--answer-tokens", "40", "--max-retries", "1", "--timeout", "1",
        "--length-buckets", "256,512", *extra,
    ]  # fmt: skip


def run_main(capsys, argv) -> tuple[int, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


@pytest.fixture
def bench(tmp_path):
    return write_bench(tmp_path / "bench.jsonl", ROWS)


def test_each_sample_is_k_memory_updates_and_one_answer_scored_like_any_answer(tmp_path, bench, capsys):
    assert K["bench/a"] >= 4 and K["bench/b"] == 1 and K["bench/c"] >= 2
    tokenizer = load_tokenizer("builtin")  # the needles are whole in one chunk: only the memory can lose them
    assert chunk_of(ids(ROWS[0]), fact("Arden", 4812), CHUNK, tokenizer) not in (None, 1, K["bench/a"])
    assert chunk_of(ids(ROWS[2]), fact("Elvane", 7), CHUNK, tokenizer) > 1
    policy = MemoryPolicy()
    out = tmp_path / "run"
    with ChatServer(policy) as server:
        code, text = run_main(capsys, args(server.url, out, bench, "--n", "2", "--concurrency", "3", "--seed", "3"))
        calls = server.calls_snapshot()
    assert code == 0, text
    generations = sum(K.values()) * 2 + 6
    assert f"drew 6 new trajectories ({generations} generations, 0 retries)" in text
    assert len(calls) == generations
    for (item_id, k), steps in policy.steps.items():
        assert steps == list(range(1, K[item_id] + 2)), (item_id, k)  # in order, each once
    bodies = [c.body for c in calls]
    assert [b["max_tokens"] for b in bodies].count(40) == 6 and {b["max_tokens"] for b in bodies} == {40, 300}
    assert all(b["temperature"] == 0.7 and b["top_p"] == 0.95 for b in bodies)
    seeding = GenerationConfig(base_url=server.url, model="policy", seed=3)  # each generation its own seed
    expected = {seeding.sample_seed(i, k, step) for (i, k), steps in policy.steps.items() for step in steps}
    assert sorted(b["seed"] for b in bodies) == sorted(expected) and len(expected) == generations

    rows = {(r["id"], r["k"]): r for r in read_jsonl(out / "generations.jsonl")}
    assert len(rows) == 6
    for (item_id, _), row in rows.items():
        memory = row["memory"]
        assert row["status"] == "ok" and memory["generations"] == K[item_id] + 1 == len(memory["steps"])
        assert memory["chunks"] == K[item_id] and not memory["document_cut"] and memory["resumed_from"] == 0
        assert row["response"].endswith(("4812.", "99.")) == RIGHT[item_id]
        assert memory["memory_truncations"] == sum(s["memory_truncated"] for s in memory["steps"])
        assert all(s["memory_tokens"] <= MEMORY for s in memory["steps"])
    assert rows[("bench/c", 0)]["memory"]["memory_truncations"] >= 2  # chunk 1, and the chunk of the needle
    assert rows[("bench/a", 0)]["memory"]["memory_truncations"] == 0
    assert not list((out / "trajectories").glob("*.json"))  # finished trajectories keep no checkpoint

    summary = json.loads((out / "report" / "summary.json").read_text())
    assert summary["benchmarks"][0]["accuracy"] == pytest.approx(2 / 3)
    memory = summary["memory_agent"]
    assert memory["answered"] == memory["trajectories"] == 6 and memory["failed"] == 0
    assert memory["generations"] == generations and memory["generations_mean"] == pytest.approx(generations / 6)
    items = {it["id"]: it for it in read_jsonl(out / "items.jsonl")}
    for bucket in memory["buckets"]:  # each bucket: its items' accuracy and generations
        inside = [i for i, it in items.items() if bucket["lo"] <= it["input_tokens"] < (bucket["hi"] or 1 << 40)]
        assert bucket["items"] == len(inside) and bucket["answered"] == 2 * len(inside)
        assert bucket["accuracy"] == pytest.approx(sum(RIGHT[i] for i in inside) / len(inside))
        assert bucket["generations_mean"] == pytest.approx(sum(K[i] + 1 for i in inside) / len(inside))
    assert sum(b["items"] for b in memory["buckets"]) == 3 and len(memory["buckets"]) >= 2
    readme = (out / "report" / "README.md").read_text()
    assert "## Memory agent" in readme and f"memory agent (chunk {CHUNK}, memory {MEMORY} tokens)" in readme


def test_server_faults_are_counted_and_a_rerun_goes_on_at_the_failed_step(tmp_path, bench, capsys):
    healthy = {"on": False}

    def fault(call: Call, step: int) -> Reply | None:
        if healthy["on"]:
            return None
        if call.item_id == "bench/a" and step == 3:
            return Reply(status=500, error="engine died")  # every attempt: the trajectory fails
        if call.item_id == "bench/c" and step == 2 and call.attempt == 1:
            return Reply(text="late", hang_s=2.5)  # past the 1 s timeout once, then answered
        if call.item_id == "bench/b" and step == 1:  # stopped at its budget: what it wrote is kept
            return Reply(text=f"<memory>\n{fact('Cresk', 99)}\n</memory>\nAlso", finish_reason="length")
        return None

    policy = MemoryPolicy(fault)
    out = tmp_path / "run"
    with ChatServer(policy) as server:
        code, text = run_main(capsys, args(server.url, out, bench, "--plan-tokens", "8"))
        assert code == 1 and "1 samples failed" in text and "engine died" in text, text
        assert policy.steps[("bench/a", 0)] == [1, 2, 3, 3]  # the failing step, retried once
        assert policy.steps[("bench/c", 0)] == [1, 2, 2, *range(3, K["bench/c"] + 2)]
        failed = {r["id"]: r for r in read_jsonl(out / "generations.jsonl")}["bench/a"]
        assert failed["status"] == "error" and failed["code"] == "http_500" and failed["memory"]["failed_step"] == 3
        summary = json.loads((out / "report" / "summary.json").read_text())
        assert summary["benchmarks"][0]["request_failures"] == 1 and summary["memory_agent"]["failed"] == 1
        assert summary["benchmarks"][0]["accuracy"] == pytest.approx(1 / 3)  # a unanswered, c wrong
        saved = Checkpoints(out / "trajectories").path("bench/a", 0)
        assert EpisodeState.from_dict(json.loads(saved.read_text())["state"]).step == 2

        healthy["on"] = True
        before = {key: len(steps) for key, steps in policy.steps.items()}
        code, text = run_main(capsys, args(server.url, out, bench, "--plan-tokens", "8"))
    assert code == 0, text
    again = {key: steps[before[key] :] for key, steps in policy.steps.items() if steps[before[key] :]}
    assert again == {("bench/a", 0): list(range(3, K["bench/a"] + 2))}  # from the failed step, nothing else
    row = {r["id"]: r for r in read_jsonl(out / "generations.jsonl") if r["status"] == "ok"}["bench/a"]
    assert row["memory"]["resumed_from"] == 2 and row["memory"]["generations"] == K["bench/a"] + 1
    assert row["response"].endswith("4812.") and not saved.exists()
    assert all(s["plan_tokens"] == 0 and not s["plan_truncated"] for s in row["memory"]["steps"][:-1])
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert summary["benchmarks"][0]["accuracy"] == pytest.approx(2 / 3)
    assert summary["memory_agent"]["cut_at_max_tokens"] == 1 and summary["memory_agent"]["answered"] == 3


def test_agent_settings_are_fixed_per_folder_and_checked_before_sending(tmp_path, bench, capsys):
    out = tmp_path / "run"
    with ChatServer(MemoryPolicy()) as server:
        assert run_main(capsys, args(server.url, out, bench, "--limit", "1"))[0] == 0
        sent = len(server.calls_snapshot())
        code, text = run_main(capsys, [*args(server.url, out, bench, "--limit", "1"), "--chunk-tokens", "100"])
        assert code == 2 and "agent chunk_tokens: 200 -> 100" in text, text
        full = ["eval", "--model-url", server.url, "--model", "policy", "--bench", f"bench={bench}", "--out", str(out)]
        code, text = run_main(capsys, full)
        assert code == 2 and "agent name: 'memory' -> 'full'" in text, text
        code, text = run_main(capsys, [*args(server.url, tmp_path / "x", bench), "--max-input-tokens", "100"])
        assert code == 2 and "drop --max-input-tokens" in text, text
        code, text = run_main(capsys, [*args(server.url, tmp_path / "y", bench), "--memory-tokens", "0"])
        assert code == 2 and "--memory-tokens must be an integer >= 1, got 0" in text, text
        assert len(server.calls_snapshot()) == sent


def test_a_checkpoint_is_taken_only_for_its_own_prompt(tmp_path):
    store = Checkpoints(tmp_path)
    state = EpisodeState(document_tokens=500, step=0)
    from qwenlong_verl.driver.eval.memory import Usage

    store.save("x:1/é", 3, "sha1", state, Usage(requests=2))
    assert store.load("x:1/é", 3, "sha1") == (state, Usage(requests=2))
    assert store.load("x:1/é", 3, "sha2") is None and store.load("x:1/é", 2, "sha1") is None
    store.path("x:1/é", 3).write_text("{not json")
    assert store.load("x:1/é", 3, "sha1") is None
    store.save("x:1/é", 3, "sha1", state, Usage(requests=2))
    torn = tmp_path / f".{store.path('x:1/é', 3).name}.k2j4.tmp.json"  # a write a kill interrupted
    torn.write_text('{"id": "x:1/')
    store.sweep()
    assert not torn.exists() and store.load("x:1/é", 3, "sha1") is not None
    store.drop("x:1/é", 3)
    store.drop("x:1/é", 3)  # gone already: fine
    assert not store.path("x:1/é", 3).exists()


def full_context(call: Call) -> Reply:
    """A full-context policy: the code of the vault asked, if its fact is in the prompt it was sent."""
    asked = QUESTION.search(call.prompt).group(1)
    code = next((c for v, c in FACT.findall(call.prompt) if v == asked), "unknown")
    return Reply(text=f"Therefore, the answer is {code}.")


def test_report_shows_a_memory_run_beside_a_full_context_run_by_whole_input_length(tmp_path, bench, capsys):
    memory_out, full_out = tmp_path / "memory", tmp_path / "full"
    with ChatServer(MemoryPolicy()) as server:
        assert run_main(capsys, args(server.url, memory_out, bench))[0] == 0
    with ChatServer(full_context) as server:  # middle-truncated to 300 tokens: a's needle (late) and c's are cut
        full = ["eval", "--model-url", server.url, "--model", "policy", "--bench", f"bench={bench}", "--out",
                str(full_out), "--tokenizer", "builtin", "--max-input-tokens", "300"]  # fmt: skip
        assert run_main(capsys, full)[0] == 0
    code, text = run_main(capsys, ["report", str(memory_out), "--compare", str(full_out)])
    assert code == 0, text
    summary = json.loads((memory_out / "report" / "summary.json").read_text())
    compare = summary["compare"]
    assert compare["common"] == 3 and compare["only_here"] == compare["only_there"] == 0
    items = {it["id"]: it for it in read_jsonl(full_out / "items.jsonl")}
    full_right = {i: r["correct"] for i, r in ((s["id"], s) for s in read_jsonl(full_out / "scores.jsonl"))}
    assert full_right["bench/b"] and not full_right["bench/a"]
    total = compare["rows"][-1]
    assert total["label"] == "all" and total["items"] == 3
    assert total["accuracy"] == pytest.approx(2 / 3)
    assert total["other_accuracy"] == pytest.approx(sum(full_right.values()) / 3)
    assert total["other_truncated"] == sum(it["truncated"] for it in items.values()) >= 2
    for row in compare["rows"][:-1]:  # placed by the whole input, not by the truncated prompt
        inside = [i for i, it in items.items() if row["lo"] <= it["original_input_tokens"] < (row["hi"] or 1 << 40)]
        assert row["items"] == len(inside) > 0
        assert row["accuracy"] == pytest.approx(sum(RIGHT[i] for i in inside) / len(inside))
    readme = (memory_out / "report" / "README.md").read_text()
    assert f"## Beside {full_out}" in readme and "full context, middle-truncated to 300 tokens" in readme
    code, text = run_main(capsys, ["report", str(memory_out)])  # without --compare: the section goes
    assert code == 0 and "## Beside" not in (memory_out / "report" / "README.md").read_text()
