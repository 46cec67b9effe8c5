"""The ``qwenlong.<section>`` settings of a run config, as the dataclass each stage reads."""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


def qwenlong_section(config: Any, name: str, cls: type[T]) -> T:
    """``qwenlong.<name>`` of ``config`` built as ``cls`` (its defaults when the section is absent)."""
    from verl.utils.config import omega_conf_to_dataclass

    node = (config.get("qwenlong") or {}).get(name)
    return omega_conf_to_dataclass(node, cls) if node else cls()
