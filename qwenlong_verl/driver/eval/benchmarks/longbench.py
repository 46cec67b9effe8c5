"""LongBench's DocQA sets (2WikiMultihopQA, HotpotQA, MuSiQue, NarrativeQA, Qasper): one schema, five names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qwenlong_verl.common.tasks import QA
from qwenlong_verl.driver.eval.benchmarks.item import EvalItem
from qwenlong_verl.driver.eval.benchmarks.registry import register_benchmark
from qwenlong_verl.driver.eval.benchmarks.rows import RowContext, gold_text, native_id

LONGBENCH_SETS = ("2wikimqa", "hotpotqa", "musique", "narrativeqa", "qasper")

_FIELDS = "input (question), context (str), answers (list[str], first is the gold); optional _id, length"


def parse_longbench(row: Mapping[str, Any], ctx: RowContext) -> EvalItem:
    question = ctx.field(row, "input")
    context = ctx.field(row, "context")
    answers = ctx.field(row, "answers", (list,))
    golds = [gold_text(a, ctx, "answers") for a in answers if a is not None and str(a).strip()]
    if not golds:
        raise ctx.error("field 'answers' has no non-empty answer")
    meta = {"answers": golds}
    if isinstance(row.get("length"), int):
        meta["length_words"] = row["length"]
    return EvalItem(
        id=f"{ctx.benchmark}/{native_id(row, ctx, '_id', 'id')}",
        benchmark=ctx.benchmark,
        document=context,
        question=question.strip(),
        gold=golds[0],
        task=QA,
        data_source=ctx.benchmark,
        meta=meta,
    )


for _name in LONGBENCH_SETS:
    register_benchmark(
        _name,
        fields=_FIELDS,
        download=f"LongBench, https://huggingface.co/datasets/THUDM/LongBench (data.zip -> data/{_name}.jsonl)",
        files=(f"{_name}.jsonl", f"{_name}_e.jsonl", f"{_name}.json", f"{_name}.parquet", _name),
    )(parse_longbench)
