"""The facts of one generated world: companies with yearly figures, their founders and cities, mayors and rivers.

Everything an answer depends on is drawn here, so the question generators compute answers from these objects
and never from text. Values are exact :class:`~decimal.Decimal` and written by :func:`fmt_value` alone.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

SECTORS = (
    "shipping", "mining", "retail", "biotech", "energy", "textile", "software", "agriculture", "aviation", "construction",
)  # fmt: skip


@dataclass(frozen=True)
class Metric:
    """A table row: label, unit and value range."""

    name: str
    unit: str
    low: float
    high: float
    decimals: int
    """Decimals shown in the tables; values are exact :class:`~decimal.Decimal` so answers never depend on float
    summation order."""

    @property
    def label(self) -> str:
        return f"{self.name} ({self.unit})" if self.unit else self.name

    def phrase(self) -> str:
        """How a question names it: ``revenue (in million USD)``, ``number of employees``."""
        if self.name == "Employees":
            return "number of employees"
        return f"{self.name.lower()} (in {self.unit})" if self.unit else self.name.lower()

    def draw(self, rng: random.Random) -> Decimal:
        return Decimal(f"{rng.uniform(self.low, self.high):.{self.decimals}f}")


METRICS = (
    Metric("Revenue", "million USD", 40.0, 950.0, 1),
    Metric("Operating cost", "million USD", 25.0, 700.0, 1),
    Metric("Employees", "", 120, 24000, 0),
    Metric("Shipments", "thousand units", 5.0, 880.0, 1),
    Metric("Research spending", "million USD", 1.0, 120.0, 1),
)

_FIRST = (
    "Alice Bruno Clara Dmitri Elena Farid Greta Hugo Ines Jonas Keiko Lars Mira Nadia Omar Priya Quentin Rosa Sven "
    "Tomas Uma Viktor Wen Xavier Yusuf Zara Anton Beatriz Cyrus Delia Emil Fiona Gustav Helena Ivan Julia Kofi Leila"
).split()
_LAST = (
    "Chen Garcia Novak Okafor Petrov Santos Tanaka Weber Kowalski Lindqvist Moreau Haddad Ibrahim Nakamura Rossi "
    "Schmidt Silva Fischer Brandt Costa Dubois Eriksen Fontaine Gallo Horvat Jensen Kaur Laine Mendez Nilsen Ortiz"
).split()
_COMPANY_SUFFIXES = ("Logistics", "Industries", "Holdings", "Systems", "Works", "Resources", "Dynamics", "Group")
_ONSETS = "b br c cl d dr f g gr h k l m n p pr r s st t tr v w z".split()
_NUCLEI = "a e i o u ai ea io ou".split()
_CODAS = ["", "", "n", "r", "l", "s", "th", "nd", "rk", "m", "x", "ck"]


def stem(rng: random.Random, syllables: int) -> str:
    """A pronounceable made-up name (cities, rivers, company stems, filler facilities)."""
    return "".join(rng.choice(_ONSETS) + rng.choice(_NUCLEI) + rng.choice(_CODAS) for _ in range(syllables)).title()


FOUNDING_YEARS = range(1950, 2010)
"""Companies are founded in these years, before every report's first year (2012 or later)."""


@dataclass
class Company:
    name: str
    sector: str
    city: str
    founder: str
    figures: dict[str, dict[int, Decimal]]
    """metric name -> year -> value."""
    founded: int
    """Year of founding; distinct among a single-context world's companies, so "which was founded first" has one
    answer (a corpus world's hundreds of companies share years)."""


@dataclass
class World:
    years: list[int]
    metrics: list[Metric]
    """The rows of every report table in this world."""
    companies: list[Company]
    mayors: dict[str, str]
    """city -> mayor."""
    rivers: dict[str, str]
    """city -> river."""
    birthplaces: dict[str, str]
    """person -> city."""

    def in_sector(self, sector: str) -> list[Company]:
        return [c for c in self.companies if c.sector == sector]


def _unique(rng: random.Random, make: Callable[[], str], count: int, taken: set[str]) -> list[str]:
    names: list[str] = []
    while len(names) < count:
        name = make()
        if name not in taken:
            taken.add(name)
            names.append(name)
    return names


