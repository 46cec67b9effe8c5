"""`make demo`'s command end to end on CPU: every stage runs for real and the report holds what it says."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from qwenlong_verl.demo import sample_responses


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, cli):
    out = tmp_path / "demo"
    proc = cli("demo", "--out", str(out), "--n", "30", timeout=300, env={"QWENLONG_JUDGE_URLS": ""})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = out / "report" / "report.md"
    assert "report:" in proc.stdout and report.name in proc.stdout
    text = report.read_text()
    for heading in ("Synthetic corpus", "Phase windows", "Retrospective transition", "Hybrid reward", "Plan"):
        assert heading in text
    for png in ("lengths.png", "difficulty.png", "rewards.png"):
        data = (out / "report" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000

    result = json.loads((out / "demo_result.json").read_text())
    assert sum(result["phase_rows"]) == 30
    assert result["planned_phases"] == 2 and len(result["commands"]) == 2
    assert all(r["agree"] == r["n"] for r in result["reward_table"]), result["reward_table"]

    carry = json.loads((out / "report" / "retrospective.json").read_text())
    assert carry["carried"] == result["carried"] > 0
    phase2 = pd.read_parquet(out / "data" / "phase2_with_retrospective.parquet")
    assert len(phase2) == result["phase_rows"][1] + result["carried"]
    carried_ids = {int(e["index"]) for e in phase2["extra_info"] if int(e["phase"]) == 1}
    assert carried_ids == set(carry["indices"])
    assert "phase2_with_retrospective.parquet" in result["commands"][1]


@pytest.mark.parametrize(
    "task, gold, choices", [("numeric", "12.5", None), ("choice", "B", ["1", "2", "3", "4"]), ("qa", "Kiswiom", None)]
)
def test_sample_responses_are_well_formed(task, gold, choices):
    responses = sample_responses(gold, task, choices)
    assert responses["correct"][1] == 1.0 and gold in responses["correct"][0]
    wrong = responses["wrong"][0]
    assert gold not in wrong.split("answer is")[-1]
    assert "</think>" not in responses["unfinished think"][0]
