"""Acceptance of issue 4: synth -> prepare -> per-phase parquet that veRL's own RLHFDataset loads with the builtin
tokenizer on CPU (window = max_prompt_length, no row filtered), and rows our reward scores 1.0 for the gold answer
phrased as a model would."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from qwenlong_verl.driver.data.prepare import prepare
from qwenlong_verl.driver.data.synth import synth
from qwenlong_verl.driver.data.tokenizer import builtin_tokenizer_path

PHASES = [4000, 8000]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("acceptance")
    synth(root / "synth.jsonl", n=18, min_tokens=2000, max_tokens=7900, seed=4)
    stats = prepare([str(root / "synth.jsonl")], str(root / "out"), "builtin", phases=PHASES, workers=1)
    assert stats.rows_written == 18 and not stats.problems
    return root, stats


@pytest.fixture(scope="module")
def verl_tokenizer():
    from verl.utils import hf_tokenizer

    return hf_tokenizer(builtin_tokenizer_path())


def _dataset(files, window, tokenizer, cache_dir):
    from verl.trainer.ppo.utils import create_rl_dataset

    config = OmegaConf.create(
        {
            "max_prompt_length": window,
            "filter_overlong_prompts": True,
            "filter_overlong_prompts_workers": 1,
            "truncation": "error",
            "prompt_key": "prompt",
            "return_raw_chat": True,
            "cache_dir": str(cache_dir),
        }
    )
    return create_rl_dataset(files, config, tokenizer, processor=None)


def test_veRL_RLHFDataset_loads_every_phase_without_filtering(prepared, verl_tokenizer):
    root, stats = prepared
    assert all(p.rows >= 4 for p in stats.phase_stats)  # lengths spread over both windows
    for phase, path in zip(stats.phase_stats, stats.phase_files, strict=True):
        dataset = _dataset([path], phase.max_inclusive, verl_tokenizer, root / "cache")
        assert len(dataset) == phase.rows
        item = dataset[0]
        assert item["index"] == item["extra_info"]["index"]
        assert item["raw_prompt"][0]["role"] == "user" and "<text>" in item["raw_prompt"][0]["content"]
        assert item["extra_info"]["phase"] == phase.phase


def test_recorded_lengths_are_exactly_veRLs(prepared, verl_tokenizer):
    """veRL keeps a row iff its own count <= max_prompt_length: cutting at our longest row minus one drops exactly
    the rows we recorded at that length."""
    root, stats = prepared
    path = stats.phase_files[1]
    lengths = [r["input_tokens"] for r in pq.read_table(path, columns=["extra_info"]).column(0).to_pylist()]
    longest = max(lengths)
    assert len(_dataset([path], longest, verl_tokenizer, root / "cache")) == len(lengths)
    kept = _dataset([path], longest - 1, verl_tokenizer, root / "cache")
    assert len(kept) == len(lengths) - lengths.count(longest)


def test_reward_scores_the_gold_answer_as_a_model_would_phrase_it(prepared, monkeypatch):
    from qwenlong_verl.worker.rewards import compute_score

    for var in ("QWENLONG_JUDGE_URLS", "QWENLONG_JUDGE_MODEL"):
        monkeypatch.delenv(var, raising=False)  # rule-only: the judge is not under test here
    _, stats = prepared
    scored = 0
    for path in stats.phase_files:
        for row in pq.read_table(path).to_pylist():
            gold, info = row["reward_model"]["ground_truth"], row["extra_info"]
            answer = f"<think>\nI add up the figures from the documents.\n</think>\n\nTherefore, the answer is {gold}."
            result = compute_score(row["data_source"], answer, gold, info)
            assert result["score"] == 1.0, (info["source_id"], info["task"], gold, result)
            wrong = "Z" if info["task"] == "choice" else ("-99999.5" if info["task"] == "numeric" else "Nobody Atall")
            miss = compute_score(
                row["data_source"], f"<think>\nhm\n</think>\n\nTherefore, the answer is {wrong}.", gold, info
            )
            assert miss["score"] < 1.0, (info["source_id"], wrong, miss)
            scored += 1
    assert scored == 18
