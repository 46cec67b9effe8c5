"""CPU stand-ins for the GPU side of a veRL v1 run, so the ``qwenlong`` trainer mode runs veRL's real loop.

Everything veRL owns runs for real: Hydra config, ``QwenLongTrainer`` (veRL's ``PPOTrainerSync``), its
``RLHFDataset`` and ``StatefulDataLoader`` on prepared parquet with a real tokenizer, the ``ReplayBuffer`` with
DAPO filtering and refills, the in-process TransferQueue (Ray, CPU), advantage computation, ``fit``,
``_save_checkpoint`` (``data.pt``, ``latest_checkpointed_iteration.txt``) and ``_load_checkpoint``. What a CPU
cannot host is replaced, each by the smallest thing that honours veRL's contract:

* :class:`CpuRollout` — the agent-loop manager: writes each prompt's ``rollout.n`` trajectories into
  TransferQueue as ``AgentLoopWorkerTQ._agent_loop_postprocess`` does (the dataset row's fields beside the
  tensors), with rewards fixed by the example's index, then marks the prompt finished;
* :class:`CpuActorWorkerGroup` — the FSDP actor: log-probs/entropy into TransferQueue, a no-op update, and
  checkpoint folders;
* :class:`CpuCheckpointEngine` — weight sync between actor and rollout replicas (nothing to sync on CPU).
"""

from __future__ import annotations

import os
import types
from pathlib import Path

import torch

ROLLOUT_N = 2


def reward_of(index: int, session: int) -> float:
    """Deterministic rewards: index % 3 == 0 all wrong, index % 5 == 1 all right, else one of two right."""
    if index % 3 == 0:
        return 0.0
    if index % 5 == 1:
        return 1.0
    return 1.0 if (index + session) % 2 == 0 else 0.0


def make_model_dir(path: Path) -> Path:
    """A local Hugging Face folder veRL's ``HFModelConfig`` accepts: tiny Qwen2 config + the builtin tokenizer."""
    from transformers import AutoTokenizer, Qwen2Config

    from qwenlong_verl.driver.data.tokenizer import builtin_tokenizer_path

    tok = AutoTokenizer.from_pretrained(builtin_tokenizer_path())
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=8192,
        architectures=["Qwen2ForCausalLM"],
        tie_word_embeddings=False,
    )
    path.mkdir(parents=True, exist_ok=True)
    cfg.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_prepared_data(out: Path, n: int = 60, phases=(2400, 4000)):
    """Synthetic examples (``synth``) split into phase parquet files by ``prepare``, the builtin tokenizer."""
    from qwenlong_verl.driver.data.prepare import prepare
    from qwenlong_verl.driver.data.synth import synth

    raw = out / "raw.jsonl"
    synth(raw, n=n, min_tokens=1500, max_tokens=3500, seed=0)
    return prepare([str(raw)], str(out / "data"), tokenizer="builtin", phases=list(phases), plot=False)


class CpuRollout:
    """Agent-loop manager stand-in: trajectories into TransferQueue the way veRL's agent loop writes them."""

    def __init__(self, fail_at_step: int | None = None):
        self.fail_at_step = fail_at_step
        self.submitted: list[tuple[int, int]] = []
        """(global_steps, extra_info.index) of every prompt dispatched for generation."""

    def generate_sequences(self, batch) -> None:
        import transfer_queue as tq
        from tensordict import NonTensorData, NonTensorStack
        from verl.utils.tensordict_utils import list_of_dict_to_tensordict

        for i in range(len(batch)):
            prompt = {}
            for key, value in batch.items():  # as AgentLoopWorkerTQ.generate_sequences unpacks a row
                if isinstance(value, torch.Tensor):
                    prompt[key] = value[i]
                elif isinstance(value, NonTensorStack):
                    prompt[key] = value[i].data
                elif isinstance(value, NonTensorData):
                    prompt[key] = value.data
            step = int(prompt["global_steps"])
            if self.fail_at_step is not None and step >= self.fail_at_step:
                raise RuntimeError(f"rollout lost at step {step} (simulated crash)")
            uid, index = prompt["uid"], int(prompt["extra_info"]["index"])
            self.submitted.append((step, index))
            keys, fields, tags = [], [], []
            for session in range(ROLLOUT_N):
                reward = reward_of(index, session)
                n_resp = 3 + (index + session) % 4
                prompts = torch.arange(1, 9)
                responses = torch.arange(20, 20 + n_resp)
                rm_scores = torch.zeros(n_resp)
                rm_scores[-1] = reward
                input_ids = torch.cat([prompts, responses])
                field = {
                    "prompts": prompts,
                    "responses": responses,
                    "response_mask": torch.ones(n_resp, dtype=torch.int64),
                    "loss_mask": torch.ones(n_resp, dtype=torch.int64),
                    "input_ids": input_ids,
                    "attention_mask": torch.ones_like(input_ids),
                    "position_ids": torch.arange(len(input_ids)),
                    "rm_scores": rm_scores,
                    "rollout_log_probs": torch.full((n_resp,), -0.5),
                    "num_turns": 2,
                    "extra_fields": {
                        "reward_extra_info": {"acc": reward},
                        "min_global_steps": step,
                        "max_global_steps": step,
                    },
                    "session_id": session,
                    **{k: v for k, v in prompt.items() if k not in ("dummy_tensor", "prompt", "raw_prompt")},
                }
                keys.append(f"{uid}_{session}_0")
                fields.append(field)
                tags.append(
                    {
                        "status": "success",
                        "prompt_len": len(prompts),
                        "response_len": n_resp,
                        "seq_len": len(input_ids),
                        "global_steps": step,
                        "min_global_steps": step,
                        "max_global_steps": step,
                    }
                )
            tq.kv_batch_put(keys=keys, fields=list_of_dict_to_tensordict(fields), tags=tags, partition_id="train")
            tq.kv_put(key=uid, partition_id="train", tag={"status": "finished"})


