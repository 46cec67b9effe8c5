"""The merge step kind (``kind: merge``): models of earlier phases merged into ``<output_dir>/<step>/actor_hf``.

No veRL run: the plan resolves the step's phase names into model folders (recorded by ``train``, else where those
phases will write them) and ``train`` runs ``python -m qwenlong_verl.driver.merge`` once
(:mod:`qwenlong_verl.driver.merge`), whose folder is the next phase's model. A finished merge (its folder holds a
``config.json``) is never run again; a killed one left only a ``.partial`` folder, removed by the next run.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from qwenlong_verl.driver import layout
from qwenlong_verl.driver.compose import PlanError
from qwenlong_verl.driver.kinds.base import Composed, OutputOf, PhaseKind
from qwenlong_verl.driver.merge import MERGE_MODULE, MergeSpec, input_problems
from qwenlong_verl.driver.recipe import RecipeConfig


class MergeStep(PhaseKind):
    name = "merge"
    trains = False
    checked = "merge inputs checked"

    def compose(
        self, recipe: RecipeConfig, index: int, model_path: str | None, output_of: OutputOf, check: bool = True
    ) -> Composed:
        step = recipe.phases[index]
        base = output_of(recipe.index_of(step.base)) if step.base else layout.start_model_path(recipe)
        spec = MergeSpec(
            method=step.method,
            base=base,
            models=[output_of(recipe.index_of(name)) for name in step.models],
            parameters=dict(step.parameters),
            dtype=step.dtype,
            out=str(self.output_model_path(recipe, index)),
        )
        notes = []
        if check:
            problems = input_problems(spec, present_only=True)
            if problems:
                raise PlanError("; ".join(problems))
            sources = [("base", step.base, base)]
            sources += [("model", name, path) for name, path in zip(step.models, spec.models, strict=True)]
            for role, name, path in sources:
                if (Path(path) / "config.json").is_file():
                    there = "present"
                elif name:
                    there = f"written by phase {recipe.index_of(name) + 1} ({name})"
                else:
                    there = "the recipe's model_path, not a local folder: mergekit fetches it from the hub"
                notes.append(f"{role} {path}: {there}")
            notes.append(f"{step.method} {spec.parameters}, written as {step.dtype} to {spec.out}")
        return Composed(overrides=spec.args(), args=spec.args(), config=spec, notes=notes)

    def program(self, recipe: RecipeConfig, config) -> list[str]:
        return ["python", "-m", MERGE_MODULE]

    def train_problems(self, config) -> list[str]:
        if importlib.util.find_spec("mergekit") is None:
            return ["the merge step needs mergekit: pip install 'mergekit>=0.1.5,<0.2'"]
        return []

    def model_path(self, recipe: RecipeConfig, config) -> str:
        return ", ".join(config.models)

    def data_files(self, recipe: RecipeConfig, index: int) -> tuple[list[str], list[str]]:
        return [], []

    def output_model_path(self, recipe: RecipeConfig, index: int) -> Path:
        return layout.merged_model_dir(recipe, index)

    def table_cells(self, recipe: RecipeConfig, index: int, config) -> tuple[str, str, str, list[str]]:
        return "", "", f"{config.method} merge", list(config.models)
