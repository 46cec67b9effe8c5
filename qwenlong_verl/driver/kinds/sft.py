"""The SFT phase kind (``kind: sft``), the warm-up before RL: veRL's ``sft_trainer`` config, validated on CPU, its launch command and hand-off.

An SFT recipe (``kind: sft``) has one phase. Its windows mean what they mean for RL phase 1: a training
sequence is prompt + response, so ``data.max_length = max_prompt_length + max_response_length``. The config is
composed as ``python -m verl.trainer.sft_trainer`` composes it (Hydra, our ``qwenlong_sft.yaml`` on veRL's
``sft_trainer_engine``), then checked as far as veRL allows without a GPU: its dataclass configs are instantiated
(the model's too when ``model_path`` is a local folder), and the shape rules veRL only asserts at run time —
data-parallel size, token budget per micro-batch, Ulysses needing remove-padding — are checked here.

The hand-off: with ``hf_model`` in ``checkpoint.save_contents`` (our default) the last step writes a Hugging Face
folder ``<output_dir>/<phase>/checkpoints/global_step_<N>/huggingface`` (weights, config, tokenizer) — RL phase
1's ``model_path``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qwenlong_verl.driver import layout
from qwenlong_verl.driver.compose import PlanError, instantiate_section
from qwenlong_verl.driver.kinds.base import PhaseKind
from qwenlong_verl.driver.recipe import RecipeConfig

SFT_MODULE = "verl.trainer.sft_trainer"
"""veRL's SFT entry point (``torchrun -m``)."""

HF_SUBDIR = "huggingface"
"""Sub-folder of a veRL checkpoint step that holds the Hugging Face model (``hf_model`` in save_contents)."""


class SFTPhase(PhaseKind):
    name = "sft"

    def derived(self, recipe: RecipeConfig, index: int, model_path: str) -> dict[str, Any]:
        phase = recipe.phases[index]
        derived: dict[str, Any] = {
            "model.path": model_path,
            "data.train_files": list(phase.train_files),
            "data.val_files": list(phase.val_files) or None,
            "data.max_length": phase.max_prompt_length + phase.max_response_length,
            "trainer.experiment_name": f"{recipe.name}-{phase.name}",
            "trainer.default_local_dir": str(layout.checkpoint_dir(recipe, index)),
        }
        if phase.total_training_steps is not None:
            # veRL's loop runs over total_epochs and stops at total_training_steps; one epoch has at least one
            # step, so this many epochs always reaches the last step (and its checkpoint).
            derived["trainer.total_training_steps"] = phase.total_training_steps
            derived["trainer.total_epochs"] = phase.total_training_steps
        else:
            derived["trainer.total_training_steps"] = None
            derived["trainer.total_epochs"] = phase.total_epochs
        return derived

    def validate(self, recipe: RecipeConfig, index: int, config) -> list[str]:
        phase = recipe.phases[index]
        validate_sft_config(config)
        rows, traces, data_notes = check_data(config)
        notes = check_model(config, traces) + data_notes
        last_step: int | str = phase.total_training_steps or "<N>"
        if rows is not None:
            per_epoch = steps_per_epoch(rows, config)
            if per_epoch == 0:
                raise PlanError(
                    f"{rows} training rows make no full batch of data.train_batch_size "
                    f"({config.data.train_batch_size}); add data or lower the batch"
                )
            if phase.total_epochs is not None:
                last_step = per_epoch * phase.total_epochs
            notes.append(
                f"{rows} rows, {per_epoch} steps per epoch: {last_step} steps (~{int(last_step) / per_epoch:.1f} epochs)"
            )
        return notes + handoff_notes(recipe, index, config, last_step)

    def program(self, recipe: RecipeConfig, config) -> list[str]:
        """``torchrun`` running veRL's SFT trainer; one node: ``--standalone``, else c10d rendezvous.

        For several nodes the same command runs on every node, with ``PET_RDZV_ENDPOINT=<head host>:<port>`` set
        in the environment (torchrun reads any of its options from ``PET_<OPTION>``).
        """
        nnodes = int(config.trainer.nnodes)
        rendezvous = ["--standalone"] if nnodes == 1 else ["--rdzv_backend=c10d", f"--rdzv_id={recipe.name}"]
        return [
            "torchrun",
            f"--nnodes={nnodes}",
            f"--nproc_per_node={int(config.trainer.n_gpus_per_node)}",
            *rendezvous,
            "-m",
            SFT_MODULE,
        ]

    def model_path(self, recipe: RecipeConfig, config) -> str:
        return recipe.model_path

    def output_model_path(self, recipe: RecipeConfig, index: int) -> Path:
        return finished_model_path(recipe, index)


