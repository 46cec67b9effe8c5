"""Stand-in for ``python -m verl.trainer.main_ppo`` in the ``qwenlong-verl train`` tests (QWENLONG_VERL_LAUNCHER).

It takes the very arguments ``train`` gives veRL (parsed with Hydra's own override parser) and leaves on disk
what a veRL run of the ``qwenlong`` trainer mode leaves:

* resume like veRL's ``resume_mode=auto``: start after the step in ``latest_checkpointed_iteration.txt``, from
  that checkpoint's weights, and cut the difficulty ledger back to that step (what ``QwenLongTrainer`` does);
* per step one ledger record per prompt of the batch (real :class:`DifficultyLedger`), rewards fixed by the
  example's index; weights "trained" by adding 1 to the embedding each step;
* at each ``save_freq`` step and the last, ``global_step_<N>/actor`` in veRL's FSDP layout (world size 1:
  ``model_world_size_1_rank_0.pt``, ``fsdp_config.json``, ``huggingface/``), which veRL's real model merger reads,
  then the tracker file.

``STANDIN_LOG`` (a file) gets one JSON line per launch. ``STANDIN_KILL=<phase>:<step>`` SIGKILLs the whole process
group (this script and ``qwenlong-verl train``) right after that step's ledger records — a node dying mid-phase;
``<phase>:end`` does it after the final checkpoint, before the process could report success.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path


def parse(argv: list[str]) -> dict:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = [a for a in argv if not a.startswith("--config-")]
    return {o.key_or_group: o.value() for o in OverridesParser.create().parse_overrides(overrides)}


def mean_reward(index: int) -> float:
    """0.0, 0.1, ... 1.0 over the indices: some examples hard, some solved (1.0)."""
    return ((index * 7) % 11) / 10


def load_weights(model: Path, ckpt_actor: Path | None):
    import torch

    if ckpt_actor is not None:
        return torch.load(ckpt_actor / "model_world_size_1_rank_0.pt", weights_only=True)
    weights = model / "model.safetensors"
    if weights.is_file():
        from safetensors.torch import load_file

        return {k: v.float() for k, v in load_file(weights).items()}
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model)).state_dict()


def save_checkpoint(ckpt: Path, step: int, state: dict, model: Path) -> None:
    import torch

    actor = ckpt / f"global_step_{step}" / "actor"
    (actor / "huggingface").mkdir(parents=True, exist_ok=True)
    torch.save(state, actor / "model_world_size_1_rank_0.pt")
    (actor / "fsdp_config.json").write_text(json.dumps({"FSDP_version": 1, "world_size": 1}))
    for item in model.iterdir():
        if item.is_file() and not item.name.endswith((".safetensors", ".bin", ".pt")):
            shutil.copy(item, actor / "huggingface" / item.name)
    (ckpt / "latest_checkpointed_iteration.txt").write_text(str(step))


def main() -> int:
    from qwenlong_verl.common.tasks import task_label_of
    from qwenlong_verl.driver.retrospective import read_rows
    from qwenlong_verl.worker.curriculum.config import LEDGER_FILE
    from qwenlong_verl.worker.curriculum.ledger import DifficultyLedger, LedgerRecord

    cfg = parse(sys.argv[1:])
    if cfg.get("trainer.resume_mode") != "auto":
        print("stand-in: train must pass trainer.resume_mode=auto", file=sys.stderr)
        return 4
    ckpt = Path(cfg["trainer.default_local_dir"])
    model = Path(cfg["actor_rollout_ref.model.path"])
    if not (model / "config.json").is_file():
        print(f"stand-in: model {model} has no config.json", file=sys.stderr)
        return 3
    phase, number = cfg["qwenlong.curriculum.phase"], int(cfg["qwenlong.curriculum.phase_number"])
    total, save_freq = int(cfg["trainer.total_training_steps"]), int(cfg["trainer.save_freq"])
    batch, n = int(cfg["data.train_batch_size"]), int(cfg["actor_rollout_ref.rollout.n"])
    tracker = ckpt / "latest_checkpointed_iteration.txt"
    start = int(tracker.read_text()) if tracker.is_file() else 0
    ledger = DifficultyLedger(ckpt / LEDGER_FILE)
    ledger.truncate_after(start)
    state = load_weights(model, ckpt / f"global_step_{start}" / "actor" if start else None)
    first = sorted(state)[0]
    rows = read_rows(cfg["data.train_files"])
    with open(os.environ["STANDIN_LOG"], "a") as log:
        entry = {
            "phase": phase,
            "start": start,
            "model": str(model),
            "checksum": float(state[first].float().sum()),
            "rows": len(rows),
            "indices": sorted(r["extra_info"]["index"] for r in rows),
            "train_files": list(cfg["data.train_files"]),
        }
        log.write(json.dumps(entry) + "\n")
    kill = os.environ.get("STANDIN_KILL", "")
    for step in range(start + 1, total + 1):
        records = []
        for k in range(batch):
            row = rows[((step - 1) * batch + k) % len(rows)]
            info = row["extra_info"]
            reward = mean_reward(info["index"])
            records.append(
                LedgerRecord(
                    phase=phase,
                    step=step,
                    uid=f"{phase}-{step}-{k}",
                    index=info["index"],
                    task=task_label_of(row["data_source"], info),
                    data_source=row["data_source"],
                    n=n,
                    mean_reward=reward,
                    reward_std=0.0 if reward in (0.0, 1.0) else 0.5,
                    pass_rate=reward,
                    mean_response_length=100.0,
                    retro=info.get("phase") is not None and info["phase"] < number,
                    trained=True,
                )
            )
        ledger.append(records)
        if kill == f"{phase}:{step}":
            os.killpg(os.getpgrp(), signal.SIGKILL)
        state[first] = state[first] + 1.0
        if save_freq > 0 and (step % save_freq == 0 or step == total):
            save_checkpoint(ckpt, step, state, model)
    if kill == f"{phase}:end":
        os.killpg(os.getpgrp(), signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
