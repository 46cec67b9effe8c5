"""Recipes: hostile recipe files through ``plan`` and ``train --dry-run``, most of them edited copies of a
shipped recipe written by ``qwenlong-verl recipes copy``; and the ``recipes`` command's own arguments.

A recipe is refused at plan time with one line naming the file and the key (README "Recipes"); the shipped
recipes plan cleanly (the controls).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from probes.core import ERROR, OK, Cli, Ctx, Probe, Scene, run_in_process

AREA = "recipes"
BASE = "cpu_smoke"
"""The shipped recipe the hostile copies start from (it builds its own data, so ``train --dry-run`` runs whole)."""


def copy_recipe(ctx: Ctx, name: str = BASE) -> dict:
    """``qwenlong-verl recipes copy NAME .`` in the probe folder; the copy as a mapping to edit."""
    import yaml

    outcome = run_in_process(["recipes", "copy", name, "."], ctx.root)
    if outcome.rc != 0:
        raise RuntimeError(f"recipes copy failed: {outcome.stderr}")
    return yaml.safe_load(ctx.path(f"{name}.yaml").read_text())


def write_recipe(ctx: Ctx, data: dict, name: str = "hostile.yaml") -> str:
    import yaml

    ctx.write(name, yaml.safe_dump(data, sort_keys=False))
    return name


@dataclass(frozen=True)
class RecipeKind(Scene):
    """``make(ctx) -> recipe argument`` (a file it wrote, or a name), given to each of ``commands``."""

    names: tuple[str, ...] = ("hostile.yaml",)
    commands: tuple[str, ...] = ("plan", "train")


def edited(edit: Callable[[dict], None]) -> Callable[[Ctx], str]:
    """A copy of the base recipe with ``edit`` applied to its mapping."""

    def make(ctx: Ctx) -> str:
        data = copy_recipe(ctx)
        edit(data)
        return write_recipe(ctx, data)

    return make


def raw(content: bytes | str, name: str = "hostile.yaml") -> Callable[[Ctx], str]:
    def make(ctx: Ctx) -> str:
        ctx.write(name, content)
        return name

    return make


def _set_override(key: str, value) -> Callable[[dict], None]:
    return lambda d: d.setdefault("overrides", {}).__setitem__(key, value)


def _set_phase(index: int, key: str, value) -> Callable[[dict], None]:
    return lambda d: d["phases"][index].__setitem__(key, value)


def _binary(ctx: Ctx) -> str:
    rng = random.Random(7)
    return raw(bytes(rng.randrange(256) for _ in range(4096)))(ctx)


def _non_utf8(ctx: Ctx) -> str:
    """The copy's own text, one latin-1 byte in its description."""
    copy_recipe(ctx)
    data = ctx.path(f"{BASE}.yaml").read_bytes().replace(b"description: tiny", b"description: t\xe9ny", 1)
    return raw(data)(ctx)


def _billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{cur}: &{cur} [{','.join(['*' + prev] * 9)}]")
    return "\n".join(["name: bomb", "model_path: tiny", *lines, "phases: *i", ""])


def _huge(ctx: Ctx) -> str:
    """The copy with a 50 MB description (written as text: a YAML dump of it would take minutes)."""
    copy_recipe(ctx)
    text = ctx.path(f"{BASE}.yaml").read_bytes()
    return raw(text + b"\n# " + b"x" * (50 * 2**20) + b"\n")(ctx)


def _duplicate_key(ctx: Ctx) -> str:
    copy_recipe(ctx)
    text = ctx.path(f"{BASE}.yaml").read_text()
    return raw(text.replace("name: cpu_smoke\n", "name: cpu_smoke\nname: other_name\n", 1))(ctx)


def _python_tag(ctx: Ctx) -> str:
    ctx.check(lambda c, o: "a YAML tag ran code: PWNED exists" if c.path("PWNED").exists() else None)
    return raw('name: !!python/object/apply:os.system ["touch PWNED"]\nmodel_path: tiny\nphases: []\n')(ctx)


