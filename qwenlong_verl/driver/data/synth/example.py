"""One synthetic example: world, question, documents fitted to the length target and spread out -> a raw record.

A pure function of its arguments (seeded by ``(seed, index)``), so any example can be produced alone and a run
gives the same bytes however it is split.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from qwenlong_verl.common.tasks import ANSWER_TYPES
from qwenlong_verl.driver.data.synth.documents import filler_pool, place, world_documents
from qwenlong_verl.driver.data.synth.length import WorldSize, document_pad, fill_to_target, target_tokens
from qwenlong_verl.driver.data.synth.questions import pose, pose_task
from qwenlong_verl.driver.data.synth.world import SECTORS, build_world
from qwenlong_verl.driver.data.template import build_messages, join_documents

DATA_SOURCE_PREFIX = "qwenlong_synth"


def generate_example(
    index: int,
    n: int,
    min_tokens: int,
    max_tokens: int,
    seed: int = 0,
    tasks: Sequence[str] = ANSWER_TYPES,
    labels: Sequence[str] = (),
) -> dict:
    """Example ``index`` of a run of ``n`` (a raw record ``prepare`` accepts); pure function of its arguments.

    ``tasks``: the answer types to ask. Without ``labels`` the examples take them in turn and are labelled by
    them; with ``labels`` (task labels of the question kinds) they take the labels in turn, each asked as one of
    ``tasks`` its kind allows.
    """
    rng = random.Random(f"example:{seed}:{index}")
    pool = filler_pool(seed)
    target = target_tokens(index, n, min_tokens, max_tokens, seed)

    size = WorldSize.for_target(target)
    sector = rng.choice(SECTORS)
    world = build_world(rng, size.companies, size.metrics, size.extra, sector)
    if labels:
        posed = pose_task(labels[index % len(labels)], tasks, world, sector, rng)
    else:
        posed = pose(tasks[index % len(tasks)], world, sector, rng)
    question = posed.question

    docs = world_documents(world, sector, size.extra, rng, pool, document_pad(target, world))
    approx = fill_to_target(docs, target, question.text, posed.choices, rng, pool)

    by_title = {d.title: d for d in docs}
    missing = [t for t in question.essential if t not in by_title]
    if missing:  # a bug, not bad input: the question must only depend on documents we wrote
        raise AssertionError(f"question depends on documents that were not generated: {missing}")
    essential = [by_title[t] for t in question.essential]
    ordered = place([d for d in docs if d.title not in set(question.essential)], essential, rng)

    record = {
        "id": f"{DATA_SOURCE_PREFIX}-{seed}-{index:07d}",
        "data_source": f"{DATA_SOURCE_PREFIX}_{posed.answer_type}",
        "task": posed.task,
        "answer_type": posed.answer_type,
        "kind": question.kind,
        "question": question.text,
        "answer": posed.answer,
        "documents": [{"title": d.title, "text": d.text} for d in ordered],
        "target_tokens": target,
        "approx_tokens": approx,
        "meta": question.meta,
    }
    if posed.choices:
        record["choices"] = posed.choices
    return record


def prompt_of(record: dict) -> list[dict]:
    """The chat messages of a synthetic record, through THE template (what ``prepare`` builds)."""
    return build_messages(
        join_documents(record["documents"]), record["question"], record["answer_type"], record.get("choices")
    )
