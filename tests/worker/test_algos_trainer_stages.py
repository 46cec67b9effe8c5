"""The trainer-stage mixin on veRL's real v1 trainer stages, against a real in-process TransferQueue.

veRL's ``PPOTrainerSync`` is composed with :class:`LongContextAlgoStages` exactly as the ``qwenlong``
trainer mode does; batches are put into a local TransferQueue (Ray, CPU) the way veRL's agent loop puts
them, padded by veRL's own ``upsample_batch_to_divisible_size``. Stage tests run on a minimal composition
(mixin + ``PPOTrainerSync``) and, where it matters, on the shipped ``QwenLongTrainer`` with every stage of
the project. The one thing a CPU test cannot have is the GPU actor worker group: :class:`CpuActorWorkerGroup`
takes its place for ``update_actor`` (it records the advantages it would train on, read from TransferQueue
at call time) and for checkpoint save/load.
"""

from __future__ import annotations

import json
import os
import uuid

import numpy as np
import pytest
import torch
from support.task_norm import reference

from qwenlong_verl.driver.compose import compose

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.usefixtures("transfer_queue"),
]  # a local TransferQueue

tq = pytest.importorskip("transfer_queue")


class CpuActorWorkerGroup:
    """Stand-in for the GPU actor worker group: records what ``update_actor`` would train on."""

    def __init__(self):
        self.trained_on: list[torch.Tensor] = []
        self.saved: list[str] = []
        self.loaded: list[str] = []
        self.state_file_seen_at_save: list[bool] = []

    def update_actor(self, batch):
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["advantages"])
        self.trained_on.append(data.to_padded_tensor()["advantages"].clone())
        return {"metrics": {"mfu": [0.0], "pg_loss": [0.25]}}

    def save_checkpoint(self, local_path, remote_path, global_steps, max_ckpt_to_keep=None):
        folder = os.path.dirname(local_path)
        self.state_file_seen_at_save.append(os.path.exists(os.path.join(folder, "qwenlong_algos.json")))
        os.makedirs(local_path, exist_ok=True)
        self.saved.append(local_path)

    def load_checkpoint(self, local_path, del_local_after_load=False):
        self.loaded.append(local_path)


def make_trainer(tmp_path, *overrides, real=False):
    """veRL's sync trainer with our mixin; ``real=True``: the shipped ``QwenLongTrainer`` (all our stages)."""
    from torchdata.stateful_dataloader import StatefulDataLoader
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

    from qwenlong_verl.worker.algos.trainer_stages import LongContextAlgoStages

    if real:
        from qwenlong_verl.worker.trainer import QwenLongTrainer as Trainer
    else:

        class Trainer(LongContextAlgoStages, PPOTrainerSync):
            pass

    config = compose(
        "qwenlong_l1",
        [
            "actor_rollout_ref.model.path=/m",
            "data.train_files=[a]",
            f"trainer.default_local_dir={tmp_path / 'ckpt'}",
            "trainer.resume_mode=auto",
            *overrides,
        ],
    )
    trainer = Trainer(config)
    trainer.actor_rollout_wg = CpuActorWorkerGroup()
    trainer.train_dataloader = StatefulDataLoader(list(range(16)), batch_size=4)
    trainer.global_steps = 1
    return trainer


GROUPS = [  # (data_source, extra_info, rewards of the 4 responses)
    ("hotpotqa", {"index": 10, "task": "qa"}, [1.0, 0.0, 1.0, 1.0]),
    ("musique", {"index": 11, "task": "qa"}, [0.0, 0.0, 1.0, 0.0]),
    ("docmath_test", {"index": 12}, [0.2, 0.9, 0.9, 0.4]),  # task from data_source: numeric
    ("long_toc_choices_1", {"index": 13, "task": "choice"}, [1.0, 1.0, 1.0, 1.0]),
]


