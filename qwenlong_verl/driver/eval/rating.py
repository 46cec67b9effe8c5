"""LLM ratings 0-100 for benchmarks whose published metric is one (Loong), beside the training reward's accuracy.

A benchmark declares its rating as a table entry, ``@register_benchmark(..., rating=SPEC)`` with a
:class:`RatingSpec` (the published prompt, the accepted range, what counts as perfect, the report's groupings);
nothing here names a benchmark, and callers pass the specs (``benchmarks.registry.rating_specs``). After
scoring, every sample with a successful generation of such a benchmark is rated once by the rater LLM, which
is the eval's judge endpoint (``--judge-url``, ``--judge-model``, ``--judge-timeout``, ``--judge-concurrency``,
the same environment fallbacks and reasoning options): one OpenAI client
(:mod:`qwenlong_verl.common.openai_client`), per-request timeout, bounded retries of transient failures, an
overall budget per sample.

* What the rater sees: the question, the gold, and the response's final section (after the last ``</think>``,
  at most :attr:`RatingSpec.max_answer_chars`), with ``[[``/``]]`` defused so a response cannot write a rating
  into the prompt. A response without a final answer (reasoning never closed, or empty) is rated 0 without a
  request: it answered nothing.
* The reply is read strictly: the last ``[[N]]`` of the reply (after any ``</think>``), N a number within the
  spec's range; none is ``no_rating`` (``length`` when the reply was cut at its token budget), out of range
  ``bad_rating``. Such a sample stays unrated, is counted as a rating error and is rated again by the next run;
  a rater that cannot be reached likewise. Nothing raises.
* Each rating is one appended row of ``ratings.jsonl`` with the hash of the response it rated: a rerun rates
  only what is new or failed (``--rescore`` rates everything again).

Summaries follow the published metric: the mean rating over rated samples and the *perfect rate*, the share of
rated samples rated :attr:`RatingSpec.perfect`, per benchmark and per group (Loong: task type, length set);
unrated samples are left out of both and counted beside them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qwenlong_verl.common.openai_client import OpenAIClient, RequestError, first_choice, first_message, text_field
from qwenlong_verl.driver.eval.scoring import Outcome, response_sha
from qwenlong_verl.driver.eval.store import (
    EvalFolder,
    JsonlAppender,
    Key,
    latest_by_key,
    latest_generations,
    read_jsonl,
)

logger = logging.getLogger(__name__)

_RATING = re.compile(r"\[\[\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*\]\]")
_PLACEHOLDER = re.compile(r"\{(question|gold|prediction)\}")

NO_ANSWER = "no_answer"
"""``reason`` of a sample rated 0 without a request: its response has no final answer."""


@dataclass(frozen=True)
class RatingGroup:
    """One way the report splits a rated benchmark (Loong: by task type, by length set)."""

    title: str
    """Shown in the report, e.g. ``task type``."""

    label: Callable[[Mapping[str, Any]], str | None]
    """Item row (of ``items.jsonl``) -> its group label; ``None`` leaves the item out of this grouping."""

    order: tuple[str, ...] = ()
    """Labels in report order; labels not listed follow in name order."""


@dataclass(frozen=True)
class RatingSpec:
    """How a benchmark's answers are rated by an LLM: the published prompt and how its reply is read."""

    name: str
    """Short name of the metric, shown in the report."""

    template: str
    """The user message; ``{question}``, ``{gold}`` and ``{prediction}`` are replaced (in one pass)."""

    source: str
    """Where the prompt and the rule come from (shown in the report)."""

    low: float = 0.0
    """Smallest rating accepted; below is ``bad_rating``."""

    high: float = 100.0
    """Largest rating accepted; above is ``bad_rating``."""

    perfect: float = 100.0
    """The rating that counts as perfect (the perfect rate is the share of rated samples rated this)."""

    groups: tuple[RatingGroup, ...] = ()
    """Report groupings besides the whole benchmark."""

    max_answer_chars: int = 16_000
    """The response's final section is cut to this many characters before the rater sees it."""

    max_tokens: int = 1024
    """Reply budget of the rater (a reasoning rater needs more)."""

    temperature: float = 0.0
    """Sampling temperature of the rater."""

    def messages(self, question: str, gold: str, prediction: str) -> list[dict[str, str]]:
        values = {"question": question, "gold": _defuse(gold), "prediction": _defuse(prediction)}
        return [{"role": "user", "content": _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.template)}]

    def parse(self, reply: str) -> float:
        """The rating ending ``reply``; :class:`RequestError` ``no_rating`` / ``bad_rating`` otherwise."""
        return parse_rating(reply, self.low, self.high)


