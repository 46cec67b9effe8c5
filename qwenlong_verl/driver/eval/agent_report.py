"""What the report says about how items were answered (``--agent``): a memory-agent run's trajectories by input length,
and one run beside another (``report DIR --compare OTHER``).

* **Memory agent**: per input-length bucket, the items, accuracy, answered trajectories, mean generations per
  trajectory (K + 1) and the share of memory updates whose memory was cut to its budget; over the run, what the
  trajectories cost in generations and server-counted tokens.
* **Compare**: accuracy of this run and of OTHER per input-length bucket, on the items both folders hold (same
  item ids). An item is placed by the length of its whole input, ``original_input_tokens`` (before any
  truncation), so a 1M-token question sits in the same bucket for a memory agent that read all of it and for a
  full-context run that saw its first and last 64K tokens.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qwenlong_verl.driver.eval.scoring import FolderResults, bucket_bounds, bucket_label, in_bucket, length_buckets

MEMORY = "memory"


def agent_of(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The run's agent settings (``run.json``); folders from before ``--agent`` are full-context runs."""
    agent = manifest.get("agent")
    return dict(agent) if isinstance(agent, Mapping) and agent.get("name") else {"name": "full"}


def agent_label(manifest: Mapping[str, Any]) -> str:
    """How the run answered, in words."""
    agent = agent_of(manifest)
    if agent["name"] == MEMORY:
        parts = [f"chunk {agent.get('chunk_tokens', 0):,}", f"memory {agent.get('memory_tokens', 0):,}"]
        if agent.get("plan_tokens"):
            parts.append(f"plan {agent['plan_tokens']:,}")
        if agent.get("max_chunks"):
            parts.append(f"at most {agent['max_chunks']} chunks")
        return f"memory agent ({', '.join(parts)} tokens)"
    limit = manifest.get("max_input_tokens")
    return "full context" + (f", middle-truncated to {limit:,} tokens" if isinstance(limit, int) else "")


def length_of(item: Mapping[str, Any]) -> int | None:
    """Tokens of the item's whole input (before truncation), else of the input as sent."""
    for key in ("original_input_tokens", "input_tokens"):
        value = item.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


# ----------------------------------------------------------------------------- memory agent


@dataclass
class MemoryBucket:
    label: str
    lo: int
    hi: int | None
    items: int
    accuracy: float
    """Over items × n; unanswered trajectories count as wrong."""
    answered: int
    """Trajectories with an answer (samples: items × n)."""
    generations_mean: float | None
    """Mean generations (K memory updates + 1 answer) of the answered trajectories."""
    memory_truncated_share: float | None
    """Memory updates whose memory was cut to its budget, of all memory updates of the answered trajectories."""


@dataclass
class MemorySummary:
    """A memory-agent run's trajectories (``summary.json`` ``memory_agent``)."""

    settings: dict[str, Any]
    trajectories: int
    """Samples: items × n."""
    answered: int
    failed: int
    """Trajectories whose last attempt failed (a server fault after retries); the rest of the unanswered ones were
    never finished (interrupted run)."""
    generations: int
    """Generations of the answered trajectories."""
    generations_mean: float | None
    generations_max: int | None
    memory_updates: int
    memory_truncations: int
    documents_cut: int
    """Answered trajectories whose document had more than ``max_chunks`` chunks."""
    prompt_tokens: int
    """Server-counted prompt tokens of the answered trajectories' generations."""
    completion_tokens: int
    cut_at_max_tokens: int
    """Generations of the answered trajectories stopped by their token budget."""
    buckets: list[MemoryBucket] = field(default_factory=list)


