"""Rebuild the builtin tokenizer shipped in ``qwenlong_verl/driver/data/builtin_tokenizer/``.

Our tests, the demo and CI reach no model hub, yet veRL needs a real tokenizer path (``actor_rollout_ref.model
.path``, ``data.tokenizer``) and ``prepare`` must count tokens exactly as veRL will. So we ship a small real
byte-level BPE (the ``tokenizers`` library) trained on generated English-like prose, reports with markdown
tables, numbers, dates and the chat markup. It is Qwen-shaped on purpose: the same pre-tokenizer split (digits
one by one), ``<|im_start|>role ... <|im_end|>`` chat template, ``<|im_end|>`` as eos and ``<|endoftext|>`` as
pad, so what works with it works with a Qwen tokenizer.

Deterministic: the same seed and vocab size give byte-identical files (a test rebuilds and compares)::

    python -m qwenlong_verl.driver.data.build_tokenizer --out qwenlong_verl/driver/data/builtin_tokenizer
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterator
from pathlib import Path

from qwenlong_verl.common.files import atomic_folder

VOCAB_SIZE = 6000
SEED = 20250521
CORPUS_LINES = 24000

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)

MODEL_MAX_LENGTH = 1 << 20
"""Far above any phase window, so transformers never warns about "sequence longer than max length"."""

# The Qwen2 pre-tokenizer split: contractions, words with one leading non-letter, single digits, punctuation runs,
# newlines and spaces. Single digits keep numbers compositional, as in Qwen.
SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- endif -%}"
)
"""Qwen-style ChatML, without Qwen's default system message (our prompts carry their own instructions)."""

# ----------------------------------------------------------------------------- training corpus

_WORDS = """
the of and to in a is that for it as was with be by on not he this are or his from at which but have an they
you were her she there been one all we their has would when if so no will more can what who about out up into
them some could than other time then only its these two may first any like now my such make over our even most
after also made many before must through back years where much your way well down should because each just those
people how too little state good very world still own see men work long get here between both life being under
never day same another know while last might great old year off come since against go came right used take three
report annual quarter quarterly fiscal revenue income profit loss margin cost costs expense expenses sales growth
total average mean median maximum minimum number count percent percentage change increase decrease rate ratio share
shares price prices value values amount amounts figure figures table tables column row rows region regions market
markets company companies division department segment unit units office offices branch branches group holding
holdings subsidiary subsidiaries customer customers supplier suppliers contract contracts project projects product
products service services order orders shipment shipments inventory capacity output production plant plants site
sites city cities town harbor river valley north south east west northern southern eastern western central coastal
employees headcount staff manager director chairman founder engineer analyst auditor committee board council mayor
minister governor author editor scientist doctor teacher student professor museum library university school hospital
station bridge tower street avenue road park garden island mountain lake bay port airport railway district province
founded located based born married elected appointed named built opened closed acquired merged moved reported
recorded measured estimated expected increased decreased rose fell grew declined remained reached exceeded totaled
January February March April May June July August September October November December Monday Tuesday Wednesday
Thursday Friday Saturday Sunday spring summer autumn winter morning evening during following previous next according
question answer document documents text context evidence passage passages chapter section paragraph note notes
appendix summary overview introduction conclusion therefore thus however although because while whereas moreover
furthermore finally first second third fourth fifth option options choice choices letter correct following given
read carefully think step reasoning final compute calculate determine identify select respond format boxed end with
million billion thousand hundred dollars euros tons kilometers meters hours days weeks months percent points
"""

_NAMES = """
Aldren Brakka Corvel Dunmore Elstow Farrow Galen Harrowgate Istra Jorvik Kestrel Lorne Marlow Norvane Orrin Pellam
Quarry Rovik Selwyn Tamsin Ulric Varden Wexley Yarrow Zephyr Alice Bruno Clara Dmitri Elena Farid Greta Hugo Ines
Jonas Keiko Lars Mira Nadia Omar Priya Quentin Rosa Sven Tomas Uma Viktor Wen Xavier Yusuf Zara Chen Garcia Novak
Okafor Petrov Santos Tanaka Weber Kowalski Lindqvist Moreau Haddad Ibrahim Nakamura Rossi Schmidt Silva Fischer
"""

_SUFFIXES = ["Logistics", "Industries", "Holdings", "Systems", "Foods", "Energy", "Textiles", "Mining", "Labs", "Group"]
_VERBS = ["reported", "recorded", "posted", "measured", "estimated", "disclosed", "confirmed", "noted"]
_INSTRUCTIONS = [
    "Please read the following text and answer the question below.",
    "Think step by step, then end with: Therefore, the answer is <answer>.",
    "Answer with the letter of the correct option.",
    "Format your final answer as \\boxed{answer}.",
    "Answer: the final answer is",
]


_ONSETS = "b bl br c ch cl cr d dr f fl fr g gl gr h j k l m n p pl pr qu r s sc sh sl sm sn sp st str t th tr v w wh y z".split()
_NUCLEI = "a e i o u ai au ea ee ie oa oo ou y".split()
_CODAS = ["", "", "n", "r", "l", "s", "t", "m", "nd", "rt", "st", "ck", "ng", "sh", "x"]


