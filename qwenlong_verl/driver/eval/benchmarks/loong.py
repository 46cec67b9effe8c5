"""Loong ("Leave No Document Behind"): financial, legal and paper sets whose documents are side files.

Rows name their documents; the texts are read from Loong's ``data/doc`` folder (``--loong-doc-dir``, default
``doc/`` next to the jsonl), or taken from an inline ``docs`` list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from qwenlong_verl.common.tasks import NUMERIC, QA
from qwenlong_verl.driver.eval.benchmarks.item import EvalItem
from qwenlong_verl.driver.eval.benchmarks.registry import register_benchmark
from qwenlong_verl.driver.eval.benchmarks.rows import RowContext, gold_text, native_id

LOONG_LEVELS = {1: "spotlight_locating", 2: "comparison", 3: "clustering", 4: "chain_of_reasoning"}
"""Loong's ``level`` field -> its task type (Wang et al. 2024, "Leave No Document Behind")."""


def _loong_documents(row: Mapping[str, Any], ctx: RowContext, doc_type: str, level: int) -> str:
    """Loong's documents in row order, each under a title line (Loong itself shuffles them; we don't)."""
    inline = row.get("docs")
    if inline is not None:
        if not isinstance(inline, list) or not all(isinstance(d, str) for d in inline) or not inline:
            raise ctx.error("field 'docs' must be a non-empty list of document texts")
        return "\n\n".join(d.strip() for d in inline)
    names = ctx.field(row, "doc", (list,))
    if not names or not all(isinstance(n, str) for n in names):
        raise ctx.error("field 'doc' must be a non-empty list of document names")
    doc_dir = ctx.options.loong_doc_dir or ctx.path.parent / "doc"
    folder = doc_dir / doc_type
    if not folder.is_dir():
        raise ctx.error(
            f"Loong documents not found: {folder} is not a directory",
            "pass --loong-doc-dir pointing at Loong's data/doc folder (with financial/, legal/, paper/)",
        )
    texts = []
    instruction = str(row.get("instruction") or "")
    for i, name in enumerate(names):
        if doc_type == "financial":
            files = sorted(p for p in folder.glob("*.txt") if name in p.name)
            # Levels 1-3 use the 2024 report of each company; level 4 chains across years.
            preferred = [p for p in files if f"2024-{name}" in p.name] if level != 4 else []
            chosen = preferred or files
            if not chosen:
                raise ctx.error(f"no financial report named like {name!r} in {folder}")
            texts.append(f"《{name}》\n" + chosen[0].read_text(encoding="utf-8"))
        elif doc_type == "paper":
            path = folder / name
            if not path.is_file():
                raise ctx.error(f"paper {name!r} not found in {folder}")
            content = path.read_text(encoding="utf-8")
            title = content.split("\n", 1)[0].strip("#").strip() or name
            texts.append(f"{title}\n{content}")
        else:  # legal: one JSON holding every case
            cases = ctx.options._cache.get(str(folder))
            if cases is None:
                legal = folder / "legal.json"
                if not legal.is_file():
                    raise ctx.error(f"{legal} not found", "Loong ships it under data/doc/legal/")
                cases = json.loads(legal.read_text(encoding="utf-8"))
                ctx.options._cache[str(folder)] = cases
            case = cases.get(name)
            if not isinstance(case, Mapping) or not isinstance(case.get("content"), str):
                raise ctx.error(f"legal case {name!r} missing from {folder / 'legal.json'}")
            # Chain-of-reasoning legal items hand the verdicts over in the instruction: omit them here.
            verdict_in_question = level == 4 and "判决结果" in instruction
            body = case["content"] + ("" if verdict_in_question else str(case.get("result") or ""))
            texts.append(f"《判决文书{i + 1}》\n{body}")
    return "\n\n".join(t.strip() for t in texts)


@register_benchmark(
    "loong",
    fields="id, type (financial|legal|paper), level (1-4), set (1-4), question, instruction, answer (any JSON), "
    "doc (list of document names, read from --loong-doc-dir) or docs (list of texts)",
    download="Loong, https://github.com/MozerWang/Loong (data/loong.jsonl and data/doc/)",
    files=("loong.jsonl", "loong/loong.jsonl", "loong"),
)
def parse_loong(row: Mapping[str, Any], ctx: RowContext) -> EvalItem:
    doc_type = ctx.field(row, "type")
    if doc_type not in ("financial", "legal", "paper"):
        raise ctx.error(f"field 'type' is {doc_type!r}; Loong types are financial, legal, paper")
    level = ctx.field(row, "level", (int, str))
    try:
        level = int(level)
    except ValueError:
        level = 0
    if level not in LOONG_LEVELS:
        raise ctx.error(f"field 'level' is {row['level']!r}; Loong levels are 1-4 ({', '.join(LOONG_LEVELS.values())})")
    # Loong's own release puts the task of some rows (all paper chain-of-reasoning ones) in `instruction` and
    # leaves `question` empty: either field may carry it, not both may be empty.
    question = ctx.field(row, "question", required=False) or ""
    instruction = ctx.field(row, "instruction", required=False) or ""
    if not question.strip() and not instruction.strip():
        raise ctx.error(
            "fields 'question' and 'instruction' are both empty or missing; a Loong row asks in one of them"
        )
    if "answer" not in row or row["answer"] in (None, "", [], {}):
        raise ctx.error("missing or empty field 'answer'")
    answer = row["answer"]
    numeric = isinstance(answer, (int, float)) and not isinstance(answer, bool)
    if isinstance(answer, list) and all(isinstance(a, (str, int, float)) for a in answer):
        # One answer that is a list (an ordering, a set of names): as text, so the scorer does not read a
        # JSON list as alternative answers.
        answer = ", ".join(str(a) for a in answer)
    meta: dict[str, Any] = {"type": doc_type, "level": level}
    if row.get("set") is not None:
        meta["set"] = row["set"]
    return EvalItem(
        id=f"loong/{native_id(row, ctx, 'id')}",
        benchmark="loong",
        document=_loong_documents(row, ctx, doc_type, level),
        question="\n\n".join(p for p in (instruction.strip(), question.strip()) if p),
        gold=gold_text(answer, ctx, "answer"),
        task=NUMERIC if numeric else QA,
        data_source="loong",
        subset=LOONG_LEVELS[level],
        meta=meta,
    )
