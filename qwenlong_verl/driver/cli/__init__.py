"""``qwenlong-verl``: the command line. Each command is a function registered with its config dataclass
(:mod:`.command`); its options are built from the dataclass fields (:mod:`.args`). Failures are exceptions of
:mod:`qwenlong_verl.common.errors`, turned into one ``error:`` line and the exit code here, nowhere else.
"""

from __future__ import annotations

import argparse
import logging
import sys

from qwenlong_verl import __version__
from qwenlong_verl.common.errors import Interrupted, QwenLongError
from qwenlong_verl.driver.cli import (  # noqa: F401  (they register)
    data,
    demo,
    difficulty,
    doctor,
    evaluate,
    recipe,
    recipes,
    score,
)
from qwenlong_verl.driver.cli.args import add_arguments, build
from qwenlong_verl.driver.cli.command import COMMANDS

ORDER = (
    "doctor",
    "recipes",
    "plan",
    "synth",
    "difficulty",
    "prepare",
    "sft-data",
    "eval",
    "report",
    "score",
    "train",
    "demo",
    "tiny-model",
)
"""The order ``--help`` lists the commands in."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qwenlong-verl", description="QwenLong long-context RL on stock veRL")
    parser.add_argument("--version", action="version", version=f"qwenlong-verl {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in sorted(COMMANDS, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER)):
        cmd = COMMANDS[name]
        p = sub.add_parser(name, help=cmd.help, description=cmd.description or cmd.help)
        if cmd.config is not None:
            add_arguments(p, cmd.config, cmd.flags)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, run one command, map its failure to an exit code (``QwenLongError.exit_code``; Ctrl-C 130)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    cmd = COMMANDS[args.command]
    try:
        config = build(cmd.config, args, cmd.flags) if cmd.config is not None else None
        return cmd.run(config)
    except QwenLongError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; what finished is kept: rerun the same command to resume", file=sys.stderr)
        return Interrupted.exit_code
