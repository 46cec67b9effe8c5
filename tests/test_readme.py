"""The README is the user guide: its commands are real, its config reference is the code's."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

from qwenlong_verl.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
sys.path.insert(0, str(ROOT / "tools"))


def _bash_commands(text: str) -> list[str]:
    """Every command line of the README's bash blocks (continuations joined, comments dropped)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


COMMANDS = _bash_commands(README)
OURS = [c for c in COMMANDS if c.startswith("qwenlong-verl ")]


def test_readme_shows_the_two_setup_commands_first():
    first = _bash_commands(README.split("## Set-up", 1)[1])[:2]
    assert first == ["make demo", "make test"]


@pytest.mark.parametrize("command", OURS, ids=lambda c: " ".join(c.split()[:2]))
def test_every_readme_cli_command_parses(command):
    parser = build_parser()
    args = shlex.split(command)[1:]
    parser.parse_args(args)  # argparse exits (SystemExit) on a stale flag or command


def test_readme_mentions_only_shipped_recipes_and_make_targets():
    for path in re.findall(r"recipes/[\w.]+\.(?:yaml|sh)", README):
        assert (ROOT / path).is_file(), path
    makefile = (ROOT / "Makefile").read_text()
    for target in re.findall(r"^make (\w+)", "\n".join(COMMANDS), flags=re.M):
        assert re.search(rf"^{target}:", makefile, flags=re.M), target


def test_config_reference_is_current():
    import config_reference

    text = README.split(config_reference.BEGIN, 1)[1].split(config_reference.END, 1)[0]
    assert text.strip() == config_reference.render().strip(), "run: python tools/config_reference.py --write"
