"""v1 trainer stages of the curriculum: difficulty ledger, ``qwenlong/*`` metrics, task-balanced prompt batches.

:class:`CurriculumStages` is a mixin for veRL's v1 ``PPOTrainer`` (composed into the ``qwenlong`` trainer mode,
:mod:`qwenlong_verl.worker.trainer`). Every override calls ``super()``:

==========================  ===================================================================
stage                       what the mixin adds
==========================  ===================================================================
``_build_replay_buffer``    veRL's own sync ``ReplayBuffer``, shown to us before it discards training
                            groups (DAPO-filtered, surplus): :class:`ObservedReplayBuffer`
``_init_dataloader``        with ``task_balance``: the same ``StatefulDataLoader`` over a
                            :class:`~qwenlong_verl.worker.curriculum.task_balance.TaskBalancedSampler`
``step``                    after veRL's step: one ledger record per prompt (trained and discarded
                            groups), appended before the step's checkpoint; curriculum metrics and the
                            reward manager's ``qwenlong_reward/*`` metrics into veRL's dict
``_load_checkpoint``        after veRL restored ``global_steps``: the ledger is cut back to that step
``_compute_metrics``        after veRL's step metrics: the step's line appended to ``metrics.jsonl``
                            (``qwenlong.curriculum.metrics_path``), never truncated across resumes
==========================  ===================================================================

DAPO refills are bounded: veRL 0.9.1's sync replay buffer refills filtered groups without a limit (it ignores
``algorithm.filter_groups.max_num_gen_batches``), so a phase where no group has reward variance never ends a
step. The buffer's refill function is wrapped to count prompts per step (``qwenlong/refill_prompts``) and to
raise :class:`DynamicSamplingExhausted` past ``max_num_gen_batches`` generation batches (our
``qwenlong.curriculum.max_gen_batches`` when veRL's key is 0).

Per-sample fields come from TransferQueue, where veRL's agent loop stored each trajectory with every column of
its dataset row (``data_source``, ``extra_info``, …) beside ``rm_scores`` and ``response_mask``; the labels
(uid, index, task, padding) are read with :func:`qwenlong_verl.worker.algos.sample_labels.sample_labels`, shared with
the task-norm advantage stage.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import transfer_queue as tq
from transfer_queue import KVBatchMeta
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
from verl.utils.debug import marked_timer

from qwenlong_verl.worker.agent.turns import trajectory_turns
from qwenlong_verl.worker.algos.sample_labels import LABEL_FIELDS, sample_labels
from qwenlong_verl.worker.curriculum.config import CurriculumConfig
from qwenlong_verl.worker.curriculum.ledger import DifficultyLedger, LedgerRecord, group_records, step_metrics
from qwenlong_verl.worker.rewards.metrics import reward_metrics
from qwenlong_verl.worker.sections import qwenlong_section

logger = logging.getLogger(__name__)

SCORE_FIELDS = ("rm_scores", "response_mask", "extra_fields")
"""TransferQueue fields read beside :data:`~qwenlong_verl.worker.algos.sample_labels.LABEL_FIELDS` for a ledger record."""


class DynamicSamplingExhausted(RuntimeError):
    """DAPO dynamic sampling refilled its bound of generation batches without filling a training batch."""


class ObservedReplayBuffer(ReplayBuffer):
    """veRL's sync replay buffer, unchanged, except that it shows an observer the training groups it is about to
    discard. DAPO's dynamic sampling evicts the groups whose responses all score the same — the all-wrong and
    all-right prompts, the very ones difficulty is about — so the ledger must see them before they are gone."""

    observer: Callable[[KVBatchMeta], None] | None = None

    def _clear_groups(self, partition_id: str, uids: set[str]) -> None:
        if self.observer is not None and partition_id == "train" and uids:
            partition = self.partitions[partition_id]
            keys = [key for key in partition if key.split("_")[0] in uids]  # veRL's own key rule
            if keys:
                self.observer(KVBatchMeta(partition_id=partition_id, keys=keys, tags=[partition[k] for k in keys]))
        super()._clear_groups(partition_id, uids)


class CurriculumStages:
    """Ledger, metrics and task balance as overrides of veRL v1 trainer stages (see the module docstring)."""

    config: Any
    global_steps: int

    # ------------------------------------------------------------------ settings and state

    @functools.cached_property
    def curriculum_config(self) -> CurriculumConfig:
        """``qwenlong.curriculum`` of the run config (defaults when the section is absent)."""
        return qwenlong_section(self.config, "curriculum", CurriculumConfig)

    @property
    def ledger(self) -> DifficultyLedger | None:
        """The run's difficulty ledger (``None`` with ``qwenlong.curriculum.ledger=false``)."""
        cfg = self.curriculum_config
        if not cfg.ledger:
            return None
        ledger = self.__dict__.get("_qwenlong_ledger")
        if ledger is None:
            ledger = DifficultyLedger(cfg.resolved_ledger_path(self.config.trainer.default_local_dir))
            self.__dict__["_qwenlong_ledger"] = ledger
        return ledger

    def _dropped_records(self) -> list[LedgerRecord]:
        return self.__dict__.setdefault("_qwenlong_dropped_records", [])

    # ------------------------------------------------------------------ stages

    def _refill_state(self) -> dict:
        return self.__dict__.setdefault("_qwenlong_refill", {"prompts": 0})

    def _refill_bound(self) -> int:
        """Prompts one step may refill: batches (veRL's ``max_num_gen_batches``, else ours) x the larger of the
        training and generation batch (v1 may fetch refills one prompt at a time)."""
        groups = (self.config.get("algorithm") or {}).get("filter_groups") or {}
        batches = int(groups.get("max_num_gen_batches") or 0) or self.curriculum_config.max_gen_batches
        batch = max(int(self.config.data.get("gen_batch_size") or 0), int(self.config.data.train_batch_size))
        return batches * batch

    def _bounded_refill(self, refill: Callable[[int], Any]) -> Callable[[int], Any]:
        def refill_fn(num_prompts: int):
            state = self._refill_state()
            bound = self._refill_bound()
            if state["prompts"] + num_prompts > bound:
                cfg = self.curriculum_config
                dropped = len(self._dropped_records())
                seen = state["prompts"] + int(self.config.data.train_batch_size)
                raise DynamicSamplingExhausted(
                    f"phase {cfg.phase_number} ({cfg.phase}), step {self.global_steps}: DAPO dynamic sampling refilled "
                    f"{state['prompts']} prompts (bound {bound}: algorithm.filter_groups.max_num_gen_batches, else "
                    f"qwenlong.curriculum.max_gen_batches, x the batch) and still has no full batch; "
                    f"{dropped} of {seen} prompt groups had zero reward variance ({dropped / max(seen, 1):.0%}). "
                    "The data is too easy or too hard for this policy: filter it by difficulty, raise the bound, or "
                    "set algorithm.filter_groups.enable=false"
                )
            state["prompts"] += num_prompts
            return refill(num_prompts)

        return refill_fn

    def on_sample_begin(self):
        self._refill_state()["prompts"] = 0
        return super().on_sample_begin()

    def _build_replay_buffer(self):
        buffer = super()._build_replay_buffer()
        if getattr(buffer, "refill_fn", None) is not None and getattr(buffer, "filter_groups_metric", None):
            buffer.refill_fn = self._bounded_refill(buffer.refill_fn)
        if type(buffer) is ReplayBuffer:  # veRL's own sync buffer (not a user's custom_sampler): same object, observed
            buffer.__class__ = ObservedReplayBuffer
            buffer.observer = self._observe_discarded_groups
        else:
            logger.warning(
                "qwenlong ledger: replay buffer %s is not veRL's sync ReplayBuffer; groups it discards (DAPO "
                "filtering) are not recorded",
                type(buffer).__name__,
            )
        return buffer

    def _init_dataloader(self):
        super()._init_dataloader()
        cfg = self.curriculum_config
        if cfg.task_balance:
            from qwenlong_verl.worker.curriculum.task_balance import balanced_dataloader, dataset_tasks

            self.train_dataloader = balanced_dataloader(
                self.train_dataloader, dataset_tasks(self.train_dataset), self.config.data.train_batch_size, cfg.seed
            )

    def step(self, metrics: dict, timing_raw: dict):
        dropped = self._dropped_records()
        dropped.clear()
        batch = super().step(metrics, timing_raw)
        with marked_timer("qwenlong_ledger", timing_raw):
            records = [*dropped, *self._batch_records(batch, trained=True, metrics=metrics)]
            dropped.clear()
            if self.ledger is not None:
                self.ledger.append(records)
            metrics.update(step_metrics(records, self.curriculum_config.phase_number))
            metrics["qwenlong/refill_prompts"] = float(self._refill_state()["prompts"])
        return batch

    def _compute_metrics(self, batch, metrics: dict, timing_raw: dict, global_steps: int, epoch: int):
        result = super()._compute_metrics(batch, metrics, timing_raw, global_steps=global_steps, epoch=epoch)
        path = self.curriculum_config.resolved_metrics_path(self.config.trainer.default_local_dir)
        append_metrics(path, global_steps, metrics)
        return result

    def _load_checkpoint(self):
        result = super()._load_checkpoint()
        if self.ledger is not None:
            removed = self.ledger.truncate_after(self.global_steps)
            if removed:
                logger.warning(
                    "qwenlong ledger %s: removed %d record line(s) after step %d, written after that checkpoint",
                    self.ledger.path,
                    removed,
                    self.global_steps,
                )
        return result

    # ------------------------------------------------------------------ records

    def _observe_discarded_groups(self, meta: KVBatchMeta) -> None:
        self._dropped_records().extend(self._batch_records(meta, trained=False))

    def _batch_records(self, batch: KVBatchMeta, trained: bool, metrics: dict | None = None) -> list[LedgerRecord]:
        """One record per prompt group of a TransferQueue batch (veRL's padding rows left out; a trajectory of several
        outputs, the memory agent's, counted once by its final output); with ``metrics``, also the reward manager's
        step metrics of the batch (veRL's v1 trainer logs no reward extra info)."""
        data = tq.kv_batch_get(
            keys=batch.keys, partition_id=batch.partition_id, select_fields=[*LABEL_FIELDS, *SCORE_FIELDS]
        )
        padding = [bool(tag.get("is_padding", False)) for tag in batch.tags]
        extra_info = _as_list(data.get("extra_info"))
        labels = sample_labels(
            uid=_as_list(data.get("uid")),
            data_source=_as_list(data.get("data_source")),
            extra_info=extra_info,
            is_padding=padding,
        )
        padded = data.select("rm_scores", "response_mask").to_padded_tensor()
        reward = padded["rm_scores"].sum(dim=-1).double().numpy()
        length = padded["response_mask"].sum(dim=-1).double().numpy()
        extra_fields = _as_list(data.get("extra_fields")) if "extra_fields" in data.keys() else [None] * len(padding)
        cfg = self.curriculum_config
        passed = np.array(
            [
                _pass_value(fields, cfg.pass_key, r) >= cfg.pass_threshold
                for fields, r in zip(extra_fields, reward, strict=True)
            ]
        )
        keep = ~labels.is_padding & trajectory_turns(batch.keys).final  # one sample per trajectory: its final output
        if metrics is not None:
            metrics.update(reward_metrics(_reward_columns([f for f, k in zip(extra_fields, keep, strict=True) if k])))
        row_phase = [info.get("phase") if isinstance(info, dict) else None for info in extra_info]
        return group_records(
            phase=cfg.phase,
            phase_number=cfg.phase_number,
            step=self.global_steps,
            uid=labels.uid[keep],
            index=labels.index[keep],
            task=labels.task[keep],
            data_source=np.asarray(_as_list(data.get("data_source")), dtype=object)[keep],
            row_phase=np.asarray(row_phase, dtype=object)[keep],
            reward=reward[keep],
            passed=passed[keep],
            response_length=length[keep],
            trained=trained,
        )


