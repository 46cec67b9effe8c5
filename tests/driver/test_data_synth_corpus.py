"""Corpus-scale synthetic questions (``synth --corpus``): answers re-derived from the generated text alone.

The documents are parsed back (report facts, tables, city guides) and every answer is recomputed from what they
say, without the generator's world; only the question's parameters come from the record's ``meta``, and each is
checked against the question text. The same parse runs on the document a prepared row carries to the memory agent.
"""

from __future__ import annotations

import json
import re
import time
import tracemalloc
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from qwenlong_verl.common.tasks import CHOICE, NUMERIC, QA
from qwenlong_verl.driver.data import synth
from qwenlong_verl.driver.data.synth.corpus import CorpusOptions, plan_corpus_example
from qwenlong_verl.driver.data.synth.corpus_kinds import CORPUS_AGGREGATION, CORPUS_KINDS, CORPUS_NUMERICAL

REPORT = re.compile(
    r"^(?P<company>\S+ \S+) is an? (?P<sector>\w+) company headquartered in (?P<city>\w+)\. "
    r"(?P=company) was founded by (?P<founder>\w+ \w+) in (?P<founded>\d{4})\.$",
    re.M,
)
TABLE_HEAD = re.compile(r"^\| Metric \| (?P<years>[\d |]+) \|$", re.M)
TABLE_ROW = re.compile(r"\| (?P<label>[^|]+?) \| (?P<cells>[-\d. |]+) \|")
CITY = re.compile(
    r"^The mayor of (?P<city>\w+) is (?P<mayor>\w+ \w+)\. (?P=city) lies on the (?P<river>\w+) River\.$", re.M
)
BORN = re.compile(r"^(?P<person>\w+ \w+) was born in (?P<city>\w+)\.$", re.M)
COMMENTARY = re.compile(
    r"^Analysts estimated the combined .+? of the (?P<sector>\w+) sector in (?P<year>\d{4}) at ", re.M
)
HEADING = re.compile(r"^Document (\d+): (.+)$", re.M)

CORPUS = CorpusOptions(corpus=True, docs=40)


def documents_of(text: str) -> list[dict]:
    """The ``Document N: title`` sections of a joined corpus (the prompt's text) as ``{title, text}``."""
    heads = list(HEADING.finditer(text))
    assert [int(h[1]) for h in heads] == list(range(1, len(heads) + 1))
    ends = [h.start() for h in heads[1:]] + [len(text)]
    return [{"title": h[2], "text": text[h.end() + 1 : end].strip()} for h, end in zip(heads, ends, strict=True)]


def parse_corpus(documents: list[dict]) -> dict:
    """Every fact the documents state; each company, city and person described once, no other document states a
    headquarters, a founding or a mayor, and the commentaries only quote years before every table."""
    companies: dict[str, dict] = {}
    cities: dict[str, tuple[str, str]] = {}
    born: dict[str, str] = {}
    table_years: set[int] = set()
    commentary_years = []
    for doc in documents:
        text = doc["text"]
        for m in REPORT.finditer(text):
            assert m["company"] not in companies, f"{m['company']} described twice"
            assert doc["title"] == f"{m['company']} annual report"
            head = TABLE_HEAD.search(text, m.end())
            years = [int(y) for y in head["years"].split(" | ")]
            table_years.update(years)
            table = {}
            for line in text[head.end() :].strip().splitlines()[1:]:
                row = TABLE_ROW.fullmatch(line)
                if row is None:
                    break
                table[row["label"]] = dict(zip(years, map(Decimal, row["cells"].split(" | ")), strict=True))
            companies[m["company"]] = {**{k: m[k] for k in ("sector", "city", "founder")}, "founded": int(m["founded"])}
            companies[m["company"]]["table"] = table
        for m in CITY.finditer(text):
            assert m["city"] not in cities, f"city {m['city']} described twice"
            cities[m["city"]] = (m["mayor"], m["river"])
        for m in BORN.finditer(text):
            assert m["person"] not in born
            born[m["person"]] = m["city"]
        commentary_years += [int(m["year"]) for m in COMMENTARY.finditer(text)]
    joined = "\n".join(d["text"] for d in documents)
    assert joined.count("headquartered in") == joined.count("was founded by") == len(companies)
    assert joined.count("The mayor of") == len(cities) and joined.count("| Metric |") == len(companies)
    assert all(c["city"] in cities for c in companies.values()), "every headquarters has its city guide"
    assert commentary_years and max(commentary_years) < min(table_years)
    return {"companies": companies, "cities": cities, "born": born}


