"""pass@k difficulty in ``prepare``: the estimator, the difficulty file, bins, filters and the per-bin balance."""

from __future__ import annotations

import json
import math
import random
from fractions import Fraction

import pyarrow.parquet as pq
import pytest

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.driver.data.difficulty import (
    DifficultyFileError,
    DifficultyFilter,
    DifficultyOptionError,
    Measurement,
    bin_labels,
    bin_of,
    bin_quotas,
    load_difficulty,
    write_difficulty,
)
from qwenlong_verl.driver.data.prepare import PrepareError, prepare
from qwenlong_verl.driver.data.schema import validate_row

SENTENCE = "The harbour office recorded 1,204 arrivals and 37 delays in the spring season. "
N = 4


def exact_pass_at(n: int, c: int, k: int) -> Fraction:
    """1 - C(n-c, k) / C(n, k), directly (math.comb is 0 when n - c < k)."""
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


# ----------------------------------------------------------------------------- the estimator


def test_pass_at_k_equals_the_combinatorial_formula_everywhere_small():
    for n in range(1, 13):
        for c in range(n + 1):
            m = Measurement("x", samples=n, correct=c)
            assert m.pass_at(1) == c / n == m.pass_rate  # pass@1 is exactly the share correct
            assert m.pass_at_samples == (1.0 if c else 0.0)  # pass@n: any sample correct
            for k in range(1, n + 1):
                assert m.pass_at(k) == pytest.approx(float(exact_pass_at(n, c, k)), abs=1e-12), (n, c, k)
            # more samples drawn from the same pool can only help
            assert all(m.pass_at(k) <= m.pass_at(k + 1) + 1e-12 for k in range(1, n))


def test_pass_at_k_against_exact_fractions_for_large_n():
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randint(20, 400)
        c, k = rng.randint(0, n), rng.randint(1, n)
        got = Measurement("x", samples=n, correct=c).pass_at(k)
        assert got == pytest.approx(float(exact_pass_at(n, c, k)), rel=1e-9, abs=1e-300)
        assert 0.0 <= got <= 1.0 and math.copysign(1.0, got) == 1.0  # never -0.0


def test_unmeasured_has_no_pass_rate_not_zero():
    m = Measurement("x", samples=0, correct=0, n=8, failed=8)
    assert not m.measured and m.pass_rate is None and m.pass_at_samples is None
    assert not m.solved and not m.unsolvable
    record = m.to_record()
    assert record["measured"] is False and record["pass_rate"] is None and record["pass_at"] == {}


# ----------------------------------------------------------------------------- bins and balance


def test_bins_are_left_closed_and_the_last_holds_one():
    edges = [0.0, 0.25, 0.5, 0.75, 1.0]
    assert bin_labels(edges) == ["[0, 0.25)", "[0.25, 0.5)", "[0.5, 0.75)", "[0.75, 1]"]
    assert [bin_of(v, edges) for v in (0.0, 0.2499, 0.25, 0.5, 0.7, 0.75, 0.99, 1.0)] == [0, 0, 1, 2, 2, 3, 3, 3]


def _feasible(counts, shares, total) -> bool:
    return sum(min(c, math.floor(s * total + 1e-9)) for c, s in zip(counts, shares, strict=True)) >= total


def test_bin_quotas_respect_every_cap_and_keep_the_most_rows():
    rng = random.Random(11)
    for _ in range(400):
        bins = rng.randint(1, 5)
        counts = [rng.choice([0, rng.randint(0, 40)]) for _ in range(bins)]
        shares = [rng.choice([0.0, 0.1, 0.25, 0.3, 0.4, 0.5, 1.0]) for _ in range(bins)]
        if sum(shares) < 1:
            shares[0] = 1.0
        quotas = bin_quotas(counts, shares)
        total = sum(quotas)
        assert all(0 <= q <= c for q, c in zip(quotas, counts, strict=True))
        assert all(q <= math.floor(s * total + 1e-9) for q, s in zip(quotas, shares, strict=True)), (counts, shares)
        # maximal: no larger total fits the caps (checked by brute force)
        assert not any(_feasible(counts, shares, t) for t in range(total + 1, sum(counts) + 1)), (counts, shares)


