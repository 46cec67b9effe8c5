"""Token counts with the builtin tokenizer, through the ``tokenizers`` library alone (no transformers import).

Generation measures many small texts; loading transformers would dominate a short ``synth`` run.
"""

from __future__ import annotations

import functools
from pathlib import Path


@functools.lru_cache(maxsize=1)
def _raw_tokenizer():
    from tokenizers import Tokenizer

    from qwenlong_verl.driver.data.tokenizer import builtin_tokenizer_path

    return Tokenizer.from_file(str(Path(builtin_tokenizer_path()) / "tokenizer.json"))


def count_tokens(texts: list[str]) -> list[int]:
    """Tokens of each text, no special tokens."""
    return [len(e.ids) for e in _raw_tokenizer().encode_batch(texts, add_special_tokens=False)]
