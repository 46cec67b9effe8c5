"""Answer types (verifier routing) and task labels (grouping) are read apart; old rows keep their meaning."""

import pytest

from qwenlong_verl.common.tasks import (
    ANSWER_TYPES,
    CHOICE,
    NUMERIC,
    QA,
    TaskLabelError,
    UnknownAnswerTypeError,
    answer_type_of,
    normalize_answer_type,
    normalize_task_label,
    resolve_task,
    task_label_of,
)


@pytest.mark.parametrize(
    "source, extra, answer_type, label",
    [
        # rows without either field: the QwenLong data_source routing, and the answer type is the label
        ("docmath_qa", None, NUMERIC, NUMERIC),
        ("long_toc_choices_0_20000", None, CHOICE, CHOICE),
        ("multihoprag_qa", None, QA, QA),
        (None, {}, QA, QA),
        # old rows: task is one of the answer types and stands for both, exactly as before
        ("musique_qa", {"task": "numeric"}, NUMERIC, NUMERIC),
        ("docmath_qa", {"task": "QA"}, QA, QA),
        ("x", {"task": "choice"}, CHOICE, CHOICE),
        # an alias names the answer type; the label keeps what the row says
        ("x", {"task": "multiple-choice"}, CHOICE, "multiple_choice"),
        # new rows: a free task label beside the answer type
        ("qwenlong_synth_numeric", {"task": "temporal", "answer_type": "numeric"}, NUMERIC, "temporal"),
        ("docmath_qa", {"task": "Multi-Hop", "answer_type": "qa"}, QA, "multi_hop"),
        ("x", {"task": "niah", "answer_type": "mcq"}, CHOICE, "niah"),
        # a label that names no answer type: the answer type comes from data_source
        ("docmath_qa", {"task": "weird"}, NUMERIC, "weird"),
        # unusable values are passed over, never raised on the worker side
        ("docmath_qa", {"task": "no/slashes here!", "answer_type": "poetry"}, NUMERIC, NUMERIC),
        ("x", {"task": "", "answer_type": "choice"}, CHOICE, CHOICE),
        ("x", {"task": float("nan")}, QA, QA),  # an empty parquet cell
        ("x", {"task": 7}, QA, QA),
    ],
)
def test_answer_type_and_task_label_of_a_sample(source, extra, answer_type, label):
    assert answer_type_of(source, extra) == answer_type
    assert task_label_of(source, extra) == label


def test_task_label_is_always_a_safe_metric_name_part():
    for junk in ("a/b", "x" * 33, "ünïcode", "_lead", "tab\there?", "qwenlong/task_std/qa"):
        assert task_label_of("docmath", {"task": junk}) == NUMERIC


@pytest.mark.parametrize(
    "value, expected",
    [("multi_hop", "multi_hop"), (" Multi-Hop ", "multi_hop"), ("long ICL", "long_icl"), ("niah2", "niah2")],
)
def test_normalize_task_label(value, expected):
    assert normalize_task_label(value) == expected


@pytest.mark.parametrize(
    "value, words",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 33, "1 to 32 characters"),
        ("a/b", "a-z, 0-9 and _"),
        ("_x", "starting with a letter or digit"),
        ("dialogue niah ✓", "a-z, 0-9 and _"),
        (5, "must be text, got int"),
    ],
)
def test_bad_task_labels_are_one_line_errors(value, words):
    with pytest.raises(TaskLabelError) as err:
        normalize_task_label(value)
    assert words in str(err.value) and "\n" not in str(err.value)
    assert err.value.field == "task"


def test_unknown_answer_type_names_the_allowed_ones():
    with pytest.raises(UnknownAnswerTypeError, match="unknown answer type 'poetry'; use one of numeric, choice, qa"):
        normalize_answer_type("poetry")
    assert [normalize_answer_type(a) for a in ("DocMath", "mcq", "extractive")] == [NUMERIC, CHOICE, QA]
    assert ANSWER_TYPES == (NUMERIC, CHOICE, QA)


def test_resolve_task_is_strict_and_uses_the_fallback_only_when_no_answer_type_is_named():
    assert resolve_task("temporal", "numeric", QA) == (NUMERIC, "temporal")
    assert resolve_task("qa", None, NUMERIC) == (QA, QA)  # an old row: task names the answer type
    assert resolve_task("temporal", None, CHOICE) == (CHOICE, "temporal")
    assert resolve_task(None, None, NUMERIC) == (NUMERIC, NUMERIC)
    assert resolve_task(" ", "qa", NUMERIC) == (QA, QA)
    with pytest.raises(UnknownAnswerTypeError) as err:
        resolve_task("temporal", "poetry", QA)
    assert err.value.field == "answer_type"
    with pytest.raises(TaskLabelError):
        resolve_task("bad label!", "qa", QA)