def test_bin_quotas_examples():
    assert bin_quotas([1000, 10, 10, 10], [0.4] * 4) == [20, 10, 10, 10]  # one bin may hold 40% at most
    assert bin_quotas([10, 10, 10, 10], [0.25] * 4) == [10, 10, 10, 10]  # already balanced: nothing goes
    assert bin_quotas([9, 3, 5, 8], [0.25] * 4) == [3, 3, 3, 3]  # an exact mix: the smallest bin decides
    assert bin_quotas([9, 0, 5, 8], [0.25] * 4) == [0, 0, 0, 0]  # an exact mix with an empty bin: impossible
    assert bin_quotas([20, 0, 5, 8], [0.5] * 4) == [13, 0, 5, 8]  # caps: no bin over half; 13 of 26
    assert bin_quotas([5, 5], [1.0, 0.0]) == [5, 0]  # share 0 leaves the bin out


def test_filter_options_are_checked():
    with pytest.raises(DifficultyOptionError, match="--drop-solved, --bin-shares need --difficulty FILE"):
        DifficultyFilter(drop_solved=True, bin_shares=[1, 1, 1, 1])
    with pytest.raises(DifficultyOptionError, match="gives 3 shares for 4 bins"):
        DifficultyFilter(file="d.jsonl", bin_shares="0.5,0.5,0.5")
    with pytest.raises(DifficultyOptionError, match="sum to less than 1"):
        DifficultyFilter(file="d.jsonl", bin_shares="0.2,0.2,0.2,0.2")
    for bad in ("0.1,0.5,1", "0,0.5,0.5,1", "0,2", "0,x,1", "1"):
        with pytest.raises(DifficultyOptionError, match="--bins"):
            DifficultyFilter(file="d.jsonl", bins=bad)
    with pytest.raises(DifficultyOptionError, match="from 0 to 1"):
        DifficultyFilter(file="d.jsonl", bin_shares="1.5,0,0,0")
    assert DifficultyFilter(file="d.jsonl", bins="0,0.5,1", bin_shares="0.5,0.5").bins == [0.0, 0.5, 1.0]
    assert not DifficultyFilter().active


# ----------------------------------------------------------------------------- the difficulty file


def test_bad_lines_are_counted_and_skipped_naming_line_and_field(tmp_path, caplog):
    path = tmp_path / "difficulty.jsonl"
    good = [Measurement("a", 4, 1).to_record(), Measurement("b", 4, 4).to_record()]
    lines = [
        json.dumps(good[0]),  # 1
        "{not json",  # 2
        json.dumps({"key": "c", "samples": 4, "correct": 5}),  # 3
        json.dumps({"samples": 4, "correct": 1}),  # 4
        json.dumps(good[1]),  # 5
        json.dumps({**good[0], "correct": 2}),  # 6: key a again
        json.dumps({"key": "d", "samples": "4", "correct": 1}),  # 7
        "[1, 2]",  # 8
        json.dumps({"key": 7, "samples": 2, "correct": 0}),  # 9: a numeric id, as prepare's source_id "7"
    ]
    path.write_text("\n".join(lines) + "\n")
    table = load_difficulty(path)
    assert sorted(table.records) == ["7", "a", "b"] and table.lines == 9
    assert table.records["a"].correct == 1  # the first line of a key counts
    assert len(table.bad) == 6
    assert table.bad[0].startswith(f"{path} line 2: ") and "not valid JSON" in table.bad[0]
    assert f"{path} line 3: field 'correct'" in table.bad[1]
    assert f"{path} line 4: field 'key'" in table.bad[2]
    assert f"{path} line 6: field 'key': 'a' repeats line 1" in table.bad[3]
    assert f"{path} line 7: field 'samples'" in table.bad[4]
    assert f"{path} line 8: expected a JSON object" in table.bad[5]
    assert sum("difficulty file: skipped" in r.message for r in caplog.records) == 6


