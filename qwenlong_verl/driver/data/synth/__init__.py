"""``synth``: long-context questions whose answers are guaranteed by construction (QwenLong-L1.5 / CorpusQA style).

Each example is a small generated world — companies with annual reports (a sector, a headquarters city, a founder
and a markdown table of yearly figures), biographies, city profiles — written out as many documents and padded
with relevant-looking distractors and filler to a target length. The generator knows every fact, so it computes
the answer:

* **numeric** — corpus-level aggregation over the tables of many documents (``sum``, ``mean``, ``max``,
  ``difference``, ``count``, ``percent_change``) and a multi-hop ``bridge`` (founder -> company -> table value);
* **qa** — multi-hop chains whose hops sit in distant documents (``hq_mayor``: company -> city -> mayor;
  ``founder_river``: company -> founder -> birthplace -> river);
* **choice** — any of the above as a four-option question (wrong options are plausible mistakes: a distractor
  company included, the wrong year, a nearby value, another person of the same world).

Modules, one concern each: :mod:`.world` (the facts), :mod:`.documents` (their text, filler and order),
:mod:`.questions` (one registered class per question kind), :mod:`.length` (token targets and padding),
:mod:`.tokens` (builtin-tokenizer counts), :mod:`.example` (one record) and :mod:`.writer` (a run, its file
and stats). Examples are independent and seeded by ``(seed, index)``, so the output is identical for the same
arguments however it is produced.
"""

from qwenlong_verl.driver.data.synth.example import DATA_SOURCE_PREFIX, generate_example, prompt_of
from qwenlong_verl.driver.data.synth.length import MIN_TOKENS_FLOOR, target_tokens
from qwenlong_verl.driver.data.synth.questions import KINDS, NUMERIC_KINDS, QA_KINDS, register_kind
from qwenlong_verl.driver.data.synth.world import fmt_value
from qwenlong_verl.driver.data.synth.writer import SynthError, SynthStats, check_args, iter_examples, parse_tasks, synth

__all__ = [
    "DATA_SOURCE_PREFIX",
    "KINDS",
    "MIN_TOKENS_FLOOR",
    "NUMERIC_KINDS",
    "QA_KINDS",
    "SynthError",
    "SynthStats",
    "check_args",
    "fmt_value",
    "generate_example",
    "iter_examples",
    "parse_tasks",
    "prompt_of",
    "register_kind",
    "synth",
    "target_tokens",
]
