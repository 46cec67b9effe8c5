"""A CPU backend for stock veRL 0.9.1: real ``main_ppo`` steps on a laptop or a CI runner, no GPU.

Selected by ``VERL_PLATFORM=cpu`` (``qwenlong-verl train`` sets it for a recipe whose ``trainer.device`` is
``cpu``); the plugin imports this module only then, so GPU runs never see it. It adds three things through
veRL's own registries and changes one line of veRL's behaviour:

* :class:`CPUPlatform` in ``PlatformRegistry`` as ``cpu``: gloo collectives, ``torch.cpu`` as the device module
  (with the CUDA memory API veRL calls answered for host memory), and "GPU" as the Ray resource name, so veRL's
  resource pools schedule onto logical GPUs (``ray_kwargs.ray_init.num_gpus``). Device index ``"cpu"`` makes
  veRL's ``tensor.to(get_device_id())`` calls land on the host.
* The rollout ``hf``: :class:`HFRolloutServer`, a Ray actor that generates with transformers' ``generate`` and
  returns veRL's ``TokenOutput`` with log-probs in veRL's ``logprobs_mode``; :class:`HFReplica` launches one per
  rollout replica (``RolloutReplicaRegistry``); :class:`HFServerAdapter` (``_ROLLOUT_REGISTRY``) lives in the
  actor worker and hands the actor's full weights to its server on every weight sync. vLLM has no CPU build that
  fits veRL 0.9.1's pins, hence our own small server; it serves one request at a time (a smoke test's load).
* veRL's FSDP engines for device ``cpu`` (veRL registers them for cuda/npu only; FSDP2 runs on gloo).
* **The one patch.** ``initialize_global_process_group_ray`` builds the backend string
  ``"cpu:gloo,{device}:{backend}"``, which for device ``cpu`` names cpu twice and torch refuses it. The worker's
  reference is wrapped to pass ``"cpu:gloo"`` when the device is ``cpu``; applied only to veRL 0.9.x, whose
  function this is (:data:`PATCHED_VERSIONS`).

Not covered on CPU (docs/cpu.md): vLLM/SGLang, FSDP1, flash-attn varlen (so ``use_remove_padding=false``), NCCL,
Ulysses SP, offload.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import torch
from verl.plugin.platform import PlatformBase, PlatformRegistry

from qwenlong_verl.common import names
from qwenlong_verl.worker.cpu_hooks import CPU_HOOKS

logger = logging.getLogger(__name__)

PLATFORM = names.CPU_PLATFORM
"""``VERL_PLATFORM`` value that selects this backend."""
ROLLOUT = names.ROLLOUT
"""``actor_rollout_ref.rollout.name`` of the transformers rollout."""
PATCHED_VERSIONS = ("0.9.",)
"""veRL versions whose ``initialize_global_process_group_ray`` builds the backend string this module patches."""
TRACE_ENV = "QWENLONG_CPU_ROLLOUT_TRACE"
"""When set, a jsonl file to which each rollout server appends one line per weight sync (step, digest)."""


# ----------------------------------------------------------------------------- platform


class CPUDeviceModule:
    """``torch.cpu`` plus the ``torch.cuda`` calls veRL makes through ``get_torch_device()``.

    veRL probes memory and streams through the device module; ``torch.cpu`` has streams but no memory API, so
    memory figures here are the host's (``mem_get_info``) or this process's resident size, and cache calls do
    nothing."""

    Stream = torch.cpu.Stream
    Event = torch.cpu.Event
    stream = staticmethod(torch.cpu.stream)
    current_stream = staticmethod(torch.cpu.current_stream)
    synchronize = staticmethod(torch.cpu.synchronize)
    get_rng_state = staticmethod(torch.get_rng_state)
    set_rng_state = staticmethod(torch.set_rng_state)
    manual_seed = staticmethod(torch.manual_seed)
    manual_seed_all = staticmethod(torch.manual_seed)

    @staticmethod
    def is_available() -> bool:
        return True

    @staticmethod
    def device_count() -> int:
        return 1

    @staticmethod
    def current_device() -> str:
        return "cpu"

    @staticmethod
    def set_device(_device: Any) -> None:
        return None

    @staticmethod
    def get_device_name(_device: Any = None) -> str:
        return "cpu"

    @staticmethod
    def empty_cache() -> None:
        return None

    @staticmethod
    def ipc_collect() -> None:
        return None

    @staticmethod
    def set_per_process_memory_fraction(_fraction: float, _device: Any = None) -> None:
        return None

    @staticmethod
    def mem_get_info(_device: Any = None) -> tuple[int, int]:
        page = os.sysconf("SC_PAGE_SIZE")
        return os.sysconf("SC_AVPHYS_PAGES") * page, os.sysconf("SC_PHYS_PAGES") * page

    @staticmethod
    def memory_allocated(_device: Any = None) -> int:
        return _resident_bytes()

    memory_reserved = memory_allocated
    max_memory_allocated = memory_allocated
    max_memory_reserved = memory_allocated

    @staticmethod
    def reset_peak_memory_stats(_device: Any = None) -> None:
        return None


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class CPUPlatform(PlatformBase):
    """veRL's platform interface for the host CPU (gloo, logical Ray "GPU" slots)."""

    device_module = CPUDeviceModule()

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    def is_available(self) -> bool:
        return True

    def current_device(self) -> str:  # veRL passes this to tensor.to(...): "cpu" keeps tensors on the host
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: int | None = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    @contextlib.contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None


