"""Task-balanced prompt batches: exact per batch, every example in turn, resumable through StatefulDataLoader."""

from __future__ import annotations

from collections import Counter

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


def test_batch_size_must_be_a_multiple_of_the_tasks():
    with pytest.raises(ValueError) as err:
        TaskBalancedSampler(LABELS, 128)
    text = str(err.value)
    assert "data.train_batch_size (128) to be a multiple of the 3 tasks" in text
    assert "'qa': 30" in text and "use data.train_batch_size 126 or 129" in text
    with pytest.raises(ValueError, match="non-empty dataset"):
        TaskBalancedSampler([], 4)
