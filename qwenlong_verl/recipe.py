"""The recipe format: one YAML with shared veRL overrides and a ``phases:`` list.

A recipe is validated into these dataclasses before anything else happens, so a typo in a recipe
fails at ``qwenlong-verl plan`` with the file and the key named — not at step 300 on a cluster.
veRL keys themselves are checked by composing the real veRL config (see :mod:`qwenlong_verl.planning`).

Example::

    name: smoke_1gpu
    model_path: Qwen/Qwen2.5-0.5B-Instruct
    overrides:                      # any veRL key, dotted, shared by every phase
      trainer.n_gpus_per_node: 1
    phases:
      - name: short
        max_prompt_length: 4096     # the input window of this phase
        max_response_length: 2048
        total_training_steps: 5     # or total_epochs
        train_files: [data/phase_1.parquet]
        val_files: [data/val.parquet]
        overrides: {actor_rollout_ref.rollout.n: 4}
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

KIND_BASE_CONFIGS = {"rl": "qwenlong_l1", "sft": "qwenlong_sft"}
"""Recipe kinds and the base config each uses when the recipe names none."""


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file and the key."""


@dataclass
class PhaseConfig:
    """One curriculum phase: one stock veRL run with its own input/output window."""

    name: str
    """Short identifier, used in paths and experiment names (letters, digits, ``_.-``)."""

    max_prompt_length: int
    """Input window in tokens (``data.max_prompt_length``); prompts longer than this are not in the phase."""

    max_response_length: int
    """Output budget in tokens (``data.max_response_length``)."""

    train_files: list[str] = field(default_factory=list)
    """Parquet files of this phase (``data.train_files``)."""

    val_files: list[str] = field(default_factory=list)
    """Validation parquet files (``data.val_files``); defaults to the train files."""

    total_training_steps: int | None = None
    """Steps of this phase (``trainer.total_training_steps``); set this or :attr:`total_epochs`."""

    total_epochs: int | None = None
    """Epochs over this phase's data (``trainer.total_epochs``); set this or :attr:`total_training_steps`."""

    overrides: dict[str, Any] = field(default_factory=dict)
    """veRL overrides for this phase only, dotted keys; applied after the recipe's shared overrides."""


@dataclass
class RecipeConfig:
    """A whole training recipe: shared settings and the ordered phases."""

    name: str
    """Recipe identifier, used for the output folder and experiment names."""

    model_path: str
    """Initial actor weights (``actor_rollout_ref.model.path``): a hub name or a local folder."""

    phases: list[PhaseConfig]
    """Phases in training order, with non-decreasing windows."""

    description: str = ""
    """One line shown by ``plan``."""

    base_config: str = "qwenlong_l1"
    """Hydra config in ``qwenlong_verl/hydra_configs`` that the overrides apply to (default per :attr:`kind`)."""

    kind: str = "rl"
    """``rl``: each phase is a veRL PPO run (``main_ppo``); ``sft``: one warm-up phase run by veRL's
    ``sft_trainer`` on ``sft-data`` output, whose last checkpoint is RL phase 1's ``model_path``."""

    output_dir: str = ""
    """Root of everything a run writes (checkpoints, ledger, state); defaults to ``outputs/<name>``."""

    overrides: dict[str, Any] = field(default_factory=dict)
    """veRL overrides shared by every phase, dotted keys (``trainer.n_gpus_per_node: 8``)."""

    source: str = ""
    """File the recipe was read from (set by :func:`load_recipe`)."""

    def phase(self, name_or_index: str | int) -> PhaseConfig:
        if isinstance(name_or_index, int):
            return self.phases[name_or_index]
        for p in self.phases:
            if p.name == name_or_index:
                return p
        raise RecipeError(f"{self.source}: no phase named {name_or_index!r} (have {[p.name for p in self.phases]})")


