"""``prepare``: validate input records, count prompt tokens as veRL will, split into phase windows, write parquet.

Phased training needs every example's length *as veRL sees it* (same template, same tokenizer, same chat
template kwargs) and rows that cannot fail mid-training. Phase windows are disjoint length bins:
``phase1.parquet`` holds prompts of at most ``phases[0]`` tokens, ``phase2.parquet`` those in
``(phases[0], phases[1]]`` and so on; a prompt longer than the last window is a problem row.

Problems are reported by file and row number. By default the bad rows are dropped and counted; with
``strict=True`` :class:`PrepareError` lists them and nothing is written. Output is deterministic: same inputs,
tokenizer and phases give byte-identical files (``extra_info.index`` is the example's 0-based position among
all input rows, so it does not move when phases or filters change).
"""

from __future__ import annotations

import json
import logging
import os
import re
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.files import atomic_folder, input_problem, refuse_overwriting
from qwenlong_verl.common.tasks import ANSWER_TYPES
from qwenlong_verl.driver.data import difficulty as pass_rates
from qwenlong_verl.driver.data.schema import (
    Example,
    RowError,
    arrow_schema,
    check_count,
    make_row,
    parse_record,
    read_json_file,
    read_json_lines,
    text_problem,
)
from qwenlong_verl.driver.data.template import build_messages, count_rendered_tokens, render_prompt
from qwenlong_verl.driver.data.tokenizer import load_tokenizer

logger = logging.getLogger(__name__)

DEFAULT_PHASES: tuple[int, ...] = (20000, 60000)
"""QwenLong-L1's two input windows (20K then 60K tokens)."""

STATS_FILE = "stats.json"
HISTOGRAM_FILE = "lengths.png"
MAX_PROBLEMS_IN_STATS = 1000
_LOGGED_PROBLEMS = 20

ProgressCallback = Callable[[int, int], None]
"""``progress(rows_counted, rows_to_count)``, called after each batch of token counting."""


class PrepareError(InputError):
    """Bad arguments (input files, phases, tokenizer, an output that is an input); nothing was written."""


class BadRowsError(PrepareError):
    """``strict`` and some rows are bad: the message lists them (up to 20), :attr:`problems` has them all."""

    def __init__(self, message: str, problems: list[Problem]):
        super().__init__(message)
        self.problems = problems


def phase_file(output_dir: str | Path, phase: int) -> Path:
    """``DIR/phase<N>.parquet`` for the 1-based phase ``N`` (the name the curriculum and ``plan`` expect)."""
    return Path(output_dir) / f"phase{phase}.parquet"


_WINDOW = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,3}))?(k)?")
"""A phase window: a whole number of tokens, or thousands with up to three decimals (``20k``, ``1.5k``)."""


def parse_phases(text: str | Sequence[int]) -> list[int]:
    """``"20000,60000"`` or ``"20k,60k"`` (or a list) -> strictly increasing positive windows; ``1e3``, ``20.5``
    and ``nan`` are refused, not rounded."""
    items: Sequence[Any] = text.split(",") if isinstance(text, str) else text
    windows = []
    for item in items:
        raw = str(item).strip().lower().replace("_", "")
        found = _WINDOW.fullmatch(raw)
        if not found or (found.group(2) and not found.group(3)):
            raise PrepareError(
                f"phase window {item!r} is not a token count (a whole number: use e.g. 20000,60000 or 20k,60k)"
            )
        whole, fraction, kilo = found.groups()
        windows.append(int(whole) * 1000 + int((fraction or "").ljust(3, "0")) if kilo else int(whole))
    if not windows:
        raise PrepareError("give at least one phase window, e.g. --phases 20000,60000")
    if any(w <= 0 for w in windows) or any(b <= a for a, b in zip(windows, windows[1:], strict=False)):
        raise PrepareError(f"phase windows must be positive and strictly increasing, got {windows}")
    return windows


def phase_of(tokens: int, phases: Sequence[int]) -> int | None:
    """1-based phase whose window holds ``tokens`` (disjoint bins), or None when longer than the last."""
    for number, upper in enumerate(phases, start=1):
        if tokens <= upper:
            return number
    return None


