"""Question kinds: each computes its answer, plausible wrong answers and the documents it needs from the world.

A kind is one class registered with :func:`register_kind`. It declares two things: its ``answer_type`` (numeric
or qa: the verifier that checks it; every kind can also be asked as ``choice`` through :func:`as_choice`) and its
``task``, the QwenLong-L1.5 task type it belongs to (``numerical``, ``multi_hop``, ``temporal``, ``counting``,
``niah``, ``hypothetical``), which is the row's task label when ``synth`` labels by task. Kinds are drawn by their
position in the registry, so a seed gives the same data only for the same set of kinds. Corpus runs draw from a
table of their own (:mod:`.corpus_kinds`) through the same functions (their ``kinds`` argument).
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from qwenlong_verl.common.tasks import (
    CHOICE,
    COUNTING,
    HYPOTHETICAL,
    MULTI_HOP,
    NIAH,
    NUMERIC,
    NUMERICAL,
    QA,
    TEMPORAL,
)
from qwenlong_verl.driver.data.synth.documents import city_title, profile_title, report_title
from qwenlong_verl.driver.data.synth.world import Company, Metric, World, fmt_value
from qwenlong_verl.driver.data.template import option_letter


@dataclass
class Question:
    kind: str
    text: str
    answer: str
    wrong: list[str]
    """Plausible wrong answers (for the choice variant)."""
    essential: list[str]
    """Titles of the documents the answer depends on, in hop order."""
    meta: dict[str, Any] = field(default_factory=dict)
    """The question's parameters, kept in the record (tests re-derive the answer from them and the text)."""
    instruction: str = ""
    """q_inst, how to write the answer ("Round to two decimals."), apart from ``text`` (q_core, what to look
    for); the record's question is both (:attr:`asked`). Empty where ``text`` says it itself."""

    @property
    def asked(self) -> str:
        """The question as the prompt shows it: q_core, then q_inst."""
        return f"{self.text} {self.instruction}" if self.instruction else self.text


class QuestionKind(ABC):
    """One kind of question over a world."""

    name: ClassVar[str]
    answer_type: ClassVar[str]
    """The answer type of the question as asked plainly: ``numeric`` or ``qa``."""
    task: ClassVar[str]
    """Its task label (:mod:`qwenlong_verl.common.tasks`: ``numerical``, ``multi_hop``, ``temporal``, ...)."""

    @abstractmethod
    def ask(self, world: World, sector: str, rng: random.Random) -> Question:
        """A question about ``world`` (``sector`` is the one about 40 % of its companies share)."""


Kinds = Mapping[str, QuestionKind]
"""A table of question kinds by name: :data:`QUESTION_KINDS`, or the corpus kinds (:mod:`.corpus_kinds`)."""


def registrar(table: dict[str, QuestionKind]) -> Callable[[type[QuestionKind]], type[QuestionKind]]:
    """A class decorator that makes a kind drawable from ``table`` under ``cls.name``."""

    def register(cls: type[QuestionKind]) -> type[QuestionKind]:
        if cls.name in table:
            raise ValueError(f"question kind {cls.name!r} registered twice")
        table[cls.name] = cls()
        return cls

    return register


QUESTION_KINDS: dict[str, QuestionKind] = {}
"""The kinds of single-context examples (a run's default)."""

register_kind = registrar(QUESTION_KINDS)
"""Class decorator: make ``cls`` drawable under ``cls.name`` in single-context runs."""


# ----------------------------------------------------------------------------- numeric: tables of many reports


@dataclass
class _Figures:
    """What every numeric kind starts from: one metric and year, the sector's companies and their values."""

    metric: Metric
    year: int
    wrong_year: int
    targets: list[Company]
    others: list[Company]
    values: list[Decimal]
    meta: dict[str, Any]
    titles: list[str]

    @property
    def decimals(self) -> int:
        return self.metric.decimals

    def of(self, company: Company, year: int | None = None) -> Decimal:
        return company.figures[self.metric.name][self.year if year is None else year]


