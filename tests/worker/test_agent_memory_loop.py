"""The ``qwenlong_memory`` agent loop and the ``qwenlong`` trainer mode on its multi-output trajectories, on CPU.

The loop runs as veRL runs it (registry + hydra, ``LLMServerClient`` and load balancer, our transformers rollout
server with a tiny random Qwen2; ``support.memory_agent``); its outputs go into a local TransferQueue through veRL's
own ``AgentLoopWorkerTQ._agent_loop_postprocess``; the shipped ``QwenLongTrainer`` then runs its real advantage,
actor-update, ledger and metrics stages on them. Only the GPU actor is stood in for: it records what it would
train on, per TransferQueue key.
"""

from __future__ import annotations

import asyncio
import math
import uuid

import numpy as np
import pytest
import torch
from support.memory_agent import MemoryRig, memory_config, row, write_model
from support.task_norm import reference

from qwenlong_verl.driver.compose import compose
from qwenlong_verl.worker.agent.chunks import ChunkSchedule, cap_to_budget
from qwenlong_verl.worker.agent.prompts import parse_update
from qwenlong_verl.worker.agent.query import MemoryRowError, split_query
from qwenlong_verl.worker.agent.record import MEMORY_FIELD

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900), pytest.mark.usefixtures("transfer_queue")]

tq = pytest.importorskip("transfer_queue")

CHUNK, MEMORY, PLAN, UPDATE, ANSWER = 160, 3, 2, 6, 4
WINDOW = 400
"""rollout.prompt_length: shorter than the documents, which only a memory agent can read."""
BUDGETS = (
    f"qwenlong.memory.chunk_tokens={CHUNK}",
    f"qwenlong.memory.memory_tokens={MEMORY}",
    f"qwenlong.memory.plan_tokens={PLAN}",
    f"qwenlong.memory.update_tokens={UPDATE}",
    f"qwenlong.memory.answer_tokens={ANSWER}",
)


@pytest.fixture(scope="module")
def rig(tmp_path_factory, transfer_queue):
    model = write_model(tmp_path_factory.mktemp("memory") / "model")  # random weights: replies fill the budget
    return MemoryRig(memory_config(model, *BUDGETS, prompt_length=WINDOW))


def encode(rig, text):
    return rig.tokenizer.encode(text, add_special_tokens=False)


def decode(rig, ids, special=True):
    return rig.tokenizer.decode(list(ids), skip_special_tokens=special)


# ----------------------------------------------------------------------------- the loop


def test_reads_k_chunks_carries_capped_memory_and_answers_from_it(rig):
    data = row(0, words=300)
    query = split_query(data["raw_prompt"], data["extra_info"])
    ids = encode(rig, query.document)
    schedule = ChunkSchedule.of(len(ids), CHUNK)
    k = math.ceil(len(ids) / CHUNK)
    assert k >= 3 and len(ids) > WINDOW

    outputs = asyncio.run(rig.run(data))

    assert len(outputs) == k + 1 == len(schedule) + 1
    records = [o.extra_fields[MEMORY_FIELD] for o in outputs]
    assert [r["role"] for r in records] == ["memory"] * k + ["answer"]
    assert [r["step"] for r in records] == list(range(1, k + 2))
    assert all(r["steps"] == k and r["document_tokens"] == len(ids) and not r["document_cut"] for r in records)
    prompts = [decode(rig, o.prompt_ids, special=False) for o in outputs]
    chunks = [decode(rig, ids[a:b]).strip() for a, b in schedule.spans]
    for t in range(k):  # step t reads chunk t and no other
        assert [c in prompts[t] for c in chunks] == [j == t for j in range(k)], t
        assert query.core in prompts[t] and query.instruction not in prompts[t]
    assert not any(c in prompts[-1] for c in chunks)  # the answer sees no document text
    assert query.core in prompts[-1] and query.instruction in prompts[-1]

    truncated = 0
    for t in range(k):  # what step t wrote, cut to its budget, is what step t+1 (or the answer) reads
        update = parse_update(decode(rig, outputs[t].response_ids), with_plan=True)
        memory = cap_to_budget(update.memory, MEMORY, lambda s: encode(rig, s), lambda i: decode(rig, i))
        plan = cap_to_budget(update.plan, PLAN, lambda s: encode(rig, s), lambda i: decode(rig, i))
        assert records[t]["memory_tokens"] == memory.tokens <= MEMORY
        assert records[t]["memory_truncated"] == memory.truncated and records[t]["plan_truncated"] == plan.truncated
        truncated += memory.truncated
        if memory.text.strip():
            assert f"<memory>\n{memory.text.strip()}\n</memory>" in prompts[t + 1]
        if t + 1 < k and plan.text.strip():
            assert f"<plan>\n{plan.text.strip()}\n</plan>" in prompts[t + 1]
    assert truncated >= 1  # the random model writes past a 3-token budget: the cut is exercised

    # each generation is its own sequence: only its own tokens are response, within its own budget
    for output in outputs:
        assert output.response_mask == [1] * len(output.response_ids)
        assert output.response_logprobs is not None and len(output.response_logprobs) == len(output.response_ids)
    assert (
        all(1 <= len(o.response_ids) <= UPDATE for o in outputs[:-1]) and 1 <= len(outputs[-1].response_ids) <= ANSWER
    )


