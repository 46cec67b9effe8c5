"""`sft-data`: QA triplets to veRL's SFT parquet, prompts identical to RL, loaded by veRL's own SFT dataset."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf
from support.sft import DOC, DROPPING_TEMPLATE, RECORDS, write_jsonl

from qwenlong_verl.driver.data.prepare import prepare
from qwenlong_verl.driver.data.sft import SftDataError, clean_trace, convert, response_text
from qwenlong_verl.driver.data.template import build_messages
from qwenlong_verl.driver.data.tokenizer import builtin_tokenizer_path, load_tokenizer

# A DeepSeek-R1-style template: an assistant turn keeps only what follows </think>.


def read_rows(path):
    return pq.read_table(path).to_pylist()


@pytest.fixture
def raw(tmp_path):
    return write_jsonl(tmp_path / "raw.jsonl", RECORDS)


def test_raw_records_become_rl_prompt_plus_answer_turn(raw, tmp_path):
    stats = convert([str(raw)], str(tmp_path / "sft.parquet"))
    rows = read_rows(tmp_path / "sft.parquet")
    assert stats.rows_written == 3 and stats.with_trace == 2 and stats.dropped == {}
    assert stats.tasks == {"choice": 1, "numeric": 1, "qa": 1}

    numeric, qa, choice = rows
    assert numeric["messages"][:-1] == build_messages(DOC, RECORDS[0]["question"], "numeric")
    assert numeric["messages"][-1] == {
        "role": "assistant",
        "content": "<think>The text gives 150 tons for 2021.</think>\n\nTherefore, the answer is 150.",
    }
    # no trace: answer-only turn
    assert qa["messages"][-1]["content"] == "Therefore, the answer is Alice."
    assert qa["extra_info"]["has_trace"] is False
    # choice: option text becomes its letter (what the reward checks); an enclosing <think> block is unwrapped
    assert choice["messages"][-1]["content"] == (
        "<think>The first document says Oslo.</think>\n\nTherefore, the answer is B."
    )
    assert "B. Oslo" in choice["messages"][0]["content"]
    assert [r["extra_info"]["index"] for r in rows] == [0, 1, 2]
    assert [r["extra_info"]["source_id"] for r in rows] == ["n1", "q1", "c1"]
    assert all(r["extra_info"]["num_tokens"] is None for r in rows)  # no tokenizer given


def test_prompts_identical_to_prepared_rl_rows(raw, tmp_path):
    """The SFT user turn is byte-for-byte the RL prompt `prepare` writes, from raw or from prepared rows."""
    prepared = prepare([str(raw)], str(tmp_path / "rl"), tokenizer="builtin", phases=[20000], workers=1, plot=False)
    rl_rows = read_rows(prepared.phase_files[0])
    assert len(rl_rows) == 3

    convert([str(raw)], str(tmp_path / "from_raw.parquet"))
    convert(prepared.phase_files, str(tmp_path / "from_rl.parquet"))
    from_raw = read_rows(tmp_path / "from_raw.parquet")
    from_rl = read_rows(tmp_path / "from_rl.parquet")
    for rl, a, b in zip(rl_rows, from_raw, from_rl, strict=True):
        assert a["messages"][:-1] == rl["prompt"] == b["messages"][:-1]
        # the gold in the answer sentence is the gold the RL reward checks
        assert a["messages"][-1]["content"].endswith(f"{rl['reward_model']['ground_truth']}.")
        assert b["messages"][-1]["content"] == f"Therefore, the answer is {rl['reward_model']['ground_truth']}."


def test_trace_in_prepared_row_extra_info(tmp_path):
    row = {
        "data_source": "docmath_qa",
        "prompt": build_messages(DOC, "How many tons in 2020?", "numeric"),
        "reward_model": {"style": "rule", "ground_truth": "120"},
        "extra_info": {"task": "numeric", "question": "How many tons in 2020?", "reasoning": "It says 120."},
    }
    convert([str(write_jsonl(tmp_path / "rl.jsonl", [row]))], str(tmp_path / "o.parquet"))
    (out,) = read_rows(tmp_path / "o.parquet")
    assert out["messages"][-1]["content"] == "<think>It says 120.</think>\n\nTherefore, the answer is 120."
    assert out["messages"][:-1] == row["prompt"]
    convert([str(tmp_path / "rl.jsonl")], str(tmp_path / "plain.parquet"), traces=False)
    assert read_rows(tmp_path / "plain.parquet")[0]["messages"][-1]["content"] == "Therefore, the answer is 120."


def test_bad_rows_are_named_and_dropped_or_fatal(tmp_path):
    bad = [
        RECORDS[1],
        {"id": "b1", "document": DOC, "question": "", "answer": "1"},
        {"id": "b2", "document": DOC, "question": "Who?"},
        {"id": "b3", "document": DOC, "question": "Which?", "choices": ["a", "b"], "answer": "zebra"},
        {"id": "b4", "document": DOC, "question": "Who?", "answer": "Alice", "reasoning": "so </think> Alice"},
        {"id": "b5", "document": DOC, "question": "Who?", "answer": "Alice", "trace": 7},
    ]
    src = write_jsonl(tmp_path / "bad.jsonl", bad, extra_lines=["{not json\n"])
    stats = convert([str(src)], str(tmp_path / "o.parquet"))
    assert stats.rows_written == 1 and stats.rows_read == 7
    messages = [str(p) for p in stats.problems]
    # the schema's own messages (they may grow hints) are checked by their start; ours exactly
    assert messages[0].startswith(f"{src} row 2: field 'question': empty")
    assert messages[1].startswith(f"{src} row 3: field 'answer': missing")
    assert messages[2].startswith(f"{src} row 4: field 'answer': 'zebra' is neither an option letter")
    assert (
        messages[3]
        == f"{src} row 5: field 'reasoning': holds a stray <think> or </think> tag; give the reasoning text only"
    )
    assert messages[4] == f"{src} row 6: field 'trace': must be text, got int"
    assert messages[5].startswith(f"{src} row 7: field '<line>': not valid JSON")
    assert stats.dropped == {"bad_gold": 1, "bad_trace": 2, "empty": 1, "missing": 1, "unreadable": 1}

    with pytest.raises(SftDataError) as err:
        convert([str(src)], str(tmp_path / "strict.parquet"), strict=True)
    assert "6 bad row(s) (strict mode, nothing written)" in str(err.value)
    assert f"{src} row 5: field 'reasoning'" in str(err.value)
    assert not (tmp_path / "strict.parquet").exists()


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"inputs": []}, "give at least one input file"),
        ({"inputs": ["nope.jsonl"]}, "input file(s) not found: nope.jsonl"),
        ({"output": "x.jsonl"}, "must be a .parquet file"),
        ({"max_length": 100}, "--max-length needs --tokenizer"),
        ({"chat_template": "{{ x }}"}, "--chat-template needs --tokenizer"),
    ],
)
def test_bad_arguments(raw, tmp_path, kwargs, fragment):
    args = {"inputs": [str(raw)], "output": str(tmp_path / "o.parquet"), **kwargs}
    with pytest.raises(SftDataError) as err:
        convert(**args)
    assert fragment in str(err.value)


def test_no_usable_rows(tmp_path):
    src = write_jsonl(tmp_path / "r.jsonl", [{"document": DOC, "question": "q"}])
    with pytest.raises(SftDataError, match="no usable rows"):
        convert([str(src)], str(tmp_path / "o.parquet"))


def test_loads_in_verl_multiturn_sft_dataset_with_exact_lengths(raw, tmp_path):
    """veRL's own SFT dataset reads the file; our token count is its sequence length; loss = the answer turn."""
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    out = tmp_path / "sft.parquet"
    stats = convert([str(raw)], str(out), tokenizer="builtin")
    tokenizer = load_tokenizer("builtin")
    rows = read_rows(out)
    for pad_mode in ("no_padding", "right"):
        config = OmegaConf.create({"max_length": 1024, "pad_mode": pad_mode, "truncation": "error"})
        dataset = MultiTurnSFTDataset([str(out)], tokenizer, config)
        assert len(dataset) == 3
        for i, row in enumerate(rows):
            item = dataset[i]
            mask = item["loss_mask"].bool()
            if pad_mode == "no_padding":
                assert item["input_ids"].shape[0] == row["extra_info"]["num_tokens"]
            else:
                assert int(item["attention_mask"].sum()) == row["extra_info"]["num_tokens"]
            trained = tokenizer.decode(item["input_ids"][mask])
            assert trained == row["messages"][-1]["content"] + "<|im_end|>\n"
    assert stats.tokens["max"] == max(r["extra_info"]["num_tokens"] for r in rows)


