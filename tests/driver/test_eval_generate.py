"""The generation client against a real local HTTP server: payload, retries, timeouts, permanent failures."""

from __future__ import annotations

import asyncio
import time

import pytest
from support.eval_server import Call, ChatServer, Reply

from qwenlong_verl.driver.eval.generate import (
    GenerationConfig,
    GenerationSetupError,
    SampleRequest,
    generate,
    pending_samples,
)

pytestmark = pytest.mark.timeout(60)

MESSAGES = [{"role": "user", "content": "Read this. What is the answer?"}]


def config(url: str, **kw) -> GenerationConfig:
    base = dict(base_url=url, model="policy", backoff_s=0.01, backoff_max_s=0.05, timeout_s=5.0, max_retries=3)
    return GenerationConfig(**{**base, **kw})


def run(requests, cfg, **kw):
    rows = []
    stats = asyncio.run(generate(requests, cfg, rows.append, **kw))
    return rows, stats


def reqs(*ids, k=1):
    return [SampleRequest(i, j, MESSAGES) for i in ids for j in range(k)]


def test_payload_and_rows():
    with ChatServer(lambda c: Reply(text=f"Therefore, the answer is {c.item_id}-{c.k}.")) as server:
        rows, stats = run(reqs("a", "b", k=2), config(server.url, temperature=0.3, top_p=0.9, max_tokens=77, seed=5))
        calls = server.calls_snapshot()
    assert stats.ok == 4 and stats.failed == 0 and stats.retries == 0
    assert sorted((r["id"], r["k"]) for r in rows) == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    for r in rows:
        assert r["status"] == "ok" and r["response"] == f"Therefore, the answer is {r['id']}-{r['k']}."
        assert r["finish_reason"] == "stop" and r["completion_tokens"] == 5 and r["prompt_tokens"] == 6
        assert r["attempts"] == 1
    body = calls[0].body
    assert body["model"] == "policy" and body["n"] == 1 and body["messages"] == MESSAGES
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.3, 0.9, 77)
    seeds = {(c.item_id, c.k): c.body["seed"] for c in calls}
    assert len(set(seeds.values())) == 4  # one seed per sample, derived from (seed, id, k)
    assert seeds[("a", 0)] == config(server.url, seed=5).sample_seed("a", 0)
    assert config(server.url, seed=6).sample_seed("a", 0) != seeds[("a", 0)]


def test_item_ids_no_header_could_carry_are_escaped_in_the_request_id():
    odd = ["line\nbreak", "tab\tid", "100%", "%0A", "é:ü"]  # "%0A" and "line\nbreak" must stay apart
    with ChatServer(lambda c: Reply(text=f"Therefore, the answer is {c.item_id!r}.")) as server:
        rows, stats = run(reqs(*odd), config(server.url))
        seen = sorted(c.item_id for c in server.calls_snapshot())
    assert stats.ok == len(odd) and stats.failed == 0
    assert seen == sorted(odd)  # the server decodes each escaped id back to the store's id, one request each
    assert {r["id"]: r["response"] for r in rows} == {i: f"Therefore, the answer is {i!r}." for i in odd}


def test_extra_body_and_reasoning_content():
    reply = Reply(text="Therefore, the answer is 3.", reasoning="1+2=3")
    with ChatServer(lambda c: reply) as server:
        rows, _ = run(reqs("x"), config(server.url, extra_body={"top_k": 20}))
        body = server.calls_snapshot()[0].body
    assert body["top_k"] == 20 and "seed" not in body
    assert rows[0]["reasoning"] == "1+2=3" and rows[0]["response"] == "Therefore, the answer is 3."


def test_transient_500s_are_retried_until_success():
    def respond(c: Call) -> Reply:
        return Reply(status=500) if c.attempt <= 2 else Reply(text="ok")

    with ChatServer(respond) as server:
        rows, stats = run(reqs("a", "b"), config(server.url))
        calls = server.calls_snapshot()
    assert all(r["status"] == "ok" and r["attempts"] == 3 for r in rows)
    assert stats.retries == 4 and len(calls) == 6


def test_hang_past_timeout_is_retried():
    def respond(c: Call) -> Reply:
        return Reply(text="late", hang_s=3.0) if c.attempt == 1 else Reply(text="fast")

    with ChatServer(respond) as server:
        start = time.monotonic()
        rows, stats = run(reqs("slow"), config(server.url, timeout_s=0.4))
        took = time.monotonic() - start
        calls = server.calls_snapshot()
    assert rows[0]["status"] == "ok" and rows[0]["response"] == "fast" and rows[0]["attempts"] == 2
    assert [c.attempt for c in calls] == [1, 2]
    assert took < 2.5  # the hung attempt was abandoned at the timeout, not waited for


