"""Command-line options built from a config dataclass: the field says the type and the default, its docstring the help.

A command declares no option by hand. Each field of its config becomes ``--field-name`` (type from the
annotation, ``choices`` from a ``Literal``, ``nargs`` for a list, ``--flag`` / ``--no-flag`` for a bool, JSON
for a mapping; a nested dataclass becomes an argument group), and the help text is the attribute docstring
under the field, read once from the class source. Where an option's name, metavar or parsing must differ
from what the field implies (an established flag such as ``--model-url`` for ``base_url``), the command
passes a :class:`Flag`. Defaults stay in the dataclass: an option not given is not passed, so the dataclass
applies its own default.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import json
import math
import os
import re
import textwrap
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class Flag:
    """How one field appears on the command line where what its name and type imply does not fit."""

    name: str | None = None
    """The option, e.g. ``--model-url`` (default ``--field-name``)."""

    positional: bool = False
    """A positional argument instead of an option."""

    metavar: str | None = None
    """The value's placeholder in the help (default: the field name in capitals)."""

    parse: Callable[[str], Any] | None = None
    """Turns the one option string into the field's whole value (e.g. ``"4k,8k"`` -> ``[4096, 8192]``)."""

    comma: bool = False
    """For a list field: the option is repeatable and each value may also be a comma-separated list."""

    env: tuple[str, ...] = ()
    """Environment variables read, in order, when the option is not given."""

    hidden: bool = False
    """Not on the command line: the dataclass default always applies."""


HIDDEN = Flag(hidden=True)


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Field name -> its attribute docstring, for ``cls`` and its dataclass bases (a subclass's text wins)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):  # no source (a frozen app, a class made at run time): no help text
            continue
        body = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)).body
        for node, after in zip(body, body[1:], strict=False):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


def help_text(doc: str) -> str:
    """A docstring as plain help: one paragraph, reST roles and literals unwrapped, ``%`` escaped for argparse."""
    text = re.sub(r":\w+:`~?([^`]+)`", lambda m: m.group(1).rpartition(".")[2], doc)
    text = re.sub(r"``([^`]+)``", r"\1", text)
    return " ".join(text.split()).replace("%", "%%")


