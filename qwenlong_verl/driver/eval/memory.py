"""``eval --agent memory``: each sample is one memory-agent trajectory, K memory updates and the answer, drawn through
the eval's OpenAI client and scored like any eval answer.

The trajectory is :func:`qwenlong_verl.worker.agent.episode.run_episode`, the function the training loop runs; here
its ``generate`` is one chat completion with the run's sampling settings, timeouts, retries and endpoints
(:func:`~qwenlong_verl.driver.eval.generate.complete`). ``--concurrency`` trajectories run at once, each with one
request in flight, so the server sees as many requests as in a full-context eval. The document of a question is
tokenized once (in a worker thread) for all of its pending samples and read as slices of those ids.

A generation that still fails after the client's retries (HTTP 5xx, timeouts, a malformed reply) ends its
trajectory: the sample's row is ``status: error`` with the failing step, it counts as wrong and unanswered, and
the run goes on.

Resume is per trajectory. A finished trajectory's row in ``generations.jsonl`` (answer, per-step records, counts)
is final: it is scored, never generated again. An unfinished one keeps its state after its last finished memory
update in ``trajectories/<key>.json`` (written atomically after every update, removed once its row is written), so
a killed run, or a rerun after a server fault, goes on at the next chunk instead of reading the document again: a
4M-token document is 124 generations in a row. A state is taken only for the same prompt (``prompt_sha``) and
document length; the agent settings and the tokenizer are fixed per folder by ``run.json``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwenlong_verl.common.aio import for_each
from qwenlong_verl.common.files import atomic_write
from qwenlong_verl.common.openai_client import RequestError
from qwenlong_verl.driver.eval.generate import (
    GenerationConfig,
    GenerationStats,
    SampleRequest,
    check_served_model,
    complete,
    failure_fields,
    new_nonce,
)
from qwenlong_verl.driver.eval.store import dumps
from qwenlong_verl.worker.agent.episode import Budgets, Episode, EpisodeState, Tokens, run_episode
from qwenlong_verl.worker.agent.query import MemoryRowError, split_query

logger = logging.getLogger(__name__)

TOKENIZE_AT_ONCE = 2
"""Documents tokenized at the same time (each in batches of pieces on all cores; see ``Tokens.encode_document``)."""


# ----------------------------------------------------------------------------- checkpoints


@dataclass
class Usage:
    """What a trajectory's generations cost so far (kept across a resume)."""

    requests: int = 0
    """HTTP requests sent, retries included."""
    prompt_tokens: int = 0
    """Server-reported prompt tokens, summed over generations."""
    completion_tokens: int = 0
    """Server-reported completion tokens, summed over generations."""
    cut_at_max_tokens: int = 0
    """Generations stopped by their token budget (``finish_reason == "length"``): a memory update cut mid-thought
    carries only what it wrote."""

    def add(self, reply_fields: Mapping[str, Any], attempts: int) -> None:
        self.requests += attempts
        self.prompt_tokens += reply_fields.get("prompt_tokens") or 0
        self.completion_tokens += reply_fields.get("completion_tokens") or 0
        self.cut_at_max_tokens += reply_fields.get("finish_reason") == "length"


class Checkpoints:
    """``trajectories/``: one JSON file per unfinished trajectory (see the module docstring)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def path(self, item_id: str, k: int) -> Path:
        """The file of sample ``k`` of an item (ids may hold any character, so the name is a hash)."""
        key = f"{item_id}\n{k}".encode("utf-8", "surrogatepass")
        return self.folder / f"{hashlib.sha256(key).hexdigest()[:32]}.json"

    def load(self, item_id: str, k: int, prompt_sha: str) -> tuple[EpisodeState, Usage] | None:
        """The saved state of a trajectory, or None (none saved, or saved for another prompt, or unreadable)."""
        path = self.path(item_id, k)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("%s: unreadable trajectory checkpoint (%s); sample %s/%d starts over", path, exc, item_id, k)
            return None
        if not isinstance(data, dict) or data.get("id") != item_id or data.get("k") != k:
            return None
        if data.get("prompt_sha") != prompt_sha:
            logger.info("%s: saved for another prompt of %s; sample %d starts over", path, item_id, k)
            return None
        try:
            return EpisodeState.from_dict(data["state"]), Usage(**data.get("usage", {}))
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning("%s: bad trajectory checkpoint (%s); sample %s/%d starts over", path, exc, item_id, k)
            return None

    def save(self, item_id: str, k: int, prompt_sha: str, state: EpisodeState, usage: Usage) -> None:
        record = {"id": item_id, "k": k, "prompt_sha": prompt_sha, "state": state.as_dict(), "usage": usage.__dict__}
        atomic_write(self.path(item_id, k), dumps(record) + "\n")

    def drop(self, item_id: str, k: int) -> None:
        self.path(item_id, k).unlink(missing_ok=True)

    def sweep(self) -> None:
        """Remove temporary files a kill left mid-write (the folder's lock is held: no writer is running)."""
        for leftover in self.folder.glob(".*.tmp.json"):
            leftover.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- documents


class _Documents:
    """Token ids of each question's document: tokenized once for all of its pending samples, dropped after the
    last one (4 bytes a token: 16 MB for 4M tokens)."""

    def __init__(self, tokens: Tokens, uses: Counter):
        self.tokens = tokens
        self.uses = Counter(uses)
        self.tasks: dict[str, asyncio.Future] = {}
        self.gate = asyncio.Semaphore(TOKENIZE_AT_ONCE)

    async def ids(self, item_id: str, text: str) -> Sequence[int]:
        task = self.tasks.get(item_id)
        if task is None:
            task = self.tasks[item_id] = asyncio.ensure_future(self._encode(text))
        return await asyncio.shield(task)  # one sample cancelled must not cancel its siblings' ids

    async def _encode(self, text: str) -> Sequence[int]:
        async with self.gate:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, self.tokens.encode_document, text)

    def release(self, item_id: str) -> None:
        self.uses[item_id] -= 1
        if self.uses[item_id] <= 0:
            self.tasks.pop(item_id, None)


