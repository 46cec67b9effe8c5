"""pass@k against the closed form, brute-force enumeration, and at sizes where factorials overflow."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qwenlong_verl.driver.eval.scoring import (
    Outcome,
    default_ks,
    is_correct,
    length_buckets,
    pass_at_k,
    summarize,
)


def closed_form(n: int, c: int, k: int) -> Fraction:
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


def brute_force(n: int, c: int, k: int) -> Fraction:
    """Share of all k-subsets of n samples (c correct) that contain a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return Fraction(sum(any(samples[i] for i in s) for s in subsets), len(subsets))


@pytest.mark.parametrize("n", range(1, 9))
def test_matches_brute_force_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(float(brute_force(n, c, k)), abs=1e-12), (n, c, k)


@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_matches_closed_form(args):
    n, c, k = args
    assert pass_at_k(n, c, k) == pytest.approx(float(closed_form(n, c, k)), rel=1e-12, abs=1e-15)


def test_edge_values():
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 6, 5) == 1.0  # fewer than k wrong samples: any k-subset holds a correct one
    assert pass_at_k(8, 3, 1) == pytest.approx(3 / 8)  # pass@1 is the plain success rate


def test_numerically_stable_where_factorials_overflow():
    # C(20000, 10000) has ~6000 digits: no float can hold it, the product form is exact to 1e-12.
    n, c, k = 20000, 7, 10000
    assert pass_at_k(n, c, k) == pytest.approx(float(closed_form(n, c, k)), rel=1e-12)
    # a tiny probability keeps its relative precision (1 - p would round to 1)
    tiny = pass_at_k(10**7, 1, 1)
    assert tiny == pytest.approx(1e-7, rel=1e-9)


@pytest.mark.parametrize("n, c, k", [(0, 0, 1), (5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)])
def test_invalid_arguments(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_default_ks():
    assert default_ks(1) == [1]
    assert default_ks(8) == [1, 2, 4, 8]
    assert default_ks(6) == [1, 2, 4, 6]


def test_is_correct():
    assert is_correct(True) and is_correct(1) and is_correct(1.0)
    assert not is_correct(False) and not is_correct(0.0) and not is_correct(None) and not is_correct("x")


def _items():
    return [
        {"id": "a/1", "benchmark": "a", "subset": "", "input_tokens": 100},
        {"id": "a/2", "benchmark": "a", "subset": "", "input_tokens": 5000},
        {"id": "b/1", "benchmark": "b", "subset": "s1", "input_tokens": 9000},
        {"id": "b/2", "benchmark": "b", "subset": "s2", "input_tokens": None},
    ]


def test_summary_accuracy_pass_at_k_and_average():
    n = 4
    correct = {"a/1": 4, "a/2": 1, "b/1": 2, "b/2": 0}
    results = {
        (i, k): Outcome(
            correct=k < c, generated=True, scored=True, rule_correct=k < c and k == 0, response_tokens=10 * (k + 1)
        )
        for i, c in correct.items()
        for k in range(n)
    }
    results[("b/2", 3)] = Outcome(request_failed=True)
    rows = {r.name: r for r in summarize(_items(), results, n)}
    assert list(rows) == ["a", "b", "b/s1", "b/s2", "average"]
    a = rows["a"]
    assert a.accuracy == pytest.approx(5 / 8)
    assert a.pass_at[1] == pytest.approx(5 / 8)
    assert a.pass_at[2] == pytest.approx((1.0 + float(closed_form(4, 1, 2))) / 2)
    assert a.pass_at[4] == pytest.approx(1.0)
    assert a.rule_accuracy == pytest.approx(2 / 8)
    assert a.response_tokens_mean == pytest.approx(25.0) and a.response_tokens_max == 40
    b = rows["b"]
    assert b.accuracy == pytest.approx(2 / 8) and b.request_failures == 1 and b.unfinished == 1
    assert rows["b/s1"].accuracy == pytest.approx(0.5) and rows["b/s2"].accuracy == 0.0
    avg = rows["average"]
    assert avg.accuracy == pytest.approx((5 / 8 + 2 / 8) / 2) and avg.benchmarks == ["a", "b"]


def test_length_buckets():
    n = 2
    results = {(i, k): Outcome(correct=(i != "a/2")) for i in ("a/1", "a/2", "b/1", "b/2") for k in range(n)}
    rows = length_buckets(_items(), results, n, edges=[4096, 8192])
    got = {(r.benchmark, r.label): (r.items, r.accuracy) for r in rows}
    assert got == {
        ("all", "0-4K"): (1, 1.0),
        ("all", "4K-8K"): (1, 0.0),
        ("all", ">8K"): (1, 1.0),
        ("a", "0-4K"): (1, 1.0),
        ("a", "4K-8K"): (1, 0.0),
        ("b", ">8K"): (1, 1.0),
    }
