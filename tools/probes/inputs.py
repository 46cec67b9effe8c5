"""Inputs and readers: hostile rows and hostile files, multiplied across every command that reads such a file.

A row kind is one bad line among good ones; a file kind is a whole file that is odd (an encoding, empty, a
folder). Each reader says how its command is called, which schema fields play which role (the document, the
gold answer, the question, the response) and what it does with one bad row: ``prepare`` and ``sft-data`` drop
and count it (exit 0, the good rows written, the bad one nowhere), ``score`` and ``eval`` refuse the whole file
naming the line (docs/data.md, "Validation").
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from probes.core import ERROR, OK, Cli, Ctx, Probe
from probes.helpers import (
    GOOD,
    MARKER,
    NO_RETRY,
    difficulty_argv,
    eval_argv,
    good_rows,
    jsonl_bytes,
    parquet_bytes,
    prepare_argv,
    prepare_dropped,
    prepared_rows_parquet,
    raw_record,
    rows_written,
    score_argv,
    score_record,
    serve,
    sft_argv,
)

AREA = "inputs"
MISSING = object()


@dataclass(frozen=True)
class Reader:
    """A command that reads rows, and how a probe calls it on a file named ``input``."""

    command: str
    record: Callable[..., dict]
    roles: Mapping[str, str]
    """Role (``document``, ``answer``, ``question``, ``response``) -> the dotted field holding it."""
    bad_row: str
    """What one bad row among good ones gets: ``ok`` (dropped and counted) or ``error`` (the file is refused)."""
    argv: Callable[[Ctx, str], list[str]]
    accepted: Callable[[Ctx, int, int], None]
    """Registers the checks of an accepted file with ``good`` good and ``bad`` bad rows."""
    names_row: Callable[[str, int], tuple[str, ...]] = lambda name, line: (f"{name}:{line}", f"line {line}")
    """What a refusal must name: the file and the bad line."""


def _prepare_argv(ctx: Ctx, name: str) -> list[str]:
    return prepare_argv(name, "out")


def _sft_argv(ctx: Ctx, name: str) -> list[str]:
    return sft_argv(name, "sft.parquet")


def _score_argv(ctx: Ctx, name: str) -> list[str]:
    return score_argv(name, "scored.jsonl")


def _eval_argv(ctx: Ctx, name: str) -> list[str]:
    return eval_argv(serve(ctx).url, *NO_RETRY, bench=f"probe={name}")


def _difficulty_argv(ctx: Ctx, name: str) -> list[str]:
    return difficulty_argv(serve(ctx).url, name, 2)


def _eval_accepted(ctx: Ctx, good: int, bad: int) -> None:
    ctx.check(rows_written("ev/items.jsonl", good))


RAW_ROLES = {"document": "documents", "answer": "answer", "question": "question"}

READERS = {
    "prepare": Reader(
        "prepare",
        raw_record,
        RAW_ROLES,
        OK,
        _prepare_argv,
        lambda ctx, good, bad: ctx.check(prepare_dropped("out", good, bad)),
        lambda name, line: (f"{name} row {line}", f"{name}:{line}"),
    ),
    "sft-data": Reader(
        "sft-data",
        raw_record,
        RAW_ROLES,
        OK,
        _sft_argv,
        lambda ctx, good, bad: ctx.check(rows_written("sft.parquet", good)),
        lambda name, line: (f"{name} row {line}", f"{name}:{line}"),
    ),
    "score": Reader(
        "score",
        score_record,
        {"answer": "ground_truth", "response": "response"},
        ERROR,
        _score_argv,
        lambda ctx, good, bad: ctx.check(rows_written("scored.jsonl", good)),
    ),
    "eval": Reader("eval", raw_record, RAW_ROLES, ERROR, _eval_argv, _eval_accepted),
}


# ----------------------------------------------------------------------------- row kinds


def _set(record: dict, dotted: str, value: Any) -> dict:
    record = json.loads(json.dumps(record))
    *parents, last = dotted.split(".")
    node = record
    for key in parents:
        node = node.setdefault(key, {})
    if value is MISSING:
        node.pop(last, None)
    else:
        node[last] = value
    return record


def _bad_record(reader: Reader) -> dict:
    return reader.record(GOOD, marker=True)


@dataclass(frozen=True)
class RowKind:
    """One bad line: ``line(reader) -> bytes``; ``role`` None means any reader (the line itself is broken)."""

    name: str
    what: str
    line: Callable[[Reader], bytes]
    role: str | None = None


def _field(role: str, value: Any) -> Callable[[Reader], bytes]:
    def line(reader: Reader) -> bytes:
        return json.dumps(_set(_bad_record(reader), reader.roles[role], value)).encode()

    return line


def _with_raw(role: str, raw: bytes) -> Callable[[Reader], bytes]:
    """The bad record with the value of ``role`` replaced by ``raw`` JSON text as it is."""

    def line(reader: Reader) -> bytes:
        text = json.dumps(_set(_bad_record(reader), reader.roles[role], "__RAW__")).encode()
        return text.replace(b'"__RAW__"', raw)

    return line


def _non_utf8(reader: Reader) -> bytes:
    return json.dumps(_bad_record(reader)).encode().replace(MARKER.encode(), MARKER.encode() + b" caf\xe9", 1)


def _nul(reader: Reader) -> bytes:
    return json.dumps(_bad_record(reader)).encode().replace(MARKER.encode(), MARKER.encode() + b"\x00", 1)


def _bad_json(reader: Reader) -> bytes:
    return json.dumps(_bad_record(reader)).encode()[:-1]


def _deep(reader: Reader) -> bytes:
    text = json.dumps({**_bad_record(reader), "meta": "__DEEP__"}).encode()
    return text.replace(b'"__DEEP__"', b"[" * 10_000 + b"]" * 10_000)


def _surrogate(role: str) -> Callable[[Reader], bytes]:
    def line(reader: Reader) -> bytes:
        record = _bad_record(reader)
        value = f"{MARKER} broken \ud800 escape"
        if role == "document" and reader.roles[role] == "documents":
            value = [{"title": "t", "text": value}]
        return json.dumps(_set(record, reader.roles[role], value)).encode()

    return line


ROW_KINDS = (
    RowKind("non-utf8-byte", "a latin-1 byte (0xe9) inside one row", _non_utf8),
    RowKind("nul-byte", "a raw NUL byte inside a string of one row", _nul),
    RowKind("bad-json", "one row is cut short (not JSON)", _bad_json),
    RowKind("array-row", "one row is a JSON array", lambda r: b'["' + MARKER.encode() + b'", 1]'),
    RowKind("scalar-row", "one row is a bare number", lambda r: b"42"),
    RowKind("string-row", "one row is a bare string", lambda r: b'"' + MARKER.encode() + b'"'),
    RowKind("null-row", "one row is null", lambda r: b"null"),
    RowKind("nesting-10k", "one row nests 10,000 lists deep", _deep),
    RowKind(
        "number-5000-digits", "a 5,000-digit number as the gold answer", _with_raw("answer", b"1" * 5000), "answer"
    ),
    RowKind("surrogate-document", "a lone \\ud800 surrogate in the document", _surrogate("document"), "document"),
    RowKind("surrogate-answer", "a lone \\ud800 surrogate in the gold answer", _surrogate("answer"), "answer"),
    RowKind("surrogate-response", "a lone \\ud800 surrogate in the response", _surrogate("response"), "response"),
    RowKind("documents-null", "documents: null", _field("document", None), "document"),
    RowKind("documents-number", "documents: 5", _field("document", 5), "document"),
    RowKind("documents-numbers", "documents: [1, 2]", _field("document", [1, 2]), "document"),
    RowKind(
        "documents-title-5",
        'documents: [{"title": 5, "text": ...}]',
        _field("document", [{"title": 5, "text": "x"}]),
        "document",
    ),
    RowKind("documents-object", 'documents: {"title": 5}', _field("document", {"title": 5}), "document"),
    RowKind("documents-empty-object", "documents: {}", _field("document", {}), "document"),
    RowKind("documents-empty-string", 'documents: ""', _field("document", ""), "document"),
    RowKind("answer-null", "answer: null", _field("answer", None), "answer"),
    RowKind("answer-object", "answer: {}", _field("answer", {}), "answer"),
    RowKind("answer-nan", "answer: NaN", _with_raw("answer", b"NaN"), "answer"),
    RowKind("answer-infinity", "answer: Infinity", _with_raw("answer", b"Infinity"), "answer"),
    RowKind("question-missing", "no question", _field("question", MISSING), "question"),
    RowKind("question-empty", 'question: ""', _field("question", ""), "question"),
    RowKind("question-number", "question: 5", _field("question", 5), "question"),
    RowKind("response-null", "response: null", _field("response", None), "response"),
    RowKind("response-number", "response: 5", _field("response", 5), "response"),
)


def _row_probe(reader: Reader, kind: RowKind) -> Probe:
    def build(ctx: Ctx) -> Cli:
        rows = good_rows(reader.record)
        lines = [*map(json.dumps, rows[:2]), kind.line(reader), *map(json.dumps, rows[2:])]
        ctx.lines("rows.jsonl", [x if isinstance(x, bytes) else x.encode() for x in lines])
        if reader.bad_row == OK:
            reader.accepted(ctx, GOOD, 1)
        else:
            ctx.error_names(*reader.names_row("rows.jsonl", 3))
        return Cli(tuple(reader.argv(ctx, "rows.jsonl")))

    return Probe(f"{reader.command}/row/{kind.name}", AREA, f"{reader.command}: {kind.what}", reader.bad_row, build)


# ----------------------------------------------------------------------------- file kinds


@dataclass(frozen=True)
class FileKind:
    """A whole odd input file: ``content(reader) -> bytes`` under ``filename``; ``expect`` per reader name (the
    default for the others), ``names`` what a refusal must name."""

    name: str
    what: str
    content: Callable[[Reader], bytes | None]
    """None: make the input a folder."""
    expect: str
    overrides: Mapping[str, str] = field(default_factory=dict)
    filename: str = "rows.jsonl"
    names: tuple[str, ...] = ("rows.jsonl",)
    within_s: float | None = None
    create: bool = True


def _good(reader: Reader) -> bytes:
    return jsonl_bytes(good_rows(reader.record))


def _encoded(codec: str, bom: bytes = b"") -> Callable[[Reader], bytes]:
    return lambda reader: bom + _good(reader).decode().encode(codec)


def _wide_encoding(name: str, codec: str, bom: bytes = b"") -> FileKind:
    """The good rows re-saved as ``codec`` (``utf-16-le``...), as a Windows editor does: refused, naming the
    encoding."""
    family, order = codec.upper().rsplit("-", 1)
    what = f"the file is {family} {order} {'with' if bom else 'without'} a BOM"
    return FileKind(name, what, _encoded(codec, bom), ERROR, names=(family,))


def _latin1(reader: Reader) -> bytes:
    return (
        _good(reader).decode().replace("Xland", "Xl\u00e4nd").replace("Therefore", "Therefor\u00e9").encode("latin-1")
    )


def _fifty_mb(reader: Reader) -> bytes:
    record = reader.record(GOOD, marker=reader.bad_row == OK)  # a long response is a good row of its own
    big = (MARKER + " " if reader.bad_row == OK else "") + "lorem ipsum dolor sit amet " * (50 * 2**20 // 27)
    role = "document" if "document" in reader.roles else "response"
    value = [{"title": "huge", "text": big}] if reader.roles[role] == "documents" else big
    lines = [*good_rows(reader.record), _set(record, reader.roles[role], value)]
    return jsonl_bytes(lines)


def _json_object(reader: Reader) -> bytes:
    return json.dumps({"rows": good_rows(reader.record)}).encode()


FILE_KINDS = (
    _wide_encoding("utf16-le", "utf-16-le", codecs.BOM_UTF16_LE),
    _wide_encoding("utf16-be", "utf-16-be", codecs.BOM_UTF16_BE),
    _wide_encoding("utf16-no-bom", "utf-16-le"),
    _wide_encoding("utf32", "utf-32-le", codecs.BOM_UTF32_LE),
    FileKind("utf8-bom", "a UTF-8 byte-order mark before the first row", lambda r: codecs.BOM_UTF8 + _good(r), OK),
    FileKind("crlf", "CRLF line endings", lambda r: _good(r).replace(b"\n", b"\r\n"), OK),
    FileKind(
        "blank-lines",
        "blank and whitespace lines between the rows",
        lambda r: _good(r).replace(b"\n", b"\n\n  \t\n"),
        OK,
    ),
    FileKind("latin1-file", "a whole file in latin-1 (every row has a non-UTF-8 byte)", _latin1, ERROR),
    FileKind("empty", "an empty file", lambda r: b"", ERROR),
    FileKind("whitespace-only", "a file of spaces and newlines", lambda r: b"  \n\n\t \n", ERROR),
    FileKind("directory", "a folder given as the input file", lambda r: None, ERROR, names=("rows.jsonl",)),
    FileKind("missing", "an input file that does not exist", lambda r: b"", ERROR, create=False),
    FileKind(
        "json-object",
        "a .json input holding an object, not a list",
        _json_object,
        ERROR,
        filename="rows.json",
        names=("rows.json",),
    ),
    FileKind("unknown-suffix", "a .csv input", _good, ERROR, filename="rows.csv", names=("rows.csv",)),
    FileKind("document-50mb", "one 50 MB document (must be dropped in under 10 s)", _fifty_mb, OK, within_s=10),
)

FILE_READERS = {
    # score reads jsonl only, so a .json or .csv input is one more refusal; eval's 50 MB document would be sent
    "score": {"json-object", "unknown-suffix"},
}


def _file_probe(reader: Reader, kind: FileKind) -> Probe:
    expect = kind.overrides.get(reader.command, kind.expect)
    if kind.name == "document-50mb" and reader.bad_row == ERROR:
        expect = OK  # a long response is a response: it is scored, fast

    def build(ctx: Ctx) -> Cli:
        content = kind.content(reader)
        if content is None:
            ctx.path(kind.filename).mkdir()
        elif kind.create:
            ctx.write(kind.filename, content)
        if expect == OK:
            bad = 1 if kind.name == "document-50mb" and reader.bad_row == OK else 0
            good = GOOD + (1 if kind.name == "document-50mb" and reader.bad_row == ERROR else 0)
            reader.accepted(ctx, good, bad)
        ctx.error_names(*kind.names)
        if kind.within_s:
            ctx.within(kind.within_s)
        argv = reader.argv(ctx, kind.filename)
        if kind.name == "document-50mb" and reader.command == "sft-data":
            argv += ["--tokenizer", "builtin", "--max-length", "4096"]  # what bounds an SFT chat's length
        return Cli(tuple(argv))

    return Probe(
        f"{reader.command}/file/{kind.name}", AREA, f"{reader.command}: {kind.what}", expect, build, timeout_s=90
    )


# ----------------------------------------------------------------------------- parquet kinds


def _truncated(reader: Reader) -> bytes:
    data = prepared_rows_parquet()
    return data[: len(data) // 2]


PARQUET_KINDS = (
    ("zero-bytes", "a 0-byte .parquet file", lambda: b""),
    ("truncated", "a parquet file cut in half", lambda: _truncated(None)),
    ("not-parquet", "a text file named .parquet", lambda: b'{"question": "q"}\n'),
    ("wrong-columns", "a parquet file with unrelated columns", lambda: parquet_bytes([{"a": 1, "b": "x"}] * 3)),
)

PARQUET_READERS = {
    "prepare": _prepare_argv,
    "sft-data": _sft_argv,
    "eval": _eval_argv,
    "difficulty": _difficulty_argv,
}


def _parquet_probe(command: str, name: str, what: str, content: Callable[[], bytes]) -> Probe:
    def build(ctx: Ctx) -> Cli:
        ctx.write("rows.parquet", content())
        ctx.error_names("rows.parquet")
        return Cli(tuple(PARQUET_READERS[command](ctx, "rows.parquet")))

    return Probe(f"{command}/parquet/{name}", AREA, f"{command}: {what}", ERROR, build)


def _difficulty_prepared(ctx_name: str) -> Probe:
    """``difficulty`` on a real prepared bin plus one row that is not a prepared row: measured, the row skipped."""

    def build(ctx: Ctx) -> Cli:
        ctx.write("rows.parquet", prepared_rows_parquet())
        ctx.check(rows_written("dif/difficulty.jsonl", GOOD))
        return Cli(tuple(_difficulty_argv(ctx, "rows.parquet")))

    return Probe(ctx_name, AREA, "difficulty: a good prepared bin (control)", OK, build)


def probes() -> list[Probe]:
    found = [
        _row_probe(reader, kind)
        for reader in READERS.values()
        for kind in ROW_KINDS
        if kind.role is None or kind.role in reader.roles
    ]
    found += [
        _file_probe(reader, kind)
        for reader in READERS.values()
        for kind in FILE_KINDS
        if kind.name not in FILE_READERS.get(reader.command, ())
        and not (reader.command == "eval" and kind.name == "document-50mb")
    ]
    found += [_parquet_probe(command, *kind) for command in PARQUET_READERS for kind in PARQUET_KINDS]
    found.append(_difficulty_prepared("difficulty/parquet/control"))
    return found
