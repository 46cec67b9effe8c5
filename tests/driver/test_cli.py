"""The CLI's two mechanisms: options built from a config dataclass (docstrings as help), and failures mapped to
exit codes in one place (the real console script, in a fresh process)."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from qwenlong_verl.driver.cli import build_parser
from qwenlong_verl.driver.cli.args import HIDDEN, Flag, add_arguments, build, field_docs
from qwenlong_verl.driver.cli.command import COMMANDS
from qwenlong_verl.driver.eval.scoring import parse_length_edges

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("qwenlong-verl")
QASPER = ROOT / "tests" / "fixtures" / "eval" / "qasper.jsonl"


@dataclass
class Inner:
    """Inner settings."""

    depth: int = 3
    """How deep to go."""


@dataclass
class Example:
    """Options of an example command."""

    path: str
    """Where to write, 100% sure."""

    count: int = 2
    """How many."""

    ratio: float | None = None
    """A ``ratio`` of :class:`~some.module.Thing`."""

    mode: Literal["fast", "slow"] = "fast"
    """Speed."""

    names: list[str] = field(default_factory=list)
    """Names, several per option."""

    urls: list[str] = field(default_factory=list)
    """URLs, repeatable and comma-separated."""

    edges: list[int] = field(default_factory=lambda: [4096])
    """Bucket edges."""

    extra: dict[str, Any] = field(default_factory=dict)
    """A JSON object."""

    strict: bool = False
    """Fail on any bad row."""

    plot: bool = True
    """Draw the plot."""

    secret: str | None = None
    """A token."""

    internal: int = 7
    """Not on the command line."""

    inner: Inner = field(default_factory=Inner)
    """The inner group."""


FLAGS = {
    "urls": Flag("--url", metavar="URL", comma=True),
    "edges": Flag("--buckets", parse=parse_length_edges),
    "secret": Flag(env=("QWENLONG_TEST_SECRET",)),
    "internal": HIDDEN,
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="example")
    add_arguments(p, Example, FLAGS)
    return p


def parse(*argv: str) -> Example:
    return build(Example, parser().parse_args(argv), FLAGS)


def test_docstrings_are_read_once_per_class():
    docs = field_docs(Example)
    assert docs["path"] == "Where to write, 100% sure."
    assert "depth" not in docs  # a nested dataclass's fields are documented in their own class
    assert field_docs(Inner) == {"depth": "How deep to go."}
    assert field_docs(Example) is docs  # cached


def test_help_text_is_the_docstring_with_the_dataclass_default():
    text = " ".join(parser().format_help().split())
    assert "Where to write, 100% sure." in text  # '%' survives argparse's formatting
    assert "A ratio of Thing." in text  # reST literals and roles unwrapped
    assert "How many (default: 2)." in text
    assert "{fast,slow}" in text and "--no-plot Draw the plot." in text
    assert "--url URL" in text and "--buckets" in text and "--internal" not in text
    assert "(default: $QWENLONG_TEST_SECRET)" in text
    assert "The inner group: --depth DEPTH How deep to go (default: 3)." in text


def test_defaults_come_from_the_dataclass_only():
    assert parse("--path", "p") == Example(path="p")
    with pytest.raises(SystemExit):
        parse()  # a field without a default is a required option


def test_types_lists_bools_json_and_nested_groups():
    got = parse(
        "--path", "p", "--count", "5", "--ratio", "0.5", "--mode", "slow",
        "--names", "a", "b", "--names", "c",
        "--url", "http://x,http://y", "--url", "http://z",
        "--buckets", "4k,8k", "--extra", '{"top_k": 20}', "--strict", "--no-plot", "--depth", "9",
    )  # fmt: skip
    assert got == Example(
        path="p",
        count=5,
        ratio=0.5,
        mode="slow",
        names=["a", "b", "c"],
        urls=["http://x", "http://y", "http://z"],
        edges=[4096, 8192],
        extra={"top_k": 20},
        strict=True,
        plot=False,
        inner=Inner(depth=9),
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--count", "many"], "invalid int value: 'many'"),
        (["--count", "\u0661\u0662"], "invalid int value"),  # Arabic-Indic digits: int() alone takes them
        (["--ratio", "inf"], "invalid float value: 'inf'"),
        (["--ratio", "nan"], "invalid float value: 'nan'"),
        (["--ratio", "1e999"], "invalid float value: '1e999'"),
        (["--ratio", "\u0661\u0662"], "invalid float value"),
        (["--mode", "medium"], "invalid choice: 'medium'"),
        (["--extra", "[1]"], "--extra: must be a JSON object"),
        (["--extra", "{"], "--extra: not JSON"),
        (["--buckets", "8k,4k"], "must be increasing"),  # the parser's own message, not 'invalid value'
    ],
)
def test_bad_values_are_usage_errors_naming_the_option(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse("--path", "p", *argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("text, value", [("1e3", 1000.0), ("-2.5", -2.5), (".5", 0.5), ("7", 7.0)])
def test_float_options_take_plain_ascii_numbers(text, value):
    assert build(Example, parse("--path", "p", "--ratio", text)).ratio == value


def test_environment_fallback(monkeypatch):
    monkeypatch.setenv("QWENLONG_TEST_SECRET", "from-env")
    assert parse("--path", "p").secret == "from-env"
    assert parse("--path", "p", "--secret", "given").secret == "given"


def test_every_option_of_every_command_has_help():
    for name, cmd in COMMANDS.items():
        if cmd.config is None:
            continue
        p = argparse.ArgumentParser()
        add_arguments(p, cmd.config, cmd.flags)
        missing = [a.dest for a in p._actions if a.dest != "help" and not (a.help or "").strip()]
        assert missing == [], f"{name}: fields without a docstring: {missing}"


def test_judge_url_is_one_option_on_every_command():
    parser = build_parser()
    judge = ["--judge-url", "http://a,http://b", "--judge-url", "http://c"]
    urls = ["http://a", "http://b", "http://c"]
    score = parser.parse_args(["score", "--input", "x.jsonl", *judge])
    assert build(COMMANDS["score"].config, score, COMMANDS["score"].flags).judge.judge_urls == urls
    demo = parser.parse_args(["demo", *judge])
    assert build(COMMANDS["demo"].config, demo, COMMANDS["demo"].flags).judge.judge_urls == urls
    eval_ = parser.parse_args(
        ["eval", "--model-url", "http://m/v1", "--model", "m", "--bench", "b", "--out", "o", *judge]
    )
    assert build(COMMANDS["eval"].config, eval_, COMMANDS["eval"].flags).judge_urls == urls


def test_judge_prompt_and_budget_options_give_the_same_reward_kwargs_on_every_command():
    parser = build_parser()
    flags = ["--judge-prompt", "qwenlong_l1", "--judge-max-tokens", "2048", "--judge-reasoning-effort", "low"]
    flags += ["--judge-chat-template-kwargs", '{"enable_thinking": false}']
    expected = {
        "judge_prompt": "qwenlong_l1",
        "judge_max_tokens": 2048,
        "judge_reasoning_effort": "low",
        "judge_chat_template_kwargs": {"enable_thinking": False},
    }
    score = parser.parse_args(["score", "--input", "x.jsonl", *flags])
    assert build(COMMANDS["score"].config, score, COMMANDS["score"].flags).judge.reward_kwargs() == expected
    demo = parser.parse_args(["demo", *flags])
    assert build(COMMANDS["demo"].config, demo, COMMANDS["demo"].flags).judge.reward_kwargs() == expected
    eval_ = parser.parse_args(
        ["eval", "--model-url", "http://m/v1", "--model", "m", "--bench", "b", "--out", "o", *flags]
    )
    assert build(COMMANDS["eval"].config, eval_, COMMANDS["eval"].flags).judge_kwargs() == expected


def test_eval_defaults_are_the_config_defaults():
    from qwenlong_verl.driver.eval.generate import GenerationConfig
    from qwenlong_verl.driver.eval.runner import EvalConfig

    args = build_parser().parse_args(
        ["eval", "--model-url", "http://m/v1", "--model", "m", "--bench", "b", "--out", "o"]
    )
    config = build(EvalConfig, args, COMMANDS["eval"].flags)
    assert config.generation == GenerationConfig(base_url="http://m/v1", model="m")
    assert config == EvalConfig(benches=["b"], out="o", generation=config.generation)


def script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env_drop = ("QWENLONG_JUDGE_URLS", "QWENLONG_EVAL_API_KEY", "OPENAI_API_KEY")
    env = {k: v for k, v in os.environ.items() if k not in env_drop}
    return subprocess.run([str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def test_bad_input_exits_2_with_one_line(tmp_path):
    out = script("report", str(tmp_path / "missing"), cwd=tmp_path)
    assert out.returncode == 2
    assert (
        out.stderr
        == f"error: {tmp_path / 'missing'} is not an eval folder (no run.json); run `qwenlong-verl eval` first\n"
    )
    assert out.stdout == ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_failed_run_exits_1_with_one_line(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there
    out = script("eval", "--model-url", url, "--model", "m", "--bench", f"qasper={QASPER}", "--out", "o", cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    lines = out.stderr.splitlines()
    assert (
        len(lines) == 1 and lines[0].startswith(f"error: cannot reach {url}/models") and "Traceback" not in out.stderr
    )


def test_ctrl_c_exits_130_with_one_line(tmp_path):
    with socket.socket() as server:  # accepts the connection, never answers: the eval waits on it
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(60)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/v1"
        args = ["eval", "--model-url", url, "--model", "m", "--bench", f"qasper={QASPER}", "--out", "o"]
        proc = subprocess.Popen(
            [str(SCRIPT), *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        conn, _ = server.accept()
        with conn:
            time.sleep(0.2)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err == "interrupted; what finished is kept: rerun the same command to resume\n"
