"""``qwenlong-verl tiny-model``: a tiny random Qwen2 causal LM with the builtin tokenizer, for CPU runs.

No model hub is needed to run veRL for real: this writes a transformers checkpoint (config, safetensors weights,
generation config, tokenizer) that transformers and veRL load like any hub model. Same seed and options, same
bytes (weights drawn from a seeded generator; the files carry no time stamps).

``answers=True`` writes the variant that makes rewards vary within a group: its output layer prefers the choice
letters `` A``..`` D`` and, after a letter, end-of-turn about half the time. A one-letter response answers a
four-option question right one time in four; longer ones score 0 and, with a soft overlong buffer that starts
after two tokens, a length penalty that grows with their length. GRPO then sees groups with different rewards,
non-zero advantages and a non-zero gradient in every task; a plain random model scores 0 everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qwenlong_verl.common.files import atomic_folder

ANSWER_TEXTS = (" A", " B", " C", " D")
"""Texts whose tokens the ``answers`` variant prefers (each one token in the builtin tokenizer)."""
STOP_BIAS = 0.17
"""Pull of end-of-turn after a letter: at temperature 0.7 about an even chance against another letter, so response
lengths vary (2, 3, 4, ... tokens) and a DAPO overlong buffer gives every group, whatever its task, rewards that
differ."""


@dataclass(frozen=True)
class TinyModelSpec:
    """Shape of the tiny model (defaults: about 0.9M parameters, 2 layers)."""

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 128
    max_position_embeddings: int = 32768


def _answer_bias(model, tokenizer, strength: float) -> None:
    """Three residual dimensions the layers never write (their output rows are zeroed) carry the rule "one answer
    letter, then end of turn": dimension 0 is a constant that favours the letters and end-of-turn over the rest of
    the vocabulary, dimension 1 marks "the current token is a letter" (then end-of-turn), dimension 2 marks
    "it is not" (then a letter, never end-of-turn). The other weights stay random."""
    import torch

    letters = []
    for text in ANSWER_TEXTS:
        ids = tokenizer.encode(text, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"tokenizer splits {text!r} into {len(ids)} tokens; the answers variant needs one")
        letters.append(ids[0])
    eos = tokenizer.eos_token_id
    with torch.no_grad():
        inner = model.model
        embed = inner.embed_tokens.weight
        embed[:, :3] = 0.0
        embed[:, 0] = 1.0
        embed[:, 2] = 1.0
        embed[letters, 1] = 1.0
        embed[letters, 2] = 0.0
        for layer in inner.layers:
            layer.self_attn.o_proj.weight[:3, :] = 0.0
            layer.mlp.down_proj.weight[:3, :] = 0.0
        inner.norm.weight[:] = 0.1
        inner.norm.weight[:3] = 1.0
        head = model.lm_head.weight
        head[:, :3] = 0.0
        head[:, 0] = -strength
        head[letters + [eos], 0] = strength
        head[eos, 1], head[eos, 2] = STOP_BIAS, -2 * strength


SEED_RANGE = (-(2**63), 2**64 - 1)
"""The seeds torch's generator accepts."""


def write_tiny_model(out: str | Path, seed: int = 0, answers: bool = False, spec: TinyModelSpec | None = None) -> Path:
    """Write the model folder ``out`` atomically (a temporary sibling renamed into place); returns ``out``."""
    from qwenlong_verl.driver.data.schema import check_count

    check_count("--seed", seed, SEED_RANGE[0], SEED_RANGE[1])  # torch's generator takes no other (an overflow)
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    from qwenlong_verl.driver.data.tokenizer import builtin_tokenizer_path

    spec = spec or TinyModelSpec()
    out = Path(out)
    tokenizer = AutoTokenizer.from_pretrained(builtin_tokenizer_path())
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).to(torch.float32)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # own seeded draw: independent of transformers' init order
        for _name, param in sorted(model.named_parameters()):
            if param.dim() > 1:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
    if answers:
        _answer_bias(model, tokenizer, strength=1.0)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=True
    )
    with atomic_folder(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return out