@dataclass(frozen=True)
class Problem:
    """One dropped (or, with strict, fatal) input row."""

    source: str
    row: int
    field: str
    reason: str
    message: str

    @classmethod
    def from_error(cls, error: RowError) -> Problem:
        return cls(error.source, error.row, error.field, error.reason, error.detail)

    def __str__(self) -> str:
        return f"{self.source} row {self.row}: field {self.field!r}: {self.message}"


@dataclass
class PhaseStats:
    """What one phase file holds."""

    phase: int
    file: str
    """File name inside the output directory (``phase<N>.parquet``)."""
    min_exclusive: int
    """Prompts here are longer than this (0 for phase 1)."""
    max_inclusive: int
    """... and at most this long: the phase window, veRL's ``data.max_prompt_length`` for it."""
    rows: int
    tasks: dict[str, int]
    """Rows per task label present (``extra_info.task``: ``multi_hop``, ``numerical``, ... or an answer type)."""
    answer_types: dict[str, int]
    """Rows per answer type (``numeric``, ``choice``, ``qa``; zero counts included)."""
    tokens: dict[str, float]
    """min / max / mean / p50 / p90 of ``input_tokens`` (empty when the phase has no rows)."""


@dataclass
class PrepareStats:
    """Result of :func:`prepare` (also written to ``stats.json``, without :attr:`output_dir`, so the file depends
    only on the inputs)."""

    output_dir: str
    tokenizer: str
    phases: list[int]
    inputs: list[str]
    rows_read: int
    rows_written: int
    dropped: dict[str, int]
    """Dropped rows per reason (``missing``, ``empty``, ``unknown_task``, ``bad_task``, ``bad_gold``, ``too_long``,
    ...)."""
    phase_stats: list[PhaseStats]
    problems: list[Problem] = field(default_factory=list)
    histogram: str | None = None
    """File name of the PNG histogram inside the output directory (None when not plotted)."""
    apply_chat_template_kwargs: dict = field(default_factory=dict)
    difficulty: pass_rates.DifficultyReport | None = None
    """What ``--difficulty`` did: pass@1 bins per phase before and after, rows left out (None without it)."""

    @property
    def phase_files(self) -> list[str]:
        """Full paths of the phase files, phase 1 first."""
        return [str(Path(self.output_dir) / p.file) for p in self.phase_stats]

    def to_dict(self) -> dict:
        """What ``stats.json`` holds (problems capped at :data:`MAX_PROBLEMS_IN_STATS`, the total kept)."""
        data = asdict(self)
        data.pop("output_dir")
        data["problems_total"] = len(self.problems)
        data["problems"] = [asdict(p) for p in self.problems[:MAX_PROBLEMS_IN_STATS]]
        return data


# ----------------------------------------------------------------------------- reading


def each_example(
    inputs: Sequence[str | Path],
    max_chars: int | None,
    problems: list[Problem],
    build: Callable[[Mapping[str, Any], Example, str, int], Any],
) -> Iterator[tuple[int, str, int, Any]]:
    """Every source row parsed into an :class:`Example` and handed to ``build(record, example, path, row)``;
    yields ``(index, path, row, built)``, ``index`` counting every row read. A bad row — unreadable, malformed,
    too long for ``max_chars``, or refused by ``build`` with a ``RowError`` / ``ValueError`` — is added to
    ``problems`` and skipped: the one reading loop of ``prepare`` and ``sft-data``."""
    rows_read = 0
    for path in inputs:
        for row, record in read_records(path):
            index = rows_read
            rows_read += 1
            try:
                if isinstance(record, RowError):
                    raise record
                built = build(record, parse_record(record, str(path), row, max_chars), str(path), row)
            except RowError as err:
                problems.append(Problem.from_error(err))
                continue
            except ValueError as err:  # template refusals the schema does not catch
                problems.append(Problem(str(path), row, "prompt", "invalid", str(err)))
                continue
            yield index, str(path), row, built


