"""The ``qwenlong`` v1 trainer mode on veRL's real trainer loop, on CPU.

Registered in veRL's ``TRAINER_REGISTRY`` through the plugin; runs veRL's synchronous code paths under its own
name; writes the ledger from batches shaped as veRL's agent loop writes them (real TransferQueue, veRL's padding),
including the groups DAPO's dynamic sampling discards; and, with the GPU roles stood in for
(``support.standins``), runs veRL's own ``fit``: task-balanced prompt stream, ledger, metrics, checkpoint
(``data.pt``) and an exact resume after a crash.
"""

from __future__ import annotations

import uuid
from collections import Counter

import numpy as np
import pytest
import torch
from support.standins import (
    ROLLOUT_N,
    CpuRollout,
    build_trainer,
    clear_transfer_queue,
    make_model_dir,
    make_prepared_data,
)

from qwenlong_verl.common.tasks import task_label_of
from qwenlong_verl.driver.compose import compose
from qwenlong_verl.worker.curriculum.ledger import DifficultyLedger, step_metrics

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

tq = pytest.importorskip("transfer_queue")
BATCH = 6


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A local tiny model folder and prepared phase files (60 synthetic examples, 20 of each task)."""
    root = tmp_path_factory.mktemp("stack")
    model = make_model_dir(root / "model")
    stats = make_prepared_data(root)
    files = stats.phase_files
    rows = {}
    import pyarrow.parquet as pq

    for f in files:
        for r in pq.read_table(f).to_pylist():
            rows[r["extra_info"]["index"]] = r
    return {"model": model, "files": files, "rows": rows}


def make_config(stack, ckpt, *extra):
    files = ",".join(stack["files"])
    return compose(
        "qwenlong_l1",
        [
            f"actor_rollout_ref.model.path={stack['model']}",
            f"data.train_files=[{files}]",
            f"data.val_files=[{files}]",
            "data.max_prompt_length=4000",
            "data.max_response_length=64",
            f"data.train_batch_size={BATCH}",
            "data.dataloader_num_workers=0",
            f"actor_rollout_ref.actor.ppo_mini_batch_size={BATCH}",
            f"actor_rollout_ref.rollout.n={ROLLOUT_N}",
            f"trainer.default_local_dir={ckpt}",
            "trainer.v1.trainer_mode=qwenlong",
            "trainer.total_training_steps=4",
            "trainer.save_freq=2",
            "trainer.test_freq=-1",
            "trainer.val_before_train=false",
            "trainer.logger=[console]",
            "trainer.resume_mode=auto",
            "qwenlong.curriculum.phase=long",
            "qwenlong.curriculum.phase_number=2",  # rows of the first file (extra_info.phase 1) count as carried
            "qwenlong.curriculum.task_balance=true",
            *extra,
        ],
    )


# ----------------------------------------------------------------------------- registration and mode


def test_registered_in_veRLs_trainer_registry():
    import verl  # noqa: F401  (loads our entry point)
    from verl.trainer.ppo.v1 import PPOTrainerSync, get_trainer_cls

    from qwenlong_verl.worker.algos.trainer_stages import LongContextAlgoStages
    from qwenlong_verl.worker.curriculum.trainer_stages import CurriculumStages
    from qwenlong_verl.worker.trainer import QwenLongTrainer

    cls = get_trainer_cls("qwenlong")
    assert cls is QwenLongTrainer and issubclass(cls, PPOTrainerSync)
    mro = cls.__mro__
    assert mro.index(LongContextAlgoStages) < mro.index(CurriculumStages) < mro.index(PPOTrainerSync)


def test_takes_veRLs_synchronous_paths_under_its_own_name(stack, tmp_path):
    from verl.trainer.ppo.v1 import PPOTrainerSync, get_trainer_cls
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer, ReplayBufferAsync

    from qwenlong_verl.worker.curriculum.trainer_stages import ObservedReplayBuffer

    cfg = make_config(stack, tmp_path, "algorithm.filter_groups.enable=false")
    ours = get_trainer_cls("qwenlong")(cfg)
    sync = PPOTrainerSync(
        make_config(stack, tmp_path, "algorithm.filter_groups.enable=false", "trainer.v1.trainer_mode=sync")
    )
    assert ours.registered_mode == "qwenlong" and cfg.trainer.v1.trainer_mode == "qwenlong"
    assert ours.trainer_mode == "sync" and ours.parameter_sync_step == sync.parameter_sync_step == 1
    assert type(ours.replay_buffer) is ObservedReplayBuffer and isinstance(ours.replay_buffer, ReplayBuffer)
    assert not isinstance(ours.replay_buffer, ReplayBufferAsync)
    fields = (
        "trainer_mode",
        "train_batch_size",
        "gen_batch_size",
        "max_inflight_gen_batches",
        "filter_groups_metric",
        "sync_refill_failed_groups",
        "max_off_policy_threshold",
    )
    assert {f: getattr(ours.replay_buffer, f) for f in fields} == {f: getattr(sync.replay_buffer, f) for f in fields}
    assert ours._reissue_inflight_prompts() == 0  # sync: nothing re-issued, TransferQueue not even asked
    ours._init_tokenizer()
    ours._init_dataloader()
    assert cfg.data.gen_batch_size is None  # sync keeps whole-batch fetches (async modes force 1)
    # the caveat being handled: veRL's sync trainer registered under another name would turn asynchronous
    naive = PPOTrainerSync(make_config(stack, tmp_path, "algorithm.filter_groups.enable=false"))
    assert isinstance(naive.replay_buffer, ReplayBufferAsync)


# ----------------------------------------------------------------------------- ledger from TransferQueue


def _put_groups(groups, step=5):
    """Trajectories as AgentLoopWorkerTQ stores them; ``groups``: (data_source, extra_info, rewards, acc or None)."""
    from transfer_queue import KVBatchMeta
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    keys, rows, tags, uids = [], [], [], []
    for source, info, rewards, accs in groups:
        uid = str(uuid.uuid4())
        uids.append(uid)
        for session, reward in enumerate(rewards):
            n = 2 + session
            scores = torch.zeros(n)
            scores[-1] = reward
            extra_fields = {"min_global_steps": step, "max_global_steps": step}
            if accs is not None:
                extra_fields["reward_extra_info"] = {"acc": accs[session]}
            rows.append(
                {
                    "uid": uid,
                    "data_source": source,
                    "extra_info": dict(info),
                    "index": info.get("index", 0),
                    "prompts": torch.arange(1, 6),
                    "responses": torch.arange(9, 9 + n),
                    "response_mask": torch.ones(n, dtype=torch.int64),
                    "rm_scores": scores,
                    "extra_fields": extra_fields,
                }
            )
            keys.append(f"{uid}_{session}_0")
            tags.append(
                {"status": "success", "prompt_len": 5, "response_len": n, "seq_len": 5 + n, "global_steps": step}
            )
    tq.kv_batch_put(keys=keys, partition_id="train", fields=list_of_dict_to_tensordict(rows), tags=tags)
    return KVBatchMeta(keys=keys, tags=tags, partition_id="train"), uids


def test_ledger_records_from_a_batch_shaped_as_veRLs(stack, tmp_path, transfer_queue):
    from verl.trainer.ppo.padding_utils import upsample_batch_to_divisible_size
    from verl.trainer.ppo.v1 import get_trainer_cls

    trainer = get_trainer_cls("qwenlong")(make_config(stack, tmp_path))
    trainer.global_steps = 5
    groups = [
        ("hotpotqa", {"index": 10, "task": "qa", "phase": 2}, [1.0, 0.0, 0.9, 0.0], [1, 0, 1, 0]),
        ("docmath_x", {"index": 11, "phase": 1}, [0.2, 0.2, 0.2, 0.2], [0, 0, 0, 1]),  # task from data_source
        ("long_toc_choices_1", {"index": 12, "task": "choice"}, [0.7, 0.2, 0.5, 0.4], None),  # no acc: reward
    ]
    batch, uids = _put_groups(groups)
    batch = upsample_batch_to_divisible_size(batch, 16, 0)  # veRL's padding rows copy a real row's fields
    assert len(batch) == 16 and sum(t.get("is_padding", False) for t in batch.tags) == 4
    records = trainer._batch_records(batch, trained=True)
    assert [r.uid for r in records] == uids  # padding rows are not a group of their own
    qa, numeric, choice = records
    assert (qa.index, qa.task, qa.n, qa.step, qa.phase) == (10, "qa", 4, 5, "long")
    assert qa.mean_reward == pytest.approx(0.475) and qa.pass_rate == 0.5 and not qa.retro
    assert qa.mean_response_length == pytest.approx(3.5) and qa.reward_std == pytest.approx(np.std([1, 0, 0.9, 0]))
    assert numeric.task == "numeric" and numeric.retro and numeric.reward_std == pytest.approx(0.0, abs=1e-7)
    assert numeric.pass_rate == 0.25  # acc decides, not the reward
    assert choice.task == "choice" and choice.pass_rate == 0.5 and not choice.retro  # reward >= 0.5 when no acc
    tq.kv_clear(keys=batch.keys, partition_id="train")


def test_reward_manager_infos_become_step_metrics(stack, tmp_path, transfer_queue):
    """veRL's v1 trainer logs no training reward extra info; the mode adds the manager's as ``qwenlong_reward/*``."""
    from verl.trainer.ppo.v1 import get_trainer_cls

    trainer = get_trainer_cls("qwenlong")(make_config(stack, tmp_path))
    trainer.global_steps = 3
    batch, _ = _put_groups([("hotpotqa", {"index": 1, "task": "qa"}, [1.0, 0.0, 1.0, 0.0], [1, 0, 1, 0])], step=3)
    infos = [  # as the qwenlong manager writes them: judge rescued rollout 2, rollout 1 is overlong, 3 has no answer
        {
            "acc": 1,
            "rule": 1.0,
            "judge": -1.0,
            "judge_used": False,
            "judge_latency_s": 0.0,
            "judge_error": "",
            "overlong": False,
            "format_ok": True,
        },
        {
            "acc": 0,
            "rule": 0.0,
            "judge": 0.0,
            "judge_used": True,
            "judge_latency_s": 0.2,
            "judge_error": "",
            "overlong": True,
            "format_ok": True,
        },
        {
            "acc": 1,
            "rule": 0.0,
            "judge": 1.0,
            "judge_used": True,
            "judge_latency_s": 0.4,
            "judge_error": "",
            "overlong": False,
            "format_ok": True,
        },
        {
            "acc": 0,
            "rule": 0.0,
            "judge": -1.0,
            "judge_used": False,
            "judge_latency_s": 0.0,
            "judge_error": "",
            "overlong": False,
            "format_ok": False,
        },
    ]
    data = tq.kv_batch_get(keys=batch.keys, partition_id="train", select_fields=["extra_fields"])
    fields = [dict(getattr(f, "data", f)) for f in data["extra_fields"]]
    for f, info in zip(fields, infos, strict=True):
        f["reward_extra_info"] = info
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    tq.kv_batch_put(
        keys=batch.keys, partition_id="train", fields=list_of_dict_to_tensordict([{"extra_fields": f} for f in fields])
    )
    metrics: dict = {}
    trainer._batch_records(batch, trained=True, metrics=metrics)
    tq.kv_clear(keys=batch.keys, partition_id="train")
    assert metrics["qwenlong_reward/acc"] == 0.5 and metrics["qwenlong_reward/rule_acc"] == 0.25
    assert metrics["qwenlong_reward/judge_calls"] == 2 and metrics["qwenlong_reward/judge_rate"] == 0.5
    assert metrics["qwenlong_reward/judge_flips"] == 1
    assert metrics["qwenlong_reward/judge_latency_mean_s"] == pytest.approx(0.3)
    assert metrics["qwenlong_reward/overlong_rate"] == 0.25
    assert metrics["qwenlong_reward/format_violation_rate"] == 0.25


def test_groups_dapo_discards_reach_the_ledger_before_veRL_clears_them(stack, tmp_path, transfer_queue):
    from verl.trainer.ppo.v1 import get_trainer_cls

    trainer = get_trainer_cls("qwenlong")(make_config(stack, tmp_path))  # DAPO on (the base config), metric acc
    assert trainer.replay_buffer.filter_groups_metric == "acc"
    trainer.global_steps = 1
    groups = [
        ("hotpotqa", {"index": 1, "task": "qa"}, [1.0, 0.0], [1, 0]),
        ("hotpotqa", {"index": 2, "task": "qa"}, [0.0, 1.0], [0, 1]),
        ("hotpotqa", {"index": 3, "task": "qa"}, [0.0, 0.0], [0, 0]),  # all wrong: no GRPO signal
        ("hotpotqa", {"index": 4, "task": "qa"}, [1.0, 1.0], [1, 1]),  # all right
    ]
    _, uids = _put_groups(groups, step=1)
    tq.kv_batch_put(
        keys=uids, partition_id="train", tags=[{"is_prompt": True, "status": "finished", "global_steps": 1}] * len(uids)
    )
    batch, metrics = trainer.replay_buffer.sample(global_steps=1, partition_id="train", batch_size=1)
    assert metrics["training/filter_groups/evicted_samples"] == 2
    dropped = trainer._dropped_records()
    assert sorted(r.index for r in dropped) == [2, 3, 4] or sorted(r.index for r in dropped) == [1, 3, 4]
    assert all(not r.trained for r in dropped)
    by_index = {r.index: r for r in dropped}
    assert by_index[3].mean_reward == 0.0 and by_index[4].pass_rate == 1.0
    listed = tq.kv_list("train").get("train", {})
    assert not any(k.split("_")[0] in {r.uid for r in dropped} for k in listed)  # veRL still cleared them
    tq.kv_clear(keys=batch.keys, partition_id="train")
    clear_transfer_queue()


def test_dapo_refills_are_bounded_and_the_error_names_phase_and_share(stack, tmp_path):
    """veRL 0.9.1's sync buffer would refill filtered groups forever; the trainer mode's wrapper on the buffer's
    refill function counts per step and stops past max_gen_batches x the batch."""
    from verl.trainer.ppo.v1 import get_trainer_cls

    from qwenlong_verl.worker.curriculum.trainer_stages import DynamicSamplingExhausted

    trainer = get_trainer_cls("qwenlong")(make_config(stack, tmp_path, "qwenlong.curriculum.max_gen_batches=2"))
    assert trainer.replay_buffer.filter_groups_metric == "acc"  # DAPO on: veRL's buffer refills through us
    assert trainer.replay_buffer.refill_fn.__qualname__.startswith("CurriculumStages._bounded_refill")
    trainer.global_steps = 3
    calls: list[int] = []
    refill = trainer._bounded_refill(calls.append)
    trainer.on_sample_begin()
    refill(BATCH)
    refill(BATCH)
    with pytest.raises(
        DynamicSamplingExhausted,
        match=rf"phase 2 \(long\), step 3: DAPO dynamic sampling refilled {2 * BATCH} prompts \(bound {2 * BATCH}:.*"
        r"zero reward variance.*algorithm.filter_groups.enable=false",
    ):
        refill(1)
    assert calls == [BATCH, BATCH]
    trainer.on_sample_begin()  # the next step starts from zero
    refill(BATCH)
    assert calls == [BATCH, BATCH, BATCH]


# ----------------------------------------------------------------------------- veRL's fit on CPU


def _stream_tasks(stack, submitted):
    return [task_label_of(stack["rows"][i]["data_source"], stack["rows"][i]["extra_info"]) for _, i in submitted]


def test_fit_writes_the_ledger_and_resumes_exactly_after_a_crash(stack, tmp_path, transfer_queue):
    # an uninterrupted run, for reference
    clear_transfer_queue()
    ref = build_trainer(make_config(stack, tmp_path / "ref"))
    ref.fit(ref.agent_loop_manager)
    ref_ledger = DifficultyLedger(tmp_path / "ref" / "difficulty_ledger.jsonl").read()
    ref_submitted = ref.agent_loop_manager.submitted
    clear_transfer_queue()

    # the prompt stream is task-balanced: every block of a batch holds 2 of each of the 3 tasks
    tasks = _stream_tasks(stack, ref_submitted)
    for b in range(0, len(tasks) - len(tasks) % BATCH, BATCH):
        assert Counter(tasks[b : b + BATCH]) == {"qa": 2, "numeric": 2, "choice": 2}
    # one record per prompt per step: the trained batch and every group DAPO discarded
    assert sorted({r.step for r in ref_ledger}) == [1, 2, 3, 4]
    for step in (1, 2, 3, 4):
        trained = [r for r in ref_ledger if r.step == step and r.trained]
        assert len(trained) == BATCH and all(r.reward_std > 0 for r in trained)
        submitted = Counter(i for s, i in ref_submitted if s == step)
        assert Counter(r.index for r in ref_ledger if r.step == step) == submitted
    assert any(not r.trained and r.mean_reward == 0.0 for r in ref_ledger)  # all-wrong groups are recorded
    ckpt = tmp_path / "ref" / "global_step_2"
    assert (ckpt / "data.pt").is_file() and (ckpt / "qwenlong_algos.json").is_file()
    assert not (ckpt / "transfer_queue").exists()  # synchronous: no TransferQueue checkpoint

    # the crash: rollouts lost during step 4; step 3's records are in the ledger, the last checkpoint is step 2
    crashed = build_trainer(make_config(stack, tmp_path / "run"), CpuRollout(fail_at_step=4))
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashed.fit(crashed.agent_loop_manager)
    ledger = DifficultyLedger(tmp_path / "run" / "difficulty_ledger.jsonl")
    assert ledger.steps() == [1, 2, 3]
    clear_transfer_queue()  # a crashed run's TransferQueue dies with it

    # resume: veRL restores step 2 and the sampler (data.pt); the ledger is cut back to step 2
    resumed = build_trainer(make_config(stack, tmp_path / "run"))
    assert resumed.global_steps == 2 and resumed.actor_rollout_wg.loaded == [
        str(tmp_path / "run" / "global_step_2" / "actor")
    ]
    assert ledger.steps() == [1, 2]
    resumed.fit(resumed.agent_loop_manager)
    clear_transfer_queue()
    records = ledger.read()
    assert ledger.steps() == [1, 2, 3, 4]

    def summary(recs):
        # which of the equally old sampleable groups veRL trains and which it drops as surplus is its own
        # (unordered) choice; the prompts drawn and their rewards are the run's
        return sorted((r.step, r.index, r.n, r.mean_reward) for r in recs)

    assert summary(records) == summary(ref_ledger)  # as if it had never crashed
    for step in (1, 2, 3, 4):
        assert sum(r.trained for r in records if r.step == step) == BATCH
    assert [x for x in resumed.agent_loop_manager.submitted] == [x for x in ref_submitted if x[0] >= 3]


def test_step_adds_curriculum_metrics_to_veRLs_dict(stack, tmp_path, transfer_queue):
    clear_transfer_queue()
    trainer = build_trainer(make_config(stack, tmp_path))
    trainer.global_steps, trainer.curr_step_profile = 1, False  # what fit() sets before its first step
    metrics: dict = {}
    trainer.step(metrics, {})
    tq.kv_clear(keys=list((tq.kv_list("train") or {}).get("train", {})), partition_id="train")
    records = DifficultyLedger(tmp_path / "difficulty_ledger.jsonl").read()
    assert metrics["training/filter_groups/evicted_samples"] > 0  # veRL's DAPO filter did run
    expected = step_metrics(records, phase_number=2)
    assert {k: v for k, v in metrics.items() if k.startswith("qwenlong/") and k in expected} == expected
    assert metrics["qwenlong/phase"] == 2.0
    carried = [r for r in records if r.trained and stack["rows"][r.index]["extra_info"]["phase"] == 1]
    assert metrics["qwenlong/retro_share"] == pytest.approx(len(carried) / BATCH)
    assert metrics["qwenlong/dropped_groups"] == sum(not r.trained for r in records) > 0
    assert {"qwenlong/reward/qa", "qwenlong/zero_var_group_share", "qwenlong/task_share/qa"} <= set(metrics)
    assert 0.0 <= metrics["qwenlong_reward/acc"] <= 1.0  # the reward's own infos reach veRL's dict too

    off = build_trainer(make_config(stack, tmp_path / "off", "qwenlong.curriculum.ledger=false"))
    off.global_steps, off.curr_step_profile = 1, False
    metrics = {}
    off.step(metrics, {})
    clear_transfer_queue()
    assert "qwenlong/reward/qa" in metrics and not (tmp_path / "off" / "difficulty_ledger.jsonl").exists()
