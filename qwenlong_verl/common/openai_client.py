"""The one OpenAI-compatible chat client: the LLM judge and the eval harness both talk through it.

Both send chat completions to ``vllm serve``-like endpoints and need the same care, so it lives once:

* one ``aiohttp`` session (a keep-alive connection pool) per client; a client belongs to the event loop that
  first uses it (aiohttp sessions cannot cross loops), and is closed with :meth:`OpenAIClient.close`;
* several endpoints: least loaded first (ties in turn), at most ``max_concurrency`` requests in flight per
  endpoint, and a retry goes to another endpoint when there is one;
* a timeout per HTTP request; bounded retries with exponential backoff and jitter on connection errors,
  timeouts, HTTP 408/409/425/429/5xx and malformed bodies, ``Retry-After`` honoured up to ``backoff_max_s``;
  other 4xx are final (a prompt too long for the server will not fit on a retry);
* a reply body is read up to ``max_body_bytes`` (4 MiB): a longer one fails the request and is never read whole;
* ``user:password@`` in an endpoint URL is sent as basic auth and shown as ``user:***@`` in every log line and
  error message (:func:`redact`); the API key is sent as a bearer token and never logged.

aiohttp is imported on first use, so importing this module costs nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from qwenlong_verl.common.errors import InputError

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
"""Largest reply body read; a longer one is a failed request (``too_large``)."""

ERROR_BODY_BYTES = 64 * 1024
"""What is read of an error reply: enough for its message."""

RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
"""4xx statuses worth retrying (plus every 5xx)."""

_CREDENTIALS = re.compile(r"(?<=://)([^/@\s:]*):[^/\s]*@")
"""``user:password@`` after a scheme; the password runs to the last ``@`` before the host (it may hold one)."""


_TOKEN = re.compile(r"(?<=://)[^/@\s:]+@")
"""A bare ``token@`` (a credential given as the user name alone) after a scheme."""


def redact(text: str) -> str:
    """``http://user:secret@host`` -> ``http://user:***@host`` and ``http://token@host`` -> ``http://***@host``,
    wherever URLs occur in ``text``."""
    return _TOKEN.sub("***@", _CREDENTIALS.sub(r"\1:***@", str(text)))


class RequestError(Exception):
    """A request that failed; ``code`` is short and stable, the message says why (credentials redacted).

    Codes: ``timeout``, ``connect``, ``http_<status>``, ``bad_json``, ``no_choices``, ``bad_reply`` (a field of
    the wrong type), ``bad_text`` (text that is not valid Unicode), ``too_large``, ``no_model``, ``error``, or a
    caller's own code raised from its ``parse`` function.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ):
        super().__init__(redact(message))
        self.code = code
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.attempts = 1
        """Attempts made when the error ended the call."""


@dataclass(frozen=True)
class Reply(Generic[T]):
    """A successful chat call."""

    value: T
    """What the caller's ``parse`` made of the reply body."""

    attempts: int
    """1 + the retries it took."""

    endpoint: str
    """The base URL that answered (redacted)."""


class _Endpoint:
    def __init__(self, base_url: str, max_concurrency: int):
        parts = urlsplit(base_url)
        self.auth = (unquote(parts.username or ""), unquote(parts.password or "")) if parts.username else None
        host = parts.netloc.rpartition("@")[2]
        self.url = urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))
        self.shown = redact(base_url.rstrip("/"))
        self.slots = asyncio.Semaphore(max_concurrency)
        self.load = 0
        self.model = ""
        self.model_lock = asyncio.Lock()