def handoff_notes(recipe: RecipeConfig, index: int, config, last_step: int | str) -> list[str]:
    """Where RL phase 1 finds the SFT model, as ``plan`` prints it."""
    if "hf_model" not in list(config.checkpoint.save_contents):
        return [
            "hand-off: hf_model is not in checkpoint.save_contents; merge the last step with "
            "`python -m verl.model_merger merge --backend fsdp --local_dir <step folder> --target_dir <hf folder>`"
        ]
    notes = [f"hand-off: RL phase 1 model_path: {handoff_model_path(recipe, last_step, index)}"]
    if last_step == "<N>":
        notes.append(f"<N> is the step in {layout.checkpoint_dir(recipe, index) / layout.TRACKER_FILE} after the run")
    return notes


def handoff_model_path(recipe: RecipeConfig, last_step: int | str, index: int = 0) -> Path:
    """The Hugging Face folder the SFT run's last step writes: RL phase 1's ``model_path``."""
    return layout.checkpoint_dir(recipe, index) / f"global_step_{last_step}" / HF_SUBDIR


def finished_model_path(recipe: RecipeConfig, index: int = 0) -> Path:
    """After the run: the HF folder of the last saved step, read from veRL's tracker file.

    Raises :class:`FileNotFoundError` saying what is missing (no tracker: the run did not save; no
    ``huggingface`` folder: ``hf_model`` was not in ``checkpoint.save_contents``, so merge the shards with
    ``python -m verl.model_merger merge --backend fsdp``).
    """
    ckpt = layout.checkpoint_dir(recipe, index)
    tracker = ckpt / layout.TRACKER_FILE
    if not tracker.is_file():
        raise FileNotFoundError(f"{tracker} not found: the SFT run has not saved a checkpoint yet")
    step = tracker.read_text().strip()
    if not step.isdigit():
        raise FileNotFoundError(f"{tracker} holds {step!r}, not a step number")
    path = handoff_model_path(recipe, int(step), index)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{path} has no config.json: the checkpoint has no Hugging Face model. Add hf_model to "
            f"checkpoint.save_contents, or merge: python -m verl.model_merger merge --backend fsdp "
            f"--local_dir {path.parent} --target_dir {path}"
        )
    return path