def _folder(ctx: Ctx) -> str:
    ctx.path("hostile.yaml").mkdir()
    return "hostile.yaml"


def _clean_copy(ctx: Ctx) -> str:
    copy_recipe(ctx)
    return f"{BASE}.yaml"


def _two(d: dict) -> None:
    d["phases"][1]["name"] = d["phases"][0]["name"]


RECIPE_KINDS = (
    RecipeKind("missing-file", "a recipe file that does not exist", lambda ctx: "nope.yaml", ("nope.yaml",)),
    RecipeKind(
        "unknown-name", "a shipped-recipe name that does not exist", lambda ctx: "no_such_recipe", ("no_such_recipe",)
    ),
    RecipeKind("a-folder", "a folder named like a recipe", _folder),
    RecipeKind("binary", "4 KB of random bytes", _binary),
    RecipeKind("non-utf8", "a latin-1 byte in the description", _non_utf8),
    RecipeKind("empty", "an empty file", raw(b"")),
    RecipeKind("top-level-list", "a YAML list, not a mapping", raw("- name: a\n- name: b\n")),
    RecipeKind("top-level-scalar", "a bare number", raw("42\n")),
    RecipeKind("yaml-syntax", "an unclosed bracket", raw("name: [unclosed\nphases: []\n")),
    RecipeKind(
        "unknown-key", "a misspelt top-level key (nmae)", edited(lambda d: d.__setitem__("nmae", "x")), ("nmae",)
    ),
    RecipeKind(
        "unknown-phase-key",
        "a misspelt phase key (max_prompt_lenght)",
        edited(_set_phase(0, "max_prompt_lenght", 4096)),
        ("max_prompt_lenght",),
    ),
    RecipeKind(
        "batch-size-eight",
        'overrides data.train_batch_size: "eight"',
        edited(_set_override("data.train_batch_size", "eight")),
        ("data.train_batch_size", "eight"),
    ),
    RecipeKind(
        "env-interpolation-int",
        "overrides data.train_batch_size: ${oc.env:HOME}",
        edited(_set_override("data.train_batch_size", "${oc.env:HOME}")),
        ("data.train_batch_size", "train_batch_size", "oc.env"),
    ),
    RecipeKind(
        "unresolvable-interpolation",
        "overrides trainer.project_name: ${nope.key}",
        edited(_set_override("trainer.project_name", "${nope.key}")),
        ("nope.key", "project_name"),
    ),
    RecipeKind(
        "misspelt-verl-key",
        "overrides trainer.totl_epochs: 3",
        edited(_set_override("trainer.totl_epochs", 3)),
        ("trainer.totl_epochs", "totl_epochs"),
    ),
    RecipeKind("alias-bomb", "a YAML alias bomb (a billion laughs)", raw(_billion_laughs()), within_s=10),
    RecipeKind("fifty-mb", "a 50 MB recipe", _huge, within_s=10),
    RecipeKind(
        "negative-prompt-length",
        "max_prompt_length: -5",
        edited(_set_phase(0, "max_prompt_length", -5)),
        ("max_prompt_length",),
    ),
    RecipeKind(
        "negative-response-length",
        "max_response_length: -1",
        edited(_set_phase(1, "max_response_length", -1)),
        ("max_response_length",),
    ),
    RecipeKind(
        "string-length",
        'max_prompt_length: "lots"',
        edited(_set_phase(0, "max_prompt_length", "lots")),
        ("max_prompt_length",),
    ),
    RecipeKind(
        "zero-steps",
        "total_training_steps: 0",
        edited(_set_phase(0, "total_training_steps", 0)),
        ("total_training_steps",),
    ),
    RecipeKind("unknown-phase-kind", "kind: foo", edited(_set_phase(0, "kind", "foo")), ("foo", "kind")),
    RecipeKind("no-phases", "phases: []", edited(lambda d: d.__setitem__("phases", [])), ("phases",)),
    RecipeKind("phases-not-a-list", 'phases: "abc"', edited(lambda d: d.__setitem__("phases", "abc")), ("phases",)),
    RecipeKind("duplicate-phase-names", "two phases named alike", edited(_two), ("phase1",)),
    RecipeKind(
        "bool-as-text",
        'task_balance: "yes please"',
        edited(_set_phase(0, "task_balance", "yes please")),
        ("task_balance",),
    ),
    RecipeKind(
        "ratio-fifty",
        "retrospective ratio 50 (at most 10)",
        edited(_set_phase(1, "retrospective", {"ratio": 50})),
        ("ratio",),
    ),
    RecipeKind(
        "unknown-base-config",
        "base_config: nope",
        edited(lambda d: d.__setitem__("base_config", "nope")),
        ("nope", "base_config"),
    ),
    RecipeKind("non-string-key", "a key that is a number", edited(lambda d: d.__setitem__(5, "x")), ("5",)),
    RecipeKind("duplicate-key", "the key name given twice (YAML keeps the last silently)", _duplicate_key, ("name",)),
    RecipeKind("python-tag", "a !!python/object/apply tag", _python_tag),
    RecipeKind("control-clean-copy", "an unedited copy (control)", _clean_copy, expect=OK),
    RecipeKind("control-shipped", "the shipped recipe by name (control)", lambda ctx: BASE, expect=OK),
)


