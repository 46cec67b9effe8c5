"""The shared OpenAI-compatible client over real local HTTP: size cap, credentials, endpoints, import cost."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys

import pytest
from aiohttp import web
from support.eval_server import ChatServer, Reply

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.openai_client import OpenAIClient, RequestError, redact
from qwenlong_verl.driver.score import load_rows, write_results
from qwenlong_verl.worker.rewards import compute_score_async
from qwenlong_verl.worker.rewards import judge as judge_mod
from qwenlong_verl.worker.rewards.judge import close_clients
from qwenlong_verl.worker.rewards.judge_server import LocalJudgeServer

pytestmark = pytest.mark.timeout(60)

PAYLOAD = {"model": "policy", "messages": [{"role": "user", "content": "hi"}]}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_credentials(url: str, user: str = "alice", password: str = "s3cret") -> str:
    return url.replace("http://", f"http://{user}:{password}@")


class RecordingServer(ChatServer):
    """The eval test server, also keeping each request's Authorization header."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.auth: list[str] = []

    async def _chat(self, request):
        self.auth.append(request.headers.get("Authorization", ""))
        return await super()._chat(request)


class ChunkedServer(ChatServer):
    """Answers with a chunked body (no Content-Length) of ``size`` bytes: the cap must hold while reading."""

    size = 0

    async def _chat(self, request):
        with self._lock:
            self.calls.append(None)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            for _ in range(self.size // 4096):
                await resp.write(b" " * 4096)
            await resp.write(json.dumps({"choices": [{"message": {"content": "ok"}}]}).encode())
        except (ConnectionResetError, RuntimeError):  # the client hung up, as it should
            pass
        return resp


def client(urls, **kwargs) -> OpenAIClient:
    return OpenAIClient(urls, **{"backoff_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 5.0, **kwargs})


def test_redact_a_password_holding_at_signs_and_colons():
    assert redact("http://bob:p@ss:w@rd@h:80/v1 and https://x:y@z") == "http://bob:***@h:80/v1 and https://x:***@z"
    assert redact("['http://a:pw@h/v1', 'http://b:pw2@h2']") == "['http://a:***@h/v1', 'http://b:***@h2']"
    assert redact("http://h/v1?q=a@b") == "http://h/v1?q=a@b"


def test_redact():
    assert redact("http://u:p%40ss@h:1/v1 and https://x:y@z") == "http://u:***@h:1/v1 and https://x:***@z"
    assert redact("http://h:1/v1") == "http://h:1/v1"


async def test_reply_over_the_size_cap_fails_unretried():
    with ChatServer(lambda c: Reply(text="x" * 10_000)) as server:
        async with client([server.url], max_body_bytes=4096) as http:
            with pytest.raises(RequestError) as caught:
                await http.chat(PAYLOAD)
            assert caught.value.code == "too_large" and caught.value.attempts == 1
            reply = await client([server.url]).chat(PAYLOAD)  # the default cap (4 MiB) takes it
            assert reply.value["choices"][0]["message"]["content"] == "x" * 10_000


async def test_chunked_reply_over_the_cap_is_not_read_whole():
    with ChunkedServer(lambda c: Reply()) as server:
        server.size = 2 * 1024 * 1024
        async with client([server.url], max_body_bytes=64 * 1024) as http:
            with pytest.raises(RequestError, match="larger than 65,536 bytes") as caught:
                await http.chat(PAYLOAD)
        assert caught.value.code == "too_large"
        server.size = 8192
        async with client([server.url], max_body_bytes=64 * 1024) as http:
            assert (await http.chat(PAYLOAD)).value["choices"][0]["message"]["content"] == "ok"


async def test_url_credentials_are_sent_as_basic_auth_and_never_shown(caplog):
    with RecordingServer(lambda c: Reply(text="ok")) as server:
        async with client([with_credentials(server.url)]) as http:
            assert (await http.chat(PAYLOAD)).endpoint == with_credentials(server.url, password="***")
            assert "s3cret" not in repr(http)
        assert server.auth == ["Basic YWxpY2U6czNjcmV0"]  # alice:s3cret
    dead = with_credentials(f"http://127.0.0.1:{closed_port()}/v1")
    with caplog.at_level(logging.DEBUG):
        async with client([dead], max_retries=1) as http:
            with pytest.raises(RequestError) as caught:
                await http.chat(PAYLOAD)
    assert caught.value.code == "connect" and caught.value.attempts == 2
    assert "alice:***@" in str(caught.value) and "s3cret" not in str(caught.value)
    assert caplog.records and not any("s3cret" in r.getMessage() for r in caplog.records)


async def test_api_key_is_a_bearer_token_and_never_logged(caplog):
    with RecordingServer(lambda c: Reply(status=503, error="busy")) as server:
        with caplog.at_level(logging.DEBUG):
            async with client([server.url], api_key="sk-topsecret", max_retries=1) as http:
                with pytest.raises(RequestError, match="HTTP 503: busy"):
                    await http.chat(PAYLOAD)
        assert server.auth == ["Bearer sk-topsecret"] * 2
    assert "sk-topsecret" not in caplog.text
    with pytest.raises(InputError, match="not both"):
        OpenAIClient([with_credentials(server.url)], api_key="sk-topsecret")


async def test_retry_goes_to_another_endpoint_and_honours_retry_after():
    with ChatServer(lambda c: Reply(status=429, retry_after=0.3)) as busy, ChatServer(lambda c: Reply(text="ok")) as ok:
        async with client([busy.url, ok.url], backoff_max_s=5.0) as http:
            replies = await asyncio.gather(*(http.chat(PAYLOAD) for _ in range(4)))
        assert all(r.value["choices"][0]["message"]["content"] == "ok" for r in replies)
        assert len(ok.calls_snapshot()) == 4 and len(busy.calls_snapshot()) <= 4
        retried = [r for r in replies if r.attempts == 2]
        assert len(retried) == len(busy.calls_snapshot())
        assert http.requests == 4 + len(retried) and http.retries == len(retried)


async def test_judge_endpoint_with_credentials(caplog):
    with LocalJudgeServer(lifetime_s=60) as judge:
        result = await compute_score_async(
            "hotpotqa", "The answer is Boston", "New York City", {}, judge_urls=with_credentials(judge.url)
        )
        assert result["judge"] == 0.0 and judge.auth_seen == ["Basic YWxpY2U6czNjcmV0"]
        judge_mod._warn_state.clear()  # an earlier test's connect warning would hold this one back
        with caplog.at_level(logging.WARNING, logger="qwenlong_verl.worker.rewards.judge"):
            dead = with_credentials(f"http://127.0.0.1:{closed_port()}")
            result = await compute_score_async(
                "hotpotqa", "The answer is Paris", "Rome", {}, judge_urls=dead, judge_max_retries=0
            )
        assert result["judge_error"] == "connect"
        assert "alice:***@" in caplog.text and "s3cret" not in caplog.text
    await close_clients()


def test_score_output_never_overwrites_its_input(tmp_path):
    responses = tmp_path / "responses.jsonl"
    content = '{"data_source": "hotpotqa", "response": "The answer is x", "ground_truth": "x"}\n'
    responses.write_text(content)
    rows = load_rows(responses)
    with pytest.raises(InputError, match="is also an input"):
        write_results(tmp_path / "." / "responses.jsonl", rows, [{"score": 1.0}])
    assert responses.read_text() == content
    write_results(tmp_path / "scored.jsonl", rows, [{"score": 1.0}])
    assert json.loads((tmp_path / "scored.jsonl").read_text())["reward"] == {"score": 1.0}


def test_judge_eval_and_client_import_neither_verl_nor_torch():
    code = (
        "import sys, qwenlong_verl.driver.eval.runner, qwenlong_verl.worker.rewards.judge, "
        "qwenlong_verl.common.openai_client; bad=[m for m in ('verl','torch') if m in sys.modules]; assert not bad, bad"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_redact_hides_passwords_and_bare_tokens():
    from qwenlong_verl.common.openai_client import redact

    assert redact("http://user:pw@host:8/v1") == "http://user:***@host:8/v1"
    assert redact("https://a:b@c@h/x") == "https://a:***@h/x"  # a password holding an @
    assert redact("judge at http://sk-TOKEN123@judge:8000 failed") == "judge at http://***@judge:8000 failed"
    assert redact("http://plain:8000/v1 and http://h/x") == "http://plain:8000/v1 and http://h/x"
