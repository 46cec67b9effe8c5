"""Where the CPU backend hooks into veRL: read by the plugin (to arm the hooks) and by the backend (to run the
ones whose modules were imported before it finished). A table of names only, so the plugin stays cheap."""

CPU_BACKEND = "qwenlong_verl.worker.cpu_backend"
CPU_HOOKS: tuple[tuple[str, str], ...] = (
    ("verl.plugin.platform.platform_manager", "register_platform"),
    ("verl.workers.rollout.base", "register_rollout"),
    ("verl.workers.rollout.replica", "register_replica"),
    ("verl.workers.engine.fsdp.transformer_impl", "register_engines"),
    ("verl.workers.engine_workers", "patch_workers"),
)
"""(veRL module, function of :mod:`qwenlong_verl.worker.cpu_backend` to run when it is imported): armed only in a
process started with ``VERL_PLATFORM=cpu``, so GPU runs never load the CPU backend."""