class NumericKind(QuestionKind):
    """Aggregation over report tables: the metric, year and a wrong year are drawn before the kind's own draws."""

    answer_type = NUMERIC
    task = NUMERICAL

    def ask(self, world: World, sector: str, rng: random.Random) -> Question:
        metric = rng.choice(world.metrics)
        year = rng.choice(world.years)
        targets = world.in_sector(sector)
        figures = _Figures(
            metric=metric,
            year=year,
            wrong_year=rng.choice([y for y in world.years if y != year]),
            targets=targets,
            others=[c for c in world.companies if c.sector != sector],
            values=[c.figures[metric.name][year] for c in targets],
            meta={"metric": metric.label, "year": year, "sector": sector},
            titles=[report_title(c.name) for c in targets],
        )
        return self.pose(figures, world, sector, rng)

    @abstractmethod
    def pose(self, f: _Figures, world: World, sector: str, rng: random.Random) -> Question:
        """The question over the drawn figures."""


@register_kind
class Sum(NumericKind):
    name = "sum"

    def pose(self, f: _Figures, world: World, sector: str, rng: random.Random) -> Question:
        d, total = f.decimals, sum(f.values)
        wrong = [fmt_value(total - f.values[0], d), fmt_value(sum(f.of(c, f.wrong_year) for c in f.targets), d)]
        wrong += [fmt_value(total + f.of(f.others[0]), d)] if f.others else []
        text = f"What was the total {f.metric.phrase()} of all {sector} companies in {f.year}?"
        return Question(self.name, text, fmt_value(total, d), wrong, f.titles, f.meta)


@register_kind
class Mean(NumericKind):
    name = "mean"

    def pose(self, f: _Figures, world: World, sector: str, rng: random.Random) -> Question:
        n = len(f.values)
        wrong = [
            fmt_value(sum(f.values) / (n + 1), 2),
            fmt_value(sum(f.of(c, f.wrong_year) for c in f.targets) / n, 2),
            fmt_value(max(f.values), 2),
        ]
        text = f"What was the average {f.metric.phrase()} of the {sector} companies in {f.year}? Round to two decimals."
        return Question(self.name, text, fmt_value(sum(f.values) / n, 2), wrong, f.titles, f.meta)


@register_kind
class Max(NumericKind):
    name = "max"

    def pose(self, f: _Figures, world: World, sector: str, rng: random.Random) -> Question:
        d, top = f.decimals, max(f.values)
        everyone = [f.of(c) for c in world.companies]
        wrong = [fmt_value(min(f.values), d), fmt_value(max(everyone + [top * Decimal("1.1")]), d)]
        wrong += [fmt_value(max(f.of(c, f.wrong_year) for c in f.targets), d)]
        text = f"What was the highest {f.metric.phrase()} reported for {f.year} by any {sector} company?"
        return Question(self.name, text, fmt_value(top, d), wrong, f.titles, f.meta)


@register_kind
class Difference(NumericKind):
    name = "difference"

    def pose(self, f: _Figures, world: World, sector: str, rng: random.Random) -> Question:
        d = f.decimals
        a, b = rng.sample(f.targets, 2)
        va, vb = f.of(a), f.of(b)
        wrong = [fmt_value(vb - va, d), fmt_value(va + vb, d), fmt_value(f.of(a, f.wrong_year) - vb, d)]
        text = (
            f"By how much did the {f.metric.phrase()} of {a.name} exceed that of {b.name} in {f.year}? "
            f"Give {a.name}'s value minus {b.name}'s value."
        )
        meta = {**f.meta, "company_a": a.name, "company_b": b.name}
        titles = [report_title(a.name), report_title(b.name)]
        return Question(self.name, text, fmt_value(va - vb, d), wrong, titles, meta)