class OpenAIClient:
    """Chat completions over one or more OpenAI-compatible endpoints; see the module docs for the guarantees."""

    def __init__(
        self,
        base_urls: Sequence[str],
        *,
        model: str = "",
        api_key: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 2,
        backoff_s: float = 0.25,
        backoff_max_s: float = 10.0,
        max_concurrency: int = 64,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ):
        """``base_urls`` end at the API root (``http://host:8000/v1``); ``model=""`` sends the first model each
        endpoint lists at ``/models`` when a payload names none."""
        if isinstance(base_urls, str) or not base_urls:
            raise InputError(f"an OpenAI client needs a list of base URLs, got {redact(repr(base_urls))}")
        for url in base_urls:
            if not str(url).startswith(("http://", "https://")):
                raise InputError(f"endpoint URL must start with http:// or https://, got {redact(url)!r}")
        self.endpoints = [_Endpoint(str(url), max_concurrency) for url in base_urls]
        if api_key and any(e.auth for e in self.endpoints):
            raise InputError("give either an API key or user:password@ in the endpoint URL, not both")
        self.model = model
        self.api_key = api_key or ""
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.max_body_bytes = max_body_bytes
        self.requests = 0
        """Chat requests sent (every attempt counts)."""
        self.retries = 0
        self._turn = 0
        self._http = None

    def __repr__(self) -> str:
        return f"OpenAIClient({[e.shown for e in self.endpoints]!r})"

    async def __aenter__(self) -> OpenAIClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        """No session is open (never used, or closed)."""
        return self._http is None or self._http.closed

    async def close(self) -> None:
        http, self._http = self._http, None
        if http is not None and not http.closed:
            await http.close()

    # -- calls ---------------------------------------------------------------------------------------

    async def chat(
        self,
        payload: Mapping[str, Any],
        parse: Callable[[dict], T] | None = None,
        *,
        headers: Callable[[int], Mapping[str, str]] | None = None,
    ) -> Reply[T]:
        """POST ``payload`` to ``/chat/completions``, retrying as the module docs say.

        ``parse(body)`` turns the JSON body (checked to have a first choice) into the value; it may raise
        :class:`RequestError` (``retryable`` or not) to reject a reply. ``headers(attempt)`` adds per-attempt
        headers (1-based attempt). Raises :class:`RequestError` with ``attempts`` set when every attempt failed.
        """
        attempt = 0
        previous: _Endpoint | None = None
        while True:
            attempt += 1
            endpoint = self._pick(avoid=previous)
            try:
                value = await self._chat_once(endpoint, payload, parse, headers(attempt) if headers else None)
            except RequestError as exc:
                exc.attempts = attempt
                previous = endpoint
                if not exc.retryable or attempt > self.max_retries:
                    raise
                self.retries += 1
                delay = self._delay(attempt, exc.retry_after)
                logger.debug("retrying %s in %.2f s (%s: %s)", endpoint.shown, delay, exc.code, exc)
                await asyncio.sleep(delay)
                continue
            return Reply(value, attempt, endpoint.shown)

    async def list_models(self, endpoint: int = 0, timeout_s: float | None = None) -> list[str] | None:
        """Model ids served at ``endpoints[endpoint]`` (``GET /models``); ``None`` when the endpoint does not
        implement the route (HTTP 404/405) or answers without a model list."""
        try:
            data = await self._call(self.endpoints[endpoint], "GET", "/models", timeout_s=timeout_s)
        except RequestError as exc:
            if exc.status in (404, 405) or exc.code == "bad_json":
                return None
            raise
        try:
            return [str(m["id"]) for m in data["data"] if isinstance(m, dict) and "id" in m]
        except (KeyError, TypeError):
            return None

    # -- internals -----------------------------------------------------------------------------------

    def _pick(self, avoid: _Endpoint | None) -> _Endpoint:
        candidates = [e for e in self.endpoints if e is not avoid] or self.endpoints
        n = len(self.endpoints)
        self._turn = (self._turn + 1) % n
        return min(candidates, key=lambda e: (e.load, (self.endpoints.index(e) - self._turn) % n))

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max_s))
        return delay

    async def _chat_once(self, endpoint, payload, parse, headers) -> Any:
        endpoint.load += 1
        try:
            async with endpoint.slots:
                body = dict(payload)
                if not body.get("model"):
                    body["model"] = await self._model(endpoint)
                self.requests += 1
                data = await self._call(endpoint, "POST", "/chat/completions", json=body, headers=headers)
        finally:
            endpoint.load -= 1
        first_choice(data)
        return parse(data) if parse is not None else data

    async def _model(self, endpoint: _Endpoint) -> str:
        if self.model:
            return self.model
        async with endpoint.model_lock:
            if not endpoint.model:
                data = await self._call(endpoint, "GET", "/models")
                try:
                    endpoint.model = str(data["data"][0]["id"])
                except (KeyError, IndexError, TypeError):
                    raise RequestError("no_model", f"{endpoint.shown}/models lists no model") from None
        return endpoint.model

    def _session(self):
        if self._http is None or self._http.closed:
            import aiohttp

            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else None
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
            self._http = aiohttp.ClientSession(connector=connector, headers=headers)
        return self._http

    async def _call(self, endpoint: _Endpoint, method: str, path: str, timeout_s: float | None = None, **kwargs):
        """One HTTP request; the parsed JSON body, or :class:`RequestError`."""
        import aiohttp

        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        auth = aiohttp.BasicAuth(*endpoint.auth) if endpoint.auth else None
        where = f"{endpoint.shown}{path}"
        try:
            async with self._session().request(
                method, endpoint.url + path, auth=auth, timeout=aiohttp.ClientTimeout(total=timeout_s), **kwargs
            ) as resp:
                if resp.status != 200:
                    text = (await _read(resp, ERROR_BODY_BYTES, truncate=True)).decode("utf-8", "replace")
                    raise RequestError(
                        f"http_{resp.status}",
                        error_message(resp.status, text),
                        status=resp.status,
                        retryable=resp.status >= 500 or resp.status in RETRYABLE_STATUS,
                        retry_after=_retry_after(resp.headers.get("Retry-After")),
                    )
                if resp.content_length is not None and resp.content_length > self.max_body_bytes:
                    resp.close()  # drop the connection rather than read what we will not use
                    raise _too_large(where, self.max_body_bytes)
                body = await _read(resp, self.max_body_bytes)
                if body is None:
                    raise _too_large(where, self.max_body_bytes)
        except asyncio.TimeoutError:  # before ClientError: aiohttp's own timeouts are both
            raise RequestError("timeout", f"timeout after {timeout_s:g} s ({where})", retryable=True) from None
        except aiohttp.InvalidURL as exc:
            raise RequestError("error", f"invalid URL {where}: {exc}") from None
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise RequestError("connect", f"{type(exc).__name__}: {exc} ({where})", retryable=True) from None
        except aiohttp.ClientError as exc:
            raise RequestError("error", f"{type(exc).__name__}: {exc} ({where})", retryable=True) from None
        try:
            return json.loads(body)
        except (ValueError, RecursionError):  # ValueError covers bytes that are not UTF-8
            raise RequestError("bad_json", f"malformed body (not JSON): {body[:200]!r}", retryable=True) from None