def append_metrics(path: str, step: int, metrics: dict) -> None:
    """One ``{"step", "data"}`` line (veRL's file-logger format) appended and fsynced; scalars only."""
    import json
    import math
    import os

    data = {}
    for key, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        data[key] = number if math.isfinite(number) else None
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a") as handle:
        handle.write(json.dumps({"step": int(step), "data": data}, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _reward_info(extra_fields: Any) -> dict:
    fields = getattr(extra_fields, "data", extra_fields)
    info = fields.get("reward_extra_info") if isinstance(fields, dict) else None
    return info if isinstance(info, dict) else {}


def _reward_columns(extra_fields: list[Any]) -> dict[str, list[Any]]:
    """``reward_extra_info`` of each rollout as columns (a key some rollouts lack is left out)."""
    infos = [_reward_info(f) for f in extra_fields]
    keys = set.intersection(*(set(i) for i in infos)) if infos else set()
    return {key: [i[key] for i in infos] for key in sorted(keys)}


def _pass_value(extra_fields: Any, key: str, reward: float) -> float:
    """``reward_extra_info[key]`` of one rollout when the reward wrote it, else its sequence reward."""
    value = _reward_info(extra_fields).get(key) if key else None
    return float(reward) if value is None else float(value)


def _as_list(value: Any) -> list[Any]:
    """A TensorDict non-tensor column (``NonTensorStack`` or the list ``td[key]`` gives) as a plain list."""
    return list(value.tolist() if hasattr(value, "tolist") else value)
