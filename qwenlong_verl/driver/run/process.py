"""Children ``train`` runs: veRL for a phase, veRL's model merger after it, a merge step's merge; they die with
``train``."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from qwenlong_verl.common.files import atomic_folder
from qwenlong_verl.common.names import CPU_PLATFORM
from qwenlong_verl.driver.run.state import TrainError

logger = logging.getLogger(__name__)

LAUNCHER_ENV = "QWENLONG_VERL_LAUNCHER"
MERGER_ENV = "QWENLONG_VERL_MERGER"
MERGE_STEP_ENV = "QWENLONG_VERL_MERGE_STEP"
"""Replaces ``python -m qwenlong_verl.driver.merge``, the program of a recipe's merge steps (tests use stand-ins)."""

Echo = Callable[[str], None]


def command_prefix(env_var: str, explicit: Sequence[str] | str | None, default: Sequence[str]) -> list[str]:
    """An explicit command, else the environment variable's shell words, else ``default``.

    A variable set to nothing is an error, not the default: an emptied stand-in must not start real veRL."""
    value = explicit if explicit is not None else os.environ.get(env_var)
    if value is None:
        return list(default)
    try:
        words = shlex.split(value) if isinstance(value, str) else list(value)
    except ValueError as exc:  # an unclosed quote
        raise TrainError(f"{env_var}={value!r} is not valid shell words ({exc}); fix its quoting") from None
    if not words:
        where = env_var if explicit is None else "the launch command"
        raise TrainError(f"{where} is set but empty; unset it or name a command")
    return words


def merger_backend(config) -> str:
    strategy = str(config.actor_rollout_ref.actor.strategy)
    if strategy in ("fsdp", "fsdp2"):
        return "fsdp"
    if strategy == "megatron":
        return "megatron"
    raise TrainError(
        f"actor strategy {strategy!r} has no veRL model-merger backend; phases can only hand over fsdp or megatron "
        "checkpoints"
    )


def launch_env(config) -> dict[str, str]:
    """The veRL child's environment: ours, plus ``VERL_PLATFORM=cpu`` when the phase runs on the CPU backend."""
    env = dict(os.environ)
    if str(config.trainer.get("device", "cuda")) == CPU_PLATFORM:
        env["VERL_PLATFORM"] = CPU_PLATFORM
    return env


def run_child(argv: Sequence[str], what: str, env: dict[str, str] | None = None) -> int:
    """Run a child with the terminal as its output; it dies with us (SIGKILL on parent death, Linux)."""
    logger.info("%s: %s", what, " ".join(shlex.quote(a) for a in argv))
    try:
        child = subprocess.Popen(
            list(argv), env=env, preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None
        )
    except FileNotFoundError as exc:
        raise TrainError(f"{what}: cannot start {argv[0]!r} ({exc})") from None
    try:
        return child.wait()
    except BaseException:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
        raise


def _die_with_parent() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def merge_model(config, actor_dir: Path, target: Path, merger, where: str, echo: Echo) -> None:
    """veRL's model merger into ``target`` (a temporary folder swapped in when complete)."""
    if (target / "config.json").is_file():
        return
    if not actor_dir.is_dir():
        raise TrainError(f"{where}: final actor checkpoint {actor_dir} not found")
    with atomic_folder(target) as partial:  # the merged model appears complete or not at all
        argv = [
            *command_prefix(MERGER_ENV, merger, [sys.executable, "-m", "verl.model_merger"]),
            "merge",
            "--backend",
            merger_backend(config),
            "--local_dir",
            str(actor_dir),
            "--target_dir",
            str(partial),
        ]
        echo(f"{where}: merging the final actor into {target}")
        code = run_child(argv, f"{where} merge", env=launch_env(config))
        if code != 0 or not (partial / "config.json").is_file():
            raise TrainError(f"{where}: model merger failed (exit {code}); rerun to retry: {shlex.join(argv)}")
