"""Structured golds (JSON / Python-literal lists and objects) are compared as structures by the QA rule.

Loong's clustering golds are objects of groups; a policy that writes them compactly, in another key order or
with the members of a group in another order is right, one that adds a group or moves a member is wrong, and
everything that is not a structure is scored exactly as before.
"""

from __future__ import annotations

import json
import time

import pytest

from qwenlong_verl.worker.rewards import compute_score
from qwenlong_verl.worker.rewards.qa import (
    MAX_STRUCTURE_CHARS,
    MAX_STRUCTURE_DEPTH,
    parse_structure,
    structure_key,
    verify_qa,
)

GOLD = json.dumps({"uses RL": ["Reward Shaping", "Policy Search"], "no RL": ["Sparse Attention"]}, ensure_ascii=False)
T = "<think>\nGroup them.\n</think>\n\n"


def verdict(prediction: str, *golds: str):
    return verify_qa(prediction, list(golds), {}, True)


@pytest.mark.parametrize(
    "prediction",
    [
        '{"uses RL":["Reward Shaping","Policy Search"],"no RL":["Sparse Attention"]}',  # compact
        '{"no RL": ["Sparse Attention"], "uses RL": ["Reward Shaping", "Policy Search"]}',  # key order
        '{"uses RL": ["Policy Search", "Reward Shaping"], "no RL": ["Sparse Attention"]}',  # members of a group
        "{'uses RL': ['reward shaping', 'policy search.'], 'no RL': ('Sparse Attention',)}",  # Python literal, case
        '```json\n{"uses RL": ["Reward Shaping", "Policy Search"],\n "no RL": ["Sparse Attention"]}\n```',  # fenced
    ],
)
def test_the_same_structure_written_differently_is_right(prediction):
    result = verdict(prediction, GOLD)
    assert (result.score, result.reason) == (1.0, "structure")


@pytest.mark.parametrize(
    "prediction",
    [
        '{"uses RL": ["Reward Shaping"], "no RL": ["Sparse Attention", "Policy Search"]}',  # a member moved
        '{"uses RL": ["Reward Shaping", "Policy Search"], "no RL": ["Sparse Attention"], "other": ["X"]}',  # superset
        '{"uses RL": ["Reward Shaping", "Policy Search", "Policy Search"], "no RL": ["Sparse Attention"]}',  # multiset
        '["Reward Shaping", "Policy Search", "Sparse Attention"]',  # the groups lost
    ],
)
def test_a_different_structure_is_wrong_and_still_judgeable(prediction):
    result = verdict(prediction, GOLD)
    assert (result.score, result.reason, result.judgeable) == (0.0, "structure_mismatch", True)


def test_a_superset_is_no_longer_a_sub_exact_match():
    """As text, the gold's words are inside a prediction with an extra group, which sub-exact match accepted."""
    gold, extra = '{"a": ["x"]}', '{"a": ["x"], "b": ["y"]}'
    assert verify_qa("a x b y", ["a x"], {}, True).score == 1.0  # the text rule on the same words
    assert verdict(extra, gold).score == 0.0


def test_top_level_lists_keep_their_order_and_group_members_do_not():
    ordering = '[["Acme", 3], ["Birch", 2]]'
    assert verdict('[["Acme",3],["Birch",2]]', ordering).score == 1.0
    assert verdict('[["Birch", 2], ["Acme", 3]]', ordering).score == 0.0  # an ordering is the answer
    assert verdict('[[3, "Acme"], ["Birch", 2]]', ordering).score == 0.0  # so is a pair's order
    assert verdict('{"g": [["b", 2], ["a", 1]]}', '{"g": [["a", 1], ["b", 2]]}').score == 1.0  # members: a multiset
    assert verdict("{1, 2, 3}", "{3, 2, 1}").score == 1.0  # a Python set has no order


