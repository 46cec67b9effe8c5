"""The shipped tokenizer: a real BPE with a Qwen-style chat template, loadable by veRL, rebuilt byte-identically."""

from __future__ import annotations

from pathlib import Path

import pytest
import transformers

from qwenlong_verl.driver.data import build_tokenizer
from qwenlong_verl.driver.data.tokenizer import TokenizerLoadError, builtin_tokenizer_path, load_tokenizer

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Total of 12 and 30?"}]


def test_builtin_is_a_fast_tokenizer_with_chat_template_and_special_tokens():
    tok = load_tokenizer("builtin")
    assert isinstance(tok, transformers.PreTrainedTokenizerFast)
    assert 4000 <= len(tok) <= 8000
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    assert tok.eos_token_id != tok.pad_token_id
    text = tok.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nTotal of 12 and 30?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    without = tok.apply_chat_template(MESSAGES, add_generation_prompt=False, tokenize=False)
    assert text == without + "<|im_start|>assistant\n"


def test_round_trip_special_tokens_atomic_and_digits_split():
    tok = load_tokenizer("builtin")
    text = "<|im_start|>user\nNorvane Logistics reported revenue of $4,512.75 million in 2021.<|im_end|>\n"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>")
    assert tok.convert_tokens_to_ids("<|im_end|>") in ids
    # Qwen-style: every digit is its own token, so numbers never merge into opaque pieces
    digits = [t for t in tok.convert_ids_to_tokens(ids) if any(c.isdigit() for c in t)]
    assert digits and all(len(t.lstrip("Ġ")) == 1 for t in digits)
    # a real BPE: common words are single tokens, text is compressed well below one token per character
    assert len(tok.tokenize(" revenue")) == 1
    assert len(ids) < len(text) / 2.5


def test_veRL_loads_the_builtin_path_and_counts_the_same():
    from verl.utils import hf_tokenizer

    ours = load_tokenizer("builtin")
    theirs = hf_tokenizer(builtin_tokenizer_path())
    a = ours.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    b = theirs.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    assert a == b
    assert ours(a, add_special_tokens=False)["input_ids"] == theirs(b, add_special_tokens=False)["input_ids"]
    assert theirs.pad_token_id == ours.pad_token_id


@pytest.mark.slow
def test_shipped_files_are_small_and_exactly_what_the_build_script_produces(tmp_path):
    shipped = Path(builtin_tokenizer_path())
    files = sorted(p.name for p in shipped.iterdir())
    assert files == ["special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
    assert sum(p.stat().st_size for p in shipped.iterdir()) < 1_000_000
    build_tokenizer.build(tmp_path)
    for name in files:
        assert (tmp_path / name).read_bytes() == (shipped / name).read_bytes(), name


def test_hub_name_without_network_says_how_to_pass_a_local_path(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network attempt at all
    with pytest.raises(TokenizerLoadError) as err:
        load_tokenizer("no-such-org/no-such-model-qwenlong-test")
    message = str(err.value)
    assert "no-such-org/no-such-model-qwenlong-test" in message
    assert "huggingface-cli download" in message and "--tokenizer /path/to/no-such-model-qwenlong-test" in message
    assert "--tokenizer builtin" in message


def test_missing_local_directory_and_file_instead_of_directory(tmp_path):
    with pytest.raises(TokenizerLoadError, match="does not exist"):
        load_tokenizer(str(tmp_path / "absent"))
    with pytest.raises(TokenizerLoadError, match="directory"):
        load_tokenizer(str(Path(builtin_tokenizer_path()) / "tokenizer.json"))


def test_directory_without_chat_template_is_refused(tmp_path):
    import json
    import shutil

    for name in ("tokenizer.json", "special_tokens_map.json"):
        shutil.copy(Path(builtin_tokenizer_path()) / name, tmp_path / name)
    config = json.loads((Path(builtin_tokenizer_path()) / "tokenizer_config.json").read_text())
    config.pop("chat_template")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(TokenizerLoadError, match="no chat template"):
        load_tokenizer(str(tmp_path))


def test_unreachable_hub_fails_at_once_without_offline_mode(monkeypatch):
    """No HF_HUB_OFFLINE and no cache entry: the probe finds no hub, so no minute of transformers' retries. The
    proxy is pointed at a port nobody listens on, so the hub is unreachable on any machine."""
    import socket
    import time

    from qwenlong_verl.driver.data.tokenizer import _hub_reachable

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    assert not _hub_reachable()
    started = time.monotonic()
    with pytest.raises(TokenizerLoadError) as err:
        load_tokenizer("no-such-org/no-such-model-qwenlong-probe")
    assert time.monotonic() - started < 20  # was ~60 s of hub retries
    message = str(err.value)
    assert "\n" not in message
    assert "neither a local folder nor in the local Hugging Face cache" in message and "cannot be reached" in message


def test_the_probe_sees_a_listening_endpoint(monkeypatch):
    import socket

    from qwenlong_verl.driver.data.tokenizer import _hub_reachable

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("HTTPS_PROXY", f"127.0.0.1:{server.getsockname()[1]}")
        assert _hub_reachable()


def test_same_tokenizer_names():
    from qwenlong_verl.driver.data.tokenizer import same_tokenizer

    assert same_tokenizer("builtin", builtin_tokenizer_path())
    assert same_tokenizer("/models/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct")  # a download of it
    assert not same_tokenizer("builtin", "Qwen/Qwen2.5-0.5B-Instruct")
    assert not same_tokenizer("Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-7B-Instruct")


def test_check_prepared_reads_the_tokenizer_prepare_recorded(tmp_path):
    import json

    from qwenlong_verl.driver.data.tokenizer import TokenizerMismatch, check_prepared

    check_prepared(tmp_path, "Qwen/Qwen2.5-0.5B-Instruct", "r.yaml")  # no stats.json: nothing to check
    (tmp_path / "stats.json").write_text(json.dumps({"tokenizer": "builtin"}))
    check_prepared(tmp_path, "builtin", "r.yaml")
    with pytest.raises(TokenizerMismatch) as err:
        check_prepared(tmp_path, "Qwen/Qwen2.5-0.5B-Instruct", "r.yaml")
    message = str(err.value)
    assert "\n" not in message and "'builtin'" in message and "'Qwen/Qwen2.5-0.5B-Instruct'" in message
    assert "--tokenizer Qwen/Qwen2.5-0.5B-Instruct" in message
