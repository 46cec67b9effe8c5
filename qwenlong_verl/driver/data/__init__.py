"""Data for the QwenLong recipe: row schema, prompt template, builtin tokenizer, ``prepare`` and ``synth``.

Kept import-free (no transformers, pandas or pyarrow here): import the submodule you need.
"""
