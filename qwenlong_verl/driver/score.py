"""Offline scoring of a JSONL file of responses (behind ``qwenlong-verl score``), and the one batch-scoring loop.

One JSON object per line, in veRL's row shape or flat:

``data_source``    routes the verifier unless ``extra_info`` names the answer type; one of the two is required
``response``       the model's full response (``solution_str`` is accepted too)
``ground_truth``   the gold answer(s) (or ``reward_model.ground_truth``, as in veRL rows; or ``answer``, as in raw
                   records: a ``synth`` file with a ``response`` added to each line scores as it is)
``extra_info``     optional: ``question`` (for the judge), ``answer_type`` (numeric, choice, qa), ``task`` (the task
                   label the summary groups by; one of the answer types stands for both), option lists

All lines are checked before anything is scored; a bad line is reported with its number and the field.
Scoring uses :func:`qwenlong_verl.worker.rewards.compute_score_async`, exactly like training, through
:func:`score_each`, which ``eval`` uses too. ``--output`` is written atomically and never over the input.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from qwenlong_verl.common.aio import for_each
from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.files import atomic_writer, input_problem, refuse_overwriting
from qwenlong_verl.common.tasks import TaskFieldError, resolve_task, task_label_of
from qwenlong_verl.driver.data.schema import RowError, is_gold_value, read_json_lines

logger = logging.getLogger(__name__)


class ScoreInputError(InputError):
    """A responses file that cannot be scored; the message names the line and the field."""


class Scorable(Protocol):
    """What the scorer needs of one response (a :class:`ScoreRow`, an eval ``ScoreRequest``)."""

    data_source: str
    response: str
    ground_truth: Any
    extra_info: Mapping[str, Any]


@dataclass
class ScoreRow:
    """One response to score."""

    line: int
    data_source: str
    response: str
    ground_truth: Any
    extra_info: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None
    """The file it was read from (``--output`` must not be it)."""

    @property
    def task(self) -> str:
        """The task label the summary groups by (the answer type when the row names no label)."""
        return task_label_of(self.data_source, self.extra_info)


def load_rows(path: str | Path) -> list[ScoreRow]:
    """Read and check every line of ``path`` (as bytes, one line at a time); raises :class:`ScoreInputError`
    naming the first bad line and how many there are, so nothing is scored from a file with bad lines."""
    path = Path(path)
    problem = input_problem([path])
    if problem:
        raise ScoreInputError(f"{problem}; pass a JSONL file with one response per line")
    rows: list[ScoreRow] = []
    bad: list[str] = []
    for number, raw in read_json_lines(path, error=ScoreInputError):
        if isinstance(raw, RowError):
            bad.append(raw.at(f"{path} line {number}"))
            continue
        try:
            rows.append(_row(raw, path, number))
        except ScoreInputError as exc:
            bad.append(str(exc))
    if bad:
        more = f" (and {len(bad) - 1} more bad lines; fix them all, nothing was scored)" if len(bad) > 1 else ""
        raise ScoreInputError(bad[0] + more)
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
    ground_truth = raw.get("ground_truth", raw.get("answer"))  # answer: a raw record's (synth, prepare input)
    if ground_truth is None and isinstance(reward_model, Mapping):
        ground_truth = reward_model.get("ground_truth")
    if ground_truth is None or ground_truth == "" or ground_truth == []:
        raise ScoreInputError(
            f"{where}: field 'ground_truth' (or 'answer', 'reward_model.ground_truth') is missing or empty"
        )
    if not is_gold_value(ground_truth) and not (
        isinstance(ground_truth, list) and all(map(is_gold_value, ground_truth))
    ):
        raise ScoreInputError(
            f"{where}: field 'ground_truth' must be text, a number or a list of them, "
            f"got {type(ground_truth).__name__} {str(ground_truth)[:40]!r}"
        )
    extra_info = raw.get("extra_info") or {}
    if not isinstance(extra_info, dict):
        raise ScoreInputError(f"{where}: field 'extra_info' must be an object, got {type(extra_info).__name__}")
    # a raw record (synth, prepare input) names its task label and answer type at the top level
    lifted = {k: raw[k] for k in ("task", "answer_type") if k in raw and k not in extra_info}
    if lifted:
        extra_info = {**extra_info, **lifted}

    def name(key: str) -> str:
        return key if key in lifted else f"extra_info.{key}"

    for key in ("question", "task", "answer_type"):
        if extra_info.get(key) is not None and not isinstance(extra_info[key], str):
            raise ScoreInputError(f"{where}: field {name(key)!r} must be a string")
    data_source = raw.get("data_source")
    if data_source is not None and not isinstance(data_source, str):
        raise ScoreInputError(f"{where}: field 'data_source' must be a string")
    try:
        named, _ = resolve_task(extra_info.get("task"), extra_info.get("answer_type"), "")
    except TaskFieldError as exc:
        raise ScoreInputError(f"{where}: field {name(exc.field)!r}: {exc}") from None
    if not data_source and not named:
        raise ScoreInputError(
            f"{where}: needs 'data_source' or 'extra_info.answer_type' (numeric, choice or qa) to choose the verifier"
        )
    return ScoreRow(number, data_source or "", response, ground_truth, extra_info, raw, path)


async def score_each(
    samples: Sequence[Scorable],
    judge_kwargs: Mapping[str, Any],
    on_done: Callable[[int, Mapping[str, Any] | Exception], None],
    concurrency: int = 64,
) -> None:
    """Score every sample with the training reward, ``concurrency`` at a time (judge requests are further
    bounded by the judge's own limit); ``on_done(index, result)`` gets each result as it finishes, or the
    exception the scorer raised for that sample (logged; the others go on). What ``on_done`` raises stops
    the loop. The judge sessions of this event loop are closed at the end."""
    from qwenlong_verl.worker.rewards.hybrid import compute_score_async
    from qwenlong_verl.worker.rewards.judge import close_clients

    async def one(index: int) -> None:
        sample = samples[index]
        try:
            outcome = await compute_score_async(
                sample.data_source, sample.response, sample.ground_truth, dict(sample.extra_info), **judge_kwargs
            )
        except Exception as exc:  # a scorer bug in one sample must not cost the others
            logger.warning("scoring sample %d raised %s: %s", index, type(exc).__name__, exc)
            outcome = exc
        on_done(index, outcome)

    try:
        await for_each(range(len(samples)), one, concurrency)
    finally:
        await close_clients()


async def score_rows(
    rows: Sequence[ScoreRow],
    judge_kwargs: Mapping[str, Any],
    on_done: Callable[[int, dict[str, Any]], None] | None = None,
    concurrency: int = 2048,
) -> list[dict[str, Any]]:
    """Score ``rows`` (the judge client bounds the requests in flight); results in row order.

    A scorer exception is a bug, not a bad row: it stops the command with its traceback."""
    results: list[dict[str, Any]] = [{} for _ in rows]

    def done(index: int, outcome: Mapping[str, Any] | Exception) -> None:
        if isinstance(outcome, Exception):
            raise outcome
        results[index] = dict(outcome)
        if on_done is not None:
            on_done(index, results[index])

    await score_each(rows, judge_kwargs, done, concurrency)
    return results


def write_results(path: str | Path, rows: Sequence[ScoreRow], results: Sequence[Mapping[str, Any]]) -> None:
    """Each input object with its result under ``"reward"``, one per line; atomic, and never over an input."""
    refuse_overwriting(path, {row.source for row in rows if row.source is not None})
    with atomic_writer(path) as handle:
        for row, result in zip(rows, results, strict=True):
            handle.write(json.dumps({**row.raw, "reward": dict(result)}, ensure_ascii=False) + "\n")
