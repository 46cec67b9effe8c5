"""Compose a veRL config exactly as veRL's entry points do: Hydra, our configs on veRL's, the overrides.

Both ``main_ppo`` and ``sft_trainer`` load ``qwenlong_verl/hydra_configs/<base_config>.yaml`` (which composes on
the installed veRL's own config) and apply command-line overrides; this module does the same on a laptop, with
errors that name the offending key.
"""

from __future__ import annotations

import difflib
import functools
import re
from typing import Any

from qwenlong_verl.common.errors import InputError

CONFIG_MODULE = "qwenlong_verl.hydra_configs"
_BARE = re.compile(r"^[A-Za-z0-9_./:@+-]+$")


class PlanError(InputError):
    """A phase whose veRL config cannot be composed or does not validate."""


def config_args(base_config: str, overrides: list[str]) -> list[str]:
    """veRL's command-line arguments for a config: where it is, its name, the overrides (no program name)."""
    return [f"--config-path=pkg://{CONFIG_MODULE}", f"--config-name={base_config}", *overrides]


def hydra_value(value: Any) -> str:
    """Render a YAML value in Hydra's override grammar (``true``, ``null``, ``[a,b]``, quoted strings)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if text and _BARE.match(text) and text.lower() not in {"true", "false", "null"} and not _looks_numeric(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def hydra_overrides(values: dict[str, Any]) -> list[str]:
    """``key=value`` overrides of a mapping of dotted keys, in its order."""
    return [f"{key}={hydra_value(value)}" for key, value in values.items()]


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def compose(base_config: str, overrides: list[str]):
    """Compose veRL's full config exactly as its entry point would; errors name the offending key."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_module(CONFIG_MODULE, version_base=None):
            return hydra_compose(base_config, overrides=overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        raise PlanError(_explain_compose_error(base_config, overrides, exc)) from None


@functools.lru_cache(maxsize=8)
def defaults(base_config: str):
    """The base config with no overrides: what each key's type is when nobody sets it (read-only, cached)."""
    from omegaconf import OmegaConf

    config = compose(base_config, [])
    OmegaConf.set_readonly(config, True)
    return config


def check_value_types(config, base_config: str) -> None:
    """Every number or flag the recipe set has the type of the key's default, and every interpolation resolves:
    ``data.train_batch_size: "eight"`` or ``trainer.nnodes: ${oc.env:HOME}`` fails here, naming the key,
    instead of deep inside veRL's validation as an arithmetic error."""
    from omegaconf import DictConfig
    from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

    def kind_of(value) -> str | None:
        if isinstance(value, bool):
            return "bool"
        if isinstance(value, int):
            return "int"
        if isinstance(value, float):
            return "float"
        return None

    def walk(node, reference, prefix: str) -> None:
        for key in node:
            path = f"{prefix}.{key}" if prefix else str(key)
            try:
                value = node[key]
            except MissingMandatoryValue:  # veRL's own ``???``: only an error where veRL reads it
                continue
            except OmegaConfBaseException as exc:  # an interpolation that cannot resolve
                raise PlanError(
                    f"{path} cannot be resolved ({type(exc).__name__}: {str(exc).splitlines()[0]})"
                ) from None
            try:
                default = reference[key] if key in reference else None
            except OmegaConfBaseException:
                continue
            if isinstance(value, DictConfig) and isinstance(default, DictConfig):
                walk(value, default, path)
                continue
            want, have = kind_of(default), kind_of(value)
            if want is None or value is None or have == want or (want == "float" and have == "int"):
                continue
            words = {"bool": "true or false", "int": "an integer", "float": "a number"}
            raise PlanError(f"{path} must be {words[want]} (veRL's default is {default!r}), got {value!r}")

    walk(config, defaults(base_config), "")


def _explain_compose_error(base_config: str, overrides: list[str], exc: Exception) -> str:
    text = str(exc).strip()
    match = re.search(r"Could not override '([^']+)'", text)
    if not match:
        match = re.search(r"Cannot find primary config '([^']+)'", text)
        if match:
            return f"unknown base_config {match.group(1)!r}: not in {CONFIG_MODULE}"
        return text.splitlines()[0] if text else type(exc).__name__
    key = match.group(1)
    hint = _suggest_key(base_config, key)
    return f"unknown veRL config key {key!r}" + (f" (did you mean {hint!r}?)" if hint else "")


def _suggest_key(base_config: str, key: str) -> str | None:
    """Closest existing key at the same level of the composed base config."""
    from omegaconf import DictConfig, OmegaConf

    try:
        base = compose(base_config, [])
    except PlanError:
        return None
    parent, _, leaf = key.lstrip("+").rpartition(".")
    node = OmegaConf.select(base, parent) if parent else base
    if not isinstance(node, DictConfig):
        return None
    close = difflib.get_close_matches(leaf, [str(k) for k in node.keys()], n=1)
    return f"{parent}.{close[0]}" if close and parent else (close[0] if close else None)


def explain_validation_error(exc: Exception) -> str:
    """One line from what veRL's validation raised (an assertion, an instantiate error with ``full_key``)."""
    text = str(exc).strip()
    full_key = re.search(r"full_key:\s*(\S+)", text)
    lines = [line.strip() for line in text.splitlines() if line.strip() and "full_key" not in line]
    body = re.sub(r"^Error in call to target '[^']+':\s*", "", " ".join(lines))
    message = body if re.match(r"^\w+(Error|Exception)\b", body) else f"{type(exc).__name__}: {body}"
    if full_key:
        message += f" (in {full_key.group(1)})"
    return message


def instantiate_section(node, key: str) -> None:
    """Build one ``_target_`` dataclass section of a composed config, so its own checks run; quiet."""
    import contextlib
    import io
    import warnings

    from verl.utils.config import omega_conf_to_dataclass

    sink = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            return omega_conf_to_dataclass(node)
    except Exception as exc:  # veRL and our dataclasses report a bad value by raising anything
        raise PlanError(f"{key}: {explain_validation_error(exc)}") from None