def put_batch(entropy_level=1.0, with_entropy=True, seed=0):
    """Rows as veRL's agent loop stores them, plus what old-log-prob wrote; padded to a multiple of 24."""
    from transfer_queue import KVBatchMeta
    from verl.trainer.ppo.padding_utils import upsample_batch_to_divisible_size
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    gen = torch.Generator().manual_seed(seed)
    rows, keys, tags, expected = [], [], [], []
    for source, info, rewards in GROUPS:
        uid = str(uuid.uuid4())
        for session, reward in enumerate(rewards):
            n = 3 + (session * 2 + len(rows)) % 5
            prompts = torch.arange(1, 7)
            responses = torch.arange(10, 10 + n)
            rm_scores = torch.zeros(n)
            rm_scores[-1] = reward
            row = {
                "uid": uid,
                "data_source": source,
                "extra_info": dict(info),
                "reward_model": {"ground_truth": "x"},
                "prompts": prompts,
                "responses": responses,
                "input_ids": torch.cat([prompts, responses]),
                "attention_mask": torch.ones(6 + n, dtype=torch.int64),
                "position_ids": torch.arange(6 + n),
                "response_mask": torch.ones(n, dtype=torch.int64),
                "loss_mask": torch.ones(n, dtype=torch.int64),
                "rm_scores": rm_scores,
                "old_log_probs": -torch.rand(n, generator=gen),
            }
            if with_entropy:
                row["entropy"] = entropy_level * 2 * torch.rand(n, generator=gen)
            rows.append(row)
            keys.append(f"{uid}_{session}_0")
            tags.append({"status": "success", "prompt_len": 6, "response_len": n, "seq_len": 6 + n, "global_steps": 1})
            expected.append((uid, info.get("task") or "numeric", reward))
    tq.kv_batch_put(keys=keys, partition_id="train", fields=list_of_dict_to_tensordict(rows), tags=tags)
    batch = upsample_batch_to_divisible_size(KVBatchMeta(keys=keys, tags=tags, partition_id="train"), 24, 0)
    return batch, expected


def read(batch, field):
    return tq.kv_batch_get(keys=batch.keys, partition_id="train", select_fields=[field]).to_padded_tensor()[field]


def test_labels_from_transfer_queue():
    from qwenlong_verl.worker.algos.sample_labels import read_sample_labels

    batch, expected = put_batch()
    labels = read_sample_labels(batch)
    assert len(labels) == 24 and labels.is_padding.sum() == 8
    assert labels.task[:16].tolist() == [t for _, t, _ in expected]
    assert labels.task[16:].tolist() == [None] * 8
    assert labels.index[:16].tolist() == [10] * 4 + [11] * 4 + [12] * 4 + [13] * 4
    assert labels.uid[:16].tolist() == [u for u, _, _ in expected]
    tq.kv_clear(keys=batch.keys, partition_id="train")


@pytest.mark.parametrize("real", [False, True], ids=["mixin", "QwenLongTrainer"])
def test_compute_advantage_stage_task_norm(tmp_path, real):
    trainer = make_trainer(
        tmp_path, "algorithm.adv_estimator=grpo_task_norm", "trainer.v1.trainer_mode=qwenlong", real=real
    )
    batch, expected = put_batch()
    metrics = {}
    trainer._compute_advantage(batch, metrics)  # veRL's stage, our labels
    adv = read(batch, "advantages")
    mask = read(batch, "response_mask").float()
    uids = [u for u, _, _ in expected]
    tasks = [t for _, t, _ in expected]
    ref = reference([r for _, _, r in expected], uids, tasks)
    torch.testing.assert_close(adv[:16], torch.tensor(ref).unsqueeze(-1) * mask[:16], rtol=1e-6, atol=1e-6)
    assert torch.equal(adv[16:], torch.zeros_like(adv[16:]))  # veRL's padding rows
    assert metrics["qwenlong/task_samples/qa"] == 8.0
    assert metrics["qwenlong/task_samples/numeric"] == 4.0
    assert metrics["qwenlong/task_std/choice"] == 0.0
    tq.kv_clear(keys=batch.keys, partition_id="train")


def test_compute_advantage_stage_leaves_other_estimators_to_veRL(tmp_path):
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    trainer = make_trainer(tmp_path, "algorithm.adv_estimator=grpo")
    batch, expected = put_batch()
    metrics = {}
    trainer._compute_advantage(batch, metrics)
    assert not any(k.startswith("qwenlong/") for k in metrics)
    rewards = read(batch, "rm_scores")
    mask = read(batch, "response_mask")
    uids = np.array(tq.kv_batch_get(keys=batch.keys, partition_id="train", select_fields=["uid"]).get("uid").tolist())
    veRL_adv, _ = compute_grpo_outcome_advantage(rewards, mask, uids.astype(object))
    torch.testing.assert_close(read(batch, "advantages"), veRL_adv)
    tq.kv_clear(keys=batch.keys, partition_id="train")