def _trajectory(generation: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The ``memory`` record of an answered trajectory's row, else None."""
    if not generation or generation.get("status") != "ok":
        return None
    memory = generation.get("memory")
    return memory if isinstance(memory, Mapping) and isinstance(memory.get("generations"), int) else None


def _count(memory: Mapping[str, Any], key: str) -> int:
    value = memory.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def memory_summary(loaded: FolderResults, edges: Sequence[int]) -> MemorySummary | None:
    """The trajectories of a memory-agent run by input-length bucket; None for another agent's run."""
    agent = agent_of(loaded.manifest)
    if agent["name"] != MEMORY:
        return None
    n, items = loaded.n, loaded.items
    keys = [(it["id"], k) for it in items for k in range(n)]
    done = {key: m for key in keys if (m := _trajectory(loaded.generations.get(key))) is not None}
    failed = sum(1 for key in keys if (g := loaded.generations.get(key)) and g.get("status") != "ok")
    counts = [_count(m, "generations") for m in done.values()]
    accuracy = {b.label: b for b in length_buckets(items, loaded.results, n, edges) if b.benchmark == "all"}
    buckets = []
    for lo, hi in bucket_bounds(edges):
        inside = [it for it in items if in_bucket(it.get("input_tokens"), lo, hi)]
        if not inside:
            continue
        mine = [m for it in inside for k in range(n) if (m := done.get((it["id"], k))) is not None]
        updates = sum(_count(m, "chunks") for m in mine)
        label = bucket_label(lo, hi)
        buckets.append(
            MemoryBucket(
                label=label,
                lo=lo,
                hi=hi,
                items=len(inside),
                accuracy=accuracy[label].accuracy,
                answered=len(mine),
                generations_mean=statistics.fmean(_count(m, "generations") for m in mine) if mine else None,
                memory_truncated_share=sum(_count(m, "memory_truncations") for m in mine) / updates
                if updates
                else None,
            )
        )
    return MemorySummary(
        settings=agent,
        trajectories=len(keys),
        answered=len(done),
        failed=failed,
        generations=sum(counts),
        generations_mean=statistics.fmean(counts) if counts else None,
        generations_max=max(counts) if counts else None,
        memory_updates=sum(_count(m, "chunks") for m in done.values()),
        memory_truncations=sum(_count(m, "memory_truncations") for m in done.values()),
        documents_cut=sum(bool(m.get("document_cut")) for m in done.values()),
        prompt_tokens=sum(_count(m, "prompt_tokens") for m in done.values()),
        completion_tokens=sum(_count(m, "completion_tokens") for m in done.values()),
        cut_at_max_tokens=sum(_count(m, "cut_at_max_tokens") for m in done.values()),
        buckets=buckets,
    )


# ----------------------------------------------------------------------------- compare


@dataclass
class CompareRow:
    label: str
    lo: int
    hi: int | None
    items: int
    accuracy: float
    """This run's accuracy over the bucket's common items."""
    other_accuracy: float
    other_truncated: int
    """Items of the bucket the other run middle-truncated."""


@dataclass
class Comparison:
    """This run beside another on their common items (``summary.json`` ``compare``)."""

    other: str
    agent: str
    other_agent: str
    common: int
    only_here: int
    only_there: int
    rows: list[CompareRow] = field(default_factory=list)
    """One per input-length bucket with common items, then ``all``."""


def _by_length(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{**it, "input_tokens": length_of(it)} for it in items]


def compare_runs(this: FolderResults, other: FolderResults, edges: Sequence[int]) -> Comparison:
    """Accuracy of ``this`` and ``other`` per input-length bucket (whole-input length) on their common items."""
    mine = {it["id"]: it for it in this.items}
    theirs = {it["id"]: it for it in other.items}
    common = [i for i in mine if i in theirs]
    here = _by_length([mine[i] for i in common])
    there = _by_length([theirs[i] for i in common])
    a = {b.label: b for b in length_buckets(here, this.results, this.n, edges) if b.benchmark == "all"}
    b = {x.label: x for x in length_buckets(there, other.results, other.n, edges) if x.benchmark == "all"}
    rows = []
    for lo, hi in [*bucket_bounds(edges), (0, None)]:
        label = "all" if (lo, hi) == (0, None) else bucket_label(lo, hi)
        inside = [it for it in there if label == "all" or in_bucket(it["input_tokens"], lo, hi)]
        if label == "all":
            flat_a = [this.results[(it["id"], k)].correct for it in here for k in range(this.n)]
            flat_b = [other.results[(it["id"], k)].correct for it in there for k in range(other.n)]
            if not flat_a:
                continue
            acc_a, acc_b = sum(flat_a) / len(flat_a), sum(flat_b) / len(flat_b)
        elif label in a:
            acc_a, acc_b = a[label].accuracy, b[label].accuracy
        else:
            continue
        truncated = sum(bool(it.get("truncated")) for it in inside)
        rows.append(CompareRow(label, lo, hi, len(inside), acc_a, acc_b, truncated))
    return Comparison(
        other=str(other.folder.root),
        agent=agent_label(this.manifest),
        other_agent=agent_label(other.manifest),
        common=len(common),
        only_here=len(mine) - len(common),
        only_there=len(theirs) - len(common),
        rows=rows,
    )
