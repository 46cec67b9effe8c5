"""``synth``, ``prepare``, ``sft-data`` and ``tiny-model``: the commands that write training data or a model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwenlong_verl.driver.cli.args import Flag
from qwenlong_verl.driver.cli.command import command, console
from qwenlong_verl.driver.data.difficulty import DifficultyFilter, parse_bins, parse_shares
from qwenlong_verl.driver.data.prepare import DEFAULT_PHASES, parse_phases
from qwenlong_verl.driver.data.synth.corpus import CorpusOptions

INPUTS = {"input": Flag(metavar="FILE")}


@dataclass
class SynthArgs:
    """``synth`` options (the arguments of :func:`~qwenlong_verl.driver.data.synth.synth`)."""

    out: str
    """jsonl file to write."""

    n: int
    """Number of examples."""

    min_tokens: int
    """Shortest target input length (builtin tokenizer)."""

    max_tokens: int
    """Longest target input length."""

    seed: int = 0
    """Random seed: same arguments, same bytes."""

    tasks: list[str] = field(default_factory=list)
    """Answer types to generate, of numeric, choice, qa (default: all three); without --labels, in turn, and the
    rows are labelled by them."""

    labels: list[str] = field(default_factory=list)
    """Task labels to generate in turn, each row labelled with its question's task: numerical, counting,
    multi_hop, temporal, niah, hypothetical (with --corpus: corpus_numerical, corpus_aggregation), or all
    (default: label by answer type)."""

    corpus: CorpusOptions = field(default_factory=CorpusOptions)
    """Corpus-scale examples (CorpusQA style): hundreds of documents per context, aggregation questions."""


@command(
    "synth",
    help="generate verifiable long-context questions (jsonl that `prepare` reads)",
    description="Corpus-level numeric aggregation over many generated reports with tables, multi-hop chains "
    "across distant documents, temporal, single-fact (needle) and hypothetical questions, multiple-choice variants "
    "and relevant-looking distractors; answers computed by construction. --corpus: each context is a corpus of "
    "hundreds of documents (up to 10M tokens), each question a count, sum, mean, spread, comparison or ranking over "
    "many of them, written a document at a time. Same arguments, same bytes.",
    config=SynthArgs,
    flags={
        "out": Flag(metavar="FILE"),
        "n": Flag(metavar="N"),
        "tasks": Flag(metavar="LIST", comma=True),
        "labels": Flag(metavar="LIST", comma=True),
    },
)
def run_synth(args: SynthArgs) -> int:
    import time

    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from qwenlong_verl.driver.data.synth import synth

    start = time.perf_counter()
    columns = (TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console(), transient=True) as bar:
        job = bar.add_task("synth", total=args.n)
        stats = synth(
            args.out,
            args.n,
            args.min_tokens,
            args.max_tokens,
            seed=args.seed,
            tasks=args.tasks or None,
            labels=args.labels or None,
            progress=lambda done, _total: bar.update(job, completed=done),
            corpus=args.corpus,
        )
    took = time.perf_counter() - start
    corpora = f" (corpora of {stats.docs} documents)" if stats.docs else ""
    console().print(
        f"wrote [bold]{stats.examples} examples[/]{corpora} to {escape(stats.path)}: {stats.document_tokens:,} "
        "document tokens "
        f"in {took:.1f} s; tasks {', '.join(f'{k} {v}' for k, v in stats.tasks.items())}; "
        f"answer types {', '.join(f'{k} {v}' for k, v in stats.answer_types.items())}; "
        f"kinds {', '.join(f'{k} {v}' for k, v in sorted(stats.kinds.items()))}",
        soft_wrap=True,
    )
    return 0


@dataclass
class PrepareArgs:
    """``prepare`` options (the arguments of :func:`~qwenlong_verl.driver.data.prepare.prepare`)."""

    input: list[str]
    """jsonl, json or parquet files: raw records or veRL rows."""

    output: str
    """Output directory."""

    tokenizer: str
    """The policy's tokenizer, a folder or a hub name (prompt lengths decide the phase bins); 'builtin' only for
    the tiny test models."""

    phases: Sequence[int] = DEFAULT_PHASES
    """Increasing input windows in tokens, one per phase, e.g. 20000,60000 or 20k,60k."""

    strict: bool = False
    """Write nothing if any row is bad (default: drop and count them)."""

    workers: int = 1
    """Token-counting processes (1: in-process; the tokenizer's threads already use every core)."""

    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    """Must equal data.apply_chat_template_kwargs of training, e.g. '{"enable_thinking": false}'."""

    plot: bool = True
    """Draw DIR/lengths.png, the histogram of prompt lengths (--no-plot skips it)."""

    difficulty: DifficultyFilter = field(default_factory=DifficultyFilter)
    """pass@k difficulty (a file of `qwenlong-verl difficulty`): annotate, filter and balance the rows."""


@command(
    "prepare",
    help="validate records, count prompt tokens as veRL will, write one parquet per phase window",
    description="Reads jsonl/json/parquet (raw records or veRL rows such as DocQA-RL-1.6K), drops and lists bad "
    "rows by file and row (--strict: fails instead), and writes DIR/phase<N>.parquet (disjoint length bins), "
    "DIR/stats.json and DIR/lengths.png.",
    config=PrepareArgs,
    flags={
        **INPUTS,
        "output": Flag(metavar="DIR"),
        "tokenizer": Flag(metavar="NAME_OR_PATH"),
        "phases": Flag(metavar="LIST", parse=parse_phases),
        "file": Flag("--difficulty", metavar="FILE"),
        "bins": Flag(metavar="EDGES", parse=parse_bins),
        "bin_shares": Flag(metavar="SHARES", parse=parse_shares),
        "seed": Flag("--bin-seed", metavar="N"),
    },
)
def run_prepare(args: PrepareArgs) -> int:
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from qwenlong_verl.driver.data.prepare import prepare

    columns = (TextColumn("counting tokens"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console(), transient=True) as bar:
        job = bar.add_task("count", total=None)
        stats = prepare(
            args.input,
            args.output,
            tokenizer=args.tokenizer,
            phases=args.phases,
            strict=args.strict,
            workers=args.workers,
            apply_chat_template_kwargs=args.chat_template_kwargs,
            plot=args.plot,
            progress=lambda done, total: bar.update(job, completed=done, total=total),
            difficulty=args.difficulty,
        )
    for problem in stats.problems[:20]:
        console().print(f"[yellow]dropped[/] ({problem.reason}) {escape(str(problem))}", soft_wrap=True)
    if len(stats.problems) > 20:
        console().print(f"[yellow]... and {len(stats.problems) - 20} more (all in stats.json)[/]")
    table = Table(title=f"{escape(stats.output_dir)} (tokenizer {escape(stats.tokenizer)})")
    for column in ("phase", "window (tokens)", "rows", "tasks", "min", "p50", "p90", "max", "file"):
        table.add_column(column)
    for p in stats.phase_stats:
        t = p.tokens
        table.add_row(
            str(p.phase),
            f"({p.min_exclusive:,}, {p.max_inclusive:,}]",
            str(p.rows),
            ", ".join(f"{k} {v}" for k, v in p.tasks.items()),
            *(f"{t[k]:,}" if t else "-" for k in ("min", "p50", "p90", "max")),
            p.file,
        )
    console().print(table)
    dropped = ", ".join(f"{k} {v}" for k, v in stats.dropped.items()) or "none"
    console().print(f"{stats.rows_written} of {stats.rows_read} rows written; dropped: {dropped}", soft_wrap=True)
    if stats.difficulty is not None:
        _print_difficulty(stats.difficulty)
    return 0


def _print_difficulty(report) -> None:
    """The difficulty table of ``difficulty.md``, on the console."""
    from rich.markup import escape
    from rich.table import Table

    from qwenlong_verl.driver.data.difficulty import REPORT_FILE, file_line, report_table

    header, rows = report_table(report)
    table = Table(title=f"pass@1 bins, before → after ({escape(REPORT_FILE)})")
    for column in header:
        table.add_column(escape(column))
    for row in rows:
        table.add_row(*map(escape, row))
    console().print(escape(file_line(report)), soft_wrap=True)
    console().print(table)


def _read_template(path: str) -> str:
    """``--chat-template FILE`` -> the template text (a file that cannot be read is a bad option value)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror}") from None


@dataclass
class SftDataArgs:
    """``sft-data`` options (the arguments of :func:`~qwenlong_verl.driver.data.sft.convert`)."""

    input: list[str]
    """jsonl, json or parquet files: raw QA records or prepared RL rows."""

    output: str
    """The SFT parquet to write (data.train_files of the SFT run)."""

    tokenizer: str | None = None
    """Count tokens and check the chat template: 'builtin', a folder or a hub name."""

    max_length: int | None = None
    """Drop chats longer than this (the SFT data.max_length); needs --tokenizer."""

    chat_template: str | None = None
    """Jinja chat template file replacing the tokenizer's (model.custom_chat_template)."""

    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    """Must equal data.apply_chat_template_kwargs of the SFT run, e.g. '{"enable_thinking": true}'."""

    traces: bool = True
    """Reasoning traces in the assistant turns where records have them (--no-traces: answer-only turns)."""

    strict: bool = False
    """Write nothing if any row is bad (default: drop bad rows and list them)."""


@command(
    "sft-data",
    help="QA triplets (raw records or prepared RL rows) to veRL's SFT parquet",
    config=SftDataArgs,
    flags={
        **INPUTS,
        "output": Flag(metavar="FILE"),
        "tokenizer": Flag(metavar="NAME_OR_PATH"),
        "max_length": Flag(metavar="N"),
        "chat_template": Flag(metavar="FILE", parse=_read_template),
    },
)
def run_sft_data(args: SftDataArgs) -> int:
    from rich.markup import escape

    from qwenlong_verl.driver.data.sft import convert

    stats = convert(
        args.input,
        args.output,
        tokenizer=args.tokenizer,
        max_length=args.max_length,
        strict=args.strict,
        traces=args.traces,
        apply_chat_template_kwargs=args.chat_template_kwargs,
        chat_template=args.chat_template,
    )
    for problem in stats.problems[:20]:
        console().print(f"[yellow]dropped[/] {escape(str(problem))}", soft_wrap=True)
    if len(stats.problems) > 20:
        console().print(f"[yellow]... and {len(stats.problems) - 20} more dropped rows[/]")
    tasks = ", ".join(f"{k} {v}" for k, v in stats.tasks.items())
    console().print(
        f"wrote [bold]{stats.rows_written}[/] of {stats.rows_read} rows to {escape(stats.output)} "
        f"({stats.with_trace} with a reasoning trace; {tasks})",
        soft_wrap=True,
    )
    if stats.tokens:
        t = stats.tokens
        console().print(f"chat tokens: min {t['min']}, p50 {t['p50']}, p90 {t['p90']}, max {t['max']}")
    if stats.dropped:
        console().print("dropped: " + ", ".join(f"{k} {v}" for k, v in stats.dropped.items()))
    return 0


@dataclass
class TinyModelArgs:
    """``tiny-model`` options."""

    out: str
    """Model folder to write (replaced atomically)."""

    seed: int = 0
    """Random seed: same seed, same bytes."""

    answers: bool = False
    """The varying-reward variant (responses mostly one choice letter)."""


@command(
    "tiny-model",
    help="write a tiny random Qwen2 model with the builtin tokenizer (CPU runs, tests)",
    description="A seeded, random-initialised Qwen2 causal LM (2 layers, hidden 64) with the builtin tokenizer, "
    "loadable by transformers and veRL. Same seed, same bytes. --answers writes the variant whose responses "
    "are mostly one choice letter, so rewards vary within a group and gradients are non-zero.",
    config=TinyModelArgs,
    flags={"out": Flag(metavar="DIR")},
)
def run_tiny_model(args: TinyModelArgs) -> int:
    from qwenlong_verl.driver.data.tiny_model import write_tiny_model

    out = write_tiny_model(args.out, seed=args.seed, answers=args.answers)
    console().print(f"wrote {'answers ' if args.answers else ''}tiny model (seed {args.seed}) to {out}")
    return 0
