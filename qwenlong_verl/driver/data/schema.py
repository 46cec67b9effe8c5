"""The row schema of our RL parquet files, and validation that names the row and the field at fault.

A prepared row is a plain veRL RL row (what ``RLHFDataset`` reads and the reward loop hands to
``compute_score``) with a fixed ``extra_info`` the rest of the project relies on::

    data_source   str            where the example comes from ("qwenlong_synth_numeric", "docmath_qa", ...)
    prompt        list[message]  chat messages ({"role", "content"}), built by data.template.build_messages
    ability       str            the task label (veRL carries it, nothing reads it)
    reward_model  {style: "rule", ground_truth: str}
    extra_info    {index, task, answer_type, question, input_tokens, source_id, choices, phase, source_meta}

``task`` is the task label (the group of balancing, task-norm std, ledger, metrics) and ``answer_type`` the
answer type (verifier and answer format); :mod:`qwenlong_verl.common.tasks` keeps both vocabularies.

Two kinds of input records are accepted (jsonl or parquet): *raw* records (``question``, ``answer``, one of
``documents`` / ``context`` / ``document``, optional ``task``, ``answer_type``, ``choices``, ``id``,
``data_source``) and *veRL* rows that already carry ``prompt`` and ``reward_model`` (DocQA-RL-1.6K and the
like). Both become an :class:`Example`; :func:`make_row` turns an example into the prepared row once its length
is known.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.tasks import (
    CHOICE,
    NUMERIC,
    TaskFieldError,
    UnknownAnswerTypeError,
    answer_type_from_data_source,
    resolve_task,
)
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
    FieldDoc(
        "data_source",
        "str",
        "origin of the example; the answer type falls back to it when the row names none (QwenLong routing)",
    ),
    FieldDoc("prompt", "list[{role, content}]", "chat messages from data.template.build_messages (one user turn)"),
    FieldDoc("ability", "str", "the task label, or the input's own ability (veRL keeps it; nothing routes on it)"),
    FieldDoc("reward_model.style", "str", 'always "rule"'),
    FieldDoc(
        "reward_model.ground_truth",
        "str",
        "gold answer: a number (numeric), a letter (choice), text (qa); several acceptable answers as a JSON list "
        'string such as ["Paris", "City of Paris"]',
    ),
    FieldDoc("extra_info.index", "int", "stable unique id of the example: its 0-based position among all input rows"),
    FieldDoc(
        "extra_info.task",
        "str",
        "task label such as multi_hop, numerical, temporal (a-z 0-9 _, at most 32 characters): the group of task "
        "balance, task-norm std, ledger and per-task metrics; the answer type when the input gave none",
    ),
    FieldDoc(
        "extra_info.answer_type",
        "str",
        "numeric | choice | qa (qwenlong_verl.common.tasks): the rule verifier and the prompt's answer format",
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

OPTIONAL_EXTRA_INFO_KEYS = ("answer_type",)
"""Keys :func:`validate_row` lets a prepared row lack (rows prepared before they existed)."""

DOCUMENT_KEYS = ("documents", "context", "document")
"""Raw-record keys that hold the text, in order of preference; the first one present is used."""

RAW_KEYS = (*DOCUMENT_KEYS, "question", "answer", "task", "answer_type", "choices", "options", "id", "data_source")
"""Raw-record keys with a meaning; any other key is kept in ``extra_info.source_meta``."""

_NUMBER = re.compile(r"^[-+−]?\$?\s*(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?([eE][-+]?\d+)?\s*%?$")
_LETTER = re.compile(r"^\(?([A-Za-z])\)?[.:]?$")
_QUESTION_AFTER_TEXT = re.compile(r"</text>\s*(.+?)\s*(?:\n\s*Format your (?:response|answer)\b.*)?$", re.S)


class RowError(InputError):
    """One bad input row: which file and row (1-based), which field, what is wrong and what to do."""

    def __init__(self, source: str, row: int, field: str, message: str, reason: str = "invalid"):
        self.source, self.row, self.field, self.reason, self.detail = source, row, field, reason, message
        super().__init__(f"{source} row {row}: field {field!r}: {message}")

    def at(self, where: str) -> str:
        """The message as ``WHERE: field 'F': what`` for readers that name rows their own way (``file:line``)."""
        named = "" if self.field.startswith("<") else f"field {self.field!r}: "
        return f"{where}: {named}{self.detail}"


# ----------------------------------------------------------------------------- bounds


def check_count(
    flag: str, value: Any, minimum: int = 1, maximum: int | None = None, error: type[InputError] = InputError
) -> int:
    """``value`` if it is a whole number in ``[minimum, maximum]``; else ``error`` naming ``flag`` and the limit."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{flag} must be a whole number, got {value!r}")
    if value < minimum:
        raise error(f"{flag} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise error(f"{flag} must be at most {maximum:,}, got {value:,}")
    return value


# ----------------------------------------------------------------------------- reading text files

MAX_LINE_BYTES = 256 * 2**20
"""The longest jsonl line read (256 MiB): a longer one is one bad row, skipped without holding it in memory."""

_WIDE_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32-LE"),
    (b"\x00\x00\xfe\xff", "UTF-32-BE"),
    (b"\xff\xfe", "UTF-16-LE"),
    (b"\xfe\xff", "UTF-16-BE"),
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_SNIFF_BYTES = 4096


class NotUtf8Error(InputError):
    """A whole file that is not UTF-8 text (UTF-16, UTF-32, binary): one error naming the encoding, not one per
    line."""


def wide_encoding(head: bytes) -> str | None:
    """The UTF-16/32 encoding of a file starting with ``head``, by its byte-order mark or, without one, by the NUL
    bytes those encodings put between ASCII characters; None for anything else."""
    for bom, name in _WIDE_BOMS:
        if head.startswith(bom):
            return name
    sample = head[:_SNIFF_BYTES]
    if len(sample) >= 4 and sample.count(0) * 4 >= len(sample):
        return "UTF-16 or UTF-32 (NUL bytes between the characters)"
    return None


def _refuse_wide(head: bytes, source: str, error: type[InputError]) -> None:
    encoding = wide_encoding(head)
    if encoding is not None:
        raise error(
            f"{source}: the file is {encoding}, not UTF-8; re-save it as UTF-8 "
            f"(e.g. iconv -f {encoding.split()[0]} -t UTF-8 {source} > fixed{Path(source).suffix})"
        )


def text_problem(value: Any, path: str = "") -> tuple[str, str] | None:
    """``(field, message)`` for the first string (key or value) in ``value`` holding a lone UTF-16 surrogate,
    which JSON's ``\\ud800`` escapes can produce but no tokenizer or parquet file accepts; None when all is text."""
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        if found:
            return path or "<row>", (
                f"holds a lone surrogate \\u{ord(found.group()):04x} at character {found.start() + 1} (a broken "
                "\\u escape), which is not text; fix the escape or remove the character"
            )
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            problem = text_problem(key, name) or text_problem(item, name)
            if problem:
                return problem
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            problem = text_problem(item, f"{path}[{i}]")
            if problem:
                return problem
    return None


BLANK = object()
"""What :func:`_parse_line` returns for a blank line (skipped, still counted as a line)."""


def _decode_line(line: bytes, source: str, number: int) -> str | RowError:
    try:
        return line.decode("utf-8-sig")  # a byte-order mark (Notepad writes one) is not part of the row
    except UnicodeDecodeError as exc:
        return RowError(
            source,
            number,
            "<line>",
            f"not UTF-8: byte 0x{line[exc.start]:02x} at column {exc.start + 1} cannot be decoded; re-save the "
            "file as UTF-8 (e.g. iconv -f latin1 -t UTF-8)",
            "not_utf8",
        )


def _parse_line(text: str, source: str, number: int) -> Any:
    """One decoded jsonl line's JSON value, :data:`BLANK`, or the :class:`RowError` saying why it is not one."""
    if not text or text.isspace():
        return BLANK
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return RowError(source, number, "<line>", f"not valid JSON ({exc.msg}, column {exc.colno})", "unreadable")
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number, nesting deeper than Python's stack
        return RowError(source, number, "<line>", f"not usable JSON ({str(exc)[:80]})", "unreadable")
    if "\\u" in text:  # lone surrogates only come from escapes
        problem = text_problem(value)
        if problem:
            return RowError(source, number, problem[0], problem[1], "not_text")
    return value


def read_json_lines(
    path: str | Path, error: type[InputError] = NotUtf8Error, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, Any]]:
    """``(line, value)`` for each non-blank line of a jsonl file, read as bytes, one line at a time.

    A line that is not one UTF-8 JSON value (undecodable bytes, a lone surrogate, bad JSON, more than
    ``max_line_bytes``) yields a :class:`RowError` in place of its value, so one bad line never stops the file.
    A file in UTF-16/32 raises ``error`` once, naming the encoding.
    """
    source = str(path)
    with open(path, "rb") as handle:
        _refuse_wide(handle.read(_SNIFF_BYTES), source, error)
        handle.seek(0)
        number = 0
        while line := handle.readline(max_line_bytes + 1):
            number += 1
            if len(line) > max_line_bytes and not line.endswith(b"\n"):
                del line
                while (rest := handle.readline(2**20)) and not rest.endswith(b"\n"):
                    pass
                yield (
                    number,
                    RowError(
                        source,
                        number,
                        "<line>",
                        f"longer than {max_line_bytes:,} bytes; split the record or leave it out",
                        "too_large",
                    ),
                )
                continue
            # one copy of a 50 MB line alive at a time: bytes, then text, then the record the caller works on
            value = _decode_line(line, source, number)
            del line
            if isinstance(value, str):
                value = _parse_line(value, source, number)
            if value is not BLANK:
                yield number, value


