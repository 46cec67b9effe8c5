"""The row schema of our RL parquet files, and validation that names the row and the field at fault.

A prepared row is a plain veRL RL row (what ``RLHFDataset`` reads and the reward loop hands to
``compute_score``) with a fixed ``extra_info`` the rest of the project relies on::

    data_source   str            where the example comes from ("qwenlong_synth_numeric", "docmath_qa", ...)
    prompt        list[message]  chat messages ({"role", "content"}), built by data.template.build_messages
    ability       str            the task label (veRL carries it, nothing reads it)
    reward_model  {style: "rule", ground_truth: str}
    extra_info    {index, task, question, input_tokens, source_id, choices, phase, source_meta}

Two kinds of input records are accepted (jsonl or parquet): *raw* records (``question``, ``answer``, one of
``documents`` / ``context`` / ``document``, optional ``task``, ``choices``, ``id``, ``data_source``) and *veRL*
rows that already carry ``prompt`` and ``reward_model`` (DocQA-RL-1.6K and the like). Both become an
:class:`Example`; :func:`make_row` turns an example into the prepared row once its length is known.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.tasks import CHOICE, NUMERIC, TASKS, UnknownTaskError, normalize_task, task_from_data_source
from qwenlong_verl.driver.data.template import join_documents

DEFAULT_DATA_SOURCE = "qwenlong_raw"
"""``data_source`` of raw records that do not name one."""

REWARD_STYLE = "rule"


@dataclass(frozen=True)
class FieldDoc:
    """One documented field of a prepared row (rendered as the schema table in docs/data.md)."""

    name: str
    type: str
    meaning: str


ROW_SCHEMA: tuple[FieldDoc, ...] = (
    FieldDoc("data_source", "str", "origin of the example; the reward falls back to it when extra_info.task is absent"),
    FieldDoc("prompt", "list[{role, content}]", "chat messages from data.template.build_messages (one user turn)"),
    FieldDoc("ability", "str", "the task label (veRL keeps it; nothing routes on it)"),
    FieldDoc("reward_model.style", "str", 'always "rule"'),
    FieldDoc(
        "reward_model.ground_truth",
        "str",
        "gold answer: a number (numeric), a letter (choice), text (qa); several acceptable answers as a JSON list "
        'string such as ["Paris", "City of Paris"]',
    ),
    FieldDoc("extra_info.index", "int", "stable unique id of the example: its 0-based position among all input rows"),
    FieldDoc(
        "extra_info.task", "str", "numeric | choice | qa (qwenlong_verl.common.tasks): reward routing, task balance"
    ),
    FieldDoc("extra_info.question", "str", "the bare question, without document or instructions (the judge needs it)"),
    FieldDoc("extra_info.input_tokens", "int", "tokens of the chat-templated prompt, counted as veRL counts them"),
    FieldDoc("extra_info.source_id", "str", "the input record's own id (or FILE:ROW when it had none)"),
    FieldDoc("extra_info.choices", "list[str]", "the options of a choice question, in letter order; else empty"),
    FieldDoc("extra_info.phase", "int", "1-based phase window the example falls in"),
    FieldDoc("extra_info.source_meta", "str", "JSON of the input row's other extra_info keys ({} when none)"),
)

EXTRA_INFO_KEYS: tuple[str, ...] = tuple(
    f.name.split(".", 1)[1] for f in ROW_SCHEMA if f.name.startswith("extra_info.")
)

DOCUMENT_KEYS = ("documents", "context", "document")
"""Raw-record keys that hold the text, in order of preference; the first one present is used."""

RAW_KEYS = (*DOCUMENT_KEYS, "question", "answer", "task", "choices", "options", "id", "data_source")
"""Raw-record keys with a meaning; any other key is kept in ``extra_info.source_meta``."""

_NUMBER = re.compile(r"^[-+−]?\$?\s*(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?([eE][-+]?\d+)?\s*%?$")
_LETTER = re.compile(r"^\(?([A-Za-z])\)?[.:]?$")
_QUESTION_AFTER_TEXT = re.compile(r"</text>\s*(.+?)\s*(?:\n\s*Format your (?:response|answer)\b.*)?$", re.S)


class RowError(InputError):
    """One bad input row: which file and row (1-based), which field, what is wrong and what to do."""

    def __init__(self, source: str, row: int, field: str, message: str, reason: str = "invalid"):
        self.source, self.row, self.field, self.reason, self.detail = source, row, field, reason, message
        super().__init__(f"{source} row {row}: field {field!r}: {message}")


@dataclass
class Example:
    """One validated input record, before templating and token counting."""

    source: str
    """Input file (for messages)."""
    row: int
    """1-based row in :attr:`source` (the line number for jsonl)."""
    source_id: str
    data_source: str
    task: str
    question: str
    answer: str
    """Gold answer in canonical form (see :func:`canonical_gold`)."""
    choices: list[str] = field(default_factory=list)
    document: str | None = None
    """The text, for raw records (None for veRL rows, whose prompt is kept as is)."""
    prompt: list[dict] | None = None
    """Chat messages of a veRL-format row."""
    ability: str | None = None
    source_meta: dict = field(default_factory=dict)


def _is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _as_list(value: Any) -> list | None:
    """Lists arrive as lists from jsonl and as numpy arrays from parquet."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return list(value)
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        result = value.tolist()
        return result if isinstance(result, list) else None
    return None