def shown(value: Decimal, decimals: int) -> str:
    text = str(value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))
    return text.lstrip("-") if Decimal(text).is_zero() else text


def rederive(record: dict, documents: list[dict] | None = None) -> tuple[str, int]:
    """The answer text recomputed from the documents, and how many reports it read."""
    world = parse_corpus(record["documents"] if documents is None else documents)
    companies = world["companies"]
    meta, kind, question = record["meta"], record["kind"], record["question"]
    assert question.endswith(record["instruction"])
    if kind == "corpus_count_founded":
        assert f"{meta['sector']} companies were founded before {meta['before']}?" in question
        members = [c for c in companies.values() if c["sector"] == meta["sector"]]
        return str(sum(c["founded"] < meta["before"] for c in members)), len(members)
    if kind == "corpus_busiest_city":
        scope = meta["sector"]
        assert question.startswith(
            f"Which city is the headquarters of the most {f'{scope} ' if scope else ''}companies?"
        )
        members = [c for c in companies.values() if scope in (None, c["sector"])]
        counts = Counter(c["city"] for c in members)
        (most, first), (second, _) = sorted(((counts[city], city) for city in world["cities"]), reverse=True)[:2]
        assert most > second, "one city leads"
        return first, len(members)
    label, year = meta["metric"], meta["year"]
    decimals = 1 if any("." in str(v) for c in companies.values() for v in c["table"][label].values()) else 0
    assert f"in {year}" in question or f"for {year}" in question

    def value(name: str) -> Decimal:
        return companies[name]["table"][label][year]

    if kind in ("corpus_city_total", "corpus_mayor_total"):
        if kind == "corpus_mayor_total":
            assert question.endswith(f"whose mayor is {meta['mayor']}?")
            (city,) = [c for c, (mayor, _) in world["cities"].items() if mayor == meta["mayor"]]
        else:
            city = meta["city"]
            assert f"headquartered in {city}?" in question
        members = [n for n, c in companies.items() if c["city"] == city]
        return shown(sum(map(value, members)), decimals), len(members)
    if kind == "corpus_count_above":
        assert f"greater than {meta['threshold']} in {year}" in question
        return str(sum(value(n) > Decimal(meta["threshold"]) for n in companies)), len(companies)
    if kind == "corpus_most_of_four":
        names = meta["companies"]
        assert f"{', '.join(names[:-1])} or {names[-1]}?" in question
        assert ("highest" if meta["highest"] else "lowest") in question
        return (max if meta["highest"] else min)(names, key=value), 4
    members = [n for n, c in companies.items() if c["sector"] == meta["sector"]]
    assert f"{meta['sector']} companies" in question
    values = sorted(map(value, members))
    if kind == "corpus_sector_mean":
        return shown(sum(values) / len(values), 2), len(members)
    if kind == "corpus_spread":
        return shown(values[-1] - values[0], decimals), len(members)
    if kind == "corpus_top_ranking":
        ranked = sorted(members, key=value, reverse=True)
        k = meta["k"]
        assert len({value(n) for n in ranked[: k + 1]}) == k + 1, "one ranking"
        return ", ".join(ranked[:k]), len(members)
    raise AssertionError(f"unknown kind {kind}")


def gold_text(record: dict) -> str:
    return record["choices"]["ABCD".index(record["answer"])] if record["answer_type"] == CHOICE else record["answer"]


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return list(synth.iter_examples(36, 12_000, 24_000, seed=7, corpus=CORPUS))


def test_every_corpus_answer_rederived_from_the_documents(records):
    for record in records:
        answer, read = rederive(record)
        assert gold_text(record) == answer, (record["id"], record["kind"], record["question"])
        city = record["kind"] in ("corpus_city_total", "corpus_mayor_total")
        assert read >= (2 if city else 4), "an aggregation reads several reports (a whole sector, all of them)"
    assert {r["kind"] for r in records} == set(CORPUS_KINDS)
    assert Counter(r["answer_type"] for r in records) == {NUMERIC: 12, CHOICE: 12, QA: 12}


