"""Recipe schema: valid recipes load, bad ones fail naming the key."""

from __future__ import annotations

import copy

import pytest

from qwenlong_verl.recipe import RecipeError, load_recipe, parse_recipe

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
