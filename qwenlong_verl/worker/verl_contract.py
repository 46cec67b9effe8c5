"""The private parts of veRL this package depends on, checked before a run does any work.

The trainer mode overrides private methods of veRL's v1 trainer and swaps the class of veRL's replay buffer; the
CPU backend wraps one function and writes into two registries. A veRL release that renames or re-signs one of
them would break training hours in, or silently. :func:`contract_problems` checks each against the installed
veRL (names, parameter names); the trainer mode runs it when veRL builds it (before any worker starts) and
``qwenlong-verl doctor`` shows it. veRL is pinned to the versions this table was checked on (setup.cfg).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

from qwenlong_verl import SUPPORTED_VERL
from qwenlong_verl.common.errors import RunFailed


@dataclass(frozen=True)
class Hook:
    """One veRL attribute we override, wrap or fill, and the shape we rely on."""

    module: str
    attribute: str
    """Dotted path inside :attr:`module` (``PPOTrainer._compute_advantage``)."""

    params: tuple[str, ...] | None = None
    """Parameter names the callable must have, in order (``None``: only that it exists)."""

    user: str = ""
    """Which of our code relies on it."""


HOOKS: tuple[Hook, ...] = (
    Hook(
        "verl.trainer.ppo.v1.trainer_base",
        "PPOTrainer._compute_advantage",
        ("self", "batch", "metrics"),
        "algos stages",
    ),
    Hook("verl.trainer.ppo.v1.trainer_base", "PPOTrainer._update_actor", ("self", "batch", "metrics"), "algos stages"),
    Hook("verl.trainer.ppo.v1.trainer_base", "PPOTrainer._save_checkpoint", ("self",), "algos + curriculum stages"),
    Hook("verl.trainer.ppo.v1.trainer_base", "PPOTrainer._load_checkpoint", ("self",), "algos + curriculum stages"),
    Hook("verl.trainer.ppo.v1.trainer_base", "PPOTrainer._build_replay_buffer", ("self",), "curriculum stages"),
    Hook("verl.trainer.ppo.v1.trainer_base", "PPOTrainer._init_dataloader", ("self",), "task-balanced sampling"),
    Hook(
        "verl.trainer.ppo.v1.trainer_base",
        "PPOTrainer._compute_metrics",
        ("self", "batch", "metrics", "timing_raw", "global_steps", "epoch"),
        "metrics.jsonl",
    ),
    Hook("verl.trainer.ppo.v1.trainer_base", "register_trainer", ("name",), "trainer mode registration"),
    Hook("verl.trainer.ppo.v1.trainer_sync", "PPOTrainerSync", None, "trainer mode base class"),
    Hook(
        "verl.trainer.ppo.v1.replay_buffer",
        "ReplayBuffer._clear_groups",
        ("self", "partition_id", "uids"),
        "ledger of discarded groups",
    ),
    Hook(
        "verl.trainer.ppo.v1.replay_buffer",
        "ReplayBuffer.__init__",
        (
            "self",
            "trainer_mode",
            "trainer_config",
            "max_off_policy_threshold",
            "max_off_policy_strategy",
            "sampler_kwargs",
            "poll_interval",
            "refill_fn",
            "filter_groups_metric",
        ),
        "bounded DAPO refills (refill_fn, filter_groups_metric)",
    ),
    Hook("verl.trainer.ppo.core_algos", "register_adv_est", ("name_or_enum",), "grpo_task_norm"),
    Hook("verl.experimental.agent_loop.agent_loop", "register", ("agent_name",), "memory agent loop registration"),
    Hook(
        "verl.experimental.agent_loop.agent_loop",
        "AgentLoopBase.ct_merge_assistant_token",
        ("self", "runtime_token_ids", "assistant_token_ids", "response_mask", "response_logprobs"),
        "memory agent loop",
    ),
    Hook(
        "verl.workers.engine_workers",
        "initialize_global_process_group_ray",
        ("timeout_second", "backend"),
        "CPU backend",
    ),
    Hook("verl.workers.rollout.base", "_ROLLOUT_REGISTRY", None, "CPU backend rollout"),
    Hook("verl.workers.rollout.replica", "RolloutReplicaRegistry.register", None, "CPU backend replica"),
)


def _resolve(hook: Hook):
    target = importlib.import_module(hook.module)
    for part in hook.attribute.split("."):
        target = getattr(target, part)
    return target


def hook_problem(hook: Hook) -> str | None:
    """Why the installed veRL does not offer ``hook`` as we use it, or ``None``."""
    where = f"{hook.module}.{hook.attribute}"
    try:
        target = _resolve(hook)
    except (ImportError, AttributeError) as exc:
        return f"{where} is missing ({type(exc).__name__}: {exc}); used by {hook.user}"
    if hook.params is None:
        return None
    try:
        names = tuple(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return f"{where} is not a callable with a signature; used by {hook.user}"
    if names[: len(hook.params)] != hook.params:
        return f"{where} takes ({', '.join(names)}), expected ({', '.join(hook.params)}, ...); used by {hook.user}"
    return None


def contract_problems(hooks: tuple[Hook, ...] = HOOKS) -> list[str]:
    """One sentence per veRL attribute this package relies on that the installed veRL lacks or changed."""
    return [problem for problem in map(hook_problem, hooks) if problem]


class VerlContractError(RunFailed):
    """The installed veRL changed something the trainer mode or the CPU backend overrides."""


def check_contract() -> None:
    """Raise :class:`VerlContractError` naming every broken hook and the veRL the table was checked on."""
    problems = contract_problems()
    if problems:
        from importlib.metadata import version

        raise VerlContractError(
            f"veRL {version('verl')} differs from what qwenlong-verl was checked on (verl{SUPPORTED_VERL}): "
            + "; ".join(problems)
            + f". Install it: pip install 'verl{SUPPORTED_VERL}'"
        )
