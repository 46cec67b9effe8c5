"""Tokenizer loading: ``"builtin"`` (shipped with the package), a local directory, or a hub name.

Token counts decide which phase an example trains in, so ``prepare`` must use the very tokenizer the policy
model uses. Hub names go through transformers' own cache (it honours ``HF_HUB_OFFLINE``); when that fails —
typically no network — the error says how to download the tokenizer and pass its local directory instead.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

from qwenlong_verl.common.errors import InputError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

BUILTIN = "builtin"
"""The name that selects the shipped tokenizer, wherever a tokenizer name or path is accepted."""


class TokenizerLoadError(InputError):
    """The tokenizer could not be loaded; the message says what to pass instead."""


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


def _from_pretrained(source: str):
    """Local directory or hub cache first (no network), then the hub unless offline mode is on."""
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
    if not _offline():
        try:
            return AutoTokenizer.from_pretrained(source)
        except Exception as hub_exc:
            error = hub_exc
    name = source.rsplit("/", 1)[-1]
    why = (
        "offline mode is on (HF_HUB_OFFLINE) and it is not in the local Hugging Face cache"
        if _offline()
        else "the model hub could not provide it (no network?); set HF_HUB_OFFLINE=1 to skip the hub retries"
    )
    raise TokenizerLoadError(
        f"could not load tokenizer {source!r}: it is not a local directory and {why} ({type(error).__name__}). "
        f"Download it where there is network, e.g. `huggingface-cli download {source} --local-dir /path/to/{name}`, "
        f"then pass that directory: --tokenizer /path/to/{name}. For the shipped demo tokenizer use --tokenizer builtin"
    ) from error


@functools.lru_cache(maxsize=8)
def load_tokenizer(name_or_path: str = BUILTIN) -> PreTrainedTokenizerBase:
    """A fast HF tokenizer with a chat template and eos/pad set (cached per name within a process: do not mutate).

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