def _optional(tp: Any) -> Any:
    """``X | None`` -> ``X``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return tp


def _is_list(tp: Any) -> bool:
    return typing.get_origin(tp) in (list, tuple, Sequence, set, frozenset) or tp in (list, tuple)


def _is_mapping(tp: Any) -> bool:
    return typing.get_origin(tp) in (dict, Mapping) or tp in (dict, Mapping)


def _item_type(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not Ellipsis]
    return args[0] if args else str


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"key\": 1}'")
    return value


def _keep_message(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """argparse shows a parser's own ``ValueError`` text instead of its generic 'invalid value'."""

    @functools.wraps(parse)
    def wrapped(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:  # argparse's own contract for a type= callable: the value is wrong
            raise argparse.ArgumentTypeError(str(exc)) from None

    return wrapped


def _comma_list(item: Callable[[str], Any]) -> Callable[[str], list]:
    def split(text: str) -> list:
        return [item(part.strip()) for part in text.split(",") if part.strip()]

    split.__name__ = getattr(item, "__name__", "value")
    return split


def _ascii_int(text: str) -> int:
    """An integer in ASCII digits: ``int()`` alone would also take ``'٣'`` or ``'1_000'``."""
    if not re.fullmatch(r"[+-]?[0-9]+", text.strip()):
        raise ValueError(text)
    return int(text)


_ascii_int.__name__ = "int"  # argparse names the type in its error: "invalid int value"


def _ascii_float(text: str) -> float:
    """A finite number in ASCII: ``float()`` alone would also take ``'nan'``, ``'inf'``, ``'1e999'`` or ``'١٢'``,
    which no temperature or timeout means."""
    if not re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", text.strip()):
        raise ValueError(text)
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


_ascii_float.__name__ = "float"


def _scalar(tp: Any) -> Callable[[str], Any]:
    if typing.get_origin(tp) is typing.Literal:
        return type(typing.get_args(tp)[0])
    if tp is int:
        return _ascii_int
    if tp is float:
        return _ascii_float
    if tp in (str, Path):
        return tp
    raise TypeError(f"no command-line form for a field of type {tp!r}; give it a Flag(parse=...)")


def _shown_default(field: dataclasses.Field) -> str | None:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return None
    if value is None or isinstance(value, bool) or (isinstance(value, (list, tuple, dict, str)) and not value):
        return None
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


@dataclasses.dataclass(frozen=True)
class _Option:
    field: dataclasses.Field
    type: Any
    nested: type | None = None
    """A dataclass field: its fields are options of their own (an argument group)."""


@functools.cache
def _options(cls: type) -> tuple[_Option, ...]:
    hints = typing.get_type_hints(cls)
    options = []
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        tp = _optional(hints[field.name])
        nested = tp if dataclasses.is_dataclass(tp) else None
        options.append(_Option(field, tp, nested))
    return tuple(options)


def add_arguments(parser: argparse.ArgumentParser, cls: type, flags: Mapping[str, Flag] | None = None) -> None:
    """Add an option per field of ``cls`` (and of its nested dataclasses) to ``parser``; ``flags`` by field name."""
    flags = flags or {}
    docs = field_docs(cls)
    for option in _options(cls):
        field, tp = option.field, option.type
        flag = flags.get(field.name, Flag())
        if flag.hidden:
            continue
        if option.nested is not None:
            doc = docs.get(field.name) or inspect.getdoc(option.nested) or option.nested.__name__
            title = " ".join(doc.split()).rstrip(".")
            add_arguments(parser.add_argument_group(title), option.nested, flags)
            continue
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        text = help_text(docs.get(field.name, ""))
        kwargs: dict[str, Any] = {"dest": field.name, "default": argparse.SUPPRESS}
        if flag.metavar:
            kwargs["metavar"] = flag.metavar
        if tp is bool:
            name = flag.name or ("--no-" if field.default is True else "--") + field.name.replace("_", "-")
            action = "store_false" if field.default is True else "store_true"
            parser.add_argument(name, action=action, help=text, **kwargs)
            continue
        if flag.parse is not None:
            kwargs["type"] = _keep_message(flag.parse)
        elif _is_mapping(tp):
            kwargs["type"] = _json_object
            kwargs.setdefault("metavar", "JSON")
        elif _is_list(tp):
            item = _scalar(_item_type(tp))
            if flag.comma:
                kwargs.update(type=_comma_list(item), action="extend")
                text = f"{text} Repeatable; a value may list several, comma-separated.".lstrip()
            else:
                kwargs.update(type=item, nargs="+", action="extend")
            if typing.get_origin(_item_type(tp)) is typing.Literal and not flag.comma:
                kwargs["choices"] = typing.get_args(_item_type(tp))
        else:
            kwargs["type"] = _scalar(tp)
            if typing.get_origin(tp) is typing.Literal:
                kwargs["choices"] = typing.get_args(tp)
        shown = _shown_default(field)
        if flag.env:
            shown = " or ".join(f"${name}" for name in flag.env) + (f", else {shown}" if shown else "")
        if shown and not flag.positional:
            end = "." if text.endswith(".") else ""
            text = f"{text.removesuffix('.')} (default: {shown.replace('%', '%%')}){end}".lstrip()
        if flag.positional:
            kwargs.pop("dest")
            if not required:
                kwargs["nargs"] = "?"
            parser.add_argument(field.name, help=text, **kwargs)
        else:
            name = flag.name or "--" + field.name.replace("_", "-")
            parser.add_argument(name, required=required and not flag.env, help=text, **kwargs)


def build(cls: type, namespace: argparse.Namespace, flags: Mapping[str, Flag] | None = None) -> Any:
    """The ``cls`` instance the parsed options describe; options not given keep the dataclass defaults."""
    flags = flags or {}
    given = vars(namespace)
    kwargs: dict[str, Any] = {}
    for option in _options(cls):
        name = option.field.name
        flag = flags.get(name, Flag())
        if option.nested is not None:
            kwargs[name] = build(option.nested, namespace, flags)
        elif name in given:
            kwargs[name] = given[name]
        elif flag.env and (value := next((os.environ[e] for e in flag.env if os.environ.get(e)), None)):
            kwargs[name] = (flag.parse or _scalar(option.type))(value)
    return cls(**kwargs)