def test_corpus_is_the_requested_documents_with_every_kind_and_the_question_split(records):
    for record in records:
        titles = [d["title"] for d in record["documents"]]
        assert len(titles) == record["docs"] == 40 and len(set(titles)) == 40
        for ending in ("annual report", "city guide", "sector commentary by", "Profile of"):
            assert any(ending in t for t in titles), ending
        assert record["data_source"] == f"qwenlong_synth_corpus_{record['answer_type']}"
        assert record["task"] == record["answer_type"]
        if record["instruction"]:  # q_inst closes the question, after q_core
            assert record["question"].endswith(f"? {record['instruction']}")
    assert {r["instruction"] for r in records} >= {
        "",
        "Round to two decimals.",
        "List their names from the highest to the lowest, separated by commas.",
    }


def test_choice_variants_offer_four_distinct_options_one_of_them_right(records):
    for record in (r for r in records if r["answer_type"] == CHOICE):
        assert len(set(record["choices"])) == 4
        assert sum(c == rederive(record)[0] for c in record["choices"]) == 1


def test_the_four_compared_companies_are_far_apart(records):
    for record in (r for r in records if r["kind"] == "corpus_most_of_four"):
        titles = [d["title"] for d in record["documents"]]
        positions = sorted(titles.index(f"{name} annual report") for name in record["meta"]["companies"])
        assert min(b - a for a, b in zip(positions, positions[1:], strict=False)) >= 4, positions


def test_lengths_hit_the_targets():
    from qwenlong_verl.driver.data.template import count_prompt_tokens
    from qwenlong_verl.driver.data.tokenizer import load_tokenizer

    tok = load_tokenizer("builtin")
    made = list(synth.iter_examples(3, 30_000, 60_000, seed=3, corpus=CorpusOptions(corpus=True, docs=100)))
    targets = sorted(r["target_tokens"] for r in made)
    assert 30_000 <= targets[0] < 40_000 < targets[1] < 50_000 < targets[2] <= 60_000  # stratified over the range
    for record in made:
        exact = count_prompt_tokens(synth.prompt_of(record), tok)
        assert abs(exact - record["approx_tokens"]) <= 0.015 * exact, (exact, record["approx_tokens"])
        assert abs(exact - record["target_tokens"]) <= 0.02 * record["target_tokens"], (exact, record["target_tokens"])


def test_same_seed_same_bytes_streamed_as_built(tmp_path):
    a, b, c = (tmp_path / f"{x}.jsonl" for x in "abc")
    stats = synth.synth(a, 3, 12_000, 20_000, seed=5, corpus=CORPUS)
    synth.synth(b, 3, 12_000, 20_000, seed=5, corpus=CORPUS)
    synth.synth(c, 3, 12_000, 20_000, seed=6, corpus=CORPUS)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    assert (stats.docs, stats.examples, sum(stats.kinds.values())) == (40, 3, 3)
    lines = a.read_text().splitlines()
    # written a document at a time, the line is exactly json.dumps of the whole record; one example made alone
    # is the same example
    alone = plan_corpus_example(1, 3, 12_000, 20_000, 5, synth.parse_tasks(None), (), 40).record()
    assert lines[1] == json.dumps(alone, ensure_ascii=False)
    assert stats.document_tokens == sum(json.loads(line)["approx_tokens"] for line in lines)
    # without --corpus, examples are single-context as before
    single = next(synth.iter_examples(1, 2000, 3000, seed=5))
    assert "docs" not in single and not single["kind"].startswith("corpus_")


