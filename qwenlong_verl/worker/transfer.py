"""Reading fields of a batch from veRL's TransferQueue, with a named error when a stage's input is missing."""

from __future__ import annotations

from collections.abc import Sequence

from qwenlong_verl.common.errors import RunFailed


class MissingFields(RunFailed):
    """A trainer stage asked TransferQueue for fields the batch does not carry."""


def get_fields(batch, fields: Sequence[str], why: str):
    """``fields`` of every row of ``batch`` (a ``KVBatchMeta``), in ``batch.keys`` order; raises
    :class:`MissingFields` naming the absent ones and ``why`` (what produces them, what to change)."""
    import transfer_queue as tq

    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=list(fields))
    missing = [name for name in fields if name not in data.keys()]
    if missing:
        raise MissingFields(f"TransferQueue has no {', '.join(missing)} for this batch: {why}")
    return data
