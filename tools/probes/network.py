"""Network: the policy server of ``eval`` and the judge of ``score``/``eval`` misbehaving in every way a real one
does (unreachable, 5xx, 429 with Retry-After, non-JSON, the wrong shape, a lone surrogate, 50 MB, no answer),
credentials in URLs that must never be shown or written, and two evals on one folder at once.

Documented behaviour (docs/eval.md, docs/rewards.md): a policy sample that fails is recorded and the run exits 1
with one line; a judge that answers none of ``score``'s calls makes it exit 1 unless ``--allow-judge-failures``;
in ``eval`` the rule decides where the judge failed (exit 0, a warning); every wait is bounded by a timeout.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from probes.core import ERROR, OK, Cli, Ctx, Custom, Outcome, Probe, finish, run_in_process, start
from probes.helpers import NO_RETRY, eval_argv, good_rows, jsonl_bytes, raw_record, score_record, serve
from probes.servers import VERDICT, closed_port

AREA = "network"
SECRET = "secretpw"
API_KEY = "sk-probe-SECRETKEY"
AUTH = f"user:{SECRET}"
BOUND = ("--timeout", "3", "--max-retries", "1")
"""Every policy probe bounds a request to 3 s and one retry: a hang must end, not wait the default 30 minutes."""


def _bench(ctx: Ctx) -> str:
    ctx.write("raw.jsonl", jsonl_bytes(good_rows(raw_record, 2)))
    return "probe=raw.jsonl"


def _eval_argv(ctx: Ctx, url: str, *extra: str) -> tuple[str, ...]:
    return tuple(eval_argv(url, *BOUND, *extra, bench=_bench(ctx)))


def _url(ctx: Ctx, fault: str, userinfo: str = "", judge: bool = False) -> str:
    if fault == "unreachable":
        auth = f"{userinfo}@" if userinfo else ""
        return f"http://{auth}127.0.0.1:{closed_port()}/v1"
    kwargs = {"text": VERDICT} if judge else {}
    return serve(ctx, fault, userinfo=userinfo, hang_s=60, **kwargs).url


@dataclass(frozen=True)
class Fault:
    name: str
    what: str
    policy: str
    """What ``eval`` should do when the policy server behaves so."""


FAULTS = (
    Fault("unreachable", "nothing listens on the port", ERROR),
    Fault("http_500", "every request (the model list too) answers HTTP 500", ERROR),
    Fault("http_429", "every completion answers 429 with Retry-After: 1", ERROR),
    Fault("not_json", "an HTML body with status 200", ERROR),
    Fault("truncated_json", "a JSON body cut short", ERROR),
    Fault("message_string", "choices[0].message is a string", ERROR),
    Fault("choices_empty", "choices is an empty list", ERROR),
    Fault("content_null", "message.content is null (all reasoning: an empty answer, scored wrong)", OK),
    Fault("usage_string", "usage is a string (the answer itself is fine)", OK),
    Fault("lone_surrogate", "the content holds a lone \\ud800 surrogate", ERROR),
    Fault("huge", "a 50 MB reply", ERROR),
    Fault("hang", "the server never answers (models list included)", ERROR),
)


def _policy_probe(fault: Fault) -> Probe:
    def build(ctx: Ctx) -> Cli:
        ctx.within(60)
        ctx.error_names("sample", "127.0.0.1", "policy", "--model-url")
        if fault.policy == OK:
            ctx.check(_scored(2))
        return Cli(_eval_argv(ctx, _url(ctx, fault.name)))

    return Probe(
        f"eval/policy/{fault.name}", AREA, f"eval: the policy server: {fault.what}", fault.policy, build, timeout_s=120
    )


def _scored(n: int):
    def check(ctx: Ctx, outcome: Outcome) -> str | None:
        path = ctx.path("ev/scores.jsonl")
        if outcome.rc == 0 and (not path.is_file() or len(path.read_text().splitlines()) < n):
            return f"ev/scores.jsonl holds fewer than {n} scores"
        return None

    return check


# ----------------------------------------------------------------------------- the judge


def _wrong_by_rule(ctx: Ctx) -> str:
    """Responses the rule marks wrong, so the judge is asked about each."""
    rows = [{**r, "response": "Therefore, the answer is the city on the river Zed."} for r in good_rows(score_record)]
    ctx.write("resp.jsonl", jsonl_bytes(rows))
    return "resp.jsonl"


JUDGE_ACCEPTS = ("ok", "usage_string")
"""Judge replies that carry a verdict; any other fault leaves ``score`` with no judge answer at all."""


def _judge_probe(fault: Fault, allow: bool = False) -> Probe:
    expect = OK if allow or fault.name in JUDGE_ACCEPTS else ERROR

    def build(ctx: Ctx) -> Cli:
        ctx.within(60)
        ctx.error_names("judge")
        argv = [
            "score",
            "--input",
            _wrong_by_rule(ctx),
            "--judge-url",
            _url(ctx, fault.name, judge=True),
            "--judge-timeout",
            "3",
            "--output",
            "scored.jsonl",
        ]
        if allow:
            argv.append("--allow-judge-failures")
        return Cli(tuple(argv))

    suffix = "+allow-failures" if allow else ""
    return Probe(
        f"score/judge/{fault.name}{suffix}",
        AREA,
        f"score: the judge: {fault.what}" + (" (--allow-judge-failures)" if allow else ""),
        expect,
        build,
        timeout_s=120,
    )


def _eval_judge_probe(fault: Fault) -> Probe:
    """In ``eval`` the rule stands where the judge failed: exit 0 with a warning (docs/eval.md)."""

    def build(ctx: Ctx) -> Cli:
        ctx.within(60)
        ctx.check(_scored(2))
        policy = serve(ctx, "ok")
        rows = [{**r, "answer": "Zed city"} for r in good_rows(raw_record, 2)]  # the rule says wrong: judge asked
        ctx.write("raw.jsonl", jsonl_bytes(rows))
        judge = _url(ctx, fault.name, judge=True)
        return Cli(tuple(eval_argv(policy.url, *BOUND, "--judge-url", judge, "--judge-timeout", "3")))

    return Probe(f"eval/judge/{fault.name}", AREA, f"eval: the judge: {fault.what}", OK, build, timeout_s=120)


# ----------------------------------------------------------------------------- secrets


def _secret_probe(name: str, what: str, expect: str, make) -> Probe:
    def build(ctx: Ctx) -> Cli:
        ctx.secret(SECRET)
        ctx.secret(API_KEY)
        ctx.within(60)
        ctx.error_names("127.0.0.1", "sample", "judge", "policy")
        return make(ctx)

    return Probe(f"secrets/{name}", AREA, what, expect, build, timeout_s=120)


PASSWORD_IN_MODEL_URL = (
    ("ok", "ok", "server fine", OK),
    ("500", "http_500", "server answers 500", ERROR),
    ("unreachable", "unreachable", "nothing listens", ERROR),
    ("bad-reply", "not_json", "non-JSON replies", ERROR),
)
"""``eval`` with user:password@ in ``--model-url``: (name suffix, the server's fault, what it does, expect)."""


def _password_in_model_url(suffix: str, fault: str, does: str, expect: str) -> Probe:
    return _secret_probe(
        f"eval-url-{suffix}",
        f"eval with user:password@ in --model-url ({does})",
        expect,
        lambda ctx: Cli(_eval_argv(ctx, _url(ctx, fault, AUTH))),
    )


def _secret_probes() -> list[Probe]:
    return [
        *(_password_in_model_url(*row) for row in PASSWORD_IN_MODEL_URL),
        _secret_probe(
            "eval-api-key-500",
            "eval --api-key SECRET against a server answering 500",
            ERROR,
            lambda ctx: Cli(_eval_argv(ctx, _url(ctx, "http_500"), "--api-key", API_KEY)),
        ),
        _secret_probe(
            "eval-api-key-env",
            "eval with $QWENLONG_EVAL_API_KEY against a server answering 500",
            ERROR,
            lambda ctx: Cli(
                _eval_argv(ctx, _url(ctx, "http_500")), env={"QWENLONG_EVAL_API_KEY": API_KEY}, subprocess=True
            ),
        ),
        _secret_probe(
            "score-judge-url-500",
            "score with user:password@ in --judge-url (judge answers 500)",
            ERROR,
            lambda ctx: Cli(
                (
                    "score",
                    "--input",
                    _wrong_by_rule(ctx),
                    "--judge-url",
                    _url(ctx, "http_500", AUTH),
                    "--output",
                    "scored.jsonl",
                )
            ),
        ),
        _secret_probe(
            "score-judge-env-unreachable",
            "score with user:password@ in $QWENLONG_JUDGE_URLS (unreachable)",
            ERROR,
            lambda ctx: Cli(
                ("score", "--input", _wrong_by_rule(ctx)),
                subprocess=True,
                env={"QWENLONG_JUDGE_URLS": _url(ctx, "unreachable", AUTH)},
            ),
        ),
        _secret_probe(
            "eval-judge-url-500",
            "eval with user:password@ in --judge-url (judge answers 500)",
            OK,
            lambda ctx: Cli(_eval_argv(ctx, _url(ctx, "ok"), "--judge-url", _url(ctx, "http_500", AUTH))),
        ),
    ]


# ----------------------------------------------------------------------------- two evals, one folder


def _two_evals(ctx: Ctx) -> Custom:
    def run(ctx: Ctx) -> Outcome:
        url = serve(ctx, "hang", hang_s=30).url
        argv = eval_argv(url, "--timeout", "20", *NO_RETRY, bench=_bench(ctx))
        first = start(argv, ctx.cwd)
        ctx.on_exit(lambda: (first.kill(), first.wait()))
        deadline = time.monotonic() + 60
        while not ctx.path("ev/.eval.lock").exists() or not ctx.path("ev/.eval.lock").read_text().strip():
            if first.poll() is not None or time.monotonic() > deadline:
                return finish(first, 1)
            time.sleep(0.05)
        second = run_in_process(argv, ctx.cwd)
        first.kill()
        finish(first, 10)
        return second

    return Custom("qwenlong-verl eval ... --out ev   (while another eval runs on ev)", run)


def _two_evals_probe() -> Probe:
    def build(ctx: Ctx) -> Custom:
        ctx.error_names("ev", "another")
        ctx.within(15)
        ctx.output("ev")  # the first eval writes its records there
        return _two_evals(ctx)

    return Probe(
        "eval/folder/two-evals-at-once",
        AREA,
        "a second eval on a folder another eval is running on",
        ERROR,
        build,
        timeout_s=150,
    )


def probes() -> list[Probe]:
    found = [_policy_probe(f) for f in FAULTS]
    found += [_judge_probe(f) for f in FAULTS]
    found += [_judge_probe(Fault("ok", "a judge that answers (control)", OK))]
    found.append(_judge_probe(FAULTS[1], allow=True))
    found += [_eval_judge_probe(f) for f in FAULTS if f.name in ("unreachable", "http_500", "not_json", "hang")]
    found += _secret_probes()
    found.append(_two_evals_probe())
    return found
