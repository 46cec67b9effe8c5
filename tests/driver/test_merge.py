"""The merge step's merge (``python -m qwenlong_verl.driver.merge``): SCE against its definition, on tiny models.

The merged weights are checked against an independent computation of SCE as the module documents it (numpy,
float64), on a hand-computed tensor and on every tensor of two tiny random Qwen2 models; the merged folder must
load in transformers with the base model's config and tokenizer, and appear whole or not at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qwenlong_verl.driver.data.tiny_model import TinyModelSpec, write_tiny_model
from qwenlong_verl.driver.merge import MergeError, MergeSpec, merge_models

SPEC = TinyModelSpec(hidden_size=8, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=16)
NORM = "model.norm.weight"
# the hand-computed tensor: task vectors of the two models on the 8 elements of the final norm
DELTA_A = [1.0, 3.0, -1.0, 0.5, 0, 0, 0, 0]
DELTA_B = [3.0, -1.0, -1.0, 0.5, 0, 0, 0, 0]


def load(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.torch import load_file

    out = {}
    for shard in sorted(folder.glob("*.safetensors")):
        out.update({k: v.double().numpy() for k, v in load_file(shard).items()})
    return out


def set_norm(folder: Path, delta: list[float]) -> None:
    """The model's final norm = 1 + ``delta`` (1 is its value in every tiny model: 1-D weights are not drawn)."""
    import torch
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    weights = load_file(path)
    weights[NORM] = torch.ones(SPEC.hidden_size) + torch.tensor(delta)
    save_file(weights, path, metadata={"format": "pt"})


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A base and two models: random draws of the same shape (other seeds), final norms set by hand."""
    root = tmp_path_factory.mktemp("merge")
    base = write_tiny_model(root / "base", seed=0, spec=SPEC)
    a = write_tiny_model(root / "a", seed=1, spec=SPEC)
    b = write_tiny_model(root / "b", seed=2, spec=SPEC)
    set_norm(a, DELTA_A)
    set_norm(b, DELTA_B)
    return root, base, a, b


def merge(root: Path, base: Path, models: list[Path], name: str, select_topk: float) -> Path:
    spec = MergeSpec(
        method="sce",
        base=str(base),
        models=[str(m) for m in models],
        parameters={"select_topk": select_topk},
        dtype="float32",
        out=str(root / name),
    )
    return merge_models(spec)


def sce_reference(base: np.ndarray, models: list[np.ndarray], select_topk: float) -> np.ndarray:
    """SCE as defined in qwenlong_verl/driver/merge.py, written out directly (no mergekit)."""
    deltas = np.stack([m - base for m in models]).reshape(len(models), -1)
    if select_topk < 1:
        var = deltas.var(axis=0)  # population variance over the models
        k = int(np.count_nonzero(var) * select_topk)
        keep = np.zeros(var.shape, dtype=bool)
        keep[np.argsort(-var, kind="stable")[:k]] = True
        deltas = deltas * keep
    weights = (deltas**2).mean(axis=1)
    weights = weights / weights.sum() if weights.sum() > 1e-6 else np.full(len(models), 1 / len(models))
    majority = np.sign(deltas.sum(axis=0))
    kept = np.sign(deltas) == majority
    w = weights[:, None] * kept
    merged = (w * deltas).sum(axis=0) / np.maximum(w.sum(axis=0), 1e-6)
    return base + merged.reshape(base.shape)


def test_sce_on_a_hand_computed_tensor(models):
    root, base, a, b = models
    # select_topk 1: weights 1/2 each (equal squared sizes); element 1: +3 and -1 sum positive, -1 erased -> 3;
    # elements 0 and 2 agree -> their weighted mean 2 and -1
    full = load(merge(root, base, [a, b], "full", 1.0))
    assert full[NORM] == pytest.approx(1 + np.array([2.0, 3.0, -1.0, 0.5, 0, 0, 0, 0]))
    # select_topk 0.5: two elements have non-zero variance (element 0: 1, element 1: 4): only element 1 stays;
    # then weights 9:1 and the minority -1 erased -> 3; the rest keep the base's 1
    half = load(merge(root, base, [a, b], "half", 0.5))
    assert half[NORM] == pytest.approx(1 + np.array([0, 3.0, 0, 0, 0, 0, 0, 0]))


def test_sce_matches_its_definition_on_every_tensor(models):
    root, base, a, b = models
    weights = [load(p) for p in (base, a, b)]
    merged = load(merge(root, base, [a, b], "all", 1.0))
    assert set(merged) == set(weights[0])
    for name, tensor in merged.items():
        expected = sce_reference(weights[0][name], [weights[1][name], weights[2][name]], 1.0)
        np.testing.assert_allclose(tensor, expected, rtol=1e-5, atol=1e-6, err_msg=name)


def test_select_keeps_the_top_fraction_by_variance(models):
    """With select_topk < 1, exactly that fraction of each tensor moves off the base: the elements whose task
    vectors vary most, each set to the definition's value over the selected elements."""
    root, base, a, b = models
    weights = [load(p) for p in (base, a, b)]
    merged = load(merge(root, base, [a, b], "sparse", 0.3))
    for name, tensor in merged.items():
        base_t = weights[0][name]
        deltas = np.stack([weights[1][name] - base_t, weights[2][name] - base_t]).reshape(2, -1)
        var = deltas.var(axis=0)
        moved = (tensor != base_t).reshape(-1)
        assert moved.sum() == int(np.count_nonzero(var) * 0.3), name
        if moved.any() and (~moved).any():
            assert var[moved].min() >= var[~moved].max() * (1 - 1e-5), name
        masked = [base_t + (d * moved).reshape(base_t.shape) for d in deltas]
        np.testing.assert_allclose(tensor, sce_reference(base_t, masked, 1.0), rtol=1e-5, atol=1e-6, err_msg=name)


