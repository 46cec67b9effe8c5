"""The plugin's cost per real veRL step, on the CPU backend (tiny answers model, same seed, model and data):

* ``trainer.v1.trainer_mode=qwenlong`` with the difficulty ledger, task-balanced batches, the task-norm advantage,
  negative-gradient clipping and AEPO, against
* veRL's plain ``sync`` trainer mode with GRPO (the baseline, measured in the same run),

interleaved (qwenlong, sync, qwenlong, sync, ...). Each run trains ``STEPS`` steps; step 1 (warm-up) is left out.
Task balance draws other prompts than veRL's sampler, so every stage is compared per 1K tokens of the step
(``perf/total_num_tokens``) as well as raw. Goal: the whole step at most 1.03x the baseline per token.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROUNDS = 2
STEPS = 3
GOAL = 1.03
STAGES = ("gen", "old_log_prob", "adv", "update_actor", "step")

COMMON = [
    "--config-path=pkg://qwenlong_verl.hydra_configs",
    "--config-name=qwenlong_cpu",
    "data.max_prompt_length=2048",
    "data.max_response_length=8",
    "data.train_batch_size=3",
    "actor_rollout_ref.rollout.n=4",
    "actor_rollout_ref.actor.ppo_mini_batch_size=3",
    f"trainer.total_training_steps={STEPS}",
    "trainer.save_freq=-1",
    "trainer.test_freq=-1",
    "trainer.val_before_train=false",
    "trainer.logger=[console,file]",
    "reward.reward_kwargs.overlong_buffer_cfg.len=6",
]
MODES = {
    "qwenlong": [
        "trainer.v1.trainer_mode=qwenlong",
        "algorithm.adv_estimator=grpo_task_norm",
        "qwenlong.algos.task_norm_std=task",
        "qwenlong.curriculum.task_balance=true",
        "qwenlong.algos.neg_clip_mode=token",
        "qwenlong.algos.neg_clip_token_entropy=2.0",
        "qwenlong.algos.aepo_enable=true",
        "qwenlong.algos.aepo_h_low=0.3",
        "qwenlong.algos.aepo_h_high=0.9",
    ],
    "sync": ["trainer.v1.trainer_mode=sync", "algorithm.adv_estimator=grpo"],
}


def setup(work: Path) -> tuple[Path, Path]:
    from qwenlong_verl.driver.data.prepare import prepare
    from qwenlong_verl.driver.data.synth import synth
    from qwenlong_verl.driver.data.tiny_model import write_tiny_model

    model = write_tiny_model(work / "model", seed=0, answers=True)
    synth(work / "synth.jsonl", n=18, min_tokens=1500, max_tokens=2000, seed=0)
    stats = prepare([str(work / "synth.jsonl")], str(work / "data"), tokenizer="builtin", phases=[2048], plot=False)
    return model, Path(stats.phase_files[0])


def run(mode: str, index: int, model: Path, data: Path, work: Path) -> list[dict]:
    log = work / f"{mode}-{index}.jsonl"
    env = {**os.environ, "VERL_PLATFORM": "cpu", "VERL_FILE_LOGGER_PATH": str(log)}
    argv = [
        sys.executable,
        "-m",
        "verl.trainer.main_ppo",
        *COMMON,
        f"actor_rollout_ref.model.path={model}",
        f"data.train_files=[{data}]",
        f"data.val_files=[{data}]",
        f"trainer.default_local_dir={work / f'ckpt-{mode}-{index}'}",
        *MODES[mode],
    ]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "stop", "--force"], capture_output=True)
    if proc.returncode:
        raise RuntimeError(f"{mode} run {index} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [line["data"] for line in lines if line["step"] > 1]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model, data = setup(work)
        steps: dict[str, list[dict]] = {mode: [] for mode in MODES}
        for index in range(ROUNDS):
            for mode in MODES:
                steps[mode] += run(mode, index, model, data, work)
    ok = True
    print(f"{'stage':<14}{'qwenlong s':>12}{'sync s':>10}{'ratio':>8}{'per 1K tok':>12}")
    for stage in STAGES:
        key = f"timing_s/{stage}"
        raw = {m: statistics.median(s[key] for s in steps[m]) for m in MODES}
        per_tok = {m: statistics.median(1000 * s[key] / s["perf/total_num_tokens"] for s in steps[m]) for m in MODES}
        ratio, ratio_tok = raw["qwenlong"] / raw["sync"], per_tok["qwenlong"] / per_tok["sync"]
        print(f"{stage:<14}{raw['qwenlong']:>12.3f}{raw['sync']:>10.3f}{ratio:>8.2f}{ratio_tok:>12.2f}")
        if stage == "step" and ratio_tok > GOAL:
            ok = False
    ledger = statistics.median(s.get("timing_s/qwenlong_ledger", 0.0) for s in steps["qwenlong"])
    print(f"ledger stage: {1000 * ledger:.1f} ms per step (median over {len(steps['qwenlong'])} steps)")
    print(f"goal: whole step per 1K tokens <= {GOAL}x the sync baseline: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
