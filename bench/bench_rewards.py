"""Reward speed: rule scoring of 40K-character responses, and judge throughput against a slow local judge.

1. Rule reward, microseconds per sample (goal: median <= 50 us, nothing written to stdout): ``compute_score``
   with no judge on 40K-character responses (a reasoning block, then the answer; a quarter without think
   tags), numeric / choice / QA mixed, 8 rollouts per gold as in GRPO. Baseline in the same run: answer
   extraction by one regex over the whole response, the straightforward way.
2. Judge throughput, milliseconds per sample (goal <= 2.5 ms; the floor at 64 in flight and 100 ms is
   1.6 ms): 1024 responses that all need the judge (rule wrong, answer extracted, all distinct), scored with
   ``compute_score_async`` the way veRL's reward loop calls it — one coroutine per sample, ``asyncio.gather``
   over the batch — against the stand-in judge server with 100 ms latency in its own process; then with two
   such endpoints. Baseline in the same run: the same calls awaited one at a time.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qwenlong_verl.worker.rewards import compute_score, compute_score_async  # noqa: E402

RESPONSE_CHARS = 40_000
RULE_SAMPLES = 2000
RULE_GOAL_US = 50.0
JUDGE_SAMPLES = 1024
JUDGE_LATENCY_S = 0.1
JUDGE_GOAL_MS = 2.5
SERIAL_SAMPLES = 16

WORDS = (
    "the report states that revenue grew while operating costs fell in the third quarter compared with "
    "last year so we need to check table four and the notes about segment margins before computing ratio "
    "wait let me re-read the paragraph about the acquisition because the totals might include it"
).split()


def reasoning(rng: random.Random, chars: int) -> str:
    parts, size = [], 0
    while size < chars:
        word = rng.choice(WORDS) if rng.random() > 0.1 else f"{rng.uniform(1, 9999):.2f}"
        parts.append(word)
        size += len(word) + 1
    return " ".join(parts)[:chars]


def rule_samples(seed: int) -> list[tuple[str, str, object, dict]]:
    rng = random.Random(seed)
    out = []
    for i in range(RULE_SAMPLES):
        kind = i % 3
        if kind == 0:
            gold = f"{rng.uniform(1, 500):.2f}"
            value = float(gold) * (1 if rng.random() < 0.5 else 1.1 + rng.random())
            answer = rng.choice(
                [f"The answer is ${value:,.2f} million.", f"**Answer:** {value:.2f}%", f"$\\boxed{{{value:.3f}}}$"]
            )
            source = "docmath_bench"
        elif kind == 1:
            gold = rng.choice("ABCD")
            answer = rng.choice(["The correct answer is ({}).", "Answer: {}", "**The answer is {}**"]).format(
                rng.choice("ABCD")
            )
            source = "long_toc_choices_bench"
        else:
            gold = f"{rng.choice(['Jean', 'Anna', 'Karl'])} {rng.choice(['Dupont', 'Berg', 'Ito'])} {i // 8}"
            answer = f"The answer is {rng.choice([gold, 'someone else', 'the ' + gold + ' family'])}."
            source = "hotpotqa_bench"
        tail = "\n\n" + answer
        if i % 4 == 3:  # no think tags: a non-reasoning model's long answer
            response = reasoning(rng, RESPONSE_CHARS - len(tail)) + tail
        else:
            think = reasoning(rng, RESPONSE_CHARS - len(tail) - 20)
            response = f"<think>\n{think}\n</think>{tail}"
        out.append((source, response, gold, {"question": f"question {i // 8}", "index": i}))
    return out


NAIVE = re.compile(r"(?:the answer is|answer:)\s*(.+)", re.IGNORECASE)


def naive_score(source: str, response: str, gold: object, extra: dict) -> float:
    """Baseline: one regex over the whole response, last match, plain string compare."""
    matches = NAIVE.findall(response)
    pred = matches[-1].strip(" .*$") if matches else ""
    return float(pred.lower() == str(gold).lower())


def time_per_call_us(fn, samples) -> list[float]:
    times = []
    for sample in samples:
        start = time.perf_counter_ns()
        fn(*sample)
        times.append((time.perf_counter_ns() - start) / 1000.0)
    return times


def bench_rules() -> bool:
    warm, measured = rule_samples(1), rule_samples(2)
    for sample in warm:
        compute_score(*sample)
    # Everything the library writes to fd 1 during the timed pass lands in this file.
    with tempfile.TemporaryFile() as sink:
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(sink.fileno(), 1)
        try:
            ours = time_per_call_us(compute_score, measured)
            sys.stdout.flush()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        sink.seek(0)
        written = sink.read()
    naive = time_per_call_us(naive_score, measured)
    median, p90 = statistics.median(ours), statistics.quantiles(ours, n=10)[-1]
    base = statistics.median(naive)
    accuracy = sum(compute_score(*s)["score"] for s in measured) / len(measured)
    print(f"rule reward, {len(measured)} responses of {RESPONSE_CHARS:,} chars (numeric/choice/QA, 1/4 without think)")
    print(f"  ours          : median {median:7.1f} us   p90 {p90:7.1f} us   (goal: median <= {RULE_GOAL_US:.0f} us)")
    print(f"  naive baseline: median {base:7.1f} us   (one regex over the whole response)   ratio {base / median:.1f}x")
    print(f"  mean reward {accuracy:.2f}; bytes written to stdout while timing: {len(written)}")
    return median <= RULE_GOAL_US and not written


class JudgeProcess:
    """The stand-in judge server in its own interpreter (so its CPU does not share our GIL)."""

    def __init__(self, latency_s: float):
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "qwenlong_verl.worker.rewards.judge_server",
                "--latency",
                str(latency_s),
                "--lifetime",
                "600",
            ],
            stdout=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )
        self.url = json.loads(self.proc.stdout.readline())["url"]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def judge_samples(tag: str, n: int) -> list[tuple[str, str, str, dict]]:
    rng = random.Random(tag)
    out = []
    for i in range(n):
        think = reasoning(rng, RESPONSE_CHARS - 200)
        response = f"<think>\n{think}\n</think>\n\nThe answer is candidate {tag}-{i}."
        out.append(("hotpotqa_bench", response, f"gold person {i % 128}", {"question": f"{tag} question {i}"}))
    return out


async def gather_all(samples, **kwargs) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    results = await asyncio.gather(*(compute_score_async(*s, **kwargs) for s in samples))
    return time.perf_counter() - start, results


async def one_at_a_time(samples, **kwargs) -> float:
    start = time.perf_counter()
    for s in samples:
        await compute_score_async(*s, **kwargs)
    return time.perf_counter() - start


def judged_ok(results: list[dict]) -> bool:
    return all(r["judge"] in (0.0, 1.0) and r["judge_error"] == "" and r["rule"] == 0.0 for r in results)


def bench_judge() -> bool:
    from qwenlong_verl.worker.rewards.judge import close_clients

    servers = [JudgeProcess(JUDGE_LATENCY_S), JudgeProcess(JUDGE_LATENCY_S)]
    try:
        one = {"judge_urls": servers[0].url, "judge_timeout_s": 30.0}
        two = {"judge_urls": [s.url for s in servers], "judge_timeout_s": 30.0}

        async def run() -> tuple[float, float, float, bool]:
            await gather_all(judge_samples("warm", 64), **one)  # connections and model lookup, as after step 1
            serial = await one_at_a_time(judge_samples("serial", SERIAL_SAMPLES), **one)
            wall_one, res_one = await gather_all(judge_samples("one", JUDGE_SAMPLES), **one)
            await gather_all(judge_samples("warm2", 64), **two)
            wall_two, res_two = await gather_all(judge_samples("two", JUDGE_SAMPLES), **two)
            await close_clients()
            return serial, wall_one, wall_two, judged_ok(res_one) and judged_ok(res_two)

        serial, wall_one, wall_two, ok = asyncio.run(run())
    finally:
        for server in servers:
            server.close()
    serial_ms = serial / SERIAL_SAMPLES * 1000
    one_ms, two_ms = wall_one / JUDGE_SAMPLES * 1000, wall_two / JUDGE_SAMPLES * 1000
    floor = JUDGE_LATENCY_S / 64 * 1000
    print(
        f"judge, {JUDGE_SAMPLES} judge-needing responses, judge latency {JUDGE_LATENCY_S * 1000:.0f} ms, 64 in flight per endpoint"
    )
    print(f"  serial baseline (one at a time, {SERIAL_SAMPLES} samples): {serial_ms:7.1f} ms/sample")
    print(
        f"  one endpoint : {one_ms:5.2f} ms/sample  ({wall_one:.2f} s)  goal <= {JUDGE_GOAL_MS} ms, floor {floor:.2f} ms  ratio {serial_ms / one_ms:.0f}x"
    )
    print(
        f"  two endpoints: {two_ms:5.2f} ms/sample  ({wall_two:.2f} s)  floor {floor / 2:.2f} ms  ratio {serial_ms / two_ms:.0f}x"
    )
    print(f"  every sample judged without error: {ok}")
    return ok and one_ms <= JUDGE_GOAL_MS and two_ms <= JUDGE_GOAL_MS


def main() -> int:
    rules_ok = bench_rules()
    judge_ok = bench_judge()
    return 0 if rules_ok and judge_ok else 1


if __name__ == "__main__":
    sys.exit(main())
