"""``qwenlong-verl eval --agent memory`` end to end against a local server that plays the memory agent
(support.memory_policy): a question over a ~1M-token document read in 256K-token chunks, the per-bucket report,
and a run killed mid-trajectory that resumes without generating a finished step again."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time

import pytest
from support import ROOT, run_cli
from support.eval_server import ChatServer, Reply
from support.memory_policy import MemoryPolicy, chunk_of, document, fact, question, write_bench

from qwenlong_verl.driver import cli
from qwenlong_verl.driver.data.tokenizer import load_tokenizer
from qwenlong_verl.driver.eval.memory import Checkpoints
from qwenlong_verl.driver.eval.store import read_jsonl
from qwenlong_verl.worker.agent.episode import EpisodeState
from qwenlong_verl.worker.agent.prompts import ANSWER_PREAMBLE, MEMORY_CLOSE, MEMORY_OPEN

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


def encode(text: str) -> list[int]:
    return load_tokenizer("builtin").encode(text.strip(), add_special_tokens=False)


def corpus() -> list[dict]:
    """One item per length bucket up to 1M tokens; the 300K one is answered wrong (its needle is cut with the
    memory, which 200 earlier facts overfill)."""

    def row(name, sentences, facts, vault, code):
        return {"id": name, "document": document(sentences, facts), "question": question(vault), "answer": str(code),
                "task": "numeric"}  # fmt: skip

    return [
        row("small", 800, {400: [fact("Arden", 11)]}, "Arden", 11),  # ~20K tokens
        row("mid", 4000, {3900: [fact("Belmora", 22)]}, "Belmora", 22),  # ~100K
        row("crowded", 12000, {0: [fact(f"D{i}", i) for i in range(200)], 11000: [fact("Cresk", 33)]}, "Cresk", 33),
        # ~1M tokens: 4 chunks of 256K; the needle sits in chunk 3, two other vaults elsewhere
        row(
            "million",
            40000,
            {900: [fact("Dunmoor", 1)], 28000: [fact("Elvane", 4444)], 39000: [fact("Farrow", 2)]},
            "Elvane",
            4444,
        ),  # fmt: skip
    ]


def test_a_million_token_question_is_read_in_four_chunks_and_reported_by_length(tmp_path, capsys):
    rows = corpus()
    bench = write_bench(tmp_path / "long.jsonl", rows)
    chunk = 256 * 1024
    ids = encode(rows[-1]["document"])
    assert 3 * chunk < len(ids) <= 4 * chunk  # K = 4
    assert chunk_of(ids, fact("Elvane", 4444), chunk, load_tokenizer("builtin")) == 3
    k = {"long/small": 1, "long/mid": 1, "long/crowded": 2, "long/million": 4}  # the others: far from a cut
    right = {"long/small": True, "long/mid": True, "long/crowded": False, "long/million": True}
    policy = MemoryPolicy()
    out = tmp_path / "run"
    argv = ["eval", "--model-url", "URL", "--model", "policy", "--bench", f"long={bench}", "--out", str(out),
            "--tokenizer", "builtin", "--agent", "memory", "--chunk-tokens", str(chunk), "--memory-tokens", "2048",
            "--concurrency", "4"]  # fmt: skip
    with ChatServer(policy, max_lifetime_s=240) as server:
        started = time.monotonic()
        code = cli.main([server.url if a == "URL" else a for a in argv])
        took = time.monotonic() - started
        text = " ".join(capsys.readouterr().out.split())
    assert code == 0, text
    assert dict(policy.steps) == {(item, 0): list(range(1, k[item] + 2)) for item in k}  # K + 1, in order
    generations = {r["id"]: r for r in read_jsonl(out / "generations.jsonl")}
    million = generations["long/million"]["memory"]
    assert million["chunks"] == 4 and million["generations"] == 5 and million["document_tokens"] == len(ids)
    assert million["memory_truncations"] == 0 and generations["long/crowded"]["memory"]["memory_truncations"] == 2
    scores = {r["id"]: r["correct"] for r in read_jsonl(out / "scores.jsonl")}
    assert scores == right

    summary = json.loads((out / "report" / "summary.json").read_text())
    memory = summary["memory_agent"]
    assert [(b["label"], b["items"], b["accuracy"], b["generations_mean"]) for b in memory["buckets"]] == [
        ("0-32K", 1, 1.0, 2.0),
        ("32K-128K", 1, 1.0, 2.0),
        ("128K-512K", 1, 0.0, 3.0),
        ("512K-1M", 1, 1.0, 5.0),
    ]
    assert memory["generations_mean"] == pytest.approx(12 / 4) and memory["answered"] == 4
    readme = (out / "report" / "README.md").read_text()
    assert "| 512K-1M | 1 | 100.0 | 1 | 5.00 | 0.0 |" in readme
    print(f"\n1.42M tokens in 4 questions, 12 generations: {took:.1f} s")


def test_a_killed_run_resumes_each_trajectory_at_its_last_finished_step(tmp_path):
    rows = []
    for i in range(4):  # one needle each, where no chunk cut splits it
        text = next(
            text
            for at in range(10 * i + 5, 50)
            if chunk_of(
                encode(text := document(50, {at: [fact(f"V{i}", 100 + i)]})),
                fact(f"V{i}", 100 + i),
                200,
                load_tokenizer("builtin"),
            )
        )
        rows.append(
            {"id": f"q{i}", "document": text, "question": question(f"V{i}"), "answer": 100 + i, "task": "numeric"}
        )
    bench = write_bench(tmp_path / "bench.jsonl", rows)
    k = math.ceil(len(encode(rows[0]["document"])) / 200)
    assert all(math.ceil(len(encode(r["document"])) / 200) == k for r in rows) and k >= 5
    keys = {(f"b/q{i}", j) for i in range(4) for j in range(2)}
    out = tmp_path / "run"
    policy = MemoryPolicy(hang_s=0.12)
    with ChatServer(policy, max_lifetime_s=240) as server:
        args = ["eval", "--model-url", server.url, "--model", "policy", "--bench", f"b={bench}", "--out", str(out),
                "--n", "2", "--concurrency", "3", "--tokenizer", "builtin", "--agent", "memory", "--chunk-tokens",
                "200", "--memory-tokens", "64"]  # fmt: skip
        proc = subprocess.Popen([sys.executable, "-m", "qwenlong_verl.driver.cli", *args], cwd=ROOT)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                finished = [r for r in read_jsonl(out / "generations.jsonl") if r["status"] == "ok"]
                if len(finished) >= 2 and len(list((out / "trajectories").glob("[!.]*.json"))) >= 2:
                    break
                assert proc.poll() is None, "eval finished before it could be interrupted"
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(30)
        assert proc.returncode == -signal.SIGKILL
        time.sleep(0.5)  # a request sent just before the kill reaches the server's log before we count
        done = {(r["id"], r["k"]) for r in read_jsonl(out / "generations.jsonl") if r["status"] == "ok"}
        store = Checkpoints(out / "trajectories")
        saved = {}
        for key in keys - done:
            path = store.path(*key)
            saved[key] = EpisodeState.from_dict(json.loads(path.read_text())["state"]).step if path.exists() else 0
        assert 2 <= len(done) < len(keys) and any(0 < step < k for step in saved.values())
        before = {key: len(steps) for key, steps in policy.steps.items()}

        policy.hang_s = 0.0
        rerun = run_cli(*args)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        again = {key: steps[before.get(key, 0) :] for key, steps in policy.steps.items()}
    for key in done:
        assert again[key] == [], f"finished trajectory {key} was generated again"
    for key, step in saved.items():
        assert again[key] == list(range(step + 1, k + 2)), key  # from the step after its checkpoint, each once
    rows_after = read_jsonl(out / "generations.jsonl")
    assert sorted((r["id"], r["k"]) for r in rows_after) == sorted(keys)  # one row per sample, none lost
    assert all(r["memory"]["generations"] == k + 1 for r in rows_after)
    assert {(r["id"], r["k"]): r["memory"]["resumed_from"] for r in rows_after} == {**dict.fromkeys(done, 0), **saved}
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert summary["benchmarks"][0]["accuracy"] == 1.0 and summary["memory_agent"]["answered"] == 8
    assert not list((out / "trajectories").glob("[!.]*.json"))


def test_a_synthetic_million_token_corpus_question_takes_k_plus_one_generations(tmp_path, capsys):
    """`synth --corpus` (hundreds of documents, an aggregation question) straight into `eval --agent memory`:
    each trajectory is K = ceil(document tokens / chunk) memory updates and one answer."""
    from qwenlong_verl.driver.data.synth import CorpusOptions, synth

    raw = tmp_path / "corpus.jsonl"
    synth(raw, n=1, min_tokens=1_000_000, max_tokens=1_100_000, seed=3, corpus=CorpusOptions(corpus=True, docs=300))
    chunk = 256 * 1024

    def policy(call):  # a memory block for each update, a number for the answer
        if ANSWER_PREAMBLE in call.prompt:
            return Reply("The answer is 42.")
        return Reply(f"{MEMORY_OPEN}Figures noted so far.{MEMORY_CLOSE}")

    out = tmp_path / "run"
    argv = ["eval", "--model-url", "URL", "--model", "policy", "--bench", f"corpus={raw}", "--out", str(out),
            "--tokenizer", "builtin", "--agent", "memory", "--chunk-tokens", str(chunk), "--memory-tokens", "2048"]  # fmt: skip
    with ChatServer(policy, max_lifetime_s=240) as server:
        code = cli.main([server.url if a == "URL" else a for a in argv])
        calls = server.calls_snapshot()
    assert code == 0, capsys.readouterr().out
    (row,) = read_jsonl(out / "generations.jsonl")
    memory = row["memory"]
    k = math.ceil(memory["document_tokens"] / chunk)
    assert memory["document_tokens"] >= 1_000_000 and 4 <= k <= 5
    assert memory["chunks"] == k and memory["generations"] == k + 1
    assert len(calls) == k + 1  # K updates + the answer, each asked once
    assert len(read_jsonl(out / "scores.jsonl")) == 1
