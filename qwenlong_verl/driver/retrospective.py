"""Difficulty-aware retrospective sampling: carry hard examples of earlier phases into the next phase.

At a phase transition the next phase trains on its own window's examples plus examples drawn from earlier
phases (QwenLong-L1). An example's difficulty is ``1 - mean reward`` over its rollouts, read from the
difficulty ledgers (clipped to ``[0, 1]``: rewards outside it, e.g. after an overlong penalty, do not make an
example more than maximally hard). Where an example was trained in several earlier phases, its latest phase
decides. Solved examples (every rollout passed) are dropped; examples never drawn in an earlier phase have no
difficulty and are not candidates.

The draw: ``k = round(ratio * own examples)`` (at most the number of candidates with a positive weight), with
*inclusion* probability proportional to difficulty — ``π_i = k·d_i / Σd``, where an example whose ``π`` would
exceed 1 is taken for sure and the rest re-normalised — by systematic sampling over a seeded random order.
So each example's chance to be carried is exactly proportional to its difficulty (tested over many seeds),
and the same ledgers, data and seed always carry the same examples.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.files import write_with
from qwenlong_verl.driver.recipe import RetrospectiveConfig
from qwenlong_verl.worker.curriculum.ledger import LedgerRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Difficulty:
    """What the ledgers say about one example (by ``extra_info.index``)."""

    index: int
    phase: str
    """The latest phase whose ledger has the example; its records decide."""
    task: str
    rollouts: int
    mean_reward: float
    pass_rate: float

    @property
    def difficulty(self) -> float:
        return float(min(1.0, max(0.0, 1.0 - self.mean_reward)))

    @property
    def solved(self) -> bool:
        return self.pass_rate >= 1.0


def example_difficulties(ledgers: Sequence[tuple[str, Sequence[LedgerRecord]]]) -> dict[int, Difficulty]:
    """Per example, its rollouts pooled over all records of its latest phase (``ledgers`` in phase order)."""
    out: dict[int, Difficulty] = {}
    for phase, records in ledgers:
        pooled: dict[int, list[LedgerRecord]] = {}
        for rec in records:
            if rec.index is not None:
                pooled.setdefault(int(rec.index), []).append(rec)
        for index, recs in pooled.items():
            n = sum(r.n for r in recs)
            if n == 0:
                continue
            out[index] = Difficulty(
                index=index,
                phase=phase,
                task=recs[-1].task,
                rollouts=n,
                mean_reward=sum(r.n * r.mean_reward for r in recs) / n,
                pass_rate=sum(r.n * r.pass_rate for r in recs) / n,
            )
    return out


def inclusion_probabilities(weights: Sequence[float], k: int) -> np.ndarray:
    """``π_i ∝ w_i`` with ``Σπ = k`` and ``π_i <= 1`` (the largest are capped at 1, the rest re-normalised)."""
    w = np.asarray(weights, dtype=np.float64)
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite and >= 0")
    positive = int(np.count_nonzero(w))
    if not 0 <= k <= positive:
        raise ValueError(f"cannot draw {k} of {positive} examples with a positive weight")
    pi = np.zeros_like(w)
    certain = np.zeros(len(w), dtype=bool)
    while k:
        rest = ~certain & (w > 0)
        pi[rest] = (k - certain.sum()) * w[rest] / w[rest].sum()
        over = rest & (pi >= 1.0)
        if not over.any():
            break
        certain |= over
    pi[certain] = 1.0
    return pi


def systematic_draw(pi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Positions drawn with inclusion probabilities ``pi`` (``Σpi`` an integer): systematic sampling over a random
    order, which includes position ``i`` with probability exactly ``pi[i]``; sorted."""
    k = int(round(float(pi.sum())))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    order = rng.permutation(len(pi))
    cumulative = np.cumsum(pi[order])
    cumulative *= k / cumulative[-1]  # exact total despite rounding
    points = rng.uniform() + np.arange(k)
    picked = order[np.minimum(np.searchsorted(cumulative, points, side="right"), len(pi) - 1)]
    if len(np.unique(picked)) != k:  # only reachable through floating-point ties; keep the draw exact in size
        picked = np.unique(picked)
        missing = np.setdiff1d(np.flatnonzero(pi > 0), picked)
        picked = np.concatenate([picked, rng.choice(missing, size=k - len(picked), replace=False)])
    return np.sort(picked)