def test_max_chunks_cuts_the_document(rig):
    model = rig.config.actor_rollout_ref.model.path
    config = memory_config(model, *BUDGETS, "qwenlong.memory.max_chunks=2", prompt_length=WINDOW)
    outputs = asyncio.run(rig.run(row(1, words=300), config=config))
    records = [o.extra_fields[MEMORY_FIELD] for o in outputs]
    assert len(outputs) == 3 and all(r["steps"] == 2 and r["document_cut"] for r in records)


def test_budgets_that_cannot_fit_fail_by_name(rig):
    model = rig.config.actor_rollout_ref.model.path
    from hydra.errors import InstantiationException

    with pytest.raises(InstantiationException, match="chunk_tokens \\+ memory_tokens \\+ plan_tokens = 165"):
        rig.loop(memory_config(model, *BUDGETS, prompt_length=200))
    # a question too long for the window left after the chunk: the row is named, nothing is cut silently
    config = memory_config(model, *BUDGETS, "qwenlong.memory.chunk_tokens=180", prompt_length=260)
    with pytest.raises(MemoryRowError, match=r"index=2.*exceeds rollout.prompt_length 260"):
        asyncio.run(rig.run(row(2, words=300), config=config))


def test_the_reward_scores_the_final_answer(rig):
    """veRL sends all of a trajectory's sequences to the reward worker, padded to the longest; our manager must score
    the answer, which is much shorter than the memory updates before it. Its overlong shaping (max_resp_len 8,
    buffer 8) is -length/8, so the score shows the length it read."""
    model = rig.config.actor_rollout_ref.model.path
    config = memory_config(model, *BUDGETS, "reward.reward_kwargs.overlong_buffer_cfg.len=8", prompt_length=WINDOW)
    data = row(4, words=300)

    async def go():
        outputs = await rig.run(data)
        await rig.score(outputs, data, config)
        return outputs

    outputs = asyncio.run(go())
    answer = outputs[-1]
    assert len(answer.prompt_ids) < min(len(o.prompt_ids) for o in outputs[:-1])  # the case that needs care
    info = answer.extra_fields["reward_extra_info"]
    assert info["overlong_reward"] == pytest.approx(-len(answer.response_ids) / 8)
    assert answer.reward_score == pytest.approx(info["score"] + info["overlong_reward"])


# ----------------------------------------------------------------------------- the trainer on multi-output batches

QUESTIONS = [  # (index, words, answer type, rewards of the 3 trajectories)
    (10, 220, "qa", [1.0, 0.0, 0.0]),
    (11, 420, "numeric", [1.0, 1.0, 0.0]),
    (12, 300, "qa", [0.0, 1.0, 1.0]),
]
G = 3


class RecordingActor:
    """The GPU actor worker group's place: records, per TransferQueue key, what ``update_actor`` would train."""

    def __init__(self):
        self.trained: list[dict[str, tuple[int, torch.Tensor]]] = []

    def update_actor(self, batch):
        data = tq.kv_batch_get(
            keys=batch.keys, partition_id=batch.partition_id, select_fields=["advantages", "response_mask"]
        )
        padded = data.to_padded_tensor()
        seen = {}
        for i, key in enumerate(batch.keys):
            assert key not in seen, f"{key} twice in one update"
            mask = padded["response_mask"][i].bool()
            seen[key] = (int(mask.sum()), padded["advantages"][i][mask].clone())
        self.trained.append(seen)
        return {"metrics": {"mfu": [0.0], "pg_loss": [0.0]}}


def make_trainer(tmp_path, *overrides):
    from qwenlong_verl.worker.trainer import QwenLongTrainer

    config = compose(
        "qwenlong_l1",
        [
            "actor_rollout_ref.model.path=/m",
            "data.train_files=[a]",
            f"trainer.default_local_dir={tmp_path / 'ckpt'}",
            "trainer.v1.trainer_mode=qwenlong",
            *overrides,
        ],
    )
    trainer = QwenLongTrainer(config)
    trainer.actor_rollout_wg = RecordingActor()
    trainer.global_steps = 1
    return trainer