def build_world(rng: random.Random, n_companies: int, n_metrics: int, n_extra: int, sector: str) -> World:
    """Companies (about 40 % in ``sector``), their founders and cities, plus ``n_extra`` cities and people that
    no company links to (distractor profiles)."""
    taken: set[str] = set()
    metrics = sorted(rng.sample(METRICS, n_metrics), key=METRICS.index)
    first_year = rng.randint(2012, 2021)
    years = list(range(first_year, first_year + 3))
    cities = _unique(rng, lambda: stem(rng, rng.randint(2, 3)), n_companies + n_extra, taken)
    rivers = _unique(rng, lambda: stem(rng, 2), len(cities), taken)
    people = _unique(
        rng, lambda: f"{rng.choice(_FIRST)} {rng.choice(_LAST)}", n_companies + len(cities) + n_extra, taken
    )
    stems = _unique(rng, lambda: stem(rng, rng.randint(2, 3)), n_companies, taken)
    # about 40 % of the companies (at least two) are in the question's sector; the others are distractors
    n_target = max(2, round(n_companies * 0.4))
    sectors = [sector] * n_target + [
        rng.choice([s for s in SECTORS if s != sector]) for _ in range(n_companies - n_target)
    ]
    rng.shuffle(sectors)
    founding = rng.sample(FOUNDING_YEARS, n_companies)
    founders = people[:n_companies]
    mayors = dict(zip(cities, people[n_companies : n_companies + len(cities)], strict=True))
    companies = [
        Company(
            name=f"{name} {rng.choice(_COMPANY_SUFFIXES)}",
            sector=sectors[i],
            city=rng.choice(cities),
            founder=founders[i],
            figures={m.name: {y: m.draw(rng) for y in years} for m in metrics},
            founded=founding[i],
        )
        for i, name in enumerate(stems)
    ]
    birthplaces = {person: rng.choice(cities) for person in founders + people[n_companies + len(cities) :]}
    return World(years, metrics, companies, mayors, dict(zip(cities, rivers, strict=True)), birthplaces)


def build_corpus_world(rng: random.Random, n_companies: int, n_cities: int, n_profiles: int) -> World:
    """A corpus-scale world: hundreds of companies over a few sectors (about six companies or more each) and
    ``n_cities`` cities, every metric in every table, and ``n_profiles`` founders and mayors with a birthplace.

    Company counts per city are uneven, and exactly one city is the headquarters of the most companies, so
    "which city has the most" has one answer. People's surnames include made-up ones, so thousands of people
    get distinct names.
    """
    taken: set[str] = set()
    first_year = rng.randint(2012, 2021)
    years = list(range(first_year, first_year + 3))
    cities = _unique(rng, lambda: stem(rng, rng.randint(2, 3)), n_cities, taken)
    rivers = _unique(rng, lambda: stem(rng, 2), n_cities, taken)
    surnames = [*_LAST, *_unique(rng, lambda: stem(rng, 2), (n_companies + n_cities) // 4 + 1, taken)]
    people = _unique(rng, lambda: f"{rng.choice(_FIRST)} {rng.choice(surnames)}", n_companies + n_cities, taken)
    stems = _unique(rng, lambda: stem(rng, rng.randint(2, 3)), n_companies, taken)
    sectors = rng.sample(SECTORS, max(2, min(len(SECTORS), n_companies // 6)))
    sector_weights = [rng.uniform(1.0, 3.0) for _ in sectors]
    city_weights = [rng.uniform(0.5, 2.5) for _ in cities]
    companies = [
        Company(
            name=f"{name} {rng.choice(_COMPANY_SUFFIXES)}",
            sector=rng.choices(sectors, sector_weights)[0],
            city=rng.choices(cities, city_weights)[0],
            founder=people[i],
            figures={m.name: {y: m.draw(rng) for y in years} for m in METRICS},
            founded=rng.choice(FOUNDING_YEARS),
        )
        for i, name in enumerate(stems)
    ]
    counts = {city: sum(c.city == city for c in companies) for city in cities}
    top = max(counts.values())
    tied = [city for city in cities if counts[city] == top]
    for city in tied[1:]:  # one busiest city: each other city tied with the first gives it one company
        moved = next(c for c in reversed(companies) if c.city == city)
        moved.city = tied[0]
    mayors = dict(zip(cities, people[n_companies:], strict=True))
    birthplaces = {person: rng.choice(cities) for person in rng.sample(people, min(n_profiles, len(people)))}
    return World(years, list(METRICS), companies, mayors, dict(zip(cities, rivers, strict=True)), birthplaces)


def namesake(company: Company, founder: str, world: World, rng: random.Random, sector: str) -> Company:
    """A near-namesake with other facts and other figures: relevant-looking, never part of the answer. It is in
    neither its original's sector nor the question's ``sector``, so no sector aggregate or ranking counts it."""
    others = [s for s in SECTORS if s not in (company.sector, sector)]
    return Company(
        name=f"{company.name} Partners",
        sector=rng.choice(others),
        city=rng.choice([c for c in world.mayors if c != company.city]),
        founder=founder,
        figures={m.name: {y: m.draw(rng) for y in world.years} for m in world.metrics},
        founded=rng.choice([y for y in FOUNDING_YEARS if y != company.founded]),
    )


def fmt_value(value: Decimal | int, decimals: int) -> str:
    """Numbers as written in tables and answers: fixed decimals rounded half up, no thousands separator."""
    shown = Decimal(value).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return str(shown.copy_abs() if shown.is_zero() else shown)
