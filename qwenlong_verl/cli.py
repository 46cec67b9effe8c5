"""``qwenlong-verl``: the command line (doctor, plan, and the commands later modules add).

Each command is a pair ``_add_<name>(subparsers)`` / ``_run_<name>(args) -> int``. Handlers import
their implementation lazily, so ``qwenlong-verl --help`` stays instant. Output goes through rich.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from qwenlong_verl import __version__

_console = None


def console():
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(highlight=False, soft_wrap=False)
    return _console


def fail(message: str, code: int = 2) -> int:
    from rich.markup import escape

    console().print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return code


# ----------------------------------------------------------------------------- doctor


def _add_doctor(sub) -> None:
    sub.add_parser("doctor", help="check veRL, our registrations and the optional GPU pieces")


def _run_doctor(args) -> int:
    from rich.markup import escape
    from rich.table import Table

    from qwenlong_verl.doctor import broken, run_checks

    checks = run_checks()
    table = Table(title=f"qwenlong-verl {__version__} doctor", show_lines=False)
    for column in ("section", "check", "status", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for c in checks:
        status = "[green]ok[/]" if c.ok else ("[red]FAIL[/]" if c.required else "[yellow]missing[/]")
        table.add_row(c.section, c.item, status, escape(c.detail), escape(c.fix))
    console().print(table)
    bad = broken(checks)
    if bad:
        return fail("broken install: " + "; ".join(f"{c.item}: {c.fix or c.detail}" for c in bad), 1)
    console().print("[green]install OK[/] (GPU pieces are optional on a CPU machine)")
    return 0


# ----------------------------------------------------------------------------- plan


def _add_plan(sub) -> None:
    p = sub.add_parser("plan", help="compose and validate each phase's veRL config; print the launch commands")
    p.add_argument("recipe", help="recipe YAML file")
    p.add_argument("--show-config", action="store_true", help="also print each phase's full composed config")


def _run_plan(args) -> int:
    from rich.table import Table

    from qwenlong_verl.planning import PlanError, plan_recipe
    from qwenlong_verl.recipe import RecipeError, load_recipe

    try:
        recipe = load_recipe(args.recipe)
        plans = plan_recipe(recipe)
    except (RecipeError, PlanError) as exc:
        return fail(str(exc))

    from pathlib import Path

    table = Table(title=f"recipe {recipe.name}: {recipe.description}".rstrip(": "))
    for column in ("#", "phase", "input window", "output", "length", "train files", "data"):
        table.add_column(column)
    for plan in plans:
        ph = plan.phase
        length = f"{ph.total_training_steps} steps" if ph.total_training_steps else f"{ph.total_epochs} epochs"
        missing = [f for f in ph.train_files if not Path(f).exists()]
        data = "[green]present[/]" if not missing else f"[yellow]{len(missing)} missing[/]"
        table.add_row(
            str(plan.index + 1),
            ph.name,
            f"{ph.max_prompt_length:,}",
            f"{ph.max_response_length:,}",
            length,
            ", ".join(ph.train_files),
            data,
        )
    console().print(table)
    for plan in plans:
        console().print(f"\n[bold]phase {plan.index + 1} ({plan.phase.name})[/] — veRL config validated")
        console().print(plan.command_line, soft_wrap=True, markup=False)
        for note in plan.notes:
            console().print(f"  - {note}", soft_wrap=True, markup=False)
        if args.show_config:
            from omegaconf import OmegaConf

            console().print(OmegaConf.to_yaml(plan.config), markup=False)
    return 0


# ----------------------------------------------------------------------------- sft-data


def _add_sft_data(sub) -> None:
    p = sub.add_parser("sft-data", help="QA triplets (raw records or prepared RL rows) to veRL's SFT parquet")
    p.add_argument("--input", nargs="+", action="extend", required=True, metavar="FILE", help="jsonl, json or parquet")
    p.add_argument("--output", required=True, metavar="FILE", help="the SFT parquet to write (data.train_files)")
    p.add_argument("--tokenizer", help="count tokens and check the chat template: 'builtin', a folder or a hub name")
    p.add_argument(
        "--max-length", type=int, help="drop chats longer than this (the SFT data.max_length); needs --tokenizer"
    )
    p.add_argument(
        "--chat-template",
        metavar="FILE",
        help="Jinja chat template replacing the tokenizer's (model.custom_chat_template)",
    )
    p.add_argument("--no-traces", action="store_true", help="answer-only assistant turns even where traces exist")
    p.add_argument(
        "--strict", action="store_true", help="write nothing if any row is bad (default: drop bad rows and list them)"
    )


def _run_sft_data(args) -> int:
    from rich.markup import escape

    from qwenlong_verl.data.tokenizer import TokenizerLoadError
    from qwenlong_verl.sft.data import SftDataError, convert

    try:
        template = None
        if args.chat_template:
            from pathlib import Path

            try:
                template = Path(args.chat_template).read_text(encoding="utf-8")
            except OSError as exc:
                raise SftDataError(f"--chat-template {args.chat_template}: {exc.strerror}") from None
        stats = convert(
            args.input,
            args.output,
            tokenizer=args.tokenizer,
            max_length=args.max_length,
            strict=args.strict,
            traces=not args.no_traces,
            chat_template=template,
        )
    except (SftDataError, TokenizerLoadError) as exc:
        return fail(str(exc))
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


# ----------------------------------------------------------------------------- entry point

_COMMANDS: dict[str, tuple[Callable, Callable]] = {
    "doctor": (_add_doctor, _run_doctor),
    "plan": (_add_plan, _run_plan),
    "sft-data": (_add_sft_data, _run_sft_data),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qwenlong-verl", description="QwenLong long-context RL on stock veRL")
    parser.add_argument("--version", action="version", version=f"qwenlong-verl {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add, _ in _COMMANDS.values():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return _COMMANDS[args.command][1](args)


if __name__ == "__main__":
    sys.exit(main())
