"""Length fitting: each example's token target, the world size and padding it implies, and filler up to the target.

Targets are stratified over ``[min_tokens, max_tokens]`` so a run covers the range evenly. Sizes are measured
with the builtin tokenizer; ``prepare`` later counts the exact templated length with the policy's tokenizer.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from qwenlong_verl.driver.data.synth.documents import Doc, Pool, filler_doc
from qwenlong_verl.driver.data.synth.tokens import count_tokens
from qwenlong_verl.driver.data.synth.world import METRICS, World

MIN_TOKENS_FLOOR = 1500
"""Smallest supported target: the smallest world (three companies, their people and cities, one distractor of each
kind) takes ~1,300-1,450 tokens."""

_TEMPLATE_TOKENS = 75
"""Chat markup, preamble, ``<text>`` tags and the answer-format sentence (builtin tokenizer)."""
_HEADING_TOKENS = 6
"""``Document N: `` heading and the blank lines between documents."""


def target_tokens(index: int, n: int, min_tokens: int, max_tokens: int, seed: int) -> int:
    """Length target of example ``index``: stratified over ``[min_tokens, max_tokens]`` so lengths cover it evenly."""
    strata = _strata(n, seed)
    jitter = random.Random(f"jitter:{seed}:{index}").random()
    return int(min_tokens + (max_tokens - min_tokens) * (strata[index] + jitter) / n)


@functools.lru_cache(maxsize=2)
def _strata(n: int, seed: int) -> tuple[int, ...]:
    """The shuffled strata of a run, made once per run rather than once per example (which was O(n²))."""
    strata = list(range(n))
    random.Random(f"strata:{seed}:{n}").shuffle(strata)
    return tuple(strata)


@dataclass(frozen=True)
class WorldSize:
    """How big a world fits a target: short targets get three companies, three table rows, one distractor each."""

    companies: int
    metrics: int
    extra: int
    """Cities, people, namesakes and commentaries outside every answer."""

    @classmethod
    def for_target(cls, target: int) -> WorldSize:
        if target < 3000:
            return cls(companies=3, metrics=3, extra=1)
        return cls(companies=max(4, min(14, target // 1200)), metrics=len(METRICS), extra=2)


def document_pad(target: int, world: World) -> int:
    """Filler tokens per structural document: together they take about 45 % of the target."""
    structural = len(world.companies) + len(world.mayors) + len(world.birthplaces) + 2
    return max(0, int(target * 0.45 / structural) - 60)


def prompt_overhead(question: str, choices: list[str]) -> int:
    """Tokens of the prompt besides the documents: question, options, chat markup and instructions."""
    return count_tokens([question + " " + " ".join(choices)])[0] + _TEMPLATE_TOKENS


def fill_to_target(
    docs: list[Doc], target: int, question: str, choices: list[str], rng: random.Random, pool: Pool
) -> int:
    """Append filler documents to ``docs`` until the prompt is about ``target`` tokens; returns that estimate."""
    overhead = prompt_overhead(question, choices)
    sizes = [size + _HEADING_TOKENS for size in count_tokens([d.title + "\n" + d.text for d in docs])]
    remaining = target - overhead - sum(sizes)
    while remaining > 60:
        doc = filler_doc(rng, pool, min(remaining, rng.randint(400, 2500)))
        docs.append(doc)
        sizes.append(count_tokens([doc.title + "\n" + doc.text])[0] + _HEADING_TOKENS)
        remaining -= sizes[-1]
    return sum(sizes) + overhead
