"""Task-specific advantage for 8192 responses (goal: <= 5 ms), next to baselines measured in the same run.

The batch is the paper's shape: 1024 prompts x 8 responses, three tasks, outcome rewards on the last token.
Contenders, each called exactly as veRL calls a registered estimator (token-level rewards in, token-level
advantages out):

* ``grpo_task_norm`` — ours, from veRL's ``ADV_ESTIMATOR_REGISTRY``;
* veRL's ``grpo`` — its per-sample Python loop (the estimator QwenLong's reference snippet extends);
* veRL's ``grpo_vectorized`` — for scale: plain GRPO, vectorised, without task statistics;
* a straightforward Python-loop task-norm (dicts of lists, one pass per sample), as the reference computes it.

The response width is 256 tokens: every estimator ends with the same ``(n,1) * response_mask`` broadcast, so
width adds the same cost to all of them; the scalar part alone is printed too. Timings are medians over
repeated calls with one torch thread (the machine may be shared; tensors this small do not use more).
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from collections import defaultdict

import numpy as np
import torch

N_PROMPTS, N_PER_PROMPT, WIDTH = 1024, 8, 256
GOAL_MS = 5.0


def make_batch(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    n = N_PROMPTS * N_PER_PROMPT
    uids = np.array([str(uuid.UUID(int=p + 1)) for p in range(N_PROMPTS) for _ in range(N_PER_PROMPT)], dtype=object)
    tasks = np.array([("qa", "numeric", "choice")[p % 3] for p in range(N_PROMPTS) for _ in range(N_PER_PROMPT)])
    tasks = tasks.astype(object)
    lengths = torch.randint(16, WIDTH + 1, (n,), generator=gen)
    mask = (torch.arange(WIDTH).unsqueeze(0) < lengths.unsqueeze(1)).float()
    rewards = torch.zeros(n, WIDTH)
    rewards[torch.arange(n), lengths - 1] = torch.randint(0, 3, (n,), generator=gen).float() / 2
    return rewards, mask, uids, tasks


def loop_task_norm(token_level_rewards, response_mask, index, task, epsilon=1e-6):
    """The straightforward per-sample implementation (same definition as ours)."""
    scores = token_level_rewards.sum(dim=-1)
    by_group, by_task = defaultdict(list), defaultdict(list)
    with torch.no_grad():
        for i in range(scores.shape[0]):
            by_group[index[i]].append(scores[i])
            by_task[task[i]].append(scores[i])
        group_mean = {g: torch.stack(v).mean() for g, v in by_group.items()}
        task_std = {t: torch.stack(v).std() if len(v) > 1 else torch.tensor(0.0) for t, v in by_task.items()}
        out = torch.zeros_like(scores)
        for i in range(scores.shape[0]):
            out[i] = (scores[i] - group_mean[index[i]]) / (task_std[task[i]] + epsilon)
    advantages = out.unsqueeze(-1) * response_mask
    return advantages, advantages


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> int:
    torch.set_num_threads(1)
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn

    import qwenlong_verl.worker.plugin  # noqa: F401  (registers grpo_task_norm, as `import verl` does)
    from qwenlong_verl.worker.algos.entropy_mask import AepoController, mask_negative_gradients
    from qwenlong_verl.worker.algos.task_norm import task_norm_advantage

    rewards, mask, uids, tasks = make_batch()
    n = rewards.shape[0]
    ours_fn = get_adv_estimator_fn("grpo_task_norm")
    grpo = get_adv_estimator_fn("grpo")
    grpo_vec = get_adv_estimator_fn("grpo_vectorized")

    ours, _ = ours_fn(rewards, mask, index=uids, task=tasks)
    slow, _ = loop_task_norm(rewards, mask, uids, tasks)
    if not torch.allclose(ours, slow, rtol=1e-5, atol=1e-5):
        print("ERROR: grpo_task_norm and the loop reference disagree")
        return 1

    scores = rewards.sum(-1)
    figures = {
        "grpo_task_norm (ours)": median_ms(lambda: ours_fn(rewards, mask, index=uids, task=tasks), 50),
        "  scalar part only": median_ms(lambda: task_norm_advantage(scores, uids, tasks), 50),
        "veRL grpo (loop)": median_ms(lambda: grpo(token_level_rewards=rewards, response_mask=mask, index=uids), 5),
        "veRL grpo_vectorized": median_ms(
            lambda: grpo_vec(token_level_rewards=rewards, response_mask=mask, index=uids), 30
        ),
        "python-loop task-norm": median_ms(lambda: loop_task_norm(rewards, mask, uids, tasks), 5),
    }
    ours_ms = figures["grpo_task_norm (ours)"]
    print(f"{n} responses ({N_PROMPTS} prompts x {N_PER_PROMPT}), 3 tasks, width {WIDTH}; median ms, 1 thread")
    for name, ms in figures.items():
        ratio = "" if name.startswith(("grpo_task_norm", " ")) else f"   ours is {ms / ours_ms:6.1f}x faster"
        print(f"  {name:<24}: {ms:8.2f} ms{ratio}")

    entropy = torch.rand(rewards.shape) * mask
    masking_ms = median_ms(
        lambda: mask_negative_gradients(
            ours, entropy, mask, mode="token", token_threshold=0.9, aepo=AepoController(h_low=0.2, h_high=0.4)
        ),
        20,
    )
    print(f"  (info) clipping + AEPO masking of the same batch: {masking_ms:.2f} ms")

    ok = ours_ms <= GOAL_MS
    print(f"grpo_task_norm: {ours_ms:.2f} ms for {n} responses (goal <= {GOAL_MS} ms): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
