"""The shipped recipes as a user reaches them: by name from any folder, listed, copied out to edit."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml
from support import RECIPES

from qwenlong_verl.driver import recipes
from qwenlong_verl.driver.recipe import RecipeError


def test_names_are_the_packaged_yaml_files_each_with_a_description():
    assert recipes.names() == [p.stem for p in RECIPES]
    assert recipes.SHIPPED_DIR.parent.name == "qwenlong_verl"  # inside the package: ships in the wheel
    for r in recipes.listing():
        assert r.description == yaml.safe_load(r.path.read_text())["description"] != ""
        assert r.launcher.is_file()


def test_resolve_a_name_a_file_and_neither(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert recipes.resolve("smoke_1gpu") == recipes.SHIPPED_DIR / "smoke_1gpu.yaml"
    assert recipes.resolve("smoke_1gpu.yaml") == recipes.SHIPPED_DIR / "smoke_1gpu.yaml"
    (tmp_path / "smoke_1gpu").write_text("name: mine\n")
    assert recipes.resolve("smoke_1gpu").resolve() == tmp_path / "smoke_1gpu"  # a file of that name wins
    with pytest.raises(RecipeError) as err:
        recipes.resolve("recipes/smoke_1gpu.yaml")  # the old checkout path, from a folder without it
    message = str(err.value)
    assert "\n" not in message and "neither a recipe file nor a shipped recipe" in message
    assert all(name in message for name in recipes.names())
    (tmp_path / "folder").mkdir()
    with pytest.raises(RecipeError, match="is a folder"):
        recipes.resolve("folder")


def test_load_by_name_keeps_relative_paths_relative_to_the_current_folder():
    recipe = recipes.load("smoke_1gpu")
    assert recipe.source == str(recipes.SHIPPED_DIR / "smoke_1gpu.yaml")
    assert recipe.output_dir == "outputs/smoke_1gpu"  # resolved against the cwd by whoever opens it


def test_copy_writes_both_files_refuses_to_overwrite_and_force_does(tmp_path):
    dest = tmp_path / "mine"
    yaml_path, launcher = recipes.copy("smoke_1gpu", dest)
    assert yaml_path.read_bytes() == (recipes.SHIPPED_DIR / "smoke_1gpu.yaml").read_bytes()
    assert os.access(launcher, os.X_OK)
    assert launcher.read_text().endswith('exec qwenlong-verl train "$(dirname "$0")/smoke_1gpu.yaml" "$@"\n')
    yaml_path.write_text("edited\n")
    with pytest.raises(RecipeError, match="--force"):
        recipes.copy("smoke_1gpu", dest)
    assert yaml_path.read_text() == "edited\n"  # nothing written on refusal
    recipes.copy("smoke_1gpu", dest, force=True)
    assert yaml_path.read_bytes() == (recipes.SHIPPED_DIR / "smoke_1gpu.yaml").read_bytes()
    with pytest.raises(RecipeError, match="no shipped recipe 'nope'; shipped: cpu_memory, cpu_smoke"):
        recipes.copy("nope", dest)
    (tmp_path / "file").write_text("")
    with pytest.raises(RecipeError, match="a file is in the way"):
        recipes.copy("smoke_1gpu", tmp_path / "file")


def test_the_copied_launcher_runs_its_own_copy_from_any_folder(tmp_path):
    _, launcher = recipes.copy("cpu_smoke", tmp_path / "mine")
    shim = tmp_path / "bin"
    shim.mkdir()
    record = tmp_path / "argv.json"
    fake = shim / "qwenlong-verl"
    fake.write_text(f"#!/usr/bin/env python3\nimport json, sys\njson.dump(sys.argv[1:], open({str(record)!r}, 'w'))\n")
    fake.chmod(0o755)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = subprocess.run(
        [str(launcher), "--dry-run"],
        cwd=elsewhere,
        env={**os.environ, "PATH": f"{shim}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(record.read_text()) == ["train", f"{tmp_path / 'mine'}/cpu_smoke.yaml", "--dry-run"]


def test_cli_lists_copies_and_refuses(cli, tmp_path):
    listed = cli("recipes", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split()[0] for line in lines] == recipes.names()
    for r, line in zip(recipes.listing(), lines, strict=True):
        assert line.split(None, 1)[1] == r.description
    copied = cli("recipes", "copy", "smoke_1gpu", "out", cwd=tmp_path)
    assert copied.returncode == 0, copied.stderr
    assert (tmp_path / "out" / "smoke_1gpu.yaml").is_file() and (tmp_path / "out" / "smoke_1gpu.sh").is_file()
    again = cli("recipes", "copy", "smoke_1gpu", "out", cwd=tmp_path)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--force" in again.stderr
    assert cli("recipes", "copy", "smoke_1gpu", "out", "--force", cwd=tmp_path).returncode == 0
    missing = cli("recipes", "copy", "smoke_1gpu", cwd=tmp_path)
    assert missing.returncode == 2 and "needs NAME and DIR" in missing.stderr
    unknown = cli("recipes", "show", cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown action 'show'" in unknown.stderr


def test_plan_takes_a_name_and_names_the_shipped_ones_for_anything_else(cli, tmp_path):
    bad = cli("plan", "smoke_1gpuu", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("error: smoke_1gpuu: is neither a recipe file nor a shipped recipe")
    assert "smoke_1gpu" in bad.stderr and "Traceback" not in bad.stderr
    train = cli("train", "nope", "--dry-run", cwd=tmp_path)
    assert train.returncode == 2 and "shipped recipes: cpu_memory, cpu_smoke" in train.stderr


@pytest.mark.slow
def test_plan_by_name_from_an_empty_folder(cli_main, tmp_path):
    out = cli_main("plan", "smoke_1gpu", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "phase 2 (phase2) — veRL config validated" in out.stdout
    assert list(tmp_path.iterdir()) == []  # plan writes nothing
