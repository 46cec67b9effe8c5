"""grpo_task_norm: registered in veRL, equal to the straightforward definition, run through veRL's own pipeline."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from support.task_norm import EPS, reference
from verl import DataProto
from verl.trainer.config import AlgoConfig
from verl.trainer.ppo.core_algos import get_adv_estimator_fn
from verl.trainer.ppo.ray_trainer import compute_advantage
from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories

from qwenlong_verl.worker.algos.task_norm import TaskLabels, provide_task_labels, task_norm_advantage


def token_rewards(scores, lengths, width=None):
    """veRL layout: the outcome reward on the last response token, 0 elsewhere; response_mask 1 on the response."""
    width = width or max(lengths)
    rewards = torch.zeros(len(scores), width)
    mask = torch.zeros(len(scores), width)
    for i, (s, n) in enumerate(zip(scores, lengths, strict=True)):
        mask[i, :n] = 1
        rewards[i, n - 1] = s
    return rewards, mask


def estimator():
    return get_adv_estimator_fn("grpo_task_norm")


# ------------------------------------------------------------------ registration


def test_registered_in_veRL_registry():
    # That `import verl` alone registers it in a fresh process is tested for every plugin row in test_plugin.py.
    from qwenlong_verl.worker.algos import task_norm

    assert get_adv_estimator_fn("grpo_task_norm") is task_norm.compute_grpo_task_norm_advantage


# ------------------------------------------------------------------ the definition

UIDS = ["a", "a", "a", "a", "b", "b", "b", "b", "c", "c", "c", "c", "d", "e", "e"]
TASKS = ["qa"] * 8 + ["numeric"] * 4 + ["choice"] + ["qa", "qa"]
SCORES = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.5, 1.0, 0.3, 0.9, 0.1, 0.3, 1.0, 0.2, 0.7]


@pytest.mark.parametrize("std_mode", ["task", "group"])
def test_equals_reference_definition(std_mode):
    adv = task_norm_advantage(torch.tensor(SCORES), UIDS, TASKS, epsilon=EPS, std_mode=std_mode)
    ref = reference(torch.tensor(SCORES).tolist(), UIDS, TASKS, std_mode=std_mode)
    assert adv.dtype == torch.float32
    np.testing.assert_allclose(adv.numpy(), ref, rtol=1e-6, atol=1e-6)


def test_single_sample_task_and_group_of_one_get_zero():
    # 'd' is the only choice sample (task of one, group of one): no baseline, no spread.
    adv = task_norm_advantage(torch.tensor(SCORES), UIDS, TASKS)
    assert adv[12].item() == 0.0


def test_constant_reward_groups_and_tasks_are_exactly_zero():
    # 0.1 and 0.7 are not representable exactly; float32 means of them are not exact either.
    scores = torch.tensor([0.1] * 5 + [0.7] * 5 + [0.7] * 3)
    uids = ["x"] * 5 + ["y"] * 5 + ["z"] * 3
    tasks = ["qa"] * 10 + ["numeric"] * 3  # 'numeric' is a constant task: std 0, divided by eps
    adv = task_norm_advantage(scores, uids, tasks)
    assert torch.equal(adv, torch.zeros(13))


def test_padding_rows_get_zero_and_do_not_enter_statistics():
    scores = torch.tensor(SCORES + [0.0, 0.0])
    uids = UIDS + ["pad", "pad"]
    tasks = TASKS + [None, None]
    with_pad = task_norm_advantage(scores, uids, tasks)
    without = task_norm_advantage(torch.tensor(SCORES), UIDS, TASKS)
    assert torch.equal(with_pad[:-2], without)
    assert torch.equal(with_pad[-2:], torch.zeros(2))


def test_task_std_differs_from_group_std():
    # the point of the method: same group deviations, different scales per task
    task_adv = task_norm_advantage(torch.tensor(SCORES), UIDS, TASKS, std_mode="task")
    group_adv = task_norm_advantage(torch.tensor(SCORES), UIDS, TASKS, std_mode="group")
    assert not torch.allclose(task_adv, group_adv)


def test_epsilon_is_used():
    small = task_norm_advantage(torch.tensor(SCORES), UIDS, TASKS, epsilon=1e-6)
    big = task_norm_advantage(torch.tensor(SCORES), UIDS, TASKS, epsilon=1.0)
    ref = reference(torch.tensor(SCORES).tolist(), UIDS, TASKS, eps=1.0)
    np.testing.assert_allclose(big.numpy(), ref, rtol=1e-6, atol=1e-6)
    assert big.abs().sum() < small.abs().sum()


def test_stats_report_task_std_and_counts():
    stats = {}
    task_norm_advantage(torch.tensor(SCORES), UIDS, TASKS, stats=stats)
    qa = [s for s, t in zip(torch.tensor(SCORES).tolist(), TASKS, strict=True) if t == "qa"]
    assert stats["qa"]["samples"] == 10
    assert stats["qa"]["std"] == pytest.approx(statistics.stdev(qa))
    assert stats["choice"] == {"std": 0.0, "samples": 1.0}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 5),  # group
            st.sampled_from([0.0, 0.5, 1.0, 0.1, -0.3, 2.0]),  # reward
        ),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from(["task", "group"]),
)
def test_property_equals_reference(rows, std_mode):
    uids = [f"g{g}" for g, _ in rows]
    tasks = [("qa", "numeric", "choice")[g % 3] for g, _ in rows]  # a group has one task
    scores = torch.tensor([r for _, r in rows])
    adv = task_norm_advantage(scores, uids, tasks, std_mode=std_mode)
    ref = reference(scores.tolist(), uids, tasks, std_mode=std_mode)
    np.testing.assert_allclose(adv.numpy(), ref, rtol=1e-5, atol=1e-5)


def test_group_mode_equals_veRL_grpo_on_groups_of_two_or_more():
    gen = torch.Generator().manual_seed(3)
    uids = np.array([f"p{i // 8}" for i in range(64)], dtype=object)
    scores = torch.randint(0, 3, (64,), generator=gen).float() / 2
    rewards, mask = token_rewards(scores.tolist(), [5 + i % 7 for i in range(64)])
    ours, _ = estimator()(rewards, mask, index=uids, task=["qa"] * 64, std_mode="group")
    for name in ("grpo", "grpo_vectorized"):
        theirs, _ = get_adv_estimator_fn(name)(token_level_rewards=rewards, response_mask=mask, index=uids)
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ the registered function, called like veRL does


def test_registered_function_broadcasts_over_response_tokens():
    rewards, mask = token_rewards(SCORES, [3 + i % 4 for i in range(len(SCORES))], width=8)
    adv, returns = estimator()(rewards, mask, index=np.array(UIDS, dtype=object), task=TASKS)
    scalar = task_norm_advantage(torch.tensor(SCORES), UIDS, TASKS)
    assert torch.equal(adv, scalar.unsqueeze(-1) * mask)
    assert adv is returns or torch.equal(adv, returns)


def test_without_labels_veRL_call_fails_naming_both_keys():
    rewards, mask = token_rewards(SCORES, [4] * len(SCORES))
    with pytest.raises(ValueError) as err:
        estimator()(token_level_rewards=rewards, response_mask=mask, index=np.array(UIDS, dtype=object))
    assert "algorithm.adv_estimator=grpo_task_norm" in str(err.value)
    assert "trainer.v1.trainer_mode=qwenlong" in str(err.value)


def test_label_count_mismatch_fails():
    rewards, mask = token_rewards(SCORES, [4] * len(SCORES))
    with pytest.raises(ValueError, match="15 rewards but 15 group ids .* and 14 task labels"):
        estimator()(rewards, mask, index=np.array(UIDS, dtype=object), task=TASKS[:-1])


def _data_proto(scores, uids):
    rewards, mask = token_rewards(scores, [4 + i % 3 for i in range(len(scores))])
    data = DataProto.from_dict(tensors={"token_level_rewards": rewards, "response_mask": mask})
    data.non_tensor_batch["uid"] = np.array(uids, dtype=object)
    return data, mask


@pytest.mark.parametrize("path", ["compute_advantage", "compute_advantage_for_multi_trajectories"])
def test_through_veRL_compute_advantage_with_provided_labels(path):
    data, mask = _data_proto(SCORES, UIDS)
    labels = TaskLabels(task=TASKS, epsilon=EPS, std_mode="task")
    config = AlgoConfig(adv_estimator="grpo_task_norm")
    with provide_task_labels(labels):
        if path == "compute_advantage":
            out = compute_advantage(data, adv_estimator="grpo_task_norm", config=config)
        else:  # what the v1 trainer's _compute_advantage calls
            keys = [f"{u}_{i}_0" for i, u in enumerate(UIDS)]
            out = compute_advantage_for_multi_trajectories(data, keys, "grpo_task_norm", config=config)
    expected = torch.tensor(reference(torch.tensor(SCORES).tolist(), UIDS, TASKS)).unsqueeze(-1) * mask
    torch.testing.assert_close(out.batch["advantages"], expected, rtol=1e-6, atol=1e-6)
    assert labels.stats["numeric"]["samples"] == 4
    # the labels are gone after the block: a later call without them fails again
    with pytest.raises(ValueError, match="no per-sample task labels"):
        compute_advantage(_data_proto(SCORES, UIDS)[0], adv_estimator="grpo_task_norm", config=config)


def test_settings_of_the_labels_apply():
    data, mask = _data_proto(SCORES, UIDS)
    with provide_task_labels(TaskLabels(task=TASKS, epsilon=0.5, std_mode="group")):
        out = compute_advantage(data, adv_estimator="grpo_task_norm", config=AlgoConfig(adv_estimator="grpo_task_norm"))
    ref = reference(torch.tensor(SCORES).tolist(), UIDS, TASKS, eps=0.5, std_mode="group")
    torch.testing.assert_close(out.batch["advantages"], torch.tensor(ref).unsqueeze(-1) * mask, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------ task labels, not answer types

FIVE_TASKS = [  # (data_source, extra_info, rewards of one group of 4): five task labels over three answer types
    ("qwenlong_synth_numeric", {"index": 1, "task": "numerical", "answer_type": "numeric"}, [1.0, 0.0, 1.0, 0.0]),
    ("qwenlong_synth_qa", {"index": 2, "task": "multi_hop", "answer_type": "qa"}, [0.0, 0.0, 0.0, 1.0]),
    ("qwenlong_synth_numeric", {"index": 3, "task": "temporal", "answer_type": "numeric"}, [0.2, 0.4, 0.6, 0.8]),
    ("qwenlong_synth_qa", {"index": 4, "task": "niah", "answer_type": "qa"}, [1.0, 1.0, 1.0, 0.0]),
    ("qwenlong_synth_choice", {"index": 5, "task": "hypothetical", "answer_type": "choice"}, [0.5, 0.5, 0.0, 1.0]),
    ("qwenlong_synth_numeric", {"index": 6, "task": "numerical", "answer_type": "numeric"}, [0.9, 0.1, 0.1, 0.1]),
]


def test_five_task_labels_are_five_std_groups_through_veRL_compute_advantage():
    """Rows carrying five task labels (and three answer types) give five task-std groups in veRL's own advantage
    pipeline: labels read by ``sample_labels`` as the trainer stage reads them, ``grpo_task_norm`` from veRL's
    registry. Grouping by answer type instead would give other advantages."""
    from qwenlong_verl.worker.algos.sample_labels import sample_labels

    sources = [s for s, _, rewards in FIVE_TASKS for _ in rewards]
    infos = [dict(info) for _, info, rewards in FIVE_TASKS for _ in rewards]
    uids = [f"g{info['index']}" for info in infos]
    scores = [r for _, _, rewards in FIVE_TASKS for r in rewards]
    labels = sample_labels(uids, sources, infos)
    assert labels.task.tolist() == [info["task"] for info in infos]

    data, mask = _data_proto(scores, uids)
    provided = TaskLabels(task=labels.task, epsilon=EPS, std_mode="task")
    with provide_task_labels(provided):
        out = compute_advantage(data, adv_estimator="grpo_task_norm", config=AlgoConfig(adv_estimator="grpo_task_norm"))
    assert sorted(provided.stats) == ["hypothetical", "multi_hop", "niah", "numerical", "temporal"]
    for label, figures in provided.stats.items():
        mine = [s for s, info in zip(scores, infos, strict=True) if info["task"] == label]
        assert figures == {"std": pytest.approx(statistics.stdev(mine)), "samples": float(len(mine))}
    expected = torch.tensor(reference(scores, uids, labels.task.tolist())).unsqueeze(-1) * mask
    torch.testing.assert_close(out.batch["advantages"], expected, rtol=1e-6, atol=1e-6)
    by_answer_type = reference(scores, uids, [info["answer_type"] for info in infos])
    assert not np.allclose(expected[:, 0].numpy(), by_answer_type, atol=1e-3)