def test_unusable_files_are_one_line_errors(tmp_path):
    with pytest.raises(DifficultyFileError, match="not found: .*nope.jsonl"):
        load_difficulty(tmp_path / "nope.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DifficultyFileError, match="no records"):
        load_difficulty(empty)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"key": "a"}\nnope\n')
    with pytest.raises(DifficultyFileError) as err:
        load_difficulty(bad)
    message = str(err.value)
    assert "\n" not in message and f"{bad} line 1: field 'samples'" in message and "1 more bad lines" in message


# ----------------------------------------------------------------------------- prepare --difficulty


def raw(i: int, sentences: int) -> dict:
    return {
        "id": f"r{i:02d}",
        "documents": [{"title": f"Log {i}", "text": SENTENCE * sentences}],
        "question": f"How many arrivals were recorded in log {i}?",
        "answer": str(1000 + i),
        "task": "numeric",
    }


def correct_of(i: int) -> int | None:
    """The canned measurement: r00..r19 have i % 5 correct of 4 (0..4); r20 has no answered sample, r21 no
    record at all."""
    return None if i >= 20 else i % (N + 1)


def expected_bin(c: int) -> int:
    """Bins 0, .25, .5, .75, 1 by hand: c/4 = 0 -> 0; .25 -> 1; .5 -> 2; .75 and 1 -> 3."""
    return {0: 0, 1: 1, 2: 2, 3: 3, 4: 3}[c]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """22 raw records and their difficulty file (written through the same writer ``difficulty`` uses)."""
    root = tmp_path_factory.mktemp("difficulty")
    records = [raw(i, 2 + i % 7) for i in range(22)]
    inputs = root / "raw.jsonl"
    inputs.write_text("".join(json.dumps(r) + "\n" for r in records))
    measurements = [
        Measurement(f"r{i:02d}", samples=N, correct=correct_of(i), n=N, model="policy") for i in range(20)
    ] + [Measurement("r20", samples=0, correct=0, n=N, failed=N, model="policy")]
    measurements.append(Measurement("elsewhere", samples=N, correct=1, n=N))  # a row of another data set
    difficulty = root / "difficulty.jsonl"
    write_difficulty(difficulty, measurements)
    return root, str(inputs), str(difficulty)


def rows_of(stats) -> list[dict]:
    return [row for file in stats.phase_files for row in pq.read_table(file).to_pylist()]


def test_rows_get_pass_rates_and_the_report_counts_bins(data, tmp_path):
    _root, inputs, difficulty = data
    stats = prepare(
        [inputs], str(tmp_path / "out"), "builtin", phases=[100000], plot=False, difficulty=DifficultyFilter(difficulty)
    )
    rows = rows_of(stats)
    assert stats.rows_written == 22 and len(rows) == 22  # nothing dropped without a drop option
    for number, row in enumerate(rows, start=1):
        validate_row(row, number)
        info = row["extra_info"]
        c = correct_of(int(info["source_id"][1:]))
        if c is None:
            assert info["pass_rate"] is None and info["pass_at_k"] is None and info["pass_k"] is None
        else:
            assert info["pass_rate"] == c / N and info["pass_at_k"] == (1.0 if c else 0.0) and info["pass_k"] == N

    report = stats.difficulty
    (phase,) = report.phases
    before = [0, 0, 0, 0]
    for i in range(20):
        before[expected_bin(correct_of(i))] += 1
    assert phase.bins_before == phase.bins_after == before == [4, 4, 4, 8]
    assert (phase.measured, phase.unmeasured, phase.solved, phase.unsolvable) == (20, 2, 4, 4)
    assert (report.records, report.matched, report.unmatched, report.bad_lines) == (22, 21, 1, 0)
    assert stats.dropped == {}

    saved = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert saved["difficulty"]["phases"][0]["bins_before"] == [4, 4, 4, 8]
    assert saved["difficulty"]["labels"] == ["[0, 0.25)", "[0.25, 0.5)", "[0.5, 0.75)", "[0.75, 1]"]
    markdown = (tmp_path / "out" / "difficulty.md").read_text()
    assert "| 1 | 22 | 2 | 4 | 4 | 4 | 4 | 4 | 8 | none | 22 |" in markdown
    assert "22 records (0 bad lines skipped), 21 matched a row, 1 matched none" in markdown


