"""The memory agent loop run the way veRL's agent-loop worker runs it, in the test process, on the CPU.

Everything is the real thing: the loop is built from veRL's agent-loop registry with ``hydra.utils.instantiate`` as
``AgentLoopWorker._run_agent_loop`` builds it; it generates through veRL's ``LLMServerClient`` and
``GlobalRequestLoadBalancer`` (Ray actors) from our CPU backend's transformers rollout server (a Ray actor holding a
tiny random Qwen2); its outputs go through veRL's own ``AgentLoopWorkerTQ._agent_loop_postprocess`` into a local
TransferQueue. Rewards are either veRL's reward worker with our manager (:meth:`MemoryRig.score`) or, to store
batches with chosen rewards, set on the final output as veRL allows for loops that score themselves.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

from qwenlong_verl.common.names import MEMORY_AGENT_LOOP
from qwenlong_verl.driver.compose import compose
from qwenlong_verl.driver.data.template import build_messages


def write_model(path: Path, answers: bool = False) -> Path:
    """A tiny random Qwen2 with the builtin tokenizer (``qwenlong-verl tiny-model``)."""
    from qwenlong_verl.driver.data.tiny_model import write_tiny_model

    return write_tiny_model(path, seed=0, answers=answers)


def memory_config(model: Path, *overrides: str, prompt_length: int = 2048, response_length: int = 8):
    """The composed CPU config of a memory-agent run (``qwenlong_cpu`` + the agent loop)."""
    return compose(
        "qwenlong_cpu",
        [
            f"actor_rollout_ref.model.path={model}",
            "data.train_files=[unused]",
            f"data.max_prompt_length={prompt_length}",
            f"data.max_response_length={response_length}",
            f"actor_rollout_ref.rollout.agent.default_agent_loop={MEMORY_AGENT_LOOP}",
            "actor_rollout_ref.rollout.calculate_log_probs=true",
            *overrides,
        ],
    )


def document(words: int, seed: int = 0) -> str:
    """A plain, deterministic document of about ``words`` words (one fact per sentence)."""
    cities = ("Arden", "Belmora", "Cresk", "Dunmoor", "Elvane", "Farrow")
    goods = ("copper", "linen", "salt", "timber", "wool", "glass")
    sentences, i = [], seed
    while sum(len(s.split()) for s in sentences) < words:
        sentences.append(
            f"In year {1900 + i % 97}, the depot of {cities[i % 6]} stored {17 * i % 953} crates of {goods[i % 5]}."
        )
        i += 1
    return " ".join(sentences)


def row(index: int, words: int, answer_type: str = "qa", choices: list[str] | None = None) -> dict[str, Any]:
    """A dataset row as ``prepare`` writes it (our full-context template) and veRL's dataset hands it over."""
    question = f"How many crates did the depot of Cresk store in year {1902 + index}?"
    messages = build_messages(document(words, seed=index), question, answer_type, choices)
    return {
        "data_source": "memory_test",
        "prompt": messages,
        "raw_prompt": messages,
        "reward_model": {"style": "rule", "ground_truth": "42"},
        "extra_info": {"index": index, "task": answer_type, "question": question},
        "index": index,
    }


class MemoryRig:
    """A rollout server, veRL's load balancer and client (Ray actors), and the tokenizer, for one config."""

    def __init__(self, config):
        import ray
        from transformers import AutoTokenizer
        from verl.workers.rollout.llm_server import LLMServerClient
        from verl.workers.rollout.router import GlobalRequestLoadBalancer

        from qwenlong_verl.worker.cpu_backend import HFRolloutServer

        self.config = config
        model = str(config.actor_rollout_ref.model.path)
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.server = (
            ray.remote(HFRolloutServer)
            .options(num_cpus=0)
            .remote(
                config=config.actor_rollout_ref.rollout,
                model_config=types.SimpleNamespace(path=model, local_path=model),
                replica_rank=0,
            )
        )
        address, _ = ray.get(self.server.get_server_address.remote())
        self.balancer = ray.remote(GlobalRequestLoadBalancer).options(num_cpus=0).remote({address: self.server})
        self.client = LLMServerClient(config, load_balancer_handle=self.balancer)

    def loop(self, config=None):
        """A fresh agent loop, built as ``AgentLoopWorker._run_agent_loop`` builds one (per trajectory)."""
        import hydra
        from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap, _agent_loop_registry
        from verl.utils.dataset.rl_dataset import RLHFDataset

        config = config if config is not None else self.config
        return hydra.utils.instantiate(
            config=_agent_loop_registry[MEMORY_AGENT_LOOP],
            trainer_config=DictConfigWrap(config=config),
            server_manager=self.client,
            tokenizer=self.tokenizer,
            processor=None,
            hf_model_type="qwen2",
            dataset_cls=RLHFDataset,
            data_config=DictConfigWrap(config.data),
            tools=ToolListWrap([]),
        )

    async def run(self, data: dict[str, Any], config=None, temperature: float = 1.0):
        """One trajectory of ``data``: the loop's list of outputs."""
        loop = self.loop(config)
        sampling = {"temperature": temperature, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}
        return await loop.run(sampling, **data)

    def _worker(self, reward_workers=None):
        """veRL's TransferQueue agent-loop worker, with the state its postprocess and scoring read (text only, no
        teacher); ``reward_workers``: handles whose ``compute_score.remote(data)`` is awaited."""
        from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopWorkerTQ

        cls = AgentLoopWorkerTQ.__ray_metadata__.modified_class
        worker = object.__new__(cls)
        worker.reward_loop_worker_handles = reward_workers
        worker.distillation_enabled = False
        worker.processor = None
        worker.mm_processor_kwargs = {}
        worker.tokenizer = self.tokenizer
        worker.config = self.config
        return worker

    async def score(self, outputs, data: dict[str, Any], config) -> None:
        """Score a trajectory as veRL's agent loop does (``AgentLoopWorker._compute_score``: all its sequences in one
        batch to a reward worker), with veRL's real ``RewardLoopWorker`` running our reward manager in this process
        (its ``compute_score`` called directly instead of through a Ray actor handle)."""
        from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

        reward_worker = RewardLoopWorker(config, reward_router_address=None)
        handle = types.SimpleNamespace(compute_score=types.SimpleNamespace(remote=reward_worker.compute_score))
        await self._worker([handle])._compute_score(outputs, kwargs={**data, "uid": "u", "session_id": 0})

    async def store(self, outputs, data: dict[str, Any], uid: str, session: int, reward: float) -> None:
        """``outputs`` into TransferQueue through veRL's ``AgentLoopWorkerTQ._agent_loop_postprocess``."""
        worker = self._worker()  # no reward workers: the final output carries its reward
        outputs[-1].reward_score = reward
        outputs[-1].extra_fields["reward_extra_info"] = {"acc": reward, "score": reward}
        kwargs = {**data, "uid": uid, "session_id": session, "global_steps": 1}
        kwargs.pop("prompt", None)
        await worker._agent_loop_postprocess(outputs, False, **kwargs)
