"""Sample the served policy through an OpenAI-compatible chat endpoint (``vllm serve``, SGLang, ...).

One request per sample (item id, k): a killed run resumes exactly where it stopped, because each finished
sample is one appended row of ``generations.jsonl`` and only missing or failed samples are requested again.
The K requests of an item share their prompt, so a server with prefix caching (vLLM's default) computes the
long prefill once. ``concurrency`` workers pull from one queue (bounded memory, clean cancellation).

HTTP goes through :class:`qwenlong_verl.common.openai_client.OpenAIClient`, the judge's client too: several
endpoints (comma-separated ``base_url``), transient faults (connection errors, timeouts, HTTP
408/409/425/429/5xx, malformed bodies) retried with backoff and jitter (``Retry-After`` honoured) up to
``max_retries`` times, other 4xx permanent, reply bodies capped. A sample that still fails is recorded as
``status: "error"`` with a short ``code`` and the reason, never raised: one bad sample must not cost a long
evaluation, and the next run retries it. A reply of the wrong shape (``message`` not an object, ``content`` not
text) or with text that is not valid Unicode is such a failure (``bad_reply``, ``bad_text``), retried like a
malformed body.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from qwenlong_verl.common.aio import for_each
from qwenlong_verl.common.errors import InputError, RunFailed
from qwenlong_verl.common.openai_client import (
    DEFAULT_MAX_BODY_BYTES,
    OpenAIClient,
    Reply,
    RequestError,
    first_choice,
    first_message,
    redact,
    text_field,
)
from qwenlong_verl.driver.eval.store import read_jsonl

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
"""Each request carries ``qwenlong-eval:<item id>:<k>:<attempt>:<nonce>`` (vLLM uses it as its request id); the
generations of a memory-agent trajectory add their step to the nonce (``<nonce>-<step>``)."""


class GenerationSetupError(RunFailed):
    """The endpoint cannot serve this run at all (unreachable, model not served); nothing was sent."""


@dataclass
class GenerationConfig:
    """How to sample the served policy."""

    base_url: str
    """OpenAI-compatible base URL ending in ``/v1`` (e.g. ``http://HOST:8000/v1`` for ``vllm serve``); several
    servers of the same model, comma-separated, share the load."""

    model: str
    """Model name as served (``vllm serve MODEL`` or its ``--served-model-name``)."""

    temperature: float = 0.7
    """Sampling temperature (QwenLong-L1 evaluates at 0.7)."""

    top_p: float = 0.95
    """Nucleus sampling mass (QwenLong-L1: 0.95)."""

    max_tokens: int = 10000
    """Completion budget per sample (QwenLong-L1: 10,000 output tokens)."""

    concurrency: int = 16
    """Requests in flight at once."""

    timeout_s: float = 1800.0
    """Wall-clock limit of one request; long reasoning traces need minutes."""

    max_retries: int = 4
    """Retries of a transient failure after the first attempt."""

    backoff_s: float = 1.0
    """First retry delay; doubles per retry, with jitter."""

    backoff_max_s: float = 60.0
    """Upper bound of one retry delay (also caps ``Retry-After``)."""

    api_key: str | None = None
    """Bearer token (``vllm serve --api-key``); None sends no Authorization header."""

    seed: int | None = None
    """When set, each sample gets its own seed derived from (seed, id, k): reruns draw the same samples."""

    extra_body: Mapping[str, Any] = field(default_factory=dict)
    """Extra request fields passed through (e.g. ``top_k``, ``chat_template_kwargs``)."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Largest reply read; a longer one is a failed sample."""

    def __post_init__(self):
        urls = []
        for url in str(self.base_url or "").split(","):
            url = url.strip().rstrip("/")
            if not url.startswith(("http://", "https://")):
                raise InputError(f"--model-url must start with http:// or https://, got {redact(self.base_url)!r}")
            urls.append(url.removesuffix("/chat/completions"))
        self.base_url = ",".join(dict.fromkeys(urls))
        if not str(self.model or "").strip():
            raise InputError("--model is required (the served model name)")
        checks = [
            (self.temperature >= 0, "temperature must be >= 0"),
            (0 < self.top_p <= 1, "top_p must be in (0, 1]"),
            (self.max_tokens >= 1, "max_tokens must be >= 1"),
            (self.concurrency >= 1, "concurrency must be >= 1"),
            (self.timeout_s > 0, "timeout_s must be > 0"),
            (self.max_retries >= 0, "max_retries must be >= 0"),
            (self.backoff_s >= 0 and self.backoff_max_s >= 0, "backoff delays must be >= 0"),
            (self.max_body_bytes >= 1, "max_body_bytes must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)
        reserved = {"model", "messages", "n", "stream"} & set(self.extra_body)
        if reserved:
            raise InputError(f"extra_body must not set {sorted(reserved)}; they are set by the harness")

    @property
    def urls(self) -> list[str]:
        return self.base_url.split(",")

    def client(self) -> OpenAIClient:
        """The HTTP client for these settings (use it as ``async with``)."""
        return OpenAIClient(
            self.urls,
            model=self.model,
            api_key=self.api_key,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            backoff_s=self.backoff_s,
            backoff_max_s=self.backoff_max_s,
            max_concurrency=self.concurrency,
            max_body_bytes=self.max_body_bytes,
        )

    def sample_seed(self, item_id: str, k: int, step: int = 0) -> int | None:
        """The seed of sample ``k`` of an item (of generation ``step`` of a memory-agent trajectory, when > 0)."""
        if self.seed is None:
            return None
        key = f"{self.seed}:{item_id}:{k}" + (f":{step}" if step else "")
        digest = hashlib.sha256(key.encode()).digest()
        return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class SampleRequest:
    """One sample to draw."""

    item_id: str
    k: int
    messages: list[dict]


@dataclass
class GenerationStats:
    """What one generation pass did."""

    requested: int = 0
    ok: int = 0
    failed: int = 0
    retries: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    """Distinct error message -> samples that ended with it."""

    calls: int = 0
    """Generations asked for (one per sample; K + 1 per memory-agent trajectory), not counting retries."""

    def finished(self, row: Mapping[str, Any], retries: int | None = None) -> None:
        """Count one sample's generations row (``retries`` None: its ``attempts`` - 1)."""
        self.retries += int(row.get("attempts") or 1) - 1 if retries is None else retries
        if row["status"] == "ok":
            self.ok += 1
        else:
            self.failed += 1
            self.errors[row["error"]] = self.errors.get(row["error"], 0) + 1


def pending_samples(
    prompts: Mapping[str, list[dict]], n: int, existing: Iterable[Mapping[str, Any]]
) -> list[SampleRequest]:
    """Samples still to draw: every (id, k < n) without a successful row in ``existing``."""
    done = {(str(row["id"]), int(row["k"])) for row in existing if row.get("status") == "ok"}  # ok rows are final
    return [
        SampleRequest(item_id, k, messages)
        for item_id, messages in prompts.items()
        for k in range(n)
        if (item_id, k) not in done
    ]


def pending_from_file(prompts: Mapping[str, list[dict]], n: int, path) -> list[SampleRequest]:
    return pending_samples(prompts, n, read_jsonl(path))


async def check_served_model(client: OpenAIClient, model: str, timeout_s: float = 15.0) -> None:
    """Fail fast when an endpoint is down or does not serve ``model`` (skipped where /models is absent)."""
    for index, endpoint in enumerate(client.endpoints):
        url = f"{endpoint.shown}/models"
        try:
            served = await client.list_models(index, timeout_s=timeout_s)
        except RequestError as exc:
            if exc.code in ("connect", "timeout"):
                raise GenerationSetupError(
                    f"cannot reach {url} ({exc}); is the server (e.g. `vllm serve`) running "
                    "and is --model-url its /v1 base URL?"
                ) from exc
            raise GenerationSetupError(f"{url}: {exc}") from exc
        if served is None:
            logger.warning("%s lists no models (or is not implemented); not checking the model name", url)
        elif served and model not in served:
            raise GenerationSetupError(
                f"model {model!r} is not served at {endpoint.shown}; served: {', '.join(map(str, served))}"
            )


def _payload(config: GenerationConfig, messages: list[dict], seed: int | None, max_tokens: int) -> dict[str, Any]:
    payload: dict[str, Any] = {
        **dict(config.extra_body),
        "model": config.model,
        "messages": messages,
        "n": 1,
        "temperature": config.temperature,
        "top_p": config.top_p,
        "max_tokens": max_tokens,
    }
    if seed is not None:
        payload["seed"] = seed
    return payload


def header_safe(text: str) -> str:
    """``text`` with ``%`` and every non-printable character written as ``%XX`` of its UTF-8 bytes: an item id
    travels in the ``X-Request-Id`` header, where a control character is refused; injective, so ids stay apart."""
    return "".join(
        "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass")) if ch == "%" or not ch.isprintable() else ch
        for ch in text
    )


def new_nonce() -> str:
    return f"{random.getrandbits(32):08x}"


async def complete(
    client: OpenAIClient,
    config: GenerationConfig,
    messages: list[dict],
    *,
    item_id: str,
    k: int,
    nonce: str,
    seed: int | None,
    max_tokens: int | None = None,
) -> Reply[dict[str, Any]]:
    """One chat completion with the run's sampling settings, retried by the client: its row fields
    (:func:`_completion_fields`), or :class:`RequestError` once every attempt failed. ``max_tokens`` None: the
    run's ``max_tokens``."""

    def headers(attempt: int) -> dict[str, str]:
        return {REQUEST_ID_HEADER: f"qwenlong-eval:{header_safe(item_id)}:{k}:{attempt}:{nonce}"}

    payload = _payload(config, messages, seed, config.max_tokens if max_tokens is None else max_tokens)
    return await client.chat(payload, _completion_fields, headers=headers)


def failure_fields(exc: RequestError) -> dict[str, Any]:
    """The fields of a failed sample's generations row (``status: error``)."""
    return {
        "status": "error",
        "code": exc.code,
        "error": str(exc),
        "http_status": exc.status,
        "retryable": exc.retryable,
        "attempts": exc.attempts,
    }


async def draw(client: OpenAIClient, config: GenerationConfig, request: SampleRequest) -> dict[str, Any]:
    """One sample, retried by the client; returns its generations row (``status`` ok or error), never raises
    :class:`RequestError`."""
    seed = config.sample_seed(request.item_id, request.k)
    started = time.monotonic()
    try:
        reply = await complete(
            client, config, request.messages, item_id=request.item_id, k=request.k, nonce=new_nonce(), seed=seed
        )
    except RequestError as exc:
        logger.info("sample %s/%d failed after %d attempt(s): %s", request.item_id, request.k, exc.attempts, exc)
        return {"id": request.item_id, "k": request.k, **failure_fields(exc)}
    row = {
        "id": request.item_id,
        "k": request.k,
        "status": "ok",
        **reply.value,
        "attempts": reply.attempts,
        "latency_s": round(time.monotonic() - started, 3),
    }
    if seed is not None:
        row["seed"] = seed
    return row


def _completion_fields(data: dict) -> dict[str, Any]:
    """The row fields of a chat completion: its texts checked (see :func:`text_field`), its bookkeeping fields
    (usage, finish reason) kept only when of the documented type."""
    choice = first_choice(data)
    message = first_message(data)
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    finish = choice.get("finish_reason")
    fields: dict[str, Any] = {
        "response": text_field(message, "content") or "",
        "finish_reason": finish if isinstance(finish, str) else None,
        "prompt_tokens": _count(usage.get("prompt_tokens")),
        "completion_tokens": _count(usage.get("completion_tokens")),
    }
    # vLLM/SGLang with a reasoning parser move the thinking out of ``content``.
    reasoning = text_field(message, "reasoning_content") or text_field(message, "reasoning")
    if reasoning:
        fields["reasoning"] = reasoning
    return fields


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


async def generate(
    requests: list[SampleRequest],
    config: GenerationConfig,
    on_row: Callable[[dict[str, Any]], None],
    *,
    check_model: bool = True,
) -> GenerationStats:
    """Draw every request with ``config.concurrency`` workers; each finished row goes to ``on_row`` at once."""
    stats = GenerationStats(requested=len(requests))
    if not requests:
        return stats
    async with config.client() as client:
        if check_model:
            await check_served_model(client, config.model)

        async def one(request: SampleRequest) -> None:
            row = await draw(client, config, request)
            stats.calls += 1
            stats.finished(row)
            on_row(row)

        await for_each(requests, one, config.concurrency)
    return stats
