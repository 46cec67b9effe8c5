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


def test_a_key_given_twice_is_refused_not_silently_the_last(tmp_path):
    twice = tmp_path / "twice.yaml"
    twice.write_text(
        "name: a\nmodel_path: /m\nphases:\n  - {name: p1, max_prompt_length: 8, max_response_length: 4}\n"
        "phases:\n  - {name: p2, max_prompt_length: 8, max_response_length: 4}\n"
    )
    with pytest.raises(RecipeError, match=r"twice\.yaml: not valid YAML: key 'phases' given twice.*line 5"):
        load_recipe(twice)
    merged = tmp_path / "merged.yaml"  # a merge key that a mapping then overrides is YAML's own, not a duplicate
    merged.write_text(
        "base: &b {max_prompt_length: 8, max_response_length: 4}\nname: a\nmodel_path: /m\n"
        "phases:\n  - {<<: *b, name: p1, max_response_length: 2}\n"
    )
    with pytest.raises(RecipeError, match=r"unknown key\(s\): base"):  # parsed as YAML; the recipe check follows
        load_recipe(merged)


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
    return changed(CURRICULUM, **changes)


def changed(base: dict, **changes) -> dict:
    """A deep copy of ``base`` with ``a__0__b=value`` paths set (``DELETE``: removed)."""
    data = copy.deepcopy(base)
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
        ({"phases__1__min_input_tokens": 3000}, "phases[1] (long): min_input_tokens must be in [0, 3000)"),
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
        parse_recipe(copy.deepcopy(data), "s.yaml")
    # synth's task labels and corpus mode, checked at plan time with synth's own messages
    data["data"]["synth"] = {"n": 5, "labels": ["multi_hop", "nope"]}
    with pytest.raises(RecipeError, match=r"data.synth: .*nope"):
        parse_recipe(copy.deepcopy(data), "s.yaml")
    data["data"]["synth"] = {"n": 5, "docs": 40}
    with pytest.raises(RecipeError, match=r"data.synth: docs 40 sets the documents of corpus examples; add corpus"):
        parse_recipe(copy.deepcopy(data), "s.yaml")
    data["data"]["synth"] = {
        "n": 5,
        "labels": ["all"],
        "corpus": True,
        "docs": 40,
        "min_tokens": 20000,
        "max_tokens": 30000,
    }
    synth = parse_recipe(data, "s.yaml").data.synth
    kwargs = synth.synth_kwargs()
    assert kwargs["labels"] == ["all"] and kwargs["corpus"].active and kwargs["corpus"].n_docs == 40


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


# ----------------------------------------------------------------------------- phases of several kinds in one recipe

PIPELINE = {
    "name": "pipe",
    "model_path": "/models/tiny",
    "output_dir": "runs/pipe",
    "data": {"inputs": ["raw.jsonl"], "tokenizer": "builtin"},
    "phases": [
        {"name": "s1", "max_prompt_length": 2000, "max_response_length": 500, "total_training_steps": 2},
        {"name": "s2", "max_prompt_length": 4000, "max_response_length": 500, "total_training_steps": 2},
        {
            "name": "mem",
            "kind": "memory",
            "max_input_tokens": 8000,
            "chunk_tokens": 2000,
            "memory_tokens": 500,
            "total_training_steps": 2,
        },
        {"name": "fuse", "kind": "merge", "models": ["s2", "mem"], "parameters": {"select_topk": 0.5}},
        {"name": "s3", "max_prompt_length": 4000, "max_response_length": 500, "total_training_steps": 2},
    ],
}


def pipeline(**changes):
    return changed(PIPELINE, **changes)


