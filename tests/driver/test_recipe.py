"""Recipe schema: valid recipes load, bad ones fail naming the key."""

from __future__ import annotations

import copy

import pytest

from qwenlong_verl.driver.recipe import RecipeError, load_recipe, parse_recipe

BASE = {
    "name": "t",
    "model_path": "/models/tiny",
    "phases": [
        {
            "name": "p1",
            "max_prompt_length": 1000,
            "max_response_length": 500,
            "total_training_steps": 2,
            "train_files": ["a.parquet"],
        },
        {
            "name": "p2",
            "max_prompt_length": 2000,
            "max_response_length": 500,
            "total_epochs": 1,
            "train_files": ["b.parquet"],
        },
    ],
}


def mutate(**changes):
    data = copy.deepcopy(BASE)
    for path, value in changes.items():
        node = data
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[int(k)] if k.isdigit() else node[k]
        node[keys[-1]] = value
    return data


def test_valid_recipe_defaults():
    r = parse_recipe(copy.deepcopy(BASE), "x.yaml")
    assert r.output_dir == "outputs/t"
    assert r.base_config == "qwenlong_l1"
    assert r.phase("p2").total_epochs == 1
    assert r.phases[0].val_files == []


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"modelpath": "x"}, "modelpath (did you mean 'model_path'?)"),
        ({"phases__0__max_promt_length": 5}, "phases[0].max_promt_length (did you mean 'max_prompt_length'?)"),
        ({"phases__0__max_prompt_length": "big"}, "phases[0].max_prompt_length must be an integer"),
        ({"phases__1__total_training_steps": 3}, "set exactly one of total_training_steps or total_epochs"),
        ({"phases__1__max_prompt_length": 10}, "must not shrink"),
        ({"phases__1__name": "p1"}, "duplicate phase name"),
        ({"phases": []}, "'phases' must be a non-empty list"),
        ({"phases__0__overrides": {"data.max_prompt_length": 3}}, "sets data.max_prompt_length"),
        ({"name": "bad name"}, "name 'bad name'"),
    ],
)
def test_bad_recipes_name_the_key(changes, fragment):
    with pytest.raises(RecipeError) as err:
        parse_recipe(mutate(**changes), "r.yaml")
    assert fragment in str(err.value)
    assert str(err.value).startswith("r.yaml")


def test_missing_required_key():
    data = copy.deepcopy(BASE)
    del data["model_path"]
    with pytest.raises(RecipeError, match="missing required key 'model_path'"):
        parse_recipe(data, "r.yaml")


def test_load_recipe_errors(tmp_path):
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(bad)


# ----------------------------------------------------------------------------- curriculum additions (docs/curriculum.md)

CURRICULUM = {
    "name": "c",
    "model_path": "/models/tiny",
    "output_dir": "runs/c",
    "data": {"inputs": ["raw.jsonl"], "tokenizer": "builtin", "val_size": 8},
    "phases": [
        {
            "name": "short",
            "max_prompt_length": 1000,
            "max_response_length": 500,
            "total_training_steps": 2,
            "task_balance": True,
        },
        {
            "name": "long",
            "max_prompt_length": 3000,
            "max_response_length": 500,
            "total_training_steps": 2,
            "retrospective": {"ratio": 0.5, "weighting": "uniform", "drop_solved": False, "seed": 3},
        },
        {
            "name": "longer",
            "max_prompt_length": 6000,
            "max_response_length": 500,
            "total_training_steps": 2,
            "retrospective": True,
            "train_files": ["mine.parquet"],
            "val_files": ["v.parquet"],
        },
    ],
}