def _plain(value: Any) -> Any:
    """numpy scalars/arrays from parquet -> Python values, recursively (for JSON and comparisons)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    as_list = _as_list(value)
    if as_list is not None:
        return [_plain(v) for v in as_list]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return value.item()
    return value


def gold_text(value: Any) -> str:
    """Gold answer as text: numbers without float noise (``12.0`` stays ``12.0``), strings stripped."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return str(value).strip()


def parse_number(text: str) -> float | None:
    """The value of a numeric gold such as ``1,234.5``, ``-3``, ``12%`` or ``$4.5``; None when not a number."""
    text = str(text).strip().replace("−", "-")
    if not text or not _NUMBER.match(text) or not re.search(r"\d", text):
        return None
    try:
        return float(text.replace("$", "").replace(",", "").replace("%", "").replace(" ", ""))
    except ValueError:
        return None


def canonical_gold(task: str, answer: Any, choices: Sequence[str] = ()) -> str:
    """The gold answer as stored in ``reward_model.ground_truth``; raises ValueError when unusable for ``task``.

    numeric: must parse as a number (``1,234.5``, ``-3``, ``12%`` accepted, kept as written).
    choice: an option letter (``B``, ``(b)``, ``B.``) within the offered choices, or the exact text of one choice;
    stored as the upper-case letter.
    qa: any non-empty text.
    """
    text = gold_text(answer)
    if not text:
        raise ValueError("empty gold answer")
    if task == NUMERIC:
        if parse_number(text) is None or not math.isfinite(parse_number(text)):
            raise ValueError(f"{text[:60]!r} is not a number, which the numeric task requires")
        return text
    if task == CHOICE:
        letter = _LETTER.match(text)
        if letter:
            letter_up = letter.group(1).upper()
            if choices and ord(letter_up) - ord("A") >= len(choices):
                raise ValueError(f"letter {letter_up} is beyond the {len(choices)} choices")
            return letter_up
        for position, choice in enumerate(choices):
            if text == str(choice).strip():
                return chr(ord("A") + position)
        raise ValueError(f"{text[:60]!r} is neither an option letter nor the text of one of the choices")
    return text


def canonical_golds(task: str, answer: Any, choices: Sequence[str] = ()) -> str:
    """:func:`canonical_gold` of one answer, or of each of several (a list, or a JSON list string) stored as a JSON
    list string, the form the reward's ``gold_answers`` reads."""
    items = _as_list(answer)
    if items is None and isinstance(answer, str) and answer.strip().startswith("["):
        try:
            parsed = json.loads(answer)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and parsed:
            items = parsed
    if items is None:
        return canonical_gold(task, answer, choices)
    if not items:
        raise ValueError("empty list of gold answers")
    golds = list(dict.fromkeys(canonical_gold(task, item, choices) for item in items))
    return golds[0] if len(golds) == 1 else json.dumps(golds, ensure_ascii=False)


