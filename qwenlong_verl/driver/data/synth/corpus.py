"""Corpus-scale examples (``synth --corpus``): the context is a corpus of hundreds of documents, 1M-10M tokens,
and the question aggregates over many of them (:mod:`.corpus_kinds`).

CorpusQA shows retrieval collapsing on such questions while memory agents hold; QwenLong-L1.5 trains its memory
agent on corpus-level numerical calculation. An example is planned first — the world, the question, each
document's facts and table, their order and each one's filler budget — and its text is written one document at a
time (:meth:`CorpusExample.write`), so a 10M-token example never sits in memory whole.

Length is controlled without tokenising the corpus: the fact sentences, tables and headings are counted with the
builtin tokenizer (a few hundred short texts), the filler comes from the pool whose sentence counts are known,
and the filler budgets are set so the prompt lands on the example's target; a running carry keeps the sum of
each document's small overshoot from adding up.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from qwenlong_verl.driver.data.synth.corpus_kinds import CORPUS_KINDS, focus_sectors
from qwenlong_verl.driver.data.synth.documents import (
    Pool,
    birth_fact,
    city_facts,
    city_title,
    commentary_facts,
    commentary_title,
    filler_paragraphs,
    filler_pool,
    filler_table,
    place,
    profile_title,
    report_facts,
    report_table,
    report_title,
)
from qwenlong_verl.driver.data.synth.example import DATA_SOURCE_PREFIX
from qwenlong_verl.driver.data.synth.length import prompt_overhead, target_tokens
from qwenlong_verl.driver.data.synth.questions import pose, pose_task
from qwenlong_verl.driver.data.synth.tokens import count_tokens
from qwenlong_verl.driver.data.synth.world import World, build_corpus_world, stem

DEFAULT_DOCS = 300
"""Documents per corpus when ``--docs`` is not given."""
MIN_DOCS = 20
"""Fewest documents a corpus has: twelve companies in two sectors and four cities, the smallest world every corpus
kind can be asked of."""
MAX_DOCS = 5_000
"""Most documents a corpus has (``--docs``): beyond CorpusQA's hundreds, and each document's facts and table are
counted when the example is planned."""
TOKENS_PER_DOC = 250
"""Fewest tokens per document a corpus target must allow: a report's facts and table take ~190."""
MAX_CORPUS_TOKENS = 10_000_000
"""Longest target of a corpus example (``--max-tokens`` with ``--corpus``): CorpusQA's 10M-token corpora."""

_COUNTED_AT_ONCE = 512
_BULLETINS = ("bulletin", "memo", "newsletter", "minutes", "notes")


@dataclass
class CorpusOptions:
    """Corpus-scale examples: many documents per context, questions that aggregate over them."""

    corpus: bool = False
    """Make each example's context a corpus of --docs documents (reports, city guides, profiles, commentaries,
    bulletins) and ask questions whose answers need many of them: counts, sums, means, spreads, comparisons,
    rankings (task labels corpus_numerical, corpus_aggregation); --max-tokens up to 10,000,000."""

    docs: int | None = None
    """Documents per corpus (with --corpus; default 300)."""

    @property
    def active(self) -> bool:
        return self.corpus

    @property
    def n_docs(self) -> int:
        """Documents per corpus: ``docs``, or :data:`DEFAULT_DOCS`."""
        return DEFAULT_DOCS if self.docs is None else self.docs


@dataclass(frozen=True)
class CorpusSize:
    """How a corpus of ``docs`` documents splits into kinds: 60 % reports, the rest city guides, profiles,
    sector commentaries and bulletins."""

    companies: int
    cities: int
    profiles: int
    commentaries: int
    bulletins: int

    @classmethod
    def for_docs(cls, docs: int) -> CorpusSize:
        companies = round(docs * 0.6)
        cities = max(4, round(docs * 0.08))
        commentaries = max(1, round(docs * 0.04))
        profiles = round(docs * 0.12)
        bulletins = docs - companies - cities - commentaries - profiles
        if bulletins < 0 or docs < MIN_DOCS:
            raise ValueError(f"a corpus needs at least {MIN_DOCS} documents, got {docs}")
        return cls(companies, cities, profiles, commentaries, bulletins)


