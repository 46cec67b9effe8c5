"""Per-sample ``(uid, index, task)`` of a v1 training batch, read from TransferQueue.

What reaches TransferQueue. veRL's agent loop stores every trajectory row with all columns of its dataset
row as fields (``AgentLoopWorkerTQ._agent_loop_postprocess``: ``field.update(kwargs)``), so beside the
tensors each row carries the non-tensor fields ``data_source``, ``extra_info`` (our prepared rows put
``index``, ``task`` and ``input_tokens`` there), ``reward_model``, ``index`` and the group id ``uid``.
Rows that veRL appends to make the batch divisible (``upsample_batch_to_divisible_size``) copy these fields
from the first real row but are tagged ``is_padding``; they are not samples and must not be counted.

The ``qwenlong`` trainer mode needs the task label for the task-specific advantage; the curriculum ledger needs
``(index, task)`` with each reward. The label is the row's task label (``extra_info.task``: ``multi_hop``,
``numerical``, ... or, for rows without one, the answer type; :func:`qwenlong_verl.common.tasks.task_label_of`),
not its answer type: tasks that share a verifier can still have very different reward spreads. Both read them through :func:`read_sample_labels`, in the key order of
the :class:`~transfer_queue.KVBatchMeta` — the order in which veRL's own stages read the same batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qwenlong_verl.common.tasks import task_label_of
from qwenlong_verl.worker.transfer import get_fields

LABEL_FIELDS = ("uid", "data_source", "extra_info")
"""TransferQueue fields :func:`read_sample_labels` reads."""


@dataclass(frozen=True)
class SampleLabels:
    """Labels of the rows of one batch, aligned with its keys."""

    uid: np.ndarray
    """Group id (one prompt and its ``rollout.n`` responses), object array."""

    index: np.ndarray
    """``extra_info["index"]`` of the source row (``None`` where missing), object array."""

    task: np.ndarray
    """Task label (:func:`qwenlong_verl.common.tasks.task_label_of`), ``None`` for padding rows; object array."""

    is_padding: np.ndarray
    """Bool: veRL's synthetic padding rows."""

    def __len__(self) -> int:
        return len(self.uid)


def sample_labels(
    uid: Sequence[Any],
    data_source: Sequence[Any],
    extra_info: Sequence[Any],
    is_padding: Sequence[bool] | None = None,
) -> SampleLabels:
    """Build :class:`SampleLabels` from the raw per-row fields (labels: :func:`qwenlong_verl.common.tasks.task_label_of`)."""
    n = len(uid)
    if len(data_source) != n or len(extra_info) != n:
        raise ValueError(
            f"label fields disagree in length: uid {n}, data_source {len(data_source)}, extra_info {len(extra_info)}"
        )
    padding = np.zeros(n, dtype=bool) if is_padding is None else np.asarray(is_padding, dtype=bool)
    if len(padding) != n:
        raise ValueError(f"is_padding has {len(padding)} entries for {n} rows")
    task = np.empty(n, dtype=object)
    index = np.empty(n, dtype=object)
    routed: dict[tuple[str, Any, Any], str] = {}
    for i, (source, info) in enumerate(zip(data_source, extra_info, strict=True)):
        info = info if isinstance(info, dict) else {}
        index[i] = info.get("index")
        if padding[i]:
            continue
        key = (str(source), info.get("task"), info.get("answer_type"))
        if key not in routed:
            routed[key] = task_label_of(source, info)
        task[i] = routed[key]
    return SampleLabels(uid=np.asarray(list(uid), dtype=object), index=index, task=task, is_padding=padding)


def read_sample_labels(batch) -> SampleLabels:
    """Labels of every row of a TransferQueue batch (``KVBatchMeta``), in ``batch.keys`` order."""
    data = get_fields(
        batch,
        LABEL_FIELDS,
        "the dataset rows must carry data_source and extra_info (prepare them with `qwenlong-verl prepare`)",
    )
    padding = [bool(tag.get("is_padding", False)) for tag in batch.tags]
    return sample_labels(
        uid=_as_list(data.get("uid")),
        data_source=_as_list(data.get("data_source")),
        extra_info=_as_list(data.get("extra_info")),
        is_padding=padding,
    )


def _as_list(value: Any) -> list[Any]:
    """A TensorDict non-tensor column (``NonTensorStack``, or the list ``td[key]`` gives) as a plain list."""
    return list(value.tolist() if hasattr(value, "tolist") else value)