def test_a_recipe_mixes_kinds_and_each_phase_reads_its_input_range():
    from qwenlong_verl.driver import layout
    from qwenlong_verl.driver.recipe import MemoryPhaseConfig, MergeStepConfig

    r = parse_recipe(pipeline(), "p.yaml")
    assert [p.kind for p in r.phases] == ["rl", "rl", "memory", "merge", "rl"]
    mem, fuse = r.phases[2], r.phases[3]
    assert isinstance(mem, MemoryPhaseConfig) and isinstance(fuse, MergeStepConfig)
    # one step of the agent: a chunk, the memory and the question room in; the new memory out; 4 chunks of 2000
    assert (mem.max_prompt_length, mem.max_response_length, mem.max_chunks) == (2000 + 500 + 2048, 500, 4)
    assert (fuse.method, fuse.base, fuse.dtype, fuse.parameters) == ("sce", "", "bfloat16", {"select_topk": 0.5})
    assert r.data_phases() == [0, 1, 2, 4]
    # bins at every window; the memory phase reads what is longer than the full-context windows, s3 shares s2's
    assert r.data_cuts() == [2000, 4000, 8000]
    assert [r.input_range(i) for i in r.data_phases()] == [(0, 2000), (2000, 4000), (4000, 8000), (2000, 4000)]
    assert [layout.own_train_files(r, i) for i in r.data_phases()] == [
        ["runs/pipe/data/phase1.parquet"],
        ["runs/pipe/data/phase2.parquet"],
        ["runs/pipe/data/phase3.parquet"],
        ["runs/pipe/data/phase2.parquet"],
    ]
    assert str(layout.merged_model_dir(r, 3)) == "runs/pipe/fuse/actor_hf"
    # min_input_tokens widens a phase's range: a cut there, the memory phase reads three bins
    r = parse_recipe(pipeline(phases__2__min_input_tokens=3000), "p.yaml")
    assert r.data_cuts() == [2000, 3000, 4000, 8000]
    assert r.data_bins(2) == [3, 4] and r.data_bins(1) == [2, 3] and r.data_bins(4) == [2, 3]
    # the recipe's kind is every phase's default
    r = parse_recipe({**pipeline(), "kind": "memory", "phases": [pipeline()["phases"][2]]}, "p.yaml")
    assert r.phases[0].kind == "memory" and r.base_config == "qwenlong_l1"
    # retrospective carries only from phases whose inputs fit: not from the memory phase into s3
    r = parse_recipe(pipeline(phases__4__retrospective=True), "p.yaml")
    assert r.carry_sources(4) == [0, 1]


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"phases__1__kind": "grpo"}, "phases[1].kind 'grpo' must be one of rl, memory, merge, sft"),
        ({"kind": "ppo"}, "kind 'ppo' must be one of rl, memory, merge, sft"),
        (
            {"phases": [PIPELINE["phases"][3], *PIPELINE["phases"][:3]]},
            "phases[0] (fuse): a kind: merge step combines models of earlier phases, so it cannot come first",
        ),
        ({"phases__3__models": ["s2", "s3"]}, "phases[3] (fuse): models names 's3', which comes after this step"),
        ({"phases__3__models": ["s2", "fuse"]}, "models names 'fuse', which comes as this step"),
        (
            {"phases__3__models": ["s2", "s9"]},
            "models names 's9', no phase of this recipe (phases: s1, s2, mem, fuse, s3)",
        ),
        ({"phases__3__base": "s3"}, "base names 's3', which comes after this step"),
        ({"phases__3__models": ["mem"]}, "models must name at least two different earlier phases, got ['mem']"),
        ({"phases__3__models": ["mem", "mem"]}, "models must name at least two different earlier phases"),
        ({"phases__3__method": "ties"}, "phases[3] (fuse): method 'ties' must be one of sce"),
        ({"phases__3__parameters": {"select_topk": 0}}, "phases[3] (fuse): parameters.select_topk must be in (0, 1]"),
        ({"phases__3__parameters": {"topk": 0.1}}, "unknown key(s): phases[3].parameters.topk; allowed: select_topk"),
        ({"phases__3__parameters": {"select_topk": "most"}}, "phases[3].parameters.select_topk must be a number"),
        ({"phases__3__dtype": "int8"}, "dtype 'int8' must be one of bfloat16, float16, float32"),
        ({"phases__3__max_prompt_length": 10}, "unknown key(s): phases[3].max_prompt_length"),
        ({"phases__3__models": DELETE}, "missing required key 'phases[3].models'"),
        ({"phases__1__kind": "sft"}, "a kind: sft phase is a recipe of its own, but this one mixes it with rl"),
        ({"phases__2__chunk_tokens": DELETE}, "missing required key 'phases[2].chunk_tokens'"),
        ({"phases__2__max_prompt_length": 4000}, "phases[2].max_prompt_length: a kind: memory phase derives it"),
        ({"phases__2__chunk_tokens": 0}, "phases[2] (mem): chunk_tokens must be >= 1, got 0"),
        ({"phases__2__chunk_tokens": 8000}, "chunk_tokens 8000 >= max_input_tokens 8000: every input fits one chunk"),
        ({"phases__2__memory_tokens": 2000}, "memory_tokens 2000 must be below chunk_tokens 2000"),
        (
            {"phases__2__max_chunks": 3},
            "max_chunks 3 x chunk_tokens 2000 cannot read an input of max_input_tokens 8000",
        ),
        (
            {"phases": [*PIPELINE["phases"][:3], {**PIPELINE["phases"][2], "name": "mem2", "max_input_tokens": 6000}]},
            "phases[3] (mem2): max_input_tokens 6000 is below the previous memory phase's 8000",
        ),
        ({"phases__4__max_prompt_length": 3000}, "max_prompt_length 3000 is below the previous rl phase's 4000"),
        (
            {"phases__2__overrides": {"qwenlong.memory.chunk_tokens": 10}},
            "phases[2].overrides sets qwenlong.memory.chunk_tokens; use the phase's chunk_tokens instead",
        ),
        (
            {"phases__2__overrides": {"actor_rollout_ref.rollout.agent.default_agent_loop": "single_turn_agent"}},
            "sets actor_rollout_ref.rollout.agent.default_agent_loop; use kind: memory instead",
        ),
        ({"phases__2__min_input_tokens": 8000}, "phases[2] (mem): min_input_tokens must be in [0, 8000)"),
        (
            {"phases": [{**PIPELINE["phases"][2], "retrospective": True}, PIPELINE["phases"][0]]},
            "phases[0] (mem): retrospective needs earlier phases to carry from; the first has none",
        ),
        (
            {"phases": [PIPELINE["phases"][2], {**PIPELINE["phases"][0], "retrospective": True}]},
            "phases[1] (s1): retrospective needs earlier phases to carry from; none before it has inputs that fit",
        ),
    ],
)
def test_impossible_sequences_and_budgets_fail_in_one_line(changes, fragment):
    with pytest.raises(RecipeError) as err:
        parse_recipe(pipeline(**changes), "p.yaml")
    assert fragment in str(err.value)
    assert str(err.value).startswith("p.yaml") and "\n" not in str(err.value)