def _defuse(text: str) -> str:
    return text.replace("[[", "[ [").replace("]]", "] ]")


def parse_rating(reply: str, low: float = 0.0, high: float = 100.0) -> float:
    """The last ``[[N]]`` of ``reply`` after any ``</think>``, as a number in ``[low, high]``.

    Raises a non-retryable :class:`RequestError`: ``no_rating`` when there is none, ``bad_rating`` when N is out
    of range (a rater asked again at temperature 0 would answer the same)."""
    cut = reply.rfind("</think>")
    if cut >= 0:
        reply = reply[cut + len("</think>") :]
    matches = list(_RATING.finditer(reply[-8192:]))  # the rating ends the reply; a runaway one is not scanned whole
    if not matches:
        raise RequestError("no_rating", f"the rater's reply has no [[rating]]: {reply[-200:]!r}")
    value = float(matches[-1].group(1))
    if not low <= value <= high:
        raise RequestError("bad_rating", f"the rater's rating {value:g} is outside {low:g}-{high:g}")
    return value


def final_section(response: str) -> str:
    """What the rater reads of a response: its final answer section (``""`` when reasoning never finished)."""
    from qwenlong_verl.worker.rewards.extract import answer_section

    section = answer_section(response)
    return (section or "").strip()


# ----------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class RatingRequest:
    """One generated sample to rate."""

    item_id: str
    k: int
    response: str
    question: str
    gold: str
    spec: RatingSpec


def _of_current_response(
    generations: Mapping[Key, Mapping[str, Any]], ratings: Mapping[Key, Mapping[str, Any]], status_ok: bool
) -> dict[Key, Mapping[str, Any]]:
    out = {}
    for key, row in ratings.items():
        gen = generations.get(key)
        if gen is None or gen.get("status") != "ok" or (row.get("status") == "ok") != status_ok:
            continue
        if row.get("response_sha") == response_sha(str(gen.get("response") or "")):
            out[key] = row
    return out


def current_ratings(
    generations: Mapping[Key, Mapping[str, Any]], ratings: Mapping[Key, Mapping[str, Any]]
) -> dict[Key, Mapping[str, Any]]:
    """The ratings that count (latest row per sample): ``status: ok`` and of the response the sample has now."""
    return _of_current_response(generations, ratings, True)


def pending_ratings(
    items: Mapping[str, Mapping[str, Any]],
    generations: Mapping[Key, Mapping[str, Any]],
    ratings: Mapping[Key, Mapping[str, Any]],
    n: int,
    specs: Mapping[str, RatingSpec],
    rerate: bool = False,
) -> list[RatingRequest]:
    """Successful samples of rated benchmarks (``specs``: benchmark -> spec) without a current rating."""
    done = {} if rerate else current_ratings(generations, ratings)
    out = []
    for item_id, item in items.items():
        spec = specs.get(item["benchmark"])
        if spec is None:
            continue
        for k in range(n):
            gen = generations.get((item_id, k))
            if gen is None or gen.get("status") != "ok" or (item_id, k) in done:
                continue
            response = str(gen.get("response") or "")
            out.append(RatingRequest(item_id, k, response, str(item["question"]), str(item["gold"]), spec))
    return out


@dataclass
class RatingStats:
    """What one rating pass did."""

    rated: int = 0
    """Samples given a rating (by the rater, or 0 for no answer)."""

    errors: dict[str, int] = field(default_factory=dict)
    """Failures by code (the samples stay unrated)."""

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


