"""``score``: a JSONL file of responses through the hybrid reward, exactly as training scores them."""

from __future__ import annotations

from dataclasses import dataclass, field

from qwenlong_verl.common.errors import RunFailed
from qwenlong_verl.driver.cli.args import Flag
from qwenlong_verl.driver.cli.command import command, console
from qwenlong_verl.driver.cli.judge import JUDGE_FLAGS, JudgeArgs


@dataclass
class ScoreArgs:
    """``score`` options."""

    input: str
    """JSONL file, one response per line (data_source, response, ground_truth, extra_info)."""

    output: str | None = None
    """Write each line with its result under 'reward'."""

    judge: JudgeArgs = field(default_factory=JudgeArgs)
    """LLM judge of the hybrid reward (unset: the reward's own settings and $QWENLONG_JUDGE_* apply)."""

    no_judge: bool = False
    """Rules only, even if a judge is configured."""

    allow_judge_failures: bool = False
    """Exit 0 even when a configured judge answered none of the calls (the scores are then rule-only)."""


@command(
    "score",
    help="score a JSONL file of responses with the hybrid reward (rules + optional LLM judge)",
    description="Score each line (data_source, response, ground_truth, extra_info) exactly as training does; "
    "print accuracy per task, judge calls and judge/rule disagreement.",
    config=ScoreArgs,
    flags={**JUDGE_FLAGS, "input": Flag(metavar="FILE"), "output": Flag(metavar="FILE")},
)
def run_score(args: ScoreArgs) -> int:
    import asyncio

    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from qwenlong_verl.common.files import refuse_overwriting
    from qwenlong_verl.common.openai_client import redact
    from qwenlong_verl.driver.score import load_rows, score_rows, write_results
    from qwenlong_verl.worker.rewards.hybrid import judge_config_for
    from qwenlong_verl.worker.rewards.metrics import summarize_by_task

    if args.output:
        refuse_overwriting(args.output, [args.input])  # before the scoring work, not after it
    judge_kwargs = args.judge.reward_kwargs(enable=False if args.no_judge else None)
    judge = judge_config_for(judge_kwargs)
    rows = load_rows(args.input)

    where = ", ".join(map(redact, judge.urls)) if judge is not None and judge.active else "off (rules only)"
    console().print(f"scoring {len(rows):,} responses from {escape(args.input)}; judge: {escape(where)}")
    bar_columns = (TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*bar_columns, console=console(), transient=False) as progress:
        bar = progress.add_task("score", total=len(rows))
        results = asyncio.run(score_rows(rows, judge_kwargs, on_done=lambda _i, _r: progress.advance(bar)))

    summary = summarize_by_task([row.task for row in rows], results)
    table = Table(title="hybrid reward")
    columns = ("samples", "accuracy", "rule acc", "judge calls", "judge flips", "judge errors", "no answer")
    table.add_column("task")
    for column in columns:
        table.add_column(column, justify="right")
    for task, s in summary.items():
        table.add_row(
            f"[bold]{task}[/]" if task == "all" else task,
            f"{s.samples:,}",
            f"{s.accuracy:.1%}",
            f"{s.rule_accuracy:.1%}",
            f"{s.judge_calls:,}",
            f"{s.judge_flips:,}",
            f"{s.judge_errors:,}",
            f"{s.no_answer:,}",
            end_section=task != "all" and list(summary)[-2] == task,
        )
    console().print(table)
    console().print("judge flips: the judge said right where the rule said wrong (judge/rule disagreement)")
    if args.output:
        write_results(args.output, rows, results)
        console().print(f"results written to {escape(args.output)}")
    total = summary.get("all")
    if total is not None and total.judge_calls and total.judge_errors == total.judge_calls:
        message = (
            f"the judge ({where}) answered none of its {total.judge_calls:,} calls, so every score above is the "
            "rule's alone; check the judge, or pass --allow-judge-failures to accept rule-only scores"
        )
        if not args.allow_judge_failures:
            raise RunFailed(message)
        console().print(f"warning: {escape(message)}")
    return 0