# ----------------------------------------------------------------------------- rollout server


def weights_digest(model: torch.nn.Module) -> str:
    """A short digest of a model's parameters (tests and the trace check that every sync changes them)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def sequence_log_probs(
    model: torch.nn.Module, prompt: list[int], response: list[int], temperature: float
) -> list[float]:
    """Log-probs of ``response`` after ``prompt`` from one forward pass, logits divided by ``temperature`` as
    veRL's actor computes them (``temperature`` 1.0 gives raw log-probs)."""
    ids = torch.tensor([prompt + response], dtype=torch.long)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
    logp = torch.log_softmax(logits / max(temperature, 1e-6), dim=-1)
    return logp.gather(-1, torch.tensor(response).unsqueeze(-1)).squeeze(-1).tolist()


class HFRolloutServer:
    """One rollout replica's generator: a transformers causal LM on the CPU, token in, token out.

    Sampling (temperature, top-p, top-k) is transformers' ``generate``; the returned log-probs are recomputed in
    one forward pass over prompt + response so they are exactly what the actor computes on the same weights:
    ``processed_logprobs`` divide the logits by the temperature (veRL's actor does the same), ``raw_logprobs`` do
    not. Requests run one at a time (a lock), the load of a smoke test."""

    def __init__(self, config: Any, model_config: Any, replica_rank: int):
        from transformers import AutoModelForCausalLM
        from verl.utils.config import omega_conf_to_dataclass

        use_host_cores()
        self.config = omega_conf_to_dataclass(config)
        self.model_config = model_config
        self.replica_rank = replica_rank
        path = getattr(model_config, "local_path", None) or model_config.path
        self.model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="sdpa")
        self.model.eval()
        generation = getattr(self.model, "generation_config", None)
        eos = getattr(generation, "eos_token_id", None) or self.model.config.eos_token_id
        self.eos_token_ids = [eos] if isinstance(eos, int) else list(eos or [])
        self.pad_token_id = getattr(generation, "pad_token_id", None)
        if self.pad_token_id is None:
            self.pad_token_id = self.eos_token_ids[0] if self.eos_token_ids else 0
        self.seed = int(getattr(self.config, "seed", 0) or 0)
        self.global_steps: int | None = None
        self._draws: dict[tuple[int, ...], int] = {}
        self._lock = threading.Lock()

    # -- veRL's server interface: identity
    def get_server_address(self) -> tuple[str, int]:
        return f"hf-cpu-{self.replica_rank}", 0

    # -- generation
    async def generate(
        self,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        request_id: str,
        image_data: Any = None,
        video_data: Any = None,
        audio_data: Any = None,
        mm_processor_kwargs: Any = None,
        priority: int = 0,
        **_: Any,
    ):
        if image_data is not None or video_data is not None or audio_data is not None:
            raise ValueError("the hf CPU rollout serves text models only")
        return await asyncio.to_thread(self._generate, list(prompt_ids), dict(sampling_params))

    def _generate(self, prompt_ids: list[int], params: dict[str, Any]):
        from verl.workers.rollout.replica import TokenOutput

        budget = self.config.prompt_length + self.config.response_length - len(prompt_ids)
        max_tokens = params.get("max_tokens", params.get("max_new_tokens", self.config.response_length))
        max_tokens = max(1, min(int(max_tokens), int(self.config.response_length), max(budget, 1)))
        temperature = float(params.get("temperature", 1.0) or 0.0)
        top_k = int(params.get("top_k", -1) or -1)
        kwargs: dict[str, Any] = {"max_new_tokens": max_tokens, "pad_token_id": self.pad_token_id}
        if self.eos_token_ids and not params.get("ignore_eos", False):
            kwargs["eos_token_id"] = self.eos_token_ids
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=float(params.get("top_p", 1.0)))
            kwargs["top_k"] = top_k if top_k > 0 else None
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        rep = float(params.get("repetition_penalty", 1.0) or 1.0)
        if rep != 1.0:
            kwargs["repetition_penalty"] = rep
        ids = torch.tensor([prompt_ids], dtype=torch.long)
        with self._lock, torch.no_grad():
            torch.manual_seed(self._request_seed(prompt_ids))
            out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs)
            response = out[0, len(prompt_ids) :].tolist()
            stop = "completed" if response and response[-1] in self.eos_token_ids else None  # veRL: None = unknown
            log_probs = None
            if params.get("logprobs"):
                scale = temperature if (temperature > 0 and self.config.logprobs_mode == "processed_logprobs") else 1.0
                log_probs = sequence_log_probs(self.model, prompt_ids, response, scale)
        return TokenOutput(
            token_ids=response,
            log_probs=log_probs,
            stop_reason=stop,
            extra_fields={"global_steps": self.global_steps},
        )

    def _request_seed(self, prompt_ids: list[int]) -> int:
        """Sampling seed of a request: the k-th request for the same prompt since the last weight sync gets the
        k-th seed of that prompt (on this replica), so a group's set of responses does not depend on the order its concurrent
        requests arrive in, and a rerun of the same step draws the same responses."""
        key = tuple(prompt_ids)
        k = self._draws.get(key, 0)
        self._draws[key] = k + 1
        digest = hashlib.sha256(repr((self.seed, self.replica_rank, self.global_steps, key, k)).encode()).digest()
        return int.from_bytes(digest[:8], "little") % (2**63)

    # -- weights
    def update_weights(self, state: dict[str, torch.Tensor], global_steps: int | None = None) -> str | None:
        """Load the actor's full weights (HF names); with :data:`TRACE_ENV` set, returns and traces the digest."""
        with self._lock:
            own = self.model.state_dict()
            unknown = sorted(set(state) - set(own))
            if unknown:
                raise ValueError(f"hf rollout: weights the model does not have: {', '.join(unknown[:5])}")
            with torch.no_grad():
                for name, tensor in state.items():
                    own[name].copy_(tensor.to(own[name].dtype))
            self.global_steps = global_steps
            self._draws.clear()
            trace = os.environ.get(TRACE_ENV)
            if not trace:  # hashing every weight is for the trace only, not for each training step
                logger.info("hf rollout %d: weights synced for step %s", self.replica_rank, global_steps)
                return None
            digest = weights_digest(self.model)
        line = json.dumps({"replica": self.replica_rank, "global_steps": global_steps, "digest": digest})
        with open(trace, "a") as handle:
            handle.write(line + "\n")
        logger.info("hf rollout %d: weights synced for step %s (digest %s)", self.replica_rank, global_steps, digest)
        return digest

    def digest(self) -> str:
        return weights_digest(self.model)

    async def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = global_steps

    # -- memory and scheduling controls: weights live in host memory, nothing to release or resume
    async def wake_up(self, tags: list[str] | None = None) -> None:
        return None

    async def sleep(self) -> None:
        return None

    async def clear_kv_cache(self) -> None:
        return None

    async def release_kv_cache(self) -> None:
        return None

    async def resume_kv_cache(self) -> None:
        return None

    async def abort_all_requests(self, reset_prefix_cache: bool = True, reject_request: bool = False) -> dict:
        return {}

    async def resume_generation(self) -> None:
        return None

    async def start_profile(self, **kwargs: Any) -> None:
        return None

    async def stop_profile(self) -> None:
        return None


