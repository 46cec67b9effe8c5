"""Corpus-scale question kinds: every answer aggregates facts stated in many documents of a corpus (CorpusQA style).

Over hundreds of documents, retrieving a few passages cannot answer a count, a sum or a ranking: the question
needs every report of a sector or a city, or every report there is. The answers are computed exactly from the
world (Decimal arithmetic), and each fact they use is stated once, in a report or a city guide.

These kinds are a table of their own (:data:`CORPUS_KINDS`), drawn only by corpus runs, so single-context runs
draw as before. Two task labels: ``corpus_numerical`` (QwenLong-L1.5's corpus-level numerical calculation: sums,
means, spreads) and ``corpus_aggregation`` (counts, comparisons and rankings over the corpus).
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

from qwenlong_verl.common.tasks import NUMERIC, QA
from qwenlong_verl.driver.data.synth.documents import city_title, report_title
from qwenlong_verl.driver.data.synth.questions import Question, QuestionKind, registrar
from qwenlong_verl.driver.data.synth.world import Company, Metric, World, fmt_value

CORPUS_NUMERICAL = "corpus_numerical"
"""Corpus-level numerical calculation: a sum, mean or spread of figures from many reports."""
CORPUS_AGGREGATION = "corpus_aggregation"
"""Corpus-level aggregation whose answer is a count, the winner of a comparison or a ranking."""

_NUMBERS = {3: "three", 4: "four", 5: "five"}

MIN_RANKED = 4
"""Fewest companies a sector needs to be a question's focus (a ranking of the top ones among more)."""

CORPUS_KINDS: dict[str, QuestionKind] = {}
"""The kinds of corpus examples, by name, in registration order."""

register_corpus_kind = registrar(CORPUS_KINDS)
"""Class decorator: make ``cls`` drawable in corpus runs."""


def _value(company: Company, metric: Metric, year: int) -> Decimal:
    return company.figures[metric.name][year]


def _titles(companies: list[Company]) -> list[str]:
    return [report_title(c.name) for c in companies]


def _by(world: World, key: Callable[[Company], str]) -> dict[str, list[Company]]:
    groups: dict[str, list[Company]] = {}
    for company in world.companies:
        groups.setdefault(key(company), []).append(company)
    return groups


def focus_sectors(world: World) -> list[str]:
    """Sectors with at least :data:`MIN_RANKED` companies, sorted: the focus of a corpus question is one of them."""
    return sorted(s for s, members in _by(world, lambda c: c.sector).items() if len(members) >= MIN_RANKED)


class _Draw:
    """The metric, year and a wrong year every figure question starts from."""

    def __init__(self, world: World, rng: random.Random):
        self.metric = rng.choice(world.metrics)
        self.year = rng.choice(world.years)
        self.wrong_year = rng.choice([y for y in world.years if y != self.year])
        self.meta = {"metric": self.metric.label, "year": self.year}

    def of(self, company: Company, year: int | None = None) -> Decimal:
        return _value(company, self.metric, self.year if year is None else year)

    def fmt(self, value: Decimal) -> str:
        return fmt_value(value, self.metric.decimals)


# ----------------------------------------------------------------------------- corpus_numerical


def _city_with_companies(world: World, rng: random.Random) -> tuple[str, list[Company]]:
    """A city that is the headquarters of two companies or more (the busiest one always is)."""
    cities = _by(world, lambda c: c.city)
    city = rng.choice(sorted(c for c, members in cities.items() if len(members) >= 2))
    return city, cities[city]


def _total_wrong(d: _Draw, members: list[Company], world: World) -> list[str]:
    """Plausible mistakes of a sum: one company missed, the wrong year read, one company too many."""
    total = sum(d.of(c) for c in members)
    outsider = next(c for c in world.companies if c not in members)
    return [
        d.fmt(total - d.of(members[0])),
        d.fmt(sum(d.of(c, d.wrong_year) for c in members)),
        d.fmt(total + d.of(outsider)),
    ]


@register_corpus_kind
class CityTotal(QuestionKind):
    """Sum over the reports of every company headquartered in one city."""

    name = "corpus_city_total"
    answer_type = NUMERIC
    task = CORPUS_NUMERICAL

    def ask(self, world: World, sector: str, rng: random.Random) -> Question:
        d = _Draw(world, rng)
        city, members = _city_with_companies(world, rng)
        text = f"What was the total {d.metric.phrase()} in {d.year} of all companies headquartered in {city}?"
        answer = d.fmt(sum(d.of(c) for c in members))
        return Question(
            self.name, text, answer, _total_wrong(d, members, world), _titles(members), {**d.meta, "city": city}
        )


