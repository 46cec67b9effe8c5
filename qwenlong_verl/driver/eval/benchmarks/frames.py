"""FRAMES: multi-hop questions over Wikipedia articles the user fetched into ``wiki_items``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qwenlong_verl.common.tasks import QA
from qwenlong_verl.driver.eval.benchmarks.item import EvalItem
from qwenlong_verl.driver.eval.benchmarks.registry import register_benchmark
from qwenlong_verl.driver.eval.benchmarks.rows import RowContext, gold_text, native_id


@register_benchmark(
    "frames",
    fields="Prompt (str), Answer (str), wiki_items (list of {title, text}); optional id / 'Unnamed: 0'",
    download="FRAMES, https://huggingface.co/datasets/google/frames-benchmark (gives wiki_links only: "
    "fetch each linked article's text into wiki_items yourself, as the QwenLong-L1 evaluation did)",
)
def parse_frames(row: Mapping[str, Any], ctx: RowContext) -> EvalItem:
    question = ctx.field(row, "Prompt")
    answer = ctx.field(row, "Answer", (str, int, float))
    items = ctx.field(row, "wiki_items", (list,))
    parts = []
    for i, wiki in enumerate(items):
        if not isinstance(wiki, Mapping) or not isinstance(wiki.get("text"), str):
            raise ctx.error(f"wiki_items[{i}] must be an object with a 'text' string (and a 'title')")
        title = str(wiki.get("title") or "").strip()
        parts.append(f"{title}\n{wiki['text']}" if title else wiki["text"])
    if not parts:
        raise ctx.error("field 'wiki_items' is empty", "fetch the articles of wiki_links into wiki_items")
    return EvalItem(
        id=f"frames/{native_id(row, ctx, 'id', 'Unnamed: 0')}",
        benchmark="frames",
        document="\n".join(parts),
        question=question.strip(),
        gold=gold_text(answer, ctx, "Answer"),
        task=QA,
        data_source="frames",
    )
