"""``plan`` and ``train``: the commands that read a recipe."""

from __future__ import annotations

from dataclasses import dataclass

from qwenlong_verl.driver.cli.args import Flag
from qwenlong_verl.driver.cli.command import command, console

RECIPE = {"recipe": Flag(positional=True)}


@dataclass
class PlanArgs:
    """``plan`` options."""

    recipe: str
    """Recipe YAML file, or the name of a shipped recipe (`qwenlong-verl recipes` lists them)."""

    show_config: bool = False
    """Also print each phase's full composed config."""


@dataclass
class TrainArgs:
    """``train`` options (the arguments of :func:`~qwenlong_verl.driver.run.train`)."""

    recipe: str
    """Recipe YAML file, or the name of a shipped recipe (`qwenlong-verl recipes` lists them)."""

    dry_run: bool = False
    """Build each phase's data and print its command; launch nothing."""

    from_phase: int | None = None
    """Start phase K (1-based) afresh: earlier phases must be done; outputs of K.. are moved aside."""

    output_dir: str | None = None
    """Run folder (overrides the recipe's output_dir)."""


@command(
    "plan",
    help="compose and validate each phase's veRL config; print the launch commands",
    config=PlanArgs,
    flags=RECIPE,
)
def run_plan(args: PlanArgs) -> int:
    from pathlib import Path

    from rich.table import Table

    from qwenlong_verl.driver import recipes
    from qwenlong_verl.driver.plan import plan_recipe

    recipe = recipes.load(args.recipe)
    plans = plan_recipe(recipe)
    table = Table(title=f"recipe {recipe.name}: {recipe.description}".rstrip(": "))
    for column in ("#", "phase", "kind", "input window", "output", "length", "reads", "inputs"):
        table.add_column(column)
    for plan in plans:
        # what the run will read: veRL's train files (the recipe's or built by train), a merge's models
        window, output, length, files = plan.kind.table_cells(recipe, plan.index, plan.config)
        missing = [f for f in files if not Path(f).exists()]
        data = "[green]present[/]" if not missing else f"[yellow]{len(missing)} missing[/]"
        table.add_row(
            str(plan.index + 1), plan.phase.name, plan.phase.kind, window, output, length, ", ".join(files), data
        )
    console().print(table)
    for plan in plans:
        console().print(f"\n[bold]phase {plan.index + 1} ({plan.phase.name})[/] — {plan.kind.checked}")
        console().print(plan.command_line, soft_wrap=True, markup=False)
        for note in plan.notes:
            console().print(f"  - {note}", soft_wrap=True, markup=False)
        if args.show_config and plan.kind.trains:
            from omegaconf import OmegaConf

            console().print(OmegaConf.to_yaml(plan.config), markup=False)
    return 0


@command(
    "train",
    help="run a recipe's phases in order, each one stock veRL run; rerun to resume after any interruption",
    config=TrainArgs,
    flags={**RECIPE, "from_phase": Flag(metavar="K"), "output_dir": Flag(metavar="DIR")},
)
def run_train(args: TrainArgs) -> int:
    from rich.markup import escape
    from rich.table import Table

    from qwenlong_verl.driver import recipes
    from qwenlong_verl.driver.run import train

    def echo(line: str) -> None:
        style = "yellow" if line.startswith("warning:") else "cyan"
        console().print(f"[{style}]{escape(line)}[/]", soft_wrap=True)

    recipe = recipes.load(args.recipe)
    if args.output_dir:
        recipe.output_dir = args.output_dir
    reports = train(recipe, dry_run=args.dry_run, from_phase=args.from_phase, echo=echo)
    if not args.dry_run:
        return 0
    table = Table(title=f"recipe {recipe.name} (dry run): {recipe.description}".rstrip(": "))
    for column in ("#", "phase", "status", "rows", "tasks", "train files", "model"):
        table.add_column(column, overflow="fold")
    for r in reports:
        tasks = ", ".join(f"{t} {n}" for t, n in r.tasks.items())
        rows = "" if r.rows is None else f"{r.rows:,}"
        table.add_row(str(r.number), r.name, r.status, rows, tasks, ", ".join(r.train_files), r.model_path)
    console().print(table)
    for r in reports:
        built = "data built, " if r.rows is not None else ""
        console().print(f"\n[bold]phase {r.number} ({r.name})[/] — {built}{r.checked}")
        if r.carry:
            console().print(r.carry, soft_wrap=True, markup=False)
        console().print(r.command_line, soft_wrap=True, markup=False)
        for note in r.notes:
            console().print(f"  - {note}", soft_wrap=True, markup=False)
    return 0