@register_corpus_kind
class MayorTotal(QuestionKind):
    """A hop (mayor -> city guide -> city), then the sum over that city's companies."""

    name = "corpus_mayor_total"
    answer_type = NUMERIC
    task = CORPUS_NUMERICAL

    def ask(self, world: World, sector: str, rng: random.Random) -> Question:
        d = _Draw(world, rng)
        city, members = _city_with_companies(world, rng)
        mayor = world.mayors[city]
        text = (
            f"What was the total {d.metric.phrase()} in {d.year} of all companies headquartered in the city whose "
            f"mayor is {mayor}?"
        )
        titles = [city_title(city), *_titles(members)]
        answer = d.fmt(sum(d.of(c) for c in members))
        return Question(self.name, text, answer, _total_wrong(d, members, world), titles, {**d.meta, "mayor": mayor})


@register_corpus_kind
class SectorMean(QuestionKind):
    """Mean over every report of a sector."""

    name = "corpus_sector_mean"
    answer_type = NUMERIC
    task = CORPUS_NUMERICAL

    def ask(self, world: World, sector: str, rng: random.Random) -> Question:
        d = _Draw(world, rng)
        members = world.in_sector(sector)
        values = [d.of(c) for c in members]
        n = len(values)
        wrong = [
            fmt_value(sum(values) / (n + 1), 2),
            fmt_value(sum(d.of(c, d.wrong_year) for c in members) / n, 2),
            fmt_value(sum(d.of(c) for c in world.companies) / len(world.companies), 2),
        ]
        text = f"What was the average {d.metric.phrase()} of the {sector} companies in {d.year}?"
        answer = fmt_value(sum(values) / n, 2)
        meta = {**d.meta, "sector": sector}
        return Question(self.name, text, answer, wrong, _titles(members), meta, "Round to two decimals.")


@register_corpus_kind
class Spread(QuestionKind):
    """Largest minus smallest figure of a sector: both extremes need every report of the sector."""

    name = "corpus_spread"
    answer_type = NUMERIC
    task = CORPUS_NUMERICAL

    def ask(self, world: World, sector: str, rng: random.Random) -> Question:
        d = _Draw(world, rng)
        members = world.in_sector(sector)
        values = sorted(d.of(c) for c in members)
        wrong = [
            d.fmt(values[-2] - values[0]),
            d.fmt(values[-1] - values[1]),
            d.fmt(max(d.of(c, d.wrong_year) for c in members) - min(d.of(c, d.wrong_year) for c in members)),
            d.fmt(values[-1]),
        ]
        text = (
            f"What is the difference between the largest and the smallest {d.metric.phrase()} that {sector} "
            f"companies reported for {d.year}?"
        )
        meta = {**d.meta, "sector": sector}
        return Question(self.name, text, d.fmt(values[-1] - values[0]), wrong, _titles(members), meta)


# ----------------------------------------------------------------------------- corpus_aggregation: counts


@register_corpus_kind
class CountFounded(QuestionKind):
    """How many of a sector's companies were founded before a year: every report of the sector is read."""

    name = "corpus_count_founded"
    answer_type = NUMERIC
    task = CORPUS_AGGREGATION

    def ask(self, world: World, sector: str, rng: random.Random) -> Question:
        members = world.in_sector(sector)
        years = sorted({c.founded for c in members})
        cut = rng.choice(years[1:] or [years[0] + 1])  # a year someone was founded in, so "in or before" differs
        count = sum(c.founded < cut for c in members)
        wrong = [
            str(sum(c.founded <= cut for c in members)),
            str(sum(c.founded < cut for c in world.companies)),
            str(count + 1),
            str(max(count - 1, 0)),
        ]
        text = f"How many {sector} companies were founded before {cut}?"
        meta = {"sector": sector, "before": cut}
        return Question(self.name, text, str(count), wrong, _titles(members), meta)


@register_corpus_kind
class CountAbove(QuestionKind):
    """How many of all the corpus's companies reported a figure above a threshold: every report is read."""

    name = "corpus_count_above"
    answer_type = NUMERIC
    task = CORPUS_AGGREGATION

    def ask(self, world: World, sector: str, rng: random.Random) -> Question:
        d = _Draw(world, rng)
        distinct = sorted({d.of(c) for c in world.companies})
        low, high = len(distinct) // 10, max(len(distinct) * 9 // 10, len(distinct) // 10 + 1)
        cut = rng.randrange(low, min(high, len(distinct) - 1))  # between two neighbours, shown with one more decimal
        threshold = fmt_value((distinct[cut] + distinct[cut + 1]) / 2, d.metric.decimals + 1)
        count = sum(d.of(c) > Decimal(threshold) for c in world.companies)
        wrong = [
            str(sum(d.of(c, d.wrong_year) > Decimal(threshold) for c in world.companies)),
            str(len(world.companies) - count),
            str(count + 1),
            str(count - 1),
        ]
        text = (
            f"How many of the companies described in these documents reported a {d.metric.phrase()} greater than "
            f"{threshold} in {d.year}?"
        )
        meta = {**d.meta, "threshold": threshold}
        return Question(self.name, text, str(count), wrong, _titles(world.companies), meta)


