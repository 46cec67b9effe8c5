"""Sample the served policy through an OpenAI-compatible chat endpoint (``vllm serve``, SGLang, ...).

One request per sample (item id, k): a killed run resumes exactly where it stopped, because each finished
sample is one appended row of ``generations.jsonl`` and only missing or failed samples are requested again.
The K requests of an item share their prompt, so a server with prefix caching (vLLM's default) computes the
long prefill once. ``concurrency`` workers pull from one queue (bounded memory, clean cancellation).

Transient faults — connection errors, timeouts, HTTP 408/409/425/429/5xx, malformed bodies — are retried
with exponential backoff and jitter (``Retry-After`` honoured) up to ``max_retries`` times; other 4xx are
permanent (a prompt longer than the server's window will not fit on a retry). Either way a sample that
still fails is recorded as ``status: "error"`` with the reason, never raised: one bad sample must not cost
a long evaluation, and the next run retries it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from qwenlong_verl.driver.eval.store import read_jsonl

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
"""4xx statuses worth retrying (plus every 5xx)."""

REQUEST_ID_HEADER = "X-Request-Id"
"""Each request carries ``qwenlong-eval:<item id>:<k>:<attempt>:<nonce>`` (vLLM uses it as its request id)."""


class GenerationSetupError(RuntimeError):
    """The endpoint cannot serve this run at all (unreachable, model not served); nothing was sent."""


@dataclass
class GenerationConfig:
    """How to sample the served policy."""

    base_url: str
    """OpenAI-compatible base URL ending in ``/v1`` (e.g. ``http://HOST:8000/v1`` for ``vllm serve``)."""

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

    def __post_init__(self):
        url = str(self.base_url or "").strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"--model-url must start with http:// or https://, got {self.base_url!r}")
        if url.endswith("/chat/completions"):
            url = url.removesuffix("/chat/completions")
        self.base_url = url
        if not str(self.model or "").strip():
            raise ValueError("--model is required (the served model name)")
        checks = [
            (self.temperature >= 0, "temperature must be >= 0"),
            (0 < self.top_p <= 1, "top_p must be in (0, 1]"),
            (self.max_tokens >= 1, "max_tokens must be >= 1"),
            (self.concurrency >= 1, "concurrency must be >= 1"),
            (self.timeout_s > 0, "timeout_s must be > 0"),
            (self.max_retries >= 0, "max_retries must be >= 0"),
            (self.backoff_s >= 0 and self.backoff_max_s >= 0, "backoff delays must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        reserved = {"model", "messages", "n", "stream"} & set(self.extra_body)
        if reserved:
            raise ValueError(f"extra_body must not set {sorted(reserved)}; they are set by the harness")

    def sample_seed(self, item_id: str, k: int) -> int | None:
        if self.seed is None:
            return None
        digest = hashlib.sha256(f"{self.seed}:{item_id}:{k}".encode()).digest()
        return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class SampleRequest:
    """One sample to draw."""

    item_id: str
    k: int
    messages: list[dict]


class RequestFailed(Exception):
    """One attempt failed; ``retryable`` says whether another attempt may succeed."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass
class GenerationStats:
    """What one generation pass did."""

    requested: int = 0
    ok: int = 0
    failed: int = 0
    retries: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    """Distinct error message -> samples that ended with it."""


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


def _error_message(status: int, body: str) -> str:
    import json

    try:
        data = json.loads(body)
    except ValueError:
        return f"HTTP {status}: {body.strip()[:300]}"
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and err.get("message"):
            return f"HTTP {status}: {str(err['message'])[:300]}"
        if isinstance(err, str):
            return f"HTTP {status}: {err[:300]}"
    return f"HTTP {status}: {body.strip()[:300]}"


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class ChatClient:
    """Async client of one chat-completions endpoint; use as ``async with ChatClient(config) as client``."""

    def __init__(self, config: GenerationConfig):
        self.config = config
        self._session = None

    async def __aenter__(self) -> ChatClient:
        import aiohttp

        headers = {"Content-Type": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        self._session = aiohttp.ClientSession(
            headers=headers,
            connector=aiohttp.TCPConnector(limit=self.config.concurrency),
            timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
        )
        return self

    async def __aexit__(self, *exc) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def check_model(self, timeout_s: float = 15.0) -> None:
        """Fail fast when the endpoint is down or does not serve ``config.model`` (skipped if /models is absent)."""
        import aiohttp

        url = f"{self.config.base_url}/models"
        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
                body = await resp.text()
                if resp.status in (404, 405):
                    logger.warning("%s is not implemented (HTTP %d); not checking the model name", url, resp.status)
                    return
                if resp.status != 200:
                    raise GenerationSetupError(f"{url}: {_error_message(resp.status, body)}")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:  # asyncio.TimeoutError: Python 3.10
            raise GenerationSetupError(
                f"cannot reach {url} ({type(exc).__name__}: {exc}); is the server (e.g. `vllm serve`) running "
                "and is --model-url its /v1 base URL?"
            ) from exc
        import json

        try:
            served = [m.get("id") for m in json.loads(body).get("data", []) if isinstance(m, dict)]
        except (ValueError, AttributeError):
            logger.warning("%s returned no model list; not checking the model name", url)
            return
        if served and self.config.model not in served:
            raise GenerationSetupError(
                f"model {self.config.model!r} is not served at {self.config.base_url}; served: {', '.join(map(str, served))}"
            )

    def _payload(self, messages: list[dict], seed: int | None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            **dict(self.config.extra_body),
            "model": self.config.model,
            "messages": messages,
            "n": 1,
            "temperature": self.config.temperature,
            "top_p": self.config.top_p,
            "max_tokens": self.config.max_tokens,
        }
        if seed is not None:
            payload["seed"] = seed
        return payload

    async def complete_once(self, messages: list[dict], *, request_id: str, seed: int | None = None) -> dict[str, Any]:
        """One attempt: the parsed completion fields, or :class:`RequestFailed`."""
        import aiohttp

        url = f"{self.config.base_url}/chat/completions"
        try:
            async with self._session.post(
                url, json=self._payload(messages, seed), headers={REQUEST_ID_HEADER: request_id}
            ) as resp:
                body = await resp.text()
                if resp.status != 200:
                    retryable = resp.status >= 500 or resp.status in RETRYABLE_STATUS
                    raise RequestFailed(
                        _error_message(resp.status, body),
                        status=resp.status,
                        retryable=retryable,
                        retry_after=_retry_after(resp.headers.get("Retry-After")),
                    )
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:  # asyncio.TimeoutError: Python 3.10
            kind = "timeout" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
            detail = f" after {self.config.timeout_s:g} s" if isinstance(exc, asyncio.TimeoutError) else f": {exc}"
            raise RequestFailed(f"{kind}{detail}", retryable=True) from exc
        return _parse_completion(body)

    async def complete(self, request: SampleRequest) -> tuple[dict[str, Any], int]:
        """Up to ``1 + max_retries`` attempts; returns (generations row, retries used). Never raises RequestFailed."""
        cfg = self.config
        nonce = f"{random.getrandbits(32):08x}"
        seed = cfg.sample_seed(request.item_id, request.k)
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            request_id = f"qwenlong-eval:{request.item_id}:{request.k}:{attempt}:{nonce}"
            try:
                fields = await self.complete_once(request.messages, request_id=request_id, seed=seed)
            except RequestFailed as exc:
                if not exc.retryable or attempt > cfg.max_retries:
                    logger.info("sample %s/%d failed after %d attempt(s): %s", request.item_id, request.k, attempt, exc)
                    row = {
                        "id": request.item_id,
                        "k": request.k,
                        "status": "error",
                        "error": str(exc),
                        "http_status": exc.status,
                        "retryable": exc.retryable,
                        "attempts": attempt,
                    }
                    return row, attempt - 1
                delay = min(cfg.backoff_max_s, cfg.backoff_s * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
                if exc.retry_after is not None:
                    delay = min(cfg.backoff_max_s, max(delay, exc.retry_after))
                logger.debug("retrying %s in %.2f s (%s)", request_id, delay, exc)
                await asyncio.sleep(delay)
                continue
            row = {
                "id": request.item_id,
                "k": request.k,
                "status": "ok",
                **fields,
                "attempts": attempt,
                "latency_s": round(time.monotonic() - started, 3),
            }
            if seed is not None:
                row["seed"] = seed
            return row, attempt - 1


def _parse_completion(body: str) -> dict[str, Any]:
    import json

    try:
        data = json.loads(body)
        choice = data["choices"][0]
        message = choice.get("message") or {}
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise RequestFailed(
            f"malformed completion body ({type(exc).__name__}): {body[:200]!r}", retryable=True
        ) from None
    usage = data.get("usage") or {}
    fields: dict[str, Any] = {
        "response": message.get("content") or "",
        "finish_reason": choice.get("finish_reason"),
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
    }
    # vLLM/SGLang with a reasoning parser move the thinking out of ``content``.
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning:
        fields["reasoning"] = reasoning
    return fields


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
    queue: asyncio.Queue[SampleRequest] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)

    async with ChatClient(config) as client:
        if check_model:
            await client.check_model()

        async def worker() -> None:
            while True:
                try:
                    request = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                row, retries = await client.complete(request)
                stats.retries += retries
                if row["status"] == "ok":
                    stats.ok += 1
                else:
                    stats.failed += 1
                    stats.errors[row["error"]] = stats.errors.get(row["error"], 0) + 1
                on_row(row)

        workers = [asyncio.create_task(worker()) for _ in range(min(config.concurrency, len(requests)))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
    return stats
