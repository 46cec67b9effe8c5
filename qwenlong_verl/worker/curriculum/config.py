"""``qwenlong.curriculum``: what the ``qwenlong`` trainer mode needs to know about the phase it runs.

The section sits in our Hydra configs with ``_target_: qwenlong_verl.worker.curriculum.config.CurriculumConfig``, so
``qwenlong-verl plan`` instantiates it and a bad value fails on a laptop, naming the field.
``qwenlong-verl train`` sets :attr:`~CurriculumConfig.phase`, :attr:`~CurriculumConfig.phase_number` and
:attr:`~CurriculumConfig.task_balance` per phase (``planning.phase_overrides``); a plain
``python -m verl.trainer.main_ppo ... trainer.v1.trainer_mode=qwenlong`` run uses the defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from verl.base_config import BaseConfig

LEDGER_FILE = "difficulty_ledger.jsonl"
"""File name of the ledger inside the run's checkpoint folder (``trainer.default_local_dir``)."""
METRICS_FILE = "metrics.jsonl"
"""File name of the per-step metrics (``qwenlong-verl train`` puts it in the phase folder)."""


@dataclass
class CurriculumConfig(BaseConfig):
    """Settings of the curriculum stages of the ``qwenlong`` trainer mode (section ``qwenlong.curriculum``)."""

    phase: str = "main"
    """Name of the phase this run trains; written into every ledger record."""

    phase_number: int = 1
    """1-based position of this phase in the recipe: the ``qwenlong/phase`` metric. A row whose
    ``extra_info.phase`` is below it was carried over from an earlier phase (``qwenlong/retro_share``)."""

    ledger: bool = True
    """Write the difficulty ledger (one record per prompt per step)."""

    ledger_path: str = ""
    """Ledger file; empty: ``<trainer.default_local_dir>/difficulty_ledger.jsonl``, inside the checkpoint folder,
    so it lives and resumes with the run's checkpoints."""

    metrics_path: str = ""
    """Per-step metrics file the trainer appends to (veRL's file-logger lines ``{"step", "data"}``); empty:
    ``<trainer.default_local_dir>/metrics.jsonl``. Appended, never truncated: a resumed run keeps every attempt's
    lines (veRL's own file logger reopens its file with "wb"). veRL logs a step after its checkpoint, so a kill
    between the two loses that one step's line here as in every veRL logger; the resume goes on from the step after."""

    max_gen_batches: int = 10
    """Bound on DAPO refills in one step, in generation batches, when ``algorithm.filter_groups.max_num_gen_batches``
    is 0 (veRL 0.9.1's v1 replay buffer ignores that key and would refill forever when no group has reward
    variance). Past the bound the step fails with the phase and the zero-variance share."""

    pass_key: str = "acc"
    """Field of the reward's ``reward_extra_info`` read as a rollout's correctness (the ``qwenlong`` reward manager
    writes ``acc``); where a rollout lacks it, its sequence reward is used instead."""

    pass_threshold: float = 0.5
    """A rollout passes when that value is at least this; QwenLong rewards are 0/1, so 0.5 splits them."""

    task_balance: bool = False
    """Draw prompt batches with an equal count of every task label (QwenLong-L1.5); when ``data.train_batch_size``
    is not a multiple of the number of labels, the remainder's extra slots rotate over the labels."""

    seed: int = 1
    """Seed of the task-balanced sampler's per-task shuffles."""

    def __post_init__(self) -> None:
        if not isinstance(self.phase, str) or not self.phase.strip():
            raise ValueError(f"phase must be a non-empty name, got {self.phase!r}")
        if isinstance(self.phase_number, bool) or not isinstance(self.phase_number, int) or self.phase_number < 1:
            raise ValueError(f"phase_number must be an integer >= 1, got {self.phase_number!r}")
        for name in ("ledger", "task_balance"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.ledger_path, str):
            raise ValueError(f"ledger_path must be a path string (empty for the default), got {self.ledger_path!r}")
        if not isinstance(self.metrics_path, str):
            raise ValueError(f"metrics_path must be a path string (empty for the default), got {self.metrics_path!r}")
        if (
            isinstance(self.max_gen_batches, bool)
            or not isinstance(self.max_gen_batches, int)
            or self.max_gen_batches < 1
        ):
            raise ValueError(f"max_gen_batches must be an integer >= 1, got {self.max_gen_batches!r}")
        if not isinstance(self.pass_key, str):
            raise ValueError(f"pass_key must be a string, got {self.pass_key!r}")
        threshold = self.pass_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold):
            raise ValueError(f"pass_threshold must be a finite number, got {threshold!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")

    def resolved_metrics_path(self, default_local_dir: str) -> str:
        """Where the per-step metrics of a run with checkpoint folder ``default_local_dir`` are appended."""
        import os

        return self.metrics_path or os.path.join(default_local_dir, METRICS_FILE)

    def resolved_ledger_path(self, default_local_dir: str) -> str:
        """Where the ledger of a run with checkpoint folder ``default_local_dir`` is written."""
        import os

        return self.ledger_path or os.path.join(default_local_dir, LEDGER_FILE)
