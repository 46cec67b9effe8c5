"""Question kinds: each computes its answer, plausible wrong answers and the documents it needs from the world.

A kind is one class registered with :func:`register_kind`; its ``task`` (numeric or qa) says which plain task
draws it, and every kind also serves the ``choice`` task through :func:`as_choice`. Kinds are drawn by their
position in the registry, so a seed gives the same data only for the same set of kinds.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from qwenlong_verl.common.tasks import CHOICE, NUMERIC, QA
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


class QuestionKind(ABC):
    """One kind of question over a world."""

    name: ClassVar[str]
    task: ClassVar[str]
    """The plain task that draws this kind: ``numeric`` or ``qa``."""

    @abstractmethod
    def ask(self, world: World, sector: str, rng: random.Random) -> Question:
        """A question about ``world`` (``sector`` is the one about 40 % of its companies share)."""


QUESTION_KINDS: dict[str, QuestionKind] = {}


def register_kind(cls: type[QuestionKind]) -> type[QuestionKind]:
    """Class decorator: make ``cls`` drawable under ``cls.name``."""
    if cls.name in QUESTION_KINDS:
        raise ValueError(f"question kind {cls.name!r} registered twice")
    QUESTION_KINDS[cls.name] = cls()
    return cls


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

    task = NUMERIC

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

    def pose(self, f: _Figures, world: World, sector: str, rng: random.Random) -> Question:
        d = f.decimals
        company = rng.choice(world.companies)
        decoy = rng.choice([c for c in world.companies if c is not company])
        wrong = [fmt_value(f.of(company, f.wrong_year), d), fmt_value(f.of(decoy), d)]
        text = f"What was the {f.metric.phrase()} in {f.year} of the company founded by {company.founder}?"
        meta = {"metric": f.metric.label, "year": f.year, "founder": company.founder}
        return Question(self.name, text, fmt_value(f.of(company), d), wrong, [report_title(company.name)], meta)


# ----------------------------------------------------------------------------- qa: multi-hop chains


class ChainKind(QuestionKind):
    """A multi-hop chain that starts at a company drawn from the whole world."""

    task = QA

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


# ----------------------------------------------------------------------------- drawing

BASE_TASKS = (NUMERIC, QA)
"""The tasks kinds belong to; ``choice`` draws one of them, then one of its kinds."""


def kinds_of(task: str) -> tuple[str, ...]:
    """Names of the kinds drawn for a plain task, in registration order."""
    return tuple(name for name, kind in QUESTION_KINDS.items() if kind.task == task)


NUMERIC_KINDS = kinds_of(NUMERIC)
QA_KINDS = kinds_of(QA)
KINDS = tuple(QUESTION_KINDS)


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


def pose(task: str, world: World, sector: str, rng: random.Random) -> Posed:
    """Draw a kind for ``task`` and ask it; ``choice`` wraps a numeric or qa question in four options."""
    base = rng.choice(BASE_TASKS) if task == CHOICE else task
    question = QUESTION_KINDS[rng.choice(kinds_of(base))].ask(world, sector, rng)
    if task == CHOICE:
        choices, letter = as_choice(question, rng)
        return Posed(question, letter, choices)
    return Posed(question, question.answer, [])
