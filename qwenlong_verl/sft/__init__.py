"""Warm-up SFT before RL: QA triplets to veRL's multi-turn SFT parquet, and the ``kind: sft`` recipe plan.

Kept import-free: import :mod:`qwenlong_verl.sft.data` or :mod:`qwenlong_verl.sft.planning` as needed.
"""
