"""Task-balanced prompt batches: exact per batch, every example in turn, resumable through StatefulDataLoader."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torchdata.stateful_dataloader import StatefulDataLoader

from qwenlong_verl.worker.curriculum.task_balance import TaskBalancedSampler

LABELS = ["qa"] * 30 + ["numeric"] * 7 + ["choice"] * 13  # 50 rows, imbalanced


def _identity(batch):
    return batch


def loader(batch_size: int, workers: int = 0, seed: int = 3, labels=LABELS, block: int = 6) -> StatefulDataLoader:
    """The way veRL builds its train loader (``gen_batch_size`` fetches, drop_last), over our sampler."""
    sampler = TaskBalancedSampler(labels, block, seed)
    return StatefulDataLoader(
        list(range(len(labels))),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        drop_last=True,
        collate_fn=_identity,
    )


def draw(dl: StatefulDataLoader, count: int, it=None):
    """``count`` indices the way veRL's ``_fetch_one_gen_batch`` draws: a new epoch when one ends."""
    it = it if it is not None else iter(dl)
    out = []
    while len(out) < count:
        try:
            out.extend(next(it))
        except StopIteration:
            it = iter(dl)
    return out, it


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=1, max_value=25), min_size=1, max_size=4),
    per_task=st.integers(min_value=1, max_value=5),
    seed=st.integers(min_value=0, max_value=2**31),
)
def test_every_batch_holds_exactly_the_same_count_of_each_task(counts, per_task, seed):
    labels = [f"t{i}" for i, c in enumerate(counts) for _ in range(c)]
    batch = per_task * len(counts)
    sampler = TaskBalancedSampler(labels, batch, seed)
    stream = [sampler.block(b) for b in range(7)]
    for block in stream:
        assert len(block) == batch
        assert Counter(labels[i] for i in block) == {f"t{i}": per_task for i in range(len(counts))}
    # each task runs through all of its examples before repeating one: after any number of whole blocks, the
    # examples of a task have been drawn equally often, give or take one
    drawn = Counter(i for block in stream for i in block)
    for t in range(len(counts)):
        times = [drawn[i] for i, lab in enumerate(labels) if lab == f"t{t}"]
        assert max(times) - min(times) <= 1 and sum(times) == 7 * per_task


@pytest.mark.parametrize("batch_size", [1, 6])  # gen_batch_size 1 (DAPO refills) or the whole batch
def test_loader_batches_are_balanced_across_epochs(batch_size):
    dl = loader(batch_size)
    assert len(dl.sampler) == 48  # veRL's steps per epoch: len(dataset) // train_batch_size batches
    got, _ = draw(dl, 6 * 20)  # 2.5 epochs
    for b in range(0, len(got), 6):
        assert Counter(LABELS[i] for i in got[b : b + 6]) == {"qa": 2, "numeric": 2, "choice": 2}


@pytest.mark.parametrize("batch_size, workers", [(1, 0), (6, 0), (1, 2), (6, 2)])
def test_resume_continues_the_stream_exactly(batch_size, workers):
    """veRL saves ``train_dataloader.state_dict()`` as data.pt and loads it into a fresh loader on resume."""
    full, _ = draw(loader(batch_size, workers), 90)  # crosses the first epoch boundary (48)
    cut = 54  # mid-way through the second epoch
    first = loader(batch_size, workers)
    head, _ = draw(first, cut)
    state = first.state_dict()
    resumed = loader(batch_size, workers)
    resumed.load_state_dict(state)
    tail, _ = draw(resumed, 90 - cut)
    assert head + tail == full


def test_seed_decides_the_stream():
    a, _ = draw(loader(6, seed=1), 60)
    b, _ = draw(loader(6, seed=1), 60)
    c, _ = draw(loader(6, seed=2), 60)
    assert a == b and a != c


def test_resuming_with_another_seed_is_refused():
    first = loader(6, seed=1)
    draw(first, 12)
    other = loader(6, seed=2)
    with pytest.raises(ValueError, match="used seed 1, this run qwenlong.curriculum.seed=2"):
        other.load_state_dict(first.state_dict())
        next(iter(other))


def test_a_batch_not_a_multiple_of_the_tasks_rotates_the_extra_slots():
    """128 prompts over 3 tasks (the L1.5 batch): 42 or 43 of each per batch, the two extra slots rotating, so over
    any 3 consecutive batches every task has exactly 128 prompts; the stream is still the same however it is read."""
    sampler = TaskBalancedSampler(LABELS, 128, seed=5)
    assert (sampler.per_task, sampler.extra) == (42, 2)
    by_label = dict(enumerate(LABELS))
    counts = [Counter(by_label[i] for i in sampler.block(b)) for b in range(6)]
    for block in counts:
        assert sum(block.values()) == 128 and set(block.values()) <= {42, 43}
    for start in range(4):
        window = sum(counts[start : start + 3], Counter())
        assert set(window.values()) == {128}
    again = TaskBalancedSampler(LABELS, 128, seed=5)
    assert np.array_equal(again.block(4), sampler.block(4))  # block 4 alone, with no earlier block drawn
    for t in range(3):
        assert sampler.drawn_before(t, 6) == sum(c[sorted(set(LABELS))[t]] for c in counts)


