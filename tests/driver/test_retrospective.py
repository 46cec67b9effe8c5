"""Retrospective sampling: inclusion probability proportional to difficulty, deterministic, the carried rows."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from qwenlong_verl.driver.recipe import RetrospectiveConfig
from qwenlong_verl.driver.retrospective import (
    Difficulty,
    carry_over,
    choose_carry,
    example_difficulties,
    inclusion_probabilities,
    read_rows,
    split_validation,
    systematic_draw,
    write_rows,
)
from qwenlong_verl.worker.curriculum.ledger import LedgerRecord


def rec(index, mean_reward, pass_rate=None, n=8, step=1, phase="p1", task="qa"):
    return LedgerRecord(
        phase=phase,
        step=step,
        uid=f"u{index}-{step}",
        index=index,
        task=task,
        data_source="ds",
        n=n,
        mean_reward=mean_reward,
        reward_std=0.1,
        pass_rate=mean_reward if pass_rate is None else pass_rate,
        mean_response_length=10.0,
        retro=False,
        trained=True,
    )


def diffs(values: dict[int, float]) -> dict[int, Difficulty]:
    return {i: Difficulty(i, "p1", "qa", 8, 1.0 - d, 1.0 - d) for i, d in values.items()}


def test_inclusion_probabilities():
    pi = inclusion_probabilities([1, 2, 3, 0, 4], 2)
    np.testing.assert_allclose(pi, [0.2, 0.4, 0.6, 0.0, 0.8])
    capped = inclusion_probabilities([10, 1, 1, 1], 2)  # 10 would get 2*10/13 > 1: certain, the rest share 1
    np.testing.assert_allclose(capped, [1.0, 1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(inclusion_probabilities([5, 5, 0], 2), [1.0, 1.0, 0.0])
    assert inclusion_probabilities([1, 2], 0).sum() == 0
    with pytest.raises(ValueError, match="cannot draw 3 of 2"):
        inclusion_probabilities([1, 1, 0], 3)
    with pytest.raises(ValueError, match="finite and >= 0"):
        inclusion_probabilities([1, -1], 1)


def test_systematic_draw_has_the_exact_size_and_no_repeats():
    rng = np.random.default_rng(0)
    for k in range(0, 7):
        pi = inclusion_probabilities(rng.uniform(0.01, 1, size=9), k)
        for _ in range(50):
            picked = systematic_draw(pi, rng)
            assert len(picked) == k == len(set(picked.tolist()))


def test_draws_are_proportional_to_difficulty_over_many_seeds():
    """Stated tolerance: every example's inclusion frequency over N seeds is within 4.5 binomial standard errors
    of k·d/Σd (a false alarm over the 16 examples has probability < 1e-4)."""
    difficulty = {
        100 + i: d
        for i, d in enumerate([0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0])
    }
    table = diffs(difficulty)
    k, runs = 4, 8000
    counts = dict.fromkeys(difficulty, 0)
    for seed in range(runs):
        cfg = RetrospectiveConfig(ratio=k / 10, seed=seed)
        picked, report = choose_carry(table, list(difficulty), own_rows=10, cfg=cfg, phase="p2", phase_number=2)
        assert report.carried == len(picked) == k
        for i in picked:
            counts[i] += 1
    d = np.array(list(difficulty.values()))
    pi = k * d / d.sum()
    freq = np.array([counts[i] for i in difficulty]) / runs
    se = np.sqrt(pi * (1 - pi) / runs)
    assert np.all(np.abs(freq - pi) <= 4.5 * se), np.c_[d, pi, freq]
    # hardest vs easiest: about 20x as often (within the same tolerance on the ratio of means)
    assert 12 < freq[-1] / freq[0] < 35


def test_the_draw_is_deterministic_per_seed():
    table = diffs({i: (i % 7 + 1) / 8 for i in range(40)})
    cfg = RetrospectiveConfig(ratio=0.5, seed=3)
    a, ra = choose_carry(table, list(range(40)), own_rows=20, cfg=cfg, phase="p2", phase_number=2)
    b, rb = choose_carry(table, list(reversed(range(40))), own_rows=20, cfg=cfg, phase="p2", phase_number=2)
    assert a == b and ra == rb and len(a) == 10
    c, _ = choose_carry(
        table, list(range(40)), own_rows=20, cfg=RetrospectiveConfig(ratio=0.5, seed=4), phase="p2", phase_number=2
    )
    d, _ = choose_carry(table, list(range(40)), own_rows=20, cfg=cfg, phase="p3", phase_number=3)
    assert c != a and d != a  # another seed, another phase: another draw


def test_solved_are_dropped_and_zero_difficulty_is_never_drawn():
    table = diffs({1: 0.0, 2: 0.0, 3: 0.5, 4: 0.5, 5: 0.9})  # 1 and 2 solved (every rollout passed)
    cfg = RetrospectiveConfig(ratio=1.0, weighting="uniform", drop_solved=True)
    picked, report = choose_carry(table, [1, 2, 3, 4, 5], own_rows=10, cfg=cfg, phase="p2", phase_number=2)
    assert picked == [3, 4, 5] and report.solved_dropped == 2 and report.target == 10 and report.carried == 3
    cfg = RetrospectiveConfig(ratio=1.0, weighting="uniform", drop_solved=False)
    picked, _ = choose_carry(table, [1, 2, 3, 4, 5], own_rows=10, cfg=cfg, phase="p2", phase_number=2)
    assert picked == [1, 2, 3, 4, 5]  # uniform weighting may carry solved examples when asked to keep them
    cfg = RetrospectiveConfig(ratio=1.0, weighting="difficulty", drop_solved=False)
    picked, report = choose_carry(table, [1, 2, 3, 4, 5], own_rows=10, cfg=cfg, phase="p2", phase_number=2)
    assert picked == [3, 4, 5] and report.zero_weight == 2
    assert report.mean_difficulty_carried == pytest.approx((0.5 + 0.5 + 0.9) / 3)
    assert "carried 3 hard example(s)" in report.summary()


def test_example_difficulties_pool_rollouts_of_the_latest_phase():
    p1 = [rec(1, 0.0, n=4), rec(1, 1.0, n=12, step=2), rec(2, 0.5), rec(None, 0.0)]
    p2 = [rec(2, 0.9, phase="p2", task="numeric"), rec(3, 1.0, phase="p2")]
    out = example_difficulties([("p1", p1), ("p2", p2)])
    assert set(out) == {1, 2, 3}
    assert out[1].mean_reward == pytest.approx(0.75) and out[1].rollouts == 16 and out[1].phase == "p1"
    assert out[2].phase == "p2" and out[2].task == "numeric" and out[2].difficulty == pytest.approx(0.1)
    assert out[3].solved and out[3].difficulty == 0.0
    assert Difficulty(9, "p", "qa", 1, mean_reward=1.4, pass_rate=1.0).difficulty == 0.0  # clipped to [0, 1]
    assert Difficulty(9, "p", "qa", 1, mean_reward=-0.3, pass_rate=0.0).difficulty == 1.0


def _rows(indices, phase, task="qa"):
    return [
        {
            "data_source": "ds",
            "prompt": [{"role": "user", "content": f"q{i}"}],
            "ability": task,
            "reward_model": {"style": "rule", "ground_truth": str(i)},
            "extra_info": {"index": i, "task": task, "phase": phase},
        }
        for i in indices
    ]


def test_carry_over_reads_earlier_files_and_ledgers(tmp_path):
    p1 = tmp_path / "phase1.parquet"
    write_rows(_rows(range(0, 20), phase=1), p1)
    own_file = tmp_path / "phase2.parquet"
    write_rows(_rows(range(100, 110), phase=2), own_file)
    ledger = [rec(i, mean_reward=0.0 if i < 5 else (1.0 if i >= 15 else 0.5)) for i in range(0, 18)]
    ledger.append(rec(999, 0.0))  # an example no earlier file has any more
    own = read_rows([own_file])
    cfg = RetrospectiveConfig(ratio=0.8, seed=1)
    carried, report = carry_over(own, [("p1", 1, [str(p1)], ledger)], cfg, "p2", 2)
    indices = [r["extra_info"]["index"] for r in carried]
    assert len(carried) == report.carried == report.target == 8
    assert set(indices) <= set(range(0, 15))  # 15..17 are solved, 18..19 never drawn
    assert report.solved_dropped == 3 and report.unseen == 2 and report.no_row == 1 and report.candidates == 18
    assert all(r["extra_info"]["phase"] == 1 for r in carried)
    again, _ = carry_over(own, [("p1", 1, [str(p1)], ledger)], cfg, "p2", 2)
    assert again == carried


def test_carry_over_marks_the_origin_phase_when_rows_lack_it(tmp_path):
    rows = _rows(range(5), phase=1)
    for r in rows:
        del r["extra_info"]["phase"]
    p1 = tmp_path / "explicit.parquet"
    write_rows(rows, p1)
    carried, _ = carry_over(
        _rows([50], phase=2),
        [("p1", 1, [str(p1)], [rec(i, 0.2) for i in range(5)])],
        RetrospectiveConfig(ratio=2.0),
        "p2",
        2,
    )
    assert len(carried) == 2 and all(r["extra_info"]["phase"] == 1 for r in carried)
    out = tmp_path / "train.parquet"
    write_rows(carried, out, like=[p1])  # the source schema has no extra_info.phase: inferred, marker kept
    assert [r["extra_info"]["phase"] for r in read_rows([out])] == [1, 1]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_write_rows_keeps_the_source_schema_when_it_fits(tmp_path):
    src = tmp_path / "src.parquet"
    write_rows(_rows([1, 2], phase=1), src)
    out = tmp_path / "out.parquet"
    write_rows(_rows([3], phase=1), out, like=[src])
    assert pq.read_schema(out) == pq.read_schema(src)


def test_rows_without_an_index_are_refused(tmp_path):
    rows = _rows([1], phase=1)
    del rows[0]["extra_info"]["index"]
    p1 = tmp_path / "p1.parquet"
    write_rows(rows, p1)
    with pytest.raises(ValueError, match="no integer extra_info.index"):
        carry_over(_rows([5], 2), [("p1", 1, [str(p1)], [])], RetrospectiveConfig(), "p2", 2)


def test_split_validation():
    rows = _rows(range(20), phase=1)
    train, val = split_validation(rows, 5, seed=2)
    assert len(train) == 15 and len(val) == 5
    assert sorted(r["extra_info"]["index"] for r in train + val) == list(range(20))
    assert split_validation(rows, 5, seed=2) == (train, val)
    with pytest.raises(ValueError, match="cannot hold out 20 validation rows of 20"):
        split_validation(rows, 20, seed=0)


@pytest.mark.parametrize("damage", ["empty", "truncated", "not_parquet", "corrupt_pages"])
def test_a_broken_parquet_file_is_one_line_naming_it(tmp_path, damage):
    from qwenlong_verl.common.errors import InputError
    from qwenlong_verl.driver.retrospective import count_rows, read_table

    good = tmp_path / "good.parquet"
    write_rows([{"prompt": "x" * 50, "extra_info": {"index": i}} for i in range(2000)], good)
    data = good.read_bytes()
    broken = tmp_path / f"{damage}.parquet"
    if damage == "corrupt_pages":
        data = data[:100] + b"\0" * 2000 + data[2100:]  # footer intact, pages garbage
    broken.write_bytes(
        {"empty": b"", "truncated": data[: len(data) // 2], "not_parquet": b"id,prompt\n1,x\n"}.get(damage, data)
    )
    readers = [lambda: read_rows([good, broken]), lambda: read_table(broken, columns=["extra_info"])]
    if damage != "corrupt_pages":  # the footer alone is readable there
        readers.append(lambda: count_rows(broken))
    for read in readers:
        with pytest.raises(InputError) as caught:
            read()
        message = str(caught.value)
        assert message.startswith(f"{broken}: not a readable parquet file") and "\n" not in message
        assert "rerun `qwenlong-verl prepare`" in message
    assert len(read_rows([good])) == 2000 and count_rows(good) == 2000
