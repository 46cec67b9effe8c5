"""Phased curriculum: difficulty ledger, retrospective carry-over and task-balanced prompt batches.

* :mod:`~qwenlong_verl.worker.curriculum.config` — ``qwenlong.curriculum``, the per-run settings of the trainer mode.
* :mod:`~qwenlong_verl.worker.curriculum.ledger` — one record per prompt per step, append-only, truncated on resume.
* :mod:`~qwenlong_verl.driver.retrospective` — hard examples of earlier phases carried into the next one.
* :mod:`~qwenlong_verl.worker.curriculum.task_balance` — a resumable sampler with an equal count per task per batch.
* :mod:`~qwenlong_verl.worker.curriculum.trainer_stages` — the v1 trainer stages that write the ledger and metrics.
* :mod:`~qwenlong_verl.driver.layout` — where a recipe's run keeps its data, checkpoints and state.

Nothing is imported here: the trainer mode imports what it needs when veRL imports its v1 trainer, and
``qwenlong-verl train`` imports the rest.
"""
