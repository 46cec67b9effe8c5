"""pass@k difficulty: the difficulty file, and how ``prepare`` bins, filters and balances rows by it.

QwenLong-L1.5 measures each training question with the base model before RL (several samples per question,
scored like training), drops what the model always solves (no learning signal: every group has zero variance)
and what it never solves, and balances what is left over difficulty bins. ``qwenlong-verl difficulty``
(:mod:`qwenlong_verl.driver.eval.difficulty`) writes the measurements; this module reads them back and applies
them in ``prepare``, as pure functions of rows and measurements.

The difficulty file is JSON lines, one record per example (:meth:`Measurement.to_record`). Its key is the row's
``extra_info.source_id`` — the input record's own id — because it survives re-preparation: ``extra_info.index``
is a position among all input rows and moves when inputs are added or reordered. ``prepare`` reads only ``key``,
``samples`` and ``correct`` of a record and recomputes every pass@k from them.

pass@k is the unbiased estimator of :func:`qwenlong_verl.driver.eval.scoring.pass_at_k` over the ``samples``
answered and scored (``1 - C(samples - correct, k) / C(samples, k)``); pass@1 is ``correct / samples``. An
example with no answered sample (a dead server) is *unmeasured*: no pass rate at all, never 0.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.files import input_problem
from qwenlong_verl.driver.data.schema import RowError, read_json_lines
from qwenlong_verl.driver.eval.scoring import default_ks, pass_at_k
from qwenlong_verl.driver.eval.store import write_jsonl

logger = logging.getLogger(__name__)

DIFFICULTY_FILE = "difficulty.jsonl"
"""Default name of the difficulty file inside a ``difficulty`` folder."""

REPORT_FILE = "difficulty.md"
"""The markdown report ``prepare --difficulty`` writes beside ``stats.json``."""

DEFAULT_BINS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
"""pass@1 bin edges: four bins of equal width."""

ROW_FIELDS: tuple[tuple[str, str], ...] = (("pass_rate", "float64"), ("pass_at_k", "float64"), ("pass_k", "int64"))
"""The ``extra_info`` fields ``prepare --difficulty`` adds to every row (null where unmeasured)."""

DROP_REASONS = ("solved", "unsolvable", "unmeasured", "bin_share")
"""Why ``prepare --difficulty`` leaves a row out (``stats.json`` ``dropped`` counts them beside the row problems)."""

_LOGGED = 20


class DifficultyFileError(InputError):
    """A difficulty file that cannot be used at all (missing, no usable record, no key matching the data)."""


class DifficultyOptionError(InputError):
    """Difficulty options that contradict each other or are out of range."""


# ----------------------------------------------------------------------------- one measurement


@dataclass(frozen=True)
class Measurement:
    """What the sampled model did on one example."""

    key: str
    """The example's ``extra_info.source_id``."""

    samples: int
    """Samples answered and scored: the ``n`` of the pass@k estimator (0: unmeasured)."""

    correct: int
    """Of those, correct (the training reward's ``acc`` is 1)."""

    n: int | None = None
    """Samples asked for; ``n - samples`` failed or are still missing."""

    failed: int = 0
    """Samples whose request or scoring failed (retried by a rerun)."""

    model: str | None = None
    """The served model name that was sampled."""

    index: int | None = None
    """``extra_info.index`` when measured (informational: it moves when inputs change)."""

    task: str | None = None
    data_source: str | None = None
    phase: int | None = None

    @property
    def measured(self) -> bool:
        return self.samples > 0

    @property
    def solved(self) -> bool:
        """Every answered sample correct (pass@1 = 1)."""
        return self.measured and self.correct == self.samples

    @property
    def unsolvable(self) -> bool:
        """No answered sample correct (pass@k = 0 for every k)."""
        return self.measured and self.correct == 0

    @property
    def pass_rate(self) -> float | None:
        """pass@1 = correct / samples; None when unmeasured."""
        return self.correct / self.samples if self.measured else None

    def pass_at(self, k: int) -> float:
        """The unbiased pass@k (``1 <= k <= samples``); pass@1 exactly ``correct / samples``."""
        if k == 1:
            return self.correct / self.samples
        return pass_at_k(self.samples, self.correct, k) + 0.0  # + 0.0: no -0.0 in the file

    @property
    def pass_at_samples(self) -> float | None:
        """pass@k for k = samples (1 when any sample was correct); None when unmeasured."""
        return self.pass_at(self.samples) if self.measured else None

    def to_record(self) -> dict[str, Any]:
        """The difficulty file's line for this example."""
        return {
            "key": self.key,
            "index": self.index,
            "data_source": self.data_source,
            "task": self.task,
            "phase": self.phase,
            "model": self.model,
            "n": self.n,
            "samples": self.samples,
            "correct": self.correct,
            "failed": self.failed,
            "measured": self.measured,
            "pass_rate": self.pass_rate,
            "pass_at": {str(k): self.pass_at(k) for k in default_ks(self.samples)} if self.measured else {},
        }


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def measurement_from_record(value: Any, where: str) -> Measurement:
    """A difficulty file line as a :class:`Measurement`; a ``ValueError`` naming ``where`` (``FILE line N``) and
    the field when it is not one. Only ``key``, ``samples`` and ``correct`` are required (the rest is kept when
    well-typed: it is for reading the file)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a JSON object, got {type(value).__name__}")
    key = value.get("key")
    if _whole(key):
        key = str(key)
    if not isinstance(key, str) or not key.strip():
        raise ValueError(f"{where}: field 'key': missing or not text (the example's extra_info.source_id)")
    samples, correct = value.get("samples"), value.get("correct")
    if not _whole(samples) or samples < 0:
        raise ValueError(f"{where}: field 'samples': must be a whole number >= 0, got {samples!r}")
    if not _whole(correct) or not 0 <= correct <= samples:
        raise ValueError(
            f"{where}: field 'correct': must be a whole number from 0 to samples ({samples}), got {correct!r}"
        )

    def optional(name: str, kind: type) -> Any:
        item = value.get(name)
        return item if isinstance(item, kind) and not isinstance(item, bool) else None

    failed = optional("failed", int)
    return Measurement(
        key=key,
        samples=samples,
        correct=correct,
        n=optional("n", int),
        failed=failed if failed is not None and failed >= 0 else 0,
        model=optional("model", str),
        index=optional("index", int),
        task=optional("task", str),
        data_source=optional("data_source", str),
        phase=optional("phase", int),
    )


def write_difficulty(path: str | Path, measurements: Iterable[Measurement]) -> None:
    """Replace ``path`` atomically with one line per measurement."""
    write_jsonl(path, (m.to_record() for m in measurements))


@dataclass
class DifficultyTable:
    """A difficulty file as read: its usable records by key and the lines skipped."""

    path: str
    records: dict[str, Measurement]
    lines: int
    """Non-blank lines read."""

    bad: list[str] = field(default_factory=list)
    """One message per skipped line (``FILE line N: field 'F': what``)."""


def load_difficulty(path: str | Path) -> DifficultyTable:
    """Read a difficulty file. A bad line (not JSON, a wrong field, a repeated key) is logged, counted and skipped;
    a file that is missing or has no usable line is a :class:`DifficultyFileError`."""
    problem = input_problem([path])
    if problem:
        raise DifficultyFileError(f"--difficulty: {problem}; write the file with `qwenlong-verl difficulty`")
    records: dict[str, Measurement] = {}
    first_line: dict[str, int] = {}
    bad: list[str] = []
    lines = 0
    for number, value in read_json_lines(path, error=DifficultyFileError):
        lines += 1
        where = f"{path} line {number}"
        try:
            if isinstance(value, RowError):
                raise ValueError(value.at(where))
            record = measurement_from_record(value, where)
            if record.key in records:
                raise ValueError(f"{where}: field 'key': {record.key!r} repeats line {first_line[record.key]}")
        except ValueError as exc:
            bad.append(str(exc))
            if len(bad) <= _LOGGED:
                logger.warning("difficulty file: skipped %s", exc)
            continue
        records[record.key] = record
        first_line[record.key] = number
    if not records:
        more = f" (and {len(bad) - 1} more bad lines)" if len(bad) > 1 else ""
        why = bad[0] + more if bad else f"{path}: no records"
        raise DifficultyFileError(f"--difficulty: {why}; write the file with `qwenlong-verl difficulty`")
    if len(bad) > _LOGGED:
        logger.warning("difficulty file: ... and %d more bad lines skipped", len(bad) - _LOGGED)
    return DifficultyTable(str(path), records, lines, bad)


# ----------------------------------------------------------------------------- options


def parse_bins(text: str | Sequence[float]) -> list[float]:
    """``"0,0.25,0.5,0.75,1"`` (or a list) -> strictly increasing pass@1 edges from 0 to 1."""
    items = str(text).split(",") if isinstance(text, str) else list(text)
    try:
        edges = [float(str(item).strip()) for item in items if str(item).strip()]
    except ValueError:
        raise DifficultyOptionError(f"--bins {text!r}: not a list of numbers; use e.g. 0,0.25,0.5,0.75,1") from None
    if (
        len(edges) < 2
        or not all(math.isfinite(e) for e in edges)
        or edges[0] != 0
        or edges[-1] != 1
        or any(b <= a for a, b in zip(edges, edges[1:], strict=False))
    ):
        raise DifficultyOptionError(
            f"--bins {text!r}: need increasing pass@1 edges from 0 to 1 (at least two), e.g. 0,0.25,0.5,0.75,1"
        )
    return edges


def parse_shares(text: str | Sequence[float]) -> list[float]:
    """``"0.4,0.4,0.4,0.4"`` (or a list) -> shares in [0, 1], at least one positive."""
    items = str(text).split(",") if isinstance(text, str) else list(text)
    try:
        shares = [float(str(item).strip()) for item in items if str(item).strip()]
    except ValueError:
        raise DifficultyOptionError(f"--bin-shares {text!r}: not a list of numbers; use e.g. 0.4,0.4,0.4,0.4") from None
    if not shares or not all(math.isfinite(s) and 0 <= s <= 1 for s in shares) or not any(shares):
        raise DifficultyOptionError(f"--bin-shares {text!r}: each share must be from 0 to 1, at least one above 0")
    return shares


@dataclass
class DifficultyFilter:
    """Join a pass@k difficulty file (``qwenlong-verl difficulty``) to the rows; filter and balance by it."""

    file: str | None = None
    """Difficulty file written by `qwenlong-verl difficulty`: each row gets extra_info.pass_rate, pass_at_k,
    pass_k by its extra_info.source_id, and difficulty.md reports the bins (the options below need it)."""

    drop_solved: bool = False
    """Leave out rows every measured sample solved (pass@1 = 1: no learning signal)."""

    drop_unsolvable: bool = False
    """Leave out rows no measured sample solved (pass@k = 0)."""

    drop_unmeasured: bool = False
    """Leave out rows the file has no measurement for (default: keep them, counted as unmeasured)."""

    bins: Sequence[float] = DEFAULT_BINS
    """pass@1 bin edges from 0 to 1; bins are [a, b), the last [a, 1]."""

    bin_shares: Sequence[float] = ()
    """At most this share of a phase per bin, one per bin (e.g. 0.4,0.4,0.4,0.4); shares summing to 1 give exactly
    that mix, 0 leaves a bin out. Rows over a share are left out, chosen by --bin-seed."""

    seed: int = 0
    """Seed of the per-bin choice (same seed and data, same rows)."""

    def __post_init__(self):
        self.bins = parse_bins(self.bins)
        self.bin_shares = parse_shares(self.bin_shares) if len(self.bin_shares) else []
        if self.file is None:
            given = [
                flag
                for flag, on in (
                    ("--drop-solved", self.drop_solved),
                    ("--drop-unsolvable", self.drop_unsolvable),
                    ("--drop-unmeasured", self.drop_unmeasured),
                    ("--bins", list(self.bins) != list(DEFAULT_BINS)),
                    ("--bin-shares", bool(self.bin_shares)),
                )
                if on
            ]
            if given:
                verb = "needs" if len(given) == 1 else "need"
                raise DifficultyOptionError(f"{', '.join(given)} {verb} --difficulty FILE (a pass@k difficulty file)")
        if self.bin_shares:
            if len(self.bin_shares) != len(self.bins) - 1:
                raise DifficultyOptionError(
                    f"--bin-shares gives {len(self.bin_shares)} shares for {len(self.bins) - 1} bins of --bins "
                    f"{','.join(f'{e:g}' for e in self.bins)}; give one share per bin"
                )
            if sum(self.bin_shares) < 1 - 1e-9:
                raise DifficultyOptionError(
                    f"--bin-shares {','.join(f'{s:g}' for s in self.bin_shares)} sum to less than 1; they are the "
                    "most each bin may hold of a phase, so no phase could be filled (sum 1: an exact mix)"
                )

    @property
    def active(self) -> bool:
        return self.file is not None

    @property
    def labels(self) -> list[str]:
        return bin_labels(self.bins)


def bin_labels(edges: Sequence[float]) -> list[str]:
    """``[0, 0.25)`` ... ``[0.75, 1]``."""
    last = len(edges) - 2
    return [
        f"[{lo:g}, {hi:g}{']' if i == last else ')'}" for i, (lo, hi) in enumerate(zip(edges, edges[1:], strict=False))
    ]


def bin_of(value: float, edges: Sequence[float]) -> int:
    """The bin of a pass@1 value: ``[a, b)``, the last bin closed."""
    return min(max(bisect.bisect_right(edges, value) - 1, 0), len(edges) - 2)


def bin_counts(values: Iterable[float], edges: Sequence[float]) -> list[int]:
    counts = [0] * (len(edges) - 1)
    for value in values:
        counts[bin_of(value, edges)] += 1
    return counts


# ----------------------------------------------------------------------------- balancing


def bin_quotas(counts: Sequence[int], shares: Sequence[float]) -> list[int]:
    """Rows to keep per bin: the largest total ``K`` such that each bin keeps at most ``floor(share * K)`` of its
    ``count`` rows and the kept rows add up to ``K``.

    Found as a fixed point from ``K = sum(counts)``: ``K <- sum(min(count, floor(share * K)))`` never passes a
    feasible total (the sum grows with ``K``), so the first ``K`` it holds at is the largest. Where the bins
    could give more than ``K``, the surplus comes off the fullest bins first.
    """
    if len(counts) != len(shares):
        raise ValueError("one share per bin")

    def room(total: int) -> list[int]:
        return [min(c, math.floor(s * total + 1e-9)) for c, s in zip(counts, shares, strict=True)]

    total = sum(counts)
    while total > 0 and sum(room(total)) < total:
        total = sum(room(total))
    quotas = room(total)
    for _ in range(sum(quotas) - total):
        fullest = max(range(len(quotas)), key=lambda b: (quotas[b], -b))
        quotas[fullest] -= 1
    return quotas


def choice_rank(key: str, seed: int) -> str:
    """Order of the seeded per-bin choice: a hash of (seed, key), so a row's fate does not depend on input order."""
    return hashlib.sha256(f"{seed}\x00{key}".encode("utf-8", "surrogatepass")).hexdigest()


