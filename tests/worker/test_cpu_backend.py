"""The CPU backend's pieces against the real veRL objects (the whole loop runs in test_cpu_e2e.py)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qwenlong_verl.driver.data.tiny_model import write_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0, answers=True)


def _probe(env_platform: str | None) -> dict:
    code = """
import json, sys
import verl
from verl.plugin.platform import get_platform
from verl.workers.rollout import base, replica
from verl.workers.engine.base import EngineRegistry
import verl.workers.engine.fsdp.transformer_impl
import verl.workers.engine_workers as workers
out = {
    "platform": get_platform().device_name,
    "backend_loaded": "qwenlong_verl.worker.cpu_backend" in sys.modules,
    "rollout": ("hf", "async") in base._ROLLOUT_REGISTRY,
    "replica": "hf" in replica.RolloutReplicaRegistry._registry,
    "engine": "cpu" in EngineRegistry._engines["language_model"]["fsdp2"],
    "patched": getattr(workers.initialize_global_process_group_ray, "_qwenlong_cpu", False),
}
if out["rollout"]:
    out["adapter"] = base.get_rollout_class("hf").__name__
    out["replica_cls"] = replica.RolloutReplicaRegistry.get("hf").__name__
print(json.dumps(out))
"""
    env = {k: v for k, v in os.environ.items() if k != "VERL_PLATFORM"}
    if env_platform:
        env["VERL_PLATFORM"] = env_platform
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_cpu_backend_registers_through_verl_registries_only_when_asked():
    on = _probe("cpu")
    assert on == {
        "platform": "cpu",
        "backend_loaded": True,
        "rollout": True,
        "replica": True,
        "engine": True,
        "patched": True,
        "adapter": "HFServerAdapter",
        "replica_cls": "HFReplica",
    }
    off = _probe(None)
    assert off["backend_loaded"] is False
    assert not (off["rollout"] or off["replica"] or off["engine"] or off["patched"])


def _server(model: Path, **rollout):
    from verl.workers.config import RolloutConfig

    from qwenlong_verl.worker.cpu_backend import HFRolloutServer

    config = RolloutConfig(name="hf", prompt_length=64, response_length=8, **rollout)

    class ModelConfig:
        path = local_path = str(model)

    return HFRolloutServer(config=config, model_config=ModelConfig(), replica_rank=0)


PROMPT = [1, 872, 198, 3096, 430, 460, 2, 198, 1, 397, 198]
SAMPLING = {"temperature": 0.7, "top_p": 1.0, "top_k": -1, "logprobs": True}


def test_rollout_log_probs_are_the_actors_on_the_same_tokens(tiny):
    from transformers import AutoModelForCausalLM

    server = _server(tiny)
    out = asyncio.run(server.generate(prompt_ids=PROMPT, sampling_params=dict(SAMPLING), request_id="r0"))
    assert 1 <= len(out.token_ids) <= 8 and len(out.log_probs) == len(out.token_ids)
    actor = AutoModelForCausalLM.from_pretrained(tiny, torch_dtype=torch.float32)
    ids = torch.tensor([PROMPT + out.token_ids])
    with torch.no_grad():
        logits = actor(input_ids=ids).logits[0, len(PROMPT) - 1 : -1] / 0.7  # veRL's actor: logits / temperature
    expected = torch.log_softmax(logits, -1).gather(-1, torch.tensor(out.token_ids)[:, None]).squeeze(-1)
    assert torch.allclose(torch.tensor(out.log_probs), expected, atol=1e-3)
    assert out.stop_reason in ("completed", None)


def test_raw_logprobs_mode_leaves_out_the_temperature(tiny):
    processed = _server(tiny)
    raw = _server(tiny, logprobs_mode="raw_logprobs")
    a = asyncio.run(processed.generate(prompt_ids=PROMPT, sampling_params=dict(SAMPLING), request_id="a"))
    b = asyncio.run(raw.generate(prompt_ids=PROMPT, sampling_params=dict(SAMPLING), request_id="b"))
    assert a.token_ids == b.token_ids  # same seed for the same (step, prompt, k)
    assert not torch.allclose(torch.tensor(a.log_probs), torch.tensor(b.log_probs))


def _draw(server, prompt: list[int]) -> list[int]:
    return asyncio.run(server.generate(prompt_ids=prompt, sampling_params=dict(SAMPLING), request_id="r")).token_ids


def test_group_draws_do_not_depend_on_arrival_order(tiny):
    first, second = _server(tiny), _server(tiny)
    other = [5, 6, 7, 8, 9]
    a = [_draw(first, p) for p in (PROMPT, other, PROMPT, PROMPT)]
    b = [_draw(second, p) for p in (other, PROMPT, PROMPT, PROMPT)]
    assert sorted(map(tuple, [a[0], a[2], a[3]])) == sorted(map(tuple, b[1:]))
    assert a[1] == b[0]


def test_weight_sync_changes_the_model_and_rejects_unknown_names(tiny, tmp_path, monkeypatch):
    from qwenlong_verl.worker.cpu_backend import TRACE_ENV, trace_lines

    monkeypatch.setenv(TRACE_ENV, str(tmp_path / "trace.jsonl"))
    server = _server(tiny)
    before = server.digest()
    state = {k: v + 0.01 for k, v in server.model.state_dict().items()}
    after = server.update_weights(state, global_steps=1)
    assert after != before and after == server.digest()
    assert torch.equal(server.model.state_dict()["lm_head.weight"], state["lm_head.weight"])
    again = server.update_weights({k: v * 0.5 for k, v in state.items()}, global_steps=2)
    assert again != after
    assert [line["global_steps"] for line in trace_lines(tmp_path / "trace.jsonl")] == [1, 2]
    with pytest.raises(ValueError, match="weights the model does not have: nope"):
        server.update_weights({"nope": torch.zeros(1)})


def test_tiny_model_is_byte_identical_per_seed(tmp_path):
    one = write_tiny_model(tmp_path / "a", seed=3)
    two = write_tiny_model(tmp_path / "b", seed=3)
    other = write_tiny_model(tmp_path / "c", seed=4)
    files = sorted(p.name for p in one.iterdir())
    assert files == sorted(p.name for p in two.iterdir())
    assert all((one / f).read_bytes() == (two / f).read_bytes() for f in files)
    assert (one / "model.safetensors").read_bytes() != (other / "model.safetensors").read_bytes()


def test_tiny_model_cli_writes_a_loadable_model(tmp_path, cli_main):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    proc = cli_main("tiny-model", "--out", str(tmp_path / "m"), "--answers", "--seed", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "m")
    assert model.config.vocab_size == len(tokenizer) and model.config.num_hidden_layers == 2
