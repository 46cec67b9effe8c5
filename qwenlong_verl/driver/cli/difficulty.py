"""``difficulty``: pass@k of prepared training rows with a served model, for ``prepare --difficulty``.

The options are :class:`~qwenlong_verl.driver.eval.difficulty.DifficultyConfig` — ``eval``'s endpoint, sampling,
judge and folder options, with ``--input`` for the prepared rows.
"""

from __future__ import annotations

from qwenlong_verl.common.errors import RunFailed
from qwenlong_verl.driver.cli.args import HIDDEN, Flag
from qwenlong_verl.driver.cli.command import command, console
from qwenlong_verl.driver.cli.evaluate import EVAL_FLAGS, _EvalProgress
from qwenlong_verl.driver.eval.difficulty import DifficultyConfig

DIFFICULTY_FLAGS = {
    **EVAL_FLAGS,
    "benches": Flag("--input", metavar="FILE"),
    "output": Flag(metavar="FILE"),
    **{name: HIDDEN for name in ("data_dir", "loong_doc_dir", "tokenizer", "max_input_tokens", "length_edges")},
    "rating": HIDDEN,
    # full-context samples of each row's own prompt: the memory agent's options are eval's alone
    **{
        name: HIDDEN
        for name in (
            "agent",
            "chunk_tokens",
            "memory_tokens",
            "plan_tokens",
            "max_chunks",
            "update_tokens",
            "answer_tokens",
        )
    },
}


@command(
    "difficulty",
    help="measure pass@k of prepared rows with a served model (for prepare --difficulty)",
    description="Sample an OpenAI-compatible endpoint (the base policy under `vllm serve`) N times on each "
    "prepared row's own prompt, score every sample with the training reward, and write one record per example "
    "(key: extra_info.source_id; samples, correct, pass@1, pass@k) to OUT/difficulty.jsonl. Rerun the same "
    "command to resume; examples without an answered sample are written as unmeasured and the command exits 1.",
    config=DifficultyConfig,
    flags=DIFFICULTY_FLAGS,
)
def run_difficulty(config: DifficultyConfig) -> int:
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from qwenlong_verl.driver.data.difficulty import DEFAULT_BINS
    from qwenlong_verl.driver.eval.difficulty import measure, summarize

    columns = (TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console(), transient=False) as progress:
        result = measure(config, _EvalProgress(progress))
    for message in result.skipped[:20]:
        console().print(f"[yellow]skipped[/] {escape(message)}", soft_wrap=True)
    if len(result.skipped) > 20:
        console().print(f"[yellow]... and {len(result.skipped) - 20} more rows skipped[/]")
    stats = result.generation
    summary = summarize(result.measurements, DEFAULT_BINS)
    mean = "-" if summary.mean_pass_rate is None else f"{summary.mean_pass_rate:.3f}"
    console().print(
        f"{summary.examples} examples, {config.n} samples each: drew {stats.ok} new samples ({stats.retries} "
        f"retries, {stats.failed} failed); measured {summary.measured}, unmeasured "
        f"{summary.examples - summary.measured}; solved {summary.solved}, unsolvable {summary.unsolvable}; "
        f"mean pass@1 {mean}",
        soft_wrap=True,
    )
    console().print(
        "pass@1 bins: " + ", ".join(f"{label} {n}" for label, n in zip(summary.labels, summary.bins, strict=True)),
        soft_wrap=True,
    )
    console().print(f"wrote {escape(str(result.output))}", soft_wrap=True)
    failures = []
    if result.setup_error:
        failures.append(result.setup_error)
    for message, count in sorted(stats.errors.items(), key=lambda kv: -kv[1])[:5]:
        console().print(f"[red]{count} x[/] {escape(message)}", soft_wrap=True)
    if result.failed_samples:
        failures.append(
            f"{result.failed_samples} samples have no score ({summary.examples - summary.measured} examples "
            "unmeasured); rerun the same command to retry them"
        )
    if failures:
        raise RunFailed("; ".join(failures))
    return 0
