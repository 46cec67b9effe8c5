"""Code only the ``qwenlong-verl`` command runs: it never enters a veRL process.

Recipe format (:mod:`.recipe`), run layout (:mod:`.layout`), config composition (:mod:`.compose`), phase kinds
(:mod:`.kinds`), plans (:mod:`.plan`), phase execution and its state (:mod:`.run`), data preparation
(:mod:`.data`), evaluation (:mod:`.eval`), the SFT warm-up data (:mod:`.sft`) and the CLI (:mod:`.cli`).
It may import :mod:`qwenlong_verl.worker` (e.g. the scorers for ``score`` and ``eval``), never the reverse.
"""