def validate_sft_config(config) -> None:
    """Instantiate veRL's dataclass configs of the SFT run and check what its trainer asserts at run time."""
    from omegaconf import DictConfig

    for section in ("engine", "optim", "checkpoint", "profiler"):
        node = config.get(section)
        if isinstance(node, DictConfig) and "_target_" in node:
            instantiate_section(node, section)

    data, trainer, engine = config.data, config.trainer, config.engine
    interval = list(trainer.profile_interval)
    if len(interval) != 2 or interval[1] < interval[0] or (interval[0] < 0 <= interval[1]):
        raise PlanError(
            f"trainer.profile_interval must be [start, end] with end >= start (or [-1, -1]), got {interval}"
        )
    if data.pad_mode not in ("right", "no_padding"):
        raise PlanError(
            f"data.pad_mode must be right or no_padding (veRL's MultiTurnSFTDataset), got {data.pad_mode!r}"
        )
    if data.truncation not in ("error", "left", "right"):
        raise PlanError(f"data.truncation must be error, left or right, got {data.truncation!r}")

    world = int(trainer.nnodes) * int(trainer.n_gpus_per_node)
    sp = int(engine.get("ulysses_sequence_parallel_size", 1) or 1)
    if sp > 1 and not config.model.use_remove_padding:
        raise PlanError("engine.ulysses_sequence_parallel_size > 1 needs model.use_remove_padding=true")
    if world % sp:
        raise PlanError(
            f"engine.ulysses_sequence_parallel_size ({sp}) must divide the GPU count "
            f"trainer.nnodes x trainer.n_gpus_per_node ({world})"
        )
    dp = world // sp
    batch = int(data.train_batch_size)
    if batch <= 0 or batch % dp:
        raise PlanError(
            f"data.train_batch_size ({batch}) must be a positive multiple of the data-parallel size {dp} "
            f"({world} GPUs / Ulysses SP {sp}); veRL floors it per rank otherwise"
        )
    max_length = int(data.max_length)
    if data.use_dynamic_bsz:
        budget = int(data.max_token_len_per_gpu) * sp
        if budget < max_length:
            raise PlanError(
                f"data.max_token_len_per_gpu ({data.max_token_len_per_gpu}) x Ulysses SP ({sp}) = {budget} is below "
                f"data.max_length ({max_length}): a full-length sequence would not fit one micro-batch; "
                f"set data.max_token_len_per_gpu={-(-max_length // sp)}"
            )
    else:
        micro = int(data.micro_batch_size_per_gpu)
        if micro <= 0 or (batch // dp) % micro:
            raise PlanError(
                f"data.micro_batch_size_per_gpu ({micro}) must divide the per-rank batch {batch // dp} "
                f"(data.train_batch_size {batch} / data-parallel size {dp})"
            )


def check_model(config, traces: bool | None = None) -> list[str]:
    """Instantiate veRL's ``HFModelConfig`` when ``model.path`` is a local folder; returns notes for ``plan``.

    That loads the tokenizer (with ``model.custom_chat_template`` applied, as in training; it must have a chat
    template) and the model config, whose context length must cover ``data.max_length``. The chat template must
    keep the ``<think>`` reasoning of an assistant turn: an error when the data has traces (``traces=True``), a
    note when that is unknown. A hub name cannot be checked without network, which the note says.
    """
    path = Path(str(config.model.path)).expanduser()
    if not (path / "config.json").is_file():
        return [f"model {config.model.path}: not a local model folder, loaded by veRL at launch (not checked here)"]
    model = instantiate_section(config.model, "model")
    # what veRL's MultiTurnSFTDataset renders with (and what custom_chat_template was applied to)
    renderer = model.processor if model.processor is not None else model.tokenizer
    if not getattr(renderer, "chat_template", None):
        raise PlanError(f"model.path {path}: the tokenizer has no chat template; veRL's SFT dataset applies one")
    notes = []
    if traces is not False:
        from qwenlong_verl.driver.data.sft import SftDataError, check_template_keeps_trace

        try:
            check_template_keeps_trace(renderer, config.data.get("apply_chat_template_kwargs"))
        except SftDataError as exc:
            if traces:
                raise PlanError(f"model.path {path}: the training data has reasoning traces, but {exc}") from None
            notes.append(f"warning: {exc} (fine for answer-only data)")
    hf = model.hf_config
    limit = context_length(hf)
    max_length = int(config.data.max_length)
    if limit and max_length > limit:
        native = getattr(hf, "max_position_embeddings", limit)
        yarn = {
            "rope_type": "yarn",
            "factor": float(-(-max_length // native)),
            "original_max_position_embeddings": native,
        }
        raise PlanError(
            f"data.max_length ({max_length}) exceeds the model's context ({limit} tokens); shorten the phase or "
            f'add YaRN rope scaling to {path / "config.json"}: "rope_scaling": {json.dumps(yarn)} '
            "(veRL 0.9.1's model.override_config cannot set a nested rope_scaling; see docs/recipes.md)"
        )
    notes.insert(0, f"model {path}: {type(hf).__name__}, tokenizer with chat template, context {limit or '?'} tokens")
    return notes


def context_length(hf_config) -> int | None:
    """Tokens the model can attend over: ``max_position_embeddings``, times the factor of a YaRN/linear/dynamic
    rope scaling when one is set (``rope_scaling``, or ``rope_parameters`` in transformers 5)."""
    native = getattr(hf_config, "max_position_embeddings", None)
    rope = getattr(hf_config, "rope_scaling", None) or getattr(hf_config, "rope_parameters", None) or {}
    kind = rope.get("rope_type", rope.get("type")) if isinstance(rope, dict) else None
    if not native or kind in (None, "default") or not rope.get("factor"):
        return native
    return int(float(rope["factor"]) * int(rope.get("original_max_position_embeddings") or native))


def check_data(config) -> tuple[int | None, bool | None, list[str]]:
    """Rows for the train loader (None when a file is missing), whether they have traces (None: unknown), notes.

    Checks each present file's schema (the ``data.messages_key`` column).
    """
    import pyarrow.parquet as pq

    notes, rows, traces = [], 0, False
    key = str(config.data.messages_key)
    for role, files in (("train", config.data.train_files), ("val", config.data.get("val_files") or [])):
        for name in [files] if isinstance(files, str) else list(files):
            path = Path(str(name)).expanduser()
            if not path.is_file():
                notes.append(f"{role} file {name}: not there yet (write it with `qwenlong-verl sft-data`)")
                if role == "train":
                    rows = traces = None
                continue
            try:
                meta = pq.ParquetFile(path)
            except Exception as exc:
                raise PlanError(f"data.{role}_files: {name} is not a readable parquet file ({exc})") from None
            if key not in meta.schema_arrow.names:
                raise PlanError(
                    f"data.{role}_files: {name} has no {key!r} column (data.messages_key); "
                    f"write SFT data with `qwenlong-verl sft-data` (columns: {', '.join(meta.schema_arrow.names)})"
                )
            if role == "train" and rows is not None:
                rows += meta.metadata.num_rows
                traces = traces if traces is None else (traces or _has_traces(meta))
    limit = int(config.data.get("train_max_samples", -1) or -1)
    if rows is not None and 0 < limit < rows:
        rows = limit
    return rows, traces, notes


def _has_traces(meta) -> bool | None:
    """Whether an ``sft-data`` file has rows with traces (``extra_info.has_trace``); None for other files."""
    if "extra_info" not in meta.schema_arrow.names:
        return None
    column = meta.read(columns=["extra_info"]).column("extra_info").to_pylist()
    flags = [row.get("has_trace") for row in column if isinstance(row, dict)]
    return any(flags) if flags and all(isinstance(f, bool) for f in flags) else None


def steps_per_epoch(rows: int, config) -> int:
    """Optimizer steps in one epoch, as veRL's loader makes them (DistributedSampler and batches drop the rest)."""
    world = int(config.trainer.nnodes) * int(config.trainer.n_gpus_per_node)
    dp = world // int(config.engine.get("ulysses_sequence_parallel_size", 1) or 1)
    return (rows // dp) // (int(config.data.train_batch_size) // dp)
