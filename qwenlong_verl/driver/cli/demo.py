"""``demo``: real two-phase training on the CPU, then the reward table and the report."""

from __future__ import annotations

from dataclasses import dataclass, field

from qwenlong_verl.driver.cli.args import Flag
from qwenlong_verl.driver.cli.command import command, console
from qwenlong_verl.driver.cli.judge import JUDGE_FLAGS, JudgeArgs


@dataclass
class DemoArgs:
    """``demo`` options."""

    out: str = "outputs/demo"
    """Output folder; rerun to resume."""

    judge: JudgeArgs = field(default_factory=JudgeArgs)
    """LLM judge of the hybrid reward (default: rules only)."""


@command(
    "demo",
    help="real two-phase training on the CPU: synth, prepare, veRL steps, retrospective, reward, report",
    config=DemoArgs,
    flags={**JUDGE_FLAGS, "out": Flag(metavar="DIR")},
)
def run_demo(args: DemoArgs) -> int:
    from rich.table import Table

    from qwenlong_verl.driver import demo

    step = lambda m: console().print(f"• {m}", soft_wrap=True)  # noqa: E731
    result = demo.run_demo(args.out, judge_kwargs=args.judge.reward_kwargs() or None, step=step)
    table = Table(title="hybrid reward on sample responses")
    for column in ("response", "n", "mean reward", "expected", "agree"):
        table.add_column(column)
    for r in result.reward_table:
        table.add_row(
            r["kind"], str(r["n"]), f"{r['mean_score']:.2f}", f"{r['expected']:.0f}", f"{r['agree']}/{r['n']}"
        )
    console().print(table)
    steps = ", ".join(f"{name} {n}" for name, n in result.steps.items())
    console().print(
        f"phases: {' + '.join(map(str, result.phase_rows))} rows; real veRL steps logged: {steps}; "
        f"{result.carried} hard phase-1 examples carried into phase 2 from the real ledger"
    )
    console().print(f"[bold green]report:[/] {result.report}")
    return 0
