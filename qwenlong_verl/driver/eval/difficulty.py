"""``qwenlong-verl difficulty``: measure pass@k of prepared training rows with a served model, resumably.

QwenLong-L1.5 grades its RL data by the base model's pass@k before training. This samples the served model
``n`` times on each row's own prompt (the chat messages ``prepare`` wrote, sent as they are: the lengths and the
template training will use), scores every sample with the training reward, and writes the difficulty file that
``prepare --difficulty`` reads (:mod:`qwenlong_verl.driver.data.difficulty`).

It is an ``eval`` run whose items are training rows instead of benchmark files: the same folder layout
(``run.json``, ``items.jsonl``, append-only ``generations.jsonl`` / ``scores.jsonl``, ``report/``), client,
timeouts, retries, concurrency, resume and refusal of changed settings
(:func:`qwenlong_verl.driver.eval.runner.run_eval_async`). A rerun draws only what is missing or failed.
``difficulty.jsonl`` is rebuilt from the folder after every run, also after a failed one: an example with no
answered sample is written ``measured: false`` (no pass rate, never 0), and the command then exits 1 so that a
rerun retries the failures.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.files import input_problem, refuse_overwriting
from qwenlong_verl.common.lock import FolderLock
from qwenlong_verl.common.tasks import answer_type_of
from qwenlong_verl.driver.data.difficulty import DIFFICULTY_FILE, Measurement, bin_counts, bin_labels, write_difficulty
from qwenlong_verl.driver.data.prepare import read_records
from qwenlong_verl.driver.data.schema import RowError, validate_row
from qwenlong_verl.driver.eval.benchmarks import EvalItem
from qwenlong_verl.driver.eval.benchmarks.resolve import BenchSource
from qwenlong_verl.driver.eval.generate import GenerationSetupError, GenerationStats
from qwenlong_verl.driver.eval.runner import EvalConfig, EvalResult, Progress, run_eval_async
from qwenlong_verl.driver.eval.scoring import outcomes
from qwenlong_verl.driver.eval.store import EvalFolder, latest_by_key, latest_generations, read_jsonl
from qwenlong_verl.driver.eval.truncate import FittedPrompt

logger = logging.getLogger(__name__)

LOCK_FILE = ".difficulty.lock"
_LOGGED = 20


class DifficultyInputError(InputError):
    """Prepared rows that cannot be measured (no usable row, an output over an input)."""


@dataclass
class DifficultyConfig(EvalConfig):
    """One ``difficulty`` run: an eval run (endpoint, sampling, judge, folder) over prepared training rows."""

    benches: list[str]
    """Prepared rows to measure: `qwenlong-verl prepare`'s phase<N>.parquet (jsonl of prepared rows too)."""

    out: Path
    """The measurement folder (an eval folder: samples, scores, report/); created, resumed when it exists."""

    n: int = 8
    """Samples per example (QwenLong's group size 8); pass@k is written for k = 1, 2, 4, ... n."""

    limit: int | None = None
    """First N usable rows only (over all inputs, in order)."""

    judge_prompt: str | None = None
    """Judge prompt preset (strict, qwenlong_l1, qwenlong_l15); None: the reward's own (strict). Give the one
    training uses, so that difficulty is judged as the training reward judges."""

    rescore: bool = False
    """Score every sample again (after changing the judge)."""

    rating: bool = False
    """Loong-style LLM rating: never for training rows."""

    output: str | None = None
    """The difficulty file to write (default OUT/difficulty.jsonl); `prepare --difficulty` reads it."""

    def __post_init__(self):
        if not self.benches:
            raise DifficultyInputError("give at least one --input FILE (a prepared phase<N>.parquet)")
        super().__post_init__()
        problem = input_problem(self.benches)
        if problem:
            raise DifficultyInputError(f"--input: {problem}")
        folder = EvalFolder(self.out)  # the file replaces neither an input nor the folder's own records
        kept = [*self.benches, folder.manifest, folder.items, folder.generations, folder.scores, folder.report_dir]
        refuse_overwriting(self.output_path, kept, flag="--output")

    @property
    def output_path(self) -> Path:
        return Path(self.output) if self.output else self.out / DIFFICULTY_FILE


@dataclass(frozen=True)
class PreparedExample:
    """One prepared row, as the measurement sees it."""

    key: str
    """``extra_info.source_id``: the difficulty file's key."""

    path: str
    """The file it was read from."""

    item: EvalItem
    """The row as an eval item; its id is the key (the request header escapes what it cannot carry)."""

    prompt: FittedPrompt
    index: int
    task: str
    phase: int

    @property
    def item_id(self) -> str:
        return self.item.id


def read_prepared(paths: Sequence[str | Path], limit: int | None = None) -> tuple[list[PreparedExample], list[str]]:
    """The usable prepared rows of ``paths`` in order, and one message per row skipped (not a prepared row, or a
    ``source_id`` seen before). A file that cannot be read at all raises."""
    examples: list[PreparedExample] = []
    skipped: list[str] = []
    first: dict[str, str] = {}
    for path in paths:
        for row, record in read_records(path):
            if limit is not None and len(examples) >= limit:
                return examples, skipped
            where = f"{path}:{row}"
            try:
                if isinstance(record, RowError):
                    raise record
                validate_row(record, row, str(path))
                extra = record["extra_info"]
                key = str(extra["source_id"])
                if key in first:
                    raise RowError(str(path), row, "extra_info.source_id", f"{key!r} repeats {first[key]}", "duplicate")
            except RowError as exc:
                skipped.append(str(exc))
                if len(skipped) <= _LOGGED:
                    logger.warning("difficulty: skipped %s", exc)
                continue
            first[key] = where
            examples.append(_example(record, key, str(path), where))
    if len(skipped) > _LOGGED:
        logger.warning("difficulty: ... and %d more rows skipped", len(skipped) - _LOGGED)
    return examples, skipped