def test_labels_and_kinds_table():
    assert {name: (k.answer_type, k.task) for name, k in CORPUS_KINDS.items()} == {
        "corpus_city_total": (NUMERIC, CORPUS_NUMERICAL),
        "corpus_mayor_total": (NUMERIC, CORPUS_NUMERICAL),
        "corpus_sector_mean": (NUMERIC, CORPUS_NUMERICAL),
        "corpus_spread": (NUMERIC, CORPUS_NUMERICAL),
        "corpus_count_founded": (NUMERIC, CORPUS_AGGREGATION),
        "corpus_count_above": (NUMERIC, CORPUS_AGGREGATION),
        "corpus_most_of_four": (QA, CORPUS_AGGREGATION),
        "corpus_top_ranking": (QA, CORPUS_AGGREGATION),
        "corpus_busiest_city": (QA, CORPUS_AGGREGATION),
    }
    labelled = list(synth.iter_examples(6, 12_000, 14_000, seed=2, labels="all", corpus=CORPUS))
    assert [r["task"] for r in labelled] == [CORPUS_NUMERICAL, CORPUS_AGGREGATION] * 3
    for record in labelled:
        assert CORPUS_KINDS[record["kind"]].task == record["task"]
        assert gold_text(record) == rederive(record)[0]
    asked = list(synth.iter_examples(3, 12_000, 14_000, seed=2, tasks="qa", labels="corpus_aggregation", corpus=CORPUS))
    assert {r["kind"] for r in asked} <= {"corpus_most_of_four", "corpus_top_ranking", "corpus_busiest_city"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"corpus": CorpusOptions(docs=30)}, "--docs 30 sets the documents of corpus examples; add --corpus"),
        (
            {"corpus": CorpusOptions(corpus=True), "min_tokens": 20_000},
            "--min-tokens (20,000) is too short for --docs 300: a corpus needs 250 tokens per document (75,000); "
            "raise --min-tokens or lower --docs",
        ),
        ({"corpus": CorpusOptions(corpus=True, docs=5)}, "--docs must be at least 20, got 5"),
        ({"corpus": CorpusOptions(corpus=True, docs=50_000)}, "--docs must be at most 5,000, got 50,000"),
        ({"corpus": CORPUS, "max_tokens": 12_000_000}, "--max-tokens must be at most 10,000,000, got 12,000,000"),
        ({"max_tokens": 5_000_000}, "--max-tokens must be at most 4,000,000"),  # unchanged without --corpus
        (
            {"corpus": CORPUS, "labels": "numerical"},
            "--labels: no corpus question kind has task label 'numerical'; use corpus_numerical, corpus_aggregation",
        ),
        (
            {"corpus": CORPUS, "labels": "corpus_numerical", "tasks": "qa"},
            "--labels: the corpus_numerical kinds (corpus_city_total, corpus_mayor_total, corpus_sector_mean, "
            "corpus_spread) cannot be asked as qa",
        ),
    ],
)
def test_option_errors_name_the_flag_in_one_line(tmp_path, kwargs, message):
    args = {"n": 2, "min_tokens": 100_000, "max_tokens": 120_000} | kwargs
    with pytest.raises(synth.SynthError, match=re.escape(message)) as caught:
        synth.synth(tmp_path / "x.jsonl", **args)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "x.jsonl").exists()


def test_cli_corpus_options(tmp_path, capsys):
    from qwenlong_verl.driver.cli import main

    out = tmp_path / "c.jsonl"
    args = ["synth", "--out", str(out), "--n", "2", "--min-tokens", "12000", "--max-tokens", "14000", "--seed", "4"]
    assert main([*args, "--corpus", "--docs", "40"]) == 0
    assert "2 examples (corpora of 40 documents)" in " ".join(capsys.readouterr().out.split())
    expected = synth.iter_examples(2, 12_000, 14_000, seed=4, corpus=CORPUS)
    assert out.read_text() == "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in expected)
    assert main([*args, "--docs", "40"]) == 2
    assert capsys.readouterr().err == "error: --docs 40 sets the documents of corpus examples; add --corpus\n"