@pytest.fixture(scope="module")
def stored(rig):
    """Three questions x G trajectories generated by the loop and stored by veRL, padded by veRL to a multiple of 8."""
    from transfer_queue import KVBatchMeta
    from verl.trainer.ppo.padding_utils import upsample_batch_to_divisible_size

    generations, expected = {}, []

    async def generate_all():
        for index, words, answer_type, rewards in QUESTIONS:
            data = row(index, words, answer_type)
            uid = str(uuid.uuid4())
            trajectories = await asyncio.gather(*(rig.run(data) for _ in range(G)))
            for session, (outputs, reward) in enumerate(zip(trajectories, rewards, strict=True)):
                for i, output in enumerate(outputs):
                    generations[f"{uid}_{session}_{i}"] = (list(output.prompt_ids), list(output.response_ids))
                await rig.store(outputs, data, uid, session, reward)
                expected.append((uid, session, answer_type, reward, len(outputs)))

    asyncio.run(generate_all())
    listing = tq.kv_list()["train"]
    keys = [k for k in listing if k in generations]
    batch = KVBatchMeta(partition_id="train", keys=keys, tags=[listing[k] for k in keys])
    batch = upsample_batch_to_divisible_size(batch, 8, rig.tokenizer.eos_token_id)
    # what veRL's old-log-prob pass adds before the advantage; entropy 1.0 except the first memory update of the
    # first question's second trajectory (reward 0), which is very uncertain
    lengths = tq.kv_batch_get(keys=batch.keys, partition_id="train", select_fields=["responses"])["responses"]
    lengths = lengths.offsets().diff().tolist()
    hot = f"{expected[1][0]}_1_0"
    entropy = [torch.full((n,), 5.0 if key == hot else 1.0) for key, n in zip(batch.keys, lengths, strict=True)]
    old = [torch.full((n,), -0.5) for n in lengths]
    from tensordict import TensorDict

    fields = TensorDict(
        {
            "entropy": torch.nested.as_nested_tensor(entropy, layout=torch.jagged),
            "old_log_probs": torch.nested.as_nested_tensor(old, layout=torch.jagged),
        },
        batch_size=len(batch),
    )
    tq.kv_batch_put(keys=batch.keys, partition_id="train", fields=fields)
    return {"batch": batch, "generations": generations, "expected": expected, "hot": hot}


def task_label(answer_type):
    """The task label the trainer gives a row of :func:`support.memory_agent.row` (the labels' own rules)."""
    from qwenlong_verl.worker.algos.sample_labels import sample_labels

    data = row(0, 10, answer_type)
    return sample_labels(["u"], [data["data_source"]], [data["extra_info"]]).task[0]


def read(batch, field):
    return tq.kv_batch_get(keys=batch.keys, partition_id="train", select_fields=[field]).to_padded_tensor()[field]


def scalar_advantages(batch):
    adv, mask = read(batch, "advantages"), read(batch, "response_mask").bool()
    out = []
    for a, m in zip(adv, mask, strict=True):
        values = a[m]
        assert values.numel() == 0 or torch.all(values == values[0]), "one advantage per sequence"
        out.append(float(values[0]) if values.numel() else 0.0)
    return np.array(out)


def test_veRL_stores_one_row_per_generation_with_only_its_own_tokens_as_response(stored):
    batch, generations = stored["batch"], stored["generations"]
    real = [k for k, tag in zip(batch.keys, batch.tags, strict=True) if not tag.get("is_padding")]
    assert sorted(real) == sorted(generations)
    assert len(real) == sum(n for *_, n in stored["expected"])
    data = tq.kv_batch_get(keys=real, partition_id="train", select_fields=["prompts", "responses", "response_mask"])
    for i, key in enumerate(real):
        prompt, response = generations[key]
        assert data["prompts"][i].tolist() == prompt and data["responses"][i].tolist() == response
        assert int(data["response_mask"][i].sum()) == len(response)
    # every trajectory's rows carry its final reward (veRL's copy)
    rewards = read(batch, "rm_scores").sum(dim=-1)
    by_trajectory = {(uid, s): r for uid, s, _, r, _ in stored["expected"]}
    for key, reward in zip(batch.keys, rewards.tolist(), strict=True):
        uid, session, _ = key.rsplit("_", 2)
        if (uid, int(session)) in by_trajectory:
            assert reward == by_trajectory[(uid, int(session))]