@dataclass
class DocPlan:
    """One document before its text: the facts it states and its share of the filler."""

    title: str
    head: str
    """Fact sentences that open the document ("" for a bulletin)."""
    table: str = ""
    """A table in the middle of the document ("" for none)."""
    tokens: int = 0
    """Tokens of its heading, title, facts and table (builtin tokenizer)."""
    filler: int = 0
    """Filler tokens it is planned to carry."""


def _plans(world: World, size: CorpusSize, rng: random.Random) -> list[DocPlan]:
    """Every document of the corpus: each fact of the world stated exactly once."""
    docs = [DocPlan(report_title(c.name), report_facts(c), report_table(c, world)) for c in world.companies]
    docs += [DocPlan(city_title(c), city_facts(c, world.mayors[c], world.rivers[c])) for c in world.mayors]
    docs += [DocPlan(profile_title(p), birth_fact(p, city)) for p, city in world.birthplaces.items()]
    sectors = sorted({c.sector for c in world.companies})
    houses = [f"{stem(rng, 2)} Research" for _ in range(size.commentaries)]
    for i, house in enumerate(houses):  # quote a year before every table: relevant-looking, never in an answer
        sector = sectors[i % len(sectors)]
        docs.append(DocPlan(f"{commentary_title(sector)} by {house}", commentary_facts(sector, world, rng)))
    for _ in range(size.bulletins):
        table = filler_table(rng) if rng.random() < 0.5 else ""
        docs.append(DocPlan(f"{stem(rng, 2)} {rng.choice(_BULLETINS)}", "", table))
    return docs


def _budget(plans: list[DocPlan], target: int, overhead: int, rng: random.Random) -> None:
    """Count each document's structure, then share what the target leaves among them as filler."""
    skeletons = [
        "\n\n".join(p for p in (f"Document {n}: {d.title}\n{d.head}", d.table) if p) + "\n\n"
        for n, d in enumerate(plans, start=1)
    ]
    for start in range(0, len(plans), _COUNTED_AT_ONCE):  # bounded: a tokenizer call holds every token it made
        counts = count_tokens(skeletons[start : start + _COUNTED_AT_ONCE])
        for plan, tokens in zip(plans[start : start + _COUNTED_AT_ONCE], counts, strict=True):
            plan.tokens = tokens
    room = max(0, target - overhead - sum(p.tokens for p in plans))
    weights = [rng.uniform(0.5, 1.5) for _ in plans]
    scale = room / sum(weights)
    for plan, weight in zip(plans, weights, strict=True):
        plan.filler = int(weight * scale)


