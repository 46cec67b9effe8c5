"""The recipe format: one YAML with shared veRL overrides and a ``phases:`` list.

A recipe is validated into these dataclasses before anything else happens, so a typo in a recipe
fails at ``qwenlong-verl plan`` with the file and the key named — not at step 300 on a cluster.
veRL keys themselves are checked by composing the real veRL config (see :mod:`qwenlong_verl.driver.plan`).

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

A curriculum built from source data by ``qwenlong-verl train`` (docs/curriculum.md)::

    data:
      inputs: [data/docqa.jsonl]        # prepare() bins them by prompt length, one bin per phase window
      tokenizer: Qwen/Qwen2.5-7B-Instruct
    phases:
      - {name: short, max_prompt_length: 20480, max_response_length: 12288, total_training_steps: 100,
         task_balance: true}
      - {name: long, max_prompt_length: 61440, max_response_length: 20480, total_training_steps: 100,
         task_balance: true, retrospective: {ratio: 0.25, weighting: difficulty, drop_solved: true}}
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.names import TRAINER_MODE
from qwenlong_verl.driver.data.tokenizer import BUILTIN

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_KEY_RE = re.compile(r"[\w.+-]+")

TINY_MODELS = {"tiny": False, "tiny-answers": True}
"""``model_path`` names that ``train`` materialises with ``qwenlong-verl tiny-model`` (value: the answers variant)
at ``layout.tiny_model_dir``, so a CPU recipe needs no model download and no preparation step. They use the
builtin tokenizer by construction."""


@dataclass(frozen=True)
class KindFormat:
    """What the recipe format allows for one ``kind:`` (its behaviour is the phase kind's,
    :mod:`qwenlong_verl.driver.kinds`)."""

    base_config: str
    """Hydra config used when the recipe names none."""

    derived_keys: dict[str, str]
    """veRL keys the recipe's own fields set (key -> the field), so ``overrides`` must not."""

    single_phase: bool = False
    """The recipe has exactly one phase."""

    data_section: bool = True
    """A recipe-level ``data:`` section may build the phases' files."""


RECIPE_KINDS: dict[str, KindFormat] = {
    "rl": KindFormat(
        base_config="qwenlong_l1",
        derived_keys={
            "data.max_prompt_length": "the phase's max_prompt_length",
            "data.max_response_length": "the phase's max_response_length",
            "data.train_files": "the phase's train_files",
            "data.val_files": "the phase's val_files",
            "trainer.logger": "the recipe's tracker",
        },
    ),
    "sft": KindFormat(
        base_config="qwenlong_sft",
        derived_keys={
            "model.path": "the recipe's model_path",
            "data.train_files": "the recipe's phases[0].train_files",
            "data.val_files": "the recipe's phases[0].val_files",
            "data.max_length": "the recipe's phases[0].max_prompt_length + max_response_length",
            "trainer.logger": "the recipe's tracker",
        },
        single_phase=True,
        data_section=False,
    ),
}
"""Recipe kinds and their format rules."""

TRACKERS: dict[str, str] = {
    "console": "",
    "tensorboard": "tensorboard",
    "wandb": "wandb",
    "mlflow": "mlflow",
    "swanlab": "swanlab",
}
"""``tracker:`` values -> the module veRL's tracker needs (installed by the package extra of the same name)."""


RETRO_WEIGHTINGS = ("difficulty", "uniform")
"""How retrospective sampling weights the candidates (``retrospective.weighting``)."""


class RecipeError(InputError):
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

    retrospective: RetrospectiveConfig | None = None
    """Carry hard examples of earlier phases into this one (not for the first phase); ``true`` for the defaults."""

    task_balance: bool = False
    """Task-balanced prompt batches in this phase: an equal count of every task per batch (QwenLong-L1.5)."""


@dataclass
class RetrospectiveConfig:
    """Difficulty-aware retrospective sampling (QwenLong-L1): a phase's data = its own window's examples plus
    hard examples of earlier phases, chosen with probability proportional to difficulty (1 - mean reward)."""

    ratio: float = 0.25
    """Examples to carry, as a fraction of the phase's own examples (0.25: 25 carried per 100 own); fewer when
    fewer earlier examples qualify."""

    weighting: str = "difficulty"
    """``difficulty``: inclusion probability proportional to difficulty; ``uniform``: equal (an ablation)."""

    drop_solved: bool = True
    """Leave out examples that every rollout of their last phase solved (pass rate 1)."""

    seed: int = 1
    """Seed of the draw; the same ledgers, data and seed carry the same examples."""


