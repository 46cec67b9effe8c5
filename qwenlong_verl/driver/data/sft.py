"""``sft-data``: QA triplets (raw records or prepared RL rows) to the parquet veRL's SFT trainer reads.

veRL 0.9.1's ``sft_trainer`` reads a ``messages`` column with ``MultiTurnSFTDataset``: each row a chat, the loss
on assistant turns. One row here is the RL prompt plus one assistant turn:

* the prompt is **the RL prompt**: a prepared RL row keeps its ``prompt``; a raw record goes through the same
  reader and template as ``prepare`` (:func:`qwenlong_verl.driver.data.schema.parse_record`,
  :func:`qwenlong_verl.driver.data.template.build_messages`), so SFT and RL see identical prompts;
* the assistant turn is ``<think>{trace}</think>\\n\\nTherefore, the answer is {answer}.`` when the record has a
  reasoning trace, else ``Therefore, the answer is {answer}.`` — the phrase the reward extracts answers from,
  with the gold in the form the reward checks (a number, an option letter, a short text).

Bad rows are named by file, row and field; by default they are dropped and counted, with ``strict`` nothing is
written. With a tokenizer, each chat is measured as veRL measures it, rows over ``max_length`` are dropped (veRL's
``truncation: error`` would stop training on them) and the chat template is checked to keep the trace: veRL
renders each turn on its own, and some templates (DeepSeek-R1, Qwen3) drop ``<think>…</think>`` from such a turn.
Several rows may share a question (several sampled traces), so ids are not de-duplicated.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.files import input_problem, refuse_overwriting, write_with
from qwenlong_verl.driver.data.template import ANSWER_PHRASE

logger = logging.getLogger(__name__)

TRACE_KEYS = ("reasoning", "trace", "reasoning_content", "think")
"""Record keys (top level, or in a prepared row's ``extra_info``) holding the reasoning trace, in this order."""

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"

_LOGGED_PROBLEMS = 20


class SftDataError(InputError):
    """Bad arguments, a template that drops the traces, or (with ``strict``) bad rows; the message lists them."""


@dataclass
class SftDataStats:
    """What :func:`convert` wrote and dropped."""

    output: str
    inputs: list[str]
    rows_read: int
    rows_written: int
    with_trace: int
    """Written rows whose assistant turn carries a reasoning trace."""
    tasks: dict[str, int]
    dropped: dict[str, int]
    """Dropped rows per reason (the reasons of ``prepare``, plus ``bad_trace`` and ``too_long``)."""
    problems: list = field(default_factory=list)
    tokenizer: str | None = None
    tokens: dict[str, float] = field(default_factory=dict)
    """min / max / mean / p50 / p90 of whole-chat tokens (empty without a tokenizer)."""

    def to_dict(self) -> dict:
        data = asdict(self)
        data["problems"] = [str(p) for p in self.problems]
        return data


def response_text(answer: str, trace: str | None = None) -> str:
    """The assistant turn: optional ``<think>`` block, then the answer sentence the reward extracts."""
    answer = str(answer).strip()
    sentence = f"{ANSWER_PHRASE} {answer}" + ("" if answer.endswith(".") else ".")
    return f"{THINK_OPEN}{trace}{THINK_CLOSE}\n\n{sentence}" if trace else sentence


def clean_trace(value: Any) -> str | None:
    """The trace text without an enclosing ``<think>`` block; None when absent; ValueError when malformed."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if not isinstance(value, str):
        raise ValueError(f"must be text, got {type(value).__name__}")
    text = value.strip()
    if text.startswith(THINK_OPEN) and text.endswith(THINK_CLOSE):
        text = text[len(THINK_OPEN) : -len(THINK_CLOSE)].strip()
    if THINK_OPEN in text or THINK_CLOSE in text:
        raise ValueError(f"holds a stray {THINK_OPEN} or {THINK_CLOSE} tag; give the reasoning text only")
    return text or None


def find_trace(record: Mapping[str, Any]) -> tuple[str, Any]:
    """``(field, value)`` of the record's reasoning trace, ``("", None)`` when it has none."""
    extra = record.get("extra_info") if isinstance(record.get("extra_info"), Mapping) else {}
    for scope, mapping in (("", record), ("extra_info.", extra)):
        for key in TRACE_KEYS:
            if mapping.get(key) is not None:
                return scope + key, mapping[key]
    return "", None


def sft_row(example, index: int, trace: str | None) -> dict:
    """One SFT row: the RL prompt of ``example`` (a :class:`~qwenlong_verl.driver.data.schema.Example`) and its answer."""
    from qwenlong_verl.driver.data.prepare import messages_of

    messages = [dict(m) for m in messages_of(example)]
    messages.append({"role": "assistant", "content": response_text(example.answer, trace)})
    return {
        "messages": messages,
        "data_source": example.data_source,
        "extra_info": {
            "index": int(index),
            "task": example.task,
            "source_id": example.source_id,
            "has_trace": trace is not None,
            "num_tokens": None,
        },
    }


def arrow_schema():
    """Fixed pyarrow schema of SFT files: ``messages`` (what veRL reads) plus ``data_source`` and ``extra_info``."""
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    extra = pa.struct(
        [
            ("index", pa.int64()),
            ("task", pa.string()),
            ("source_id", pa.string()),
            ("has_trace", pa.bool_()),
            ("num_tokens", pa.int64()),
        ]
    )
    return pa.schema([("messages", pa.list_(message)), ("data_source", pa.string()), ("extra_info", extra)])


def check_template_keeps_trace(tokenizer, apply_chat_template_kwargs: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`SftDataError` when the chat template drops the ``<think>`` part of an assistant turn.

    veRL's ``MultiTurnSFTDataset`` renders each message alone (``apply_chat_template([message])``) and trains on
    the concatenation, so that is what is rendered here.
    """
    probe = "qwenlong-probe reasoning 12 plus 30 is 42"
    message = {"role": "assistant", "content": response_text("42", probe)}
    kwargs = dict(apply_chat_template_kwargs or {})
    rendered = tokenizer.apply_chat_template([message], tokenize=False, add_generation_prompt=False, **kwargs)
    if probe not in rendered:
        raise SftDataError(
            "the tokenizer's chat template drops the <think> reasoning from an assistant turn rendered on its own "
            "(as veRL's SFT dataset renders it; DeepSeek-R1 and Qwen3 templates do this), so training would never "
            "see the traces. Use a chat template that keeps the assistant content verbatim (sft-data --chat-template "
            "FILE, and the same text as model.custom_chat_template in the SFT recipe), or convert without traces "
            "(sft-data --no-traces)"
        )


def count_chat_tokens(rows: Sequence[dict], tokenizer, apply_chat_template_kwargs=None) -> list[int]:
    """Whole-chat token counts, as veRL's SFT dataset checks them (``apply_chat_template(messages)``)."""
    from qwenlong_verl.driver.data.template import count_rendered_tokens

    kwargs = dict(apply_chat_template_kwargs or {})
    texts = [
        tokenizer.apply_chat_template(r["messages"], tokenize=False, add_generation_prompt=False, **kwargs)
        for r in rows
    ]
    return count_rendered_tokens(texts, tokenizer)


def convert(
    inputs: Sequence[str],
    output: str,
    tokenizer: str | None = None,
    max_length: int | None = None,
    strict: bool = False,
    traces: bool = True,
    apply_chat_template_kwargs: Mapping[str, Any] | None = None,
    chat_template: str | None = None,
) -> SftDataStats:
    """Read ``inputs`` (jsonl / json / parquet), write the SFT parquet ``output``; see the module docstring.

    ``traces=False`` writes answer-only turns even where records carry traces. ``max_length`` needs
    ``tokenizer`` (a name for :func:`~qwenlong_verl.driver.data.tokenizer.load_tokenizer`, e.g. ``"builtin"``).
    ``chat_template`` (Jinja text) replaces the tokenizer's template for counting and checking; training must
    then use the same text as ``model.custom_chat_template``.
    """
    from qwenlong_verl.driver.data.prepare import Problem, each_example, max_token_chars
    from qwenlong_verl.driver.data.schema import RowError

    if not inputs:
        raise SftDataError("give at least one input file (--input FILE)")
    problem = input_problem(inputs)
    if problem:
        raise SftDataError(problem)
    if max_length is not None and (
        tokenizer is None or isinstance(max_length, bool) or not isinstance(max_length, int) or max_length <= 0
    ):
        raise SftDataError(
            f"--max-length needs --tokenizer (to count tokens) and a positive whole number, got {max_length!r}"
        )
    if Path(output).suffix.lower() != ".parquet":
        raise SftDataError(f"output {output!r} must be a .parquet file (veRL's SFT trainer reads parquet)")
    try:
        refuse_overwriting(output, inputs)
    except InputError as exc:
        raise SftDataError(str(exc)) from None
    if chat_template is not None and tokenizer is None:
        raise SftDataError("--chat-template needs --tokenizer (its special tokens render the template)")
    if chat_template is not None:
        apply_chat_template_kwargs = {**(apply_chat_template_kwargs or {}), "chat_template": chat_template}
    tok = None
    if tokenizer is not None:
        from qwenlong_verl.driver.data.tokenizer import load_tokenizer

        tok = load_tokenizer(tokenizer)
        if traces:
            check_template_keeps_trace(tok, apply_chat_template_kwargs)
    max_chars = max_length * max_token_chars(tok) if tok is not None and max_length is not None else None

    rows: list[dict] = []
    origins: list[tuple[str, int]] = []
    problems: list = []

    def with_trace(record: Mapping[str, Any], example, path: str, row: int):
        trace_field, raw_trace = find_trace(record) if traces else ("", None)
        try:
            return example, clean_trace(raw_trace)
        except ValueError as exc:
            raise RowError(path, row, trace_field, str(exc), "bad_trace") from None

    for index, path, row, (example, trace) in each_example(inputs, max_chars, problems, with_trace):
        rows.append(sft_row(example, index, trace))
        origins.append((path, row))
    rows_read = len(rows) + len(problems)  # every row read is either a row or a problem so far

    lengths: list[int] = []
    if tok is not None:
        counts = count_chat_tokens(rows, tok, apply_chat_template_kwargs)
        kept = []
        for r, n, (source, row) in zip(rows, counts, origins, strict=True):
            r["extra_info"]["num_tokens"] = n
            if max_length is not None and n > max_length:
                problems.append(
                    Problem(
                        source,
                        row,
                        "messages",
                        "too_long",
                        f"the chat is {n} tokens, longer than --max-length {max_length} (the SFT data.max_length)",
                    )
                )
                continue
            kept.append(r)
            lengths.append(n)
        rows = kept

    order = {str(p): n for n, p in reversed(list(enumerate(inputs)))}
    problems.sort(key=lambda p: (order.get(p.source, 0), p.row))
    for problem in problems[:_LOGGED_PROBLEMS]:
        logger.info("dropped %s", problem)
    if strict and problems:
        listed = "\n".join(f"  {p}" for p in problems[:_LOGGED_PROBLEMS])
        more = f"\n  ... and {len(problems) - _LOGGED_PROBLEMS} more" if len(problems) > _LOGGED_PROBLEMS else ""
        raise SftDataError(f"{len(problems)} bad row(s) (strict mode, nothing written):\n{listed}{more}")
    if not rows:
        raise SftDataError(
            f"no usable rows in {', '.join(map(str, inputs))} ({len(problems)} dropped); nothing written"
        )

    _write(rows, Path(output))
    from qwenlong_verl.driver.data.prepare import token_summary

    return SftDataStats(
        output=str(output),
        inputs=[str(p) for p in inputs],
        rows_read=rows_read,
        rows_written=len(rows),
        with_trace=sum(r["extra_info"]["has_trace"] for r in rows),
        tasks=dict(sorted(Counter(r["extra_info"]["task"] for r in rows).items())),
        dropped=dict(sorted(Counter(p.reason for p in problems).items())),
        problems=problems,
        tokenizer=tokenizer,
        tokens=token_summary(lengths),
    )


def _write(rows: list[dict], path: Path) -> None:
    """Write atomically: a half-written file never replaces a good one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=arrow_schema())
    write_with(path, lambda tmp: pq.write_table(table, tmp))
