"""Synthetic long-context questions: answers re-derived here from the generated text alone; determinism; lengths.

The re-derivation parses the documents back (fact sentences and markdown tables) and recomputes every answer
without using the generator's internals; only the question's parameters (metric, year, sector, companies,
threshold, percent) come from the record's ``meta``, and those are checked against the question text.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from qwenlong_verl.common.tasks import CHOICE, NUMERIC, QA, normalize_task_label
from qwenlong_verl.driver.data import synth

REPORT_FACTS = re.compile(
    r"^(?P<company>.+?) is an? (?P<sector>\w+) company headquartered in (?P<city>\w+)\. "
    r"(?P=company) was founded by (?P<founder>\w+ \w+) in (?P<founded>\d{4})\.",
    re.M,
)
BORN = re.compile(r"^(?P<person>\w+ \w+) was born in (?P<city>\w+)\.", re.M)
CITY = re.compile(r"The mayor of (?P<city>\w+) is (?P<mayor>\w+ \w+)\. (?P=city) lies on the (?P<river>\w+) River\.")
TABLE_HEAD = re.compile(r"^\| Metric \| (?P<years>[\d |]+) \|$", re.M)
TABLE_ROW = re.compile(r"^\| (?P<label>[^|]+?) \| (?P<cells>[-\d. |]+) \|$", re.M)


def parse_world(documents: list[dict]) -> dict:
    """Every fact the documents state, with a check that no fact is stated twice (answers must be unique)."""
    companies: dict[str, dict] = {}
    born: dict[str, str] = {}
    cities: dict[str, tuple[str, str]] = {}
    for doc in documents:
        text = doc["text"]
        for m in REPORT_FACTS.finditer(text):
            assert m["company"] not in companies, f"company {m['company']} described twice"
            head = TABLE_HEAD.search(text, m.end())
            years = [int(y) for y in head["years"].split(" | ")]
            table = {}
            for row in TABLE_ROW.finditer(text, head.end()):
                cells = row["cells"].split(" | ")
                assert len(cells) == len(years)
                table[row["label"]] = dict(zip(years, map(Decimal, cells), strict=True))
            companies[m["company"]] = {
                "sector": m["sector"],
                "city": m["city"],
                "founder": m["founder"],
                "founded": int(m["founded"]),
                "table": table,
            }
        for m in BORN.finditer(text):
            assert m["person"] not in born, f"{m['person']} born twice"
            born[m["person"]] = m["city"]
        for m in CITY.finditer(text):
            assert m["city"] not in cities, f"city {m['city']} described twice"
            cities[m["city"]] = (m["mayor"], m["river"])
    return {"companies": companies, "born": born, "cities": cities}


def shown(value: Decimal, decimals: int) -> str:
    """What "rounded to N decimals" means: half up (exact decimal arithmetic, no float)."""
    text = str(value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))
    return text.lstrip("-") if Decimal(text).is_zero() else text


def rederive(record: dict) -> str:
    """The answer text, recomputed from the documents (for choice questions: the text of the right option)."""
    world = parse_world(record["documents"])
    companies = world["companies"]
    meta, kind, question = record["meta"], record["kind"], record["question"]
    if kind in ("hq_mayor", "founder_river", "hq_city"):
        company = companies[meta["company"]]
        assert meta["company"] in question
        if kind == "hq_city":
            return company["city"]
        if kind == "hq_mayor":
            return world["cities"][company["city"]][0]
        return world["cities"][world["born"][company["founder"]]][1]
    if kind == "years_between":
        a, b = companies[meta["company_a"]], companies[meta["company_b"]]
        assert question == f"How many years after {meta['company_a']} was {meta['company_b']} founded?"
        return str(b["founded"] - a["founded"])
    if kind == "founded_first":
        assert f"the {meta['sector']} companies" in question
        in_sector = {name: c["founded"] for name, c in companies.items() if c["sector"] == meta["sector"]}
        assert len(in_sector) >= 2 and len(set(in_sector.values())) == len(in_sector)  # one answer
        return min(in_sector, key=in_sector.get)
    label = meta["metric"]
    decimals = 1 if "." in _cell(record, label) else 0
    if kind == "percent_change":
        assert meta["company"] in question and f"from {meta['start']} to {meta['end']}" in question
        table = companies[meta["company"]]["table"][label]
        v0, v1 = table[meta["start"]], table[meta["end"]]
        return shown((v1 - v0) / v0 * 100, 2)
    year = meta["year"]
    assert str(year) in question
    if kind == "bridge":
        assert meta["founder"] in question
        (company,) = [c for c in companies.values() if c["founder"] == meta["founder"]]
        return shown(company["table"][label][year], decimals)
    in_sector = [c["table"][label][year] for c in companies.values() if c["sector"] == meta["sector"]]
    assert len(in_sector) >= 2
    if kind == "difference":
        a, b = companies[meta["company_a"]], companies[meta["company_b"]]
        assert meta["company_a"] in question and meta["company_b"] in question
        return shown(a["table"][label][year] - b["table"][label][year], decimals)
    assert f"{meta['sector']} compan" in question
    if kind == "sum":
        return shown(sum(in_sector), decimals)
    if kind == "mean":
        return shown(sum(in_sector) / len(in_sector), 2)
    if kind == "max":
        return shown(max(in_sector), decimals)
    if kind == "what_if_total":
        assert meta["company"] in question and f"{meta['percent']}% higher" in question
        own = companies[meta["company"]]["table"][label][year]
        return shown(sum(in_sector) + own * meta["percent"] / Decimal(100), 2)
    if kind == "count":
        assert meta["threshold"] in question
        return str(sum(v > Decimal(meta["threshold"]) for v in in_sector))
    raise AssertionError(f"unknown kind {kind}")


def _cell(record: dict, label: str) -> str:
    for doc in record["documents"]:
        m = re.search(rf"^\| {re.escape(label)} \| ([-\d.]+) \|", doc["text"], re.M)
        if m:
            return m.group(1)
    raise AssertionError(f"no table row {label}")


def gold_text(record: dict) -> str:
    if record["answer_type"] == CHOICE:
        return record["choices"]["ABCD".index(record["answer"])]
    return record["answer"]


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return list(synth.iter_examples(60, 1500, 9000, seed=11))


@pytest.fixture(scope="module")
def labelled() -> list[dict]:
    return list(synth.iter_examples(36, 1500, 6000, seed=4, labels="all"))


def test_every_answer_rederived_from_the_documents(records):
    for record in records:
        assert gold_text(record) == rederive(record), (record["id"], record["kind"], record["question"])


def test_all_kinds_and_tasks_occur_and_tasks_rotate(records, labelled):
    """Without labels, rows are labelled by answer type, as before: the task is the answer type."""
    assert Counter(r["task"] for r in records) == {NUMERIC: 20, CHOICE: 20, QA: 20}
    assert {r["kind"] for r in records + labelled} == set(synth.KINDS)
    for record in records:
        assert record["task"] == record["answer_type"]
        assert record["data_source"] == f"qwenlong_synth_{record['answer_type']}"
        assert (record["kind"] in synth.QA_KINDS) == (record["task"] == QA) or record["task"] == CHOICE


def test_choice_variants_have_four_distinct_options_with_one_gold(records):
    for record in (r for r in records if r["answer_type"] == CHOICE):
        choices = record["choices"]
        assert len(choices) == 4 and len(set(choices)) == 4
        assert record["answer"] in "ABCD"
        assert sum(c == rederive(record) for c in choices) == 1
    letters = Counter(r["answer"] for r in records if r["answer_type"] == CHOICE)
    assert len(letters) >= 3  # the gold is not always in the same position


def test_distractors_look_relevant(records):
    for record in records:
        world = parse_world(record["documents"])
        sectors = Counter(c["sector"] for c in world["companies"].values())
        titles = [d["title"] for d in record["documents"]]
        assert len(sectors) >= 2, "companies of other sectors share the same table columns"
        assert any(t.endswith("Partners annual report") for t in titles), "a near-namesake report"
        assert any(t.endswith("sector commentary") for t in titles), "a commentary quoting other years"
        assert len(world["cities"]) > 2 and len(world["born"]) > 2


def test_hops_are_spread_across_distant_documents(records):
    for record in (r for r in records if r["kind"] in ("hq_mayor", "founder_river")):
        world = parse_world(record["documents"])
        company = record["meta"]["company"]
        titles = [d["title"] for d in record["documents"]]
        hops = [f"{company} annual report", f"{world['companies'][company]['city']} city guide"]
        if record["kind"] == "founder_river":
            founder = world["companies"][company]["founder"]
            hops = [hops[0], f"Profile of {founder}", f"{world['born'][founder]} city guide"]
        positions = sorted(titles.index(h) for h in hops)
        gaps = [b - a for a, b in zip(positions, positions[1:], strict=False)]
        assert min(gaps) >= max(2, len(titles) // (2 * len(hops)) - 1), (record["id"], positions, len(titles))


def test_lengths_follow_the_targets_and_cover_the_range(records):
    from qwenlong_verl.driver.data.template import count_prompt_tokens
    from qwenlong_verl.driver.data.tokenizer import load_tokenizer

    tok = load_tokenizer("builtin")
    targets = sorted(r["target_tokens"] for r in records)
    assert targets[0] >= 1500 and targets[-1] <= 9000
    assert targets[0] < 1700 and targets[-1] > 8800  # stratified: the range is covered evenly
    assert max(b - a for a, b in zip(targets, targets[1:], strict=False)) < 500
    for record in records[::6]:
        exact = count_prompt_tokens(synth.prompt_of(record), tok)
        assert abs(exact - record["target_tokens"]) <= 0.08 * record["target_tokens"] + 150, record["id"]
        assert abs(exact - record["approx_tokens"]) <= 0.03 * exact


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    stats = synth.synth(a, n=12, min_tokens=2000, max_tokens=6000, seed=5)
    synth.synth(b, n=12, min_tokens=2000, max_tokens=6000, seed=5)
    synth.synth(c, n=12, min_tokens=2000, max_tokens=6000, seed=6)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert stats.examples == 12 and sum(stats.tasks.values()) == 12
    lines = a.read_text().splitlines()
    assert len(lines) == 12 and len({json.loads(line)["id"] for line in lines}) == 12
    # an example depends only on (seed, index, n, range, tasks): generating one alone gives the same record
    assert json.loads(lines[7]) == synth.generate_example(7, 12, 2000, 6000, 5, synth.parse_tasks(None))


def test_tasks_filter_and_argument_errors():
    only = list(synth.iter_examples(6, 2000, 3000, seed=1, tasks="qa,mcq"))
    assert [r["task"] for r in only] == [QA, CHOICE] * 3
    with pytest.raises(synth.SynthError, match="--tasks: unknown answer type 'poetry'"):
        list(synth.iter_examples(2, 2000, 3000, tasks="poetry"))
    with pytest.raises(synth.SynthError, match="--min-tokens must be at least 1500"):
        list(synth.iter_examples(2, 500, 3000))
    with pytest.raises(synth.SynthError, match="must not be smaller"):
        list(synth.iter_examples(2, 5000, 3000))
    with pytest.raises(synth.SynthError, match="--n must be at least 1"):
        synth.synth("unused.jsonl", 0, 2000, 3000)
    for args, message in (
        ((100_000_000, 2000, 3000), "--n must be at most 1,000,000, got 100,000,000"),  # was 4 GB in 20 s
        ((2, 2000, 2_000_000_000), "--max-tokens must be at most 4,000,000"),
        ((2, 5_000_000, 6_000_000), "--min-tokens must be at most 4,000,000"),
        ((2.5, 2000, 3000), "--n must be a whole number, got 2.5"),  # was a TypeError traceback
        ((2, "2000", 3000), "--min-tokens must be a whole number"),
    ):
        with pytest.raises(synth.SynthError, match=message):
            synth.synth("unused.jsonl", *args)
    assert not Path("unused.jsonl").exists()


def test_every_kind_declares_its_task_label():
    from qwenlong_verl.driver.data.synth.questions import QUESTION_KINDS

    assert {name: (kind.answer_type, kind.task) for name, kind in QUESTION_KINDS.items()} == {
        "sum": (NUMERIC, "numerical"),
        "mean": (NUMERIC, "numerical"),
        "max": (NUMERIC, "numerical"),
        "difference": (NUMERIC, "numerical"),
        "count": (NUMERIC, "counting"),
        "percent_change": (NUMERIC, "numerical"),
        "bridge": (NUMERIC, "multi_hop"),
        "what_if_total": (NUMERIC, "hypothetical"),
        "hq_mayor": (QA, "multi_hop"),
        "founder_river": (QA, "multi_hop"),
        "founded_first": (QA, "temporal"),
        "years_between": (NUMERIC, "temporal"),
        "hq_city": (QA, "niah"),
    }
    assert synth.TASK_LABELS == ("numerical", "counting", "multi_hop", "hypothetical", "temporal", "niah")


def test_labelled_run_takes_the_task_labels_in_turn_with_answers_rederived(labelled):
    from qwenlong_verl.driver.data.synth.questions import QUESTION_KINDS

    assert Counter(r["task"] for r in labelled) == {label: 6 for label in synth.TASK_LABELS}  # 6 labels, in turn
    assert [r["task"] for r in labelled[:6]] == list(synth.TASK_LABELS)
    assert len({r["kind"] for r in labelled}) >= 10
    assert set(Counter(r["answer_type"] for r in labelled)) == {NUMERIC, QA, CHOICE}
    for record in labelled:
        kind = QUESTION_KINDS[record["kind"]]
        assert record["task"] == kind.task == normalize_task_label(record["task"])
        assert record["answer_type"] in (kind.answer_type, CHOICE)
        assert record["data_source"] == f"qwenlong_synth_{record['answer_type']}"
        assert gold_text(record) == rederive(record), (record["id"], record["kind"], record["question"])


def test_reward_routes_labelled_records_by_answer_type(labelled, monkeypatch):
    """Each labelled record's gold, phrased as a model would, scores 1.0 with the training reward (its verifier is
    picked by ``answer_type``, not by the task label); another option of the same record scores less."""
    from qwenlong_verl.worker.rewards import compute_score

    for var in ("QWENLONG_JUDGE_URLS", "QWENLONG_JUDGE_MODEL"):
        monkeypatch.delenv(var, raising=False)  # rule-only
    for record in labelled:
        info = {k: record[k] for k in ("task", "answer_type", "question")} | {"choices": record.get("choices", [])}
        said = f"<think>\nchecked\n</think>\n\nTherefore, the answer is {record['answer']}."
        assert compute_score(record["data_source"], said, record["answer"], info)["score"] == 1.0, record["id"]
        if record["answer_type"] == CHOICE:
            other = next(letter for letter in "ABCD" if letter != record["answer"])
            said = f"Therefore, the answer is {other}."
            assert compute_score(record["data_source"], said, record["answer"], info)["score"] < 1.0, record["id"]


def test_labels_with_answer_types_and_their_errors():
    niah = list(synth.iter_examples(4, 2000, 3000, seed=2, tasks="choice", labels=["NIAH"]))
    assert {(r["task"], r["answer_type"], r["kind"]) for r in niah} == {("niah", CHOICE, "hq_city")}
    temporal = list(synth.iter_examples(4, 2000, 3000, seed=2, tasks="numeric", labels="temporal,counting"))
    assert [(r["task"], r["kind"]) for r in temporal] == [("temporal", "years_between"), ("counting", "count")] * 2
    for labels, tasks, message in (
        ("poetry", None, "--labels: no question kind has task label 'poetry'; use numerical, counting"),
        ("a/b", None, "--labels: task label 'a/b' must be 1 to 32 characters"),
        ("niah", "numeric", "--labels: the niah kinds (hq_city) cannot be asked as numeric; add their answer type"),
        (",", None, "--labels: give at least one of numerical"),
    ):
        with pytest.raises(synth.SynthError, match=re.escape(message)):
            list(synth.iter_examples(2, 2000, 3000, tasks=tasks, labels=labels))


def test_synth_stats_count_labels_and_answer_types(tmp_path):
    stats = synth.synth(tmp_path / "s.jsonl", 12, 1500, 2500, seed=1, labels="all")
    assert stats.tasks == {label: 2 for label in synth.TASK_LABELS}
    assert sum(stats.answer_types.values()) == 12 and set(stats.answer_types) <= {NUMERIC, CHOICE, QA}
    plain = synth.synth(tmp_path / "p.jsonl", 6, 1500, 2500, seed=1)
    assert plain.tasks == plain.answer_types == {NUMERIC: 2, CHOICE: 2, QA: 2}


def test_cli_synth_writes_jsonl_prepare_accepts(cli, tmp_path):
    out = tmp_path / "s.jsonl"
    result = cli("synth", "--out", str(out), "--n", "4", "--min-tokens", "2000", "--max-tokens", "3000", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert "4 examples" in result.stdout
    assert out.read_text() == "".join(
        json.dumps(r, ensure_ascii=False) + "\n" for r in synth.iter_examples(4, 2000, 3000, seed=3)
    )
    bad = cli("synth", "--out", str(out), "--n", "4", "--min-tokens", "10", "--max-tokens", "3000")
    assert bad.returncode == 2 and "--min-tokens must be at least" in bad.stderr
    assert Path(out).exists()
    labelled = cli(
        "synth", "--out", str(out), "--n", "6", "--min-tokens", "2000", "--max-tokens", "3000", "--labels", "all"
    )
    assert labelled.returncode == 0, labelled.stderr
    assert "tasks numerical 1, counting 1, multi_hop 1, hypothetical 1, temporal 1, niah 1" in " ".join(
        labelled.stdout.split()
    )
    assert [json.loads(line)["task"] for line in out.read_text().splitlines()] == list(synth.TASK_LABELS)
    bad = cli("synth", "--out", str(out), "--n", "4", "--min-tokens", "2000", "--max-tokens", "3000", "--labels", "x")
    assert bad.returncode == 2 and "no question kind has task label 'x'" in bad.stderr


def test_killed_synth_leaves_the_old_file(tmp_path):
    """SIGKILL after four of forty records: the previous complete file is still there, byte for byte."""
    out = tmp_path / "s.jsonl"
    synth.synth(out, n=3, min_tokens=2000, max_tokens=3000, seed=9)
    old = out.read_bytes()
    script = (
        "import time\n"
        "from qwenlong_verl.driver.data import synth\n"
        "def progress(done, total):\n"
        "    if done == 4:\n"
        "        print('mid-write', flush=True)\n"
        "        time.sleep(120)\n"
        f"synth.synth({str(out)!r}, 40, 2000, 3000, seed=1, progress=progress)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "mid-write", proc.stderr.read() if proc.poll() is not None else line
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.read_bytes() == old
    # a rerun replaces it with the new complete file
    synth.synth(out, 40, 2000, 3000, seed=1)
    expected = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in synth.iter_examples(40, 2000, 3000, seed=1))
    assert out.read_text() == expected


def test_failed_synth_keeps_the_old_file_and_no_temporary(tmp_path):
    out = tmp_path / "s.jsonl"
    out.write_text("previous\n")

    def progress(done, total):
        if done == 2:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        synth.synth(out, 5, 2000, 3000, progress=progress)
    assert out.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["s.jsonl"]


def test_one_synth_file_feeds_prepare_sft_data_score_and_eval(cli_main, tmp_path):
    """One schema family: the same synth file, unchanged, is input to every consumer, and eval builds the very
    prompt training does."""
    from support.eval_server import ChatServer, Reply

    raw = tmp_path / "synth.jsonl"
    made = cli_main(
        "synth", "--out", str(raw), "--n", "6", "--min-tokens", "1500", "--max-tokens", "2500", "--seed", "5"
    )
    assert made.returncode == 0, made.stderr
    records = [json.loads(line) for line in raw.read_text().splitlines()]
    assert all(isinstance(d, dict) and set(d) == {"title", "text"} for r in records for d in r["documents"])

    prepared = cli_main("prepare", "--input", str(raw), "--output", str(tmp_path / "rl"), "--tokenizer", "builtin")
    assert prepared.returncode == 0, prepared.stderr
    assert "6 of 6 rows written" in prepared.stdout

    sft = cli_main("sft-data", "--input", str(raw), "--output", str(tmp_path / "sft.parquet"))
    assert sft.returncode == 0, sft.stderr
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "sft.parquet").num_rows == 6

    responses = tmp_path / "responses.jsonl"  # a synth line plus the model's response scores as it is
    responses.write_text(
        "".join(json.dumps({**r, "response": f"Therefore, the answer is {r['answer']}."}) + "\n" for r in records)
    )
    scored = cli_main("score", "--input", str(responses), "--output", str(tmp_path / "scored.jsonl"), "--no-judge")
    assert scored.returncode == 0, scored.stderr
    rewards = [json.loads(line)["reward"]["score"] for line in (tmp_path / "scored.jsonl").read_text().splitlines()]
    assert rewards == [1.0] * 6

    by_question = {r["question"]: r for r in records}

    def answer(call):
        record = next(r for q, r in by_question.items() if q in call.prompt)
        assert call.prompt == synth.prompt_of(record)[-1]["content"]  # the training prompt, byte for byte
        return Reply(text=f"<think>Read it.</think>\nTherefore, the answer is {record['answer']}.")

    with ChatServer(answer) as server:
        out = tmp_path / "eval"
        args = ["eval", "--model-url", server.url, "--model", "policy", "--bench", f"mine={raw}", "--out", str(out)]
        evaluated = cli_main(*args, "--n", "1", "--tokenizer", "builtin")
        assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
        assert len(server.calls_snapshot()) == 6
    summary = json.loads((out / "report" / "summary.json").read_text())
    mine = next(b for b in summary["benchmarks"] if b["name"] == "mine")
    assert mine["items"] == 6 and mine["accuracy"] == 1.0
