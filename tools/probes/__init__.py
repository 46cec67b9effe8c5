"""A catalogue of hostile probes of the ``qwenlong-verl`` CLI, one module per area, and the code that runs and
judges them (:mod:`.core`, :mod:`.runner`). ``python tools/probe.py`` runs them all and writes the report."""

from __future__ import annotations

from probes.core import ERROR, LOST, OK, POOR, WELL, Probe, Result

AREAS = ("inputs", "outputs", "flags", "recipes", "state", "network", "evalfolders")
"""The area modules, in report order; each has ``probes() -> list[Probe]``."""


def catalogue() -> list[Probe]:
    """Every probe, names unique."""
    import importlib

    found: list[Probe] = []
    for area in AREAS:
        found += importlib.import_module(f"probes.{area}").probes()
    names = [p.name for p in found]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"probe names used twice: {', '.join(dup)}")
    return found


__all__ = ["AREAS", "ERROR", "LOST", "OK", "POOR", "WELL", "Probe", "Result", "catalogue"]