def read_records(path: str | Path) -> Iterator[tuple[int, Any]]:
    """``(row, record)`` for each record of a jsonl / json / parquet file; ``row`` is 1-based (jsonl: the line).

    A row that is not usable text (bad JSON, bytes that are not UTF-8, a lone surrogate, an oversized line) yields
    a :class:`RowError` in place of the record; a whole file that cannot be read raises :class:`PrepareError`.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        row = 0
        try:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=256):
                for record in batch.to_pylist():
                    row += 1
                    yield row, record
        except (pa.ArrowException, UnicodeDecodeError, OSError) as exc:
            raise PrepareError(f"{path} row {row + 1}: not a readable parquet file ({str(exc)[:200]})") from None
    elif suffix == ".jsonl":
        yield from read_json_lines(path, error=PrepareError)
    elif suffix == ".json":
        data = read_json_file(path, error=PrepareError)
        if not isinstance(data, list):
            raise PrepareError(f"{path}: a .json input must hold a list of records (or use .jsonl)")
        for row, record in enumerate(data, start=1):
            problem = text_problem(record)
            yield row, RowError(str(path), row, *problem, "not_text") if problem else record
    else:
        raise PrepareError(f"{path}: unsupported input format {suffix!r}; use .jsonl, .json or .parquet")


# ----------------------------------------------------------------------------- token counting

_worker_tokenizer = None
_worker_kwargs: dict = {}


def _init_worker(tokenizer_name: str, apply_chat_template_kwargs: dict, in_pool: bool = True) -> None:
    global _worker_tokenizer, _worker_kwargs
    if in_pool:
        os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one process per core already; in-process, Rust threads
    _worker_tokenizer = load_tokenizer(tokenizer_name)
    _worker_kwargs = dict(apply_chat_template_kwargs)


LONG_PROMPT_CHARS = 1 << 18
"""A rendered prompt longer than this (256K characters, ~60K tokens) is counted by :func:`count_long_text`."""

_PIECE_CHARS = 1 << 15
_PIECES_PER_CALL = 32
_LINE_START = re.compile(r"\n(?=\S)")
_CUTS_EXACT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""Tokenizer -> whether :func:`line_pieces` cuts keep its counts exact (probed once per tokenizer)."""
_PROBE = (
    "Document 12: Brolda Holdings annual report\nBrolda Holdings is a shipping company. It's 'quoted'.\n\n"
    "| Metric | 2019 | 2020 |\n|---|---|---|\n| Revenue (million USD) | 123.4 | -5.06 |\n\n  indented line\n"
    "\ttab\r\nCRLF line\n中文的句子。\nÉtude naïve — über.\n1,234,567 items; 3.14%!\n<|im_end|>\n<|im_start|>user\n"
)


def line_pieces(text: str, size: int = _PIECE_CHARS) -> Iterator[str]:
    """``text`` in pieces of about ``size`` characters, each cut after a line break that a non-space character
    follows: a byte-level BPE tokenizer (Qwen, Llama 3, GPT-style) never joins a token across such a cut."""
    start = 0
    while len(text) - start > size:
        cut = _LINE_START.search(text, start + size)
        if cut is None:
            break
        yield text[start : cut.end()]
        start = cut.end()
    yield text[start:]


def _cuts_are_exact(tokenizer) -> bool:
    """Whether counting at every line start adds up to the whole text's count for this tokenizer (a sentencepiece
    tokenizer that marks the start of a text would count one more token per piece)."""
    found = _CUTS_EXACT.get(tokenizer)
    if found is None:
        probe = _PROBE * 3
        whole = count_rendered_tokens([probe], tokenizer)[0]
        found = _CUTS_EXACT[tokenizer] = sum(count_rendered_tokens(list(line_pieces(probe, 1)), tokenizer)) == whole
    return found


def count_long_text(text: str, tokenizer) -> int:
    """Tokens of a long rendered prompt, exactly as a whole-text count, in bounded time and memory.

    One million tokens as one text take a tokenizer 5-15 s on one thread and ~0.5 GB (ids, offsets and token
    strings of every token). Counted in :func:`line_pieces`, a few at a time, the pieces spread over the
    tokenizer's threads and only one call's tokens are held. Where cuts would change the count
    (:func:`_cuts_are_exact`), the text is counted whole.
    """
    if not _cuts_are_exact(tokenizer):
        return count_rendered_tokens([text], tokenizer)[0]
    total, pieces = 0, []
    for piece in line_pieces(text):
        pieces.append(piece)
        if len(pieces) == _PIECES_PER_CALL:
            total += sum(count_rendered_tokens(pieces, tokenizer))
            pieces = []
    return total + sum(count_rendered_tokens(pieces, tokenizer))


