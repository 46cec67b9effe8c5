"""The text of a world: annual reports, biographies, city guides, commentaries and filler, and their order.

Fact sentences and tables are written only here, in the fixed wording the tests parse back; everything else
is filler drawn from a pool of sentences whose token counts are known, so padding to a budget is cheap.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import TypeVar

from qwenlong_verl.driver.data.synth.tokens import count_tokens
from qwenlong_verl.driver.data.synth.world import Company, World, fmt_value, namesake, stem

T = TypeVar("T")
"""A document or its plan (:func:`place` orders either)."""

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
class Pool:
    """Pre-built filler sentences with their exact token counts (builtin tokenizer)."""

    sentences: tuple[str, ...]
    tokens: tuple[int, ...]


@functools.lru_cache(maxsize=4)
def filler_pool(seed: int, size: int = 4000) -> Pool:
    """The filler sentences of a run, built once per seed (every example draws from the same pool)."""
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
    counts = count_tokens([" " + s for s in sentences])
    return Pool(tuple(sentences), tuple(counts))


def filler_paragraphs(rng: random.Random, pool: Pool, budget: int) -> tuple[str, int]:
    """Paragraphs of filler sentences worth about ``budget`` tokens, and their token count from the pool's counts
    (so a corpus of millions of tokens is sized without tokenising it)."""
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


def filler_table(rng: random.Random) -> str:
    header = rng.choice(_FILLER_TABLE_HEADERS)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _ in range(rng.randint(3, 6)):
        lines.append(f"| {stem(rng, 2)} | {rng.randint(100, 9000)} | {rng.uniform(40, 99):.1f} |")
    return "\n".join(lines)


@dataclass
class Doc:
    title: str
    text: str


def report_title(company_name: str) -> str:
    return f"{company_name} annual report"


def profile_title(person: str) -> str:
    return f"Profile of {person}"


def city_title(city: str) -> str:
    return f"{city} city guide"


def commentary_title(sector: str) -> str:
    return f"{sector.title()} sector commentary"


# The fact sentences and tables, one function each: the single-context and the corpus documents say the same
# facts in the same words, which the tests parse back.


def report_facts(company: Company) -> str:
    return (
        f"{company.name} is a {company.sector} company headquartered in {company.city}. "
        f"{company.name} was founded by {company.founder} in {company.founded}."
    )


def report_table(company: Company, world: World) -> str:
    """The sentence introducing the table and the markdown table of the company's figures."""
    table = ["| Metric | " + " | ".join(map(str, world.years)) + " |", "|---" * (len(world.years) + 1) + "|"]
    for metric in world.metrics:
        cells = " | ".join(fmt_value(company.figures[metric.name][y], metric.decimals) for y in world.years)
        table.append(f"| {metric.label} | {cells} |")
    intro = f"The table below lists key figures of {company.name} for {world.years[0]} to {world.years[-1]}."
    return f"{intro}\n\n" + "\n".join(table)


def birth_fact(person: str, city: str) -> str:
    return f"{person} was born in {city}."


def city_facts(city: str, mayor: str, river: str) -> str:
    return f"The mayor of {city} is {mayor}. {city} lies on the {river} River."


def commentary_facts(sector: str, world: World, rng: random.Random) -> str:
    """Looks relevant (sector, metric, totals) but quotes a year before the reports' tables."""
    metric = rng.choice(world.metrics)
    past = world.years[0] - rng.randint(2, 6)
    figure = fmt_value(metric.draw(rng) * rng.randint(3, 9), metric.decimals)
    return (
        f"Analysts estimated the combined {metric.phrase()} of the {sector} sector in {past} at {figure}. "
        "Forecasts for later years were withheld."
    )


def _report(company: Company, world: World, rng: random.Random, pool: Pool, pad: int) -> Doc:
    before = filler_paragraphs(rng, pool, pad // 2)[0]
    after = filler_paragraphs(rng, pool, pad - pad // 2)[0]
    text = f"{report_facts(company)}\n\n{before}\n\n{report_table(company, world)}\n\n{after}"
    return Doc(report_title(company.name), text)


def _biography(person: str, city: str, rng: random.Random, pool: Pool, pad: int) -> Doc:
    body = filler_paragraphs(rng, pool, pad)[0]
    return Doc(profile_title(person), f"{birth_fact(person, city)}\n\n{body}")


def _city_profile(city: str, mayor: str, river: str, rng: random.Random, pool: Pool, pad: int) -> Doc:
    body = filler_paragraphs(rng, pool, pad)[0]
    return Doc(city_title(city), f"{city_facts(city, mayor, river)}\n\n{body}")


def _commentary(sector: str, world: World, rng: random.Random, pool: Pool, pad: int) -> Doc:
    facts = commentary_facts(sector, world, rng)
    body = filler_paragraphs(rng, pool, pad)[0]
    return Doc(commentary_title(sector), f"{facts}\n\n{body}")


def world_documents(world: World, sector: str, n_extra: int, rng: random.Random, pool: Pool, pad: int) -> list[Doc]:
    """Every document a question of this world could need, plus relevant-looking distractors, each padded with
    up to ``pad`` tokens of filler."""
    docs = [_report(c, world, rng, pool, rng.randint(pad // 2, pad) if pad else 0) for c in world.companies]
    spare_people = [p for p in world.birthplaces if p not in {c.founder for c in world.companies}]
    docs += [
        _report(namesake(c, founder, world, rng, sector), world, rng, pool, pad // 2)
        for c, founder in zip(rng.sample(world.companies, n_extra), spare_people, strict=False)
    ]
    docs += [_biography(p, city, rng, pool, pad // 2) for p, city in world.birthplaces.items()]
    docs += [_city_profile(city, world.mayors[city], world.rivers[city], rng, pool, pad // 2) for city in world.mayors]
    docs += [_commentary(sector, world, rng, pool, pad // 2) for _ in range(n_extra)]
    return docs


def filler_doc(rng: random.Random, pool: Pool, budget: int) -> Doc:
    """A bulletin, memo or minutes of about ``budget`` tokens with no fact any question uses."""
    body = filler_paragraphs(rng, pool, max(budget - 40, 20))[0]
    if rng.random() < 0.5:
        body = f"{body}\n\n{filler_table(rng)}"
    return Doc(f"{stem(rng, 2)} {rng.choice(['bulletin', 'memo', 'newsletter', 'minutes', 'notes'])}", body)


def place(docs: list[T], essential: list[T], rng: random.Random) -> list[T]:
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
    placed: list[T | None] = [None] * total
    for slot, doc in zip(slots, essential, strict=True):
        placed[slot] = doc
    rest = iter(docs)
    return [doc if doc is not None else next(rest) for doc in placed]
