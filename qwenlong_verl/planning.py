"""Turn a recipe phase into the exact veRL config and launch command, validated by veRL itself.

The config is composed the way ``python -m verl.trainer.main_ppo`` composes it: Hydra loads our
``hydra_configs/<base_config>.yaml``, which composes on the installed veRL's ``ppo_trainer``, then the
recipe's overrides apply. veRL's own ``validate_config`` then runs on the result. Both steps need no
GPU and no weights, so a broken recipe fails on a laptop.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import re
import shlex
import warnings
from dataclasses import dataclass, field
from typing import Any

from qwenlong_verl.recipe import PhaseConfig, RecipeConfig

CONFIG_MODULE = "qwenlong_verl.hydra_configs"
_BARE = re.compile(r"^[A-Za-z0-9_./:@+-]+$")


class PlanError(ValueError):
    """A phase whose veRL config cannot be composed or does not validate."""


@dataclass
class PhasePlan:
    """Everything needed to launch one phase."""

    index: int
    phase: PhaseConfig
    overrides: list[str]
    command: list[str]
    config: Any = None
    notes: list[str] = field(default_factory=list)
    """Facts ``plan`` prints under the command (what was checked, where the output goes)."""

    @property
    def command_line(self) -> str:
        return " ".join(shlex.quote(part) for part in self.command)


def hydra_value(value: Any) -> str:
    """Render a YAML value in Hydra's override grammar (``true``, ``null``, ``[a,b]``, quoted strings)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if text and _BARE.match(text) and text.lower() not in {"true", "false", "null"} and not _looks_numeric(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def phase_overrides(recipe: RecipeConfig, index: int, model_path: str | None = None) -> list[str]:
    """The Hydra overrides of phase ``index``: recipe-derived keys, shared overrides, phase overrides."""
    from qwenlong_verl.curriculum import layout

    phase = recipe.phases[index]
    derived: dict[str, Any] = {
        "actor_rollout_ref.model.path": model_path or layout.start_model_path(recipe),
        "data.train_files": layout.train_files(recipe, index),
        "data.val_files": layout.val_files(recipe, index),
        "data.max_prompt_length": phase.max_prompt_length,
        "data.max_response_length": phase.max_response_length,
        "trainer.experiment_name": f"{recipe.name}-{phase.name}",
        "trainer.default_local_dir": str(layout.checkpoint_dir(recipe, index)),
    }
    if phase.total_training_steps is not None:
        derived["trainer.total_training_steps"] = phase.total_training_steps
    else:
        derived["trainer.total_epochs"] = phase.total_epochs
    derived.update(layout.curriculum_overrides(recipe, index))
    merged = {**derived, **recipe.overrides, **phase.overrides}
    return [f"{key}={hydra_value(value)}" for key, value in merged.items()]


def launch_command(recipe: RecipeConfig, overrides: list[str]) -> list[str]:
    """The stock veRL command line that runs these overrides."""
    return [
        "python",
        "-m",
        "verl.trainer.main_ppo",
        f"--config-path=pkg://{CONFIG_MODULE}",
        f"--config-name={recipe.base_config}",
        *overrides,
    ]


def compose(base_config: str, overrides: list[str]):
    """Compose veRL's full config exactly as ``main_ppo`` would; errors name the offending key."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_module(CONFIG_MODULE, version_base=None):
            return hydra_compose(base_config, overrides=overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        raise PlanError(_explain_compose_error(base_config, overrides, exc)) from None


def _explain_compose_error(base_config: str, overrides: list[str], exc: Exception) -> str:
    text = str(exc).strip()
    match = re.search(r"Could not override '([^']+)'", text)
    if not match:
        match = re.search(r"Cannot find primary config '([^']+)'", text)
        if match:
            return f"unknown base_config {match.group(1)!r}: not in {CONFIG_MODULE}"
        return text.splitlines()[0] if text else type(exc).__name__
    key = match.group(1)
    hint = _suggest_key(base_config, key)
    return f"unknown veRL config key {key!r}" + (f" (did you mean {hint!r}?)" if hint else "")


def _suggest_key(base_config: str, key: str) -> str | None:
    """Closest existing key at the same level of the composed base config."""
    from omegaconf import DictConfig, OmegaConf

    try:
        base = compose(base_config, [])
    except PlanError:
        return None
    parent, _, leaf = key.lstrip("+").rpartition(".")
    node = OmegaConf.select(base, parent) if parent else base
    if not isinstance(node, DictConfig):
        return None
    close = difflib.get_close_matches(leaf, [str(k) for k in node.keys()], n=1)
    return f"{parent}.{close[0]}" if close and parent else (close[0] if close else None)


def validate(config) -> None:
    """Run veRL's own ``validate_config`` (and its dataclass checks) on a composed config."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    sink = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink):
            warnings.simplefilter("ignore")
            validate_config(
                config=config,
                use_reference_policy=need_reference_policy(config),
                use_critic=need_critic(config),
            )
    except Exception as exc:  # veRL reports invalid combinations as assertions and instantiate errors
        raise PlanError(_explain_validation_error(exc)) from None