def test_drop_solved_unsolvable_and_unmeasured(data, tmp_path, caplog):
    _root, inputs, difficulty = data
    options = DifficultyFilter(difficulty, drop_solved=True, drop_unsolvable=True)
    stats = prepare([inputs], str(tmp_path / "a"), "builtin", phases=[100000], plot=False, difficulty=options)
    kept = {row["extra_info"]["source_id"] for row in rows_of(stats)}
    assert kept == {f"r{i:02d}" for i in range(20) if correct_of(i) not in (0, N)} | {"r20", "r21"}
    assert stats.dropped == {"solved": 4, "unsolvable": 4} and stats.rows_written == 14
    (phase,) = stats.difficulty.phases
    assert phase.bins_before == [4, 4, 4, 8] and phase.bins_after == [0, 4, 4, 4]

    options = DifficultyFilter(difficulty, drop_unmeasured=True)
    stats = prepare([inputs], str(tmp_path / "b"), "builtin", phases=[100000], plot=False, difficulty=options)
    assert stats.dropped == {"unmeasured": 2} and stats.rows_written == 20

    # an exact mix needs rows in every bin: without the unsolvable ones the first is empty, so none is kept
    options = DifficultyFilter(difficulty, drop_unsolvable=True, drop_unmeasured=True, bin_shares="0.25,0.25,0.25,0.25")
    with pytest.raises(
        PrepareError, match=r"no usable rows .*\(22 read; dropped: bin_share 16, unsolvable 4, unmeasured 2\)"
    ):
        prepare([inputs], str(tmp_path / "c"), "builtin", phases=[100000], plot=False, difficulty=options)
    assert not (tmp_path / "c").exists()  # nothing written
    assert any("the bins [0, 0.25) are empty" in r.message for r in caplog.records)


