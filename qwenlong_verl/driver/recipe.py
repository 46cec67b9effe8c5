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

Phases of different kinds in one recipe (``kind:`` of a phase; default the recipe's)::

    phases:
      - {name: stage3, max_prompt_length: 122880, max_response_length: 51200, total_training_steps: 60}
      - {name: memory, kind: memory, max_input_tokens: 131072, chunk_tokens: 32768, memory_tokens: 15360,
         total_training_steps: 60}
      - {name: merge, kind: merge, models: [stage3, memory], method: sce, parameters: {select_topk: 1.0}}
      - {name: stage4, max_prompt_length: 122880, max_response_length: 51200, total_training_steps: 60}

The format of each kind is a row of :data:`RECIPE_KINDS` (the dataclass its phases are read into, the keys it
derives, where it may stand); its behaviour is a class in :mod:`qwenlong_verl.driver.kinds`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import types
import typing
from collections.abc import Callable
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
    """What the recipe format allows for one kind of phase (the ``kind:`` of a recipe or of a phase; its behaviour
    is the phase kind's, :mod:`qwenlong_verl.driver.kinds`)."""

    phase_config: type
    """The dataclass a phase of this kind is read into: its fields are the phase's keys."""

    base_config: str
    """Hydra config used when the recipe names none (empty: the kind composes no veRL config)."""

    derived_keys: dict[str, str] = field(default_factory=dict)
    """veRL keys the recipe's own fields set (key -> the field), so ``overrides`` must not."""

    derived_fields: dict[str, str] = field(default_factory=dict)
    """Phase keys the kind computes from its other keys (key -> how), so the phase must not set them."""

    checks: tuple[Callable[[RecipeConfig, int], None], ...] = ()
    """The kind's own rules for phase ``index`` (one-line :class:`RecipeError`)."""

    single_phase: bool = False
    """The recipe has exactly one phase."""

    data_section: bool = True
    """A recipe-level ``data:`` section may build the phases' files."""

    can_start: bool = True
    """May be the first phase (a merge step needs models of earlier phases)."""

    mixes: bool = True
    """May share a recipe with phases of other kinds."""


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

    kind: str = ""
    """``rl``, ``memory``, ``sft`` or ``merge`` (:data:`RECIPE_KINDS`); default: the recipe's ``kind``."""

    min_input_tokens: int | None = None
    """With a ``data:`` section the phase takes the prepared rows longer than this and at most its window; default:
    the largest window of an earlier phase below its own (so a curriculum's phases get disjoint length bins, and a
    phase with the window of an earlier one shares that phase's rows)."""

    @property
    def data_window(self) -> int:
        """The longest input the phase's rows may have: the input window, ``max_prompt_length``."""
        return self.max_prompt_length


@dataclass(kw_only=True)
class MemoryPhaseConfig(PhaseConfig):
    """A Memory-RL phase (``kind: memory``, QwenLong-L1.5 §2.3): one veRL PPO run like an RL phase whose rollouts
    are the memory agent — it reads each document a chunk per step, rewriting a bounded memory (and plan), then
    answers from the last memory. Its windows are those of one step, derived from the budgets below."""

    max_prompt_length: int = 0
    """Derived: one step's prompt, ``chunk_tokens + memory_tokens + plan_tokens + question_tokens``."""

    max_response_length: int = 0
    """Derived: one generation, ``max(memory_tokens + plan_tokens, update_tokens, answer_tokens)``."""

    max_input_tokens: int
    """The longest input (document and question) the phase trains on: its rows are chosen by this window as a
    full-context phase's by ``max_prompt_length``; the agent reads it in ``ceil(n / chunk_tokens)`` steps."""

    chunk_tokens: int
    """Document tokens read per step (``qwenlong.memory.chunk_tokens``)."""

    memory_tokens: int
    """Budget of the memory carried between steps (``qwenlong.memory.memory_tokens``); below ``chunk_tokens``."""

    max_chunks: int = 0
    """At most this many chunks per document (``qwenlong.memory.max_chunks``); 0: what ``max_input_tokens`` needs."""

    plan_tokens: int = 0
    """Budget of the plan written beside the memory (``qwenlong.memory.plan_tokens``); 0: no plan."""

    update_tokens: int = 0
    """New tokens one memory update may generate (``qwenlong.memory.update_tokens``); 0: the step's output window."""

    answer_tokens: int = 0
    """New tokens the final answer may generate (``qwenlong.memory.answer_tokens``); 0: the step's output window."""

    question_tokens: int = 2048
    """Room in a step's prompt for the question, the chat template and the agent's instructions."""

    def __post_init__(self) -> None:
        if self.chunk_tokens > 0 and self.max_chunks == 0:
            self.max_chunks = max(1, -(-self.max_input_tokens // self.chunk_tokens))
        self.max_prompt_length = self.chunk_tokens + self.memory_tokens + self.plan_tokens + self.question_tokens
        self.max_response_length = max(self.memory_tokens + self.plan_tokens, self.update_tokens, self.answer_tokens)

    @property
    def data_window(self) -> int:
        return self.max_input_tokens


@dataclass
class MergeStepConfig:
    """A merge step (``kind: merge``): models of earlier phases merged into one Hugging Face folder, the next
    phase's model (QwenLong-L1.5 merges its memory expert with the stage-3 model by SCE)."""

    name: str
    """Short identifier, used in paths (letters, digits, ``_.-``)."""

    models: list[str]
    """The phases whose output models are merged (names of earlier phases, at least two)."""

    kind: str = "merge"
    """Always ``merge``."""

    method: str = "sce"
    """Merge method (:data:`qwenlong_verl.driver.merge.MERGE_METHODS`): ``sce`` (FuseChat's Select, Calculate, Erase)."""

    parameters: dict[str, Any] = field(default_factory=dict)
    """The method's parameters (``sce``: ``select_topk``); omitted ones take the method's defaults."""

    base: str = ""
    """The model the task vectors are taken against: an earlier phase's name; empty: the recipe's ``model_path``."""

    dtype: str = "bfloat16"
    """Data type of the merged weights (``bfloat16``, ``float16`` or ``float32``); the merge computes in float32."""


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
    """Answer types to generate (``numeric``, ``choice``, ``qa``); empty: all in turn."""

    labels: list[str] = field(default_factory=list)
    """Task labels to generate in turn (``multi_hop``, ``numerical``, ``temporal``, ``niah``, ..., or ``all``; synth's
    ``--labels``); empty: rows labelled by their answer type."""

    corpus: bool = False
    """Corpus-scale examples (synth's ``--corpus``): hundreds of documents per context, aggregation questions; for
    memory phases."""

    docs: int | None = None
    """Documents per corpus example (synth's ``--docs``; with ``corpus``)."""

    seed: int = 0
    """Same settings and seed, same file."""

    def synth_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`~qwenlong_verl.driver.data.synth.synth` (and of its option check)."""
        from qwenlong_verl.driver.data.synth import CorpusOptions

        return {
            "tasks": self.tasks or None,
            "labels": self.labels or None,
            "corpus": CorpusOptions(corpus=self.corpus, docs=self.docs),
        }


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

    phases: list[PhaseConfig | MergeStepConfig]
    """Phases in training order (a merge step is one too), with windows that do not shrink within a kind."""

    description: str = ""
    """One line shown by ``plan``."""

    base_config: str = "qwenlong_l1"
    """Hydra config in ``qwenlong_verl/hydra_configs`` that the overrides apply to (default per :attr:`kind`)."""

    kind: str = "rl"
    """The kind of every phase that names none: ``rl``: a veRL PPO run (``main_ppo``); ``memory``: a PPO run of
    the memory agent; ``merge``: a merge of earlier phases' models; ``sft``: one warm-up phase run by veRL's
    ``sft_trainer`` on ``sft-data`` output, whose last checkpoint is RL phase 1's ``model_path`` (a recipe of its
    own)."""

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

    def phase(self, name_or_index: str | int) -> PhaseConfig | MergeStepConfig:
        if isinstance(name_or_index, int):
            return self.phases[name_or_index]
        for p in self.phases:
            if p.name == name_or_index:
                return p
        raise RecipeError(f"{self.source}: no phase named {name_or_index!r} (have {[p.name for p in self.phases]})")

    def index_of(self, name: str) -> int | None:
        """The position of the phase named ``name`` (None: no such phase)."""
        return next((i for i, p in enumerate(self.phases) if p.name == name), None)

    def data_phases(self) -> list[int]:
        """Indices of the phases that train on rows (every kind but merge steps)."""
        return [i for i, p in enumerate(self.phases) if isinstance(p, PhaseConfig)]

    def input_range(self, index: int) -> tuple[int, int]:
        """``(lo, hi)``: phase ``index`` takes the prepared rows of ``lo < input tokens <= hi``."""
        phase = self.phases[index]
        hi = phase.data_window
        if phase.min_input_tokens is not None:
            return phase.min_input_tokens, hi
        below = [self.phases[j].data_window for j in self.data_phases() if j < index]
        return max((w for w in below if w < hi), default=0), hi

    def data_cuts(self) -> list[int]:
        """The length bins ``prepare`` cuts the source rows into: every phase's range bounds, ascending (bin ``n``
        holds the rows of ``cuts[n-2] < tokens <= cuts[n-1]``, written as ``phase<n>.parquet``)."""
        bounds = {b for i in self.data_phases() for b in self.input_range(i) if b > 0}
        return sorted(bounds)

    def data_bins(self, index: int) -> list[int]:
        """The 1-based bins (:meth:`data_cuts`) that make up phase ``index``'s own rows."""
        lo, hi = self.input_range(index)
        return [n for n, cut in enumerate(self.data_cuts(), start=1) if lo < cut <= hi]

    def carry_sources(self, index: int) -> list[int]:
        """Earlier phases a retrospective phase ``index`` may carry rows from: those whose inputs fit its window."""
        window = self.phases[index].data_window
        return [j for j in self.data_phases() if j < index and self.phases[j].data_window <= window]


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
    kwargs = _build(RecipeConfig, {**data, "phases": []}, "", source)
    kind = kwargs.get("kind", "rl")
    if kind not in RECIPE_KINDS:
        raise RecipeError(f"{source}: kind {kind!r} must be one of {', '.join(RECIPE_KINDS)}")
    kwargs["phases"] = [_parse_phase(raw, i, kind, source) for i, raw in enumerate(raw_phases)]
    if "base_config" not in kwargs:
        kwargs["base_config"] = next(
            (RECIPE_KINDS[p.kind].base_config for p in kwargs["phases"] if RECIPE_KINDS[p.kind].base_config), ""
        )
    recipe = RecipeConfig(**kwargs, source=source)
    _check_semantics(recipe)
    return recipe


def _parse_phase(raw: Any, index: int, default_kind: str, source: str) -> PhaseConfig | MergeStepConfig:
    """One entry of ``phases:``, read into its kind's dataclass (the recipe's kind when it names none)."""
    where = f"phases[{index}]"
    if not isinstance(raw, dict):
        raise RecipeError(f"{source}: {where} must be a mapping, got {type(raw).__name__}")
    kind = raw.get("kind", default_kind)
    if kind not in RECIPE_KINDS:
        raise RecipeError(f"{source}: {where}.kind {kind!r} must be one of {', '.join(RECIPE_KINDS)}")
    form = RECIPE_KINDS[kind]
    for key, how in form.derived_fields.items():
        if key in raw:
            raise RecipeError(f"{source}: {where}.{key}: a kind: {kind} phase derives it ({how}); remove it")
    return form.phase_config(**_build(form.phase_config, {**raw, "kind": kind}, where, source))


def _check_curriculum(recipe: RecipeConfig) -> None:
    """The recipe's curriculum additions: retrospective, task balance and the ``data`` section."""
    src = recipe.source
    data = recipe.data
    kinds = {recipe.phases[i].kind for i in recipe.data_phases()}
    if data is not None:
        data.tokenizer = recipe.data_tokenizer
        no_data = [k for k in sorted(kinds) if not RECIPE_KINDS[k].data_section]
        if no_data:
            raise RecipeError(f"{src}: data: builds RL phase files; a kind: {no_data[0]} recipe lists train_files")
        if not data.inputs and data.synth is None:
            raise RecipeError(f"{src}: data: needs inputs (source files for prepare) or synth (generated examples)")
        if data.synth is not None:  # synth's own limits, at plan time rather than when train generates
            from qwenlong_verl.driver.data.synth.writer import SynthError, check_options

            try:
                check_options(data.synth.n, data.synth.min_tokens, data.synth.max_tokens, **data.synth.synth_kwargs())
            except SynthError as exc:
                key = re.sub(
                    r"--([a-z-]+)", lambda m: m.group(1).replace("-", "_"), str(exc)
                )  # --min-tokens: min_tokens
                raise RecipeError(f"{src}: data.synth: {key}") from None
        if data.val_size < 0:
            raise RecipeError(f"{src}: data.val_size must be >= 0, got {data.val_size}")
        if data.seed < 0:
            raise RecipeError(f"{src}: data.seed must be >= 0, got {data.seed}")
    retro_sources = {j for i in recipe.data_phases() if recipe.phases[i].retrospective for j in recipe.carry_sources(i)}
    for i in recipe.data_phases():
        p = recipe.phases[i]
        where = f"{src}: phases[{i}] ({p.name})"
        if not p.train_files and data is None:
            hint = " or add a recipe-level data:" if RECIPE_KINDS[p.kind].data_section else ""
            raise RecipeError(f"{where}: no train_files; list the phase's parquet files{hint}")
        if p.min_input_tokens is not None and not 0 <= p.min_input_tokens < p.data_window:
            raise RecipeError(
                f"{where}: min_input_tokens must be in [0, {p.data_window}) (the phase's window), got "
                f"{p.min_input_tokens}"
            )
        retro = p.retrospective
        if retro is not None:
            if not recipe.carry_sources(i):
                first = "the first has none" if i == recipe.data_phases()[0] else "none before it has inputs that fit"
                raise RecipeError(f"{where}: retrospective needs earlier phases to carry from; {first}")
            if not 0 < retro.ratio <= 10:
                raise RecipeError(f"{where}: retrospective.ratio must be in (0, 10], got {retro.ratio}")
            if retro.weighting not in RETRO_WEIGHTINGS:
                raise RecipeError(
                    f"{where}: retrospective.weighting must be one of {', '.join(RETRO_WEIGHTINGS)}, "
                    f"got {retro.weighting!r}"
                )
            if retro.seed < 0:
                raise RecipeError(f"{where}: retrospective.seed must be >= 0, got {retro.seed}")
        needs_mode = p.task_balance or i in retro_sources
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
    if recipe.tracker not in TRACKERS:
        raise RecipeError(f"{src}: tracker {recipe.tracker!r} must be one of {', '.join(TRACKERS)}")
    first = recipe.phases[0]
    if not RECIPE_KINDS[first.kind].can_start:
        raise RecipeError(
            f"{src}: phases[0] ({first.name}): a kind: {first.kind} step combines models of earlier phases, so it "
            "cannot come first; put the phases it merges before it"
        )
    kinds = list(dict.fromkeys(p.kind for p in recipe.phases))
    for kind in kinds:
        form = RECIPE_KINDS[kind]
        if not form.mixes and len(kinds) > 1:
            others = ", ".join(k for k in kinds if k != kind)
            raise RecipeError(
                f"{src}: a kind: {kind} phase is a recipe of its own, but this one mixes it with {others}; put the "
                f"other phases in a recipe whose model_path is its output"
            )
        if form.single_phase and len(recipe.phases) != 1:
            raise RecipeError(
                f"{src}: a kind: {kind} recipe has exactly one phase (the warm-up), got {len(recipe.phases)}; "
                "put the RL curriculum in its own recipe whose model_path is this recipe's output"
            )
    seen = set()
    last_of_kind: dict[str, PhaseConfig] = {}
    for i, p in enumerate(recipe.phases):
        where = f"{src}: phases[{i}] ({p.name})"
        if not _NAME_RE.match(p.name):
            raise RecipeError(f"{where}: name must use letters, digits and _.- only")
        if p.name in seen:
            raise RecipeError(f"{where}: duplicate phase name")
        seen.add(p.name)
        for check in RECIPE_KINDS[p.kind].checks:
            check(recipe, i)
        if isinstance(p, PhaseConfig):
            prev = last_of_kind.get(p.kind)
            if prev is not None and p.data_window < prev.data_window:
                key = "max_input_tokens" if isinstance(p, MemoryPhaseConfig) else "max_prompt_length"
                raise RecipeError(
                    f"{where}: {key} {p.data_window} is below the previous {p.kind} phase's {prev.data_window}; "
                    "a curriculum's input windows must not shrink"
                )
            last_of_kind[p.kind] = p
    _check_curriculum(recipe)


def _check_phase(recipe: RecipeConfig, index: int) -> None:
    """A phase that trains (one veRL run): positive windows, one length, no derived key among the overrides."""
    src, p = recipe.source, recipe.phases[index]
    where = f"{src}: phases[{index}] ({p.name})"
    for key in ("max_prompt_length", "max_response_length"):
        if getattr(p, key) <= 0:
            raise RecipeError(f"{where}: {key} must be positive, got {getattr(p, key)}")
    if (p.total_training_steps is None) == (p.total_epochs is None):
        raise RecipeError(f"{where}: set exactly one of total_training_steps or total_epochs")
    for key in ("total_training_steps", "total_epochs"):
        value = getattr(p, key)
        if value is not None and value <= 0:
            raise RecipeError(f"{where}: {key} must be positive, got {value}")
    for key, field_name in RECIPE_KINDS[p.kind].derived_keys.items():
        for scope, overrides in (("overrides", recipe.overrides), (f"phases[{index}].overrides", p.overrides)):
            if key in overrides or f"+{key}" in overrides or f"++{key}" in overrides:
                raise RecipeError(f"{src}: {scope} sets {key}; use {field_name} instead")


def _check_memory(recipe: RecipeConfig, index: int) -> None:
    """The memory agent's budgets: positive sizes, a document that needs chunks, enough chunks for the window."""
    src, p = recipe.source, recipe.phases[index]
    where = f"{src}: phases[{index}] ({p.name})"
    for key, least in (
        ("max_input_tokens", 1),
        ("chunk_tokens", 1),
        ("memory_tokens", 1),
        ("max_chunks", 1),
        ("plan_tokens", 0),
        ("update_tokens", 0),
        ("answer_tokens", 0),
        ("question_tokens", 0),
    ):
        if getattr(p, key) < least:
            raise RecipeError(f"{where}: {key} must be >= {least}, got {getattr(p, key)}")
    if p.chunk_tokens >= p.max_input_tokens:
        raise RecipeError(
            f"{where}: chunk_tokens {p.chunk_tokens} >= max_input_tokens {p.max_input_tokens}: every input fits one "
            "chunk, so the agent has nothing to remember; use a full-context (kind: rl) phase or smaller chunks"
        )
    if p.memory_tokens >= p.chunk_tokens:
        raise RecipeError(
            f"{where}: memory_tokens {p.memory_tokens} must be below chunk_tokens {p.chunk_tokens}: the memory "
            "condenses what a chunk adds (QwenLong-L1.5: memory 15K of chunks of 32K)"
        )
    needed = -(-p.max_input_tokens // p.chunk_tokens)
    if p.max_chunks < needed:
        raise RecipeError(
            f"{where}: max_chunks {p.max_chunks} x chunk_tokens {p.chunk_tokens} cannot read an input of "
            f"max_input_tokens {p.max_input_tokens}; set max_chunks to {needed} or more (or leave it out)"
        )
    _check_phase(recipe, index)


def _check_merge(recipe: RecipeConfig, index: int) -> None:
    """A merge step: its models and base are earlier phases, its method and parameters known."""
    from qwenlong_verl.driver.merge import DTYPES, MERGE_METHODS

    src, step = recipe.source, recipe.phases[index]
    where = f"{src}: phases[{index}] ({step.name})"
    names = [p.name for p in recipe.phases]
    refs = [("models", m) for m in step.models] + ([("base", step.base)] if step.base else [])
    for key, name in refs:
        at = recipe.index_of(name)
        if at is None:
            raise RecipeError(f"{where}: {key} names {name!r}, no phase of this recipe (phases: {', '.join(names)})")
        if at >= index:
            raise RecipeError(
                f"{where}: {key} names {name!r}, which comes {'after' if at > index else 'as'} this step; a merge "
                "takes the models of earlier phases"
            )
    if len(step.models) < 2 or len(set(step.models)) != len(step.models):
        raise RecipeError(f"{where}: models must name at least two different earlier phases, got {step.models}")
    method = MERGE_METHODS.get(step.method)
    if method is None:
        raise RecipeError(f"{where}: method {step.method!r} must be one of {', '.join(MERGE_METHODS)}")
    params = _build(method.parameters, step.parameters, f"phases[{index}].parameters", src)
    try:
        step.parameters = dataclasses.asdict(method.parameters(**params))
    except ValueError as exc:
        raise RecipeError(f"{where}: parameters.{exc}") from None
    if step.dtype not in DTYPES:
        raise RecipeError(f"{where}: dtype {step.dtype!r} must be one of {', '.join(DTYPES)}")


_RL_DERIVED = {
    "data.max_prompt_length": "the phase's max_prompt_length",
    "data.max_response_length": "the phase's max_response_length",
    "data.train_files": "the phase's train_files",
    "data.val_files": "the phase's val_files",
    "trainer.logger": "the recipe's tracker",
}

AGENT_LOOP_KEY = "actor_rollout_ref.rollout.agent.default_agent_loop"
"""veRL's key naming the agent loop that makes a prompt's rollouts (a memory phase sets the memory agent)."""

OVERLONG_FILTER_KEY = "data.filter_overlong_prompts"
"""veRL drops rows longer than ``data.max_prompt_length`` when this is on; a memory phase's documents are longer
than one step's prompt by design, so it turns it off (its rows are chosen by ``max_input_tokens`` instead)."""

MEMORY_SECTION = "qwenlong.memory"
"""The agent's budgets (``qwenlong_verl.worker.agent.config.MemoryConfig``)."""

MEMORY_FIELDS = ("chunk_tokens", "memory_tokens", "plan_tokens", "max_chunks", "update_tokens", "answer_tokens")
"""Keys of a memory phase written to :data:`MEMORY_SECTION` under the same names."""

RECIPE_KINDS: dict[str, KindFormat] = {
    "rl": KindFormat(
        phase_config=PhaseConfig, base_config="qwenlong_l1", derived_keys=_RL_DERIVED, checks=(_check_phase,)
    ),
    "memory": KindFormat(
        phase_config=MemoryPhaseConfig,
        base_config="qwenlong_l1",
        derived_keys={
            **_RL_DERIVED,
            AGENT_LOOP_KEY: "kind: memory",
            OVERLONG_FILTER_KEY: "the phase's max_input_tokens",
            **{f"{MEMORY_SECTION}.{name}": f"the phase's {name}" for name in MEMORY_FIELDS},
        },
        derived_fields={
            "max_prompt_length": "chunk_tokens + memory_tokens + plan_tokens + question_tokens",
            "max_response_length": "max(memory_tokens + plan_tokens, update_tokens, answer_tokens)",
        },
        checks=(_check_memory,),
    ),
    "merge": KindFormat(
        phase_config=MergeStepConfig, base_config="", checks=(_check_merge,), data_section=False, can_start=False
    ),
    "sft": KindFormat(
        phase_config=PhaseConfig,
        base_config="qwenlong_sft",
        derived_keys={
            "model.path": "the recipe's model_path",
            "data.train_files": "the recipe's phases[0].train_files",
            "data.val_files": "the recipe's phases[0].val_files",
            "data.max_length": "the recipe's phases[0].max_prompt_length + max_response_length",
            "trainer.logger": "the recipe's tracker",
        },
        checks=(_check_phase,),
        single_phase=True,
        data_section=False,
        mixes=False,
    ),
}
"""The kinds of phase a recipe may have and their format rules (their behaviour: :data:`qwenlong_verl.driver.kinds.PHASE_KINDS`)."""


MAX_RECIPE_BYTES = 1 << 20
"""A recipe is a page of YAML; anything larger is the wrong file (checked before it is read)."""


@functools.cache
def _unique_keys_loader():
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping: YAML would keep the last one silently,
    so a recipe with two ``phases:`` would train on whichever came second. Built once, on first use, so that
    importing this module does not import yaml."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key_node.value!r} given twice", key_node.start_mark
                    )
                seen.add(key_node.value)
            return super().construct_mapping(node, deep)

    return UniqueKeyLoader


def load_recipe(path: str | Path) -> RecipeConfig:
    """Read and validate a recipe YAML file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe file not found: {path}" + (" (it is a folder)" if path.is_dir() else ""))
    if path.stat().st_size > MAX_RECIPE_BYTES:
        raise RecipeError(f"{path}: {path.stat().st_size} bytes is not a recipe (at most {MAX_RECIPE_BYTES})")
    try:
        data = yaml.load(path.read_bytes().decode("utf-8-sig"), Loader=_unique_keys_loader())  # a SafeLoader
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not UTF-8 text (byte {exc.start}); save the recipe as UTF-8 YAML") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    return parse_recipe(data, source=str(path))