@pytest.mark.parametrize("real", [False, True], ids=["mixin", "QwenLongTrainer"])
def test_update_actor_masks_in_transfer_queue_before_veRL_updates(tmp_path, real):
    from qwenlong_verl.worker.algos.entropy_mask import mask_negative_gradients

    trainer = make_trainer(
        tmp_path,
        "trainer.v1.trainer_mode=qwenlong",
        "qwenlong.algos.neg_clip_mode=token",
        "qwenlong.algos.neg_clip_token_entropy=1.2",
        real=real,
    )
    batch, _ = put_batch()
    metrics = {}
    trainer._compute_advantage(batch, metrics)
    before = read(batch, "advantages")
    entropy = read(batch, "entropy")
    mask = read(batch, "response_mask")
    expected = mask_negative_gradients(before, entropy, mask, mode="token", token_threshold=1.2)
    assert expected.dropped.any()

    trainer._update_actor(batch, metrics)
    trained = trainer.actor_rollout_wg.trained_on[-1]
    assert torch.equal(trained, expected.advantages)  # the worker saw the masked advantages
    assert torch.equal(trained[expected.dropped], torch.zeros(int(expected.dropped.sum())))
    assert metrics["actor/pg_loss"] == 0.25  # veRL's own _update_actor ran after ours
    assert metrics["qwenlong/masked_share"] == pytest.approx(float(expected.dropped.sum() / mask.sum()))
    assert metrics["qwenlong/entropy"] == pytest.approx(expected.metrics["qwenlong/entropy"])
    assert "qwenlong/aepo_active" not in metrics
    tq.kv_clear(keys=batch.keys, partition_id="train")


def test_masking_off_leaves_advantages_untouched(tmp_path):
    trainer = make_trainer(tmp_path)
    batch, _ = put_batch()
    metrics = {}
    trainer._compute_advantage(batch, metrics)
    before = read(batch, "advantages")
    trainer._update_actor(batch, metrics)
    assert torch.equal(trainer.actor_rollout_wg.trained_on[-1], before)
    assert not any(k.startswith("qwenlong/") for k in metrics)
    tq.kv_clear(keys=batch.keys, partition_id="train")


AEPO = ("qwenlong.algos.aepo_enable=true", "qwenlong.algos.aepo_h_low=0.6", "qwenlong.algos.aepo_h_high=1.5")


def aepo_step(trainer, entropy_level, seed):
    batch, _ = put_batch(entropy_level=entropy_level, seed=seed)
    metrics = {}
    trainer._compute_advantage(batch, metrics)
    before = read(batch, "advantages")
    trainer._update_actor(batch, metrics)
    trained = trainer.actor_rollout_wg.trained_on[-1]
    tq.kv_clear(keys=batch.keys, partition_id="train")
    negatives_dropped = bool((before < 0).any()) and not bool((trained < 0).any())
    return negatives_dropped, metrics


