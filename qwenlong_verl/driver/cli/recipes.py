"""``recipes``: list the shipped recipes, or write an editable copy of one."""

from __future__ import annotations

from dataclasses import dataclass

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.driver.cli.args import Flag
from qwenlong_verl.driver.cli.command import command, console


@dataclass
class RecipesArgs:
    """``recipes`` options."""

    action: str = "list"
    """list: the shipped recipes, one line each; copy: write NAME.yaml and its launcher NAME.sh into DIR."""

    name: str | None = None
    """The shipped recipe to copy."""

    dir: str | None = None
    """Folder to copy it into (created if missing)."""

    force: bool = False
    """Overwrite an earlier copy in DIR."""


@command(
    "recipes",
    help="list the shipped recipes (plan/train take their names), or copy one out to edit",
    description="List the recipes shipped with the package (`qwenlong-verl plan NAME`, `qwenlong-verl train NAME` "
    "run them as they are), or `qwenlong-verl recipes copy NAME DIR` to write an editable copy and its launcher. "
    "Relative paths inside a recipe (output_dir, data files) resolve against the current directory.",
    config=RecipesArgs,
    flags={
        "action": Flag(positional=True, metavar="{list,copy}"),  # not a Literal: argparse rejects its absence
        "name": Flag(positional=True, metavar="NAME"),
        "dir": Flag(positional=True, metavar="DIR"),
    },
)
def run_recipes(args: RecipesArgs) -> int:
    from rich.markup import escape

    from qwenlong_verl.driver import recipes

    if args.action not in ("list", "copy"):
        raise InputError(f"recipes: unknown action {args.action!r}; use `recipes` (list) or `recipes copy NAME DIR`")
    if args.action == "list":
        if args.name or args.dir:
            raise InputError("`qwenlong-verl recipes` takes no NAME or DIR; to copy one: recipes copy NAME DIR")
        shown = recipes.listing()
        width = max(len(r.name) for r in shown)
        for r in shown:
            console().print(f"[bold]{r.name:<{width}}[/]  {escape(r.description)}", soft_wrap=True)
        return 0
    if not args.name or not args.dir:
        raise InputError(f"recipes copy needs NAME and DIR, e.g. `qwenlong-verl recipes copy {recipes.names()[0]} .`")
    yaml_path, launcher = recipes.copy(args.name, args.dir, force=args.force)
    console().print(
        f"wrote {escape(str(yaml_path))} and {escape(str(launcher))}; edit the YAML, then run "
        f"`qwenlong-verl plan {escape(str(yaml_path))}` and {escape(str(launcher))}",
        soft_wrap=True,
    )
    return 0