def _count_batch(batch: list[list[dict]]) -> list[int]:
    texts = [render_prompt(messages, _worker_tokenizer, _worker_kwargs) for messages in batch]
    short = [i for i, text in enumerate(texts) if len(text) <= LONG_PROMPT_CHARS]
    counts = dict(zip(short, count_rendered_tokens([texts[i] for i in short], _worker_tokenizer), strict=True))
    return [counts[i] if i in counts else count_long_text(text, _worker_tokenizer) for i, text in enumerate(texts)]


def count_tokens(
    prompts: Sequence[list[dict]],
    tokenizer: str,
    workers: int = 1,
    batch_size: int = 32,
    apply_chat_template_kwargs: Mapping[str, Any] | None = None,
    progress: ProgressCallback | None = None,
) -> list[int]:
    """Token counts of chat-templated prompts, in order, in parallel batches.

    ``workers=1`` (default) counts in this process: each batch goes to the fast tokenizer's Rust ``encode_batch``,
    which already spreads a batch over all cores. ``workers>1`` uses a process pool instead (each worker
    single-threaded); it pays off only where rendering the chat template, not tokenising, dominates — measured
    in ``bench/bench_data.py``: on 2 cores the pool is slower, its workers spend seconds importing transformers.
    """
    kwargs = dict(apply_chat_template_kwargs or {})
    batches = [list(prompts[i : i + batch_size]) for i in range(0, len(prompts), batch_size)]
    counts: list[int] = []

    def collect(results: Iterator[list[int]]) -> None:
        for result in results:
            counts.extend(result)
            if progress is not None:
                progress(len(counts), len(prompts))

    if workers <= 1 or len(batches) <= 1:
        _init_worker(tokenizer, kwargs, in_pool=False)
        collect(map(_count_batch, batches))
    else:
        import multiprocessing

        # spawn: the parent may already run the tokenizer's Rust thread pool, which does not survive fork
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_worker, initargs=(tokenizer, kwargs)
        ) as pool:
            collect(pool.map(_count_batch, batches))
    return counts


# ----------------------------------------------------------------------------- prepare


def max_token_chars(tokenizer) -> int:
    """Characters one token can cover at most: its vocabulary's longest entry (a byte-level token of N bytes holds
    at most N characters). A text of more than ``window * max_token_chars`` characters cannot fit ``window``."""
    return max(1, max(map(len, tokenizer.get_vocab()), default=1))


def messages_of(example: Example) -> list[dict]:
    """The chat prompt of an example: its own (veRL rows) or THE template's (raw records); shared with SFT."""
    if example.prompt is not None:
        return example.prompt
    return build_messages(example.document or "", example.question, example.answer_type, example.choices or None)


def token_summary(values: list[int]) -> dict[str, float]:
    """min / max / mean / p50 / p90 of token counts, as ``stats.json`` reports them (empty for no values)."""
    if not values:
        return {}
    ordered = sorted(values)

    def quantile(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "min": ordered[0],
        "max": ordered[-1],
        "mean": round(sum(ordered) / len(ordered), 2),
        "p50": quantile(0.5),
        "p90": quantile(0.9),
    }


