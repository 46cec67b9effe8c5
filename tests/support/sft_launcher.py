"""Stand-in for ``torchrun ... -m verl.trainer.sft_trainer`` in the SFT ``train`` tests (QWENLONG_VERL_LAUNCHER).

veRL's SFT trainer needs a GPU platform; this takes the very arguments ``train`` gives it and does, on CPU, what
the run depends on and leaves what it leaves:

* composes the config with Hydra from ``--config-path`` / ``--config-name`` and the overrides (as veRL's
  ``@hydra.main`` does), builds veRL's real ``HFModelConfig`` and reads every row through veRL's real
  ``MultiTurnSFTDataset`` (so a row longer than ``data.max_length`` fails as it would on the cluster);
* resumes like ``trainer.resume_mode=auto``: after the step in ``latest_checkpointed_iteration.txt``;
* at each ``save_freq`` step and the last: ``global_step_<N>/`` with a shard file and, since ``hf_model`` is in
  ``checkpoint.save_contents``, ``huggingface/`` with weights, config and tokenizer (what veRL's FSDP checkpoint
  manager writes), keeping ``trainer.max_ckpt_to_keep`` folders, then the tracker file.

``STANDIN_LOG`` (a file) gets one JSON line per launch; ``STANDIN_FAIL_AFTER=<step>`` exits 1 after that step's
checkpoint (a crash).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path


def compose(argv: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    path = next(a.split("=", 1)[1] for a in argv if a.startswith("--config-path="))
    name = next(a.split("=", 1)[1] for a in argv if a.startswith("--config-name="))
    overrides = [a for a in argv if not a.startswith("--config-")]
    with initialize_config_module(path.removeprefix("pkg://"), version_base=None):
        return hydra_compose(name, overrides=overrides)


def main() -> int:
    import torch
    from transformers import AutoModelForCausalLM
    from verl.utils.config import omega_conf_to_dataclass
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    cfg = compose(sys.argv[1:])
    model_config = omega_conf_to_dataclass(cfg.model)
    dataset = MultiTurnSFTDataset(list(cfg.data.train_files), model_config.tokenizer, cfg.data)
    for i in range(len(dataset)):
        dataset[i]
    per_epoch = len(dataset) // int(cfg.data.train_batch_size)
    total = cfg.trainer.total_training_steps or per_epoch * int(cfg.trainer.total_epochs)

    ckpt = Path(cfg.trainer.default_local_dir)
    tracker = ckpt / "latest_checkpointed_iteration.txt"
    start = int(tracker.read_text()) if cfg.trainer.resume_mode == "auto" and tracker.is_file() else 0
    if os.environ.get("STANDIN_LOG"):
        with open(os.environ["STANDIN_LOG"], "a") as log:
            log.write(json.dumps({"start": start, "total": total, "rows": len(dataset)}) + "\n")

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(
        model_config.hf_config, attn_implementation="eager"
    )  # no flash-attn on CPU
    fail_after = int(os.environ.get("STANDIN_FAIL_AFTER", "0"))
    for step in range(start + 1, total + 1):
        if step % int(cfg.trainer.save_freq) and step != total:
            continue
        folder = ckpt / f"global_step_{step}"
        folder.mkdir(parents=True, exist_ok=True)
        torch.save({"step": step}, folder / "model_world_size_1_rank_0.pt")
        if "hf_model" in cfg.checkpoint.save_contents:
            model.save_pretrained(folder / "huggingface")
            model_config.tokenizer.save_pretrained(folder / "huggingface")
        keep = cfg.trainer.max_ckpt_to_keep
        if keep:
            steps = sorted(int(p.name.split("_")[-1]) for p in ckpt.glob("global_step_*"))
            for old in steps[:-keep]:
                shutil.rmtree(ckpt / f"global_step_{old}")
        tracker.write_text(str(step))
        if step == fail_after:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