def test_batch_size_must_be_positive_and_data_non_empty():
    with pytest.raises(ValueError, match=r"data.train_batch_size > 0, got 0"):
        TaskBalancedSampler(LABELS, 0)
    with pytest.raises(ValueError, match="non-empty dataset"):
        TaskBalancedSampler([], 4)


# ------------------------------------------------------------------ task labels of real prepared rows

FIVE_LABELS = ("numerical", "multi_hop", "temporal", "niah", "counting")


@pytest.mark.slow
def test_five_task_labels_of_a_veRL_dataset_are_five_balanced_groups(tmp_path):
    """synth rows labelled with five of the paper's task types -> prepare -> veRL's own RLHFDataset: the sampler
    groups by the task label (five groups over two answer types), and every batch veRL's loader yields holds each
    label equally often."""
    from omegaconf import OmegaConf
    from verl.trainer.ppo.utils import create_rl_dataset
    from verl.utils import hf_tokenizer
    from verl.utils.dataset.rl_dataset import collate_fn

    from qwenlong_verl.driver.data.prepare import prepare
    from qwenlong_verl.driver.data.synth import synth
    from qwenlong_verl.driver.data.tokenizer import builtin_tokenizer_path
    from qwenlong_verl.worker.curriculum.task_balance import balanced_dataloader, dataset_tasks

    synth(tmp_path / "s.jsonl", n=20, min_tokens=1500, max_tokens=2200, seed=7, tasks="numeric,qa", labels=FIVE_LABELS)
    stats = prepare([str(tmp_path / "s.jsonl")], str(tmp_path / "out"), "builtin", phases=[4000], workers=1, plot=False)
    assert stats.phase_stats[0].tasks == {label: 4 for label in sorted(FIVE_LABELS)}
    answer_types = stats.phase_stats[0].answer_types
    assert sum(answer_types.values()) == 20 and answer_types["choice"] == 0
    config = OmegaConf.create(
        {
            "max_prompt_length": 4000,
            "filter_overlong_prompts": True,
            "filter_overlong_prompts_workers": 1,
            "truncation": "error",
            "prompt_key": "prompt",
            "return_raw_chat": True,
            "cache_dir": str(tmp_path / "cache"),
        }
    )
    dataset = create_rl_dataset(stats.phase_files, config, hf_tokenizer(builtin_tokenizer_path()), processor=None)
    tasks = dataset_tasks(dataset)
    assert Counter(tasks) == {label: 4 for label in FIVE_LABELS}
    plain = StatefulDataLoader(dataset, batch_size=10, drop_last=True, collate_fn=collate_fn)
    balanced = balanced_dataloader(plain, tasks, batch_size=10, seed=3)
    assert sorted(balanced.sampler.tasks) == sorted(FIVE_LABELS) and balanced.sampler.per_task == 2
    batches = [next(it) for it in [iter(balanced)] for _ in range(2)]
    for batch in batches:
        labels = Counter(info["task"] for info in batch["extra_info"])
        assert labels == {label: 2 for label in FIVE_LABELS}
        assert {info["answer_type"] for info in batch["extra_info"]} <= {"numeric", "qa"}
    twelve = TaskBalancedSampler(tasks, 12, seed=3)  # 2 of each of 5, plus 2 extra slots rotating
    assert (twelve.per_task, twelve.extra) == (2, 2)
    assert set(Counter(tasks[i] for i in twelve.block(0)).values()) == {2, 3}


def test_rows_without_labels_group_by_answer_type_as_before():
    from qwenlong_verl.common.tasks import task_label_of

    rows = [
        ("docmath_x", {}),  # no label: answer type from data_source
        ("hotpotqa", {"task": "qa"}),  # an old row
        ("long_toc_choices_1", {"task": None}),
        ("hotpotqa", {"task": "multi_hop", "answer_type": "qa"}),
    ]
    tasks = [task_label_of(source, info) for source, info in rows]
    assert tasks == ["numeric", "qa", "choice", "multi_hop"]
    assert TaskBalancedSampler(tasks, 4).task_counts() == {"choice": 1, "multi_hop": 1, "numeric": 1, "qa": 1}