@dataclass
class CorpusExample:
    """One corpus example, planned: the record's fields and its documents' plans, text written on demand."""

    head: dict[str, Any]
    """The record's fields before ``documents``: id, data source, task, answer type, kind, question, answer..."""
    plans: list[DocPlan]
    tail: dict[str, Any]
    """The record's fields after ``documents`` (``approx_tokens`` is added when the text is written)."""
    seed: int
    index: int
    overhead: int
    """Prompt tokens besides the documents."""
    pool: Pool = field(repr=False)

    def documents(self) -> Iterator[tuple[dict[str, str], int]]:
        """``({title, text}, tokens)`` of each document in order, each made when asked for."""
        carry = 0  # filler written beyond the plan so far, taken off the next document's budget
        for n, plan in enumerate(self.plans, start=1):
            rng = random.Random(f"corpus-text:{self.seed}:{self.index}:{n}")
            budget = max(0, plan.filler - carry)
            if plan.table:
                before, used_before = filler_paragraphs(rng, self.pool, budget // 2)
                after, used_after = filler_paragraphs(rng, self.pool, budget - budget // 2)
                parts, used = [plan.head, before, plan.table, after], used_before + used_after
            else:
                body, used = filler_paragraphs(rng, self.pool, budget)
                parts = [plan.head, body]
            carry += used - plan.filler
            yield {"title": plan.title, "text": "\n\n".join(p for p in parts if p)}, plan.tokens + used

    def summary(self, approx_tokens: int) -> dict[str, Any]:
        """What a run's stats count of this example."""
        return {**{k: self.head[k] for k in ("task", "answer_type", "kind")}, "approx_tokens": approx_tokens}

    def record(self) -> dict[str, Any]:
        """The whole record (what :meth:`write` writes, as one object)."""
        documents, total = [], self.overhead
        for doc, tokens in self.documents():
            documents.append(doc)
            total += tokens
        return {**self.head, "documents": documents, **self.tail, "approx_tokens": total}

    def write(self, handle: IO[str]) -> dict[str, Any]:
        """Write the record as one jsonl line, a document at a time; the bytes equal ``json.dumps(record())``.
        Returns :meth:`summary`."""
        handle.write("{" + "".join(f"{_dumps(k)}: {_dumps(v)}, " for k, v in self.head.items()) + '"documents": [')
        total = self.overhead
        for n, (doc, tokens) in enumerate(self.documents()):
            handle.write((", " if n else "") + _dumps(doc))
            total += tokens
        tail = {**self.tail, "approx_tokens": total}
        handle.write("]" + "".join(f", {_dumps(k)}: {_dumps(v)}" for k, v in tail.items()) + "}\n")
        return self.summary(total)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def plan_corpus_example(
    index: int,
    n: int,
    min_tokens: int,
    max_tokens: int,
    seed: int,
    tasks: Sequence[str],
    labels: Sequence[str],
    docs: int,
) -> CorpusExample:
    """Corpus example ``index`` of a run of ``n``: a pure function of its arguments, as single-context examples
    are (``tasks`` and ``labels`` taken in turn the same way)."""
    rng = random.Random(f"corpus:{seed}:{index}")
    target = target_tokens(index, n, min_tokens, max_tokens, seed)
    size = CorpusSize.for_docs(docs)
    world = build_corpus_world(rng, size.companies, size.cities, size.profiles)
    sector = rng.choice(focus_sectors(world))
    if labels:
        posed = pose_task(labels[index % len(labels)], tasks, world, sector, rng, CORPUS_KINDS)
    else:
        posed = pose(tasks[index % len(tasks)], world, sector, rng, CORPUS_KINDS)
    question = posed.question

    plans = _plans(world, size, rng)
    by_title = {p.title: p for p in plans}
    missing = [t for t in question.essential if t not in by_title]
    if missing:  # a bug, not bad input: the question must only depend on documents we wrote
        raise AssertionError(f"question depends on documents that were not generated: {missing}")
    needed = set(question.essential)
    plans = place([p for p in plans if p.title not in needed], [by_title[t] for t in question.essential], rng)
    overhead = prompt_overhead(question.asked, posed.choices)
    _budget(plans, target, overhead, rng)

    head: dict[str, Any] = {
        "id": f"{DATA_SOURCE_PREFIX}-corpus-{seed}-{index:07d}",
        "data_source": f"{DATA_SOURCE_PREFIX}_corpus_{posed.answer_type}",
        "task": posed.task,
        "answer_type": posed.answer_type,
        "kind": question.kind,
        "question": question.asked,
        "instruction": question.instruction,
        "answer": posed.answer,
    }
    if posed.choices:
        head["choices"] = posed.choices
    tail = {"target_tokens": target, "docs": len(plans), "meta": question.meta}
    return CorpusExample(head, plans, tail, seed, index, overhead, filler_pool(seed))