@pytest.mark.parametrize("estimator", ["grpo_task_norm", "grpo"])
def test_every_generation_takes_its_trajectorys_final_advantage_and_is_trained_once(tmp_path, stored, estimator):
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    batch, expected = stored["batch"], stored["expected"]
    trainer = make_trainer(tmp_path, f"algorithm.adv_estimator={estimator}")
    metrics = {}
    trainer._compute_advantage(batch, metrics)
    scalars = dict(zip(batch.keys, scalar_advantages(batch), strict=True))

    uids = [u for u, *_ in expected]
    rewards = [r for _, _, _, r, _ in expected]
    if estimator == "grpo_task_norm":  # the definition, on one sample per trajectory
        tasks = [task_label(answer_type) for _, _, answer_type, _, _ in expected]
        want = reference(rewards, uids, tasks)
        for task in set(tasks):
            assert metrics[f"qwenlong/task_samples/{task}"] == tasks.count(task)
    else:
        scores = torch.zeros(len(rewards), 1)
        scores[:, 0] = torch.tensor(rewards)
        want = compute_grpo_outcome_advantage(scores, torch.ones_like(scores), np.array(uids, dtype=object))[0][:, 0]
        want = want.tolist()
    assert len(set(np.round(want, 6))) > 1  # the check below can tell trajectories apart
    for (uid, session, _, _, n), value in zip(expected, want, strict=True):
        for i in range(n):  # all generations of the trajectory, memory updates and answer alike
            assert scalars[f"{uid}_{session}_{i}"] == pytest.approx(value, abs=1e-5), (uid, session, i)
    padding = [k for k, tag in zip(batch.keys, batch.tags, strict=True) if tag.get("is_padding")]
    assert padding and all(scalars[k] == 0.0 for k in padding)

    trainer._update_actor(batch, metrics)
    [trained] = trainer.actor_rollout_wg.trained
    assert sorted(trained) == sorted(batch.keys)  # every key exactly once (RecordingActor refuses repeats)
    for key, (_prompt, response) in stored["generations"].items():
        tokens, advantages = trained[key]
        assert tokens == len(response)  # its own tokens, no other generation's
        assert torch.allclose(advantages, torch.full_like(advantages, scalars[key]))
    assert sum(t for t, _ in trained.values()) == sum(len(r) for _, r in stored["generations"].values())


def test_ledger_has_one_record_per_question_from_final_answers(tmp_path, stored):
    trainer = make_trainer(tmp_path, "algorithm.adv_estimator=grpo_task_norm")
    records = trainer._batch_records(stored["batch"], trained=True)
    assert len(records) == len(QUESTIONS)
    by_index = {r.index: r for r in records}
    for index, _, _, rewards in QUESTIONS:
        record = by_index[index]
        assert record.n == G and record.mean_reward == pytest.approx(np.mean(rewards))
        assert record.pass_rate == pytest.approx(np.mean([r >= 0.5 for r in rewards]))


def test_sequence_clipping_masks_each_generation_by_its_own_entropy(tmp_path, stored):
    batch = stored["batch"]
    trainer = make_trainer(
        tmp_path,
        "algorithm.adv_estimator=grpo_task_norm",
        "qwenlong.algos.neg_clip_mode=sequence",
        "qwenlong.algos.neg_clip_seq_entropy=3.0",
    )
    metrics = {}
    trainer._compute_advantage(batch, metrics)
    before = dict(zip(batch.keys, scalar_advantages(batch), strict=True))
    assert before[stored["hot"]] < 0  # a memory update of a wrong trajectory
    trainer._update_actor(batch, metrics)
    [trained] = trainer.actor_rollout_wg.trained
    dropped = {k for k, (_, adv) in trained.items() if adv.numel() and before[k] != 0 and torch.all(adv == 0)}
    assert dropped == {stored["hot"]}  # only that generation; its trajectory's other generations still train


def test_memory_metrics_of_the_batch(stored):
    from qwenlong_verl.worker.agent.trainer_stages import memory_metrics

    batch = stored["batch"]
    extra = tq.kv_batch_get(keys=batch.keys, partition_id="train", select_fields=["extra_fields"])["extra_fields"]
    padding = [bool(t.get("is_padding")) for t in batch.tags]
    metrics = memory_metrics(batch.keys, list(extra), padding)
    sizes = [n for *_, n in stored["expected"]]
    assert metrics["qwenlong/memory_trajectories"] == len(sizes)
    assert metrics["qwenlong/memory_generations/mean"] == pytest.approx(np.mean(sizes))
    assert (
        metrics["qwenlong/memory_generations/max"]
        == max(sizes)
        > min(sizes)
        == metrics["qwenlong/memory_generations/min"]
    )
    assert metrics["qwenlong/memory_chunks/mean"] == pytest.approx(np.mean(sizes) - 1)
    assert 0 < metrics["qwenlong/memory_truncated_share"] <= 1 and metrics["qwenlong/memory_tokens/max"] <= MEMORY
    assert metrics["qwenlong/memory_document_cut_share"] == 0.0
    assert memory_metrics(["u_0_0"], [{"reward_extra_info": {}}], [False]) == {}  # single-turn rows: nothing
