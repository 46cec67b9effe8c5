"""v1 trainer stage of the memory agent: the ``qwenlong/memory_*`` step metrics.

:class:`MemoryAgentStages` is a mixin for veRL's v1 ``PPOTrainer`` (composed into the ``qwenlong`` trainer mode).
Its one override, ``_compute_metrics``, runs veRL's own and then reads the memory record the agent loop put in
each output's ``extra_fields`` (:mod:`~qwenlong_verl.worker.agent.record`) from TransferQueue. A batch without memory records (a single-turn run) adds nothing.

What the rest of the trainer mode does for multi-output trajectories lives where each decision is made: the
task-norm advantage (``algos/trainer_stages.py``) and the difficulty ledger (``curriculum/trainer_stages.py``)
count a trajectory once, by its final output (:mod:`qwenlong_verl.worker.agent.turns`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from qwenlong_verl.worker.agent.record import MEMORY_ROLE, memory_record
from qwenlong_verl.worker.agent.turns import trajectory_turns


def memory_metrics(keys: Sequence[str], extra_fields: Sequence[Any], is_padding: Sequence[bool]) -> dict[str, float]:
    """``qwenlong/memory_*`` figures of one batch (empty when no row has a memory record).

    Per trajectory (its final row): generations in the batch, chunks read, document tokens, whether the document
    was cut to ``max_chunks``. Per memory update: memory tokens after the budget cut, whether it was cut."""
    turns = trajectory_turns(keys)
    records = [None if pad else memory_record(fields) for fields, pad in zip(extra_fields, is_padding, strict=True)]
    if not any(records):
        return {}
    final = turns.final & np.array([r is not None for r in records])
    generations = turns.generations[final].astype(float)
    ends = [records[i] for i in np.flatnonzero(final)]
    updates = [r for r in records if r is not None and r.get("role") == MEMORY_ROLE]
    memory_tokens = np.array([float(r.get("memory_tokens", 0)) for r in updates]) if updates else np.zeros(1)
    metrics = {
        "qwenlong/memory_trajectories": float(final.sum()),
        "qwenlong/memory_generations/mean": float(generations.mean()),
        "qwenlong/memory_generations/max": float(generations.max()),
        "qwenlong/memory_generations/min": float(generations.min()),
        "qwenlong/memory_chunks/mean": float(np.mean([r.get("steps", 0) for r in ends])),
        "qwenlong/memory_document_tokens/mean": float(np.mean([r.get("document_tokens", 0) for r in ends])),
        "qwenlong/memory_document_cut_share": float(np.mean([bool(r.get("document_cut")) for r in ends])),
        "qwenlong/memory_tokens/mean": float(memory_tokens.mean()),
        "qwenlong/memory_tokens/max": float(memory_tokens.max()),
        "qwenlong/memory_truncations": float(sum(bool(r.get("memory_truncated")) for r in updates)),
        "qwenlong/memory_truncated_share": float(np.mean([bool(r.get("memory_truncated")) for r in updates]))
        if updates
        else 0.0,
    }
    if any("plan_truncated" in r for r in updates):
        metrics["qwenlong/memory_plan_truncated_share"] = float(
            np.mean([bool(r.get("plan_truncated")) for r in updates])
        )
    return metrics


class MemoryAgentStages:
    """``qwenlong/memory_*`` metrics as an override of veRL's v1 ``_compute_metrics`` (see the module docstring)."""

    def _compute_metrics(self, batch, metrics: dict, timing_raw: dict, global_steps: int, epoch: int):
        import transfer_queue as tq

        result = super()._compute_metrics(batch, metrics, timing_raw, global_steps=global_steps, epoch=epoch)
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["extra_fields"])
        if "extra_fields" in data.keys():
            extra = data["extra_fields"]
            extra = list(extra.tolist() if hasattr(extra, "tolist") else extra)
            padding = [bool(tag.get("is_padding", False)) for tag in batch.tags]
            metrics.update(memory_metrics(batch.keys, extra, padding))
        return result
