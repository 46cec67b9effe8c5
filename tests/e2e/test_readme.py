"""The README is the user guide: its commands are real, its config reference is the code's."""

from __future__ import annotations

import configparser
import json
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
    from qwenlong_verl.driver.recipes import names

    assert not re.findall(r"(?<!qwenlong_verl/)recipes/[\w.]+\.(?:yaml|sh)", README), "recipes are named, not pathed"
    for command in OURS:
        words = shlex.split(command)
        if words[1] in ("plan", "train"):
            assert words[2] in names(), command
    makefile = (ROOT / "Makefile").read_text()
    for target in re.findall(r"^make (\w+)", "\n".join(COMMANDS), flags=re.M):
        assert re.search(rf"^{target}:", makefile, flags=re.M), target


def test_config_reference_is_current():
    import config_reference

    text = README.split(config_reference.BEGIN, 1)[1].split(config_reference.END, 1)[0]
    assert text.strip() == config_reference.render().strip(), "run: python tools/config_reference.py --write"


def _hub_cache_with_builtin(root: Path, repo_id: str) -> Path:
    """A Hugging Face cache (``HF_HOME``) holding the builtin tokenizer under ``repo_id``, laid out as
    ``huggingface_hub`` stores a download: stands in for a real download of the model's tokenizer (no hub here)."""
    import shutil

    from qwenlong_verl.driver.data.tokenizer import builtin_tokenizer_path

    commit = "0" * 40
    repo = root / "hub" / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    shutil.copytree(builtin_tokenizer_path(), snapshot)
    (snapshot / "config.json").write_text('{"model_type": "qwen2"}')
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return root


@pytest.mark.slow
def test_quick_start_runs_as_written(tmp_path, cli):
    """The Quick start block, verbatim, on CPU in an empty folder, with the policy's tokenizer in the local HF cache
    (the builtin one under the Qwen name: no hub here). `demo` trains for real for minutes: test_cpu_e2e.py runs
    it (on its trained run folder), so it is not repeated here."""
    block = README.split("## Quick start", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    steps = [c for c in _bash_commands("```bash\n" + block + "```") if c.startswith("qwenlong-verl ")]
    assert [s.split()[1] for s in steps] == ["doctor", "demo", "synth", "prepare", "plan", "train", "train"]
    cache = _hub_cache_with_builtin(tmp_path / "hf", "Qwen/Qwen2.5-0.5B-Instruct")
    work = tmp_path / "work"
    work.mkdir()
    for step in steps:
        args = shlex.split(step)[1:]
        if args[0] == "demo" or (args[0] == "train" and "--dry-run" not in args):
            continue  # real training: test_cpu_train.py (CPU) and GPU machines
        out = cli(*args, cwd=work, timeout=300, env={"HF_HOME": str(cache), "HF_HUB_OFFLINE": "1"})
        assert out.returncode == 0, f"{step}\n{out.stdout}{out.stderr}"
        assert "warning" not in out.stdout.lower() or args[0] != "train", out.stdout  # the data exists by then
    stats = json.loads((work / "outputs/smoke_1gpu/data/stats.json").read_text())
    assert stats["tokenizer"] == "Qwen/Qwen2.5-0.5B-Instruct"  # what plan checked against the recipe's model_path
    assert (work / "outputs/smoke_1gpu/data/phase2.parquet").is_file()


def _block_after(heading: str) -> list[str]:
    """The commands of the first bash block after ``heading`` (a bold line or a title)."""
    return _bash_commands("```bash\n" + README.split(heading, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0] + "```")


def _gpu_extra() -> dict[str, str]:
    """setup.cfg's ``gpu`` extra: requirement name -> the full requirement line."""
    from packaging.requirements import Requirement

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = [s.strip() for s in cfg["options.extras_require"]["gpu"].splitlines() if s.strip()]
    return {Requirement(line).name: line for line in lines}


def test_gpu_install_commands_match_the_package_metadata():
    """README's two GPU commands, verbatim: torch first at the gpu extra's pin, then the package with that extra and
    no build isolation (flash-attn is pinned and has no wheel: it builds against the installed torch); the build
    tools are the ones doctor and the Makefile name; CUDA 13 is what veRL's own fsdp extra pins."""
    from importlib.metadata import requires

    from qwenlong_verl.driver.doctor import GPU_BUILD_TOOLS

    extra = _gpu_extra()
    first, second, doctor = _block_after("**GPU cluster**")
    assert first == f"pip install {extra['torch']} {GPU_BUILD_TOOLS}"
    assert second == "pip install --no-build-isolation -e '.[gpu]'"
    assert doctor == "qwenlong-verl doctor"
    assert extra["flash-attn"] == "flash-attn==2.8.3" and "verl[vllm,fsdp]==0.9.1" in extra.values()
    verl = requires("verl") or []
    assert f'{extra["torch"]}; extra == "fsdp"' in verl  # our torch pin is veRL's
    assert any(r.startswith("cupy-cuda13x") for r in verl) and "CUDA 13" in README
    makefile = (ROOT / "Makefile").read_text()
    assert f"GPU_TORCH ?= {extra['torch']}\n" in makefile and f"GPU_BUILD_TOOLS ?= {GPU_BUILD_TOOLS}\n" in makefile
    assert (
        "$(PIP) install -q '$(GPU_TORCH)' $(GPU_BUILD_TOOLS) && $(PIP) install -q --no-build-isolation -e '.[test,gpu]'"
        in makefile
    )