def _build(cls, data: Any, where: str, source: str):
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types with the path named."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: {where or 'recipe'} must be a mapping, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    unknown = sorted(set(data) - set(known))
    if unknown:
        import difflib

        hints = []
        for key in unknown:
            close = difflib.get_close_matches(str(key), known, n=1)
            hints.append(f"{where + '.' if where else ''}{key}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise RecipeError(f"{source}: unknown key(s): {', '.join(hints)}; allowed: {', '.join(known)}")
    kwargs = {}
    for name, f in known.items():
        path = f"{where}.{name}" if where else name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RecipeError(f"{source}: missing required key {path!r}")
            continue
        kwargs[name] = _check_type(data[name], f.type, path, source)
    return kwargs


def _check_type(value: Any, annotation: str, path: str, source: str) -> Any:
    ann = str(annotation)
    if ann.startswith("int"):
        if value is None and "None" in ann:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(f"{source}: {path} must be an integer, got {value!r}")
        return value
    if ann == "str":
        if not isinstance(value, str):
            raise RecipeError(f"{source}: {path} must be a string, got {value!r}")
        return value
    if ann.startswith("list[str]"):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RecipeError(f"{source}: {path} must be a list of paths, got {value!r}")
        return value
    if ann.startswith("dict"):
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise RecipeError(f"{source}: {path} must be a mapping of dotted veRL keys to values, got {value!r}")
        return {str(k): v for k, v in value.items()}
    return value


def parse_recipe(data: Any, source: str = "<recipe>") -> RecipeConfig:
    """Validate a recipe mapping (as read from YAML) into a :class:`RecipeConfig`."""
    kwargs = _build(RecipeConfig, data, "", source)
    raw_phases = data.get("phases")
    if not isinstance(raw_phases, list) or not raw_phases:
        raise RecipeError(f"{source}: 'phases' must be a non-empty list of phases")
    phases = [PhaseConfig(**_build(PhaseConfig, p, f"phases[{i}]", source)) for i, p in enumerate(raw_phases)]
    kwargs["phases"] = phases
    if "base_config" not in kwargs and kwargs.get("kind") in KIND_BASE_CONFIGS:
        kwargs["base_config"] = KIND_BASE_CONFIGS[kwargs["kind"]]
    recipe = RecipeConfig(**kwargs, source=source)
    _check_semantics(recipe)
    return recipe


def _check_semantics(recipe: RecipeConfig) -> None:
    src = recipe.source
    if not _NAME_RE.match(recipe.name):
        raise RecipeError(f"{src}: name {recipe.name!r} must use letters, digits and _.- only")
    if not recipe.output_dir:
        recipe.output_dir = str(Path("outputs") / recipe.name)
    if recipe.kind not in KIND_BASE_CONFIGS:
        raise RecipeError(f"{src}: kind {recipe.kind!r} must be one of {', '.join(KIND_BASE_CONFIGS)}")
    if recipe.kind == "sft":
        from qwenlong_verl.sft.planning import check_sft_recipe

        check_sft_recipe(recipe)
    seen = set()
    prev = None
    for i, p in enumerate(recipe.phases):
        where = f"{src}: phases[{i}] ({p.name})"
        if not _NAME_RE.match(p.name):
            raise RecipeError(f"{where}: name must use letters, digits and _.- only")
        if p.name in seen:
            raise RecipeError(f"{where}: duplicate phase name")
        seen.add(p.name)
        for key in ("max_prompt_length", "max_response_length"):
            if getattr(p, key) <= 0:
                raise RecipeError(f"{where}: {key} must be positive, got {getattr(p, key)}")
        if (p.total_training_steps is None) == (p.total_epochs is None):
            raise RecipeError(f"{where}: set exactly one of total_training_steps or total_epochs")
        for key in ("total_training_steps", "total_epochs"):
            value = getattr(p, key)
            if value is not None and value <= 0:
                raise RecipeError(f"{where}: {key} must be positive, got {value}")
        if prev is not None and p.max_prompt_length < prev.max_prompt_length:
            raise RecipeError(
                f"{where}: max_prompt_length {p.max_prompt_length} is below the previous phase's "
                f"{prev.max_prompt_length}; a curriculum's input windows must not shrink"
            )
        for key in ("data.max_prompt_length", "data.max_response_length", "data.train_files", "data.val_files"):
            for scope, overrides in (("overrides", recipe.overrides), (f"phases[{i}].overrides", p.overrides)):
                if key in overrides or f"+{key}" in overrides or f"++{key}" in overrides:
                    raise RecipeError(f"{src}: {scope} sets {key}; use the phase's own field instead")
        prev = p


def load_recipe(path: str | Path) -> RecipeConfig:
    """Read and validate a recipe YAML file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from None
    return parse_recipe(data, source=str(path))
