"""``qwenlong-verl doctor``: is this install able to run the recipe, and what is missing.

Each fix is a command that works from wherever the user stands: pins come from this install's own metadata
(the ``gpu`` extra), and a reinstall names the checkout or wheel the package was installed from, since
qwenlong-verl itself is not on a package index.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import importlib.util
import json
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


DIST = "qwenlong-verl"

GPU_BUILD_TOOLS = "setuptools wheel packaging ninja psutil"
"""What flash-attn's source build imports besides torch (``--no-build-isolation`` builds in this environment)."""


def pin(dist: str, extra: str = "gpu") -> str:
    """``dist`` as our ``extra`` pins it (``flash-attn==2.8.3``), from this install's metadata; else the bare name."""
    from packaging.requirements import Requirement

    try:
        requires = md.requires(DIST) or []
    except md.PackageNotFoundError:
        return dist
    for line in requires:
        req = Requirement(line)
        if req.name.lower() == dist.lower() and (req.marker is None or req.marker.evaluate({"extra": extra})):
            return f"{req.name}{req.specifier}"
    return dist


def install_command(dist: str) -> str:
    """The command that installs the pinned ``dist`` here (flash-attn: no wheel on PyPI, built against the
    installed torch, so without build isolation)."""
    if dist == "flash-attn":
        return f"pip install {GPU_BUILD_TOOLS} && pip install --no-build-isolation '{pin(dist)}'"
    return f"pip install '{pin(dist)}'"


def reinstall_command() -> str:
    """How to reinstall this very package: from its checkout (editable) or wheel, as ``direct_url.json`` records."""
    try:
        origin = json.loads(md.distribution(DIST).read_text("direct_url.json") or "{}")
    except (md.PackageNotFoundError, ValueError):
        origin = {}
    url = str(origin.get("url", ""))
    where = url.removeprefix("file://") if url.startswith("file://") else url
    if origin.get("dir_info", {}).get("editable"):
        return f"pip install -e '{where}'"
    if where:
        return f"pip install --force-reinstall --no-deps '{where}'"
    return "pip install -e . (in the qwenlong-verl checkout)"


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
            f"reinstall: {reinstall_command()}"
            if not eps
            else ("unset VERL_USE_EXTERNAL_PLUGINS" if not enabled else ""),
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
                "" if present else f"pip install '{dist}' (or reinstall: {reinstall_command()})",
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
        checks.append(Check("GPU (optional)", "torch", False, str(exc), install_command("torch"), False))
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
                "" if version else f"on a GPU machine: {install_command(dist)}",
                False,
            )
        )
    return checks


FINGERPRINT_DISTS = ("verl", "torch", "transformers", "ray", "transfer_queue", "vllm", "flash-attn", "wandb")
FINGERPRINT_ENV = ("VERL_USE_EXTERNAL_PLUGINS", "VERL_PLATFORM", "CUDA_VISIBLE_DEVICES", "PYTHONPATH")


def environment_fingerprint() -> str:
    """What the slow checks depend on, read without importing veRL or torch: the interpreter, the versions of the
    packages involved, this package's and veRL's files (newest change), the environment variables veRL reads,
    the GPU device files."""
    import glob
    import hashlib
    import sys
    from pathlib import Path

    folders = [Path(__file__).resolve().parents[1]]
    verl = importlib.util.find_spec("verl")
    if verl is not None and verl.submodule_search_locations:
        folders += [Path(location) for location in verl.submodule_search_locations]
    newest = [max((f.stat().st_mtime_ns for f in folder.rglob("*.py")), default=0) for folder in folders]
    parts = [
        sys.executable,
        sys.version,
        *map(str, newest),
        *(f"{d}={_version(d)}" for d in FINGERPRINT_DISTS),
        *(f"{k}={os.environ.get(k)}" for k in FINGERPRINT_ENV),
        *sorted(glob.glob("/dev/nvidia*")),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def cache_file():
    from pathlib import Path

    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "qwenlong-verl" / "doctor.json"


def _slow_checks() -> list[Check]:
    """The checks that import veRL and torch (seconds), with veRL's import-time warnings and prints held back:
    ``doctor`` speaks only about what is wrong."""
    import contextlib
    import io
    import logging
    import warnings

    verl_logger = logging.getLogger("verl")
    level = verl_logger.level
    verl_logger.setLevel(logging.ERROR)
    root_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)
    sink = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            return check_verl_hooks() + check_registrations() + check_gpu()
    finally:
        verl_logger.setLevel(level)
        logging.getLogger().setLevel(root_level)


def run_checks(fresh: bool = True) -> list[Check]:
    """Every check. With ``fresh=False`` the slow ones come from the last passing run in this same environment
    (:func:`environment_fingerprint`); any change of it, or any failure, runs them again."""
    checks = check_verl()
    checks += check_dependencies()
    if not checks[0].ok:
        return checks + check_gpu()
    fingerprint = environment_fingerprint()
    cache = cache_file()
    if not fresh:
        try:
            saved = json.loads(cache.read_text())
            if saved.get("fingerprint") == fingerprint:
                return checks + [Check(**c) for c in saved["checks"]]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    slow = _slow_checks()
    if not broken(slow):
        from dataclasses import asdict

        from qwenlong_verl.common.files import atomic_write

        try:
            atomic_write(cache, json.dumps({"fingerprint": fingerprint, "checks": [asdict(c) for c in slow]}))
        except (OSError, ValueError):
            pass  # a read-only home only costs the next run its speed
    return checks + slow


def broken(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.required and not c.ok]