class CpuActorWorkerGroup:
    """Actor worker-group stand-in: one data-parallel rank; log-probs into TransferQueue; checkpoint folders."""

    def __init__(self):
        self._dispatch_info: dict = {}
        self.updates = 0
        self.loaded: list[str] = []

    def _query_dispatch_info(self, role):
        return [0]

    def compute_log_prob(self, batch):
        import transfer_queue as tq
        from tensordict import TensorDict

        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["input_ids"])
        lengths = data["input_ids"].offsets().diff().tolist()
        log_probs = torch.nested.as_nested_tensor([-torch.full((n,), 0.5) for n in lengths], layout=torch.jagged)
        entropy = torch.nested.as_nested_tensor([torch.full((n,), 1.0) for n in lengths], layout=torch.jagged)
        fields = TensorDict({"log_probs": log_probs, "entropy": entropy}, batch_size=len(batch))
        tq.kv_batch_put(keys=batch.keys, partition_id=batch.partition_id, fields=fields)
        return batch

    def update_actor(self, batch):
        self.updates += 1
        return {"metrics": {"mfu": [0.0], "pg_loss": [0.0]}}

    def save_checkpoint(self, local_path, remote_path=None, global_steps=None, max_ckpt_to_keep=None):
        os.makedirs(local_path, exist_ok=True)
        Path(local_path, "cpu_standin.txt").write_text(f"step {global_steps}\n")

    def load_checkpoint(self, local_path, del_local_after_load=False):
        self.loaded.append(local_path)


class CpuCheckpointEngine:
    """Weight-sync stand-in: records the versions the rollout replicas would have been given."""

    def __init__(self):
        self.synced: list[int] = []

    def update_weights(self, global_steps=None):
        self.synced.append(global_steps)

    def sleep_replicas(self):
        return None


def clear_transfer_queue() -> None:
    """Forget every key (a crashed run's TransferQueue dies with it; the in-process one has to be emptied)."""
    import transfer_queue as tq

    for partition, items in (tq.kv_list() or {}).items():
        if items:
            tq.kv_clear(keys=list(items), partition_id=partition)


def build_trainer(config, rollout: CpuRollout | None = None):
    """``QwenLongTrainer`` set up as ``PPOTrainer._setup`` does, with the stand-ins in the GPU roles."""
    from verl.trainer.ppo.v1 import get_trainer_cls

    trainer = get_trainer_cls(config.trainer.v1.trainer_mode)(config)
    trainer._init_tokenizer()
    trainer._init_dataloader()
    trainer._init_dump_executor()
    trainer.resource_pool_manager = types.SimpleNamespace(get_n_gpus=lambda: 1)
    trainer.actor_rollout_wg = CpuActorWorkerGroup()
    trainer.reward_loop_manager = types.SimpleNamespace(reward_loop_worker_handles=[])  # rewards come with rollouts
    trainer.checkpoint_manager = CpuCheckpointEngine()
    trainer._load_checkpoint()
    trainer.on_init_end()
    trainer.agent_loop_manager = rollout or CpuRollout()
    return trainer
