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


@dataclass
class Company:
    name: str
    sector: str
    city: str
    founder: str
    figures: dict[str, dict[int, Decimal]]
    """metric name -> year -> value."""


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
    founders = people[:n_companies]
    mayors = dict(zip(cities, people[n_companies : n_companies + len(cities)], strict=True))
    companies = [
        Company(
            name=f"{name} {rng.choice(_COMPANY_SUFFIXES)}",
            sector=sectors[i],
            city=rng.choice(cities),
            founder=founders[i],
            figures={m.name: {y: m.draw(rng) for y in years} for m in metrics},
        )
        for i, name in enumerate(stems)
    ]
    birthplaces = {person: rng.choice(cities) for person in founders + people[n_companies + len(cities) :]}
    return World(years, metrics, companies, mayors, dict(zip(cities, rivers, strict=True)), birthplaces)


def namesake(company: Company, founder: str, world: World, rng: random.Random) -> Company:
    """A near-namesake with other facts and other figures: relevant-looking, never part of the answer."""
    others = [s for s in SECTORS if s != company.sector]
    return Company(
        name=f"{company.name} Partners",
        sector=rng.choice(others),
        city=rng.choice([c for c in world.mayors if c != company.city]),
        founder=founder,
        figures={m.name: {y: m.draw(rng) for y in world.years} for m in world.metrics},
    )


def fmt_value(value: Decimal | int, decimals: int) -> str:
    """Numbers as written in tables and answers: fixed decimals rounded half up, no thousands separator."""
    shown = Decimal(value).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return str(shown.copy_abs() if shown.is_zero() else shown)