def test_rewards_of_corpus_golds(records, monkeypatch):
    """The gold, phrased as a model would, scores 1.0 with the training reward; a ranking in another order or a
    count one off does not."""
    from qwenlong_verl.worker.rewards import compute_score

    for var in ("QWENLONG_JUDGE_URLS", "QWENLONG_JUDGE_MODEL"):
        monkeypatch.delenv(var, raising=False)
    for record in records:
        info = {k: record[k] for k in ("task", "answer_type", "question")} | {"choices": record.get("choices", [])}

        def score(answer: str, record=record, info=info) -> float:
            said = f"<think>\nAdded them up.\n</think>\n\nTherefore, the answer is {answer}."
            return compute_score(record["data_source"], said, record["answer"], info)["score"]

        assert score(record["answer"]) == 1.0, record["id"]
        if record["answer_type"] == QA and record["kind"] == "corpus_top_ranking":
            assert score(", ".join(record["answer"].split(", ")[::-1])) == 0.0
        if record["answer_type"] == NUMERIC and record["kind"].startswith("corpus_count"):
            assert score(str(int(record["answer"]) + 1)) == 0.0


def test_a_corpus_example_is_written_a_document_at_a_time(tmp_path):
    """Streaming: the peak of Python allocations while writing a 2M-token example is a fraction of its line."""
    out = tmp_path / "big.jsonl"
    synth.synth(tmp_path / "warm.jsonl", 1, 12_000, 12_000, seed=0, corpus=CORPUS)  # pool and tokenizer loaded
    tracemalloc.start()
    try:
        started = time.perf_counter()
        synth.synth(out, 1, 2_000_000, 2_000_000, seed=0, corpus=CorpusOptions(corpus=True, docs=300))
        took = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = out.stat().st_size
    assert size > 5_000_000 and peak < size / 3, (peak, size)
    assert took < 30, took  # ~1.3 s here under tracing; a whole-text count alone would take ~10 s
    assert abs(json.loads(out.read_text())["approx_tokens"] - 2_000_000) < 20_000


# ----------------------------------------------------------------------------- prepare: rows for a memory phase


def memory_recipe(max_input_tokens: int):
    from qwenlong_verl.driver.recipe import parse_recipe

    return parse_recipe(
        {
            "name": "mem",
            "model_path": "/models/tiny",
            "data": {"inputs": ["corpus.jsonl"], "tokenizer": "builtin"},
            "phases": [
                {"name": "full", "max_prompt_length": 20_000, "max_response_length": 500, "total_training_steps": 1},
                {
                    "name": "memory",
                    "kind": "memory",
                    "max_input_tokens": max_input_tokens,
                    "chunk_tokens": 32_000,
                    "memory_tokens": 4_000,
                    "total_training_steps": 1,
                },
            ],
        },
        "mem.yaml",
    )


def prepared_for_memory(tmp_path: Path, record: dict, max_input_tokens: int) -> dict:
    """``prepare`` with the recipe's length bins: the corpus row lands in the memory phase's bin, whole."""
    import pyarrow.parquet as pq

    from qwenlong_verl.driver.data.prepare import phase_file, prepare

    source = tmp_path / "corpus.jsonl"
    source.write_text(json.dumps(record, ensure_ascii=False) + "\n")
    recipe = memory_recipe(max_input_tokens)
    stats = prepare([str(source)], str(tmp_path / "data"), tokenizer="builtin", phases=recipe.data_cuts(), plot=False)
    assert stats.rows_written == 1 and not stats.dropped
    (bin_,) = recipe.data_bins(1)
    (row,) = pq.read_table(phase_file(tmp_path / "data", bin_)).to_pylist()
    assert 20_000 < row["extra_info"]["input_tokens"] <= max_input_tokens
    return row


def check_memory_row(row: dict, record: dict) -> None:
    """The memory agent's view of the row: the whole corpus as the document, q_core the question, q_inst the
    answer format; the answer re-derived from that document's text."""
    from qwenlong_verl.worker.agent.query import split_query

    query = split_query(row["prompt"], row["extra_info"])
    assert query.core == row["extra_info"]["question"] == record["question"]
    assert query.instruction.startswith('Format your response as follows: "Therefore, the answer is')
    documents = documents_of(query.document)
    assert len(documents) == record["docs"]
    assert rederive(record, documents)[0] == gold_text(record) == row["reward_model"]["ground_truth"]