def prepare(
    inputs: Sequence[str],
    output_dir: str,
    tokenizer: str,
    phases: Sequence[int] | str = DEFAULT_PHASES,
    strict: bool = False,
    workers: int = 1,
    batch_size: int = 32,
    apply_chat_template_kwargs: Mapping[str, Any] | None = None,
    plot: bool = True,
    progress: ProgressCallback | None = None,
    difficulty: pass_rates.DifficultyFilter | None = None,
) -> PrepareStats:
    """Validate, count, split and write; see the module docstring. Returns what was written and dropped.

    ``tokenizer``: the policy's (a folder or a hub name), or ``"builtin"`` for the bundled one. It has no default:
    lengths counted by another tokenizer would put rows in the wrong phases without a word.
    ``apply_chat_template_kwargs`` must equal the training config's ``data.apply_chat_template_kwargs`` (for
    instance ``{"enable_thinking": False}``), or the counted lengths differ from veRL's.
    ``difficulty`` (a pass@k difficulty file and what to do with it) annotates, filters and balances the rows of
    each phase after the length split (:mod:`qwenlong_verl.driver.data.difficulty`).
    """
    windows = parse_phases(phases)
    if not inputs:
        raise PrepareError("give at least one input file (--input FILE)")
    problem = input_problem(inputs)
    if problem:
        raise PrepareError(problem)
    if Path(output_dir).exists() and not Path(output_dir).is_dir():
        raise PrepareError(f"--output-dir {output_dir} is a file; give a folder")
    try:
        for n in range(1, len(windows) + 1):
            refuse_overwriting(phase_file(output_dir, n), inputs, flag="--output-dir")
        for name in (STATS_FILE, HISTOGRAM_FILE, pass_rates.REPORT_FILE):
            refuse_overwriting(Path(output_dir) / name, inputs, flag="--output-dir")
    except InputError as exc:
        raise PrepareError(str(exc)) from None
    for flag, count in (("--workers", workers), ("batch_size", batch_size)):
        check_count(flag, count, error=PrepareError)
    # fail fast, before reading gigabytes, with the tokenizer's own message
    max_chars = windows[-1] * max_token_chars(load_tokenizer(tokenizer))
    measured = pass_rates.load_difficulty(difficulty.file) if difficulty is not None and difficulty.active else None

    problems: list[Problem] = []
    examples: list[tuple[int, Example]] = []
    seen_ids: dict[str, tuple[str, int]] = {}

    def unique_with_prompt(record: Mapping[str, Any], example: Example, path: str, row: int) -> Example:
        if example.source_id in seen_ids:
            first = seen_ids[example.source_id]
            message = f"duplicate id {example.source_id!r} (first at {first[0]} row {first[1]})"
            raise RowError(path, row, "id", message, "duplicate_id")
        seen_ids[example.source_id] = (path, row)
        example.prompt = messages_of(example)
        return example

    for index, _path, _row, example in each_example(inputs, max_chars, problems, unique_with_prompt):
        examples.append((index, example))
    rows_read = len(examples) + len(problems)  # every row read is either an example or a problem so far

    counts = count_tokens(
        [ex.prompt for _, ex in examples],
        tokenizer=tokenizer,
        workers=workers,
        batch_size=batch_size,
        apply_chat_template_kwargs=apply_chat_template_kwargs,
        progress=progress,
    )

    by_phase: dict[int, list[dict]] = {n: [] for n in range(1, len(windows) + 1)}
    for (index, example), tokens in zip(examples, counts, strict=True):
        phase = phase_of(tokens, windows)
        if phase is None:
            problems.append(
                Problem(
                    example.source,
                    example.row,
                    "prompt",
                    "too_long",
                    f"{tokens} tokens, longer than the last phase window {windows[-1]}; add a larger window to "
                    "--phases or leave the example out",
                )
            )
            continue
        by_phase[phase].append(make_row(example, example.prompt, index, tokens, phase))

    order = {str(p): n for n, p in reversed(list(enumerate(inputs)))}
    problems.sort(key=lambda p: (order.get(p.source, 0), p.row))
    for problem in problems[:_LOGGED_PROBLEMS]:
        logger.warning("dropped %s", problem)
    if len(problems) > _LOGGED_PROBLEMS:
        logger.warning("... and %d more problem rows (all listed in %s)", len(problems) - _LOGGED_PROBLEMS, STATS_FILE)
    if strict and problems:
        listed = "\n".join(f"  {p}" for p in problems[:_LOGGED_PROBLEMS])
        more = f"\n  ... and {len(problems) - _LOGGED_PROBLEMS} more" if len(problems) > _LOGGED_PROBLEMS else ""
        raise BadRowsError(f"{len(problems)} bad row(s) (strict mode, nothing written):\n{listed}{more}", problems)
    report = None
    if measured is not None:
        by_phase, report = pass_rates.apply_difficulty(by_phase, measured, difficulty)

    if not any(by_phase.values()):  # before the swap: the bins of an earlier run stay
        reasons = Counter(p.reason for p in problems) + Counter(report.dropped if report else {})
        why = ", ".join(f"{reason} {count}" for reason, count in reasons.most_common(3)) or "no rows"
        raise PrepareError(
            f"no usable rows in {', '.join(map(str, inputs))} ({rows_read} read; dropped: {why}); nothing written"
        )
    out = Path(output_dir)
    for path in sorted(out.glob("phase*.parquet")):
        if _is_own(path.name) and int(path.stem[5:]) > len(windows):
            logger.warning("removing %s left by an earlier run with more phases", path)
    # All bins and stats.json appear together or not at all; other files in the folder (inputs) are kept.
    with atomic_folder(out, keep=lambda name: not _is_own(name)) as new:
        phase_stats = [
            _write_phase(new, n, windows, sorted(rows, key=lambda r: r["extra_info"]["index"]))
            for n, rows in by_phase.items()
        ]
        stats = PrepareStats(
            output_dir=str(out),
            tokenizer=str(tokenizer),
            phases=windows,
            inputs=[str(p) for p in inputs],
            rows_read=rows_read,
            rows_written=sum(p.rows for p in phase_stats),
            dropped=dict(
                sorted((Counter(p.reason for p in problems) + Counter(report.dropped if report else {})).items())
            ),
            phase_stats=phase_stats,
            problems=problems,
            apply_chat_template_kwargs=dict(apply_chat_template_kwargs or {}),
            difficulty=report,
        )
        if plot:
            stats.histogram = HISTOGRAM_FILE
            plot_lengths({p.phase: _lengths(by_phase[p.phase]) for p in phase_stats}, windows, new / HISTOGRAM_FILE)
        (new / STATS_FILE).write_text(
            json.dumps(stats.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        if report is not None:
            (new / pass_rates.REPORT_FILE).write_text(pass_rates.report_markdown(report), encoding="utf-8")
    return stats


def _is_own(name: str) -> bool:
    """A file ``prepare`` writes (and so replaces) in its output folder; anything else there is kept."""
    return name in (STATS_FILE, HISTOGRAM_FILE, pass_rates.REPORT_FILE) or (
        name.startswith("phase") and name.endswith(".parquet") and name[5:-8].isdigit()
    )


def _lengths(rows: list[dict]) -> list[int]:
    return [r["extra_info"]["input_tokens"] for r in rows]


def _write_phase(out: Path, phase: int, windows: list[int], rows: list[dict]) -> PhaseStats:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = phase_file(out, phase)
    if not rows:
        logger.warning(
            "phase %d window (%d, %d] has no rows; %s is empty",
            phase,
            _lower(windows, phase),
            windows[phase - 1],
            path.name,
        )
    pq.write_table(pa.Table.from_pylist(rows, schema=pass_rates.with_difficulty_fields(arrow_schema(), rows)), path)
    tasks = Counter(r["extra_info"]["task"] for r in rows)
    answer_types = Counter(r["extra_info"]["answer_type"] for r in rows)
    return PhaseStats(
        phase=phase,
        file=path.name,
        min_exclusive=_lower(windows, phase),
        max_inclusive=windows[phase - 1],
        rows=len(rows),
        tasks=dict(sorted(tasks.items())),
        answer_types={t: answer_types.get(t, 0) for t in ANSWER_TYPES},
        tokens=token_summary(_lengths(rows)),
    )


def _lower(windows: list[int], phase: int) -> int:
    return 0 if phase == 1 else windows[phase - 2]


def plot_lengths(lengths_by_phase: Mapping[int, list[int]], windows: Sequence[int], path: str | Path) -> None:
    """PNG histogram of input lengths, one colour per phase, window limits as dashed lines (deterministic file)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(8, 4.5), dpi=100)
    axes = figure.add_subplot()
    top = max(windows)
    bins = [top * i / 60 for i in range(61)]
    for phase, values in sorted(lengths_by_phase.items()):
        if values:
            axes.hist(values, bins=bins, alpha=0.75, label=f"phase {phase} (≤{windows[phase - 1]:,}): {len(values)}")
    for window in windows:
        axes.axvline(window, color="black", linestyle="--", linewidth=0.8)
    axes.set_xlabel("input tokens (chat-templated prompt)")
    axes.set_ylabel("examples")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title("prompt lengths per phase window")
    if any(lengths_by_phase.values()):
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, format="png", metadata={"Software": None})