def test_permanent_4xx_is_recorded_without_retry():
    def respond(c: Call) -> Reply:
        if c.item_id == "long":
            return Reply(status=400, error="This model's maximum context length is 8192 tokens")
        return Reply(text="fine")

    with ChatServer(respond) as server:
        rows, stats = run(reqs("long", "short"), config(server.url))
        calls = server.calls_snapshot()
    by_id = {r["id"]: r for r in rows}
    assert by_id["short"]["status"] == "ok"
    bad = by_id["long"]
    assert bad["status"] == "error" and bad["http_status"] == 400 and bad["attempts"] == 1
    assert bad["retryable"] is False and "maximum context length" in bad["error"]
    assert [c.item_id for c in calls].count("long") == 1
    assert stats.failed == 1 and stats.ok == 1 and list(stats.errors.values()) == [1]


def test_persistent_failure_gives_up_after_max_retries():
    with ChatServer(lambda c: Reply(status=503, error="overloaded")) as server:
        rows, stats = run(reqs("a"), config(server.url, max_retries=2))
        calls = server.calls_snapshot()
    assert len(calls) == 3
    assert rows[0]["status"] == "error" and rows[0]["attempts"] == 3 and rows[0]["retryable"] is True
    assert "HTTP 503: overloaded" in rows[0]["error"]
    assert stats.failed == 1 and stats.retries == 2


def test_retry_after_is_honoured():
    def respond(c: Call) -> Reply:
        return Reply(status=429, retry_after=0.3) if c.attempt == 1 else Reply(text="ok")

    with ChatServer(respond) as server:
        rows, _ = run(reqs("a"), config(server.url, backoff_max_s=5.0))
        calls = server.calls_snapshot()
    assert rows[0]["status"] == "ok"
    assert calls[1].at - calls[0].at >= 0.28


def test_malformed_body_is_retried():
    def respond(c: Call) -> Reply:
        return Reply(text="ok")

    # a 200 without choices: the server below answers garbage on the first attempt
    class Garbage(ChatServer):
        async def _chat(self, request):
            from aiohttp import web

            if request.headers["X-Request-Id"].split(":")[-2] == "1":
                with self._lock:
                    self.calls.append(None)
                return web.json_response({"unexpected": True})
            return await super()._chat(request)

    with Garbage(respond) as server:
        rows, stats = run(reqs("a"), config(server.url))
    assert rows[0]["status"] == "ok" and rows[0]["attempts"] == 2 and stats.retries == 1


def test_concurrency_limit_is_respected():
    with ChatServer(lambda c: Reply(text="ok", hang_s=0.1)) as server:
        rows, _ = run(reqs(*[f"i{j}" for j in range(12)]), config(server.url, concurrency=3))
        assert server.max_in_flight == 3
    assert len(rows) == 12


def test_unknown_model_and_unreachable_server_fail_before_sampling():
    with ChatServer(lambda c: Reply(text="ok"), model="served-name") as server:
        with pytest.raises(GenerationSetupError, match="'policy' is not served.*served-name"):
            run(reqs("a"), config(server.url))
        assert server.calls_snapshot() == []
        url = server.url
    with pytest.raises(GenerationSetupError, match="cannot reach"):
        run(reqs("a"), config(url))


def test_config_validation():
    with pytest.raises(ValueError, match="http"):
        GenerationConfig(base_url="localhost:8000/v1", model="m")
    with pytest.raises(ValueError, match="model"):
        GenerationConfig(base_url="http://h/v1", model=" ")
    with pytest.raises(ValueError, match="extra_body must not set"):
        GenerationConfig(base_url="http://h/v1", model="m", extra_body={"n": 4})
    assert GenerationConfig(base_url="http://h:1/v1/chat/completions/", model="m").base_url == "http://h:1/v1"


def test_pending_samples_skip_done_retry_failed_and_grow_n():
    prompts = {"a": MESSAGES, "b": MESSAGES}
    existing = [
        {"id": "a", "k": 0, "status": "ok"},
        {"id": "a", "k": 1, "status": "error"},
        {"id": "b", "k": 0, "status": "error"},
        {"id": "b", "k": 0, "status": "ok"},  # a later success supersedes the failure
        {"id": "b", "k": 1, "status": "ok"},
        {"id": "b", "k": 1, "status": "error"},  # ...and is never undone by a later failure
    ]
    todo = pending_samples(prompts, 3, existing)
    assert [(r.item_id, r.k) for r in todo] == [("a", 1), ("a", 2), ("b", 2)]