# ----------------------------------------------------------------------------- applying it in prepare


@dataclass
class PhaseDifficulty:
    """What the difficulty file did to one phase."""

    phase: int
    rows_in: int
    measured: int
    unmeasured: int
    solved: int
    unsolvable: int
    bins_before: list[int]
    """Measured rows per pass@1 bin, before anything was left out."""

    bins_after: list[int]
    """Measured rows per bin written."""

    dropped: dict[str, int]
    """Rows left out per reason (``solved``, ``unsolvable``, ``unmeasured``, ``bin_share``)."""

    rows_out: int


@dataclass
class DifficultyReport:
    """The ``difficulty`` section of ``stats.json`` and of ``difficulty.md``."""

    file: str
    records: int
    bad_lines: int
    matched: int
    """Records whose key is a row of this prepare (before filtering)."""

    unmatched: int
    """Records no row has (rows dropped as problems, another data set)."""

    bins: list[float]
    labels: list[str]
    bin_shares: list[float]
    drop_solved: bool
    drop_unsolvable: bool
    drop_unmeasured: bool
    seed: int
    phases: list[PhaseDifficulty]
    dropped: dict[str, int]
    """Rows left out over all phases, per reason."""

    bad_examples: list[str] = field(default_factory=list)
    """The first skipped lines of the file."""


