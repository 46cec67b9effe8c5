"""The memory agent of QwenLong-L1.5 (§2.3) as a veRL agent loop, and what the trainer mode does for it.

* :mod:`~qwenlong_verl.worker.agent.config` — ``qwenlong.memory``: chunk, memory, plan and answer budgets.
* :mod:`~qwenlong_verl.worker.agent.query` — a dataset row as document, q_core and q_inst.
* :mod:`~qwenlong_verl.worker.agent.prompts` — the memory-update and answer prompts, and reading a memory reply.
* :mod:`~qwenlong_verl.worker.agent.chunks` — the chunk schedule and the budget cut (plain functions).
* :mod:`~qwenlong_verl.worker.agent.episode` — one trajectory as a plain async function over ``generate`` and the
  tokenizer (no veRL, no torch): what ``eval --agent memory`` runs.
* :mod:`~qwenlong_verl.worker.agent.episode` — one trajectory's steps as a plain async function (training and eval).
* :mod:`~qwenlong_verl.worker.agent.memory_loop` — the agent loop ``qwenlong_memory`` (why it needs no fork: there).
* :mod:`~qwenlong_verl.worker.agent.record` — what each output tells the trainer.
* :mod:`~qwenlong_verl.worker.agent.turns` — trajectories of a training batch from veRL's keys.
* :mod:`~qwenlong_verl.worker.agent.trainer_stages` — the ``qwenlong/memory_*`` step metrics.

Nothing is imported here: the plugin imports :mod:`memory_loop` from a veRL post-import hook.
"""