def test_curriculum_keys_and_where_each_phase_reads_its_data():
    from qwenlong_verl.driver import layout
    from qwenlong_verl.driver.recipe import RetrospectiveConfig

    r = parse_recipe(copy.deepcopy(CURRICULUM), "c.yaml")
    assert r.data.inputs == ["raw.jsonl"] and r.data.val_size == 8 and r.data.apply_chat_template_kwargs == {}
    short, long, longer = r.phases
    assert short.task_balance and short.retrospective is None and not long.task_balance
    assert long.retrospective == RetrospectiveConfig(ratio=0.5, weighting="uniform", drop_solved=False, seed=3)
    assert longer.retrospective == RetrospectiveConfig()  # `true`: the defaults (ratio 0.25, difficulty, ...)
    # phase 1: its prepare bin minus the validation hold-out, built by `train`
    assert layout.own_train_files(r, 0) == ["runs/c/data/phase1.parquet"]
    assert layout.train_files(r, 0) == ["runs/c/short/data/train.parquet"]
    assert layout.val_files(r, 0) == ["runs/c/short/data/val.parquet"]
    assert layout.train_files(r, 1) == ["runs/c/long/data/train.parquet"]
    # explicit files win over the data section; a retrospective phase still gets its own built file
    assert layout.own_train_files(r, 2) == ["mine.parquet"] and layout.val_files(r, 2) == ["v.parquet"]
    assert layout.train_files(r, 2) == ["runs/c/longer/data/train.parquet"]
    assert str(layout.checkpoint_dir(r, 1)) == "runs/c/long/checkpoints"
    assert str(layout.merged_model_dir(r, 1)) == "runs/c/long/actor_hf"
    assert layout.curriculum_overrides(r, 1) == {
        "trainer.v1.trainer_mode": "qwenlong",
        "qwenlong.curriculum.phase": "long",
        "qwenlong.curriculum.phase_number": 2,
        "qwenlong.curriculum.task_balance": False,
        "qwenlong.curriculum.metrics_path": "runs/c/long/metrics.jsonl",
    }


def test_explicit_files_without_a_data_section_are_used_as_they_are():
    from qwenlong_verl.driver import layout

    r = parse_recipe(copy.deepcopy(BASE), "x.yaml")
    assert layout.train_files(r, 1) == ["b.parquet"] and layout.val_files(r, 1) == ["b.parquet"]


def curriculum(**changes):
    data = copy.deepcopy(CURRICULUM)
    for path, value in changes.items():
        node = data
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[int(k)] if k.isdigit() else node[k]
        if value is DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return data


DELETE = object()


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"phases__0__retrospective": {"ratio": 0.5}}, "phases[0] (short): retrospective needs earlier phases"),
        ({"phases__1__retrospective": {"ratio": 0}}, "retrospective.ratio must be in (0, 10], got 0.0"),
        ({"phases__1__retrospective": {"ratio": "a lot"}}, "phases[1].retrospective.ratio must be a number"),
        ({"phases__1__retrospective": {"weighting": "hardness"}}, "weighting must be one of difficulty, uniform"),
        ({"phases__1__retrospective": {"ratoi": 0.2}}, "phases[1].retrospective.ratoi (did you mean 'ratio'?)"),
        ({"phases__1__retrospective": "yes"}, "phases[1].retrospective must be a mapping"),
        ({"phases__0__task_balance": "yes"}, "phases[0].task_balance must be true or false"),
        ({"data__inputs": []}, "data: needs inputs (source files for prepare) or synth"),
        ({"data__inptus": ["x"]}, "data.inptus (did you mean 'inputs'?)"),
        ({"data__val_size": -1}, "data.val_size must be >= 0"),
        ({"phases__1__max_prompt_length": 1000}, "with a data: section the phases' max_prompt_length must strictly"),
        ({"data": DELETE}, "phases[0] (short): no train_files; list the phase's parquet files or add a recipe-level"),
        (
            {"overrides": {"trainer.v1.trainer_mode": "sync"}},
            "overrides sets trainer.v1.trainer_mode=sync, but phase short needs the qwenlong mode",
        ),
    ],
)
def test_bad_curriculum_settings_name_the_key(changes, fragment):
    with pytest.raises(RecipeError) as err:
        parse_recipe(curriculum(**changes), "c.yaml")
    assert fragment in str(err.value)
    assert str(err.value).startswith("c.yaml")


def test_plain_sync_mode_stays_possible_without_curriculum_features():
    data = copy.deepcopy(BASE)
    data["overrides"] = {"trainer.v1.trainer_mode": "sync"}
    assert parse_recipe(data, "x.yaml").overrides["trainer.v1.trainer_mode"] == "sync"


