"""veRL entry point (group ``verl.plugins``): registers our names into veRL's registries.

veRL imports this module from ``import verl`` in every process — driver, TaskRunner and each Ray
worker — and swallows whatever it raises at debug level. Hence the two rules here:

* **Cheap.** Nothing from veRL or torch is imported. Each registration is a post-import hook on the
  veRL module that owns the registry; our provider module is imported only when veRL itself imports
  that registry, so a registry is filled exactly in the processes that use it (a rollout worker never
  imports the v1 trainer, so it never pays for our trainer mode).
* **Never raises.** A provider that fails to import is logged once at warning and recorded in
  :data:`FAILURES`, which ``qwenlong-verl doctor`` reports with the error.

Adding a name: decorate it with veRL's own decorator in its provider module and list it below.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass

from qwenlong_verl.common.names import MEMORY_AGENT_LOOP, REWARD_MANAGER, TASK_NORM_ESTIMATOR, TRAINER_MODE
from qwenlong_verl.worker.cpu_hooks import CPU_BACKEND, CPU_HOOKS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registration:
    """One group of our names in one veRL registry."""

    kind: str
    """What veRL calls the thing, for humans (``doctor``)."""

    config_key: str
    """The veRL config key that selects one of these names."""

    registry_module: str
    """The veRL module that holds the registry dict."""

    registry_attr: str
    """Name of the registry dict in :attr:`registry_module`."""

    provider: str
    """Our module whose import runs veRL's decorators for :attr:`names`."""

    names: tuple[str, ...]
    """The names the provider registers."""

    trigger: str = ""
    """veRL module whose import fires the hook; defaults to :attr:`registry_module`."""

    @property
    def trigger_module(self) -> str:
        return self.trigger or self.registry_module


REGISTRATIONS: tuple[Registration, ...] = (
    Registration(
        kind="reward manager",
        config_key="reward.reward_manager.name",
        registry_module="verl.experimental.reward_loop.reward_manager.registry",
        registry_attr="REWARD_MANAGER",
        provider="qwenlong_verl.worker.rewards.manager",
        names=(REWARD_MANAGER,),
        trigger="verl.experimental.reward_loop.reward_manager",
    ),
    Registration(
        kind="advantage estimator",
        config_key="algorithm.adv_estimator",
        registry_module="verl.trainer.ppo.core_algos",
        registry_attr="ADV_ESTIMATOR_REGISTRY",
        provider="qwenlong_verl.worker.algos.task_norm",
        names=(TASK_NORM_ESTIMATOR,),
    ),
    Registration(
        kind="v1 trainer mode",
        config_key="trainer.v1.trainer_mode",
        registry_module="verl.trainer.ppo.v1.trainer_base",
        registry_attr="TRAINER_REGISTRY",
        provider="qwenlong_verl.worker.trainer",
        names=(TRAINER_MODE,),
        trigger="verl.trainer.ppo.v1",
    ),
    Registration(
        kind="agent loop",
        config_key="actor_rollout_ref.rollout.agent.default_agent_loop",
        registry_module="verl.experimental.agent_loop.agent_loop",
        registry_attr="_agent_loop_registry",
        provider="qwenlong_verl.worker.agent.memory_loop",
        names=(MEMORY_AGENT_LOOP,),
        trigger="verl.experimental.agent_loop",
    ),
)

FAILURES: dict[str, str] = {}
"""Provider module -> error text, for every registration that failed in this process."""

_installed = False


def _make_hook(reg: Registration):
    def register(_module) -> None:
        try:
            importlib.import_module(reg.provider)
        except Exception as exc:  # a plugin must never break veRL's import
            if reg.provider not in FAILURES:
                FAILURES[reg.provider] = f"{type(exc).__name__}: {exc}"
                logger.warning(
                    "qwenlong-verl: could not register %s %s from %s (%s: %s); run `qwenlong-verl doctor`",
                    reg.kind,
                    ", ".join(reg.names),
                    reg.provider,
                    type(exc).__name__,
                    exc,
                )

    return register


def _make_cpu_hook(function: str):
    def register(module) -> None:
        try:
            backend = importlib.import_module(CPU_BACKEND)
            step = getattr(backend, function, None)
            if step is None:  # the backend is importing veRL itself and runs this step when it is done
                return
            step(module)
        except Exception as exc:  # a plugin must never break veRL's import
            key = f"{CPU_BACKEND}.{function}"
            if key not in FAILURES:
                FAILURES[key] = f"{type(exc).__name__}: {exc}"
                logger.warning("qwenlong-verl: CPU backend step %s failed (%s: %s)", function, type(exc).__name__, exc)

    return register


def cpu_selected() -> bool:
    """``VERL_PLATFORM=cpu``: the run asked for the CPU backend (read without importing it)."""
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == "cpu"


def install(registrations: tuple[Registration, ...] = REGISTRATIONS) -> None:
    """Arm one post-import hook per registration; idempotent, never raises."""
    global _installed
    if _installed and registrations is REGISTRATIONS:
        return
    try:
        import wrapt

        for reg in registrations:
            wrapt.register_post_import_hook(_make_hook(reg), reg.trigger_module)
        if registrations is REGISTRATIONS and cpu_selected():
            for module, function in CPU_HOOKS:
                wrapt.register_post_import_hook(_make_cpu_hook(function), module)
    except Exception as exc:
        FAILURES.setdefault(__name__, f"{type(exc).__name__}: {exc}")
        logger.warning("qwenlong-verl: plugin hooks not installed (%s: %s)", type(exc).__name__, exc)
    if registrations is REGISTRATIONS:
        _installed = True


install()
