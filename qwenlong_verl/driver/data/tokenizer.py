"""Tokenizer loading: ``"builtin"`` (shipped with the package), a local directory, or a hub name.

Token counts decide which phase an example trains in, so ``prepare`` must use the very tokenizer the policy
model uses: nothing defaults to the builtin one silently (``prepare --tokenizer`` is required, a recipe's
``data.tokenizer`` defaults to its ``model_path``), and ``plan`` refuses bins cut with another tokenizer
(:func:`check_prepared`). A hub name is looked up in the local Hugging Face cache first; only when it is not
there and the hub answers a quick connection probe does transformers download it, so an offline machine gets
the error (how to download the tokenizer and pass its folder) at once instead of after a minute of retries.
"""

from __future__ import annotations

import functools
import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from qwenlong_verl.common.errors import InputError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

BUILTIN = "builtin"
"""The name that selects the shipped tokenizer, wherever a tokenizer name or path is accepted."""


class TokenizerLoadError(InputError):
    """The tokenizer could not be loaded; the message says what to pass instead."""


class TokenizerMismatch(InputError):
    """Prepared data whose lengths were counted with another tokenizer than the recipe's."""


def builtin_tokenizer_path() -> str:
    """Directory of the shipped BPE tokenizer, usable wherever veRL wants a tokenizer or model path."""
    return str(Path(__file__).resolve().with_name("builtin_tokenizer"))


def resolve_tokenizer_path(name_or_path: str) -> str:
    """``"builtin"`` -> the shipped directory; anything else unchanged (a local path or a hub name)."""
    return builtin_tokenizer_path() if str(name_or_path).strip().lower() == BUILTIN else str(name_or_path)


def _looks_like_path(source: str) -> bool:
    """A filesystem path rather than a hub id (``org/name``): absolute, relative with ``./`` or ``~``, or nested."""
    return source.startswith(("/", ".", "~")) or source.count("/") > 1 or "\\" in source or Path(source).exists()


def _offline() -> bool:
    return any(
        os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on")
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


HUB_PROBE_TIMEOUT_S = 3.0
"""How long the connection probe waits for the hub (or the HTTPS proxy) before the hub counts as unreachable."""


def _hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the hub endpoint (or the HTTPS proxy, when one is set) opens within ``timeout``:
    without it, transformers retries each file for about a minute before giving up."""
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    proxy = next(
        (os.environ[v] for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy") if os.environ.get(v)), ""
    )
    url = urlsplit(proxy if "://" in proxy else f"http://{proxy}" if proxy else constants.ENDPOINT)
    if not url.hostname:
        return True  # an address we cannot probe: let the hub client try
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def _from_pretrained(source: str):
    """Local directory or hub cache first (no network), then the hub when it is reachable and offline mode is off."""
    from transformers import AutoTokenizer

    if _looks_like_path(source):
        local = Path(source).expanduser()
        if not local.is_dir():
            raise TokenizerLoadError(
                f"tokenizer directory {source!r} does not exist or is not a directory; pass the directory that holds "
                "tokenizer.json and tokenizer_config.json (or --tokenizer builtin)"
            )
        try:
            return AutoTokenizer.from_pretrained(str(local))
        except Exception as exc:  # transformers raises OSError/ValueError/... depending on the file at fault
            raise TokenizerLoadError(
                f"could not load a tokenizer from directory {source!r} ({type(exc).__name__}: {exc}); it must hold "
                "tokenizer.json or the model's tokenizer files"
            ) from exc
    try:
        return AutoTokenizer.from_pretrained(source, local_files_only=True)
    except Exception as cached_exc:
        error: Exception = cached_exc
    if _offline():
        why = "offline mode is on (HF_HUB_OFFLINE)"
    elif not _hub_reachable():
        why = "the model hub cannot be reached from here"
    else:
        try:
            return AutoTokenizer.from_pretrained(source)
        except Exception as hub_exc:
            error = hub_exc
        why = f"the model hub could not provide it ({type(error).__name__})"
    name = source.rsplit("/", 1)[-1]
    raise TokenizerLoadError(
        f"tokenizer {source!r} is neither a local folder nor in the local Hugging Face cache, and {why}. "
        f"Download it where there is network, e.g. `huggingface-cli download {source} --local-dir /path/to/{name}`, "
        f"then pass that folder (--tokenizer /path/to/{name}, or data.tokenizer / model_path in a recipe). "
        "For the shipped test tokenizer use --tokenizer builtin"
    ) from error


@functools.lru_cache(maxsize=8)
def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """A fast HF tokenizer with a chat template and eos/pad set (cached per name within a process: do not mutate).
    ``name_or_path``: a folder, a hub name, or ``"builtin"`` (no default: counting with the wrong one is silent).

    Raises :class:`TokenizerLoadError` with the fix when the name is neither a local tokenizer directory nor
    loadable from the hub or its local cache, and when the tokenizer has no chat template (veRL applies one).
    """
    source = resolve_tokenizer_path(name_or_path)
    tokenizer = _from_pretrained(source)
    if not getattr(tokenizer, "chat_template", None):
        raise TokenizerLoadError(
            f"tokenizer {source!r} has no chat template; veRL formats prompts with apply_chat_template, so use the "
            "tokenizer of a chat/instruct model (or --tokenizer builtin)"
        )
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token  # as veRL's hf_tokenizer does
    return tokenizer


def same_tokenizer(a: str, b: str) -> bool:
    """Whether two tokenizer names mean the same tokenizer: equal once ``builtin`` and local paths are resolved, or
    a local folder named like the last part of a hub name (``/models/Qwen2.5-7B`` and ``Qwen/Qwen2.5-7B``)."""

    def norm(name: str) -> str:
        source = resolve_tokenizer_path(name)
        return str(Path(source).expanduser().resolve()) if _looks_like_path(source) else source

    a, b = norm(a), norm(b)
    return a == b or Path(a).name == Path(b).name


def check_prepared(folder: str | Path, expected: str, source: str) -> None:
    """Refuse ``prepare`` output in ``folder`` whose ``stats.json`` names another tokenizer than ``expected``
    (the recipe's data tokenizer): its length bins would not be the lengths veRL counts. No stats: nothing to
    check (the files are not ``prepare``'s, or not there yet)."""
    stats_file = Path(folder) / "stats.json"
    try:
        used = json.loads(stats_file.read_text(encoding="utf-8")).get("tokenizer")
    except (OSError, ValueError, AttributeError):
        return
    if isinstance(used, str) and used and not same_tokenizer(used, expected):
        raise TokenizerMismatch(
            f"{source}: the phase data in {folder} was cut with tokenizer {used!r} ({stats_file}), but the recipe "
            f"counts prompt lengths with {expected!r}; run prepare again with --tokenizer {expected} (a recipe with "
            f"a data: section: delete {folder} and train prepares it again)"
        )
