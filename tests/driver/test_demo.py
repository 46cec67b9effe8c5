"""The demo's sample responses (the demo end to end runs in test_cpu_e2e.py, on the real training run)."""

from __future__ import annotations

import pytest

from qwenlong_verl.driver.demo import sample_responses


@pytest.mark.parametrize(
    "task, gold, choices", [("numeric", "12.5", None), ("choice", "B", ["1", "2", "3", "4"]), ("qa", "Kiswiom", None)]
)
def test_sample_responses_are_well_formed(task, gold, choices):
    responses = sample_responses(gold, task, choices)
    assert responses["correct"][1] == 1.0 and gold in responses["correct"][0]
    wrong = responses["wrong"][0]
    assert gold not in wrong.split("answer is")[-1]
    assert "</think>" not in responses["unfinished think"][0]
