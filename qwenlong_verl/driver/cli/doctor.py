"""``qwenlong-verl doctor``."""

from __future__ import annotations

from dataclasses import dataclass

from qwenlong_verl import __version__
from qwenlong_verl.common.errors import RunFailed
from qwenlong_verl.driver.cli.command import command, console


@dataclass
class DoctorArgs:
    """``doctor`` options."""

    fresh: bool = False
    """Run the veRL import checks again even if this environment passed them before (they are remembered per
    environment: interpreter, package versions, this package's files, veRL's environment variables)."""

    verbose: bool = False
    """Print the table of every check, not only what is wrong."""


@command("doctor", help="check veRL, our registrations and the optional GPU pieces", config=DoctorArgs)
def run_doctor(args: DoctorArgs) -> int:
    from rich.markup import escape
    from rich.table import Table

    from qwenlong_verl.driver.doctor import broken, run_checks

    checks = run_checks(fresh=args.fresh)
    bad = broken(checks)
    if bad or args.verbose:
        table = Table(title=f"qwenlong-verl {__version__} doctor", show_lines=False)
        for column in ("section", "check", "status", "detail", "fix"):
            table.add_column(column, overflow="fold")
        for c in checks if args.verbose else bad:
            status = "[green]ok[/]" if c.ok else ("[red]FAIL[/]" if c.required else "[yellow]missing[/]")
            table.add_row(c.section, c.item, status, escape(c.detail), escape(c.fix))
        console().print(table)
    if bad:
        raise RunFailed("broken install: " + "; ".join(f"{c.item}: {c.fix or c.detail}" for c in bad))
    names = ", ".join(c.detail for c in checks if c.section == "registrations")
    optional = [c.item for c in checks if not c.required and not c.ok]
    console().print(
        f"[green]install OK[/]: qwenlong-verl {__version__}, {sum(c.ok for c in checks)} of {len(checks)} checks "
        f"passed; registered {escape(names)}"
        + (f"; optional GPU pieces missing: {', '.join(optional)}" if optional else "")
    )
    return 0
