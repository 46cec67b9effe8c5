"""Long-context RL algorithms of QwenLong-L1.5 on veRL's own extension points.

* :mod:`~qwenlong_verl.worker.algos.config` — ``qwenlong.algos`` settings and the plan-time checks.
* :mod:`~qwenlong_verl.worker.algos.task_norm` — task-specific advantage, registered as ``grpo_task_norm``.
* :mod:`~qwenlong_verl.worker.algos.entropy_mask` — negative-gradient clipping and the AEPO controller (pure tensors).
* :mod:`~qwenlong_verl.worker.algos.sample_labels` — per-sample ``(uid, index, task)`` read from TransferQueue.
* :mod:`~qwenlong_verl.worker.algos.trainer_stages` — the v1 trainer-stage mixin that wires them into a run.

No policy-loss mode is registered: veRL 0.9.1 hands a loss function no entropy and no batch, so the
entropy-dependent rules run as a trainer stage on the advantages (see :mod:`entropy_mask`).

Nothing is imported here: the plugin imports :mod:`task_norm` from a veRL post-import hook, and every
other module is loaded only by the process that uses it.
"""
