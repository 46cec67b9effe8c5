"""CLI numbers and flags: every hostile number on the options that take one.

Each option is a row with its valid range; each value a column. The expected outcome follows from the two: a
value that is a finite number of the option's type inside its range is accepted (the command runs to the end),
anything else is one ``error:`` line naming the option.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from probes.core import ERROR, OK, Cli, Ctx, Probe
from probes.helpers import (
    NO_RETRY,
    eval_argv,
    good_rows,
    jsonl_bytes,
    prepare_argv,
    raw_record,
    score_record,
    serve,
    sft_argv,
    synth_argv,
)
from probes.servers import closed_port

AREA = "flags"

VALUES = {
    "zero": "0",
    "negative": "-3",
    "fraction": "2.5",
    "exponent": "1e3",
    "nan": "nan",
    "inf": "inf",
    "huge": "1" + "0" * 30,
    "empty": "",
    "arabic-digits": "\u0661\u0662",
}
"""The hostile values, by name (``arabic-digits`` is ١٢, twelve in Arabic-Indic digits)."""


def _rows(ctx: Ctx) -> str:
    ctx.write("raw.jsonl", jsonl_bytes(good_rows(raw_record)))
    return "raw.jsonl"


def _synth(ctx: Ctx) -> list[str]:
    return synth_argv("s.jsonl")


def _prepare(ctx: Ctx) -> list[str]:
    return prepare_argv(_rows(ctx), "out")


def _sft(ctx: Ctx) -> list[str]:
    return sft_argv(_rows(ctx), "sft.parquet", "--tokenizer", "builtin")


def _eval(ctx: Ctx) -> list[str]:
    return eval_argv(serve(ctx).url, *NO_RETRY, bench=f"probe={_rows(ctx)}")


def _score(ctx: Ctx) -> list[str]:
    ctx.write("resp.jsonl", jsonl_bytes(good_rows(score_record)))
    # an unreachable judge: asked for nothing (the rule says right), so the scores stand
    return ["score", "--input", "resp.jsonl", "--judge-url", f"http://127.0.0.1:{closed_port()}/v1"]


def _train(ctx: Ctx) -> list[str]:
    return ["train", "cpu_smoke", "--dry-run", "--output-dir", "run"]


def _tiny(ctx: Ctx) -> list[str]:
    return ["tiny-model", "--out", "tiny"]


@dataclass(frozen=True)
class Option:
    """A numeric option, its command and its valid range (inclusive; None: unbounded)."""

    command: str
    flag: str
    base: Callable[[Ctx], list[str]]
    kind: type = int
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    """The low end itself is invalid (a timeout of 0)."""
    replaces: bool = True
    """The base command names the flag already: this value replaces it."""

    def accepts(self, text: str) -> bool:
        if self.kind is int:
            if not re.fullmatch(r"[+-]?[0-9]+", text):
                return False
            value: float = int(text)
        else:
            if not re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", text):
                return False
            value = float(text)
            if not math.isfinite(value):
                return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or value <= self.high


OPTIONS = (
    Option("synth", "--n", _synth, int, 1, 1_000_000),
    Option("synth", "--seed", _synth, int),
    Option("prepare", "--workers", _prepare, int, 1),
    Option("prepare", "--phases", _prepare, int, 1, 10_000_000),
    Option("sft-data", "--max-length", _sft, int, 1),
    Option("eval", "--n", _eval, int, 1, 10_000),
    Option("eval", "--temperature", _eval, float, 0),
    Option("eval", "--timeout", _eval, float, 0, None, low_open=True),
    Option("eval", "--limit", _eval, int, 1),
    Option("score", "--judge-timeout", _score, float, 0, None, low_open=True),
    Option("train", "--from-phase", _train, int, 1, 2),
    Option("tiny-model", "--seed", _tiny, int, -(2**63), 2**64 - 1),
)
"""``--phases 10**30`` is refused (a window no model has); ``eval --n`` is bounded because each sample is a
request; ``tiny-model --seed`` is what torch's generator takes."""


def _probe(option: Option, value_name: str, text: str) -> Probe:
    expect = OK if option.accepts(text) else ERROR

    def build(ctx: Ctx) -> Cli:
        argv = option.base(ctx)
        if option.flag in argv:
            argv[argv.index(option.flag) + 1] = text
        else:
            argv += [option.flag, text]
        ctx.error_names(option.flag, option.flag.lstrip("-").replace("-", "_"), option.flag.lstrip("-"))
        return Cli(tuple(argv))

    return Probe(
        f"{option.command}/flag/{option.flag.lstrip('-')}={value_name}",
        AREA,
        f"{option.command} {option.flag} {text!r}",
        expect,
        build,
        timeout_s=120,
    )


def probes() -> list[Probe]:
    return [_probe(option, name, text) for option in OPTIONS for name, text in VALUES.items()]
