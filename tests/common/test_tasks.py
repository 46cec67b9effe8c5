import pytest

from qwenlong_verl.common.tasks import CHOICE, NUMERIC, QA, UnknownTaskError, normalize_task, task_of


@pytest.mark.parametrize(
    "source, extra, expected",
    [
        ("docmath_qa", None, NUMERIC),
        ("long_toc_choices_0_20000", None, CHOICE),
        ("multihoprag_qa", None, QA),
        ("musique_qa", {"task": "numeric"}, NUMERIC),
        ("docmath_qa", {"task": "QA"}, QA),
        ("docmath_qa", {"task": "weird"}, NUMERIC),
        ("x", {"task": "multiple-choice"}, CHOICE),
        (None, {}, QA),
    ],
)
def test_task_of(source, extra, expected):
    assert task_of(source, extra) == expected


def test_unknown_task_names_allowed_labels():
    with pytest.raises(UnknownTaskError, match="numeric, choice, qa"):
        normalize_task("poetry")
