"""LLM-judge client: is a short predicted answer equivalent to the gold answer? (OpenAI-compatible API)

The judge is asked only where the rule said "wrong", so in RL it sits on the critical path of every step
whose rollouts disagree with the gold. Hence:

* HTTP goes through :class:`qwenlong_verl.common.openai_client.OpenAIClient` (connection pool, several
  endpoints least loaded first, ``max_concurrency`` requests in flight per endpoint, per-request timeout,
  bounded retries with backoff honouring ``Retry-After``, capped reply size, credentials redacted in logs);
* one client per event loop (veRL runs ``compute_score_async`` in each reward worker's own loop; the sync
  path uses one private background loop, see :func:`judge_blocking`);
* an overall per-answer budget that also covers the wait for a free slot;
* identical questions in flight share one request; definitive verdicts are kept in an LRU cache keyed on
  (question, prediction, gold);
* the judge sees the question and the two short answers only (length-capped), never the whole response,
  and ``[[``/``]]`` are defused in what it sees so a response cannot smuggle in a verdict;
* the verdict is read strictly: the reply must *end* with ``[[YES]]`` or ``[[NO]]`` (after any
  ``</think>``); earlier quotes of a verdict do not count;
* nothing raises: every failure becomes a short ``error`` code and a rate-limited warning.

Importing this module imports neither veRL nor aiohttp (the client loads aiohttp on first use).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Collection, Mapping
from dataclasses import astuple, dataclass, field
from typing import Any

from cachetools import LRUCache

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.openai_client import OpenAIClient, RequestError, first_message, redact, text_field
from qwenlong_verl.worker.rewards.keys import (
    ENV_API_KEY,
    ENV_MODEL,
    ENV_URLS,
    JUDGE_KWARG_NAMES,
    MANAGER_KEYS,
    PASSED_BY_VERL,
)

logger = logging.getLogger(__name__)


SYSTEM_PROMPT = (
    "You are a careful grader. You are given a question, a reference answer and a candidate answer. "
    "Decide whether the candidate answer means the same as the reference answer for this question: "
    "equivalent numbers (units, rounding, percent vs fraction), synonyms, aliases and equivalent phrasings "
    "count as the same; a different, partial, vaguer or hedged answer (several alternatives) does not. "
    "Reply with at most one short sentence of justification, then end your reply with exactly [[YES]] "
    "if they are equivalent or [[NO]] if they are not."
)

_VERDICT = re.compile(r"\[\[\s*(YES|NO)\s*\]\]", re.IGNORECASE)
_VERDICT_TRAILER = " \t\r\n.!*_`'\")]}"

RETRY_AFTER_MAX_S = 10.0
"""Longest retry delay, a server's ``Retry-After`` included."""

JUDGE_KWARGS = {name: name.removeprefix("judge_") for name in JUDGE_KWARG_NAMES}
"""Reward kwarg -> :class:`JudgeConfig` field."""


