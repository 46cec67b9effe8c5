"""``synth``: long-context questions whose answers are guaranteed by construction (QwenLong-L1.5 / CorpusQA style).

Each example is a small generated world — companies with annual reports (a sector, a headquarters city, a founder
and a markdown table of yearly figures), biographies, city profiles — written out as many documents and padded
with relevant-looking distractors and filler to a target length. The generator knows every fact, so it computes
the answer:

* **numeric** — corpus-level aggregation over the tables of many documents (``sum``, ``mean``, ``max``,
  ``difference``, ``count``, ``percent_change``), a multi-hop ``bridge`` (founder -> company -> table value),
  ``years_between`` (two founding years) and ``what_if_total`` (a sector total under a stated change);
* **qa** — multi-hop chains whose hops sit in distant documents (``hq_mayor``: company -> city -> mayor;
  ``founder_river``: company -> founder -> birthplace -> river), ``founded_first`` (order of founding) and
  ``hq_city`` (one fact among near-namesake reports);
* **choice** — any of the above as a four-option question (wrong options are plausible mistakes: a distractor
  company included, the wrong year, a nearby value, another person of the same world).

Each kind also has a QwenLong-L1.5 task label — ``numerical``, ``counting``, ``multi_hop``, ``temporal``, ``niah``,
``hypothetical`` — that a run asked for ``labels`` writes as the record's ``task`` (and balances over); otherwise the
records are labelled by answer type.

``--corpus`` (:mod:`.corpus`, :mod:`.corpus_kinds`) makes each context a corpus of hundreds of documents (up to
10M tokens) and asks what only aggregation over many of them answers — counts, sums, means, spreads, comparisons,
rankings (task labels ``corpus_numerical``, ``corpus_aggregation``) — writing each example a document at a time.

Modules, one concern each: :mod:`.world` (the facts), :mod:`.documents` (their text, filler and order),
:mod:`.questions` (one registered class per question kind), :mod:`.length` (token targets and padding),
:mod:`.tokens` (builtin-tokenizer counts), :mod:`.example` (one record) and :mod:`.writer` (a run, its file
and stats). Examples are independent and seeded by ``(seed, index)``, so the output is identical for the same
arguments however it is produced.
"""

from qwenlong_verl.driver.data.synth.corpus import CorpusOptions, plan_corpus_example
from qwenlong_verl.driver.data.synth.corpus_kinds import CORPUS_KINDS
from qwenlong_verl.driver.data.synth.example import DATA_SOURCE_PREFIX, generate_example, prompt_of
from qwenlong_verl.driver.data.synth.length import MIN_TOKENS_FLOOR, target_tokens
from qwenlong_verl.driver.data.synth.questions import KINDS, NUMERIC_KINDS, QA_KINDS, TASK_LABELS, register_kind
from qwenlong_verl.driver.data.synth.world import fmt_value
from qwenlong_verl.driver.data.synth.writer import (
    SynthError,
    SynthStats,
    check_args,
    iter_examples,
    parse_labels,
    parse_tasks,
    synth,
)

__all__ = [
    "CORPUS_KINDS",
    "DATA_SOURCE_PREFIX",
    "KINDS",
    "MIN_TOKENS_FLOOR",
    "NUMERIC_KINDS",
    "QA_KINDS",
    "TASK_LABELS",
    "SynthError",
    "SynthStats",
    "CorpusOptions",
    "check_args",
    "fmt_value",
    "generate_example",
    "iter_examples",
    "parse_labels",
    "parse_tasks",
    "plan_corpus_example",
    "prompt_of",
    "register_kind",
    "synth",
    "target_tokens",
]
