"""The memory record: what the memory agent loop tells the trainer about each output it returns.

The loop puts it in the output's ``extra_fields`` under :data:`MEMORY_FIELD`; veRL stores ``extra_fields`` with
the row in TransferQueue, where the trainer's metrics stage reads it back
(:mod:`qwenlong_verl.worker.agent.trainer_stages`).
"""

from __future__ import annotations

from typing import Any

MEMORY_FIELD = "qwenlong_memory"
"""Key of the memory record in an output's ``extra_fields``."""

MEMORY_ROLE, ANSWER_ROLE = "memory", "answer"
"""``role`` of a memory update and of the final answer."""


def memory_record(extra_fields: Any) -> dict | None:
    """The memory record of one row's ``extra_fields`` (a dict, or tensordict's ``NonTensorData`` of one), or
    ``None`` for a row of another agent loop."""
    fields = getattr(extra_fields, "data", extra_fields)
    record = fields.get(MEMORY_FIELD) if isinstance(fields, dict) else None
    return record if isinstance(record, dict) else None