def test_scalars_inside_compare_by_value_and_by_the_qa_normaliser():
    assert verdict('{"n": 1.0, "s": "The U.S.A."}', '{"s": "usa", "n": 1}').score == 1.0
    assert verdict('{"n": "2"}', '{"n": 2}').score == 1.0
    assert verdict('{"n": 2.5}', '{"n": 25}').score == 0.0  # numbers are not punctuation-stripped text
    assert verdict('{"ok": true, "none": null}', "{'ok': True, 'none': None}").score == 1.0
    assert verdict('{"A": ["x"], "B": ["y"]}', '{"B": ["x"], "A": ["y"]}').score == 0.0  # a bare article stays a key


def test_nested_structures():
    gold = '{"2023": {"up": ["A", "B"], "down": []}, "2024": {"up": ["C"], "down": ["A"]}}'
    right = '{"2024":{"down":["A"],"up":["C"]},"2023":{"down":[],"up":["B","A"]}}'
    wrong = '{"2024":{"down":["A"],"up":["C"]},"2023":{"down":["B"],"up":["A"]}}'
    assert verdict(right, gold).score == 1.0
    assert verdict(wrong, gold).score == 0.0


def test_no_structure_means_the_text_rules_exactly_as_before():
    # the gold is text: a JSON-looking prediction is compared as text
    assert verdict('{"city": "London"}', "London").reason == "sub_em"
    # the gold is a structure, the prediction prose: the text rules decide (same words: an exact match)
    assert verdict("Acme, Birch", "[['Acme', 'Birch']]").reason == "exact"
    assert verdict("uses RL: Reward Shaping", GOLD).reason == "mismatch"
    # a gold that only looks like a structure
    assert structure_key("[citation needed]") is None and verdict("citation needed", "[citation needed]").score == 1.0
    # scalars and a parenthesised word are not structures
    assert parse_structure("(5)") is None and parse_structure("(see above)") is None and parse_structure("42") is None


def test_mixed_golds_a_structure_and_text():
    golds = ['{"a": ["x"]}', "x only"]
    assert verdict('{"a":["x"]}', *golds).reason == "structure"
    assert verdict("x only", *golds).score == 1.0  # prose against the text gold
    assert verdict('{"a": ["y"]}', *golds).score == 0.0


def test_huge_and_deep_inputs_are_bounded():
    huge = "[" + ",".join(["1"] * (MAX_STRUCTURE_CHARS // 2 + 10)) + "]"
    start = time.perf_counter()
    for _ in range(100):
        assert parse_structure(huge) is None  # over the limit: not even parsed
    assert time.perf_counter() - start < 0.5
    assert verdict("1", huge).score == 0.0  # compared as text, no crash
    deep = "[" * (MAX_STRUCTURE_DEPTH + 5) + "1" + "]" * (MAX_STRUCTURE_DEPTH + 5)
    assert parse_structure(deep) is not None and structure_key(deep) is None  # too deep to be an answer
    very_deep = "[" * 5000 + "]" * 5000
    assert structure_key(very_deep) is None  # json's and ast's recursion limits are caught
    assert structure_key("{'a': __import__('os').getcwd()}") is None  # literals only, nothing evaluated


def test_through_the_reward_a_compact_json_answer_to_a_loong_gold_scores_one():
    compact = '{"no RL":["Sparse Attention"],"uses RL":["Policy Search","Reward Shaping"]}'
    result = compute_score("loong", T + f"Therefore, the answer is {compact}.", GOLD, {"task": "qa"})
    assert result["acc"] == 1.0 and result["pred"] == compact
    wrong = '{"no RL":["Policy Search"],"uses RL":["Sparse Attention","Reward Shaping"]}'
    assert compute_score("loong", T + f"The answer is {wrong}", GOLD, {"task": "qa"})["acc"] == 0.0
    boxed = T + "\\boxed{" + compact + "}"
    assert compute_score("loong", boxed, GOLD, {"task": "qa"})["acc"] == 1.0