@dataclass
class RecipeSynthConfig:
    """Synthetic source data (``qwenlong-verl synth``): ``train`` writes it once, before ``prepare``, so a recipe
    runs with no data files at all (CPU smoke tests, demos)."""

    n: int
    """Number of examples."""

    min_tokens: int = 1500
    """Shortest target input length (builtin tokenizer)."""

    max_tokens: int = 3000
    """Longest target input length."""

    tasks: list[str] = field(default_factory=list)
    """Task kinds to generate (``numeric``, ``choice``, ``qa``); empty: all in turn."""

    seed: int = 0
    """Same settings and seed, same file."""


@dataclass
class RecipeDataConfig:
    """Recipe-level data: ``qwenlong-verl train`` builds each phase's parquet from these source files with
    ``prepare`` (disjoint length bins, one per phase window), then adds its retrospective carry-over."""

    inputs: list[str] = field(default_factory=list)
    """Source files for ``prepare`` (jsonl/json/parquet, the raw or veRL row schema; see docs/data.md)."""

    synth: RecipeSynthConfig | None = None
    """Generate the source data instead (or besides): written to ``<data output_dir>/synth.jsonl``."""

    tokenizer: str = ""
    """Tokenizer that counts prompt lengths (a hub name or folder); default: the recipe's ``model_path`` (what veRL
    will count with; ``builtin`` for the tiny models). ``builtin`` names the small offline one, for trials."""

    output_dir: str = ""
    """Where ``prepare`` writes ``phase<N>.parquet`` and ``stats.json``; defaults to ``<output_dir>/data``."""

    val_files: list[str] = field(default_factory=list)
    """Validation files of every phase (a phase's own ``val_files`` win)."""

    val_size: int = 0
    """Without validation files: hold out this many of each phase's own examples as its validation set
    (0: validate on the training files)."""

    apply_chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    """Passed to ``prepare``; must equal the run's ``data.apply_chat_template_kwargs`` so lengths agree."""

    strict: bool = False
    """Fail on bad source rows instead of dropping and counting them."""

    seed: int = 1
    """Seed of the validation hold-out."""


@dataclass
class RecipeConfig:
    """A whole training recipe: shared settings and the ordered phases."""

    name: str
    """Recipe identifier, used for the output folder and experiment names."""

    model_path: str
    """Initial actor weights (``actor_rollout_ref.model.path``): a hub name or a local folder; ``tiny`` or
    ``tiny-answers``: a tiny random Qwen2 that ``train`` writes into the run folder (CPU smoke tests, docs/cpu.md)."""

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

    tracker: str = "console"
    """Where per-step metrics go besides the console and the phase's ``metrics.jsonl``: ``tensorboard``, ``wandb``,
    ``mlflow`` or ``swanlab`` (``pip install -e '.[wandb]'`` etc.); sets veRL's ``trainer.logger``."""

    data: RecipeDataConfig | None = None
    """Source data from which ``qwenlong-verl train`` builds each phase's training files (``train_files`` of a
    phase, when given, take precedence)."""

    source: str = ""
    """File the recipe was read from (set by :func:`load_recipe`)."""

    @property
    def data_tokenizer(self) -> str:
        """The tokenizer the phase bins must be cut with: ``data.tokenizer``, else the model's own."""
        if self.data is not None and self.data.tokenizer:
            return self.data.tokenizer
        return BUILTIN if self.model_path in TINY_MODELS else self.model_path

    def phase(self, name_or_index: str | int) -> PhaseConfig:
        if isinstance(name_or_index, int):
            return self.phases[name_or_index]
        for p in self.phases:
            if p.name == name_or_index:
                return p
        raise RecipeError(f"{self.source}: no phase named {name_or_index!r} (have {[p.name for p in self.phases]})")