def question_from_prompt(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The bare question of a QwenLong-template prompt: the text after ``</text>``, without the format line."""
    for message in reversed(messages):
        if message.get("role") == "user":
            found = _QUESTION_AFTER_TEXT.search(str(message.get("content") or ""))
            return found.group(1).strip() if found and found.group(1).strip() else None
    return None


def _check_messages(value: Any, where: tuple[str, int], field_name: str = "prompt") -> list[dict]:
    source, row = where
    messages = _as_list(value)
    if not messages:
        raise RowError(source, row, field_name, "must be a non-empty list of chat messages", "bad_prompt")
    checked = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise RowError(source, row, f"{field_name}[{i}]", "must be a {role, content} mapping", "bad_prompt")
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not role.strip():
            raise RowError(source, row, f"{field_name}[{i}].role", "missing or empty", "bad_prompt")
        if not isinstance(content, str) or not content.strip():
            raise RowError(source, row, f"{field_name}[{i}].content", "missing, empty or not text", "bad_prompt")
        checked.append({"role": role, "content": content})
    if not any(m["role"] == "user" for m in checked):
        raise RowError(source, row, field_name, "has no user message", "bad_prompt")
    return checked


def _resolve_task(raw_task: Any, data_source: str, where: tuple[str, int], field_name: str) -> str:
    if _is_blank(raw_task):
        return task_from_data_source(data_source)
    try:
        return normalize_task(str(raw_task))
    except UnknownTaskError as exc:
        raise RowError(*where, field_name, str(exc), "unknown_task") from exc


def _choices(value: Any, where: tuple[str, int], field_name: str) -> list[str]:
    if value is None:
        return []
    items = _as_list(value)
    if items is None:
        raise RowError(*where, field_name, "must be a list of option texts", "bad_choices")
    if any(_is_blank(c) for c in items):
        raise RowError(*where, field_name, "contains an empty option", "bad_choices")
    return [str(c).strip() for c in items]


def parse_record(record: Mapping[str, Any], source: str, row: int) -> Example:
    """Validate one input record (raw or veRL-format) into an :class:`Example`; raises :class:`RowError`."""
    where = (source, row)
    if not isinstance(record, Mapping):
        raise RowError(source, row, "<row>", "must be a JSON object / parquet row", "bad_type")
    if "prompt" in record and "reward_model" in record:
        return _parse_verl_row(record, where)
    return _parse_raw_record(record, where)


def _source_id(value: Any, where: tuple[str, int]) -> str:
    return f"{where[0]}:{where[1]}" if _is_blank(value) else str(_plain(value))


def _parse_raw_record(record: Mapping[str, Any], where: tuple[str, int]) -> Example:
    present = [k for k in DOCUMENT_KEYS if k in record and record[k] is not None]
    if not present:
        raise RowError(*where, "documents", f"missing: give the text as one of {', '.join(DOCUMENT_KEYS)}", "missing")
    key = present[0]
    value = record[key]
    if key == "documents":
        docs = _as_list(value)
        if docs is None:
            raise RowError(*where, key, "must be a list of texts or {title, text} objects", "bad_type")
        if not docs or all(
            _is_blank(d if not isinstance(d, Mapping) else d.get("text", d.get("content"))) for d in docs
        ):
            raise RowError(*where, key, "empty: no document text", "empty")
        document = join_documents([_plain(d) for d in docs])
    else:
        if not isinstance(value, str):
            raise RowError(*where, key, "must be text", "bad_type")
        if _is_blank(value):
            raise RowError(*where, key, "empty: no document text", "empty")
        document = value.strip()
    if "question" not in record or record["question"] is None:
        raise RowError(*where, "question", "missing: add the bare question text", "missing")
    if _is_blank(record["question"]):
        raise RowError(*where, "question", "empty: add the bare question text", "empty")
    if "answer" not in record or record["answer"] is None:
        raise RowError(*where, "answer", "missing: every example needs its gold answer", "missing")
    data_source = str(record.get("data_source") or DEFAULT_DATA_SOURCE)
    choice_key = "choices" if "choices" in record else "options"
    choices = _choices(record.get(choice_key), where, choice_key)
    task = _resolve_task(record.get("task"), data_source, where, "task")
    if _is_blank(record.get("task")) and choices:
        task = CHOICE
    if task == CHOICE and len(choices) < 2:
        raise RowError(*where, "choices", "the choice task needs a list of at least two options", "bad_choices")
    if task != CHOICE and choices:
        raise RowError(
            *where, "choices", f"options given but the task is {task!r}; set task to 'choice'", "bad_choices"
        )
    try:
        answer = canonical_golds(task, _plain(record["answer"]), choices)
    except ValueError as exc:
        raise RowError(*where, "answer", str(exc), "bad_gold") from exc
    return Example(
        source=where[0],
        row=where[1],
        source_id=_source_id(record.get("id"), where),
        data_source=data_source,
        task=task,
        question=str(record["question"]).strip(),
        answer=answer,
        choices=choices,
        document=document,
        source_meta={str(k): _plain(v) for k, v in record.items() if k not in RAW_KEYS},
    )


def _parse_verl_row(record: Mapping[str, Any], where: tuple[str, int]) -> Example:
    messages = _check_messages(record["prompt"], where)
    data_source = record.get("data_source")
    if _is_blank(data_source):
        raise RowError(*where, "data_source", "missing or empty: name the dataset the row comes from", "missing")
    reward_model = _plain(record["reward_model"])
    if not isinstance(reward_model, Mapping):
        raise RowError(*where, "reward_model", "must be a mapping with ground_truth", "bad_type")
    gold = reward_model.get("ground_truth")
    if _is_blank(gold):
        raise RowError(
            *where, "reward_model.ground_truth", "missing or empty: every row needs its gold answer", "missing"
        )
    extra = _plain(record.get("extra_info") or {})
    if not isinstance(extra, Mapping):
        raise RowError(*where, "extra_info", "must be a mapping", "bad_type")
    task = _resolve_task(extra.get("task"), str(data_source), where, "extra_info.task")
    choices = _choices(extra.get("choices") or None, where, "extra_info.choices")
    try:
        answer = canonical_golds(task, gold, choices)
    except ValueError as exc:
        raise RowError(*where, "reward_model.ground_truth", str(exc), "bad_gold") from exc
    question = extra.get("question")
    if _is_blank(question):
        question = question_from_prompt(messages)
    if _is_blank(question):
        raise RowError(
            *where,
            "extra_info.question",
            "missing, and the prompt has no '</text>' question to recover it from; the LLM judge needs the bare "
            "question: add extra_info.question",
            "missing",
        )
    meta = {k: v for k, v in extra.items() if k not in EXTRA_INFO_KEYS and k != "index"}
    if "index" in extra:
        meta["original_index"] = extra["index"]
    return Example(
        source=where[0],
        row=where[1],
        source_id=_source_id(extra.get("source_id", extra.get("id", extra.get("index"))), where),
        data_source=str(data_source),
        task=task,
        question=str(question).strip(),
        answer=answer,
        choices=choices,
        prompt=messages,
        ability=None if _is_blank(record.get("ability")) else str(record["ability"]),
        source_meta=meta,
    )


def make_row(example: Example, messages: list[dict], index: int, input_tokens: int, phase: int) -> dict:
    """The prepared veRL row of ``example`` (see :data:`ROW_SCHEMA`)."""
    return {
        "data_source": example.data_source,
        "prompt": [{"role": m["role"], "content": m["content"]} for m in messages],
        "ability": example.ability or example.task,
        "reward_model": {"style": REWARD_STYLE, "ground_truth": example.answer},
        "extra_info": {
            "index": int(index),
            "task": example.task,
            "question": example.question,
            "input_tokens": int(input_tokens),
            "source_id": example.source_id,
            "choices": list(example.choices),
            "phase": int(phase),
            "source_meta": json.dumps(example.source_meta, sort_keys=True, ensure_ascii=False, default=str),
        },
    }


def arrow_schema():
    """The pyarrow schema of prepared parquet files (fixed, so every phase file has the same columns)."""
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    extra = pa.struct(
        [
            ("index", pa.int64()),
            ("task", pa.string()),
            ("question", pa.string()),
            ("input_tokens", pa.int64()),
            ("source_id", pa.string()),
            ("choices", pa.list_(pa.string())),
            ("phase", pa.int64()),
            ("source_meta", pa.string()),
        ]
    )
    return pa.schema(
        [
            ("data_source", pa.string()),
            ("prompt", pa.list_(message)),
            ("ability", pa.string()),
            ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
            ("extra_info", extra),
        ]
    )


def validate_row(row: Mapping[str, Any], row_number: int, source: str = "<rows>") -> None:
    """Check a prepared row against :data:`ROW_SCHEMA`; raises :class:`RowError` naming row and field.

    For consumers of prepared parquet (curriculum, trainer, eval) that want to fail early on foreign files.
    """
    where = (source, row_number)
    for key in ("data_source", "prompt", "reward_model", "extra_info"):
        if key not in row or row[key] is None:
            raise RowError(*where, key, "missing", "missing")
    _check_messages(row["prompt"], where)
    if _is_blank(row["data_source"]):
        raise RowError(*where, "data_source", "empty", "empty")
    reward_model, extra = _plain(row["reward_model"]), _plain(row["extra_info"])
    if not isinstance(reward_model, Mapping) or _is_blank(reward_model.get("ground_truth")):
        raise RowError(*where, "reward_model.ground_truth", "missing or empty", "missing")
    if not isinstance(reward_model.get("ground_truth"), str):
        raise RowError(*where, "reward_model.ground_truth", "must be text", "bad_type")
    if not isinstance(extra, Mapping):
        raise RowError(*where, "extra_info", "must be a mapping", "bad_type")
    for key in EXTRA_INFO_KEYS:
        if key not in extra:
            raise RowError(*where, f"extra_info.{key}", "missing (re-run `qwenlong-verl prepare`)", "missing")
    for key in ("index", "input_tokens", "phase"):
        value = extra[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "index" else 1):
            raise RowError(
                *where,
                f"extra_info.{key}",
                f"must be a {'non-negative' if key == 'index' else 'positive'} integer, got {value!r}",
                "bad_type",
            )
    if extra["task"] not in TASKS:
        raise RowError(*where, "extra_info.task", f"{extra['task']!r} is not one of {', '.join(TASKS)}", "unknown_task")
    for key in ("question", "source_id"):
        if _is_blank(extra[key]):
            raise RowError(*where, f"extra_info.{key}", "empty", "empty")
    choices = extra["choices"] or []
    try:
        canonical_golds(extra["task"], reward_model["ground_truth"], choices)
    except ValueError as exc:
        raise RowError(*where, "reward_model.ground_truth", str(exc), "bad_gold") from exc
