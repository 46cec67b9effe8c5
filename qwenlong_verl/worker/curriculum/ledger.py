"""The difficulty ledger: one JSON line per prompt per training step, append-only, exact across resumes.

A record says how one prompt fared at one step: its ``rollout.n`` responses' mean reward, pass rate and
length. Retrospective sampling (:mod:`~qwenlong_verl.driver.retrospective`) reads the ledgers of earlier
phases to find their hard examples; ``extra_info.index`` (stable per example, written by ``prepare``) is the
key. Example line::

    {"phase": "phase1", "step": 12, "uid": "5f0c…", "index": 4711, "task": "qa", "data_source": "docqa",
     "n": 8, "mean_reward": 0.375, "reward_std": 0.484, "pass_rate": 0.375, "mean_response_length": 2301.5,
     "retro": false, "trained": true}

``trained`` is false for groups veRL generated but left out of the update (DAPO's dynamic sampling drops the
groups whose responses all score the same — exactly the all-wrong and all-right prompts — and the surplus once
a batch is full): their rewards still measure difficulty, so they are recorded too.

Resume. The trainer appends a step's records *before* veRL saves that step's checkpoint. A crash can leave
records of steps after the last checkpoint, or a torn last line; on resume from step ``N`` the trainer calls
:meth:`DifficultyLedger.truncate_after` ``(N)``, so the ledger again holds steps ``1..N`` exactly once and the
resumed run appends ``N+1`` onwards: no duplicated or missing steps.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from qwenlong_verl.common.files import atomic_writer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LedgerRecord:
    """How one prompt (one GRPO group) fared at one step."""

    phase: str
    """Name of the phase (``qwenlong.curriculum.phase``)."""
    step: int
    """veRL's ``global_steps`` when the group's rollouts were scored."""
    uid: str
    """veRL's group id (new for every draw of the prompt)."""
    index: int | None
    """``extra_info.index`` of the dataset row: the example's stable id (``None`` if the row has none)."""
    task: str
    """Task label (:func:`qwenlong_verl.common.tasks.task_label_of`: ``multi_hop``, ``numerical``, ``qa``, ...)."""
    data_source: str
    """The row's ``data_source``."""
    n: int
    """Number of rollouts of the group."""
    mean_reward: float
    """Mean sequence reward of the rollouts; difficulty is ``1 - mean_reward``."""
    reward_std: float
    """Population std of the rollouts' rewards (0: a zero-variance group, no GRPO signal)."""
    pass_rate: float
    """Share of rollouts that passed (``qwenlong.curriculum.pass_key`` / ``pass_threshold``)."""
    mean_response_length: float
    """Mean response length in tokens."""
    retro: bool
    """The example was carried over from an earlier phase (``extra_info.phase`` below this phase's number)."""
    trained: bool
    """The group was in the actor update (false: generated, then left out by DAPO filtering or as surplus)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LedgerRecord:
        names = {f.name for f in fields(cls)}
        missing = names - set(data)
        if missing:
            raise ValueError(f"ledger record lacks {', '.join(sorted(missing))}")
        return cls(**{name: data[name] for name in names})


def group_records(
    *,
    phase: str,
    phase_number: int,
    step: int,
    uid: Sequence[Any],
    index: Sequence[Any],
    task: Sequence[str],
    data_source: Sequence[Any],
    row_phase: Sequence[Any],
    reward: Sequence[float],
    passed: Sequence[bool],
    response_length: Sequence[float],
    trained: bool,
) -> list[LedgerRecord]:
    """One record per group (``uid``) from per-rollout arrays, in order of each group's first row.

    All arrays are aligned, one entry per rollout, without veRL's padding rows. ``row_phase`` is the row's
    ``extra_info.phase`` (``None`` when absent).
    """
    n_rows = len(uid)
    for name, values in (
        ("index", index),
        ("task", task),
        ("data_source", data_source),
        ("row_phase", row_phase),
        ("reward", reward),
        ("passed", passed),
        ("response_length", response_length),
    ):
        if len(values) != n_rows:
            raise ValueError(f"ledger input {name!r} has {len(values)} entries for {n_rows} rollouts")
    rows_of: dict[str, list[int]] = defaultdict(list)
    for row, group in enumerate(uid):
        rows_of[str(group)].append(row)
    rewards = np.asarray(reward, dtype=np.float64)
    passes = np.asarray(passed, dtype=bool)
    lengths = np.asarray(response_length, dtype=np.float64)
    records = []
    for group, rows in rows_of.items():
        first = rows[0]
        r = rewards[rows]
        origin = row_phase[first]
        records.append(
            LedgerRecord(
                phase=phase,
                step=int(step),
                uid=group,
                index=None if index[first] is None else int(index[first]),
                task=str(task[first]),
                data_source=str(data_source[first]),
                n=len(rows),
                mean_reward=float(r.mean()),
                reward_std=float(r.std()),
                pass_rate=float(passes[rows].mean()),
                mean_response_length=float(lengths[rows].mean()),
                retro=origin is not None and int(origin) < phase_number,
                trained=trained,
            )
        )
    return records


def step_metrics(records: Sequence[LedgerRecord], phase_number: int) -> dict[str, float]:
    """The ``qwenlong/*`` figures of one step's records, for veRL's metrics dict.

    Rewards and pass rates are over every rollout scored this step (trained or not); shares of tasks and of
    carried-over examples are over the prompts in the update; the zero-variance share is over every group.
    """
    metrics: dict[str, float] = {"qwenlong/phase": float(phase_number), "qwenlong/ledger_records": float(len(records))}
    if not records:
        return metrics
    rollouts: dict[str, float] = defaultdict(float)
    reward_sum: dict[str, float] = defaultdict(float)
    pass_sum: dict[str, float] = defaultdict(float)
    for rec in records:
        rollouts[rec.task] += rec.n
        reward_sum[rec.task] += rec.n * rec.mean_reward
        pass_sum[rec.task] += rec.n * rec.pass_rate
    for task in sorted(rollouts):
        metrics[f"qwenlong/reward/{task}"] = reward_sum[task] / rollouts[task]
        metrics[f"qwenlong/pass_rate/{task}"] = pass_sum[task] / rollouts[task]
    metrics["qwenlong/zero_var_group_share"] = sum(rec.reward_std == 0.0 for rec in records) / len(records)
    trained = [rec for rec in records if rec.trained]
    if trained:
        metrics["qwenlong/retro_share"] = sum(rec.retro for rec in trained) / len(trained)
        for task in sorted({rec.task for rec in trained}):
            metrics[f"qwenlong/task_share/{task}"] = sum(rec.task == task for rec in trained) / len(trained)
    metrics["qwenlong/dropped_groups"] = float(len(records) - len(trained))
    return metrics


class DifficultyLedger:
    """The append-only JSONL file of one run (one phase)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def append(self, records: Iterable[LedgerRecord]) -> int:
        """Append records and make them durable (flush + fsync); returns how many were written."""
        lines = [rec.to_json() + "\n" for rec in records]
        if not lines:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write("".join(lines))
            handle.flush()
            os.fsync(handle.fileno())
        return len(lines)

    def read(self) -> list[LedgerRecord]:
        """Every complete record; a torn last line (crash mid-write) is skipped with a warning."""
        return [rec for rec, _ in self._scan()]

    def steps(self) -> list[int]:
        """The distinct steps present, ascending."""
        return sorted({rec.step for rec in self.read()})

    def truncate_after(self, step: int) -> int:
        """Keep only records of steps ``<= step`` (and drop torn lines); returns the number of lines removed.

        Rewrites the file atomically (a kill leaves the old ledger or the new one), and only when something has to go.
        """
        if not self.path.exists():
            return 0
        scanned = self._scan()
        total_lines = self._line_count()
        kept = [line for rec, line in scanned if rec.step <= step]
        removed = total_lines - len(kept)
        if removed == 0:
            return 0
        with atomic_writer(self.path) as handle:
            handle.writelines(kept)
        logger.info("ledger %s: dropped %d line(s) after step %d (resume)", self.path, removed, step)
        return removed

    def _line_count(self) -> int:
        with open(self.path, encoding="utf-8") as handle:
            return sum(1 for line in handle if line.strip())

    def _scan(self) -> list[tuple[LedgerRecord, str]]:
        if not self.path.exists():
            return []
        out = []
        with open(self.path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = LedgerRecord.from_dict(json.loads(line))
                except (ValueError, TypeError) as exc:
                    logger.warning("ledger %s line %d unreadable (%s); ignored", self.path, number, exc)
                    continue
                out.append((record, line if line.endswith("\n") else line + "\n"))
        return out