@register_kind
class Count(NumericKind):
    name = "count"
    task = COUNTING

    def pose(self, f: _Figures, world: World, sector: str, rng: random.Random) -> Question:
        d = f.decimals
        distinct = sorted(set(f.values))
        if len(distinct) > 1:  # a threshold strictly between two neighbouring values, shown with one more decimal
            cut = rng.randrange(len(distinct) - 1)
            shown = fmt_value((distinct[cut] + distinct[cut + 1]) / 2, d + 1)
        else:
            shown = fmt_value(distinct[0] - Decimal("0.5"), d + 1)
        count = sum(v > Decimal(shown) for v in f.values)
        wrong = [str(count + 1), str(max(count - 1, 0)), str(len(f.values)), str(count + 2)]
        text = f"How many {sector} companies reported a {f.metric.phrase()} greater than {shown} in {f.year}?"
        return Question(self.name, text, str(count), wrong, f.titles, {**f.meta, "threshold": shown})


@register_kind
class PercentChange(NumericKind):
    name = "percent_change"

    def pose(self, f: _Figures, world: World, sector: str, rng: random.Random) -> Question:
        company = rng.choice(f.targets)
        start, middle, end = world.years[0], world.years[1], world.years[-1]
        v0, vm, v1 = (f.of(company, y) for y in (start, middle, end))
        # plausible mistakes: the wrong base, the wrong start year, the absolute change
        wrong = [fmt_value((v1 - v0) / v1 * 100, 2), fmt_value((v1 - vm) / vm * 100, 2), fmt_value(v1 - v0, 2)]
        text = (
            f"By what percentage did the {f.metric.phrase()} of {company.name} change from {start} to {end}? "
            "Give the percent change rounded to two decimals (negative for a decrease)."
        )
        meta = {"metric": f.metric.label, "company": company.name, "start": start, "end": end}
        answer = fmt_value((v1 - v0) / v0 * 100, 2)
        return Question(self.name, text, answer, wrong, [report_title(company.name)], meta)


@register_kind
class Bridge(NumericKind):
    name = "bridge"
    task = MULTI_HOP

    def pose(self, f: _Figures, world: World, sector: str, rng: random.Random) -> Question:
        d = f.decimals
        company = rng.choice(world.companies)
        decoy = rng.choice([c for c in world.companies if c is not company])
        wrong = [fmt_value(f.of(company, f.wrong_year), d), fmt_value(f.of(decoy), d)]
        text = f"What was the {f.metric.phrase()} in {f.year} of the company founded by {company.founder}?"
        meta = {"metric": f.metric.label, "year": f.year, "founder": company.founder}
        return Question(self.name, text, fmt_value(f.of(company), d), wrong, [report_title(company.name)], meta)


@register_kind
class WhatIfTotal(NumericKind):
    """A hypothetical change to one reported figure and its effect on a sector total (computed, so verifiable)."""

    name = "what_if_total"
    task = HYPOTHETICAL

    def pose(self, f: _Figures, world: World, sector: str, rng: random.Random) -> Question:
        company = rng.choice(f.targets)
        percent = rng.choice((10, 20, 25, 50))
        total, change = sum(f.values), f.of(company) * percent / Decimal(100)
        # plausible mistakes: the hypothesis ignored, applied to the whole total, applied to the wrong year's value
        wrong = [
            fmt_value(total, 2),
            fmt_value(total * (100 + percent) / Decimal(100), 2),
            fmt_value(total + f.of(company, f.wrong_year) * percent / Decimal(100), 2),
        ]
        phrase = f.metric.phrase()
        text = (
            f"Suppose the {phrase} {company.name} reported for {f.year} had been {percent}% higher, and every other "
            f"figure had stayed as reported. What would the total {phrase} of all {sector} companies in {f.year} "
            "have been then? Round to two decimals."
        )
        meta = {**f.meta, "company": company.name, "percent": percent}
        return Question(self.name, text, fmt_value(total + change, 2), wrong, f.titles, meta)


# ----------------------------------------------------------------------------- qa: multi-hop chains


