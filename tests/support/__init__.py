"""Helpers the tests share: where things are, and running the real CLI. Imported as ``support``; conftest only
defines fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
FIXTURES = TESTS / "fixtures"
SUPPORT = TESTS / "support"
RECIPES = sorted((ROOT / "qwenlong_verl" / "recipes").glob("*.yaml"))


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120, env: dict | None = None):
    """Run ``qwenlong-verl`` in a fresh interpreter, as a user would."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "qwenlong_verl.driver.cli", *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def run_cli_in_process(*args: str, cwd: Path | None = None, env: dict | None = None):
    """``qwenlong-verl ARGS`` through the same ``main`` in this interpreter: what a test of a command's own
    behaviour needs, without paying veRL's import again (:func:`run_cli` is the fresh interpreter, for what
    only a new process shows: the entry point, start-up cost, environment handling). Output is captured as the
    console would print it 200 columns wide; log records at WARNING and above go to stderr, as ``main`` sets it
    up in a fresh process."""
    import contextlib
    import io
    import logging

    from qwenlong_verl.driver import cli
    from qwenlong_verl.driver.cli import command

    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    handler.setLevel(logging.DEBUG if "-v" in args or "--verbose" in args else logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    saved_env, saved_cwd, root = dict(os.environ), os.getcwd(), logging.getLogger()
    os.environ.update({"COLUMNS": "200", **(env or {})})
    command._console = None  # the next command's console is made under this environment and this capture
    root.addHandler(handler)
    try:
        os.chdir(cwd or ROOT)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(list(args))
            except SystemExit as exc:  # argparse: usage errors and --help
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    finally:
        root.removeHandler(handler)
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        command._console = None
    return subprocess.CompletedProcess(["qwenlong-verl", *args], code, out.getvalue(), err.getvalue())