# ----------------------------------------------------------------------------- rows


def memory_fields(episode: Episode, usage: Usage) -> dict[str, Any]:
    """The ``memory`` record of a finished trajectory's row: shape, per-step records, cost."""
    updates = episode.records[:-1]
    plans = [r for r in updates if r.plan_tokens is not None]
    return {
        "chunks": len(episode.schedule),
        "document_tokens": episode.schedule.document_tokens,
        "document_cut": episode.schedule.cut,
        "generations": episode.generations,
        "resumed_from": episode.resumed_from,
        "memory_truncations": sum(r.memory_truncated for r in updates),
        "plan_truncations": sum(bool(r.plan_truncated) for r in plans) if plans else None,
        "memory_tokens": episode.records[-1].memory_tokens,
        "requests": usage.requests,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cut_at_max_tokens": usage.cut_at_max_tokens,
        "steps": [r.as_dict() for r in episode.records],
    }


# ----------------------------------------------------------------------------- the run


async def generate_trajectories(
    requests: list[SampleRequest],
    config: GenerationConfig,
    budgets: Budgets,
    tokens: Tokens,
    checkpoints: Checkpoints,
    prompt_shas: Mapping[str, str],
    on_row: Callable[[dict[str, Any]], None],
    *,
    check_model: bool = True,
) -> GenerationStats:
    """One memory-agent trajectory per request, ``config.concurrency`` at once; each finished row (answer, or the
    failure) goes to ``on_row`` at once. ``prompt_shas``: item id -> the fingerprint its checkpoints must carry."""
    stats = GenerationStats(requested=len(requests))
    if not requests:
        return stats
    documents = _Documents(tokens, Counter(r.item_id for r in requests))
    checkpoints.sweep()
    async with config.client() as client:
        if check_model:
            await check_served_model(client, config.model)

        async def one(request: SampleRequest) -> None:
            try:
                row, calls, sent = await _trajectory(
                    client, config, budgets, tokens, checkpoints, documents, prompt_shas, request
                )
            finally:
                documents.release(request.item_id)
            stats.calls += calls
            stats.finished(row, retries=sent - calls)
            on_row(row)
            if row["status"] == "ok":  # after its row is written: a kill in between keeps the state, not a gap
                checkpoints.drop(request.item_id, request.k)

        await for_each(requests, one, config.concurrency)
    return stats


async def _trajectory(
    client,
    config: GenerationConfig,
    budgets: Budgets,
    tokens: Tokens,
    checkpoints: Checkpoints,
    documents: _Documents,
    prompt_shas: Mapping[str, str],
    request: SampleRequest,
) -> tuple[dict[str, Any], int, int]:
    """``(generations row, generations asked for, requests sent)`` of one sample in this run; never raises
    :class:`RequestError`."""
    item_id, k = request.item_id, request.k
    base = {"id": item_id, "k": k}
    try:
        query = split_query(request.messages, {"index": item_id})
    except MemoryRowError as exc:
        return {**base, "status": "error", "code": "bad_row", "error": str(exc), "attempts": 0}, 0, 0
    started = time.monotonic()
    ids = await documents.ids(item_id, query.document)
    sha = prompt_shas.get(item_id, "")
    saved = checkpoints.load(item_id, k, sha)
    state, usage = saved if saved is not None else (None, Usage())
    if state is not None and state.document_tokens != len(ids):
        state, usage = None, Usage()  # the same prompt tokenized otherwise: a changed tokenizer (run.json refuses it)
    loop = asyncio.get_running_loop()
    nonce = new_nonce()
    answer: dict[str, Any] = {}
    calls = sent = 0
    current = state.step if state is not None else 0

    async def generate(messages: list[dict[str, str]], max_tokens: int, step: int) -> str:
        nonlocal answer, calls, sent, current
        current = step
        calls += 1
        reply = await complete(
            client,
            config,
            messages,
            item_id=item_id,
            k=k,
            nonce=f"{nonce}-{step}",
            seed=config.sample_seed(item_id, k, step),
            max_tokens=max_tokens,
        )
        sent += reply.attempts
        usage.add(reply.value, reply.attempts)
        answer = reply.value
        return reply.value["response"]

    async def save(after: EpisodeState) -> None:
        await loop.run_in_executor(None, checkpoints.save, item_id, k, sha, after, usage)

    try:
        episode = await run_episode(query, generate, tokens, budgets, document_ids=ids, state=state, on_step=save)
    except RequestError as exc:
        logger.info(
            "sample %s/%d failed at generation %d after %d attempt(s): %s", item_id, k, current, exc.attempts, exc
        )
        sent += exc.attempts
        usage.requests += exc.attempts
        row = {**base, **failure_fields(exc), "memory": {"failed_step": current, "requests": usage.requests}}
        return row, calls, sent
    row = {
        **base,
        "status": "ok",
        **answer,
        "attempts": usage.requests,
        "latency_s": round(time.monotonic() - started, 3),
        "memory": memory_fields(episode, usage),
    }
    return row, calls, sent
