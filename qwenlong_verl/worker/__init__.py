"""Code veRL imports inside its own processes: the TaskRunner and every Ray worker.

* :mod:`.plugin` — the ``verl.plugins`` entry point: registers our names into veRL's registries, cheaply.
* :mod:`.trainer` — the v1 trainer mode ``qwenlong`` and its stages (:mod:`.curriculum`, :mod:`.algos`).
* :mod:`.rewards` — answer extraction, rule verifiers, the judge client, ``compute_score`` and the reward manager.
* :mod:`.algos` — task-norm advantage, negative-gradient clipping, AEPO.
* :mod:`.curriculum` — the difficulty ledger, task-balanced sampler and the trainer-mode settings.
* :mod:`.cpu_backend` — the CPU platform and HF rollout, only with ``VERL_PLATFORM=cpu``.

Nothing here imports :mod:`qwenlong_verl.driver`; both sides share only :mod:`qwenlong_verl.common`. Nothing is
imported by this ``__init__``: every Ray worker imports veRL, and veRL imports the plugin.
"""