def _example(record: dict[str, Any], key: str, path: str, where: str) -> PreparedExample:
    extra = record["extra_info"]
    choices = list(extra.get("choices") or [])
    messages = [{"role": m["role"], "content": m["content"]} for m in record["prompt"]]
    item = EvalItem(
        id=key,
        benchmark=str(record["data_source"]),
        document="",  # the prompt is sent as prepared; nothing is templated or truncated
        question=str(extra["question"]),
        gold=str(record["reward_model"]["ground_truth"]),
        task=answer_type_of(record["data_source"], extra),
        data_source=str(record["data_source"]),
        choices=tuple(choices) if choices else None,
        source=where,
        meta={"key": key, "index": extra["index"], "task": extra["task"], "phase": extra["phase"]},
    )
    tokens = int(extra["input_tokens"])
    return PreparedExample(
        key=key,
        path=path,
        item=item,
        prompt=FittedPrompt(messages, tokens, tokens, False),
        index=int(extra["index"]),
        task=str(extra["task"]),
        phase=int(extra["phase"]),
    )


@dataclass
class DifficultyResult:
    """What a ``difficulty`` run measured and wrote."""

    output: Path
    measurements: list[Measurement]
    skipped: list[str]
    """Input rows left out (one message each)."""

    eval: EvalResult | None
    """The eval pass (None when the endpoint could not be used at all)."""

    setup_error: str | None = None
    """Why nothing could be drawn (endpoint down, model not served)."""

    failed_samples: int = 0
    """Samples of these examples still without a score (failed requests or scoring, not drawn)."""

    @property
    def generation(self) -> GenerationStats:
        return self.eval.generation if self.eval is not None else GenerationStats()

    @property
    def measured(self) -> int:
        return sum(m.measured for m in self.measurements)


def measurements_from_folder(
    folder: EvalFolder, examples: Sequence[PreparedExample], n: int, model: str
) -> list[Measurement]:
    """Per example, its answered samples and correct ones as the folder holds them now (samples ``k < n``)."""
    generations = latest_generations(read_jsonl(folder.generations))
    scores = latest_by_key(read_jsonl(folder.scores))
    results = outcomes({e.item_id: {} for e in examples}, generations, scores, n)
    measurements = []
    for e in examples:
        samples = [results[(e.item_id, k)] for k in range(n)]
        measurements.append(
            Measurement(
                key=e.key,
                samples=sum(o.scored for o in samples),
                correct=sum(o.correct for o in samples),
                n=n,
                failed=sum(o.request_failed or o.scoring_failed for o in samples),
                model=model,
                index=e.index,
                task=e.task,
                data_source=e.item.data_source,
                phase=e.phase,
            )
        )
    return measurements


def measure(config: DifficultyConfig, progress: Progress | None = None) -> DifficultyResult:
    """Sample, score and write the difficulty file (see the module docs); a dead endpoint is reported in
    :attr:`DifficultyResult.setup_error`, with the file written from what the folder already holds."""
    examples, skipped = read_prepared(config.benches, config.limit)
    if not examples:
        first = f": {skipped[0]}" if skipped else ""
        raise DifficultyInputError(
            f"no usable prepared row in {', '.join(map(str, config.benches))}{first}; "
            "give the phase<N>.parquet files `qwenlong-verl prepare` writes"
        )
    paths: dict[str, dict[Path, None]] = {}  # data source -> the files holding it, in order
    for e in examples:
        paths.setdefault(e.item.benchmark, {})[Path(e.path)] = None
    sources = [BenchSource(name, tuple(files)) for name, files in paths.items()]
    loaded = (sources, [e.item for e in examples], [e.prompt for e in examples])
    with FolderLock(config.out, LOCK_FILE, "qwenlong-verl difficulty"):
        result, setup_error = None, None
        try:
            result = asyncio.run(run_eval_async(config, progress, loaded=loaded))
        except GenerationSetupError as exc:
            setup_error = str(exc)  # the caller reports it; the folder's samples still make the file
        measurements = measurements_from_folder(EvalFolder(config.out), examples, config.n, config.generation.model)
        write_difficulty(config.output_path, measurements)
    return DifficultyResult(
        output=config.output_path,
        measurements=measurements,
        skipped=skipped,
        eval=result,
        setup_error=setup_error,
        failed_samples=sum(config.n - m.samples for m in measurements),
    )


@dataclass
class DifficultySummary:
    """Figures of a measurement for the CLI and the docs."""

    examples: int
    measured: int
    solved: int
    unsolvable: int
    mean_pass_rate: float | None
    bins: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


def summarize(measurements: Sequence[Measurement], edges: Sequence[float]) -> DifficultySummary:
    """Counts of measured / solved / unsolvable examples, the mean pass@1 and the measured examples per bin."""
    measured = [m for m in measurements if m.measured]
    return DifficultySummary(
        examples=len(measurements),
        measured=len(measured),
        solved=sum(m.solved for m in measured),
        unsolvable=sum(m.unsolvable for m in measured),
        mean_pass_rate=sum(m.pass_rate for m in measured) / len(measured) if measured else None,
        bins=bin_counts((m.pass_rate for m in measured), edges),
        labels=bin_labels(edges),
    )