def test_the_merged_folder_loads_with_the_base_models_config_and_tokenizer(models):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root, base, a, b = models
    out = merge(root, base, [a, b], "loadable", 1.0)
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    ids = tokenizer("the merged model reads this", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], model.config.vocab_size) and torch.isfinite(logits).all()
    config, base_config = (json.loads((p / "config.json").read_text()) for p in (out, base))
    same = {"architectures", "hidden_size", "num_hidden_layers", "vocab_size", "eos_token_id", "pad_token_id"}
    assert {k: config[k] for k in same} == {k: base_config[k] for k in same}
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (out / name).read_bytes() == (base / name).read_bytes()
    assert not any(p.name.startswith("loadable.") for p in root.iterdir())  # no .partial / .old left


def test_a_killed_merge_leaves_nothing_and_the_next_one_cleans_up(models, tmp_path):
    root, base, a, b = models
    leftover = tmp_path / "out.partial"  # what a merge killed mid-write leaves
    leftover.mkdir()
    (leftover / "model.safetensors").write_text("half written")
    spec = MergeSpec("sce", str(base), [str(a), str(b)], {"select_topk": 1.0}, "float32", str(tmp_path / "out"))
    merge_models(spec)
    assert (tmp_path / "out" / "config.json").is_file() and not leftover.exists()


def test_inputs_that_cannot_merge_are_one_line_and_write_nothing(models, tmp_path):
    root, base, a, b = models
    other = write_tiny_model(tmp_path / "other", seed=3, spec=SPEC)
    config = json.loads((other / "config.json").read_text())
    config["architectures"] = ["LlamaForCausalLM"]
    (other / "config.json").write_text(json.dumps(config))
    spec = MergeSpec("sce", str(base), [str(a), str(other)], {}, "float32", str(tmp_path / "out"))
    with pytest.raises(MergeError, match="different architectures .*LlamaForCausalLM") as caught:
        merge_models(spec)
    assert "\n" not in str(caught.value)
    (tmp_path / "empty").mkdir()
    spec.models = [str(a), str(tmp_path / "empty")]
    with pytest.raises(MergeError, match="empty has no config.json: not a Hugging Face model folder"):
        merge_models(spec)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_the_child_command_train_runs(models, tmp_path):
    root, base, a, b = models
    spec = MergeSpec("sce", str(base), [str(a), str(b)], {"select_topk": 0.5}, "bfloat16", str(tmp_path / "m"))
    run = [sys.executable, "-m", "qwenlong_verl.driver.merge"]
    out = subprocess.run([*run, *spec.args()], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    from safetensors.torch import load_file

    assert json.loads((tmp_path / "m" / "config.json").read_text())["dtype"] == "bfloat16"
    assert {str(t.dtype) for t in load_file(tmp_path / "m" / "model.safetensors").values()} == {"torch.bfloat16"}
    assert load(tmp_path / "m")[NORM] == pytest.approx(1 + np.array([0, 3.0, 0, 0, 0, 0, 0, 0]))
    bad = [*spec.args()[:-2], "--out", str(tmp_path / "n")]
    bad[bad.index("--parameters") + 1] = '{"select_topk": 0}'
    out = subprocess.run([*run, *bad], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "select_topk must be in (0, 1], got 0" in out.stderr
    assert not (tmp_path / "n").exists()