@dataclass
class CarryReport:
    """What a retrospective draw did (``<phase>/data/retrospective.json``)."""

    phase: str
    own_rows: int
    ratio: float
    weighting: str
    drop_solved: bool
    seed: int
    candidates: int
    """Earlier-phase examples with a ledger record and a data row, not already among the phase's own rows."""
    solved_dropped: int
    zero_weight: int
    """Candidates that cannot be drawn (difficulty 0 under ``weighting: difficulty``)."""
    target: int
    """``round(ratio * own_rows)``."""
    carried: int
    by_task: dict[str, int] = field(default_factory=dict)
    by_phase: dict[str, int] = field(default_factory=dict)
    mean_difficulty_candidates: float | None = None
    mean_difficulty_carried: float | None = None
    unseen: int = 0
    """Rows of earlier phases that no ledger record covers (never drawn there): not candidates."""
    no_row: int = 0
    """Ledger examples whose row is in none of the earlier phases' files: not candidates."""
    indices: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """A few lines for the console."""
        lines = [
            f"{self.phase}: carried {self.carried} hard example(s) of earlier phases (target {self.target} = "
            f"{self.ratio:g} x {self.own_rows} own rows; {self.weighting} weighting, seed {self.seed})",
            f"  candidates {self.candidates}: {self.solved_dropped} solved dropped, {self.zero_weight} at zero weight; "
            f"{self.unseen} earlier rows never drawn, {self.no_row} ledger entries without a row",
        ]
        if self.carried:
            lines.append(
                f"  mean difficulty: carried {self.mean_difficulty_carried:.3f}, "
                f"candidates {self.mean_difficulty_candidates:.3f}"
            )
            lines.append("  by task: " + ", ".join(f"{t} {n}" for t, n in sorted(self.by_task.items())))
            lines.append("  from: " + ", ".join(f"{p} {n}" for p, n in self.by_phase.items()))
        return "\n".join(lines)


def choose_carry(
    difficulties: Mapping[int, Difficulty],
    candidates: Sequence[int],
    own_rows: int,
    cfg: RetrospectiveConfig,
    phase: str,
    phase_number: int,
) -> tuple[list[int], CarryReport]:
    """Draw the carried examples among ``candidates`` (indices with a difficulty and a row); deterministic."""
    pool = sorted(int(i) for i in candidates)
    solved = [i for i in pool if difficulties[i].solved] if cfg.drop_solved else []
    pool = [i for i in pool if i not in set(solved)]
    if cfg.weighting == "difficulty":
        weights = np.array([difficulties[i].difficulty for i in pool], dtype=np.float64)
    elif cfg.weighting == "uniform":
        weights = np.ones(len(pool), dtype=np.float64)
    else:
        raise ValueError(f"unknown retrospective weighting {cfg.weighting!r}")
    target = int(round(cfg.ratio * own_rows))
    drawable = int(np.count_nonzero(weights))
    k = min(target, drawable)
    rng = np.random.default_rng([cfg.seed, phase_number])
    picked = [pool[p] for p in systematic_draw(inclusion_probabilities(weights, k), rng)]
    all_d = [difficulties[i].difficulty for i in pool]
    report = CarryReport(
        phase=phase,
        own_rows=own_rows,
        ratio=cfg.ratio,
        weighting=cfg.weighting,
        drop_solved=cfg.drop_solved,
        seed=cfg.seed,
        candidates=len(candidates),
        solved_dropped=len(solved),
        zero_weight=len(pool) - drawable,
        target=target,
        carried=len(picked),
        by_task=dict(Counter(difficulties[i].task for i in picked)),
        by_phase=dict(Counter(difficulties[i].phase for i in picked)),
        mean_difficulty_candidates=float(np.mean(all_d)) if all_d else None,
        mean_difficulty_carried=float(np.mean([difficulties[i].difficulty for i in picked])) if picked else None,
        indices=picked,
    )
    return picked, report


# ----------------------------------------------------------------------------- parquet


class DataFileError(InputError):
    """A parquet file that cannot be read (corrupt, truncated, empty); the message names it."""


@contextmanager
def reading(path: str | Path) -> Iterator[None]:
    """Turn pyarrow's failure on a broken parquet file into one line naming the file and the fix."""
    import pyarrow as pa

    try:
        yield
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataFileError(
            f"{path}: not a readable parquet file ({reason}); rebuild it (e.g. rerun `qwenlong-verl prepare`) "
            "or point the recipe at another file"
        ) from None