def _recipe_probe(command: str, kind: RecipeKind) -> Probe:
    def build(ctx: Ctx) -> Cli:
        recipe = kind.set_up(ctx)
        argv = ["plan", recipe] if command == "plan" else ["train", recipe, "--dry-run"]
        return Cli(tuple(argv))

    return Probe(f"{command}/recipe/{kind.name}", AREA, f"{command}: {kind.what}", kind.expect, build, timeout_s=120)


def _shipped_plan(name: str) -> Probe:
    def build(ctx: Ctx) -> Cli:
        return Cli(("plan", name))

    return Probe(f"plan/recipe/shipped-{name}", AREA, f"plan {name} (control)", OK, build, timeout_s=120)


RECIPES_COMMAND = (
    ("copy-unknown", "recipes copy of a name not shipped", ["recipes", "copy", "nope", "."], ERROR, ("nope",)),
    ("copy-no-dir", "recipes copy without DIR", ["recipes", "copy", BASE], ERROR, ("DIR",)),
    ("list-with-extra", "recipes list with a stray NAME", ["recipes", "list", BASE], ERROR, (BASE, "NAME")),
    ("unknown-action", "recipes frobnicate", ["recipes", "frobnicate"], ERROR, ("frobnicate",)),
    ("copy-over-copy", "recipes copy over an earlier copy without --force", None, ERROR, (f"{BASE}.yaml", "--force")),
    ("copy-force", "recipes copy --force over an earlier copy", None, OK, ()),
)


def _recipes_command(name: str, what: str, argv: list[str] | None, expect: str, names: tuple[str, ...]) -> Probe:
    def build(ctx: Ctx) -> Cli:
        ctx.error_names(*names)
        if argv is not None:
            return Cli(tuple(argv))
        copy_recipe(ctx)
        ctx.write(f"{BASE}.yaml", ctx.path(f"{BASE}.yaml").read_text() + "# my edits\n")
        if expect == OK:
            ctx.output(f"{BASE}.yaml")
            ctx.output(f"{BASE}.sh")
            return Cli(("recipes", "copy", BASE, ".", "--force"))
        return Cli(("recipes", "copy", BASE, "."))

    return Probe(f"recipes/{name}", AREA, what, expect, build)


def probes() -> list[Probe]:
    found = [_recipe_probe(c, k) for k in RECIPE_KINDS for c in k.commands]
    found.append(_shipped_plan("smoke_1gpu"))
    found += [_recipes_command(*row) for row in RECIPES_COMMAND]
    return found