def validate_qwenlong_sections(config) -> None:
    """Instantiate each ``qwenlong.<section>`` dataclass (``_target_``) so its own checks run at plan time."""
    from omegaconf import DictConfig
    from verl.utils.config import omega_conf_to_dataclass

    sections = config.get("qwenlong")
    if not isinstance(sections, DictConfig):
        return
    for name, node in sections.items():
        if isinstance(node, DictConfig) and "_target_" in node:
            try:
                omega_conf_to_dataclass(node)
            except Exception as exc:
                raise PlanError(f"qwenlong.{name}: {_explain_validation_error(exc).split(': ', 1)[1]}") from None


def check_batch_shapes(config) -> None:
    """Checks veRL 0.9.1 leaves to run time: the mini-batch must tile the prompt batch exactly."""
    batch = config.data.train_batch_size
    for role in ("actor", "critic"):
        node = config.actor_rollout_ref.actor if role == "actor" else config.critic
        if role == "critic" and not node.get("enable"):
            continue
        mini = node.ppo_mini_batch_size
        key = "actor_rollout_ref.actor.ppo_mini_batch_size" if role == "actor" else "critic.ppo_mini_batch_size"
        if mini <= 0 or batch % mini:
            raise PlanError(
                f"{key} ({mini}) must divide data.train_batch_size ({batch}); e.g. {key}={_divisor_near(batch, mini)}"
            )


