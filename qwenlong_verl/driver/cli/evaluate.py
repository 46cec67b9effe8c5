"""``eval`` and ``report``: sample a served policy on benchmarks, score like training, write the report;
``report`` also rebuilds a training output folder's report (:mod:`qwenlong_verl.driver.run.report`).

The options are :class:`~qwenlong_verl.driver.eval.runner.EvalConfig` and its
:class:`~qwenlong_verl.driver.eval.generate.GenerationConfig`: their defaults and docstrings are the CLI's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qwenlong_verl.common.errors import InputError, RunFailed
from qwenlong_verl.driver.cli.args import HIDDEN, Flag
from qwenlong_verl.driver.cli.command import command, console
from qwenlong_verl.driver.cli.judge import JUDGE_FLAGS
from qwenlong_verl.driver.eval.runner import EvalConfig
from qwenlong_verl.driver.eval.scoring import parse_length_edges

EVAL_FLAGS = {
    **JUDGE_FLAGS,
    "base_url": Flag("--model-url", metavar="URL"),
    "model": Flag(metavar="NAME"),
    "benches": Flag("--bench", metavar="NAME_OR_FILE"),
    "out": Flag(metavar="DIR"),
    "n": Flag(metavar="K"),
    "data_dir": Flag(metavar="DIR"),
    "loong_doc_dir": Flag(metavar="DIR"),
    "limit": Flag(metavar="N"),
    "tokenizer": Flag(metavar="NAME_OR_PATH"),
    "max_input_tokens": Flag(metavar="N"),
    "score_concurrency": Flag(metavar="N"),
    "length_edges": Flag("--length-buckets", metavar="EDGES", parse=parse_length_edges),
    "max_tokens": Flag(metavar="N"),
    "concurrency": Flag(metavar="N"),
    "timeout_s": Flag("--timeout", metavar="S"),
    "max_retries": Flag(metavar="N"),
    "backoff_s": HIDDEN,
    "backoff_max_s": HIDDEN,
    "api_key": Flag(env=("QWENLONG_EVAL_API_KEY", "OPENAI_API_KEY")),
    **{name: Flag(metavar="N") for name in ("chunk_tokens", "memory_tokens", "plan_tokens", "max_chunks")},
    **{name: Flag(metavar="N") for name in ("update_tokens", "answer_tokens")},
}


class _EvalProgress:
    """Rich progress bars for the runner's stages."""

    def __init__(self, progress):
        self.progress = progress
        self.tasks = {}

    def stage(self, name: str, total: int) -> None:
        self.tasks[name] = self.progress.add_task(name, total=total)

    def advance(self, name: str, amount: int = 1) -> None:
        self.progress.advance(self.tasks[name], amount)


def _print_summary(rows, report_dir: Path) -> None:
    from rich.markup import escape
    from rich.table import Table

    from qwenlong_verl.driver.eval.report import summary_cells, summary_columns, table_ks

    if not rows:
        return
    ks = table_ks(rows[0].n)
    table = Table(title="evaluation summary")
    for column in summary_columns(ks):
        table.add_column(column, justify="left" if column == "benchmark" else "right")
    for row in rows:
        style = "bold" if row.name == "average" else ("dim" if "/" in row.name else None)
        table.add_row(*summary_cells(row, ks), style=style)
    console().print(table)
    judge_failures = sum(r.judge_failures for r in rows if r.name != "average" and "/" not in r.name)
    if judge_failures:
        console().print(
            f"[yellow]warning:[/] the judge failed on {judge_failures} samples (the rule decided them); "
            "see judge_error in scores.jsonl, fix the judge and rerun with --rescore",
            soft_wrap=True,
        )
    console().print(f"report: {escape(str(report_dir / 'README.md'))}", soft_wrap=True)


@command(
    "eval",
    help="evaluate a served policy on local benchmark files, scored like training; writes a report",
    description="Sample an OpenAI-compatible endpoint (e.g. `vllm serve`) on benchmark files, score each sample "
    "with the training reward, and write OUT/report/. Rerun the same command to resume.",
    config=EvalConfig,
    flags=EVAL_FLAGS,
)
def run_eval(config: EvalConfig) -> int:
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from qwenlong_verl.driver.eval import runner

    columns = (TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console(), transient=False) as progress:
        result = runner.run_eval(config, _EvalProgress(progress))
    stats = result.generation
    drawn = f"{stats.ok} new samples ({stats.retries} retries)"
    if config.agent == "memory":
        drawn = f"{stats.ok} new trajectories ({stats.calls} generations, {stats.retries} retries)"
    console().print(
        f"{result.items} items ({result.truncated} truncated); drew {drawn}, scored {result.scored}", soft_wrap=True
    )
    _print_summary(result.rows, result.report_dir)
    failures = []
    if result.failed_samples:
        for message, count in sorted(stats.errors.items(), key=lambda kv: -kv[1])[:5]:
            console().print(f"[red]{count} x[/] {escape(message)}", soft_wrap=True)
        failures.append(
            f"{result.failed_samples} samples failed (recorded in generations.jsonl, counted as wrong); "
            "rerun the same command to retry them"
        )
    if result.scoring_errors:
        failures.append(f"{result.scoring_errors} samples could not be scored (see the log); rerun to retry them")
    if failures:
        raise RunFailed("; ".join(failures))
    return 0


@dataclass
class ReportArgs:
    """``report`` options."""

    dir: Path
    """An eval folder written by `qwenlong-verl eval`, or a training output folder of `qwenlong-verl train`."""

    compare: Path | None = None
    """Another eval folder shown beside DIR by input length, on the items both hold (e.g. a full-context run next
    to a --agent memory run of the same benchmark)."""


@command(
    "report",
    help="rebuild the report (markdown, PNG plots) of an eval folder or of a training output folder",
    description="DIR with train_state.json (a `qwenlong-verl train` output folder): per-step reward, accuracy, "
    "response length, entropy and the AEPO switch per phase, from each phase's metrics.jsonl, into DIR/report/. "
    "Any other DIR is read as an eval folder (`qwenlong-verl eval`).",
    config=ReportArgs,
    flags={"dir": Flag(positional=True, metavar="DIR"), "compare": Flag(metavar="DIR")},
)
def run_report(args: ReportArgs) -> int:
    from qwenlong_verl.driver.run.report import is_training_folder

    if is_training_folder(args.dir):
        if args.compare is not None:
            raise InputError(f"--compare is for eval folders; {args.dir} is a training output folder")
        return _training_report(args.dir)
    from qwenlong_verl.driver.eval.report import build_report
    from qwenlong_verl.driver.eval.store import EvalFolder

    folder = EvalFolder(args.dir)
    folder.read_manifest()  # not an eval folder: one line, and no lock file is left in it
    with folder.lock():  # never a report of a run still writing
        rows, _, report_dir = build_report(args.dir, compare=args.compare)
    _print_summary(rows, report_dir)
    return 0


def _training_report(root: Path) -> int:
    from rich.markup import escape

    from qwenlong_verl.driver.run.report import README, build_training_report

    report = build_training_report(root)
    for phase in report.phases:
        console().print(f"{escape(phase.name)}: {len(phase.rows)} steps", soft_wrap=True)
    if report.missing:
        console().print(f"no steps logged yet: {escape(', '.join(report.missing))}", soft_wrap=True)
    console().print(f"report: {escape(str(report.report_dir / README))}", soft_wrap=True)
    return 0
