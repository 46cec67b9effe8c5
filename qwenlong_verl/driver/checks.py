"""Checks of a composed RL config: veRL's own ``validate_config``, then what veRL 0.9.1 only finds at run time.

Each check takes the composed config and raises :class:`~qwenlong_verl.driver.compose.PlanError` with the key and
the fix, so a recipe that would fail on a cluster (hours in, or silently) fails on a laptop instead. The RL phase
kind runs them in order (:mod:`qwenlong_verl.driver.kinds.rl`).
"""

from __future__ import annotations

import contextlib
import io
import warnings

from qwenlong_verl.common.names import REWARD_MANAGER, TASK_NORM_ESTIMATOR, TRAINER_MODE
from qwenlong_verl.driver.compose import PlanError, explain_validation_error, instantiate_section


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
        raise PlanError(f"veRL validate_config rejected the config: {explain_validation_error(exc)}") from None


def validate_qwenlong_sections(config) -> None:
    """Instantiate each ``qwenlong.<section>`` dataclass (``_target_``) so its own checks run at plan time."""
    from omegaconf import DictConfig

    sections = config.get("qwenlong")
    if not isinstance(sections, DictConfig):
        return
    for name, node in sections.items():
        if isinstance(node, DictConfig) and "_target_" in node:
            instantiate_section(node, f"qwenlong.{name}")


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
        if manager.get("source", "register") == "register" and manager.get("name") == REWARD_MANAGER:
            from qwenlong_verl.worker.rewards.manager import QwenLongRewardConfig

            QwenLongRewardConfig.from_reward_kwargs(reward.get("reward_kwargs"))
        custom = reward.get("custom_reward_function") or {}
        if "qwenlong_verl" in str(custom.get("path") or ""):
            from omegaconf import OmegaConf

            from qwenlong_verl.worker.rewards.hybrid import judge_config_for

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
    problems = algorithm_stage_problems(config)
    if problems:
        raise PlanError("; ".join(problems))


def _divisor_near(n: int, target: int) -> int:
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    return min(divisors, key=lambda d: (abs(d - target), -d))


def algorithm_stage_problems(config) -> list[str]:
    """Cross-key problems of a composed veRL config for the methods of this package, one sentence each.

    ``grpo_task_norm`` needs per-sample task labels and masking needs the old policy's token entropies;
    veRL hands neither to a registered estimator or loss, so both run in the ``qwenlong`` trainer mode.
    Relative AEPO thresholds need a warm-up shorter than the phase, else AEPO never acts.
    """
    problems: list[str] = []
    algorithm = config.get("algorithm") or {}
    trainer = config.get("trainer") or {}
    mode = (trainer.get("v1") or {}).get("trainer_mode")
    use_v1 = trainer.get("use_v1", True)
    in_our_mode = bool(use_v1) and mode == TRAINER_MODE
    section = (config.get("qwenlong") or {}).get("algos") or {}
    masking = section.get("neg_clip_mode", "none") != "none" or bool(section.get("aepo_enable", False))

    if algorithm.get("adv_estimator") == TASK_NORM_ESTIMATOR:
        if not in_our_mode:
            problems.append(
                f"algorithm.adv_estimator={TASK_NORM_ESTIMATOR} needs per-sample task labels, which only our "
                f"trainer stages pass: set trainer.v1.trainer_mode={TRAINER_MODE} (and trainer.use_v1=true); "
                f"got trainer.v1.trainer_mode={mode}"
            )
        if not algorithm.get("norm_adv_by_std_in_grpo", True):
            problems.append(
                f"algorithm.norm_adv_by_std_in_grpo=false contradicts algorithm.adv_estimator={TASK_NORM_ESTIMATOR} "
                "(task-norm is a std normalisation); use adv_estimator=grpo for unscaled advantages"
            )
    if masking:
        if not in_our_mode:
            problems.append(
                "qwenlong.algos.neg_clip_mode / qwenlong.algos.aepo_enable mask advantages in our actor-update "
                f"stage: set trainer.v1.trainer_mode={TRAINER_MODE} (and trainer.use_v1=true); "
                f"got trainer.v1.trainer_mode={mode}"
            )
        correction = algorithm.get("rollout_correction") or {}
        if correction.get("bypass_mode", False):
            problems.append(
                "algorithm.rollout_correction.bypass_mode=true skips the old-log-prob pass that computes token "
                "entropy, which qwenlong.algos.neg_clip_mode / aepo_enable need; turn one of them off"
            )
    warmup = section.get("aepo_warmup_steps")
    total = trainer.get("total_training_steps")
    relative = section.get("aepo_threshold_mode", "absolute") == "relative"
    counts = all(isinstance(n, int) and not isinstance(n, bool) for n in (warmup, total))  # else the section's checks
    if section.get("aepo_enable", False) and relative and counts and 0 < total <= warmup:
        problems.append(
            f"qwenlong.algos.aepo_warmup_steps={warmup} measures the entropy reference over the first {warmup} steps "
            f"of the run (AEPO off meanwhile), but trainer.total_training_steps={total}: AEPO would never act; "
            f"lower aepo_warmup_steps below {total} or use aepo_threshold_mode=absolute"
        )
    return problems