def read_table(path: str | Path, columns: Sequence[str] | None = None):
    """One parquet file as a pyarrow table (only ``columns`` that exist, when given); :class:`DataFileError`
    when it cannot be read."""
    import pyarrow.parquet as pq

    with reading(path):
        file = pq.ParquetFile(path)
        if columns is not None:
            columns = [c for c in columns if c in file.schema_arrow.names]
        return file.read(columns=columns)


def count_rows(path: str | Path) -> int:
    """Rows of a parquet file, from its footer; :class:`DataFileError` when it cannot be read."""
    import pyarrow.parquet as pq

    with reading(path):
        return pq.ParquetFile(path).metadata.num_rows


def read_rows(files: Sequence[str | Path]) -> list[dict[str, Any]]:
    """All rows of parquet files, as plain dicts, in file order."""
    rows: list[dict[str, Any]] = []
    for path in files:
        if not Path(path).is_file():
            raise FileNotFoundError(f"data file not found: {path}")
        rows.extend(read_table(path).to_pylist())
    return rows


def row_index(row: Mapping[str, Any], where: str) -> int:
    """``extra_info.index`` of a row; the ledger and the carry-over key on it."""
    info = row.get("extra_info")
    index = info.get("index") if isinstance(info, Mapping) else None
    if isinstance(index, bool) or not isinstance(index, int):
        raise ValueError(
            f"{where}: row has no integer extra_info.index; retrospective sampling keys examples on it "
            "(`qwenlong-verl prepare` writes it)"
        )
    return index


def write_rows(rows: Sequence[Mapping[str, Any]], path: str | Path, like: Sequence[str | Path] = ()) -> None:
    """Write rows atomically (whole file or none); with the schema of ``like``'s first file if it fits."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = None
    if like:
        with reading(like[0]):
            schema = pq.read_schema(like[0])
    if schema is not None and not all(_fits(schema, row) for row in rows):
        schema = None  # a field the source schema lacks (e.g. extra_info.phase added above): infer instead
    try:
        table = pa.Table.from_pylist(list(rows), schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError):
        table = pa.Table.from_pylist(list(rows))
    write_with(path, lambda tmp: pq.write_table(table, tmp))


def _fits(schema, row: Mapping[str, Any]) -> bool:
    """Every key of the row (and of its struct columns) has a place in ``schema``."""
    import pyarrow as pa

    if set(row) - set(schema.names):
        return False
    for name, value in row.items():
        kind = schema.field(name).type
        if isinstance(value, Mapping) and pa.types.is_struct(kind):
            if set(value) - {kind.field(i).name for i in range(kind.num_fields)}:
                return False
    return True


def split_validation(rows: list[dict[str, Any]], size: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Hold out ``size`` rows (seeded, order kept) as a validation set; returns ``(train, val)``."""
    if size >= len(rows):
        raise ValueError(f"cannot hold out {size} validation rows of {len(rows)}; lower data.val_size")
    rng = np.random.default_rng(seed)
    held = set(rng.choice(len(rows), size=size, replace=False).tolist())
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


def carry_over(
    own_rows: Sequence[dict[str, Any]],
    earlier: Sequence[tuple[str, int, Sequence[str | Path], Sequence[LedgerRecord]]],
    cfg: RetrospectiveConfig,
    phase: str,
    phase_number: int,
) -> tuple[list[dict[str, Any]], CarryReport]:
    """The rows to add to a phase: ``earlier`` is ``(phase name, phase number, train files, ledger records)`` of
    each earlier phase, in order. Carried rows keep ``extra_info.phase`` of the bin they came from (set to the
    earlier phase's number where missing), which is how the trainer counts ``qwenlong/retro_share``."""
    own = {row_index(r, f"{phase} own rows") for r in own_rows}
    rows_by_index: dict[int, dict[str, Any]] = {}
    for name, number, files, _ in earlier:
        for row in read_rows(files):
            index = row_index(row, f"phase {name} file")
            info = dict(row["extra_info"])
            if info.get("phase") is None:
                info["phase"] = number
            rows_by_index[index] = {**row, "extra_info": info}
    difficulties = example_difficulties([(name, records) for name, _, _, records in earlier])
    candidates = [i for i in difficulties if i in rows_by_index and i not in own]
    picked, report = choose_carry(difficulties, candidates, len(own_rows), cfg, phase, phase_number)
    report.unseen = sum(1 for i in rows_by_index if i not in difficulties and i not in own)
    report.no_row = sum(1 for i in difficulties if i not in rows_by_index)
    return [rows_by_index[i] for i in picked], report