def read_json_file(path: str | Path, error: type[InputError] = NotUtf8Error) -> Any:
    """The JSON value of a whole ``.json`` file; ``error`` names the file, the line and what to do when it is not
    UTF-8 JSON."""
    source = str(path)
    raw = Path(path).read_bytes()
    _refuse_wide(raw[:_SNIFF_BYTES], source, error)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise error(
            f"{source} line {line}: not UTF-8 (byte 0x{raw[exc.start]:02x}); re-save the file as UTF-8"
        ) from None
    del raw
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{source} line {exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise error(f"{source}: not usable JSON ({str(exc)[:80]})") from None


@dataclass
class Example:
    """One validated input record, before templating and token counting."""

    source: str
    """Input file (for messages)."""
    row: int
    """1-based row in :attr:`source` (the line number for jsonl)."""
    source_id: str
    data_source: str
    answer_type: str
    """One of :data:`qwenlong_verl.common.tasks.ANSWER_TYPES`: verifier, gold rules, answer format."""
    task: str
    """Task label (:func:`qwenlong_verl.common.tasks.normalize_task_label`): the example's group."""
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


def canonical_gold(answer_type: str, answer: Any, choices: Sequence[str] = ()) -> str:
    """The gold answer as stored in ``reward_model.ground_truth``; raises ValueError when unusable for
    ``answer_type``.

    numeric: must parse as a number (``1,234.5``, ``-3``, ``12%`` accepted, kept as written).
    choice: an option letter (``B``, ``(b)``, ``B.``) within the offered choices, or the exact text of one choice;
    stored as the upper-case letter.
    qa: any non-empty text.
    """
    text = gold_text(answer)
    if not text:
        raise ValueError("empty gold answer")
    if answer_type == NUMERIC:
        if parse_number(text) is None or not math.isfinite(parse_number(text)):
            raise ValueError(f"{text[:60]!r} is not a number, which the numeric answer type requires")
        return text
    if answer_type == CHOICE:
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


def canonical_golds(answer_type: str, answer: Any, choices: Sequence[str] = ()) -> str:
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
        return canonical_gold(answer_type, answer, choices)
    if not items:
        raise ValueError("empty list of gold answers")
    golds = list(dict.fromkeys(canonical_gold(answer_type, item, choices) for item in items))
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


TASK_REASONS = {UnknownAnswerTypeError: "unknown_task", TaskFieldError: "bad_task"}
"""Problem reason of a bad ``answer_type`` / ``task`` value (most specific class first)."""


def _resolve_task(fields: Mapping[str, Any], fallback: str, where: tuple[str, int], prefix: str) -> tuple[str, str]:
    """``(answer type, task label)`` from ``fields["task"]`` and ``fields["answer_type"]``; a bad value is a
    :class:`RowError` naming ``<prefix>task`` or ``<prefix>answer_type``."""
    try:
        return resolve_task(fields.get("task"), fields.get("answer_type"), fallback)
    except TaskFieldError as exc:
        reason = next(r for cls, r in TASK_REASONS.items() if isinstance(exc, cls))
        raise RowError(*where, prefix + exc.field, str(exc), reason) from exc


def _choices(value: Any, where: tuple[str, int], field_name: str) -> list[str]:
    if value is None:
        return []
    items = _as_list(value)
    if items is None:
        raise RowError(*where, field_name, "must be a list of option texts", "bad_choices")
    if any(_is_blank(c) for c in items):
        raise RowError(*where, field_name, "contains an empty option", "bad_choices")
    if not all(is_gold_value(_plain(c)) for c in items):
        raise RowError(*where, field_name, _wrong_type(items, "a list of option texts"), "bad_choices")
    return [str(c).strip() for c in items]


def _wrong_type(value: Any, wanted: str) -> str:
    return f"must be {wanted}, got {'null' if value is None else type(value).__name__} {str(value)[:40]!r}"


def _text(value: Any, where: tuple[str, int], field_name: str, what: str) -> str:
    """A required text field, as given (not copied: it may be 50 MB); missing, non-text and blank values are row
    errors, never the text ``"None"``."""
    if value is None:
        raise RowError(*where, field_name, f"missing: add {what}", "missing")
    if not isinstance(value, str):
        raise RowError(*where, field_name, _wrong_type(value, f"text ({what})"), "bad_type")
    if not value or value.isspace():
        raise RowError(*where, field_name, f"empty: add {what}", "empty")
    return value


def document_item(doc: Any, where: tuple[str, int], field_name: str) -> str | dict[str, str]:
    """One item of ``documents``: non-empty text, or a ``{title, text}`` mapping (``content`` for ``text``); a
    :class:`RowError` otherwise (the eval's generic schema checks its documents with it too)."""
    if not isinstance(doc, Mapping):
        return _text(doc, where, field_name, "the document text, or a {title, text} object")
    text_key = "content" if "content" in doc and "text" not in doc else "text"
    text = _text(doc.get(text_key), where, f"{field_name}.{text_key}", "the document text")
    title = doc.get("title")
    if title is not None and not isinstance(title, str):
        raise RowError(*where, f"{field_name}.title", _wrong_type(title, "text (or leave it out)"), "bad_type")
    return {"title": title or "", "text": text}


def stripped_len(text: str) -> int:
    """``len(text.strip())`` without copying ``text``."""
    start, end = 0, len(text)
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return end - start


def _check_size(chars: int, max_chars: int | None, where: tuple[str, int], field_name: str) -> None:
    """Refuse a text that cannot fit the token limit before it is copied into a prompt or tokenised."""
    if max_chars is not None and chars > max_chars:
        raise RowError(
            *where,
            field_name,
            f"{chars:,} characters, more than a prompt within the token limit can hold ({max_chars:,} characters "
            "at the tokenizer's longest token); raise the limit or leave the example out",
            "too_long",
        )


def is_gold_value(value: Any) -> bool:
    """One gold answer as a file may give it: text or a finite number (a bool, an object or NaN is not one)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, str) or (isinstance(value, int | float) and math.isfinite(value))


def _check_answer(value: Any, where: tuple[str, int], field_name: str) -> None:
    """A gold answer is text, a finite number, or a list of them; anything else would be trained on as its repr."""
    items = value if isinstance(value, list) else [value]
    if not all(is_gold_value(item) for item in items):
        raise RowError(
            *where, field_name, _wrong_type(value, "text, a number or a list of them (the gold answer)"), "bad_type"
        )


def parse_record(record: Mapping[str, Any], source: str, row: int, max_chars: int | None = None) -> Example:
    """Validate one input record (raw or veRL-format) into an :class:`Example`; raises :class:`RowError`.

    ``max_chars``: the most characters of document, question and options (or prompt) that can fit the token limit;
    a longer record is a ``too_long`` row before its text is copied or tokenised.
    """
    where = (source, row)
    if not isinstance(record, Mapping):
        raise RowError(source, row, "<row>", "must be a JSON object / parquet row", "bad_type")
    if "prompt" in record and "reward_model" in record:
        return _parse_verl_row(record, where, max_chars)
    return _parse_raw_record(record, where, max_chars)


def _source_id(value: Any, where: tuple[str, int]) -> str:
    return f"{where[0]}:{where[1]}" if _is_blank(value) else str(_plain(value))


def _parse_raw_record(record: Mapping[str, Any], where: tuple[str, int], max_chars: int | None) -> Example:
    present = [k for k in DOCUMENT_KEYS if k in record and record[k] is not None]
    if not present:
        raise RowError(*where, "documents", f"missing: give the text as one of {', '.join(DOCUMENT_KEYS)}", "missing")
    key = present[0]
    value = record[key]
    if key == "documents":
        docs = _as_list(value)
        if docs is None:
            raise RowError(*where, key, "must be a list of texts or {title, text} objects", "bad_type")
        if not docs:
            raise RowError(*where, key, "empty: no document text", "empty")
        items = [document_item(_plain(d), where, f"{key}[{i}]") for i, d in enumerate(docs)]
        texts = [item["text"] if isinstance(item, dict) else item for item in items]
    else:
        texts = [_text(value, where, key, "the document text")]
    question = _text(record.get("question"), where, "question", "the bare question text").strip()
    _check_size(sum(map(stripped_len, texts)) + len(question), max_chars, where, key)
    document = join_documents(items) if key == "documents" else texts[0].strip()
    if "answer" not in record or record["answer"] is None:
        raise RowError(*where, "answer", "missing: every example needs its gold answer", "missing")
    _check_answer(_plain(record["answer"]), where, "answer")
    if record.get("data_source") is not None and not isinstance(record["data_source"], str):
        raise RowError(*where, "data_source", _wrong_type(record["data_source"], "text naming the dataset"), "bad_type")
    data_source = str(record.get("data_source") or DEFAULT_DATA_SOURCE)
    choice_key = "choices" if "choices" in record else "options"
    choices = _choices(record.get(choice_key), where, choice_key)
    fallback = CHOICE if choices else answer_type_from_data_source(data_source)
    answer_type, task = _resolve_task(record, fallback, where, "")
    if answer_type == CHOICE and len(choices) < 2:
        raise RowError(*where, "choices", "the choice answer type needs a list of at least two options", "bad_choices")
    if answer_type != CHOICE and choices:
        raise RowError(
            *where,
            "choices",
            f"options given but the answer type is {answer_type!r}; set answer_type to 'choice'",
            "bad_choices",
        )
    try:
        answer = canonical_golds(answer_type, _plain(record["answer"]), choices)
    except ValueError as exc:
        raise RowError(*where, "answer", str(exc), "bad_gold") from exc
    return Example(
        source=where[0],
        row=where[1],
        source_id=_source_id(record.get("id"), where),
        data_source=data_source,
        answer_type=answer_type,
        task=task,
        question=question,
        answer=answer,
        choices=choices,
        document=document,
        source_meta={str(k): _plain(v) for k, v in record.items() if k not in RAW_KEYS},
    )


def _parse_verl_row(record: Mapping[str, Any], where: tuple[str, int], max_chars: int | None) -> Example:
    messages = _check_messages(record["prompt"], where)
    _check_size(sum(len(m["content"]) for m in messages), max_chars, where, "prompt")
    data_source = record.get("data_source")
    if _is_blank(data_source):
        raise RowError(*where, "data_source", "missing or empty: name the dataset the row comes from", "missing")
    if not isinstance(data_source, str):
        raise RowError(*where, "data_source", _wrong_type(data_source, "text naming the dataset"), "bad_type")
    reward_model = _plain(record["reward_model"])
    if not isinstance(reward_model, Mapping):
        raise RowError(*where, "reward_model", "must be a mapping with ground_truth", "bad_type")
    gold = reward_model.get("ground_truth")
    if _is_blank(gold):
        raise RowError(
            *where, "reward_model.ground_truth", "missing or empty: every row needs its gold answer", "missing"
        )
    _check_answer(gold, where, "reward_model.ground_truth")
    extra = _plain(record.get("extra_info") or {})
    if not isinstance(extra, Mapping):
        raise RowError(*where, "extra_info", "must be a mapping", "bad_type")
    answer_type, task = _resolve_task(extra, answer_type_from_data_source(data_source), where, "extra_info.")
    choices = _choices(extra.get("choices") or None, where, "extra_info.choices")
    try:
        answer = canonical_golds(answer_type, gold, choices)
    except ValueError as exc:
        raise RowError(*where, "reward_model.ground_truth", str(exc), "bad_gold") from exc
    question = extra.get("question")
    if question is not None and not isinstance(question, str):
        raise RowError(*where, "extra_info.question", _wrong_type(question, "text (the bare question)"), "bad_type")
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
        answer_type=answer_type,
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
            "answer_type": example.answer_type,
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
            ("answer_type", pa.string()),
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

    For consumers of prepared parquet (curriculum, trainer, eval) that want to fail early on foreign files. Rows
    prepared before answer types were kept apart lack ``extra_info.answer_type``; their ``task`` is then one of
    the answer types and stands for both, as it did.
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
        if key not in extra and key not in OPTIONAL_EXTRA_INFO_KEYS:
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
    for key in ("task", "question", "source_id"):
        if _is_blank(extra[key]):
            raise RowError(*where, f"extra_info.{key}", "empty", "empty")
    answer_type, _ = _resolve_task(extra, answer_type_from_data_source(row["data_source"]), where, "extra_info.")
    choices = extra["choices"] or []
    try:
        canonical_golds(answer_type, reward_model["ground_truth"], choices)
    except ValueError as exc:
        raise RowError(*where, "reward_model.ground_truth", str(exc), "bad_gold") from exc