@pytest.mark.parametrize("real", [False, True], ids=["mixin", "QwenLongTrainer"])
def test_aepo_state_across_steps_and_checkpoint_resume(tmp_path, real):
    trainer = make_trainer(tmp_path, "trainer.v1.trainer_mode=qwenlong", *AEPO, real=real)
    # batch entropy ~ entropy_level (token entropies uniform in [0, 2*level])
    dropped, m = aepo_step(trainer, 1.0, seed=1)  # inside the band, starts off
    assert not dropped and m["qwenlong/aepo_active"] == 0.0
    dropped, m = aepo_step(trainer, 2.0, seed=2)  # above h_high: on
    assert dropped and m["qwenlong/aepo_active"] == 1.0 and m["qwenlong/masked_response_share"] > 0
    dropped, m = aepo_step(trainer, 1.0, seed=3)  # back in the band: stays on (hysteresis)
    assert dropped and m["qwenlong/aepo_active"] == 1.0

    trainer.global_steps = 3
    trainer._save_checkpoint()  # ours, then veRL's
    folder = tmp_path / "ckpt" / "global_step_3"
    assert trainer.actor_rollout_wg.state_file_seen_at_save == [True]  # written before veRL's save began
    assert (tmp_path / "ckpt" / "latest_checkpointed_iteration.txt").read_text() == "3"
    state = json.loads((folder / "qwenlong_algos.json").read_text())
    assert state["aepo"]["active"] is True and state["aepo"]["switches"] == 1

    resumed = make_trainer(tmp_path, "trainer.v1.trainer_mode=qwenlong", *AEPO, real=real)
    resumed._load_checkpoint()  # veRL finds global_step_3, we restore AEPO from it
    assert resumed.global_steps == 3 and resumed.actor_rollout_wg.loaded == [str(folder / "actor")]
    assert resumed.aepo.active is True
    dropped, m = aepo_step(resumed, 1.0, seed=4)  # still on after resume, in the band
    assert dropped and m["qwenlong/aepo_switches"] == 1.0
    dropped, m = aepo_step(resumed, 0.2, seed=5)  # below h_low: off
    assert not dropped and m["qwenlong/aepo_active"] == 0.0

    fresh = make_trainer(tmp_path / "other", "trainer.v1.trainer_mode=qwenlong", *AEPO, real=real)
    fresh._load_checkpoint()  # nothing to resume: starts off
    assert fresh.global_steps == 0 and fresh.aepo.active is False


def test_missing_entropy_fails_clearly(tmp_path):
    trainer = make_trainer(tmp_path, "trainer.v1.trainer_mode=qwenlong", *AEPO)
    batch, _ = put_batch(with_entropy=False)
    metrics = {}
    trainer._compute_advantage(batch, metrics)
    with pytest.raises(RuntimeError, match="TransferQueue has no entropy.*bypass_mode"):
        trainer._update_actor(batch, metrics)
    assert trainer.actor_rollout_wg.trained_on == []
    tq.kv_clear(keys=batch.keys, partition_id="train")


RELATIVE = (
    "trainer.v1.trainer_mode=qwenlong",
    "qwenlong.algos.aepo_enable=true",
    "qwenlong.algos.aepo_threshold_mode=relative",
    "qwenlong.algos.aepo_warmup_steps=2",
    "qwenlong.algos.aepo_h_low=0.6",
    "qwenlong.algos.aepo_h_high=1.5",
)