def first_choice(data: Any) -> dict:
    """``data["choices"][0]`` of a chat completion, or a retryable ``no_choices`` :class:`RequestError`."""
    try:
        choice = data["choices"][0]
    except (KeyError, IndexError, TypeError):
        choice = None
    if not isinstance(choice, dict):
        raise RequestError("no_choices", f"malformed completion body (no choices): {str(data)[:200]!r}", retryable=True)
    return choice


def first_message(data: Any) -> dict:
    """``choices[0].message`` of a chat completion; a retryable ``no_choices`` / ``bad_reply`` otherwise."""
    choice = first_choice(data)
    message = choice.get("message")
    if not isinstance(message, dict):
        raise RequestError(
            "bad_reply", f"malformed completion body (message is not an object): {str(data)[:200]!r}", retryable=True
        )
    return message


def text_field(fields: Mapping[str, Any], key: str) -> str | None:
    """A text field of a reply (``content``, ``reasoning_content``): ``None`` when absent or null; a retryable
    ``bad_reply`` when not a string, ``bad_text`` when it holds a lone surrogate (not valid Unicode, so it
    could be neither stored as UTF-8 nor trusted as the model's text)."""
    value = fields.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestError("bad_reply", f"malformed reply: {key} is a {type(value).__name__}, not text", retryable=True)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RequestError(
            "bad_text", f"reply {key} is not valid Unicode (lone surrogate at {exc.start})", retryable=True
        ) from None
    return value


def error_message(status: int, body: str) -> str:
    """``HTTP <status>: <the server's message>`` from an OpenAI-style error body (or its first 300 chars)."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and err.get("message"):
            return f"HTTP {status}: {str(err['message'])[:300]}"
        if isinstance(err, str):
            return f"HTTP {status}: {err[:300]}"
    return f"HTTP {status}: {body.strip()[:300]}"


def _too_large(where: str, limit: int) -> RequestError:
    return RequestError("too_large", f"reply of {where} is larger than {limit:,} bytes; not read")


async def _read(resp, limit: int, truncate: bool = False) -> bytes | None:
    """At most ``limit`` bytes of the body: the first ``limit`` with ``truncate``, else ``None`` when longer."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(65536):
        if size + len(chunk) > limit:
            resp.close()
            if not truncate:
                return None
            chunks.append(chunk[: limit - size])
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _retry_after(value: str | None) -> float | None:
    """Seconds of a ``Retry-After`` header (the HTTP-date form is ignored)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
