"""``qwenlong-verl doctor``: is this install able to run the recipe, and what is missing."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import importlib.util
import os
from dataclasses import dataclass

from qwenlong_verl import SUPPORTED_VERL


@dataclass
class Check:
    """One line of the doctor's report."""

    section: str
    item: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def check_verl() -> list[Check]:
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    found = _version("verl")
    if found is None:
        return [Check("veRL", "verl", False, "not installed", f"pip install 'verl{SUPPORTED_VERL}'")]
    ok = Version(found) in SpecifierSet(SUPPORTED_VERL)
    fix = "" if ok else f"pip install 'verl{SUPPORTED_VERL}'"
    checks = [Check("veRL", "verl", ok, f"{found} (supported {SUPPORTED_VERL})", fix)]
    policy = os.getenv("VERL_USE_EXTERNAL_PLUGINS", "auto").strip().lower()
    eps = [ep for ep in md.entry_points(group="verl.plugins") if ep.value.startswith("qwenlong_verl")]
    enabled = policy == "auto" or any(ep.name in {p.strip() for p in policy.split(",")} for ep in eps)
    checks.append(
        Check(
            "veRL",
            "plugin entry point",
            bool(eps) and enabled,
            (f"{eps[0].name} = {eps[0].value}" if eps else "not found")
            + ("" if enabled else f"; disabled by VERL_USE_EXTERNAL_PLUGINS={policy}"),
            "reinstall: pip install -e ." if not eps else ("unset VERL_USE_EXTERNAL_PLUGINS" if not enabled else ""),
        )
    )
    return checks


def check_dependencies() -> list[Check]:
    needed = {
        "TransferQueue": "transfer_queue",
        "cachetools": "cachetools",
        "fastapi": "fastapi",
        "uvicorn": "uvicorn",
        "math-verify": "math_verify",
        "hydra-core": "hydra",
        "aiohttp": "aiohttp",
        "wrapt": "wrapt",
    }
    checks = []
    for dist, module in needed.items():
        present = importlib.util.find_spec(module) is not None
        checks.append(
            Check(
                "dependencies",
                dist,
                present,
                _version(dist) or ("present" if present else "missing"),
                "" if present else f"pip install '{dist}' (or reinstall qwenlong-verl)",
            )
        )
    return checks


def check_registrations() -> list[Check]:
    """Import each veRL registry (which fires our hooks) and look our names up in it."""
    import verl  # noqa: F401  (loads the plugin the way veRL does)

    from qwenlong_verl.worker import plugin

    checks = []
    for reg in plugin.REGISTRATIONS:
        try:
            importlib.import_module(reg.trigger_module)
            registry = getattr(importlib.import_module(reg.registry_module), reg.registry_attr)
        except Exception as exc:
            checks.append(Check("registrations", reg.kind, False, f"veRL module failed: {exc}", "reinstall veRL"))
            continue
        missing = [n for n in reg.names if n not in registry]
        error = plugin.FAILURES.get(reg.provider, "")
        checks.append(
            Check(
                "registrations",
                f"{reg.kind} ({reg.config_key})",
                not missing,
                ", ".join(reg.names) if not missing else f"missing {', '.join(missing)} {error}".strip(),
                "" if not missing else "run `python -c 'import " + reg.provider + "'` to see the error",
            )
        )
    return checks


def check_verl_hooks() -> list[Check]:
    """Every private veRL method or attribute the trainer mode and the CPU backend rely on, as we use it:
    one row when all hold, else one row per broken hook, named."""
    from qwenlong_verl.worker.verl_contract import HOOKS, hook_problem

    broken_hooks = [(hook, problem) for hook in HOOKS if (problem := hook_problem(hook))]
    if not broken_hooks:
        detail = f"all present with the expected signatures (checked on verl{SUPPORTED_VERL})"
        return [Check("veRL", f"{len(HOOKS)} private hooks (trainer mode, CPU backend)", True, detail)]
    fix = f"pip install 'verl{SUPPORTED_VERL}'"
    return [Check("veRL", f"hook {hook.attribute}", False, problem, fix) for hook, problem in broken_hooks]


def check_gpu() -> list[Check]:
    checks = []
    try:
        import torch

        cuda = torch.cuda.is_available()
        count = torch.cuda.device_count() if cuda else 0
        detail = f"torch {torch.__version__}, CUDA {'available' if cuda else 'not available'}, {count} GPU(s)"
        checks.append(Check("GPU (optional)", "torch CUDA", cuda, detail, "" if cuda else "CPU only", False))
    except Exception as exc:
        checks.append(Check("GPU (optional)", "torch", False, str(exc), "pip install torch", False))
    visible = os.getenv("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        checks.append(Check("GPU (optional)", "CUDA_VISIBLE_DEVICES", bool(visible), visible or "(empty)", "", False))
    for dist in ("vllm", "flash-attn"):
        version = _version(dist)
        checks.append(
            Check(
                "GPU (optional)",
                dist,
                version is not None,
                version or "not installed",
                "" if version else "pip install 'qwenlong-verl[gpu]' on a GPU machine",
                False,
            )
        )
    return checks


def run_checks() -> list[Check]:
    checks = check_verl()
    checks += check_dependencies()
    if checks[0].ok:
        checks += check_verl_hooks()
        checks += check_registrations()
    checks += check_gpu()
    return checks


def broken(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.required and not c.ok]
