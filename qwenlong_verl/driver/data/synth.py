"""``synth``: long-context questions whose answers are guaranteed by construction (QwenLong-L1.5 / CorpusQA style).

Each example is a small generated world — companies with annual reports (a sector, a headquarters city, a founder
and a markdown table of yearly figures), biographies, city profiles — written out as many documents and padded
with relevant-looking distractors and filler to a target length. The generator knows every fact, so it computes
the answer:

* **numeric** — corpus-level aggregation over the tables of many documents (``sum``, ``mean``, ``max``,
  ``difference``, ``count``, ``percent_change``) and a multi-hop ``bridge`` (founder -> company -> table value);
* **qa** — multi-hop chains whose hops sit in distant documents (``hq_mayor``: company -> city -> mayor;
  ``founder_river``: company -> founder -> birthplace -> river);
* **choice** — any of the above as a four-option question (wrong options are plausible mistakes: a distractor
  company included, the wrong year, a nearby value, another person of the same world).

Distractors look relevant: companies of other sectors with the same table columns, near-namesakes
("<name> Partners") with other facts, sector commentaries quoting figures of other years, biographies and city
profiles outside the chain. Examples are independent and seeded by ``(seed, index)``, so the output is identical
for the same arguments however it is produced. Lengths are measured with the builtin tokenizer: each example aims
at a target drawn evenly from ``[min_tokens, max_tokens]``; ``prepare`` then counts the exact templated length.
"""

from __future__ import annotations

import functools
import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from qwenlong_verl.common.tasks import CHOICE, NUMERIC, QA, TASKS, normalize_task
from qwenlong_verl.driver.data.template import build_messages, option_letter

logger = logging.getLogger(__name__)

MIN_TOKENS_FLOOR = 1500
"""Smallest supported target: the smallest world (three companies, their people and cities, one distractor of each
kind) takes ~1,300-1,450 tokens."""

NUMERIC_KINDS = ("sum", "mean", "max", "difference", "count", "percent_change", "bridge")
QA_KINDS = ("hq_mayor", "founder_river")
KINDS = NUMERIC_KINDS + QA_KINDS

DATA_SOURCE_PREFIX = "qwenlong_synth"

# ----------------------------------------------------------------------------- vocabulary

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


def _stem(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_ONSETS) + rng.choice(_NUCLEI) + rng.choice(_CODAS) for _ in range(syllables)).title()


# ----------------------------------------------------------------------------- filler text

_ADJ = "steady modest strong weak uneven seasonal regional cautious robust flat".split()
_NOUNS = (
    "demand supply pricing freight inventory staffing maintenance logistics procurement marketing "
    "compliance training tooling packaging warehousing"
).split()
_PLACES = "northern southern eastern western coastal inland central".split()
_MONTHS = "January February March April May June July August September October November December".split()
_VERBS = "improved weakened stabilised recovered slowed accelerated fluctuated".split()
_ADV = "slightly markedly gradually sharply moderately unexpectedly".split()

_FILLER_TEMPLATES = (
    "{Month} brought {adj} {noun} across the {place} markets.",
    "Management said that {noun} {verb} {adv} during the second half of the year.",
    "The board reviewed {noun} and {noun2} policies at its {Month} meeting.",
    "Analysts described the outlook for {noun} as {adj}, citing {noun2} costs.",
    "Several sites in the {place} area reported {adj} {noun} after the {Month} upgrade.",
    "A review of {noun} practices found that {noun2} {verb} {adv} compared with the prior period.",
    "The audit committee noted no material issues with {noun} or {noun2}.",
    "Investment in {noun} continued, although {noun2} {verb} {adv} in {Month}.",
    "Customers in the {place} region asked for faster {noun} and clearer {noun2} terms.",
    "The company plans to publish an update on {noun} in {Month}.",
    "Weather in {Month} affected {noun} in the {place} districts for several weeks.",
    "An internal survey rated {noun} as {adj} and {noun2} as in need of attention.",
    "Contracts signed in {Month} cover {noun} and {noun2} for the next two seasons.",
    "Staff turnover in {noun} {verb} {adv}, according to the human resources office.",
    "The {adj} trend in {noun} is expected to continue into the {place} expansion.",
)