# ----------------------------------------------------------------------------- corpus_aggregation: comparisons


@register_corpus_kind
class MostOfFour(QuestionKind):
    """Which of four named companies, in four distant reports, had the highest (or lowest) figure."""

    name = "corpus_most_of_four"
    answer_type = QA
    task = CORPUS_AGGREGATION

    def ask(self, world: World, sector: str, rng: random.Random) -> Question:
        d = _Draw(world, rng)
        highest = rng.random() < 0.5
        for _ in range(1000):  # four distinct figures, so one company wins
            four = rng.sample(world.companies, 4)
            if len({d.of(c) for c in four}) == 4:
                break
        else:
            raise AssertionError("no four companies with distinct figures")  # a bug: figures are drawn at random
        winner = (max if highest else min)(four, key=d.of)
        names = [c.name for c in four]
        text = (
            f"Which of these four companies had the {'highest' if highest else 'lowest'} {d.metric.phrase()} in "
            f"{d.year}: {', '.join(names[:-1])} or {names[-1]}?"
        )
        wrong = [c.name for c in four if c is not winner]  # the choice variant offers the four companies
        meta = {**d.meta, "companies": names, "highest": highest}
        return Question(self.name, text, winner.name, wrong, _titles(four), meta, "Give the company's name.")


@register_corpus_kind
class TopRanking(QuestionKind):
    """The top companies of a sector by a figure, in order: a ranking over every report of the sector."""

    name = "corpus_top_ranking"
    answer_type = QA
    task = CORPUS_AGGREGATION

    def ask(self, world: World, sector: str, rng: random.Random) -> Question:
        members = world.in_sector(sector)
        k = min(5, len(members) - 1)
        pairs = list(itertools.product(world.metrics, world.years))
        rng.shuffle(pairs)
        for metric, year in pairs:  # the first k + 1 figures distinct: one top k, in one order
            ranked = sorted(members, key=lambda c: _value(c, metric, year), reverse=True)
            if len({_value(c, metric, year) for c in ranked[: k + 1]}) == k + 1:
                break
        else:
            raise AssertionError(f"every figure of the {sector} companies ties")  # a bug: drawn at random
        names = [c.name for c in ranked[:k]]
        other_year = rng.choice([y for y in world.years if y != year])
        wrong = [
            names[::-1],
            [names[1], names[0], *names[2:]],
            [*names[:-1], ranked[k].name],
            [c.name for c in sorted(members, key=lambda c: _value(c, metric, other_year), reverse=True)[:k]],
        ]
        text = f"Which {_NUMBERS[k]} {sector} companies had the highest {metric.phrase()} in {year}?"
        meta = {"metric": metric.label, "year": year, "sector": sector, "k": k}
        instruction = "List their names from the highest to the lowest, separated by commas."
        return Question(
            self.name, text, ", ".join(names), [", ".join(w) for w in wrong], _titles(members), meta, instruction
        )


@register_corpus_kind
class BusiestCity(QuestionKind):
    """Which city is the headquarters of the most companies (of a sector, where one city leads it): a count per
    city over every report."""

    name = "corpus_busiest_city"
    answer_type = QA
    task = CORPUS_AGGREGATION

    def ask(self, world: World, sector: str, rng: random.Random) -> Question:
        scopes = []
        for scope in (None, *sorted({c.sector for c in world.companies})):
            members = world.companies if scope is None else world.in_sector(scope)
            per_city = Counter(c.city for c in members)
            counts = sorted(((per_city[city], city) for city in world.mayors), reverse=True)
            if counts[0][0] >= 2 and counts[0][0] > counts[1][0]:
                scopes.append((scope, members, [city for _, city in counts]))
        if not scopes:
            raise AssertionError("the world has no busiest city")  # build_corpus_world makes one
        scope, members, ranked = rng.choice(scopes)
        which = "companies" if scope is None else f"{scope} companies"
        text = f"Which city is the headquarters of the most {which}?"
        meta = {"sector": scope}
        return Question(self.name, text, ranked[0], ranked[1:], _titles(members), meta, "Give the city's name.")
