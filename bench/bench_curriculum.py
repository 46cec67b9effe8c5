"""Curriculum overheads, each against a baseline measured in the same run:

* ledger stage per training step (128 prompts x 8 rollouts: records, metrics, durable append) vs veRL's own GRPO
  advantage on the same batch — goal: < 50 ms per step (a long-context RL step takes minutes);
* task-balanced prompt stream through veRL's StatefulDataLoader (fetch size 1, DAPO's refill path) vs the same
  loader over torchdata's RandomSampler (veRL's default) — goal: at most 2x its time;
* retrospective draw over a 100K-example ledger (200K records) vs numpy's weighted draw without replacement — goal:
  < 3 s.

Each figure is the median of several runs.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPEATS = 5


def median_time(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_ledger() -> bool:
    import torch
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    from qwenlong_verl.worker.curriculum.ledger import DifficultyLedger, group_records, step_metrics

    prompts, n, length = 128, 8, 512
    rng = np.random.default_rng(0)
    uid = np.repeat([f"u{i}" for i in range(prompts)], n).astype(object)
    reward = rng.integers(0, 2, prompts * n).astype(float)
    lengths = rng.integers(16, length, prompts * n)
    mask = torch.arange(length)[None, :] < torch.as_tensor(lengths)[:, None]
    scores = torch.zeros(prompts * n, length)
    scores[torch.arange(prompts * n), torch.as_tensor(lengths) - 1] = torch.as_tensor(reward, dtype=torch.float32)
    tasks = np.array(["qa", "numeric", "choice"], dtype=object)[np.arange(prompts * n) // n % 3]
    with tempfile.TemporaryDirectory() as tmp:
        ledger = DifficultyLedger(Path(tmp) / "difficulty_ledger.jsonl")

        def ledger_step():
            records = group_records(
                phase="phase1",
                phase_number=1,
                step=1,
                uid=uid,
                index=np.repeat(np.arange(prompts), n).astype(object),
                task=tasks,
                data_source=np.full(prompts * n, "docqa", dtype=object),
                row_phase=np.full(prompts * n, 1, dtype=object),
                reward=reward,
                passed=reward >= 0.5,
                response_length=lengths,
                trained=True,
            )
            step_metrics(records, 1)
            ledger.append(records)

        ours = median_time(ledger_step)
    base = median_time(lambda: compute_grpo_outcome_advantage(scores, mask.float(), uid))
    ok = ours < 0.05
    print(f"ledger step, 1024 rollouts     : {ours * 1000:8.2f} ms   (goal < 50 ms)")
    print(f"veRL grpo advantage, same batch: {base * 1000:8.2f} ms   ratio {ours / base:.2f}x")
    return ok


def bench_sampler() -> bool:
    import torch
    from torchdata.stateful_dataloader import StatefulDataLoader
    from torchdata.stateful_dataloader.sampler import RandomSampler

    from qwenlong_verl.worker.curriculum.task_balance import TaskBalancedSampler

    rows = 20_000
    labels = ["qa"] * 9_000 + ["numeric"] * 6_000 + ["choice"] * 5_000
    data = list(range(rows))

    def drain(sampler):
        loader = StatefulDataLoader(
            data, batch_size=1, sampler=sampler, num_workers=0, drop_last=True, collate_fn=lambda b: b
        )
        for _ in loader:
            pass

    ours = median_time(lambda: drain(TaskBalancedSampler(labels, 129, seed=1)), repeats=3)
    base = median_time(lambda: drain(RandomSampler(data, generator=torch.Generator().manual_seed(1))), repeats=3)
    ok = ours <= 2 * base
    print(f"task-balanced stream, {rows:,} idx : {ours * 1000:8.1f} ms   ({ours / rows * 1e6:.2f} us/index)")
    print(f"RandomSampler, same loader     : {base * 1000:8.1f} ms   ratio {ours / base:.2f}x (goal <= 2x)")
    return ok


def bench_retrospective() -> bool:
    from qwenlong_verl.driver.recipe import RetrospectiveConfig
    from qwenlong_verl.driver.retrospective import choose_carry, example_difficulties
    from qwenlong_verl.worker.curriculum.ledger import LedgerRecord

    examples = 100_000
    rng = np.random.default_rng(0)
    rewards = rng.uniform(0, 1, size=(2, examples))
    records = [
        LedgerRecord(
            "phase1",
            s + 1,
            f"u{s}-{i}",
            i,
            "qa",
            "docqa",
            8,
            float(rewards[s, i]),
            0.3,
            float(rewards[s, i]),
            100.0,
            False,
            True,
        )
        for s in range(2)
        for i in range(examples)
    ]
    cfg = RetrospectiveConfig(ratio=0.25, seed=1)

    def ours_fn():
        table = example_difficulties([("phase1", records)])
        choose_carry(table, list(table), own_rows=examples, cfg=cfg, phase="phase2", phase_number=2)

    weights = 1.0 - rewards.mean(axis=0)
    ours = median_time(ours_fn, repeats=3)
    base = median_time(
        lambda: np.random.default_rng(1).choice(examples, size=examples // 4, replace=False, p=weights / weights.sum()),
        repeats=3,
    )
    ok = ours < 3.0
    print(f"retrospective draw, 100K ledger: {ours * 1000:8.1f} ms   (goal < 3 s)")
    print(f"numpy weighted draw, same k    : {base * 1000:8.1f} ms   ratio {ours / base:.2f}x")
    return ok


def main() -> int:
    results = [bench_ledger(), bench_sampler(), bench_retrospective()]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