class ChainKind(QuestionKind):
    """A multi-hop chain that starts at a company drawn from the whole world."""

    answer_type = QA
    task = MULTI_HOP

    def ask(self, world: World, sector: str, rng: random.Random) -> Question:
        return self.pose(rng.choice(world.companies), world)

    @abstractmethod
    def pose(self, company: Company, world: World) -> Question:
        """The chain from ``company``."""


@register_kind
class HqMayor(ChainKind):
    name = "hq_mayor"

    def pose(self, company: Company, world: World) -> Question:
        wrong = [p for c, p in sorted(world.mayors.items()) if c != company.city] + [company.founder]
        text = f"Who is the mayor of the city where {company.name} is headquartered?"
        titles = [report_title(company.name), city_title(company.city)]
        return Question(self.name, text, world.mayors[company.city], wrong, titles, {"company": company.name})


@register_kind
class FounderRiver(ChainKind):
    name = "founder_river"

    def pose(self, company: Company, world: World) -> Question:
        birthplace = world.birthplaces[company.founder]
        wrong = [r for c, r in sorted(world.rivers.items()) if c != birthplace]
        text = f"On which river lies the birthplace of the founder of {company.name}? Give the river's name."
        titles = [report_title(company.name), profile_title(company.founder), city_title(birthplace)]
        return Question(self.name, text, world.rivers[birthplace], wrong, titles, {"company": company.name})


# ----------------------------------------------------------------------------- temporal: founding years


@register_kind
class FoundedFirst(QuestionKind):
    """Order of events across documents: the earliest founding among a sector's companies."""

    name = "founded_first"
    answer_type = QA
    task = TEMPORAL

    def ask(self, world: World, sector: str, rng: random.Random) -> Question:
        targets = world.in_sector(sector)
        first = min(targets, key=lambda c: c.founded)
        earlier_elsewhere = [c.name for c in world.companies if c.sector != sector and c.founded < first.founded]
        wrong = [c.name for c in sorted(targets, key=lambda c: -c.founded) if c is not first] + earlier_elsewhere
        wrong += [c.name for c in world.companies if c.sector != sector] + [f"{first.name} Partners"]  # 3 at least
        text = f"Which of the {sector} companies was founded first? Give the company's name."
        titles = [report_title(c.name) for c in targets]
        return Question(self.name, text, first.name, wrong, titles, {"sector": sector})


@register_kind
class YearsBetween(QuestionKind):
    """Time between two events stated in two distant documents."""

    name = "years_between"
    answer_type = NUMERIC
    task = TEMPORAL

    def ask(self, world: World, sector: str, rng: random.Random) -> Question:
        older, newer = sorted(rng.sample(world.companies, 2), key=lambda c: c.founded)
        years = newer.founded - older.founded
        wrong = [str(years + 1), str(years - 1), str(world.years[0] - older.founded)]
        text = f"How many years after {older.name} was {newer.name} founded?"
        titles = [report_title(older.name), report_title(newer.name)]
        meta = {"company_a": older.name, "company_b": newer.name}
        return Question(self.name, text, str(years), wrong, titles, meta)


# ----------------------------------------------------------------------------- niah: one fact among near-duplicates


@register_kind
class HqCity(QuestionKind):
    """Single-fact retrieval: one sentence of one report, with near-namesake reports placing others elsewhere."""

    name = "hq_city"
    answer_type = QA
    task = NIAH

    def ask(self, world: World, sector: str, rng: random.Random) -> Question:
        company = rng.choice(world.companies)
        wrong = [c for c in sorted(world.mayors) if c != company.city]
        text = f"In which city is {company.name} headquartered? Give the city's name."
        return Question(self.name, text, company.city, wrong, [report_title(company.name)], {"company": company.name})


# ----------------------------------------------------------------------------- drawing

BASE_TYPES = (NUMERIC, QA)
"""The answer types kinds have; ``choice`` asks a kind of either as four options."""


