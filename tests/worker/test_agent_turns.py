"""Trajectories of a v1 batch from veRL's TransferQueue keys (worker/agent/turns.py)."""

from __future__ import annotations

import numpy as np
import pytest

from qwenlong_verl.worker.agent.turns import trajectory_turns


def test_final_rows_generations_and_padding():
    keys = ["u1_0_1", "u1_0_0", "u1_0_2", "u1_1_0", "u2_0_0", "u2_0_1", "pad9f_0_0", "pad9f_1_0"]
    turns = trajectory_turns(keys)
    assert turns.trajectory.tolist() == ["u1_0", "u1_0", "u1_0", "u1_1", "u2_0", "u2_0", "pad9f_0", "pad9f_1"]
    assert turns.final_row.tolist() == [2, 2, 2, 3, 5, 5, 6, 7]
    assert turns.final.tolist() == [False, False, True, True, False, True, True, True]
    assert turns.generations.tolist() == [3, 3, 3, 1, 2, 2, 1, 1]
    assert turns.multi
    labels = turns.on_final(["qa"] * 8)
    assert labels.tolist() == [None, None, "qa", "qa", None, "qa", "qa", "qa"]


def test_single_turn_batches_are_unchanged():
    keys = [f"uid-{i}_{s}_0" for i in range(3) for s in range(4)]  # uids may hold dashes, veRL splits from the right
    turns = trajectory_turns(keys)
    assert turns.final.all() and not turns.multi
    assert np.array_equal(turns.final_row, np.arange(12))


def test_a_foreign_key_is_refused():
    with pytest.raises(ValueError, match="not veRL's"):
        trajectory_turns(["justauid"])