@dataclass(frozen=True)
class JudgeConfig:
    """Where and how to ask the LLM judge; built from reward kwargs by :meth:`from_kwargs`.

    A plain dataclass (not veRL's ``BaseConfig``) so that the judge, the ``score`` and ``eval`` commands
    import neither veRL nor torch.
    """

    urls: tuple[str, ...] = ()
    """Endpoint base URLs (``http://host:port``, with or without ``/v1``); empty = no judge."""

    model: str = ""
    """Model name sent to the endpoints; empty = the first model each endpoint lists at ``/v1/models``."""

    max_concurrency: int = 64
    """Requests in flight per endpoint for the whole run. The ``qwenlong`` reward manager divides it among
    veRL's ``reward.num_workers`` reward workers (each a process with its own client gets ``ceil(total /
    workers)``); a client enforces what it is given, per endpoint, in its own process."""

    timeout_s: float = 30.0
    """Timeout of one HTTP request."""

    budget_s: float = 120.0
    """Longest time one answer may take, waiting for a free slot and all retries included."""

    max_retries: int = 2
    """Extra attempts after a timeout, connection error, HTTP 408/409/425/429/5xx or broken reply."""

    backoff_s: float = 0.25
    """First retry delay; doubles each retry, with jitter (a 429's Retry-After is honoured up to 10 s)."""

    cache_size: int = 65536
    """Definitive verdicts kept (LRU), keyed on (question, prediction, gold); 0 = no cache."""

    enable: bool = True
    """False = never ask, even with endpoints configured."""

    max_tokens: int = 256
    """Reply budget of the judge (a reasoning judge needs more)."""

    api_key: str = field(default="", repr=False)
    """Bearer token for the endpoints, if they need one (env ``QWENLONG_JUDGE_API_KEY``); never shown."""

    max_answer_chars: int = 512
    """The prediction and the gold are cut to this many characters before the judge sees them."""

    max_question_chars: int = 4000
    """The question is cut to this many characters (its end, where the options usually are, is kept)."""

    def __post_init__(self):
        if not isinstance(self.urls, tuple) or not all(isinstance(u, str) and u for u in self.urls):
            raise InputError(f"judge_urls must be a list of non-empty URL strings, got {redact(repr(self.urls))}")
        for name in ("max_concurrency", "max_tokens", "max_answer_chars", "max_question_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"judge_{name} must be an integer >= 1, got {value!r}")
        for name in ("max_retries", "cache_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"judge_{name} must be an integer >= 0, got {value!r}")
        for name in ("timeout_s", "budget_s", "backoff_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise InputError(f"judge_{name} must be a number >= 0, got {value!r}")
        if self.timeout_s <= 0 or self.budget_s <= 0:
            raise InputError("judge_timeout_s and judge_budget_s must be > 0")
        if not isinstance(self.enable, bool):
            raise InputError(f"judge_enable must be true or false, got {self.enable!r}")
        for name in ("model", "api_key"):
            if not isinstance(getattr(self, name), str):
                raise InputError(f"judge_{name} must be a string")
        object.__setattr__(self, "_key", astuple(self))  # not a field; computed once, used on every call

    @property
    def active(self) -> bool:
        """The judge will be asked (enabled and at least one endpoint)."""
        return self.enable and bool(self.urls)

    def key(self) -> tuple:
        """Hashable identity: clients are shared between calls with the same settings."""
        return self._key

    @classmethod
    def from_kwargs(
        cls,
        kwargs: Mapping[str, Any],
        reward_router_address: str | None = None,
        ignore: Collection[str] = (*PASSED_BY_VERL, *MANAGER_KEYS),
    ) -> JudgeConfig:
        """Settings from ``judge_*`` reward kwargs, then the environment, then veRL's reward-model router.

        The one place reward kwargs are checked: a key that is neither a judge setting nor in ``ignore``
        (keys other readers of the same mapping own) raises :class:`InputError` naming it and the closest
        accepted key; a bad value raises naming the setting.
        """
        unknown = sorted(str(k) for k in kwargs if k not in JUDGE_KWARGS and k not in ignore)
        if unknown:
            import difflib

            accepted = [*JUDGE_KWARG_NAMES, *sorted(k for k in ignore if k not in PASSED_BY_VERL)]
            hints = [difflib.get_close_matches(k, accepted, n=1) for k in unknown]
            detail = ", ".join(
                f"{k!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for k, h in zip(unknown, hints, strict=True)
            )
            raise InputError(f"unknown key(s) {detail} in the qwenlong reward kwargs; accepted: {', '.join(accepted)}")
        values: dict[str, Any] = {}
        for name, field_name in JUDGE_KWARGS.items():
            if name in kwargs and kwargs[name] is not None:
                values[field_name] = kwargs[name]
        urls = values.pop("urls", None)
        if urls is None:
            urls = os.environ.get(ENV_URLS) or (f"http://{reward_router_address}" if reward_router_address else "")
        values["urls"] = parse_urls(urls)
        if not values.get("model"):
            values["model"] = os.environ.get(ENV_MODEL, "")
        if not values.get("api_key"):
            values["api_key"] = os.environ.get(ENV_API_KEY, "")
        for name in ("timeout_s", "budget_s", "backoff_s"):
            if isinstance(values.get(name), int) and not isinstance(values.get(name), bool):
                values[name] = float(values[name])
        return cls(**values)


def parse_urls(urls: Any) -> tuple[str, ...]:
    """A list, tuple or comma/space separated string of endpoints -> normalised base URLs."""
    if isinstance(urls, str):
        items = [u for u in re.split(r"[,\s]+", urls) if u]
    elif urls is None:
        items = []
    else:
        try:
            items = [str(u).strip() for u in urls if str(u).strip()]
        except TypeError:
            raise InputError(
                f"judge_urls must be a list or a comma-separated string, got {redact(repr(urls))}"
            ) from None
    return tuple(dict.fromkeys(base_url(u) for u in items))


def base_url(url: str) -> str:
    """``host:port``, ``http://host:port/v1`` or ``.../v1/chat/completions`` -> ``http://host:port``."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    for suffix in ("/chat/completions", "/v1"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    return url.rstrip("/")


# ----------------------------------------------------------------------------- prompt and verdict


def build_messages(question: str, prediction: str, gold: str, config: JudgeConfig) -> list[dict[str, str]]:
    """The chat the judge sees: the question (if any) and the two short answers, capped and defused."""
    parts = []
    if question:
        q = question if len(question) <= config.max_question_chars else "…" + question[-config.max_question_chars :]
        parts.append(f"<question>\n{_defuse(q)}\n</question>")
    parts.append(f"<reference_answer>\n{_defuse(gold[: config.max_answer_chars])}\n</reference_answer>")
    parts.append(f"<candidate_answer>\n{_defuse(prediction[: config.max_answer_chars])}\n</candidate_answer>")
    parts.append("Is the candidate answer equivalent to the reference answer? End with [[YES]] or [[NO]].")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n\n".join(parts)}]


def _defuse(text: str) -> str:
    return text.replace("[[", "[ [").replace("]]", "] ]")


def parse_verdict(reply: str) -> bool | None:
    """``True``/``False`` when the reply ends with ``[[YES]]``/``[[NO]]`` (after any think block), else None."""
    if not isinstance(reply, str):
        return None
    cut = reply.rfind("</think>")
    if cut >= 0:
        reply = reply[cut + len("</think>") :]
    reply = reply[-4096:]  # the verdict ends the reply; a runaway reply is not scanned whole
    matches = list(_VERDICT.finditer(reply))
    last = matches[-1] if matches else None
    if last is None or reply[last.end() :].strip(_VERDICT_TRAILER):
        return None
    return last.group(1).upper() == "YES"


# ----------------------------------------------------------------------------- client


@dataclass(frozen=True)
class JudgeResult:
    """Outcome of one judgement."""

    verdict: float
    """1.0 equivalent, 0.0 not, -1.0 no verdict (see :attr:`error`)."""

    error: str = ""
    """``""`` or a short code: ``timeout``, ``connect``, ``http_<status>``, ``bad_json``, ``no_choices``,
    ``bad_reply``, ``bad_text``, ``too_large``, ``no_verdict``, ``no_model``, ``budget``, ``error``."""

    latency_s: float = 0.0
    """Wall time of this judgement (0 for a cache hit)."""

    cached: bool = False


@dataclass
class JudgeStats:
    """Counters of one client beyond HTTP (requests and retries are counted by :attr:`JudgeClient.http`)."""

    cache_hits: int = 0
    shared: int = 0
    errors: dict[str, int] = field(default_factory=dict)


HEALTH_INTERVAL_S = 60.0
"""How often a client logs its health summary (on the first judgement after the interval)."""


class JudgeHealth:
    """A periodic INFO summary of one client's judgements, so a slow or dead judge shows in the logs whatever
    trainer mode (or none: the reward used as a plain custom reward function) is running."""

    def __init__(self, shown: str, interval_s: float | None = None):
        self.shown = shown
        self.interval_s = HEALTH_INTERVAL_S if interval_s is None else interval_s
        self._reset(time.monotonic())

    def _reset(self, now: float) -> None:
        self.since, self.calls, self.cached, self.latency_s = now, 0, 0, 0.0
        self.errors: dict[str, int] = {}

    def observe(self, result: JudgeResult) -> None:
        self.calls += 1
        self.cached += result.cached
        self.latency_s += result.latency_s
        if result.error:
            self.errors[result.error] = self.errors.get(result.error, 0) + 1
        now = time.monotonic()
        if now - self.since >= self.interval_s:
            asked = self.calls - self.cached
            failed = sum(self.errors.values())
            codes = ", ".join(f"{code} {n}" for code, n in sorted(self.errors.items()))
            logger.info(
                "LLM judge %s, last %.0f s: %d judgements (%d from cache), %d failed%s, mean latency %.2f s",
                self.shown,
                now - self.since,
                self.calls,
                self.cached,
                failed,
                f" ({codes})" if codes else "",
                self.latency_s / asked if asked else 0.0,
            )
            self._reset(now)


def _verdict_of(body: dict) -> float:
    """1.0 / 0.0 from a chat completion, or a :class:`RequestError` (an empty reply is retried, no verdict is not)."""
    content = text_field(first_message(body), "content")
    if not content or not content.strip():
        raise RequestError("no_choices", "the judge replied with no content", retryable=True)
    verdict = parse_verdict(content)
    if verdict is None:
        raise RequestError("no_verdict", "the judge's reply does not end with [[YES]] or [[NO]]")
    return 1.0 if verdict else 0.0


class JudgeClient:
    """Judge requests of one event loop; get it with :func:`get_client`, never share it across loops.

    Its concurrency limit holds per endpoint within this process: veRL's reward workers each have their own
    client, which is why the reward manager hands each worker its share of the configured total.
    """

    def __init__(self, config: JudgeConfig):
        if not config.urls:
            raise InputError("a judge client needs at least one URL (judge_urls or $QWENLONG_JUDGE_URLS)")
        self.config = config
        self.stats = JudgeStats()
        self.http = OpenAIClient(
            [f"{url}/v1" for url in config.urls],
            model=config.model,
            api_key=config.api_key,
            timeout_s=config.timeout_s,
            max_retries=config.max_retries,
            backoff_s=config.backoff_s,
            backoff_max_s=RETRY_AFTER_MAX_S,
            max_concurrency=config.max_concurrency,
        )
        self._cache: LRUCache | None = LRUCache(maxsize=config.cache_size) if config.cache_size else None
        self.health = JudgeHealth(", ".join(e.shown for e in self.http.endpoints))
        self._inflight: dict[tuple[str, str, str], asyncio.Future] = {}
        self._lifetime = None  # async generator that closes this client when its loop shuts down

    async def judge(self, question: str, prediction: str, gold: str) -> JudgeResult:
        """Ask whether ``prediction`` answers ``question`` like ``gold``; never raises (except cancellation)."""
        result = await self._judge(question, prediction, gold)
        self.health.observe(result)
        return result

    async def _judge(self, question: str, prediction: str, gold: str) -> JudgeResult:
        start = time.perf_counter()
        key = (question or "", prediction, gold)
        cached = self._cache.get(key) if self._cache is not None else None
        if cached is not None:
            self.stats.cache_hits += 1
            return JudgeResult(cached, cached=True)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._judge_within_budget(key))
            self._inflight[key] = task
            task.add_done_callback(lambda _t, k=key: self._inflight.pop(k, None))
        else:
            self.stats.shared += 1
        verdict, error = await asyncio.shield(task)
        latency = time.perf_counter() - start
        if error:
            self.stats.errors[error] = self.stats.errors.get(error, 0) + 1
            shown = ", ".join(e.shown for e in self.http.endpoints)
            _warn_limited(error, "LLM judge failed (%s); using the rule score. Endpoints: %s", error, shown)
            return JudgeResult(-1.0, error, latency)
        return JudgeResult(verdict, "", latency)

    async def close(self) -> None:
        await self.http.close()

    async def _judge_within_budget(self, key: tuple[str, str, str]) -> tuple[float, str]:
        payload = {
            "messages": build_messages(*key, self.config),
            "temperature": 0.0,
            "max_tokens": self.config.max_tokens,
            "stream": False,
        }
        try:
            reply = await asyncio.wait_for(self.http.chat(payload, _verdict_of), timeout=self.config.budget_s)
        except asyncio.TimeoutError:
            return -1.0, "budget"
        except RequestError as exc:
            logger.debug("judge request failed: %s", exc)
            return -1.0, exc.code
        except Exception:  # a bug or an unexpected library error must not reach the trainer
            logger.debug("judge request failed", exc_info=True)
            return -1.0, "error"
        if self._cache is not None:
            self._cache[key] = reply.value
        return reply.value, ""


# ----------------------------------------------------------------------------- warnings

WARN_INTERVAL_S = 60.0
_warn_state: dict[str, tuple[float, int]] = {}
_warn_lock = threading.Lock()


def _warn_limited(code: str, message: str, *args: Any) -> None:
    """Log ``message`` at most once per :data:`WARN_INTERVAL_S` per ``code``, counting what was held back."""
    now = time.monotonic()
    with _warn_lock:
        last, held = _warn_state.get(code, (-float("inf"), 0))
        if now - last < WARN_INTERVAL_S:
            _warn_state[code] = (last, held + 1)
            return
        _warn_state[code] = (now, 0)
    suffix = f" ({held} similar failures not logged in the last {WARN_INTERVAL_S:.0f} s)" if held else ""
    logger.warning(message + suffix, *args)


# ----------------------------------------------------------------------------- one client per loop

_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple, JudgeClient]] = weakref.WeakKeyDictionary()
_CLIENTS_LOCK = threading.Lock()


def get_client(config: JudgeConfig) -> JudgeClient:
    """The client of the running event loop for these settings (created on first use).

    The client closes itself when its loop shuts down through ``asyncio.run`` (or anything else that calls
    ``loop.shutdown_asyncgens()``), so short-lived loops leave no open session and no entry behind.
    """
    loop = asyncio.get_running_loop()
    key = config.key()
    with _CLIENTS_LOCK:
        per_loop = _CLIENTS.setdefault(loop, {})
        client = per_loop.get(key)
        if client is None:
            client = per_loop[key] = JudgeClient(config)
            _close_at_loop_shutdown(loop, client)
    return client


def _close_at_loop_shutdown(loop: asyncio.AbstractEventLoop, client: JudgeClient) -> None:
    loop_ref = weakref.ref(loop)

    async def lifetime():
        try:
            yield
        finally:
            await client.close()
            _forget(loop_ref(), client)

    client._lifetime = lifetime()

    async def start() -> None:
        try:
            await client._lifetime.__anext__()  # first iteration registers it with the loop's asyncgen hooks
        except StopAsyncIteration:  # closed by close_clients() before it started
            pass

    loop.create_task(start())


def _forget(loop: asyncio.AbstractEventLoop | None, client: JudgeClient) -> None:
    with _CLIENTS_LOCK:
        per_loop = _CLIENTS.get(loop) if loop is not None else None
        if per_loop is not None:
            for key in [k for k, c in per_loop.items() if c is client]:
                del per_loop[key]
            if not per_loop:
                _CLIENTS.pop(loop, None)


async def close_clients() -> None:
    """Close the sessions of the running loop's clients now (tests, ``score``, shutdown hooks)."""
    loop = asyncio.get_running_loop()
    with _CLIENTS_LOCK:
        clients = list(_CLIENTS.pop(loop, {}).values())
    for client in clients:
        await client.close()
        if client._lifetime is not None:
            await client._lifetime.aclose()


class _BackgroundLoop:
    """A private event loop on a daemon thread: the sync ``compute_score`` judges through it."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="qwenlong-judge-loop", daemon=True)
        self.thread.start()


_BACKGROUND: _BackgroundLoop | None = None
_BACKGROUND_LOCK = threading.Lock()


def _background() -> _BackgroundLoop:
    global _BACKGROUND
    with _BACKGROUND_LOCK:
        if _BACKGROUND is None or not _BACKGROUND.thread.is_alive():
            _BACKGROUND = _BackgroundLoop()
        return _BACKGROUND


def judge_blocking(config: JudgeConfig, question: str, prediction: str, gold: str) -> JudgeResult:
    """:meth:`JudgeClient.judge` from synchronous code (any thread), through the background loop.

    veRL runs a synchronous ``compute_score`` in a thread pool; all those threads share the background
    loop's one client and session, so the concurrency limit and the cache hold across them.
    """
    background = _background()
    if threading.current_thread() is background.thread:
        raise RuntimeError("judge_blocking called from the judge's own loop; await JudgeClient.judge instead")

    async def run() -> JudgeResult:
        return await get_client(config).judge(question, prediction, gold)

    start = time.perf_counter()
    future = asyncio.run_coroutine_threadsafe(run(), background.loop)
    try:
        return future.result(timeout=config.budget_s + 5.0)
    except concurrent.futures.TimeoutError:
        future.cancel()
        return JudgeResult(-1.0, "budget", time.perf_counter() - start)