@pytest.mark.parametrize("real", [False, True], ids=["mixin", "QwenLongTrainer"])
def test_relative_aepo_warmup_thresholds_hysteresis_and_resume(tmp_path, real, caplog):
    trainer = make_trainer(tmp_path, *RELATIVE, real=real)
    # warm-up step 1: AEPO off even at a high entropy; the reference starts accumulating
    dropped, m1 = aepo_step(trainer, 1.4, seed=11)
    assert not dropped and m1["qwenlong/aepo_warmup"] == 1.0 and m1["qwenlong/aepo_active"] == 0.0
    assert "qwenlong/aepo_h_low" not in m1
    trainer.global_steps = 1
    trainer._save_checkpoint()  # a checkpoint in the middle of the warm-up

    resumed = make_trainer(tmp_path, *RELATIVE, real=real)
    resumed._load_checkpoint()
    assert resumed.global_steps == 1 and resumed.aepo.warming_up and resumed.aepo.warmup.count == 1
    with caplog.at_level("INFO", logger="qwenlong_verl.worker.algos.entropy_mask"):
        dropped, m2 = aepo_step(resumed, 0.6, seed=12)  # warm-up step 2 completes the reference
    assert not dropped and m2["qwenlong/aepo_warmup"] == 1.0
    reference = (m1["qwenlong/entropy"] + m2["qwenlong/entropy"]) / 2  # both steps, across the resume
    assert m2["qwenlong/aepo_reference"] == pytest.approx(reference)
    assert m2["qwenlong/aepo_h_low"] == pytest.approx(0.6 * reference)
    assert m2["qwenlong/aepo_h_high"] == pytest.approx(1.5 * reference)
    assert caplog.text.count("AEPO thresholds measured") == 1  # logged once, when derived

    # afterwards: hysteresis on the derived bounds (reference ~1.0 nats: band ~0.6-1.5)
    dropped, m3 = aepo_step(resumed, 2.0, seed=13)
    assert dropped and m3["qwenlong/aepo_active"] == 1.0 and m3["qwenlong/aepo_warmup"] == 0.0
    assert m3["qwenlong/entropy"] > m3["qwenlong/aepo_h_high"]
    assert m3["qwenlong/aepo_h_high"] == m2["qwenlong/aepo_h_high"]  # frozen
    dropped, m4 = aepo_step(resumed, 1.0, seed=14)  # inside the band: stays on
    assert dropped and m4["qwenlong/aepo_active"] == 1.0
    resumed.global_steps = 4
    resumed._save_checkpoint()
    state = json.loads((tmp_path / "ckpt" / "global_step_4" / "qwenlong_algos.json").read_text())
    assert state["version"] == 2 and state["aepo"]["warmup"]["reference"] == pytest.approx(reference)

    again = make_trainer(tmp_path, *RELATIVE, real=real)
    again._load_checkpoint()  # the reference and the switch come back with the step
    assert again.global_steps == 4 and not again.aepo.warming_up and again.aepo.active is True
    assert again.aepo.h_high == pytest.approx(m2["qwenlong/aepo_h_high"])
    dropped, m5 = aepo_step(again, 1.0, seed=15)  # no new warm-up: still on in the band
    assert dropped and m5["qwenlong/aepo_warmup"] == 0.0 and m5["qwenlong/aepo_switches"] == 1.0
    dropped, m6 = aepo_step(again, 0.2, seed=16)  # below h_low: negatives return
    assert not dropped and m6["qwenlong/aepo_active"] == 0.0 and m6["qwenlong/aepo_switches"] == 2.0


FIVE_LABEL_GROUPS = [  # five task labels over two answer types, as `synth --labels` writes them
    ("qwenlong_synth_numeric", {"index": 20, "task": "numerical", "answer_type": "numeric"}, [1.0, 0.0, 1.0, 0.0]),
    ("qwenlong_synth_qa", {"index": 21, "task": "multi_hop", "answer_type": "qa"}, [0.0, 0.0, 0.0, 1.0]),
    ("qwenlong_synth_numeric", {"index": 22, "task": "temporal", "answer_type": "numeric"}, [0.2, 0.4, 0.6, 0.8]),
    ("qwenlong_synth_qa", {"index": 23, "task": "niah", "answer_type": "qa"}, [1.0, 1.0, 1.0, 0.0]),
    ("qwenlong_synth_numeric", {"index": 24, "task": "counting", "answer_type": "numeric"}, [0.5, 0.5, 0.5, 0.5]),
]


def test_compute_advantage_stage_normalises_and_reports_each_task_label(tmp_path, monkeypatch):
    """Rows carrying five task labels: five task-std groups in veRL's stage and a metric family per label."""
    monkeypatch.setitem(globals(), "GROUPS", FIVE_LABEL_GROUPS)
    trainer = make_trainer(tmp_path, "algorithm.adv_estimator=grpo_task_norm", "trainer.v1.trainer_mode=qwenlong")
    batch, expected = put_batch()
    metrics = {}
    trainer._compute_advantage(batch, metrics)
    adv, mask = read(batch, "advantages"), read(batch, "response_mask").float()
    uids, tasks = [u for u, _, _ in expected], [t for _, t, _ in expected]
    ref = reference([r for _, _, r in expected], uids, tasks)
    torch.testing.assert_close(adv[:20], torch.tensor(ref).unsqueeze(-1) * mask[:20], rtol=1e-6, atol=1e-6)
    labels = ["numerical", "multi_hop", "temporal", "niah", "counting"]
    assert sorted(k.rsplit("/", 1)[1] for k in metrics if k.startswith("qwenlong/task_samples/")) == sorted(labels)
    assert all(metrics[f"qwenlong/task_samples/{label}"] == 4.0 for label in labels)
    assert metrics["qwenlong/task_std/counting"] == 0.0 and metrics["qwenlong/task_std/temporal"] > 0
    tq.kv_clear(keys=batch.keys, partition_id="train")
