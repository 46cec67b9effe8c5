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
  (question, prediction, gold) inside a client, and a client serves one full setting (prompt preset,
  model, reply budget, reasoning options included), so a verdict never crosses presets;
* the judge sees the question and the two short answers only (length-capped), never the whole response;
  ``[[``/``]]`` are defused in what it sees so a response cannot smuggle in a verdict, and the prediction
  is put on one line so it cannot start a line of the layout;
* what the judge is asked and how its reply is read is a preset of
  :mod:`qwenlong_verl.worker.rewards.judge_prompts` (``judge_prompt``: the QwenLong papers' prompt or our
  strict one); a verdict is read only after any ``</think>``, and a reply cut at ``judge_max_tokens`` before
  its verdict is its own error code (``length``), not a retry;
* reasoning judges (gpt-oss, Qwen3 thinking) get ``reasoning_effort`` / ``chat_template_kwargs`` passed
  through and a larger reply budget, checked when the settings are read;
* nothing raises: every failure becomes a short ``error`` code and a rate-limited warning.

Importing this module imports neither veRL nor aiohttp (the client loads aiohttp on first use).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from cachetools import LRUCache

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.openai_client import (
    OpenAIClient,
    RequestError,
    first_choice,
    first_message,
    redact,
    text_field,
)
from qwenlong_verl.worker.rewards.judge_prompts import JUDGE_PROMPTS, JudgePrompt, VerdictRule, judge_prompt
from qwenlong_verl.worker.rewards.keys import (
    ENV_API_KEY,
    ENV_MODEL,
    ENV_URLS,
    JUDGE_KWARG_NAMES,
    MANAGER_KEYS,
    PASSED_BY_VERL,
)

logger = logging.getLogger(__name__)


RETRY_AFTER_MAX_S = 10.0
"""Longest retry delay, a server's ``Retry-After`` included."""

JUDGE_KWARGS = {name: name.removeprefix("judge_") for name in JUDGE_KWARG_NAMES}
"""Reward kwarg -> :class:`JudgeConfig` field."""

REASONING_EFFORTS = ("minimal", "low", "medium", "high")
"""Values of ``judge_reasoning_effort`` (the OpenAI API's; vLLM passes them to gpt-oss)."""

THINKING_SWITCHES = ("enable_thinking", "thinking")
"""``chat_template_kwargs`` keys that turn a chat template's reasoning on (Qwen3, DeepSeek-V3.1)."""

MAX_TOKENS_LIMIT = 32768
"""Largest ``judge_max_tokens``: a judge reply is a verdict, not an essay; the bound keeps a runaway judge
from holding a slot (and the step) for minutes."""

REASONING_MIN_TOKENS = 1024
"""Smallest ``judge_max_tokens`` for a reasoning judge: its reasoning counts against the budget, and a reply
cut before the verdict is no verdict at all."""

REASONING_DEFAULT_TOKENS = 4096
"""``judge_max_tokens`` of a reasoning judge when not given."""