def test_cancelled_run_keeps_finished_rows_and_resumes_the_rest(tmp_path):
    from qwenlong_verl.driver.eval.store import JsonlAppender, read_jsonl

    prompts = {f"i{j}": MESSAGES for j in range(8)}
    path = tmp_path / "generations.jsonl"

    async def cancel_midway(cfg):
        with JsonlAppender(path) as sink:
            task = asyncio.create_task(generate(pending_samples(prompts, 1, []), cfg, sink.append))
            while len(read_jsonl(path)) < 3:
                await asyncio.sleep(0.02)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    with ChatServer(lambda c: Reply(text="ok", hang_s=0.15)) as server:
        cfg = config(server.url, concurrency=2)
        asyncio.run(cancel_midway(cfg))
        first = {(r["id"], r["k"]) for r in read_jsonl(path)}
        assert 3 <= len(first) < 8
        before = len(server.calls_snapshot())
        rest = pending_samples(prompts, 1, read_jsonl(path))
        assert {(r.item_id, r.k) for r in rest} == {(i, 0) for i in prompts} - first
        with JsonlAppender(path) as sink:
            stats = asyncio.run(generate(rest, cfg, sink.append))
        assert stats.ok == len(rest)
        after = [(c.item_id, c.k) for c in server.calls_snapshot()[before:]]
        # each unfinished sample drawn again; a request cancelled in flight may reach the server late (at most
        # one per worker), but nothing finished is drawn twice
        assert set(after) == {(r.item_id, r.k) for r in rest}
        assert len(after) - len(rest) <= cfg.concurrency
    assert sorted((r["id"], r["k"]) for r in read_jsonl(path)) == sorted((i, 0) for i in prompts)


def test_several_servers_share_the_samples():
    with (
        ChatServer(lambda c: Reply(text="a", hang_s=0.05)) as a,
        ChatServer(lambda c: Reply(text="b", hang_s=0.05)) as b,
    ):
        cfg = config(f"{a.url}, {b.url}/chat/completions", concurrency=4)
        assert cfg.urls == [a.url, b.url]
        rows, stats = run(reqs(*[f"i{j}" for j in range(12)]), cfg)
        assert stats.ok == 12 and {r["response"] for r in rows} == {"a", "b"}
        assert len(a.calls_snapshot()) + len(b.calls_snapshot()) == 12
    with pytest.raises(ValueError, match=r"user:\*\*\*@") as caught:
        GenerationConfig(base_url="http://h/v1,ftp://user:pw@h", model="m")
    assert "pw" not in str(caught.value)


ODD_REPLIES = {
    "message_is_text": ({"choices": [{"message": "hello", "finish_reason": "stop"}]}, "bad_reply"),
    "content_is_a_list": ({"choices": [{"message": {"content": ["a"]}, "finish_reason": "stop"}]}, "bad_reply"),
    "reasoning_is_a_dict": ({"choices": [{"message": {"content": "x", "reasoning_content": {}}}]}, "bad_reply"),
    "lone_surrogate": (b'{"choices": [{"message": {"content": "x \\ud800 y"}, "finish_reason": "stop"}]}', "bad_text"),
    "deep_nesting": (b"[" * 100_000 + b"]" * 100_000, "bad_json"),
    "not_utf8": (b'{"choices": [{"message": {"content": "\xff\xfe"}}]}', "bad_json"),
}


def test_odd_replies_are_failed_samples_with_a_code_and_the_rest_goes_on():
    def respond(c: Call) -> Reply:
        if c.item_id in ODD_REPLIES:
            return Reply(body=ODD_REPLIES[c.item_id][0])
        return Reply(text="Therefore, the answer is 3.")

    with ChatServer(respond) as server:
        rows, stats = run(reqs(*ODD_REPLIES, "fine"), config(server.url, max_retries=1))
        calls = server.calls_snapshot()
    by_id = {r["id"]: r for r in rows}
    assert by_id["fine"]["status"] == "ok" and by_id["fine"]["response"] == "Therefore, the answer is 3."
    for item_id, (_, code) in ODD_REPLIES.items():
        row = by_id[item_id]
        assert (row["status"], row["code"], row["retryable"], row["attempts"]) == ("error", code, True, 2), row
    assert [c.item_id for c in calls].count("lone_surrogate") == 2  # retried like a malformed body
    assert stats.ok == 1 and stats.failed == len(ODD_REPLIES)


def test_usage_and_finish_reason_of_the_wrong_type_are_dropped_not_fatal():
    body = {
        "choices": [{"message": {"content": "Therefore, the answer is 3."}, "finish_reason": {"odd": 1}}],
        "usage": "lots",
    }
    odd_counts = {"choices": body["choices"], "usage": {"prompt_tokens": "many", "completion_tokens": True}}
    with ChatServer(lambda c: Reply(body=body if c.item_id == "a" else odd_counts)) as server:
        rows, stats = run(reqs("a", "b"), config(server.url))
    assert stats.ok == 2
    for row in rows:
        assert row["response"] == "Therefore, the answer is 3." and row["finish_reason"] is None
        assert row["prompt_tokens"] is None and row["completion_tokens"] is None
