"""SFT test material shared by the sft-data, SFT plan and SFT train tests."""

from __future__ import annotations

import json
import shutil

from qwenlong_verl.driver.data.tokenizer import builtin_tokenizer_path

DOC = "The plant in Oslo produced 120 tons in 2020 and 150 tons in 2021. Alice founded the museum in 1901."


RECORDS = [
    {
        "id": "n1",
        "document": DOC,
        "question": "How many tons did the plant produce in 2021?",
        "answer": "150",
        "task": "numeric",
        "reasoning": "The text gives 150 tons for 2021.",
    },
    {"id": "q1", "context": DOC, "question": "Who founded the museum?", "answer": "Alice"},
    {
        "id": "c1",
        "documents": [{"title": "Plant", "text": DOC}, "A second document."],
        "question": "Which city is the plant in?",
        "choices": ["Bergen", "Oslo", "Tromsø"],
        "answer": "Oslo",
        "trace": "<think>\nThe first document says Oslo.\n</think>",
    },
]


DROPPING_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- set content = message['content'] -%}"
    "{%- if message['role'] == 'assistant' and '</think>' in content -%}"
    "{%- set content = content.split('</think>')[-1] -%}{%- endif -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + content + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


def write_jsonl(path, records, extra_lines=()):
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "".join(extra_lines))
    return path


def tiny_model(folder, **config):
    """A local model folder veRL's HFModelConfig accepts: the builtin tokenizer and a Qwen2 config."""
    from transformers import Qwen2Config

    shutil.copytree(builtin_tokenizer_path(), folder)
    settings = {
        "vocab_size": 6000,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 8192,
        "architectures": ["Qwen2ForCausalLM"],
        **config,
    }
    Qwen2Config(**settings).save_pretrained(folder)
    return str(folder)
