"""Installed like a real package: a wheel built from the working tree, in a fresh virtualenv, used from an empty
folder. The virtualenv sees the already-installed dependencies (veRL, torch) through a ``.pth`` line naming this
environment's site-packages, a plain path line, so the checkout's editable install is not processed there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from support import ROOT

pytestmark = pytest.mark.slow


def _run(argv: list, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    out = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env={**env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, f"{argv}\n{out.stdout}{out.stderr}"
    return out


def _working_tree(dest: Path) -> Path:
    """The files git would commit now (tracked and new, not ignored): no build/ or egg-info leftovers ship."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv folder, an empty working folder) with the wheel of the working tree installed."""
    root = tmp_path_factory.mktemp("wheel")
    src = _working_tree(root / "src")
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", root / "dist", "."], src
    )
    (wheel,) = (root / "dist").glob("qwenlong_verl-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], root)
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root).stdout.strip())
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel], root)
    empty = root / "empty"
    empty.mkdir()
    return venv, empty


def test_the_package_comes_from_the_wheel_not_the_checkout(installed):
    venv, empty = installed
    out = _run([venv / "bin" / "python", "-c", "import qwenlong_verl, sys; print(qwenlong_verl.__file__)"], empty)
    where = Path(out.stdout.strip())
    assert where.is_relative_to(venv) and not where.is_relative_to(ROOT)


def test_recipes_plan_and_dry_run_by_name_in_an_empty_folder(installed):
    venv, empty = installed
    cli = venv / "bin" / "qwenlong-verl"
    listed = _run([cli, "recipes"], empty)
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert "smoke_1gpu" in names and "cpu_smoke" in names
    plan = _run([cli, "plan", "smoke_1gpu"], empty)
    assert plan.stdout.count("veRL config validated") == 2
    dry = _run([cli, "train", "smoke_1gpu", "--dry-run"], empty)
    assert dry.stdout.count(f"{venv / 'bin' / 'python'} -m verl.trainer.main_ppo") == 2, dry.stdout
    assert "--config-path=pkg://qwenlong_verl.hydra_configs" in dry.stdout
    assert list(empty.iterdir()) == []  # planning writes nothing; the missing data is reported, not created


def test_the_demo_recipe_and_the_builtin_tokenizer_are_installed(installed):
    """`demo` trains for 8 minutes; what it needs from the install is its recipe (and the tokenizer the tiny model
    is built on), found without a checkout."""
    venv, empty = installed
    probe = (
        "import json\n"
        "from qwenlong_verl.driver import recipes\n"
        "from qwenlong_verl.driver.demo import DEMO_RECIPE\n"
        "from qwenlong_verl.driver.data.tokenizer import builtin_tokenizer_path, load_tokenizer\n"
        "recipe = recipes.load(DEMO_RECIPE)\n"
        "print(json.dumps([str(DEMO_RECIPE), recipe.name, recipe.data.tokenizer, builtin_tokenizer_path(),\n"
        "                  len(load_tokenizer('builtin'))]))\n"
    )
    path, name, tokenizer, tokenizer_dir, vocab = json.loads(_run([venv / "bin" / "python", "-c", probe], empty).stdout)
    assert Path(path).is_relative_to(venv) and name == "cpu_smoke" and tokenizer == "builtin"
    assert Path(tokenizer_dir).is_relative_to(venv) and vocab > 1000


def test_doctor_would_reinstall_the_very_wheel(installed):
    venv, empty = installed
    probe = "from qwenlong_verl.driver.doctor import reinstall_command; print(reinstall_command())"
    hint = _run([venv / "bin" / "python", "-c", probe], empty).stdout.strip()
    assert hint.startswith("pip install --force-reinstall --no-deps '") and hint.endswith(".whl'"), hint


def test_a_copied_recipe_and_its_launcher_work_from_the_install(installed):
    venv, empty = installed
    work = empty.parent / "copy"
    work.mkdir()
    _run([venv / "bin" / "qwenlong-verl", "recipes", "copy", "smoke_1gpu", "mine"], work)
    env_path = f"{venv / 'bin'}:{os.environ['PATH']}"
    out = subprocess.run(
        [work / "mine" / "smoke_1gpu.sh", "--dry-run"],
        cwd=work,
        env={**os.environ, "PATH": env_path, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("veRL config validated") == 2
