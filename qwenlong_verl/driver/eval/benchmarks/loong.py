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
from qwenlong_verl.driver.eval.rating import RatingGroup, RatingSpec

LOONG_LEVELS = {1: "spotlight_locating", 2: "comparison", 3: "clustering", 4: "chain_of_reasoning"}
"""Loong's ``level`` field -> its task type (Wang et al. 2024, "Leave No Document Behind")."""

LOONG_SETS = {1: "set1 (10K-50K)", 2: "set2 (50K-100K)", 3: "set3 (100K-200K)", 4: "set4 (200K-250K)"}
"""Loong's ``set`` field -> its length set, as the paper's tables name them (input length in tokens)."""

LOONG_RATING_PROMPT = """[Question]
{question}

[Gold Answer]
{gold}

[The Start of Assistant's Predicted Answer]
{prediction}
[The End of Assistant's Predicted Answer]

[System]
We would like to request your feedback on the performance of the AI assistant in response to the user question \
displayed above according to the gold answer. Please use the following listed aspects and their descriptions as \
evaluation criteria:
    - Accuracy and Hallucinations: The assistant's answer is semantically consistent with the gold answer; The \
numerical value and order need to be accurate, and there should be no hallucinations.
    - Completeness: Referring to the reference answers, the assistant's answer should contain all the key points \
needed to answer the user's question; further elaboration on these key points can be omitted.
Please rate whether this answer is suitable for the question. Please note that the gold answer can be considered \
as a correct answer to the question.

The assistant receives an overall score on a scale of 1 to 100, where a higher score indicates better overall \
performance.
Please note that if the assistant's answer and the gold answer fully meet the above criteria, its overall rating \
should be the full marks (100).
Please first provide a comprehensive explanation of your evaluation, avoiding any potential bias.
Then, output a line indicating the score of the Assistant.

PLEASE OUTPUT WITH THE FOLLOWING FORMAT, WHERE THE SCORE IS A SCALE OF 1 TO 100 BY STRICTLY FOLLOWING THIS \
FORMAT: "[[score]]", FOR EXAMPLE "Rating: [[100]]":
<start output>
Evaluation evidence: your evluation explanation here, no more than 100 words
Rating: [[score]]
<end output>

Now, start your evaluation:"""
"""Loong's GPT-4 rating prompt, word for word (its typo "evluation" included), from ``src/utils/prompt.py``
(``get_evaluate_prompts``) of https://github.com/MozerWang/Loong. Loong fills the question from its
``prompt_template`` without the documents (instruction and question); ours is the item's question, which is
the instruction and the question. Loong shows the raw gold (a Python ``str`` of a list or dict); ours is the
gold text (JSON for structures)."""


def _loong_set(row: Mapping[str, Any]) -> str | None:
    value = (row.get("meta") or {}).get("set")
    return LOONG_SETS.get(value) if isinstance(value, int) else None


LOONG_RATING = RatingSpec(
    name="Loong rating (GPT-4-style, 0-100)",
    template=LOONG_RATING_PROMPT,
    source="Wang et al. 2024, Leave No Document Behind (arXiv 2406.17419); prompt of "
    "github.com/MozerWang/Loong src/utils/prompt.py, metric of src/utils/metric.py",
    low=0.0,
    high=100.0,
    perfect=100.0,
    groups=(
        RatingGroup("task type", lambda row: row.get("subset") or None, tuple(LOONG_LEVELS.values())),
        RatingGroup("length set", _loong_set, tuple(LOONG_SETS.values())),
    ),
)
"""Loong's published metric: each answer rated 0-100 by an LLM (GPT-4 in the paper) with the prompt above, the
rating read from ``[[N]]``; reported as the mean rating and the perfect rate (share rated 100) over the rated
samples, per task type and per length set (Loong's ``src/utils/metric.py`` and ``step4_cal_metric.py``).

Loong reads the first ``[[N]]`` of the reply and, failing that, a single-bracket ``[N]``; we read only the
published ``[[N]]`` form, the last one (the format ends the reply with it), and reject ratings outside 0-100,
so a malformed reply is an unrated sample counted as a rating error, never a guessed score."""


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
    rating=LOONG_RATING,
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
    if row.get("set") is not None:  # the length set: a grouping of the rating report
        length_set = ctx.field(row, "set", (int, str))
        if str(length_set).strip() not in {str(s) for s in LOONG_SETS}:
            raise ctx.error(
                f"field 'set' is {length_set!r}; Loong length sets are 1-4 ({', '.join(LOONG_SETS.values())})"
            )
        meta["set"] = int(length_set)
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
