"""Task-balanced prompt batches (QwenLong-L1.5): every batch holds exactly the same number of each task.

A task is a task label (``extra_info.task``: ``multi_hop``, ``numerical``, ``temporal``, ... or, for rows without
one, the answer type; :func:`qwenlong_verl.common.tasks.task_label_of`), so the paper's task types are balanced
whatever verifier scores them.

:class:`TaskBalancedSampler` is a sampler for veRL's ``StatefulDataLoader``. Its index stream is cut into blocks
of ``data.train_batch_size``; block ``b`` holds ``batch_size // T`` examples of each of the ``T`` tasks, in a
seeded random order; when the batch is not a multiple of ``T`` (the L1.5 report's 128 prompts over five task
types), ``batch_size mod T`` tasks get one more, the extra slots rotating over the tasks from block to block. Each task is an endless stream of reshuffled passes over its own examples, so a small task
is repeated more often than a large one within an epoch (an epoch is ``len(dataset) // batch_size`` blocks, as
veRL counts its steps). The dataloader fetches the stream in ``gen_batch_size`` pieces (1 under DAPO's exact
refill); which piece size does not matter, the stream is the same.

The whole stream is a pure function of ``(seed, position)``, so the iterator's state is two integers. It is a
``Stateful`` iterator: torchdata's ``StatefulDataLoader`` saves it in its ``state_dict`` (veRL writes that to
``global_step_<N>/data.pt``) at the moment each index is dispatched, prefetching workers included, and a
resumed run continues the stream exactly where the checkpoint left it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Sampler

_BLOCK_TAG = 7919
"""Separates the block-order random streams from the per-task ones (any constant)."""


class TaskBalancedSampler(Sampler[int]):
    """Dataset positions in blocks of ``batch_size`` with an equal count of every task per block (one more for
    ``batch_size mod T`` of them, rotating, when the batch is not a multiple of the ``T`` tasks)."""

    def __init__(self, tasks: Sequence[str], batch_size: int, seed: int = 1):
        labels = [str(t) for t in tasks]
        self.tasks: list[str] = sorted(set(labels))
        if not self.tasks:
            raise ValueError("task-balanced sampling needs a non-empty dataset")
        if batch_size <= 0:
            raise ValueError(f"task-balanced batches need data.train_batch_size > 0, got {batch_size}")
        self.batch_size = batch_size
        self.per_task, self.extra = divmod(batch_size, len(self.tasks))
        """Every task's count per block, and how many tasks get one more (rotating from block to block)."""
        self.seed = int(seed)
        self.members: list[np.ndarray] = [
            np.array([i for i, t in enumerate(labels) if t == task], dtype=np.int64) for task in self.tasks
        ]
        self.num_samples = len(labels) // batch_size * batch_size
        self.position = 0
        """Indices drawn since the start of the run (over all epochs): the stream's state."""
        self._passes: dict[tuple[int, int], np.ndarray] = {}

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        return _TaskBalancedIterator(self)

    # -------------------------------------------------------------- the stream

    def block(self, number: int) -> np.ndarray:
        """Dataset positions of block ``number``: ``per_task`` of each task, plus one more for ``extra`` tasks."""
        parts = []
        for t, members in enumerate(self.members):
            start, stop = self.drawn_before(t, number), self.drawn_before(t, number + 1)
            draws = [self._task_item(t, members, k) for k in range(start, stop)]
            parts.append(np.asarray(draws, dtype=np.int64))
        block = np.concatenate(parts)
        order = np.random.default_rng([self.seed, _BLOCK_TAG, number]).permutation(len(block))
        return block[order]

    def drawn_before(self, t: int, number: int) -> int:
        """Draws of task ``t`` in blocks ``0 .. number-1``. The ``extra`` one-more slots of block ``b`` are slots
        ``b*extra .. (b+1)*extra - 1`` of an endless round over the tasks, so over any ``T`` blocks every task gets
        the same count, and the count is a closed form of ``(t, number)`` (the stream stays a pure function)."""
        slots = number * self.extra
        return number * self.per_task + max(0, (slots - t + len(self.tasks) - 1) // len(self.tasks))

    def _task_item(self, t: int, members: np.ndarray, k: int) -> int:
        """The ``k``-th draw of task ``t``: pass ``k // n`` over its examples, reshuffled per pass."""
        n = len(members)
        key = (t, k // n)
        shuffled = self._passes.get(key)
        if shuffled is None:
            shuffled = members[np.random.default_rng([self.seed, t, k // n]).permutation(n)]
            self._passes = {kk: v for kk, v in self._passes.items() if kk[0] != t}  # keep one pass per task
            self._passes[key] = shuffled
        return int(shuffled[k % n])

    def task_counts(self) -> dict[str, int]:
        """Examples per task in the dataset."""
        return {task: len(m) for task, m in zip(self.tasks, self.members, strict=True)}


class _TaskBalancedIterator(Iterator[int]):
    """One epoch of the sampler's stream; ``Stateful`` (``state_dict`` / ``load_state_dict``) for torchdata."""

    def __init__(self, sampler: TaskBalancedSampler):
        self.sampler = sampler
        self.yielded = 0
        self._block_number = -1
        self._block: np.ndarray | None = None

    def __iter__(self) -> _TaskBalancedIterator:
        return self

    def __next__(self) -> int:
        s = self.sampler
        if self.yielded >= len(s):
            raise StopIteration
        number, offset = divmod(s.position, s.batch_size)
        if number != self._block_number:
            self._block, self._block_number = s.block(number), number
        s.position += 1
        self.yielded += 1
        return int(self._block[offset])

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.sampler.position, "yielded": self.yielded, "seed": self.sampler.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("seed", self.sampler.seed) != self.sampler.seed:
            raise ValueError(
                f"the checkpoint's task-balanced sampler used seed {state['seed']}, this run "
                f"qwenlong.curriculum.seed={self.sampler.seed}; resume with the same seed"
            )
        self.sampler.position = int(state["position"])
        self.yielded = int(state["yielded"])


def dataset_tasks(dataset) -> list[str]:
    """Task label of every row of a veRL ``RLHFDataset`` (``extra_info.task``, else the answer type)."""
    from qwenlong_verl.common.tasks import task_label_of

    frame = getattr(dataset, "dataframe", None)
    if frame is None or "data_source" not in frame.column_names:
        raise ValueError(
            f"task-balanced sampling reads data_source / extra_info.task of each row; {type(dataset).__name__} "
            "has no such dataframe columns (use veRL's RLHFDataset on prepared parquet)"
        )
    sources = frame["data_source"]
    infos = frame["extra_info"] if "extra_info" in frame.column_names else [None] * len(sources)
    return [task_label_of(source, info) for source, info in zip(sources, infos, strict=True)]


def balanced_dataloader(loader, tasks: Sequence[str], batch_size: int, seed: int):
    """veRL's training ``StatefulDataLoader`` rebuilt with the same settings over a :class:`TaskBalancedSampler`."""
    import logging

    from torchdata.stateful_dataloader import StatefulDataLoader

    sampler = TaskBalancedSampler(tasks, batch_size, seed)
    logging.getLogger(__name__).info(
        "task-balanced prompt batches: %d per task (+1 for %d of the %d tasks, rotating) per batch of %d, dataset %s",
        sampler.per_task,
        sampler.extra,
        len(sampler.tasks),
        batch_size,
        sampler.task_counts(),
    )
    return StatefulDataLoader(
        dataset=loader.dataset,
        batch_size=loader.batch_size,
        num_workers=loader.num_workers,
        drop_last=loader.drop_last,
        collate_fn=loader.collate_fn,
        sampler=sampler,
    )
