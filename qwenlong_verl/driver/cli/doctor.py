"""``qwenlong-verl doctor``."""

from __future__ import annotations

from qwenlong_verl import __version__
from qwenlong_verl.common.errors import RunFailed
from qwenlong_verl.driver.cli.command import command, console


@command("doctor", help="check veRL, our registrations and the optional GPU pieces")
def run_doctor(_config: None) -> int:
    from rich.markup import escape
    from rich.table import Table

    from qwenlong_verl.driver.doctor import broken, run_checks

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
        raise RunFailed("broken install: " + "; ".join(f"{c.item}: {c.fix or c.detail}" for c in bad))
    console().print("[green]install OK[/] (GPU pieces are optional on a CPU machine)")
    return 0