async def rate(
    requests: Sequence[RatingRequest],
    judge_kwargs: Mapping[str, Any],
    on_row: Callable[[dict[str, Any]], None],
    concurrency: int = 64,
) -> RatingStats:
    """Rate each request with the judge endpoint of ``judge_kwargs``; ``on_row`` gets one row per sample.

    Never raises for a failed rating (the row has ``status: error`` and a ``code``); raises
    :class:`~qwenlong_verl.common.errors.InputError` for judge settings that cannot be used."""
    from qwenlong_verl.common.aio import for_each
    from qwenlong_verl.worker.rewards.judge import JudgeConfig

    stats = RatingStats()
    if not requests:
        return stats
    config = JudgeConfig.from_kwargs(judge_kwargs)
    # The rater is the judge's model: its reasoning options, and a larger reply budget, serve the rater too.
    options = config.request_options()
    client = config.http_client()

    async def one(req: RatingRequest) -> None:
        row: dict[str, Any] = {"id": req.item_id, "k": req.k, "response_sha": response_sha(req.response)}
        answer = final_section(req.response)
        if not answer:
            row.update(status="ok", rating=0.0, reason=NO_ANSWER)
        else:
            row.update(await _ask(client, req, answer, config.budget_s, options))
        if row["status"] == "ok":
            stats.rated += 1
        else:
            stats.errors[row["code"]] = stats.errors.get(row["code"], 0) + 1
        on_row(row)

    async with client:
        await for_each(requests, one, concurrency)
    if stats.failed:
        codes = ", ".join(f"{code} {count}" for code, count in sorted(stats.errors.items()))
        shown = ", ".join(e.shown for e in client.endpoints)
        logger.warning(
            "the rater failed on %d of %d samples (%s); they stay unrated, rerun to rate them. Endpoints: %s",
            stats.failed,
            len(requests),
            codes,
            shown,
        )
    return stats