def check_sequence_budget(config) -> None:
    """With dynamic batch sizes veRL asserts at run time that one whole sequence fits a micro-batch's token
    budget (per-GPU budget x Ulysses SP); for a long-context phase that is the first thing to break."""
    longest = config.data.max_prompt_length + config.data.max_response_length
    ref = config.actor_rollout_ref
    sp = ref.actor.get("fsdp_config", {}).get("ulysses_sequence_parallel_size", 1) or 1
    budgets = []
    if ref.actor.use_dynamic_bsz:
        budgets.append(("actor_rollout_ref.actor.ppo_max_token_len_per_gpu", ref.actor.ppo_max_token_len_per_gpu))
    if ref.rollout.get("log_prob_use_dynamic_bsz"):
        budgets.append(
            ("actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu", ref.rollout.log_prob_max_token_len_per_gpu)
        )
    for key, budget in budgets:
        if budget * sp < longest:
            need = -(-longest // sp)
            raise PlanError(
                f"{key} ({budget}) x Ulysses SP ({sp}) = {budget * sp} tokens cannot hold one sequence of this phase "
                f"(max_prompt_length + max_response_length = {longest}); set {key}={need} or more"
            )


def check_dynamic_sampling(config) -> None:
    """DAPO's group filter needs each reward at sampling time; veRL asserts this only when the trainer starts."""
    groups = (config.get("algorithm") or {}).get("filter_groups") or {}
    if not groups.get("enable"):
        return
    if not groups.get("metric"):
        raise PlanError("algorithm.filter_groups.metric must name a reward field (e.g. acc) when enable=true")
    reward_model = (config.get("reward") or {}).get("reward_model") or {}
    if reward_model.get("enable") and not reward_model.get("enable_resource_pool"):
        raise PlanError(
            "algorithm.filter_groups (DAPO dynamic sampling) with a colocated reward model: veRL scores it only "
            "after sampling; set reward.reward_model.enable_resource_pool=true (its own GPUs) or "
            "algorithm.filter_groups.enable=false"
        )


def check_reward_settings(config) -> None:
    """The ``qwenlong`` manager's and our scorer's kwargs, validated where veRL would only meet them in a worker."""
    reward = config.get("reward") or {}
    manager = reward.get("reward_manager") or {}
    try:
        if manager.get("source", "register") == "register" and manager.get("name") == "qwenlong":
            from qwenlong_verl.rewards.manager import QwenLongRewardConfig

            QwenLongRewardConfig.from_reward_kwargs(reward.get("reward_kwargs"))
        custom = reward.get("custom_reward_function") or {}
        if "qwenlong_verl" in str(custom.get("path") or ""):
            from omegaconf import OmegaConf

            from qwenlong_verl.rewards.hybrid import judge_config_for

            kwargs = custom.get("reward_kwargs") or {}
            judge_config_for(OmegaConf.to_container(kwargs) if not isinstance(kwargs, dict) else kwargs)
    except ValueError as exc:
        raise PlanError(f"reward settings: {exc}") from None


FLASH_ATTN_VARLEN = ("flash_attention_2", "flash_attention_3")
"""Attention implementations whose varlen kernels keep packed sequences apart (``use_remove_padding``)."""


def check_remove_padding(config) -> None:
    """veRL packs a micro-batch into one row with ``use_remove_padding``; only flash-attn's varlen kernels honour
    the sequence boundaries. Any other attention lets packed sequences attend to each other: wrong log-probs and
    gradients, silently (measured on CPU with sdpa: max logit error 0.55)."""
    ref = config.actor_rollout_ref
    model = ref.model
    attn = (model.get("override_config") or {}).get("attn_implementation") or "flash_attention_2"
    for key, node in (("actor_rollout_ref.model", model), ("actor_rollout_ref.actor", ref.actor)):
        if node.get("use_remove_padding") and attn not in FLASH_ATTN_VARLEN:
            raise PlanError(
                f"{key}.use_remove_padding=true packs sequences, which only flash-attn varlen keeps apart, but the "
                f"attention is {attn!r} (actor_rollout_ref.model.override_config.attn_implementation); set "
                f"{key}.use_remove_padding=false or use flash_attention_2"
            )


RAY_BUNDLE_CPUS = 3
"""CPUs veRL 0.9.1's resource pool asks Ray for with each GPU bundle (``max_colocate_count``)."""


def node_cpu_need(config) -> dict[str, int]:
    """CPUs the Ray actors of a one-node run ask for, by what asks (veRL 0.9.1's defaults)."""
    need = {"resource pool (GPU bundles x 3 CPUs)": int(config.trainer.n_gpus_per_node) * RAY_BUNDLE_CPUS}
    tq = config.get("transfer_queue") or {}
    use_tq = config.trainer.get("use_v1", True)
    if use_tq:
        units = ((tq.get("backend") or {}).get("SimpleStorage") or {}).get("num_data_storage_units", 8)
        need["TransferQueue controller + storage units"] = 1 + int(units or 0)
    need["one free to place the TaskRunner, agent-loop and reward workers"] = 1
    return need


def node_cpu_problem(config, this_machine: bool) -> str | None:
    """A one-node run whose Ray actors ask for more CPUs than Ray sees hangs silently after the config print
    (Ray waits for resources that never come). ``this_machine``: count this machine's cores when the config sets
    no ``ray_kwargs.ray_init.num_cpus`` (at launch; ``plan`` may run elsewhere and checks only a set value)."""
    import os

    if int(config.trainer.nnodes) != 1 or os.environ.get("RAY_ADDRESS"):
        return None
    ray_init = (config.get("ray_kwargs") or {}).get("ray_init") or {}
    have = ray_init.get("num_cpus") or (os.cpu_count() if this_machine else None)
    if not have:
        return None
    need = node_cpu_need(config)
    if sum(need.values()) > int(have):
        parts = ", ".join(f"{k} {v}" for k, v in need.items())
        return (
            f"the Ray actors of this run ask for {sum(need.values())} CPUs ({parts}) but Ray sees {have} "
            "(ray_kwargs.ray_init.num_cpus, else this machine's cores); Ray would wait forever. Lower "
            "transfer_queue.backend.SimpleStorage.num_data_storage_units or set ray_kwargs.ray_init.num_cpus "
            "(logical CPUs) high enough"
        )
    return None


def check_node_resources(config) -> None:
    problem = node_cpu_problem(config, this_machine=False)
    if problem:
        raise PlanError(problem)


def launch_problem(config) -> str | None:
    """At launch, on the machine that starts Ray: CPUs and GPUs this one-node run asks for that Ray cannot give."""
    return node_cpu_problem(config, this_machine=True) or visible_gpu_problem(config)


def visible_gpu_problem(config) -> str | None:
    """A one-node run that asks for more GPUs than this machine (or the CPU backend's logical slots)
    offers would wait forever in Ray's scheduler."""
    import os

    if int(config.trainer.nnodes) != 1 or os.environ.get("RAY_ADDRESS"):
        return None
    want = int(config.trainer.n_gpus_per_node)
    if str(config.trainer.get("device", "cuda")) == "cpu":
        have = ((config.get("ray_kwargs") or {}).get("ray_init") or {}).get("num_gpus") or 0
        where = "ray_kwargs.ray_init.num_gpus (the CPU backend's logical GPU slots)"
    else:
        import torch

        have = torch.cuda.device_count()
        where = "GPUs visible to torch (CUDA_VISIBLE_DEVICES)"
    if int(have) < want:
        return (
            f"trainer.n_gpus_per_node={want} but {where} is {have}; Ray would wait forever for the rest. "
            "Lower trainer.n_gpus_per_node or make the GPUs visible"
        )
    return None


def check_algorithm_stages(config) -> None:
    """Settings that only work in our trainer mode: task-norm labels and entropy masking (docs/algorithms.md)."""
    from qwenlong_verl.algos.config import plan_problems

    problems = plan_problems(config)
    if problems:
        raise PlanError("; ".join(problems))


def _divisor_near(n: int, target: int) -> int:
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    return min(divisors, key=lambda d: (abs(d - target), -d))


def _explain_validation_error(exc: Exception) -> str:
    text = str(exc).strip()
    full_key = re.search(r"full_key:\s*(\S+)", text)
    lines = [line.strip() for line in text.splitlines() if line.strip() and "full_key" not in line]
    body = re.sub(r"^Error in call to target '[^']+':\s*", "", " ".join(lines))
    message = body if re.match(r"^\w+(Error|Exception)\b", body) else f"{type(exc).__name__}: {body}"
    if full_key:
        message += f" (in {full_key.group(1)})"
    return f"veRL validate_config rejected the config: {message}"


def plan_phase(recipe: RecipeConfig, index: int, model_path: str | None = None, check: bool = True) -> PhasePlan:
    """Compose (and by default validate) one phase; raises :class:`PlanError` naming phase and key."""
    if recipe.kind == "sft":
        from qwenlong_verl.sft.planning import plan_sft

        return plan_sft(recipe, index, model_path=model_path, check=check)
    phase = recipe.phases[index]
    overrides = phase_overrides(recipe, index, model_path=model_path)
    try:
        config = compose(recipe.base_config, overrides)
        if check:
            validate(config)
            check_batch_shapes(config)
            check_sequence_budget(config)
            check_remove_padding(config)
            check_node_resources(config)
            validate_qwenlong_sections(config)
            check_algorithm_stages(config)
            check_reward_settings(config)
            check_dynamic_sampling(config)
    except PlanError as exc:
        raise PlanError(f"{recipe.source}: phase {index + 1} ({phase.name}): {exc}") from None
    return PhasePlan(
        index=index,
        phase=phase,
        overrides=overrides,
        command=launch_command(recipe, overrides),
        config=config,
    )


def plan_recipe(recipe: RecipeConfig) -> list[PhasePlan]:
    """Plan every phase in order; stops at the first phase that does not validate."""
    return [plan_phase(recipe, i) for i in range(len(recipe.phases))]