def test_max_length_drops_long_chats_naming_them(raw, tmp_path):
    full = convert([str(raw)], str(tmp_path / "all.parquet"), tokenizer="builtin")
    lengths = [r["extra_info"]["num_tokens"] for r in read_rows(tmp_path / "all.parquet")]
    limit = sorted(lengths)[1]
    stats = convert([str(raw)], str(tmp_path / "cut.parquet"), tokenizer="builtin", max_length=limit)
    assert stats.rows_written == 2 and full.rows_written == 3
    longest = lengths.index(max(lengths)) + 1
    assert [str(p) for p in stats.problems] == [
        f"{raw} row {longest}: field 'messages': the chat is {max(lengths)} tokens, longer than --max-length "
        f"{limit} (the SFT data.max_length)"
    ]
    assert max(r["extra_info"]["num_tokens"] for r in read_rows(tmp_path / "cut.parquet")) <= limit


def test_template_that_drops_traces_is_refused(raw, tmp_path):
    folder = tmp_path / "r1_like_tokenizer"
    shutil.copytree(builtin_tokenizer_path(), folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = DROPPING_TEMPLATE
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(SftDataError, match="drops the <think> reasoning"):
        convert([str(raw)], str(tmp_path / "o.parquet"), tokenizer=str(folder))
    # answer-only data is fine with such a template
    assert convert([str(raw)], str(tmp_path / "o.parquet"), tokenizer=str(folder), traces=False).rows_written == 3
    # a replacement template (what model.custom_chat_template carries in training) fixes it
    keeping = load_tokenizer("builtin").chat_template
    stats = convert([str(raw)], str(tmp_path / "o.parquet"), tokenizer=str(folder), chat_template=keeping)
    assert stats.with_trace == 2


def test_response_and_trace_helpers():
    assert response_text("U.S.") == "Therefore, the answer is U.S."
    assert response_text(" 42 ", "why") == "<think>why</think>\n\nTherefore, the answer is 42."
    assert clean_trace("  ") is None and clean_trace(None) is None and clean_trace(float("nan")) is None
    assert clean_trace("<think> a </think>") == "a"
    with pytest.raises(ValueError, match="stray"):
        clean_trace("<think>a")


def test_cli(raw, tmp_path, cli_main):
    out = cli_main("sft-data", "--input", str(raw), "--output", str(tmp_path / "o.parquet"), "--tokenizer", "builtin")
    assert out.returncode == 0, out.stdout + out.stderr
    text = " ".join(out.stdout.split())
    assert (
        f"wrote 3 of 3 rows to {tmp_path / 'o.parquet'} (2 with a reasoning trace; choice 1, numeric 1, qa 1)" in text
    )
    assert "chat tokens: min" in text
    bad = cli_main("sft-data", "--input", str(raw), "--output", str(tmp_path / "o.parquet"), "--max-length", "10")
    assert bad.returncode == 2
    assert "--max-length needs --tokenizer" in bad.stderr


def test_bad_bytes_are_counted_rows_and_a_huge_document_is_not_tokenised(tmp_path):
    good = json.dumps(RECORDS[0]).encode()
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + good + b"\n"  # a BOM does not cost the first row
        + good.replace(b"Oslo", b"\xd8slo") + b"\n"  # latin-1
        + json.dumps({**RECORDS[0], "document": "x \ud800"}).encode() + b"\n"
        + json.dumps({**RECORDS[0], "id": "huge", "document": DOC * 200_000}).encode() + b"\n"
    )  # fmt: skip
    stats = convert([str(path)], str(tmp_path / "o.parquet"), tokenizer="builtin", max_length=2048)
    assert (stats.rows_read, stats.rows_written) == (4, 1)
    assert stats.dropped == {"not_text": 1, "not_utf8": 1, "too_long": 1}
    assert "characters, more than a prompt within the token limit can hold" in str(stats.problems[-1])
    with pytest.raises(SftDataError, match=r"2 bad row\(s\)"):  # without a tokenizer, no length limit
        convert([str(path)], str(tmp_path / "s.parquet"), strict=True)


@pytest.mark.parametrize("max_length", [0, -3, 1.5, True])
def test_max_length_must_be_a_positive_whole_number(raw, tmp_path, max_length):
    with pytest.raises(SftDataError, match=f"--max-length .*positive whole number, got {max_length!r}"):
        convert([str(raw)], str(tmp_path / "o.parquet"), tokenizer="builtin", max_length=max_length)
