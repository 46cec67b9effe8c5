"""The difficulty ledger: records per group, metrics, append-only file cut back exactly on resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qwenlong_verl.worker.curriculum.ledger import DifficultyLedger, LedgerRecord, group_records, step_metrics


def _records(step: int, phase_number: int = 2, trained: bool = True) -> list[LedgerRecord]:
    # three groups of n=4: g1 (qa, own phase), g2 (numeric, carried from phase 1), g3 (qa, all wrong)
    uid = ["g1"] * 4 + ["g2"] * 4 + ["g3"] * 4
    return group_records(
        phase="long",
        phase_number=phase_number,
        step=step,
        uid=uid,
        index=[10] * 4 + [11] * 4 + [12] * 4,
        task=["qa"] * 4 + ["numeric"] * 4 + ["qa"] * 4,
        data_source=["hotpotqa"] * 4 + ["docmath"] * 4 + ["musique"] * 4,
        row_phase=[2] * 4 + [1] * 4 + [None] * 4,
        reward=[1.0, 0.0, 1.0, 0.5, 0.2, 0.2, 0.2, 0.2, 0.0, 0.0, 0.0, 0.0],
        passed=[True, False, True, False, False, False, True, False, False, False, False, False],
        response_length=[10, 20, 30, 40, 5, 5, 5, 5, 1, 2, 3, 4],
        trained=trained,
    )


def test_group_records_summarise_each_group():
    g1, g2, g3 = _records(step=7)
    assert (g1.uid, g1.index, g1.task, g1.data_source, g1.n, g1.step) == ("g1", 10, "qa", "hotpotqa", 4, 7)
    assert g1.mean_reward == pytest.approx(0.625)
    assert g1.reward_std == pytest.approx(np.std([1.0, 0.0, 1.0, 0.5]))
    assert g1.pass_rate == 0.5 and g1.mean_response_length == 25.0
    assert not g1.retro and g2.retro and not g3.retro  # extra_info.phase 1 < phase 2; missing phase: not carried
    assert g2.reward_std == 0.0 and g2.pass_rate == 0.25
    assert g3.mean_reward == 0.0 and g3.trained


def test_group_records_keep_first_appearance_order_and_check_lengths():
    recs = group_records(
        phase="p",
        phase_number=1,
        step=1,
        uid=["b", "a", "b", "a"],
        index=[2, 1, 2, 1],
        task=["qa"] * 4,
        data_source=["x"] * 4,
        row_phase=[1] * 4,
        reward=[1, 0, 1, 0],
        passed=[1, 0, 1, 0],
        response_length=[1, 1, 1, 1],
        trained=False,
    )
    assert [r.uid for r in recs] == ["b", "a"] and [r.mean_reward for r in recs] == [1.0, 0.0]
    with pytest.raises(ValueError, match="'reward' has 3 entries for 4 rollouts"):
        group_records(
            phase="p",
            phase_number=1,
            step=1,
            uid=["a"] * 4,
            index=[1] * 4,
            task=["qa"] * 4,
            data_source=["x"] * 4,
            row_phase=[1] * 4,
            reward=[1, 0, 1],
            passed=[1] * 4,
            response_length=[1] * 4,
            trained=True,
        )


def test_step_metrics():
    trained = _records(step=3)
    dropped = _records(step=3, trained=False)[2:]  # the all-wrong group again, left out of the update
    m = step_metrics([*dropped, *trained], phase_number=2)
    assert m["qwenlong/phase"] == 2.0 and m["qwenlong/ledger_records"] == 4.0
    assert m["qwenlong/reward/qa"] == pytest.approx(4 * 0.625 / 12)  # g1, g3 and the dropped g3: 12 rollouts
    assert m["qwenlong/reward/numeric"] == pytest.approx(0.2)
    assert m["qwenlong/pass_rate/qa"] == pytest.approx(2 / 12)
    assert m["qwenlong/zero_var_group_share"] == pytest.approx(3 / 4)  # g2, g3 and the dropped g3
    assert m["qwenlong/retro_share"] == pytest.approx(1 / 3)
    assert m["qwenlong/task_share/qa"] == pytest.approx(2 / 3) and m["qwenlong/task_share/numeric"] == pytest.approx(
        1 / 3
    )
    assert m["qwenlong/dropped_groups"] == 1.0
    assert step_metrics([], phase_number=1) == {"qwenlong/phase": 1.0, "qwenlong/ledger_records": 0.0}


def test_append_read_and_json_lines(tmp_path):
    ledger = DifficultyLedger(tmp_path / "ck" / "difficulty_ledger.jsonl")
    assert ledger.read() == [] and ledger.truncate_after(0) == 0
    assert ledger.append(_records(1)) == 3 and ledger.append([]) == 0
    ledger.append(_records(2))
    lines = ledger.path.read_text().splitlines()
    assert len(lines) == 6
    assert json.loads(lines[0])["uid"] == "g1" and json.loads(lines[4])["step"] == 2
    assert ledger.read() == [*_records(1), *_records(2)]
    assert ledger.steps() == [1, 2]


def test_truncate_after_resume_drops_later_steps_and_a_torn_line(tmp_path):
    ledger = DifficultyLedger(tmp_path / "l.jsonl")
    for step in (1, 2, 3, 4):
        ledger.append(_records(step))
    with open(ledger.path, "a") as handle:  # a crash in the middle of step 5's write
        handle.write(_records(5)[0].to_json()[:40])
    assert len(ledger.read()) == 12  # the torn line is skipped when reading
    removed = ledger.truncate_after(2)  # veRL resumed from global_step_2
    assert removed == 3 + 3 + 1
    assert ledger.steps() == [1, 2]
    ledger.append(_records(3))  # the resumed run writes step 3 again: once
    assert ledger.steps() == [1, 2, 3]
    assert [r.step for r in ledger.read()] == [1] * 3 + [2] * 3 + [3] * 3
    assert [p.name for p in tmp_path.iterdir()] == ["l.jsonl"]  # no temporary file left
    mtime = ledger.path.stat().st_mtime_ns
    assert ledger.truncate_after(3) == 0 and ledger.path.stat().st_mtime_ns == mtime  # nothing to do: untouched


def test_resume_from_scratch_empties_a_stale_ledger(tmp_path):
    ledger = DifficultyLedger(tmp_path / "l.jsonl")
    ledger.append(_records(1))
    assert ledger.truncate_after(0) == 3 and ledger.read() == []


def test_record_from_dict_names_missing_fields():
    data = json.loads(_records(1)[0].to_json())
    del data["pass_rate"]
    with pytest.raises(ValueError, match="lacks pass_rate"):
        LedgerRecord.from_dict(data)


def test_task_labels_from_rows_name_the_records_and_the_metric_keys():
    """Five task labels (from ``extra_info.task``, as the trainer stage reads them) give five per-task metric
    families; a row without a label is recorded under its answer type."""
    from qwenlong_verl.worker.algos.sample_labels import sample_labels

    infos = [
        {"task": "numerical", "answer_type": "numeric"},
        {"task": "Multi-Hop", "answer_type": "qa"},
        {"task": "temporal", "answer_type": "numeric"},
        {"task": "niah", "answer_type": "qa"},
        {"task": "dialogue_niah", "answer_type": "choice"},
        {},
    ]
    uid = [f"g{i}" for i in range(len(infos)) for _ in range(2)]
    sources = ["qwenlong_synth"] * 10 + ["docmath_x"] * 2
    labels = sample_labels(uid, sources, [dict(info) for info in infos for _ in range(2)])
    records = group_records(
        phase="p",
        phase_number=1,
        step=1,
        uid=uid,
        index=[i for i in range(len(infos)) for _ in range(2)],
        task=labels.task.tolist(),
        data_source=sources,
        row_phase=[1] * len(uid),
        reward=[1.0, 0.0] * len(infos),
        passed=[True, False] * len(infos),
        response_length=[3] * len(uid),
        trained=True,
    )
    expected = ["numerical", "multi_hop", "temporal", "niah", "dialogue_niah", "numeric"]
    assert [rec.task for rec in records] == expected
    m = step_metrics(records, phase_number=1)
    for label in expected:
        assert m[f"qwenlong/reward/{label}"] == 0.5 and m[f"qwenlong/task_share/{label}"] == pytest.approx(1 / 6)