def server_name(replica_rank: int) -> str:
    return f"qwenlong_hf_rollout_{replica_rank}"


@functools.cache
def _replica_class():
    """:class:`HFReplica`, built on first use: veRL's replica module imports Ray and its worker groups, which must
    not load while ``import verl`` is still running (where the plugin arms these registrations)."""
    import ray
    from verl.workers.rollout.replica import RolloutReplica

    class HFReplica(RolloutReplica):
        """One :class:`HFRolloutServer` per replica, colocated with the replica's actor workers."""

        async def launch_servers(self) -> None:
            server_cls = ray.remote(HFRolloutServer)
            server = server_cls.options(
                name=server_name(self.replica_rank), num_cpus=0, max_concurrency=self.max_concurrency
            ).remote(config=self.config, model_config=self.model_config, replica_rank=self.replica_rank)
            address, _port = await server.get_server_address.remote()
            self.servers = [server]
            self._server_handle = server
            self._server_address = address

    return HFReplica


@functools.cache
def _adapter_class():
    """:class:`HFServerAdapter` (a veRL ``BaseRollout``), built on first use for the same reason."""
    import ray
    from verl.workers.rollout.base import BaseRollout

    class HFServerAdapter(BaseRollout):
        """The rollout handle in each actor worker: weight syncs go to this rank's replica's server."""

        def __init__(self, config, model_config, device_mesh, replica_rank: int = -1):
            super().__init__(config, model_config, device_mesh)
            rank = int(os.environ.get("RANK", 0))
            world = self.config.tensor_model_parallel_size * self.config.data_parallel_size
            world *= self.config.pipeline_model_parallel_size
            self.replica_rank = rank // world if replica_rank == -1 else replica_rank
            self.is_leader_rank = rank % world == 0
            self._server = None

        @property
        def server(self):
            if self._server is None:
                self._server = ray.get_actor(server_name(self.replica_rank))
            return self._server

        async def resume(self, tags: list[str]):
            return None

        async def release(self):
            return None

        async def update_weights(self, weights, wire_format: str = "named_tensors", **kwargs):
            if wire_format != "named_tensors":
                raise ValueError(f"the hf CPU rollout takes full named tensors, not {wire_format!r}")
            if not self.is_leader_rank:  # every rank must walk the generator (it gathers shards); one sends
                for _ in weights:
                    pass
                return
            state = {name: tensor.detach().to("cpu").clone() for name, tensor in weights}
            await self.server.update_weights.remote(state, kwargs.get("global_steps"))

    return HFServerAdapter


