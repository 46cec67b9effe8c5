"""The command registry: one decorated function per command, its config dataclass, and the shared rich console."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from qwenlong_verl.driver.cli.args import Flag


@dataclasses.dataclass(frozen=True)
class Command:
    """A ``qwenlong-verl`` sub-command: ``run(config) -> exit code``; failures raise a ``QwenLongError``."""

    name: str
    run: Callable[[Any], int]
    help: str
    description: str | None = None
    config: type | None = None
    """The dataclass its options are built from (None: the command takes no options)."""

    flags: Mapping[str, Flag] = dataclasses.field(default_factory=dict)
    """Per-field exceptions to the derived option (an established flag name, a parser, a positional)."""


COMMANDS: dict[str, Command] = {}


def command(name: str, *, help: str, config: type | None = None, description: str | None = None, flags=None):
    """Register the decorated ``run(config) -> int`` as the command ``name``."""

    def register(run: Callable[[Any], int]) -> Callable[[Any], int]:
        if name in COMMANDS:
            raise ValueError(f"command {name!r} registered twice")
        COMMANDS[name] = Command(name, run, help, description, config, dict(flags or {}))
        return run

    return register


_console = None


def console():
    """The rich console every command prints its results with (created on first use: rich imports lazily)."""
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(highlight=False, soft_wrap=False)
    return _console