def test_prepare_keeps_a_corpus_row_for_the_memory_phase_and_counts_it_exactly(tmp_path):
    from qwenlong_verl.driver.data.prepare import LONG_PROMPT_CHARS
    from qwenlong_verl.driver.data.template import count_prompt_tokens
    from qwenlong_verl.driver.data.tokenizer import load_tokenizer

    (record,) = synth.iter_examples(1, 110_000, 110_000, seed=1, tasks="numeric", corpus=CorpusOptions(True, 60))
    row = prepared_for_memory(tmp_path, record, 150_000)
    assert len(row["prompt"][0]["content"]) > LONG_PROMPT_CHARS  # counted in pieces
    assert row["extra_info"]["input_tokens"] == count_prompt_tokens(row["prompt"], load_tokenizer("builtin"))  # exactly
    assert abs(row["extra_info"]["input_tokens"] - record["approx_tokens"]) <= 0.015 * record["approx_tokens"]
    check_memory_row(row, record)
    # the same row is too long for a memory window below it: dropped as too long, and with nothing left to
    # train on, that is an error naming why
    from qwenlong_verl.driver.data.prepare import PrepareError, prepare

    with pytest.raises(PrepareError, match=r"\(1 read; dropped: too_long 1\); nothing written"):
        prepare(
            [str(tmp_path / "corpus.jsonl")], str(tmp_path / "short"), "builtin", phases=[20_000, 60_000], plot=False
        )


def test_long_counts_in_pieces_equal_whole_counts_or_fall_back(tmp_path):
    """Cut at line starts, the builtin (byte-level BPE) tokenizer counts exactly as it does whole; a tokenizer
    that marks every text's start would not, and is counted whole."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from qwenlong_verl.driver.data.prepare import _cuts_are_exact, count_long_text, line_pieces
    from qwenlong_verl.driver.data.template import count_rendered_tokens
    from qwenlong_verl.driver.data.tokenizer import load_tokenizer

    (record,) = synth.iter_examples(1, 30_000, 30_000, seed=2, corpus=CORPUS)
    text = synth.prompt_of(record)[0]["content"]
    pieces = list(line_pieces(text, 2000))
    assert "".join(pieces) == text and len(pieces) > 20
    assert all(p.endswith("\n") and not n[0].isspace() for p, n in zip(pieces, pieces[1:], strict=False))
    builtin = load_tokenizer("builtin")
    assert _cuts_are_exact(builtin)
    assert count_long_text(text, builtin) == count_rendered_tokens([text], builtin)[0]

    raw = Tokenizer(models.BPE(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="always")
    raw.train_from_iterator([text[:20_000]], trainers.BpeTrainer(vocab_size=300, special_tokens=["[UNK]"]))
    marking = PreTrainedTokenizerFast(tokenizer_object=raw)
    assert not _cuts_are_exact(marking)
    assert count_long_text(text, marking) == count_rendered_tokens([text], marking)[0]
    head = text[:20_000]  # cut at every line start, its count would differ
    assert sum(count_rendered_tokens(list(line_pieces(head, 1)), marking)) != count_rendered_tokens([head], marking)[0]


@pytest.mark.slow
def test_a_million_token_corpus_in_seconds_then_prepared_for_the_memory_phase(tmp_path):
    """One ~1M-token example of 300 documents: generated in seconds, counted by ``prepare`` in bounded time,
    kept whole for a memory phase of 1.2M input tokens, and its answer re-derived from the prepared row."""
    out = tmp_path / "million.jsonl"
    started = time.perf_counter()
    stats = synth.synth(out, 1, 1_000_000, 1_050_000, seed=9, corpus=CorpusOptions(corpus=True, docs=300))
    took = time.perf_counter() - started
    assert took < 15, took  # ~0.6 s here
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert 1_000_000 <= record["target_tokens"] <= 1_050_000 and stats.docs == record["docs"] == 300
    assert abs(record["approx_tokens"] - record["target_tokens"]) <= 0.01 * record["target_tokens"]
    assert gold_text(record) == rederive(record)[0]

    started = time.perf_counter()
    row = prepared_for_memory(tmp_path, record, 1_200_000)
    assert time.perf_counter() - started < 120  # ~7-15 s here, nearly all of it the tokenizer
    assert abs(row["extra_info"]["input_tokens"] - record["approx_tokens"]) <= 0.015 * record["approx_tokens"]
    check_memory_row(row, record)