def test_bin_shares_balance_each_phase_with_a_seeded_choice(data, tmp_path):
    _root, inputs, difficulty = data
    # two phase windows: per-phase balance, and the report per phase and in all
    edges = prepare([inputs], str(tmp_path / "plain"), "builtin", phases=[100000], plot=False)
    lengths = sorted(r["extra_info"]["input_tokens"] for r in rows_of(edges))
    split = lengths[len(lengths) // 2]
    phases = [split, lengths[-1]]

    def run(name: str, seed: int):
        options = DifficultyFilter(difficulty, drop_unsolvable=True, bin_shares="0,0.5,0.5,0.5", seed=seed)
        stats = prepare([inputs], str(tmp_path / name), "builtin", phases=phases, plot=False, difficulty=options)
        return stats, {r["extra_info"]["source_id"] for r in rows_of(stats)}

    stats, kept = run("s0", 0)
    for phase in stats.difficulty.phases:
        rows = [r for r in rows_of(stats) if r["extra_info"]["phase"] == phase.phase]
        measured = [r for r in rows if r["extra_info"]["pass_rate"] is not None]
        counts = [0, 0, 0, 0]
        for r in measured:
            counts[expected_bin(round(r["extra_info"]["pass_rate"] * N))] += 1
        assert counts == phase.bins_after
        assert all(n <= 0.5 * len(measured) for n in counts)  # no bin holds more than half of the phase
        assert counts[0] == 0  # unsolvable dropped, and the share of the first bin is 0 anyway
        total = sum(phase.bins_after)
        assert total == sum(bin_quotas([0, *phase.bins_before[1:3], phase.bins_before[3]], [0, 0.5, 0.5, 0.5]))
        assert phase.rows_out == len(rows) == total + phase.unmeasured
    assert sum(p.rows_in for p in stats.difficulty.phases) == 22
    assert stats.dropped["unsolvable"] == 4 and stats.dropped.get("bin_share", 0) == sum(
        p.dropped.get("bin_share", 0) for p in stats.difficulty.phases
    )
    assert stats.rows_written == 22 - sum(stats.dropped.values())

    again, kept_again = run("s0_again", 0)
    assert kept_again == kept  # same seed, same rows
    for name in ("phase1.parquet", "phase2.parquet", "stats.json", "difficulty.md"):
        assert (tmp_path / "s0" / name).read_bytes() == (tmp_path / "s0_again" / name).read_bytes(), name
    if stats.dropped.get("bin_share"):
        others = [run(f"s{seed}", seed)[1] for seed in range(1, 6)]
        assert any(other != kept for other in others)  # the choice follows the seed
    markdown = (tmp_path / "s0" / "difficulty.md").read_text()
    assert "| all | 22 |" in markdown and "[0.75, 1] ≤ 0.5" in markdown


def test_a_bad_line_is_counted_and_a_foreign_file_refused(data, tmp_path):
    root, inputs, difficulty = data
    with_bad = tmp_path / "with_bad.jsonl"
    with_bad.write_text(open(difficulty).read() + '{"key": "r21", "samples": 4, "correct": 9}\n')
    stats = prepare(
        [inputs],
        str(tmp_path / "a"),
        "builtin",
        phases=[100000],
        plot=False,
        difficulty=DifficultyFilter(str(with_bad)),
    )
    assert stats.difficulty.bad_lines == 1 and "line 23: field 'correct'" in stats.difficulty.bad_examples[0]
    assert "Skipped lines of the difficulty file" in (tmp_path / "a" / "difficulty.md").read_text()

    foreign = tmp_path / "foreign.jsonl"
    write_difficulty(foreign, [Measurement("x1", 4, 1), Measurement("x2", 4, 2)])
    with pytest.raises(DifficultyFileError, match="none of its 2 keys is the extra_info.source_id of an input row"):
        prepare(
            [inputs],
            str(tmp_path / "b"),
            "builtin",
            phases=[100000],
            plot=False,
            difficulty=DifficultyFilter(str(foreign)),
        )
    assert not (tmp_path / "b").exists()
    with pytest.raises(InputError, match="not found"):
        prepare(
            [inputs],
            str(tmp_path / "c"),
            "builtin",
            plot=False,
            difficulty=DifficultyFilter(str(root / "missing.jsonl")),
        )


def test_without_a_difficulty_file_rows_and_schema_do_not_change(data, tmp_path):
    _root, inputs, _difficulty = data
    stats = prepare([inputs], str(tmp_path / "out"), "builtin", phases=[100000], plot=False)
    names = pq.read_schema(stats.phase_files[0]).field("extra_info").type
    assert "pass_rate" not in [names.field(i).name for i in range(names.num_fields)]
    assert stats.difficulty is None and not (tmp_path / "out" / "difficulty.md").exists()
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["difficulty"] is None


# ----------------------------------------------------------------------------- the prepare options


def test_prepare_options_build_the_filter_and_refuse_options_without_a_file(capsys, tmp_path):
    from qwenlong_verl.driver.cli import build_parser, main
    from qwenlong_verl.driver.cli.args import build
    from qwenlong_verl.driver.cli.command import COMMANDS

    base = ["prepare", "--input", "x.jsonl", "--output", str(tmp_path / "o"), "--tokenizer", "builtin"]
    options = ["--difficulty", "d.jsonl", "--drop-solved", "--bins", "0,0.5,1", "--bin-shares", "0.5,0.5"]
    args = build_parser().parse_args([*base, *options, "--bin-seed", "3"])
    config = build(COMMANDS["prepare"].config, args, COMMANDS["prepare"].flags)
    assert config.difficulty == DifficultyFilter(
        "d.jsonl", drop_solved=True, bins=[0, 0.5, 1], bin_shares=[0.5, 0.5], seed=3
    )
    assert build(COMMANDS["prepare"].config, build_parser().parse_args(base), {}).difficulty == DifficultyFilter()

    assert main([*base, "--drop-solved"]) == 2
    assert capsys.readouterr().err == "error: --drop-solved needs --difficulty FILE (a pass@k difficulty file)\n"
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*base, "--bins", "0,2"])
    assert exit_.value.code == 2 and "--bins: --bins '0,2': need increasing pass@1 edges" in capsys.readouterr().err
