"""Offline scoring of a JSONL file of responses (behind ``qwenlong-verl score``).

One JSON object per line, in veRL's row shape or flat:

``data_source``    routes the verifier (or ``extra_info.task``); at least one of the two is required
``response``       the model's full response (``solution_str`` is accepted too)
``ground_truth``   the gold answer(s) (or ``reward_model.ground_truth``, as in veRL rows)
``extra_info``     optional: ``question`` (for the judge), ``task``, option lists

All lines are checked before anything is scored; a bad line is reported with its number and the field.
Scoring uses :func:`qwenlong_verl.worker.rewards.compute_score_async`, exactly like training.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwenlong_verl.common.tasks import task_of


class ScoreInputError(ValueError):
    """A responses file that cannot be scored; the message names the line and the field."""


@dataclass
class ScoreRow:
    """One response to score."""

    line: int
    data_source: str
    response: str
    ground_truth: Any
    extra_info: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return task_of(self.data_source, self.extra_info)


def load_rows(path: str | Path) -> list[ScoreRow]:
    """Read and check every line of ``path``; raises :class:`ScoreInputError` at the first bad one."""
    path = Path(path)
    if not path.is_file():
        raise ScoreInputError(f"{path}: no such file; pass a JSONL file with one response per line")
    rows: list[ScoreRow] = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except ValueError as exc:
                raise ScoreInputError(f"{path} line {number}: not valid JSON ({exc.msg})") from None
            rows.append(_row(raw, path, number))
    if not rows:
        raise ScoreInputError(f"{path}: no rows; each line must be a JSON object with response and ground_truth")
    return rows


def _row(raw: Any, path: Path, number: int) -> ScoreRow:
    where = f"{path} line {number}"
    if not isinstance(raw, dict):
        raise ScoreInputError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    response = raw.get("response", raw.get("solution_str"))
    if not isinstance(response, str):
        raise ScoreInputError(f"{where}: field 'response' (or 'solution_str') must be a string with the model output")
    reward_model = raw.get("reward_model")
    ground_truth = raw.get("ground_truth")
    if ground_truth is None and isinstance(reward_model, Mapping):
        ground_truth = reward_model.get("ground_truth")
    if ground_truth is None or ground_truth == "" or ground_truth == []:
        raise ScoreInputError(f"{where}: field 'ground_truth' (or 'reward_model.ground_truth') is missing or empty")
    extra_info = raw.get("extra_info") or {}
    if not isinstance(extra_info, dict):
        raise ScoreInputError(f"{where}: field 'extra_info' must be an object, got {type(extra_info).__name__}")
    data_source = raw.get("data_source")
    if data_source is not None and not isinstance(data_source, str):
        raise ScoreInputError(f"{where}: field 'data_source' must be a string")
    if not data_source and not extra_info.get("task"):
        raise ScoreInputError(
            f"{where}: needs 'data_source' or 'extra_info.task' to choose the verifier (numeric, choice or qa)"
        )
    if extra_info.get("task"):
        from qwenlong_verl.common.tasks import UnknownTaskError, normalize_task

        try:
            normalize_task(extra_info["task"])
        except UnknownTaskError as exc:
            raise ScoreInputError(f"{where}: extra_info.task: {exc}") from None
    return ScoreRow(number, data_source or "", response, ground_truth, extra_info, raw)


async def score_rows(
    rows: Sequence[ScoreRow],
    judge_kwargs: Mapping[str, Any],
    on_done: Callable[[int, dict[str, Any]], None] | None = None,
    window: int = 2048,
) -> list[dict[str, Any]]:
    """Score ``rows`` concurrently (the judge client bounds the requests in flight); results in row order."""
    from qwenlong_verl.worker.rewards.hybrid import compute_score_async
    from qwenlong_verl.worker.rewards.judge import close_clients

    results: list[dict[str, Any]] = [{} for _ in rows]
    slots = asyncio.Semaphore(window)

    async def one(index: int, row: ScoreRow) -> None:
        async with slots:
            result = await compute_score_async(
                row.data_source, row.response, row.ground_truth, row.extra_info, **judge_kwargs
            )
        results[index] = result
        if on_done is not None:
            on_done(index, result)

    try:
        await asyncio.gather(*(one(i, row) for i, row in enumerate(rows)))
    finally:
        await close_clients()
    return results


def write_results(path: str | Path, rows: Sequence[ScoreRow], results: Sequence[Mapping[str, Any]]) -> None:
    """Each input object with its result under ``"reward"``, one per line."""
    with Path(path).open("w", encoding="utf-8") as handle:
        for row, result in zip(rows, results, strict=True):
            handle.write(json.dumps({**row.raw, "reward": dict(result)}, ensure_ascii=False) + "\n")