_FILLER_TABLE_HEADERS = (
    ("Facility", "Capacity (units per day)", "Utilisation (%)"),
    ("Project", "Budget (thousand USD)", "Completion (%)"),
    ("Warehouse", "Floor area (square meters)", "Occupancy (%)"),
)


@dataclass(frozen=True)
class _Pool:
    """Pre-built filler sentences with their exact token counts (builtin tokenizer)."""

    sentences: tuple[str, ...]
    tokens: tuple[int, ...]


@functools.lru_cache(maxsize=4)
def _filler_pool(seed: int, size: int = 4000) -> _Pool:
    rng = random.Random(f"filler:{seed}")
    sentences = []
    for _ in range(size):
        template = rng.choice(_FILLER_TEMPLATES)
        noun, noun2 = rng.sample(_NOUNS, 2)
        sentences.append(
            template.format(
                Month=rng.choice(_MONTHS),
                adj=rng.choice(_ADJ),
                noun=noun,
                noun2=noun2,
                place=rng.choice(_PLACES),
                verb=rng.choice(_VERBS),
                adv=rng.choice(_ADV),
            )
        )
    counts = _count_tokens([" " + s for s in sentences])
    return _Pool(tuple(sentences), tuple(counts))


@functools.lru_cache(maxsize=1)
def _raw_tokenizer():
    """The builtin tokenizer through the ``tokenizers`` library alone (no transformers import: fast start)."""
    from tokenizers import Tokenizer

    from qwenlong_verl.driver.data.tokenizer import builtin_tokenizer_path

    return Tokenizer.from_file(str(Path(builtin_tokenizer_path()) / "tokenizer.json"))


def _count_tokens(texts: list[str]) -> list[int]:
    return [len(e.ids) for e in _raw_tokenizer().encode_batch(texts, add_special_tokens=False)]


def _filler_paragraphs(rng: random.Random, pool: _Pool, budget: int) -> tuple[str, int]:
    """Paragraphs of filler sentences worth about ``budget`` tokens; returns text and its estimated size."""
    paragraphs, used = [], 0
    while used < budget:
        sentences = []
        for _ in range(rng.randint(3, 7)):
            k = rng.randrange(len(pool.sentences))
            sentences.append(pool.sentences[k])
            used += pool.tokens[k]
            if used >= budget:
                break
        paragraphs.append(" ".join(sentences))
        used += 1
    return "\n\n".join(paragraphs), used


def _filler_table(rng: random.Random) -> str:
    header = rng.choice(_FILLER_TABLE_HEADERS)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _ in range(rng.randint(3, 6)):
        lines.append(f"| {_stem(rng, 2)} | {rng.randint(100, 9000)} | {rng.uniform(40, 99):.1f} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the world


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


def _unique(rng: random.Random, make: Callable[[], str], count: int, taken: set[str]) -> list[str]:
    names: list[str] = []
    while len(names) < count:
        name = make()
        if name not in taken:
            taken.add(name)
            names.append(name)
    return names


def _build_world(rng: random.Random, n_companies: int, n_metrics: int, n_extra: int, sector: str) -> World:
    """Companies (about 40 % in ``sector``), their founders and cities, plus ``n_extra`` cities and people that
    no company links to (distractor profiles)."""
    taken: set[str] = set()
    metrics = sorted(rng.sample(METRICS, n_metrics), key=METRICS.index)
    first_year = rng.randint(2012, 2021)
    years = list(range(first_year, first_year + 3))
    cities = _unique(rng, lambda: _stem(rng, rng.randint(2, 3)), n_companies + n_extra, taken)
    rivers = _unique(rng, lambda: _stem(rng, 2), len(cities), taken)
    people = _unique(
        rng, lambda: f"{rng.choice(_FIRST)} {rng.choice(_LAST)}", n_companies + len(cities) + n_extra, taken
    )
    stems = _unique(rng, lambda: _stem(rng, rng.randint(2, 3)), n_companies, taken)
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
            name=f"{stem} {rng.choice(_COMPANY_SUFFIXES)}",
            sector=sectors[i],
            city=rng.choice(cities),
            founder=founders[i],
            figures={m.name: {y: m.draw(rng) for y in years} for m in metrics},
        )
        for i, stem in enumerate(stems)
    ]
    birthplaces = {person: rng.choice(cities) for person in founders + people[n_companies + len(cities) :]}
    return World(years, metrics, companies, mayors, dict(zip(cities, rivers, strict=True)), birthplaces)


