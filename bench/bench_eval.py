"""Eval harness overheads, each against a baseline measured in the same run.

1. Generation client vs bare aiohttp: the same requests at the same concurrency against one local server
   (a separate process with a fixed 20 ms latency). Goal: our client (retry logic, request ids, row
   bookkeeping, the append-only writer) takes <= 1.3x the bare loop.
2. Resume scan vs plain ``json.loads`` of every line: finding the pending samples of a 50k-row
   generations.jsonl (fastest of 5 interleaved runs each). Goal: <= 1.5x.
3. Prompt fitting vs one tokenizer pass: middle-truncating 40 documents of ~20k tokens to 8k (render, count,
   encode, decode, recount). Goal: <= 4x the cost of tokenizing the documents once (fastest of 3 each).
"""

from __future__ import annotations

import asyncio
import gc
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LATENCY_S = 0.02
REQUESTS = 600
CONCURRENCY = 32


def _serve(port_queue) -> None:
    from aiohttp import web

    async def models(request):
        return web.json_response({"data": [{"id": "policy"}]})

    async def chat(request):
        await request.json()
        await asyncio.sleep(LATENCY_S)
        return web.json_response(
            {
                "choices": [{"message": {"content": "Therefore, the answer is 42."}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 6},
            }
        )

    async def main():
        app = web.Application()
        app.router.add_get("/v1/models", models)
        app.router.add_post("/v1/chat/completions", chat)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_queue.put(site._server.sockets[0].getsockname()[1])
        await asyncio.sleep(300)  # bounded; the bench terminates it long before

    asyncio.run(main())


MESSAGES = [{"role": "user", "content": "Please read the following text. " * 50}]


async def bare(url: str) -> None:
    import aiohttp

    sem = asyncio.Semaphore(CONCURRENCY)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def one(i):
            async with sem:
                async with session.post(f"{url}/chat/completions", json={"model": "policy", "messages": MESSAGES}) as r:
                    json.loads(await r.text())["choices"][0]["message"]["content"]

        await asyncio.gather(*(one(i) for i in range(REQUESTS)))


async def ours(url: str, out: Path) -> None:
    from qwenlong_verl.driver.eval.generate import GenerationConfig, SampleRequest, generate
    from qwenlong_verl.driver.eval.store import JsonlAppender

    cfg = GenerationConfig(base_url=url, model="policy", concurrency=CONCURRENCY)
    requests = [SampleRequest(f"bench/{i}", 0, MESSAGES) for i in range(REQUESTS)]
    with JsonlAppender(out) as sink:
        stats = await generate(requests, cfg, sink.append)
    assert stats.ok == REQUESTS, stats


def bench_client(tmp: Path) -> bool:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    server = ctx.Process(target=_serve, args=(queue,), daemon=True)
    server.start()
    try:
        url = f"http://127.0.0.1:{queue.get(timeout=30)}/v1"
        asyncio.run(bare(url))  # warm-up
        base, mine = [], []
        for i in range(3):
            start = time.perf_counter()
            asyncio.run(bare(url))
            base.append(time.perf_counter() - start)
            start = time.perf_counter()
            asyncio.run(ours(url, tmp / f"gen{i}.jsonl"))
            mine.append(time.perf_counter() - start)
    finally:
        server.terminate()
        server.join(5)
    b, m = statistics.median(base), statistics.median(mine)
    ideal = REQUESTS / CONCURRENCY * LATENCY_S
    print(f"client: {REQUESTS} requests, concurrency {CONCURRENCY}, server latency {LATENCY_S * 1000:.0f} ms")
    print(f"  ideal (latency bound)  : {ideal:6.2f} s")
    print(f"  bare aiohttp (baseline): {b:6.2f} s  ({REQUESTS / b:6.0f} req/s)")
    print(f"  qwenlong-verl client   : {m:6.2f} s  ({REQUESTS / m:6.0f} req/s)  ratio {m / b:.2f}x (goal <= 1.3x)")
    return m / b <= 1.3


def bench_resume(tmp: Path) -> bool:
    from qwenlong_verl.driver.eval.generate import pending_from_file

    path = tmp / "generations.jsonl"
    items, n = 6250, 8
    response = "Let me think. " * 150 + "Therefore, the answer is 42."
    with path.open("w") as f:
        for i in range(items):
            for k in range(n):
                row = {"id": f"b/{i}", "k": k, "status": "ok" if (i + k) % 50 else "error", "response": response}
                f.write(json.dumps(row) + "\n")
    prompts = {f"b/{i}": MESSAGES for i in range(items)}
    base, mine = [], []
    for _ in range(5):  # interleaved; the minimum is the least disturbed by other load on the machine
        gc.collect()  # each side starts from the same heap (a live 50k-row list slows the other's GC passes)
        start = time.perf_counter()
        with path.open() as f:
            rows = [json.loads(line) for line in f]
        base.append(time.perf_counter() - start)
        assert len(rows) == items * n
        del rows
        gc.collect()
        start = time.perf_counter()
        todo = pending_from_file(prompts, n, path)
        mine.append(time.perf_counter() - start)
        assert len(todo) == items * n // 50
        del todo
    b, m = min(base), min(mine)
    size = path.stat().st_size / 2**20
    print(f"resume scan: {items * n} rows ({size:.0f} MiB), {items * n // 50} pending")
    print(f"  json.loads per line (baseline): {b:6.2f} s")
    print(f"  pending samples               : {m:6.2f} s  ratio {m / b:.2f}x (goal <= 1.5x)")
    return m / b <= 1.5


def bench_truncation() -> bool:
    import random

    from qwenlong_verl.driver.data.tokenizer import load_tokenizer
    from qwenlong_verl.driver.eval.benchmarks import EvalItem
    from qwenlong_verl.driver.eval.truncate import fit_prompts

    tok = load_tokenizer("builtin")
    rng = random.Random(0)
    words = "the report states revenue grew while costs fell in the third quarter of the year".split()
    docs = [" ".join(rng.choice(words) for _ in range(20000)) for _ in range(40)]
    items = [EvalItem(f"b/{i}", "b", d, "What grew?", "revenue", "qa", "b") for i, d in enumerate(docs)]
    bases, mines = [], []
    for _ in range(3):  # interleaved; the minimum is the least disturbed by other load on the machine
        start = time.perf_counter()
        lengths = [len(ids) for ids in tok(docs, add_special_tokens=False)["input_ids"]]
        bases.append(time.perf_counter() - start)
        start = time.perf_counter()
        fitted = fit_prompts(items, tok, 8192)
        mines.append(time.perf_counter() - start)
    base, mine = min(bases), min(mines)
    assert all(f.truncated and f.input_tokens <= 8192 for f in fitted)
    print(f"prompt fitting: {len(docs)} documents of ~{statistics.fmean(lengths):,.0f} tokens -> 8,192")
    print(f"  one tokenizer pass (baseline): {base:6.2f} s")
    print(f"  fit_prompts                  : {mine:6.2f} s  ratio {mine / base:.2f}x (goal <= 4x)")
    return mine / base <= 4


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        results = [bench_client(Path(tmp)), bench_resume(Path(tmp)), bench_truncation()]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
