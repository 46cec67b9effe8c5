"""The README is the user guide: its commands are real, its config reference is the code's."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

from qwenlong_verl.driver.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
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


@pytest.mark.slow
def test_quick_start_runs_as_written(tmp_path, cli):
    """The Quick start block, verbatim, on CPU; only the hub tokenizer becomes the builtin one (no hub here). `demo`
    trains for real for minutes: test_cpu_e2e.py runs it (on its trained run folder), so it is not repeated here."""
    block = README.split("## Quick start", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    steps = [c for c in _bash_commands("```bash\n" + block + "```") if c.startswith("qwenlong-verl ")]
    assert [s.split()[1] for s in steps] == ["doctor", "demo", "synth", "prepare", "plan", "train"]
    (tmp_path / "recipes").symlink_to(ROOT / "recipes")
    for step in steps:
        if step.split()[1] == "demo":
            continue
        args = shlex.split(step.replace("--tokenizer Qwen/Qwen2.5-0.5B-Instruct", "--tokenizer builtin"))[1:]
        out = cli(*args, cwd=tmp_path, timeout=300)
        assert out.returncode == 0, f"{step}\n{out.stdout}{out.stderr}"
        assert "warning" not in out.stdout.lower() or args[0] != "train", out.stdout  # the data exists by then
    assert (tmp_path / "outputs/smoke_1gpu/data/phase1.parquet").is_file()
    assert (tmp_path / "outputs/smoke_1gpu/data/phase2.parquet").is_file()