async def _ask(
    client: OpenAIClient, req: RatingRequest, answer: str, budget_s: float, options: Mapping[str, Any]
) -> dict[str, Any]:
    spec = req.spec
    prediction = answer if len(answer) <= spec.max_answer_chars else answer[: spec.max_answer_chars] + " …"
    payload = {
        **options,
        "messages": spec.messages(req.question, req.gold, prediction),
        "temperature": spec.temperature,
        "max_tokens": max(spec.max_tokens, int(options.get("max_tokens") or 0)),
        "stream": False,
    }

    def parse(body: dict) -> float:
        content = text_field(first_message(body), "content")
        if not content or not content.strip():
            raise RequestError("no_choices", "the rater replied with no content", retryable=True)
        try:
            return spec.parse(content)
        except RequestError as exc:
            if exc.code == "no_rating" and first_choice(body).get("finish_reason") == "length":
                raise RequestError(
                    "length", f"the rater's reply was cut at max_tokens={payload['max_tokens']}"
                ) from None
            raise

    start = time.perf_counter()
    try:
        reply = await asyncio.wait_for(client.chat(payload, parse), timeout=budget_s)
    except asyncio.TimeoutError:
        return {"status": "error", "code": "budget", "error": f"no rating within {budget_s:g} s"}
    except RequestError as exc:
        return {"status": "error", "code": exc.code, "error": str(exc)[:300], "attempts": exc.attempts}
    except Exception as exc:  # a bug or an unexpected library error costs this sample only
        logger.debug("rating %s/%d failed", req.item_id, req.k, exc_info=True)
        return {"status": "error", "code": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
    latency = round(time.perf_counter() - start, 3)
    return {"status": "ok", "rating": reply.value, "attempts": reply.attempts, "latency_s": latency}


async def rate_folder(
    folder: EvalFolder,
    items: Mapping[str, Mapping[str, Any]],
    n: int,
    judge_kwargs: Mapping[str, Any],
    specs: Mapping[str, RatingSpec],
    *,
    rerate: bool = False,
    concurrency: int = 64,
    progress: Any = None,
) -> RatingStats | None:
    """The rating stage of ``eval``: rate what is pending in ``folder`` for the items of rated benchmarks
    (``specs``: benchmark -> its rating, see ``benchmarks.registry.rating_specs``).

    ``None`` when there is nothing to rate with: no rated benchmark, or no judge endpoint (then the report says
    so). ``progress`` gets ``stage("rate", total)`` and ``advance("rate")``."""
    from qwenlong_verl.worker.rewards.judge import JudgeConfig

    if not specs:
        return None
    if not JudgeConfig.from_kwargs(judge_kwargs).active:
        logger.info("%s not rated: no judge endpoint (--judge-url) to rate with", ", ".join(specs))
        return None
    generations = latest_generations(read_jsonl(folder.generations))
    ratings = latest_by_key(read_jsonl(folder.ratings))
    todo = pending_ratings(items, generations, ratings, n, specs, rerate)
    if progress is not None:
        progress.stage("rate", len(todo))
    with JsonlAppender(folder.ratings) as sink:

        def on_row(row: dict[str, Any]) -> None:
            sink.append(row)
            if progress is not None:
                progress.advance("rate")

        return await rate(todo, judge_kwargs, on_row, concurrency)


# ----------------------------------------------------------------------------- summaries


@dataclass
class RatingRow:
    """The rating of one benchmark, or of one group of it, beside its accuracy."""

    benchmark: str
    group: str
    """``all``, or the title of a :class:`RatingGroup` (``task type``, ``length set``)."""

    name: str
    """The benchmark (for ``all``) or the group label."""

    items: int
    samples: int
    """Items x n."""

    rated: int
    """Samples with a current rating (the mean and the perfect rate are over these)."""

    rating_errors: int
    """Samples whose latest rating attempt failed (unrated; the next run retries them)."""

    mean_rating: float | None
    """Mean rating of the rated samples, on the spec's scale (0-100)."""

    perfect_rate: float | None
    """Share of rated samples rated perfect (0-1)."""

    accuracy: float
    """The training reward's accuracy over all samples (as in the accuracy table)."""


def rating_rows(
    items: Sequence[Mapping[str, Any]],
    results: Mapping[Key, Outcome],
    generations: Mapping[Key, Mapping[str, Any]],
    ratings: Mapping[Key, Mapping[str, Any]],
    n: int,
    specs: Mapping[str, RatingSpec],
) -> list[RatingRow]:
    """Per rated benchmark: one ``all`` row, then one row per label of each of its groups."""
    current = current_ratings(generations, ratings)
    failed = set(_of_current_response(generations, ratings, False))
    rows: list[RatingRow] = []
    for bench, spec in specs.items():
        members = [it for it in items if it["benchmark"] == bench]
        if not members:
            continue
        rows.append(_row(bench, "all", bench, members, results, current, failed, n, spec))
        for group in spec.groups:
            by_label: dict[str, list[Mapping[str, Any]]] = {}
            for it in members:
                label = group.label(it)
                if label is not None:
                    by_label.setdefault(label, []).append(it)
            order = {label: i for i, label in enumerate(group.order)}
            for label in sorted(by_label, key=lambda lb: (order.get(lb, len(order)), lb)):
                rows.append(_row(bench, group.title, label, by_label[label], results, current, failed, n, spec))
    return rows


def _row(bench, group, name, members, results, current, failed, n, spec: RatingSpec) -> RatingRow:
    keys = [(it["id"], k) for it in members for k in range(n)]
    values = [float(current[key]["rating"]) for key in keys if key in current]
    return RatingRow(
        benchmark=bench,
        group=group,
        name=name,
        items=len(members),
        samples=len(keys),
        rated=len(values),
        rating_errors=sum(1 for key in keys if key in failed),
        mean_rating=statistics.fmean(values) if values else None,
        perfect_rate=sum(v >= spec.perfect for v in values) / len(values) if values else None,
        accuracy=sum(results[key].correct for key in keys) / len(keys) if keys else 0.0,
    )
