"""The recipes shipped inside the package (``qwenlong_verl/recipes/``): list them, find one by name, copy one out.

``plan``, ``train`` and ``demo`` take a recipe file or the name of a shipped recipe; :func:`resolve` decides
which, here and nowhere else, so a wheel install needs no checkout. A file of that name wins over a shipped
recipe. Relative paths inside any recipe (``output_dir``, data files) resolve against the current directory,
so a shipped recipe writes under ``./outputs/<name>`` wherever it is started.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from qwenlong_verl.common.files import atomic_write
from qwenlong_verl.driver.recipe import RecipeConfig, RecipeError, load_recipe

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "recipes"
"""Where the shipped ``<name>.yaml`` recipes and their ``<name>.sh`` launchers are installed."""

LAUNCHER_LINE = 'exec qwenlong-verl train {name} "$@"'
"""The last line of a shipped launcher; a copy runs the YAML beside it instead of the shipped one."""

COPY_LAUNCHER_LINE = 'exec qwenlong-verl train "$(dirname "$0")/{name}.yaml" "$@"'


@dataclass(frozen=True)
class ShippedRecipe:
    """One shipped recipe: its name, its one-line description and its files."""

    name: str
    description: str
    path: Path

    @property
    def launcher(self) -> Path:
        return self.path.with_suffix(".sh")


def names() -> list[str]:
    """Names of the shipped recipes, sorted."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml"))


def shipped(name: str) -> ShippedRecipe:
    """The shipped recipe ``name``; a one-line :class:`RecipeError` listing the names for any other."""
    if name not in names():
        raise RecipeError(f"no shipped recipe {name!r}; shipped: {', '.join(names())}")
    path = SHIPPED_DIR / f"{name}.yaml"
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return ShippedRecipe(name, str(data.get("description") or ""), path)


def listing() -> list[ShippedRecipe]:
    """Every shipped recipe, sorted by name."""
    return [shipped(n) for n in names()]


def resolve(name_or_path: str | os.PathLike) -> Path:
    """The recipe file ``name_or_path`` names: an existing file as given, else the shipped recipe of that name
    (``smoke_1gpu`` or ``smoke_1gpu.yaml``); anything else is a one-line :class:`RecipeError`."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    name = str(name_or_path).removesuffix(".yaml")
    if path.parent == Path(".") and (SHIPPED_DIR / f"{name}.yaml").is_file():
        return SHIPPED_DIR / f"{name}.yaml"
    what = "is a folder, not a recipe file" if path.is_dir() else "is neither a recipe file nor a shipped recipe"
    raise RecipeError(
        f"{name_or_path}: {what}; pass a recipe YAML or one of the shipped recipes: {', '.join(names())} "
        "(`qwenlong-verl recipes` lists them)"
    )


def load(name_or_path: str | os.PathLike) -> RecipeConfig:
    """:func:`~qwenlong_verl.driver.recipe.load_recipe` of :func:`resolve`'s file."""
    return load_recipe(resolve(name_or_path))


def copy(name: str, dest_dir: str | os.PathLike, force: bool = False) -> list[Path]:
    """Write ``<dest_dir>/<name>.yaml`` and its launcher ``<name>.sh`` (which runs that copy), each atomically;
    refuses when either exists unless ``force``. Returns the two paths."""
    recipe = shipped(name)
    dest = Path(dest_dir)
    if dest.exists() and not dest.is_dir():
        raise RecipeError(f"{dest}: a file is in the way; name a folder to copy the recipe into")
    targets = [dest / recipe.path.name, dest / recipe.launcher.name]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise RecipeError(f"{' and '.join(existing)} already there; pass --force to overwrite, or name another folder")
    launcher = recipe.launcher.read_text(encoding="utf-8")
    shipped_line = LAUNCHER_LINE.format(name=name)
    if shipped_line not in launcher:  # a packaging bug, not bad input
        raise AssertionError(f"{recipe.launcher}: does not end in {shipped_line!r}")
    atomic_write(targets[0], recipe.path.read_bytes())
    atomic_write(targets[1], launcher.replace(shipped_line, COPY_LAUNCHER_LINE.format(name=name)))
    mode = targets[1].stat().st_mode
    targets[1].chmod(mode | (mode & 0o444) >> 2)  # executable for whoever may read it, as chmod +x does
    return targets
