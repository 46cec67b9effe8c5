"""DocMath-Eval (testmini splits): numeric reasoning over financial documents; the split is the subset."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qwenlong_verl.common.tasks import NUMERIC, QA
from qwenlong_verl.driver.eval.benchmarks.item import EvalItem
from qwenlong_verl.driver.eval.benchmarks.registry import register_benchmark
from qwenlong_verl.driver.eval.benchmarks.rows import RowContext, gold_text, native_id


@register_benchmark(
    "docmath",
    fields="question (str), paragraphs (list[str]), ground_truth (number); optional question_id",
    download="DocMath-Eval testmini, https://huggingface.co/datasets/yale-nlp/DocMath-Eval "
    "(complong/compshort/simplong/simpshort_testmini.jsonl; the test split hides ground_truth)",
    files=("docmath", "docmath.jsonl", "docmath*.jsonl", "*_testmini.jsonl"),
)
def parse_docmath(row: Mapping[str, Any], ctx: RowContext) -> EvalItem:
    question = ctx.field(row, "question")
    paragraphs = ctx.field(row, "paragraphs", (list,))
    if not all(isinstance(p, str) for p in paragraphs):
        raise ctx.error("field 'paragraphs' must be a list of strings")
    if "ground_truth" not in row or row["ground_truth"] is None:
        raise ctx.error(
            "missing field 'ground_truth'",
            "DocMath's test split hides answers: evaluate the *_testmini.jsonl files",
        )
    truth = ctx.field(row, "ground_truth", (int, float, bool))
    subset = ctx.path.stem.removesuffix("_testmini").removesuffix("_test")
    return EvalItem(
        id=f"docmath/{native_id(row, ctx, 'question_id', 'id')}",
        benchmark="docmath",
        document="\n".join(paragraphs),
        question=question.strip(),
        gold=gold_text(truth, ctx, "ground_truth"),
        task=QA if isinstance(truth, bool) else NUMERIC,
        data_source="docmath",
        subset=subset,
    )
