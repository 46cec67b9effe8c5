"""The generic schema: any ``--bench NAME=FILE`` whose NAME is not a registered benchmark.

It is the raw record schema of ``prepare``, ``synth`` and ``sft-data`` (``documents`` as texts or ``{title, text}``
objects, joined by the same :func:`~qwenlong_verl.driver.data.template.join_documents`), so one file feeds training
and evaluation. Golds go through the same rules as prepared training rows
(:func:`~qwenlong_verl.driver.data.schema.canonical_gold`), so a user's own file is scored like training data.
``task`` and ``answer_type`` mean what they mean there (:func:`qwenlong_verl.common.tasks.resolve_task`); a task
label that is not an answer type is the report's subset when the row names none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qwenlong_verl.common.tasks import CHOICE, NUMERIC, QA, TaskFieldError, resolve_task
from qwenlong_verl.driver.data.schema import RowError, document_item, is_gold_value
from qwenlong_verl.driver.data.template import join_documents
from qwenlong_verl.driver.eval.benchmarks.item import EvalItem
from qwenlong_verl.driver.eval.benchmarks.rows import BenchmarkSpec, RowContext, gold_text, native_id


def _document(row: Mapping[str, Any], ctx: RowContext) -> str | None:
    """The text of ``documents`` (texts or ``{title, text}`` objects, checked and joined as ``prepare`` does),
    ``document`` or ``context`` (a string or a list of strings); None when there is none."""
    docs = row.get("documents")
    if isinstance(docs, list) and docs and all(isinstance(d, (str, Mapping)) for d in docs):
        try:  # a title of 5 or an object without text is an error, as in training data, not the text "5"
            where = (str(ctx.path), ctx.line)
            return join_documents([document_item(d, where, f"documents[{i}]") for i, d in enumerate(docs)])
        except RowError as exc:
            raise ctx.error(f"field {exc.field!r}: {exc.detail}") from None
    document = row.get("document", row.get("context"))
    if isinstance(document, list) and all(isinstance(d, str) for d in document):
        document = "\n".join(document)
    return document if isinstance(document, str) else None


def _gold(value: Any, ctx: RowContext, name: str) -> str:
    """A gold of the training data rules: text or a finite number (not an object, NaN, Infinity or a boolean)."""
    if not is_gold_value(value):
        shown = "null" if value is None else f"{type(value).__name__} {str(value)[:40]!r}"
        raise ctx.error(f"field {name!r} must be text or a finite number (the gold answer), got {shown}")
    return gold_text(value, ctx, name)


def _generic(row: Mapping[str, Any], ctx: RowContext) -> EvalItem:
    document = _document(row, ctx)
    if not document or not document.strip():
        raise ctx.error(
            "missing field 'documents' (or 'document' / 'context'): texts or {title, text} objects",
            f"generic rows need: {ctx.spec.fields}",
        )
    question = ctx.field(row, "question")
    if row.get("answer") is not None:
        answers = [_gold(row["answer"], ctx, "answer")]
    else:
        answers = [_gold(a, ctx, "answers") for a in ctx.field(row, "answers", (list,)) if a is not None]
        if not answers:
            raise ctx.error("field 'answers' is empty")
    choices = row.get("choices")
    if isinstance(choices, Mapping):
        choices = [choices[k] for k in sorted(choices)]
    if choices is not None and (not isinstance(choices, list) or not all(isinstance(c, str) for c in choices)):
        raise ctx.error("field 'choices' must be a list of option texts (or a {letter: text} object)")
    numeric = isinstance(row.get("answer"), (int, float)) and not isinstance(row.get("answer"), bool)
    try:
        answer_type, label = resolve_task(
            row.get("task"), row.get("answer_type"), CHOICE if choices else (NUMERIC if numeric else QA)
        )
    except TaskFieldError as exc:
        raise ctx.error(f"field {exc.field!r}: {exc}") from None
    if answer_type == CHOICE and not choices:
        raise ctx.error("answer type is 'choice' but field 'choices' is missing")
    from qwenlong_verl.driver.data.schema import canonical_gold  # the same gold rules as prepared training rows

    try:
        answers = list(dict.fromkeys(canonical_gold(answer_type, a, choices or ()) for a in answers))
    except ValueError as exc:
        raise ctx.error(f"field {'answer' if row.get('answer') is not None else 'answers'!r}: {exc}") from None
    return EvalItem(
        id=f"{ctx.benchmark}/{native_id(row, ctx, 'id', '_id')}",
        benchmark=ctx.benchmark,
        document=document,
        question=question.strip(),
        gold=answers[0],
        task=answer_type,
        data_source=str(row.get("data_source") or ctx.benchmark),
        choices=tuple(choices) if choices else None,
        subset=str(row.get("subset") or ("" if label == answer_type else label)),
        meta={"answers": answers} if len(answers) > 1 else {},
    )


GENERIC = BenchmarkSpec(
    name="generic",
    parse=_generic,
    fields="documents (list of str or {title, text}), document or context (str | list[str]), question (str), answer (str | number) or answers (list); "
    "optional id, answer_type (numeric|choice|qa), task (a task label, or an answer type), "
    "choices (list[str] or {letter: text}), data_source, subset",
    download="your own file (use --bench NAME=FILE with a NAME that is not a registered benchmark)",
)
