"""Where a recipe's run keeps its things: one place, read by ``plan`` (the commands) and ``train`` (the run).

::

    <output_dir>/
      train_state.json              qwenlong-verl train's progress (atomic writes)
      tiny_model/                   the model of model_path: tiny | tiny-answers (CPU smoke tests)
      data/                         prepare's output when the recipe has a data: section
        synth.jsonl                 the generated source examples (data.synth)
        phase1.parquet  phase2.parquet  ...  stats.json    length bins: a phase reads those of its input range
      <phase>/
        data/train.parquet          built only when the phase adds to its own rows (retrospective carry,
        data/val.parquet            validation hold-out) ...
        data/retrospective.json     ... and what was carried, why
        metrics.jsonl               per-step metrics of every launch of the phase, appended
        checkpoints/                veRL's trainer.default_local_dir: global_step_<N>/, the difficulty ledger
        actor_hf/                   the phase's final actor merged to a Hugging Face folder (a merge step: the
                                    merged model): the next phase's model
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qwenlong_verl.common.names import TRAINER_MODE
from qwenlong_verl.driver.recipe import TINY_MODELS, RecipeConfig, RecipeError

STATE_FILE = "train_state.json"
TRAIN_FILE = "train.parquet"
VAL_FILE = "val.parquet"
REPORT_FILE = "retrospective.json"
MERGED_DIR = "actor_hf"
METRICS_FILE = "metrics.jsonl"
SYNTH_FILE = "synth.jsonl"
TRACKER_FILE = "latest_checkpointed_iteration.txt"
"""What veRL's checkpoint handler writes beside the ``global_step_<N>`` folders: the last saved step."""


def tiny_model_dir(recipe: RecipeConfig) -> Path:
    return Path(recipe.output_dir) / "tiny_model"


def start_model_path(recipe: RecipeConfig) -> str:
    """The model phase 1 starts from: the recipe's ``model_path``, or the tiny model's folder for a tiny name."""
    if recipe.model_path in TINY_MODELS:
        return str(tiny_model_dir(recipe))
    return recipe.model_path


def phase_dir(recipe: RecipeConfig, index: int) -> Path:
    """``<output_dir>/<phase name>``: everything of one phase."""
    return Path(recipe.output_dir) / recipe.phases[index].name


def checkpoint_dir(recipe: RecipeConfig, index: int) -> Path:
    """veRL's ``trainer.default_local_dir`` of the phase (its ``global_step_<N>`` folders and the ledger)."""
    return phase_dir(recipe, index) / "checkpoints"


def phase_data_dir(recipe: RecipeConfig, index: int) -> Path:
    """Files ``train`` builds for the phase (carry-over, validation hold-out, the retrospective report)."""
    return phase_dir(recipe, index) / "data"


def merged_model_dir(recipe: RecipeConfig, index: int) -> Path:
    """The phase's final actor as a Hugging Face folder (veRL's model merger): the next phase's model."""
    return phase_dir(recipe, index) / MERGED_DIR


def metrics_file(recipe: RecipeConfig, index: int) -> Path:
    """The phase's per-step metrics, every launch's steps appended (veRL's ``{"step", "data"}`` lines)."""
    return phase_dir(recipe, index) / METRICS_FILE


def state_file(recipe: RecipeConfig) -> Path:
    return Path(recipe.output_dir) / STATE_FILE


def prepared_dir(recipe: RecipeConfig) -> Path:
    """``prepare``'s output folder for the recipe's ``data:`` section."""
    data = recipe.data
    if data is not None and data.output_dir:
        return Path(data.output_dir)
    return Path(recipe.output_dir) / "data"


def own_train_files(recipe: RecipeConfig, index: int) -> list[str]:
    """The phase's own examples: its ``train_files``, else the length bins ``prepare`` wrote for its input range
    (:meth:`~qwenlong_verl.driver.recipe.RecipeConfig.data_bins`)."""
    phase = recipe.phases[index]
    if phase.train_files:
        return list(phase.train_files)
    if recipe.data is None:
        raise RecipeError(f"{recipe.source}: phase {phase.name} has no train_files and the recipe no data: section")
    from qwenlong_verl.driver.data.prepare import phase_file

    return [str(phase_file(prepared_dir(recipe), n)) for n in recipe.data_bins(index)]


def explicit_val_files(recipe: RecipeConfig, index: int) -> list[str]:
    """Validation files named in the recipe for the phase (its own, else the data section's)."""
    phase = recipe.phases[index]
    if phase.val_files:
        return list(phase.val_files)
    if recipe.data is not None and recipe.data.val_files:
        return list(recipe.data.val_files)
    return []


def holds_out_validation(recipe: RecipeConfig, index: int) -> bool:
    """Whether ``train`` splits a validation set off the phase's own examples (``data.val_size``)."""
    return bool(recipe.data is not None and recipe.data.val_size > 0 and not explicit_val_files(recipe, index))


def builds_phase_data(recipe: RecipeConfig, index: int) -> bool:
    """Whether ``train`` writes the phase's training file itself (else the own files are used as they are)."""
    return recipe.phases[index].retrospective is not None or holds_out_validation(recipe, index)


def train_files(recipe: RecipeConfig, index: int) -> list[str]:
    """``data.train_files`` of the phase's veRL run."""
    if builds_phase_data(recipe, index):
        return [str(phase_data_dir(recipe, index) / TRAIN_FILE)]
    return own_train_files(recipe, index)


def val_files(recipe: RecipeConfig, index: int) -> list[str]:
    """``data.val_files`` of the phase's veRL run."""
    explicit = explicit_val_files(recipe, index)
    if explicit:
        return explicit
    if holds_out_validation(recipe, index):
        return [str(phase_data_dir(recipe, index) / VAL_FILE)]
    return train_files(recipe, index)


def curriculum_overrides(recipe: RecipeConfig, index: int) -> dict[str, Any]:
    """The veRL keys a phase derives from its curriculum settings (merged before the recipe's overrides)."""
    phase = recipe.phases[index]
    return {
        "trainer.v1.trainer_mode": TRAINER_MODE,
        "qwenlong.curriculum.phase": phase.name,
        "qwenlong.curriculum.phase_number": index + 1,
        "qwenlong.curriculum.task_balance": phase.task_balance,
        "qwenlong.curriculum.metrics_path": str(metrics_file(recipe, index)),
    }