def _total(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for count in counts:
        total.update(count)
    return {reason: total[reason] for reason in DROP_REASONS if total[reason]}


def annotate(row: dict, measurement: Measurement | None) -> None:
    """Add the :data:`ROW_FIELDS` to a prepared row's ``extra_info`` (None where unmeasured)."""
    info = row["extra_info"]
    measured = measurement is not None and measurement.measured
    info["pass_rate"] = measurement.pass_rate if measured else None
    info["pass_at_k"] = measurement.pass_at_samples if measured else None
    info["pass_k"] = measurement.samples if measured else None


def _phase(
    phase: int, rows: list[dict], table: DifficultyTable, options: DifficultyFilter
) -> tuple[list[dict], PhaseDifficulty]:
    edges = options.bins
    kept: list[dict] = []
    by_bin: list[list[dict]] = [[] for _ in range(len(edges) - 1)]
    dropped: Counter[str] = Counter()
    before = [0] * (len(edges) - 1)
    measured = solved = unsolvable = 0
    for row in rows:
        m = table.records.get(row["extra_info"]["source_id"])
        annotate(row, m)
        if m is None or not m.measured:
            if options.drop_unmeasured:
                dropped["unmeasured"] += 1
            else:
                kept.append(row)
            continue
        measured += 1
        solved += m.solved
        unsolvable += m.unsolvable
        bin_index = bin_of(m.pass_rate, edges)
        before[bin_index] += 1
        if m.solved and options.drop_solved:
            dropped["solved"] += 1
        elif m.unsolvable and options.drop_unsolvable:
            dropped["unsolvable"] += 1
        else:
            by_bin[bin_index].append(row)
    candidates = [len(b) for b in by_bin]
    if options.bin_shares:
        quotas = bin_quotas(candidates, options.bin_shares)
        for b, members in enumerate(by_bin):
            members.sort(key=lambda r: choice_rank(r["extra_info"]["source_id"], options.seed))
            dropped["bin_share"] += len(members) - quotas[b]
            del members[quotas[b] :]
    for members in by_bin:
        kept.extend(members)
    stats = PhaseDifficulty(
        phase=phase,
        rows_in=len(rows),
        measured=measured,
        unmeasured=len(rows) - measured,
        solved=solved,
        unsolvable=unsolvable,
        bins_before=before,
        bins_after=[len(b) for b in by_bin],
        dropped={reason: dropped[reason] for reason in DROP_REASONS if dropped[reason]},
        rows_out=len(kept),
    )
    if any(candidates) and not any(stats.bins_after):
        shares = zip(options.labels, candidates, options.bin_shares, strict=True)
        logger.warning(
            "phase %d: --bin-shares kept no measured row: the bins %s are empty, so no mix within the shares exists; "
            "raise the other shares (they are maxima and may sum to more than 1)",
            phase,
            ", ".join(label for label, n, share in shares if share and not n),
        )
    return kept, stats


def apply_difficulty(
    by_phase: Mapping[int, list[dict]], table: DifficultyTable, options: DifficultyFilter
) -> tuple[dict[int, list[dict]], DifficultyReport]:
    """Annotate every row, drop solved / unsolvable / unmeasured rows as asked and cap each bin at its share, per
    phase. Raises :class:`DifficultyFileError` when rows exist but no key of the file matches any of them."""
    keys = {row["extra_info"]["source_id"] for rows in by_phase.values() for row in rows}
    matched = len(keys & table.records.keys())
    if keys and not matched:
        first_row = min(keys)
        first_key = next(iter(table.records))
        raise DifficultyFileError(
            f"--difficulty {table.path}: none of its {len(table.records)} keys is the extra_info.source_id of an "
            f"input row (a key: {first_key!r}; a row: {first_row!r}); measure these rows with `qwenlong-verl "
            "difficulty`, which keys on source_id"
        )
    out: dict[int, list[dict]] = {}
    phases: list[PhaseDifficulty] = []
    for phase, rows in by_phase.items():
        out[phase], stats = _phase(phase, rows, table, options)
        phases.append(stats)
    report = DifficultyReport(
        file=table.path,
        records=len(table.records),
        bad_lines=len(table.bad),
        matched=matched,
        unmatched=len(table.records) - matched,
        bins=list(options.bins),
        labels=options.labels,
        bin_shares=list(options.bin_shares),
        drop_solved=options.drop_solved,
        drop_unsolvable=options.drop_unsolvable,
        drop_unmeasured=options.drop_unmeasured,
        seed=options.seed,
        phases=phases,
        dropped=_total(p.dropped for p in phases),
        bad_examples=table.bad[:_LOGGED],
    )
    return out, report


def with_difficulty_fields(schema, rows: Sequence[Mapping[str, Any]]):
    """``schema`` (the prepared-row arrow schema) with the :data:`ROW_FIELDS` added to ``extra_info`` when the rows
    carry them; else ``schema`` itself, so files written without a difficulty file do not change."""
    if not rows or "pass_rate" not in rows[0]["extra_info"]:
        return schema
    import pyarrow as pa

    position = schema.get_field_index("extra_info")
    struct = schema.field(position).type
    fields = [struct.field(i) for i in range(struct.num_fields)]
    fields += [pa.field(name, getattr(pa, kind)()) for name, kind in ROW_FIELDS]
    return schema.set(position, pa.field("extra_info", pa.struct(fields)))


# ----------------------------------------------------------------------------- report


def report_table(report: DifficultyReport) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-phase table (``before → after`` per bin), shared by the markdown and the CLI."""
    header = ["phase", "rows", "unmeasured", "solved", "unsolvable", *report.labels, "left out", "written"]
    rows = []
    phases = list(report.phases)
    if len(phases) > 1:
        width = len(report.labels)
        total = PhaseDifficulty(
            phase=0,
            rows_in=sum(p.rows_in for p in phases),
            measured=sum(p.measured for p in phases),
            unmeasured=sum(p.unmeasured for p in phases),
            solved=sum(p.solved for p in phases),
            unsolvable=sum(p.unsolvable for p in phases),
            bins_before=[sum(p.bins_before[b] for p in phases) for b in range(width)],
            bins_after=[sum(p.bins_after[b] for p in phases) for b in range(width)],
            dropped=report.dropped,
            rows_out=sum(p.rows_out for p in phases),
        )
        phases.append(total)
    for p in phases:
        rows.append(
            [
                str(p.phase) if p.phase else "all",
                str(p.rows_in),
                str(p.unmeasured),
                str(p.solved),
                str(p.unsolvable),
                *(f"{a} → {b}" if a != b else str(a) for a, b in zip(p.bins_before, p.bins_after, strict=True)),
                ", ".join(f"{reason} {n}" for reason, n in p.dropped.items()) or "none",
                str(p.rows_out),
            ]
        )
    return header, rows


def settings_line(report: DifficultyReport) -> str:
    """One line saying how the file was applied."""
    shares = ", ".join(f"{label} ≤ {s:g}" for label, s in zip(report.labels, report.bin_shares, strict=False))
    return (
        f"bins on pass@1; drop solved: {'yes' if report.drop_solved else 'no'}; drop unsolvable: "
        f"{'yes' if report.drop_unsolvable else 'no'}; unmeasured rows: {'dropped' if report.drop_unmeasured else 'kept'}; "
        f"bin shares: {shares or 'none (no balancing)'}; seed {report.seed}"
    )


def file_line(report: DifficultyReport) -> str:
    return (
        f"{report.file}: {report.records} records ({report.bad_lines} bad lines skipped), {report.matched} matched a "
        f"row, {report.unmatched} matched none"
    )


def report_markdown(report: DifficultyReport) -> str:
    """``difficulty.md``: the file, the settings, and per phase the rows per bin before → after."""
    header, rows = report_table(report)
    lines = [
        "# pass@k difficulty",
        "",
        f"Difficulty file {file_line(report)}.",
        "",
        settings_line(report) + ".",
        "",
        "Per phase: measured rows per pass@1 bin before → after leaving rows out; `left out` counts the rows "
        "dropped for their difficulty (solved: pass@1 = 1, unsolvable: pass@k = 0, unmeasured: no answered "
        "sample, bin_share: over the bin's share).",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    if report.bad_examples:
        lines += ["", "Skipped lines of the difficulty file:", "", *(f"- {m}" for m in report.bad_examples)]
        if report.bad_lines > len(report.bad_examples):
            lines.append(f"- ... and {report.bad_lines - len(report.bad_examples)} more")
    return "\n".join(lines) + "\n"
