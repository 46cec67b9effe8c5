"""v1 trainer stages for task-norm advantage, negative-gradient clipping and AEPO.

:class:`LongContextAlgoStages` is a mixin for veRL's v1 ``PPOTrainer``: it overrides four stages, always
delegating to ``super()``, and adds nothing else to the trainer loop. veRL's ``_step_once`` runs, per
batch: old log-prob (writes per-token ``entropy`` to TransferQueue) → [ref] → ``_compute_advantage`` →
``_update_actor``; the stages below slot into that order.

==========================  ===================================================================
stage                       what the mixin adds
==========================  ===================================================================
``_compute_advantage``      with ``algorithm.adv_estimator=grpo_task_norm``: reads each row's task
                            (:func:`~qwenlong_verl.worker.algos.sample_labels.read_sample_labels`) and
                            runs veRL's own stage inside :func:`~qwenlong_verl.worker.algos.task_norm.provide_task_labels`;
                            a trajectory of several outputs (memory agent) counts once, by its final
                            output, whose advantage all its outputs take (:mod:`~qwenlong_verl.worker.agent.turns`);
                            metrics ``qwenlong/task_std/<task>``, ``qwenlong/task_samples/<task>``.
``_update_actor``           with clipping or AEPO on: reads ``advantages``, ``entropy`` and
                            ``response_mask`` from TransferQueue, zeroes the dropped tokens'
                            advantages (:func:`~qwenlong_verl.worker.algos.entropy_mask.mask_negative_gradients`),
                            writes ``advantages`` back, then lets veRL update the actor;
                            metrics ``qwenlong/entropy``, ``qwenlong/aepo_active``, ``qwenlong/aepo_h_low``…
``_save_checkpoint``        writes the AEPO state (switch, and the warm-up reference of relative
                            thresholds) to ``global_step_<n>/qwenlong_algos.json`` *before* veRL
                            writes its ``latest_checkpointed_iteration.txt``, so a checkpoint that
                            resume can find always has it.
``_load_checkpoint``        after veRL restored ``global_steps``, restores the AEPO state of that step.
==========================  ===================================================================

For the trainer mode (``qwenlong_verl/worker/trainer.py``, owned by the curriculum part)::

    @register_trainer("qwenlong")
    class QwenLongTrainer(LongContextAlgoStages, <curriculum mixins>, PPOTrainerSync): ...

The mixin comes first in the bases so its overrides wrap everything after it in the MRO. It needs from
the host only what veRL's ``PPOTrainer`` has: ``self.config`` (the full run config, with the optional
``qwenlong.algos`` section; defaults when absent) and ``self.global_steps``. It has no ``__init__``: its
state is created on first use. Other mixins that also override these stages must call ``super()`` too.
Per-sample ``(uid, index, task)`` for the difficulty ledger: :func:`~qwenlong_verl.worker.algos.sample_labels.read_sample_labels`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from typing import Any

import transfer_queue as tq
from tensordict import TensorDict
from verl.workers.utils.padding import response_to_nested

from qwenlong_verl.common.files import atomic_write
from qwenlong_verl.common.names import TASK_NORM_ESTIMATOR
from qwenlong_verl.worker.agent.turns import trajectory_turns
from qwenlong_verl.worker.algos.config import AlgosConfig
from qwenlong_verl.worker.algos.entropy_mask import AEPO_THRESHOLD_MODES, AepoController, mask_negative_gradients
from qwenlong_verl.worker.algos.sample_labels import read_sample_labels
from qwenlong_verl.worker.algos.task_norm import TaskLabels, provide_task_labels
from qwenlong_verl.worker.sections import qwenlong_section
from qwenlong_verl.worker.transfer import get_fields

logger = logging.getLogger(__name__)

STATE_FILE = "qwenlong_algos.json"
"""File in each ``global_step_<n>`` checkpoint folder holding the state of these stages."""
STATE_VERSION = 2
"""2 added the AEPO warm-up (relative thresholds); a version-1 file reads as a state without one."""

MASK_FIELDS = ("advantages", "entropy", "response_mask")
"""TransferQueue fields the actor-update stage reads."""


class LongContextAlgoStages:
    """Task-norm advantage, negative-gradient clipping and AEPO as overrides of veRL v1 trainer stages."""

    config: Any
    global_steps: int

    # ------------------------------------------------------------------ state

    @functools.cached_property
    def algos_config(self) -> AlgosConfig:
        """``qwenlong.algos`` of the run config as :class:`AlgosConfig` (defaults: everything off)."""
        return qwenlong_section(self.config, "algos", AlgosConfig)

    @property
    def aepo(self) -> AepoController | None:
        """The AEPO switch of this run (``None`` with AEPO off); one instance for the whole run."""
        cfg = self.algos_config
        if not cfg.aepo_enable:
            return None
        controller = self.__dict__.get("_qwenlong_aepo")
        if controller is None:
            make = AEPO_THRESHOLD_MODES[cfg.aepo_threshold_mode]
            controller = make(cfg.aepo_h_low, cfg.aepo_h_high, cfg.aepo_warmup_steps)
            self.__dict__["_qwenlong_aepo"] = controller
        return controller

    def algos_state_dict(self) -> dict[str, Any]:
        """What :meth:`_save_checkpoint` persists."""
        aepo = self.aepo
        return {"version": STATE_VERSION, "aepo": aepo.state_dict() if aepo is not None else None}

    def load_algos_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`algos_state_dict`; a saved AEPO state is ignored if AEPO is now off."""
        aepo = self.aepo
        saved = state.get("aepo")
        if aepo is not None and saved is not None:
            aepo.load_state_dict(saved)
        elif aepo is not None:
            logger.warning("checkpoint has no AEPO state (AEPO was off when it was saved); starting inactive")

    # ------------------------------------------------------------------ stages

    def _compute_advantage(self, batch, metrics: dict):
        if self.config.algorithm.adv_estimator != TASK_NORM_ESTIMATOR:
            return super()._compute_advantage(batch, metrics)
        cfg = self.algos_config
        turns = trajectory_turns(batch.keys)  # statistics over trajectories (final rows), broadcast to their rows
        labels = TaskLabels(
            task=turns.on_final(read_sample_labels(batch).task),
            epsilon=cfg.task_norm_epsilon,
            std_mode=cfg.task_norm_std,
            broadcast=turns.final_row,
        )
        with provide_task_labels(labels):
            batch = super()._compute_advantage(batch, metrics)
        for task, figures in labels.stats.items():
            metrics[f"qwenlong/task_std/{task}"] = figures["std"]
            metrics[f"qwenlong/task_samples/{task}"] = figures["samples"]
        return batch

    def _update_actor(self, batch, metrics: dict):
        if self.algos_config.masks_gradients:
            self._mask_negative_gradients(batch, metrics)
        return super()._update_actor(batch, metrics)

    def _mask_negative_gradients(self, batch, metrics: dict) -> None:
        """Zero the advantages of the tokens that clipping / AEPO drop, in TransferQueue, before the update."""
        cfg = self.algos_config
        data = get_fields(
            batch,
            MASK_FIELDS,
            "qwenlong.algos negative-gradient masking needs them; token entropy comes from veRL's old-log-prob "
            "stage, which algorithm.rollout_correction.bypass_mode skips",
        )
        nested_mask = data["response_mask"]
        padded = data.to_padded_tensor()
        outcome = mask_negative_gradients(
            padded["advantages"],
            padded["entropy"],
            padded["response_mask"],
            mode=cfg.neg_clip_mode,
            token_threshold=cfg.neg_clip_token_entropy,
            seq_threshold=cfg.neg_clip_seq_entropy,
            aepo=self.aepo,
        )
        metrics.update(outcome.metrics)
        if bool(outcome.dropped.any()):
            advantages = response_to_nested(outcome.advantages, nested_mask)
            tq.kv_batch_put(
                keys=batch.keys,
                partition_id=batch.partition_id,
                fields=TensorDict({"advantages": advantages}, batch_size=len(batch)),
            )

    # ------------------------------------------------------------------ checkpoints

    def _save_checkpoint(self):
        folder = os.path.join(self.config.trainer.default_local_dir, f"global_step_{self.global_steps}")
        atomic_write(os.path.join(folder, STATE_FILE), json.dumps(self.algos_state_dict()))
        return super()._save_checkpoint()

    def _load_checkpoint(self):
        result = super()._load_checkpoint()
        if self.global_steps > 0:
            path = os.path.join(self._resumed_checkpoint_folder(), STATE_FILE)
            if os.path.exists(path):
                with open(path) as f:
                    self.load_algos_state_dict(json.load(f))
                logger.info("restored qwenlong.algos state from %s", path)
            elif self.aepo is not None:
                logger.warning(
                    "no %s in the resumed checkpoint; AEPO starts inactive (relative thresholds measure their reference again)",
                    path,
                )
        return result

    def _resumed_checkpoint_folder(self) -> str:
        """The folder veRL's ``_load_checkpoint`` resumed from (same resolution rules as veRL's)."""
        trainer = self.config.trainer
        if trainer.resume_mode == "resume_path":
            folder = trainer.resume_from_path
        else:
            folder = os.path.join(trainer.default_local_dir, f"global_step_{self.global_steps}")
        return folder if os.path.isabs(folder) else os.path.join(os.getcwd(), folder)