def _pseudo_word(rng: random.Random) -> str:
    """An English-sounding made-up word, so the BPE learns subword units beyond the fixed word lists."""
    return "".join(rng.choice(_ONSETS) + rng.choice(_NUCLEI) + rng.choice(_CODAS) for _ in range(rng.randint(1, 3)))


def _number(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.35:
        return str(rng.randint(0, 99999))
    if kind < 0.6:
        return f"{rng.uniform(0, 5000):.{rng.randint(1, 2)}f}"
    if kind < 0.75:
        return f"{rng.randint(1, 999):,}{rng.choice(['', ',000', ',500'])}"
    if kind < 0.85:
        return f"{rng.uniform(-40, 80):.1f}%"
    return f"${rng.uniform(0.1, 900):.2f} million"


def _sentence(rng: random.Random, words: list[str], names: list[str]) -> str:
    shape = rng.random()
    if shape < 0.4:
        body = " ".join(
            rng.choice(words) if rng.random() < 0.8 else _pseudo_word(rng) for _ in range(rng.randint(6, 18))
        )
        return body[0].upper() + body[1:] + rng.choice([".", ".", ".", "?", ";", ","])
    if shape < 0.8:
        company = f"{rng.choice(names)} {rng.choice(_SUFFIXES)}"
        metric = rng.choice(["revenue", "operating cost", "net income", "headcount", "shipments", "output"])
        return (
            f"In {rng.randint(1990, 2030)}, {company} {rng.choice(_VERBS)} {metric} of {_number(rng)} "
            f"in the {rng.choice(['northern', 'southern', 'eastern', 'western', 'central'])} region."
        )
    person = f"{rng.choice(names)} {rng.choice(names)}"
    return f"{person} was {rng.choice(['born', 'appointed', 'elected', 'named'])} in {rng.choice(names)} on {rng.choice(words).title()} {rng.randint(1, 28)}, {rng.randint(1900, 2030)}."


def _table(rng: random.Random, names: list[str]) -> str:
    years = sorted(rng.sample(range(2000, 2030), rng.randint(2, 5)))
    lines = ["| Item | " + " | ".join(map(str, years)) + " |", "|---" * (len(years) + 1) + "|"]
    for _ in range(rng.randint(2, 6)):
        lines.append(f"| {rng.choice(names)} | " + " | ".join(_number(rng) for _ in years) + " |")
    return "\n".join(lines)


def training_corpus(seed: int = SEED, lines: int = CORPUS_LINES) -> Iterator[str]:
    """Deterministic English-like text: prose, reports with tables, numbers, instructions and chat markup."""
    rng = random.Random(seed)
    words = _WORDS.split()
    names = _NAMES.split() + [_pseudo_word(rng).title() for _ in range(3000)]
    for i in range(lines):
        kind = i % 10
        if kind < 6:
            yield " ".join(_sentence(rng, words, names) for _ in range(rng.randint(2, 6)))
        elif kind < 8:
            yield f"Report {rng.randint(1, 999)}: {rng.choice(names)} {rng.choice(_SUFFIXES)}\n\n{_table(rng, names)}\n"
        elif kind == 8:
            yield f"<text>\n{_sentence(rng, words, names)}\n</text>\n\n{rng.choice(_INSTRUCTIONS)}"
        else:
            yield (
                f"{IM_START}user\nQuestion: {_sentence(rng, words, names)}{IM_END}\n{IM_START}assistant\n"
                f"<think>\n{_sentence(rng, words, names)}\n</think>\nTherefore, the answer is {_number(rng)}.{IM_END}"
            )


# ----------------------------------------------------------------------------- build


def build(out_dir: str | Path, vocab_size: int = VOCAB_SIZE, seed: int = SEED, lines: int = CORPUS_LINES) -> Path:
    """Train the BPE and write ``tokenizer.json`` + ``tokenizer_config.json`` + ``special_tokens_map.json``."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(training_corpus(seed, lines), trainer=trainer)

    out = Path(out_dir)
    with atomic_folder(out) as new:  # the three files belong together: all new, or the old ones
        _save(tokenizer, new)
    return out


def _save(tokenizer, out: Path) -> None:
    """``tokenizer.json`` plus the two config files transformers reads beside it."""
    tokenizer.save(str(out / "tokenizer.json"), pretty=False)
    added = {
        str(tokenizer.token_to_id(tok)): {
            "content": tok,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for tok in SPECIAL_TOKENS
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": added,
        "bos_token": None,
        "eos_token": IM_END,
        "pad_token": ENDOFTEXT,
        "unk_token": None,
        "additional_special_tokens": [IM_START, IM_END],
        "clean_up_tokenization_spaces": False,
        "model_max_length": MODEL_MAX_LENGTH,
        "chat_template": CHAT_TEMPLATE,
    }
    special = {"eos_token": IM_END, "pad_token": ENDOFTEXT, "additional_special_tokens": [IM_START, IM_END]}
    for name, payload in (("tokenizer_config.json", config), ("special_tokens_map.json", special)):
        (out / name).write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).with_name("builtin_tokenizer")), help="output directory")
    parser.add_argument("--vocab-size", type=int, default=VOCAB_SIZE)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    build(args.out, vocab_size=args.vocab_size, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