def fmt_value(value: Decimal | int, decimals: int) -> str:
    """Numbers as written in tables and answers: fixed decimals rounded half up, no thousands separator."""
    shown = Decimal(value).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return str(shown.copy_abs() if shown.is_zero() else shown)


# ----------------------------------------------------------------------------- documents


@dataclass
class _Doc:
    title: str
    text: str
    essential: bool = False
    """Holds a fact the answer depends on (placed deliberately, never dropped)."""


def _report(company: Company, world: World, rng: random.Random, pool: _Pool, pad: int) -> _Doc:
    table = ["| Metric | " + " | ".join(map(str, world.years)) + " |", "|---" * (len(world.years) + 1) + "|"]
    for metric in world.metrics:
        cells = " | ".join(fmt_value(company.figures[metric.name][y], metric.decimals) for y in world.years)
        table.append(f"| {metric.label} | {cells} |")
    before, _ = _filler_paragraphs(rng, pool, pad // 2)
    after, _ = _filler_paragraphs(rng, pool, pad - pad // 2)
    text = (
        f"{company.name} is a {company.sector} company headquartered in {company.city}. "
        f"{company.name} was founded by {company.founder}.\n\n{before}\n\n"
        f"The table below lists key figures of {company.name} for {world.years[0]} to {world.years[-1]}.\n\n"
        + "\n".join(table)
        + f"\n\n{after}"
    )
    return _Doc(f"{company.name} annual report", text)


def _biography(person: str, city: str, rng: random.Random, pool: _Pool, pad: int) -> _Doc:
    body, _ = _filler_paragraphs(rng, pool, pad)
    return _Doc(f"Profile of {person}", f"{person} was born in {city}.\n\n{body}")


def _city_profile(city: str, mayor: str, river: str, rng: random.Random, pool: _Pool, pad: int) -> _Doc:
    body, _ = _filler_paragraphs(rng, pool, pad)
    return _Doc(f"{city} city guide", f"The mayor of {city} is {mayor}. {city} lies on the {river} River.\n\n{body}")


def _commentary(sector: str, world: World, rng: random.Random, pool: _Pool, pad: int) -> _Doc:
    """Looks relevant (sector, metric, totals) but quotes years outside the reports' tables."""
    metric = rng.choice(world.metrics)
    past = world.years[0] - rng.randint(2, 6)
    figure = fmt_value(metric.draw(rng) * rng.randint(3, 9), metric.decimals)
    body, _ = _filler_paragraphs(rng, pool, pad)
    text = (
        f"Analysts estimated the combined {metric.phrase()} of the {sector} sector in {past} at {figure}. "
        f"Forecasts for later years were withheld.\n\n{body}"
    )
    return _Doc(f"{sector.title()} sector commentary", text)


def _namesake(company: Company, founder: str, world: World, rng: random.Random) -> Company:
    """A near-namesake with other facts and other figures: relevant-looking, never part of the answer."""
    others = [s for s in SECTORS if s != company.sector]
    return Company(
        name=f"{company.name} Partners",
        sector=rng.choice(others),
        city=rng.choice([c for c in world.mayors if c != company.city]),
        founder=founder,
        figures={m.name: {y: m.draw(rng) for y in world.years} for m in world.metrics},
    )


def _filler_doc(rng: random.Random, pool: _Pool, budget: int) -> _Doc:
    body, _ = _filler_paragraphs(rng, pool, max(budget - 40, 20))
    if rng.random() < 0.5:
        body = f"{body}\n\n{_filler_table(rng)}"
    return _Doc(f"{_stem(rng, 2)} {rng.choice(['bulletin', 'memo', 'newsletter', 'minutes', 'notes'])}", body)


# ----------------------------------------------------------------------------- questions


@dataclass
class _Question:
    kind: str
    text: str
    answer: str
    wrong: list[str]
    """Plausible wrong answers (for the choice variant)."""
    essential: list[str]
    """Titles of the documents the answer depends on, in hop order."""
    meta: dict[str, Any] = field(default_factory=dict)


def _targets(world: World, sector: str) -> list[Company]:
    return [c for c in world.companies if c.sector == sector]


def _numeric_question(kind: str, world: World, sector: str, rng: random.Random) -> _Question:
    metric = rng.choice(world.metrics)
    year = rng.choice(world.years)
    targets = _targets(world, sector)
    others = [c for c in world.companies if c.sector != sector]
    values = [c.figures[metric.name][year] for c in targets]
    d = metric.decimals
    meta = {"metric": metric.label, "year": year, "sector": sector}
    titles = [f"{c.name} annual report" for c in targets]
    wrong_year = rng.choice([y for y in world.years if y != year])
    if kind == "sum":
        answer = fmt_value(sum(values), d)
        wrong = [
            fmt_value(sum(values) - values[0], d),
            fmt_value(sum(c.figures[metric.name][wrong_year] for c in targets), d),
        ] + ([fmt_value(sum(values) + others[0].figures[metric.name][year], d)] if others else [])
        text = f"What was the total {metric.phrase()} of all {sector} companies in {year}?"
    elif kind == "mean":
        mean = sum(values) / len(values)
        answer = fmt_value(mean, 2)
        wrong = [
            fmt_value(sum(values) / (len(values) + 1), 2),
            fmt_value(sum(c.figures[metric.name][wrong_year] for c in targets) / len(values), 2),
            fmt_value(max(values), 2),
        ]
        text = f"What was the average {metric.phrase()} of the {sector} companies in {year}? Round to two decimals."
    elif kind == "max":
        answer = fmt_value(max(values), d)
        all_values = [c.figures[metric.name][year] for c in world.companies]
        wrong = [fmt_value(min(values), d), fmt_value(max(all_values + [max(values) * Decimal("1.1")]), d)]
        wrong += [fmt_value(max(c.figures[metric.name][wrong_year] for c in targets), d)]
        text = f"What was the highest {metric.phrase()} reported for {year} by any {sector} company?"
    elif kind == "count":
        distinct = sorted(set(values))
        if len(distinct) > 1:  # a threshold strictly between two neighbouring values, shown with one more decimal
            cut = rng.randrange(len(distinct) - 1)
            shown = fmt_value((distinct[cut] + distinct[cut + 1]) / 2, d + 1)
        else:
            shown = fmt_value(distinct[0] - Decimal("0.5"), d + 1)
        threshold = Decimal(shown)
        count = sum(v > threshold for v in values)
        answer = str(count)
        wrong = [str(count + 1), str(max(count - 1, 0)), str(len(values)), str(count + 2)]
        meta["threshold"] = shown
        text = f"How many {sector} companies reported a {metric.phrase()} greater than {shown} in {year}?"
    elif kind == "difference":
        a, b = rng.sample(targets, 2)
        va, vb = a.figures[metric.name][year], b.figures[metric.name][year]
        answer = fmt_value(va - vb, d)
        wrong = [fmt_value(vb - va, d), fmt_value(va + vb, d), fmt_value(a.figures[metric.name][wrong_year] - vb, d)]
        meta.update(company_a=a.name, company_b=b.name)
        titles = [f"{a.name} annual report", f"{b.name} annual report"]
        text = (
            f"By how much did the {metric.phrase()} of {a.name} exceed that of {b.name} in {year}? "
            f"Give {a.name}'s value minus {b.name}'s value."
        )
    elif kind == "percent_change":
        company = rng.choice(targets)
        start, middle, end = world.years[0], world.years[1], world.years[-1]
        v0, vm, v1 = (company.figures[metric.name][y] for y in (start, middle, end))
        answer = fmt_value((v1 - v0) / v0 * 100, 2)
        # plausible mistakes: the wrong base, the wrong start year, the absolute change
        wrong = [fmt_value((v1 - v0) / v1 * 100, 2), fmt_value((v1 - vm) / vm * 100, 2), fmt_value(v1 - v0, 2)]
        meta = {"metric": metric.label, "company": company.name, "start": start, "end": end}
        titles = [f"{company.name} annual report"]
        text = (
            f"By what percentage did the {metric.phrase()} of {company.name} change from {start} to {end}? "
            "Give the percent change rounded to two decimals (negative for a decrease)."
        )
    elif kind == "bridge":
        company = rng.choice(world.companies)
        value = company.figures[metric.name][year]
        answer = fmt_value(value, d)
        decoy = rng.choice([c for c in world.companies if c is not company])
        wrong = [fmt_value(company.figures[metric.name][wrong_year], d), fmt_value(decoy.figures[metric.name][year], d)]
        meta = {"metric": metric.label, "year": year, "founder": company.founder}
        titles = [f"{company.name} annual report"]
        text = f"What was the {metric.phrase()} in {year} of the company founded by {company.founder}?"
    else:
        raise ValueError(f"unknown numeric kind {kind!r}")
    return _Question(kind, text, answer, wrong, titles, meta)


def _qa_question(kind: str, world: World, rng: random.Random) -> _Question:
    company = rng.choice(world.companies)
    if kind == "hq_mayor":
        answer = world.mayors[company.city]
        wrong = [p for c, p in sorted(world.mayors.items()) if c != company.city] + [company.founder]
        text = f"Who is the mayor of the city where {company.name} is headquartered?"
        titles = [f"{company.name} annual report", f"{company.city} city guide"]
        meta = {"company": company.name}
    elif kind == "founder_river":
        birthplace = world.birthplaces[company.founder]
        answer = world.rivers[birthplace]
        wrong = [r for c, r in sorted(world.rivers.items()) if c != birthplace]
        text = f"On which river lies the birthplace of the founder of {company.name}? Give the river's name."
        titles = [f"{company.name} annual report", f"Profile of {company.founder}", f"{birthplace} city guide"]
        meta = {"company": company.name}
    else:
        raise ValueError(f"unknown qa kind {kind!r}")
    return _Question(kind, text, answer, wrong, titles, meta)


def _as_choice(question: _Question, rng: random.Random) -> tuple[list[str], str]:
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


# ----------------------------------------------------------------------------- examples


def target_tokens(index: int, n: int, min_tokens: int, max_tokens: int, seed: int) -> int:
    """Length target of example ``index``: stratified over ``[min_tokens, max_tokens]`` so lengths cover it evenly."""
    strata = list(range(n))
    random.Random(f"strata:{seed}:{n}").shuffle(strata)
    jitter = random.Random(f"jitter:{seed}:{index}").random()
    return int(min_tokens + (max_tokens - min_tokens) * (strata[index] + jitter) / n)


def _place(docs: list[_Doc], essential: list[_Doc], rng: random.Random) -> list[_Doc]:
    """Spread the documents the answer needs over the whole text, the rest shuffled around them.

    The text is cut into one equal segment per needed document and each goes into the middle half of its
    segment, so two of them are at least about half a segment apart. Half the time the hops appear in reverse
    reading order, so reading order never gives the chain away.
    """
    rng.shuffle(docs)
    if rng.random() < 0.5:
        essential = essential[::-1]
    total = len(docs) + len(essential)
    k = len(essential)
    slots = []
    for j in range(k):
        start, end = j * total // k, (j + 1) * total // k
        quarter = (end - start) // 4
        slots.append(rng.randrange(start + quarter, max(end - quarter, start + quarter + 1)))
    placed: list[_Doc | None] = [None] * total
    for slot, doc in zip(slots, essential, strict=True):
        placed[slot] = doc
    rest = iter(docs)
    return [doc if doc is not None else next(rest) for doc in placed]


_TEMPLATE_TOKENS = 75
"""Chat markup, preamble, ``<text>`` tags and the answer-format sentence (builtin tokenizer)."""
_HEADING_TOKENS = 6
"""``Document N: `` heading and the blank lines between documents."""


def generate_example(
    index: int, n: int, min_tokens: int, max_tokens: int, seed: int = 0, tasks: Sequence[str] = TASKS
) -> dict:
    """Example ``index`` of a run of ``n`` (a raw record ``prepare`` accepts); pure function of its arguments."""
    rng = random.Random(f"example:{seed}:{index}")
    pool = _filler_pool(seed)
    task = tasks[index % len(tasks)]
    target = target_tokens(index, n, min_tokens, max_tokens, seed)

    small = target < 3000  # a smaller world: three companies, three table rows, one distractor of each kind
    n_companies = 3 if small else max(4, min(14, target // 1200))
    n_extra = 1 if small else 2
    sector = rng.choice(SECTORS)
    world = _build_world(rng, n_companies, 3 if small else len(METRICS), n_extra, sector)

    base_kind_task = task
    if task == CHOICE:
        base_kind_task = rng.choice((NUMERIC, QA))
    kind = rng.choice(NUMERIC_KINDS if base_kind_task == NUMERIC else QA_KINDS)
    question = (
        _numeric_question(kind, world, sector, rng) if base_kind_task == NUMERIC else _qa_question(kind, world, rng)
    )
    choices: list[str] = []
    answer = question.answer
    if task == CHOICE:
        choices, answer = _as_choice(question, rng)

    # documents every question of this world could need, each padded to a share of the budget
    structural = len(world.companies) + len(world.mayors) + len(world.birthplaces) + 2
    pad = max(0, int(target * 0.45 / structural) - 60)
    docs = [_report(c, world, rng, pool, rng.randint(pad // 2, pad) if pad else 0) for c in world.companies]
    spare_people = [p for p in world.birthplaces if p not in {c.founder for c in world.companies}]
    docs += [
        _report(_namesake(c, founder, world, rng), world, rng, pool, pad // 2)
        for c, founder in zip(rng.sample(world.companies, n_extra), spare_people, strict=False)
    ]
    docs += [_biography(p, city, rng, pool, pad // 2) for p, city in world.birthplaces.items()]
    docs += [_city_profile(city, world.mayors[city], world.rivers[city], rng, pool, pad // 2) for city in world.mayors]
    docs += [_commentary(sector, world, rng, pool, pad // 2) for _ in range(n_extra)]

    overhead = _count_tokens([question.text + " " + " ".join(choices)])[0] + _TEMPLATE_TOKENS
    sizes = [size + _HEADING_TOKENS for size in _count_tokens([d.title + "\n" + d.text for d in docs])]
    remaining = target - overhead - sum(sizes)
    while remaining > 60:
        doc = _filler_doc(rng, pool, min(remaining, rng.randint(400, 2500)))
        docs.append(doc)
        sizes.append(_count_tokens([doc.title + "\n" + doc.text])[0] + _HEADING_TOKENS)
        remaining -= sizes[-1]

    by_title = {d.title: d for d in docs}
    essential = [by_title[t] for t in question.essential if t in by_title]
    missing = [t for t in question.essential if t not in by_title]
    if missing:  # a bug, not bad input: the question must only depend on documents we wrote
        raise AssertionError(f"question depends on documents that were not generated: {missing}")
    ordered = _place([d for d in docs if d.title not in set(question.essential)], essential, rng)

    record = {
        "id": f"{DATA_SOURCE_PREFIX}-{seed}-{index:07d}",
        "data_source": f"{DATA_SOURCE_PREFIX}_{task}",
        "task": task,
        "kind": question.kind,
        "question": question.text,
        "answer": answer,
        "documents": [{"title": d.title, "text": d.text} for d in ordered],
        "target_tokens": target,
        "approx_tokens": sum(sizes) + overhead,
        "meta": question.meta,
    }
    if choices:
        record["choices"] = choices
    return record


# ----------------------------------------------------------------------------- runs


class SynthError(ValueError):
    """Bad synth arguments."""


@dataclass
class SynthStats:
    """What :func:`synth` wrote."""

    path: str
    examples: int
    document_tokens: int
    """Tokens of all documents (builtin tokenizer, estimate within a few percent)."""
    tasks: dict[str, int]
    kinds: dict[str, int]
    min_tokens: int
    max_tokens: int
    seed: int


def parse_tasks(tasks: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"numeric,choice"`` (or a list, or None for all) -> canonical task labels, order kept, no repeats."""
    if tasks is None:
        return TASKS
    items = tasks.split(",") if isinstance(tasks, str) else list(tasks)
    labels = tuple(dict.fromkeys(normalize_task(t) for t in items if str(t).strip()))
    if not labels:
        raise SynthError(f"give at least one task of {', '.join(TASKS)}")
    return labels


def check_args(n: int, min_tokens: int, max_tokens: int) -> None:
    if n < 1:
        raise SynthError(f"--n must be at least 1, got {n}")
    if min_tokens < MIN_TOKENS_FLOOR:
        raise SynthError(f"--min-tokens must be at least {MIN_TOKENS_FLOOR} (a question's documents need that much)")
    if max_tokens < min_tokens:
        raise SynthError(f"--max-tokens ({max_tokens}) must not be smaller than --min-tokens ({min_tokens})")


def iter_examples(
    n: int, min_tokens: int, max_tokens: int, seed: int = 0, tasks: str | Sequence[str] | None = None
) -> Iterator[dict]:
    """The ``n`` records in order (lazy)."""
    check_args(n, min_tokens, max_tokens)
    labels = parse_tasks(tasks)
    for index in range(n):
        yield generate_example(index, n, min_tokens, max_tokens, seed, labels)


def synth(
    out: str | Path,
    n: int,
    min_tokens: int,
    max_tokens: int,
    seed: int = 0,
    tasks: str | Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SynthStats:
    """Write ``n`` records as jsonl to ``out``; identical bytes for identical arguments."""
    check_args(n, min_tokens, max_tokens)
    labels = parse_tasks(tasks)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    task_counts: Counter[str] = Counter()
    kind_counts: Counter[str] = Counter()
    doc_tokens = 0
    with path.open("w", encoding="utf-8") as handle:
        for done, record in enumerate(iter_examples(n, min_tokens, max_tokens, seed, labels), start=1):
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            task_counts[record["task"]] += 1
            kind_counts[record["kind"]] += 1
            doc_tokens += record["approx_tokens"]
            if progress is not None:
                progress(done, n)
    logger.info("wrote %d synthetic examples (%d document tokens) to %s", n, doc_tokens, path)
    return SynthStats(str(path), n, doc_tokens, dict(task_counts), dict(kind_counts), min_tokens, max_tokens, seed)


def prompt_of(record: dict) -> list[dict]:
    """The chat messages of a synthetic record, through THE template (what ``prepare`` builds)."""
    from qwenlong_verl.driver.data.template import join_documents

    return build_messages(
        join_documents(record["documents"]), record["question"], record["task"], record.get("choices")
    )