def kinds_of(answer_type: str | None = None, task: str | None = None, kinds: Kinds = QUESTION_KINDS) -> tuple[str, ...]:
    """Names of the kinds with this plain answer type and/or task label, in registration order."""
    return tuple(
        name for name, kind in kinds.items() if answer_type in (None, kind.answer_type) and task in (None, kind.task)
    )


def task_labels(kinds: Kinds = QUESTION_KINDS) -> tuple[str, ...]:
    """Every task label some kind has, in registration order."""
    return tuple(dict.fromkeys(kind.task for kind in kinds.values()))


NUMERIC_KINDS = kinds_of(NUMERIC)
QA_KINDS = kinds_of(QA)
KINDS = tuple(QUESTION_KINDS)
TASK_LABELS = task_labels()
"""Every task label some single-context kind has, in registration order."""


def as_choice(question: Question, rng: random.Random) -> tuple[list[str], str]:
    """Four options (gold + three distinct wrong ones, shuffled) and the gold letter."""
    wrong = [w for w in dict.fromkeys(question.wrong) if w != question.answer]
    rng.shuffle(wrong)
    step = 1
    while len(wrong) < 3:  # numeric golds: nudge to distinct nearby values
        base = Decimal(question.answer)
        decimals = max(0, -base.as_tuple().exponent)
        candidate = fmt_value(base + step * max(abs(base) * Decimal("0.07"), Decimal(1)), decimals)
        if candidate != question.answer and candidate not in wrong:
            wrong.append(candidate)
        step = -step if step > 0 else -step + 1
    options = [question.answer] + wrong[:3]
    rng.shuffle(options)
    return options, option_letter(options.index(question.answer))


@dataclass
class Posed:
    """A drawn question as the record shows it: ``answer`` is the gold letter for ``choice``."""

    question: Question
    answer: str
    choices: list[str]
    answer_type: str
    """How it is asked: ``numeric``, ``qa`` or ``choice``."""
    task: str
    """The record's task label: the kind's task, or the answer type when the run labels by answer type."""


def presentations(kind: str, answer_types: Sequence[str], kinds: Kinds = QUESTION_KINDS) -> tuple[str, ...]:
    """The answer types among ``answer_types`` a kind can be asked as: its own, and ``choice`` (any kind)."""
    return tuple(t for t in (kinds[kind].answer_type, CHOICE) if t in answer_types)


def _ask(kind: str, answer_type: str, task: str, world: World, sector: str, rng: random.Random, kinds: Kinds) -> Posed:
    question = kinds[kind].ask(world, sector, rng)
    if answer_type == CHOICE:
        choices, letter = as_choice(question, rng)
        return Posed(question, letter, choices, answer_type, task)
    return Posed(question, question.answer, [], answer_type, task)


def pose(answer_type: str, world: World, sector: str, rng: random.Random, kinds: Kinds = QUESTION_KINDS) -> Posed:
    """Labelled by answer type: a kind of ``answer_type`` (for ``choice``, of a random base type) asked that way."""
    base = rng.choice(BASE_TYPES) if answer_type == CHOICE else answer_type
    return _ask(rng.choice(kinds_of(base, kinds=kinds)), answer_type, answer_type, world, sector, rng, kinds)


def pose_task(
    task: str,
    answer_types: Sequence[str],
    world: World,
    sector: str,
    rng: random.Random,
    kinds: Kinds = QUESTION_KINDS,
) -> Posed:
    """Labelled by task: a kind with task label ``task``, asked as one of the ``answer_types`` it allows."""
    names = [k for k in kinds_of(task=task, kinds=kinds) if presentations(k, answer_types, kinds)]
    if not names:
        raise ValueError(f"no question kind of task {task!r} can be asked as {', '.join(answer_types)}")
    kind = rng.choice(names)
    return _ask(kind, rng.choice(presentations(kind, answer_types, kinds)), task, world, sector, rng, kinds)