def _build(cls, data: Any, where: str, source: str) -> dict[str, Any]:
    """Keyword arguments of dataclass ``cls`` from a mapping: unknown keys and wrong types rejected, path named."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: {where or 'recipe'} must be a mapping, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    unknown = sorted(set(data) - set(known), key=str)
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(str(key), known, n=1)
            shown = key if isinstance(key, str) and _KEY_RE.fullmatch(key) else repr(key)  # one line, whatever the key
            hints.append(f"{where + '.' if where else ''}{shown}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise RecipeError(f"{source}: unknown key(s): {', '.join(hints)}; allowed: {', '.join(known)}")
    types_of = typing.get_type_hints(cls)
    kwargs = {}
    for name, f in known.items():
        path = f"{where}.{name}" if where else name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RecipeError(f"{source}: missing required key {path!r}")
            continue
        kwargs[name] = _convert(data[name], types_of[name], path, source)
    return kwargs


def _convert(value: Any, tp: Any, path: str, source: str) -> Any:
    """``value`` as the annotated type ``tp`` (from the dataclass's own annotations), or a :class:`RecipeError`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        nested = len(inner) == 1 and dataclasses.is_dataclass(inner[0])
        if value is None or (nested and value is False):  # ``retrospective: false`` means none
            return None
        return _convert(value, inner[0], path, source)
    if dataclasses.is_dataclass(tp):
        return tp(**_build(tp, {} if value is True else value, path, source))  # ``true``: the defaults
    if tp is bool:
        if not isinstance(value, bool):
            raise RecipeError(f"{source}: {path} must be true or false, got {value!r}")
        return value
    if tp in (int, float):
        if isinstance(value, bool) or not isinstance(value, int if tp is int else int | float):
            raise RecipeError(f"{source}: {path} must be {'an integer' if tp is int else 'a number'}, got {value!r}")
        return tp(value)
    if tp is str:
        if not isinstance(value, str):
            raise RecipeError(f"{source}: {path} must be a string, got {value!r}")
        return value
    if origin is list:
        (item,) = args
        if item is str and isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise RecipeError(f"{source}: {path} must be a list, got {value!r}")
        if item is str and not all(isinstance(v, str) for v in value):
            raise RecipeError(f"{source}: {path} must be a list of paths, got {value!r}")
        return [_convert(v, item, f"{path}[{k}]", source) for k, v in enumerate(value)]
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise RecipeError(f"{source}: {path} must be a mapping of dotted veRL keys to values, got {value!r}")
        return {str(k): v for k, v in value.items()}
    return value


def parse_recipe(data: Any, source: str = "<recipe>") -> RecipeConfig:
    """Validate a recipe mapping (as read from YAML) into a :class:`RecipeConfig`."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe must be a mapping, got {type(data).__name__}")
    raw_phases = data.get("phases")
    if not isinstance(raw_phases, list) or not raw_phases:
        raise RecipeError(f"{source}: 'phases' must be a non-empty list of phases")
    kwargs = _build(RecipeConfig, data, "", source)
    if "base_config" not in kwargs and kwargs.get("kind") in RECIPE_KINDS:
        kwargs["base_config"] = RECIPE_KINDS[kwargs["kind"]].base_config
    recipe = RecipeConfig(**kwargs, source=source)
    _check_semantics(recipe)
    return recipe


def _check_curriculum(recipe: RecipeConfig) -> None:
    """The recipe's curriculum additions: retrospective, task balance and the ``data`` section."""
    src = recipe.source
    data = recipe.data
    if data is not None:
        data.tokenizer = recipe.data_tokenizer
        if not RECIPE_KINDS[recipe.kind].data_section:
            raise RecipeError(f"{src}: data: builds RL phase files; a kind: {recipe.kind} recipe lists train_files")
        if not data.inputs and data.synth is None:
            raise RecipeError(f"{src}: data: needs inputs (source files for prepare) or synth (generated examples)")
        if data.synth is not None:  # synth's own limits, at plan time rather than when train generates
            from qwenlong_verl.driver.data.synth.writer import SynthError, check_args

            try:
                check_args(data.synth.n, data.synth.min_tokens, data.synth.max_tokens)
            except SynthError as exc:
                key = re.sub(
                    r"--([a-z-]+)", lambda m: m.group(1).replace("-", "_"), str(exc)
                )  # --min-tokens: min_tokens
                raise RecipeError(f"{src}: data.synth: {key}") from None
        if data.val_size < 0:
            raise RecipeError(f"{src}: data.val_size must be >= 0, got {data.val_size}")
        if data.seed < 0:
            raise RecipeError(f"{src}: data.seed must be >= 0, got {data.seed}")
        windows = [p.max_prompt_length for p in recipe.phases]
        if any(b <= a for a, b in zip(windows, windows[1:], strict=False)):
            raise RecipeError(
                f"{src}: with a data: section the phases' max_prompt_length must strictly increase (each phase "
                f"trains on the length bin (previous window, its window]), got {windows}"
            )
    for i, p in enumerate(recipe.phases):
        where = f"{src}: phases[{i}] ({p.name})"
        if not p.train_files and data is None:
            hint = " or add a recipe-level data:" if RECIPE_KINDS[recipe.kind].data_section else ""
            raise RecipeError(f"{where}: no train_files; list the phase's parquet files{hint}")
        retro = p.retrospective
        if retro is not None:
            if i == 0:
                raise RecipeError(f"{where}: retrospective needs earlier phases to carry from; the first has none")
            if not 0 < retro.ratio <= 10:
                raise RecipeError(f"{where}: retrospective.ratio must be in (0, 10], got {retro.ratio}")
            if retro.weighting not in RETRO_WEIGHTINGS:
                raise RecipeError(
                    f"{where}: retrospective.weighting must be one of {', '.join(RETRO_WEIGHTINGS)}, "
                    f"got {retro.weighting!r}"
                )
            if retro.seed < 0:
                raise RecipeError(f"{where}: retrospective.seed must be >= 0, got {retro.seed}")
        needs_mode = p.task_balance or any(q.retrospective is not None for q in recipe.phases[i + 1 :])
        for scope, overrides in (("overrides", recipe.overrides), (f"phases[{i}].overrides", p.overrides)):
            mode = overrides.get("trainer.v1.trainer_mode")
            if needs_mode and mode is not None and mode != TRAINER_MODE:
                raise RecipeError(
                    f"{src}: {scope} sets trainer.v1.trainer_mode={mode}, but phase {p.name} needs the "
                    f"{TRAINER_MODE} mode (task balance, or a ledger for a later retrospective)"
                )


def _check_semantics(recipe: RecipeConfig) -> None:
    src = recipe.source
    if not _NAME_RE.match(recipe.name):
        raise RecipeError(f"{src}: name {recipe.name!r} must use letters, digits and _.- only")
    if not recipe.output_dir:
        recipe.output_dir = str(Path("outputs") / recipe.name)
    if recipe.kind not in RECIPE_KINDS:
        raise RecipeError(f"{src}: kind {recipe.kind!r} must be one of {', '.join(RECIPE_KINDS)}")
    form = RECIPE_KINDS[recipe.kind]
    if recipe.tracker not in TRACKERS:
        raise RecipeError(f"{src}: tracker {recipe.tracker!r} must be one of {', '.join(TRACKERS)}")
    if form.single_phase and len(recipe.phases) != 1:
        raise RecipeError(
            f"{src}: a kind: {recipe.kind} recipe has exactly one phase (the warm-up), got {len(recipe.phases)}; "
            "put the RL curriculum in its own recipe whose model_path is this recipe's output"
        )
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
        for key, field_name in form.derived_keys.items():
            for scope, overrides in (("overrides", recipe.overrides), (f"phases[{i}].overrides", p.overrides)):
                if key in overrides or f"+{key}" in overrides or f"++{key}" in overrides:
                    raise RecipeError(f"{src}: {scope} sets {key}; use {field_name} instead")
        prev = p
    _check_curriculum(recipe)


MAX_RECIPE_BYTES = 1 << 20
"""A recipe is a page of YAML; anything larger is the wrong file (checked before it is read)."""


def load_recipe(path: str | Path) -> RecipeConfig:
    """Read and validate a recipe YAML file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe file not found: {path}" + (" (it is a folder)" if path.is_dir() else ""))
    if path.stat().st_size > MAX_RECIPE_BYTES:
        raise RecipeError(f"{path}: {path.stat().st_size} bytes is not a recipe (at most {MAX_RECIPE_BYTES})")
    try:
        data = yaml.safe_load(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not UTF-8 text (byte {exc.start}); save the recipe as UTF-8 YAML") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    return parse_recipe(data, source=str(path))