def __getattr__(name: str):
    if name == "HFServerAdapter":  # the path veRL's rollout registry imports
        return _adapter_class()
    if name == "HFReplica":
        return _replica_class()
    raise AttributeError(name)


# ----------------------------------------------------------------------------- registration


def use_host_cores(sharers: int = 1) -> int:
    """Give torch this process's share of the host's cores. Ray starts actors without a CPU request with
    ``OMP_NUM_THREADS=1``; on the CPU the actor's update and the rollout's generation are the compute, and they run
    one after the other, so each takes the cores (split between the ranks of one node)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // max(1, sharers))
    torch.set_num_threads(threads)
    return threads


def _patch_process_group(module) -> None:
    """Wrap ``module.initialize_global_process_group_ray`` to use ``cpu:gloo`` on the CPU (see module doc)."""
    import verl

    original = getattr(module, "initialize_global_process_group_ray", None)
    if original is None or getattr(original, "_qwenlong_cpu", False):
        return
    if not str(verl.__version__).startswith(PATCHED_VERSIONS):
        logger.warning(
            "qwenlong-verl CPU backend: veRL %s is not one of %s; the process-group patch is applied untested",
            verl.__version__,
            PATCHED_VERSIONS,
        )

    def initialize_global_process_group_ray(timeout_second=None, backend=None):
        use_host_cores(int(os.environ.get("RAY_LOCAL_WORLD_SIZE") or os.environ.get("WORLD_SIZE") or 1))
        return original(timeout_second=timeout_second, backend=backend or "cpu:gloo")

    initialize_global_process_group_ray._qwenlong_cpu = True
    module.initialize_global_process_group_ray = initialize_global_process_group_ray


def register_platform(_module) -> None:
    if PlatformRegistry.get(PLATFORM) is not CPUPlatform:
        PlatformRegistry.register(PLATFORM)(CPUPlatform)


def register_rollout(module) -> None:
    module._ROLLOUT_REGISTRY[(ROLLOUT, "async")] = f"{__name__}.HFServerAdapter"


def register_replica(module) -> None:
    module.RolloutReplicaRegistry.register(ROLLOUT, _replica_class)


def register_engines(module) -> None:
    from verl.workers.engine.base import EngineRegistry

    for model_type, cls in (
        ("language_model", module.FSDPEngineWithLMHead),
        ("value_model", module.FSDPEngineWithValueHead),
    ):
        for backend in ("fsdp", "fsdp2"):
            registry = EngineRegistry._engines.setdefault(model_type, {}).setdefault(backend, {})
            registry.setdefault("cpu", cls)


def patch_workers(module) -> None:
    _patch_process_group(module)


def _apply_pending_hooks() -> None:
    """Run the registrations whose veRL modules were imported while this module itself was importing.

    A process whose first import is this module (Ray unpickling :class:`HFRolloutServer`) imports veRL from
    here; veRL then loads the plugin, whose hooks find this module half-initialised and leave the work to this
    call at its end. Every registration is idempotent."""
    import sys

    for module, function in CPU_HOOKS:
        if module in sys.modules:
            globals()[function](sys.modules[module])


def trace_lines(path: str | Path) -> list[dict[str, Any]]:
    """The weight-sync trace written under :data:`TRACE_ENV` (tests)."""
    p = Path(path)
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.exists() else []


_apply_pending_hooks()