MAX_TEMPLATE_KWARGS_CHARS = 2048
"""``judge_chat_template_kwargs`` as JSON may not be longer (it is sent with every request)."""


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

    prompt: str = "strict"
    """Preset of :mod:`qwenlong_verl.worker.rewards.judge_prompts`: the messages and the verdict rule.
    ``qwenlong_l1`` / ``qwenlong_l15`` are the QwenLong papers' prompt; the default stays ``strict`` (ours) so
    that a run, ``score`` or ``eval`` that names no preset keeps the meaning its earlier results had, and the
    shipped paper recipes name the published one."""

    max_tokens: int | None = None
    """Reply budget of the judge, 1..32768; None = the preset's (256 strict, 1024 for the published prompt,
    which asks for an explanation first), or 4096 for a reasoning judge, which needs at least 1024."""

    reasoning_effort: str = ""
    """``reasoning_effort`` sent to a reasoning judge (``low``/``medium``/``high``, e.g. gpt-oss); "" = not
    sent. Setting it marks the judge as reasoning (larger default budget, the minimum checked)."""

    chat_template_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Sent as ``chat_template_kwargs`` (vLLM, SGLang), e.g. ``{"enable_thinking": false}`` for a Qwen3 judge;
    ``enable_thinking``/``thinking`` true marks the judge as reasoning."""

    api_key: str = field(default="", repr=False)
    """Bearer token for the endpoints, if they need one (env ``QWENLONG_JUDGE_API_KEY``); never shown."""

    max_answer_chars: int = 512
    """The prediction and the gold are cut to this many characters before the judge sees them."""

    max_question_chars: int = 4000
    """The question is cut to this many characters (its end, where the options usually are, is kept)."""

    def __post_init__(self):
        if not isinstance(self.urls, tuple) or not all(isinstance(u, str) and u for u in self.urls):
            raise InputError(f"judge_urls must be a list of non-empty URL strings, got {redact(repr(self.urls))}")
        for name in ("max_concurrency", "max_answer_chars", "max_question_chars"):
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
        for name in ("model", "api_key", "prompt", "reasoning_effort"):
            if not isinstance(getattr(self, name), str):
                raise InputError(f"judge_{name} must be a string")
        judge_prompt(self.prompt)  # an unknown preset names the known ones
        if self.reasoning_effort and self.reasoning_effort not in REASONING_EFFORTS:
            raise InputError(
                f"judge_reasoning_effort must be one of {', '.join(REASONING_EFFORTS)} (or unset), "
                f"got {self.reasoning_effort!r}"
            )
        template_kwargs = _json_mapping(self.chat_template_kwargs)
        object.__setattr__(self, "chat_template_kwargs", template_kwargs)
        self._check_max_tokens()
        # not a field; computed once, used on every call (the mapping as canonical JSON, so it hashes)
        key = tuple(
            json.dumps(template_kwargs, sort_keys=True) if f.name == "chat_template_kwargs" else getattr(self, f.name)
            for f in fields(self)
        )
        object.__setattr__(self, "_key", key)

    def http_client(self) -> OpenAIClient:
        """The HTTP client these settings describe: the judge's own, and eval's rater (same endpoints)."""
        return OpenAIClient(
            [f"{url}/v1" for url in self.urls],
            model=self.model,
            api_key=self.api_key,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            backoff_s=self.backoff_s,
            backoff_max_s=RETRY_AFTER_MAX_S,
            max_concurrency=self.max_concurrency,
        )

    def request_options(self) -> dict[str, Any]:
        """What every request to this judge carries besides its messages: reply budget and reasoning options."""
        options: dict[str, Any] = {"max_tokens": self.max_tokens}
        if self.reasoning_effort:
            options["reasoning_effort"] = self.reasoning_effort
        if self.chat_template_kwargs:
            options["chat_template_kwargs"] = dict(self.chat_template_kwargs)
        return options

    def _check_max_tokens(self) -> None:
        if self.max_tokens is None:
            default = REASONING_DEFAULT_TOKENS if self.reasoning else judge_prompt(self.prompt).max_tokens
            object.__setattr__(self, "max_tokens", default)
        value = self.max_tokens
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOKENS_LIMIT:
            raise InputError(f"judge_max_tokens must be an integer from 1 to {MAX_TOKENS_LIMIT}, got {value!r}")
        if self.reasoning and value < REASONING_MIN_TOKENS:
            why = (
                f"judge_reasoning_effort={self.reasoning_effort!r}"
                if self.reasoning_effort
                else f"judge_chat_template_kwargs={dict(self.chat_template_kwargs)!r}"
            )
            raise InputError(
                f"judge_max_tokens={value} is too small for a reasoning judge ({why}): its reasoning counts "
                f"against the budget and a reply cut before the verdict has none; give at least "
                f"{REASONING_MIN_TOKENS} (unset: {REASONING_DEFAULT_TOKENS})"
            )

    def __hash__(self) -> int:
        return hash(self._key)

    @property
    def reasoning(self) -> bool:
        """A reasoning judge: ``reasoning_effort`` set, or thinking switched on in ``chat_template_kwargs``."""
        kwargs = self.chat_template_kwargs
        return bool(self.reasoning_effort) or any(kwargs.get(name) is True for name in THINKING_SWITCHES)

    @property
    def preset(self) -> JudgePrompt:
        """The prompt preset (:attr:`prompt`)."""
        return JUDGE_PROMPTS[self.prompt]

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
    """The chat the judge sees, laid out by the preset: the question (if any) and the two short answers,
    capped and defused here for every preset, the prediction on one line."""
    if question and len(question) > config.max_question_chars:
        question = "…" + question[-config.max_question_chars :]
    prediction = " ".join(prediction[: config.max_answer_chars].split())
    return config.preset.messages(
        _defuse(question or ""), _defuse(prediction), _defuse(gold[: config.max_answer_chars])
    )


def _defuse(text: str) -> str:
    return text.replace("[[", "[ [").replace("]]", "] ]")


def _json_mapping(value: Any) -> dict[str, Any]:
    """``judge_chat_template_kwargs`` as a plain JSON object (a DictConfig too), bounded in size."""
    if not isinstance(value, Mapping):
        raise InputError(
            f"judge_chat_template_kwargs must be a mapping, e.g. {{enable_thinking: false}}, got {value!r}"
        )

    def plain(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, Sequence) and not isinstance(v, str | bytes):
            return [plain(x) for x in v]
        return v

    result = plain(value)
    try:
        text = json.dumps(result, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"judge_chat_template_kwargs must hold JSON values only ({exc})") from None
    if len(text) > MAX_TEMPLATE_KWARGS_CHARS:
        raise InputError(
            f"judge_chat_template_kwargs is {len(text)} characters as JSON; at most {MAX_TEMPLATE_KWARGS_CHARS}"
        )
    return result


# ----------------------------------------------------------------------------- client


@dataclass(frozen=True)
class JudgeResult:
    """Outcome of one judgement."""

    verdict: float
    """1.0 equivalent, 0.0 not, -1.0 no verdict (see :attr:`error`)."""

    error: str = ""
    """``""`` or a short code: ``timeout``, ``connect``, ``http_<status>``, ``bad_json``, ``no_choices``,
    ``bad_reply``, ``bad_text``, ``too_large``, ``no_verdict``, ``length`` (cut at ``max_tokens`` before the
    verdict), ``no_model``, ``budget``, ``error``."""

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


def _verdict_of(body: dict, rule: VerdictRule) -> float:
    """1.0 / 0.0 from a chat completion read by the preset's ``rule``, or a :class:`RequestError`: an empty
    reply is retried; no verdict, or a reply cut at ``max_tokens`` (``length``), is not (at temperature 0 a
    retry would say the same)."""
    content = text_field(first_message(body), "content")
    cut = first_choice(body).get("finish_reason") == "length"
    if not content or not content.strip():
        if cut:
            raise RequestError("length", "the judge's reply was cut at judge_max_tokens before any answer")
        raise RequestError("no_choices", "the judge replied with no content", retryable=True)
    verdict = rule(content)
    if verdict is None:
        if cut:
            raise RequestError("length", "the judge's reply was cut at judge_max_tokens before its verdict")
        raise RequestError("no_verdict", "the judge's reply has no verdict in the form its prompt asks for")
    return 1.0 if verdict else 0.0


_HINTS = {
    "length": " (its reply hit judge_max_tokens before the verdict: raise judge_max_tokens)",
    "no_verdict": " (its reply has no verdict the judge_prompt preset can read: check judge_prompt suits the model)",
}
"""What to do about an error code, added to its warning."""


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
        self.http = config.http_client()
        self._cache: LRUCache | None = LRUCache(maxsize=config.cache_size) if config.cache_size else None
        self.health = JudgeHealth(", ".join(e.shown for e in self.http.endpoints))
        self._read = functools.partial(_verdict_of, rule=config.preset.verdict)
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
            hint = _HINTS.get(error, "")
            _warn_limited(error, "LLM judge failed (%s)%s; using the rule score. Endpoints: %s", error, hint, shown)
            return JudgeResult(-1.0, error, latency)
        return JudgeResult(verdict, "", latency)

    async def close(self) -> None:
        await self.http.close()

    async def _judge_within_budget(self, key: tuple[str, str, str]) -> tuple[float, str]:
        config = self.config
        payload: dict[str, Any] = {
            "messages": build_messages(*key, config),
            "temperature": 0.0,
            "stream": False,
            **config.request_options(),
        }
        try:
            reply = await asyncio.wait_for(self.http.chat(payload, self._read), timeout=config.budget_s)
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