def test_generated_data_and_a_tiny_model_need_no_files():
    from qwenlong_verl.driver import layout
    from qwenlong_verl.driver.recipe import RecipeSynthConfig

    data = copy.deepcopy(CURRICULUM)
    data["model_path"] = "tiny-answers"
    data["data"] = {"synth": {"n": 12, "min_tokens": 1500, "max_tokens": 2000, "tasks": ["choice"]}}
    r = parse_recipe(data, "s.yaml")
    assert r.data.inputs == [] and r.data.synth == RecipeSynthConfig(
        n=12, min_tokens=1500, max_tokens=2000, tasks=["choice"]
    )
    assert layout.start_model_path(r) == "runs/c/tiny_model"
    data["data"]["synth"]["min_tokens"] = 3000
    with pytest.raises(RecipeError, match=r"data.synth: max_tokens \(2000\) must not be smaller than min_tokens"):
        parse_recipe(copy.deepcopy(data), "s.yaml")
    data["data"]["synth"] = {"n": 3, "maxtokens": 9}
    with pytest.raises(RecipeError, match=r"data.synth.maxtokens \(did you mean 'max_tokens'\?\)"):
        parse_recipe(data, "s.yaml")


def test_one_tracker_key_sets_veRLs_logger_and_needs_its_package(tmp_path):
    """``tracker:`` is the one key for metrics beyond the console; its package is checked where `train` runs it."""
    import configparser
    import importlib.util

    from support import ROOT
    from support.recipes import one_phase_recipe

    from qwenlong_verl.driver.plan import plan_phase
    from qwenlong_verl.driver.recipe import TRACKERS

    extras = configparser.ConfigParser()
    extras.read(ROOT / "setup.cfg")
    assert {t for t, module in TRACKERS.items() if module} <= set(extras["options.extras_require"])

    plain = plan_phase(parse_recipe(one_phase_recipe(), "r.yaml"), 0)
    assert list(plain.config.trainer.logger) == ["console"]
    for tracker in ("mlflow", "tensorboard"):
        plan = plan_phase(parse_recipe({**one_phase_recipe(), "tracker": tracker}, "r.yaml"), 0)
        assert list(plan.config.trainer.logger) == ["console", tracker]
        problems = plan.kind.train_problems(plan.config)
        installed = importlib.util.find_spec(TRACKERS[tracker]) is not None
        assert any(f"pip install -e '.[{tracker}]'" in p for p in problems) == (not installed)
    with pytest.raises(RecipeError, match="tracker 'comet' must be one of console, tensorboard"):
        parse_recipe({**one_phase_recipe(), "tracker": "comet"}, "r.yaml")
    with pytest.raises(RecipeError, match="overrides sets trainer.logger; use the recipe's tracker instead"):
        parse_recipe(one_phase_recipe(**{"trainer.logger": ["console"]}), "r.yaml")


@pytest.mark.parametrize(
    "model_path, given, counted",
    [
        ("Qwen/Qwen2.5-7B-Instruct", None, "Qwen/Qwen2.5-7B-Instruct"),  # the model's own, never builtin silently
        ("tiny-answers", None, "builtin"),  # the tiny models are built on the builtin tokenizer
        ("tiny", None, "builtin"),
        ("/models/policy", "/models/policy-tokenizer", "/models/policy-tokenizer"),
        ("/models/policy", "builtin", "builtin"),  # only by its explicit name
    ],
)
def test_data_tokenizer_defaults_to_the_model(model_path, given, counted):
    from qwenlong_verl.driver.recipe import parse_recipe

    data = {"synth": {"n": 3}, **({"tokenizer": given} if given else {})}
    raw = {
        "name": "t",
        "model_path": model_path,
        "data": data,
        "phases": [{"name": "p1", "max_prompt_length": 1000, "max_response_length": 8, "total_training_steps": 1}],
    }
    recipe = parse_recipe(raw, "t.yaml")
    assert recipe.data.tokenizer == counted == recipe.data_tokenizer
