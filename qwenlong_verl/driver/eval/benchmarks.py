"""Benchmark files on local disk -> :class:`EvalItem` (id, document, question, gold, task, choices, data_source).

Users download the data themselves (``docs/eval.md`` says from where); nothing here touches a network.
Each benchmark registers one row parser with :func:`register_benchmark`, which also records the schema
it reads, so the docs, the error messages and ``--bench`` resolution come from one table. A bad row fails
at load time — before any request is sent — with ``file:line``, the field, and what to do.

Accepted files: ``.jsonl`` (one object per line), ``.json`` (a list of objects) and ``.parquet``, or a
directory of them. ``--bench`` takes a registered name (looked up under the data dir), a path (the
benchmark is read from the file name), or ``NAME=PATH``; an unregistered ``NAME`` uses the generic schema.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwenlong_verl.common.tasks import CHOICE, NUMERIC, QA, UnknownTaskError, normalize_task

SUPPORTED_SUFFIXES = (".jsonl", ".json", ".parquet")
DEFAULT_DATA_DIR = "data/eval"
DATA_DIR_ENV = "QWENLONG_EVAL_DATA"

LOONG_LEVELS = {1: "spotlight_locating", 2: "comparison", 3: "clustering", 4: "chain_of_reasoning"}
"""Loong's ``level`` field -> its task type (Wang et al. 2024, "Leave No Document Behind")."""


class BenchmarkFormatError(ValueError):
    """A benchmark file or row that cannot be used; the message names the file, line and field."""


@dataclass(frozen=True)
class EvalItem:
    """One benchmark question, ready for the prompt template and the scorer."""

    id: str
    """``<benchmark>/<native id>``; unique within a run and stable across reruns (the resume key)."""

    benchmark: str
    """Benchmark name, the first grouping of the report."""

    document: str
    """The long context put into the prompt (before truncation)."""

    question: str
    """The question; also passed to the scorer as ``extra_info["question"]`` (the judge reads it)."""

    gold: str
    """Reference answer as text (numbers in their shortest exact form)."""

    task: str
    """One of :data:`qwenlong_verl.common.tasks.TASKS`; selects template and rule verifier."""

    data_source: str
    """veRL ``data_source`` given to the scorer (as in training rows)."""

    choices: tuple[str, ...] | None = None
    """Option texts for ``choice`` items, in letter order (A, B, ...)."""

    subset: str = ""
    """Second grouping of the report (DocMath split, Loong task type); empty when none."""

    source: str = ""
    """``file:line`` of the row, for messages."""

    meta: Mapping[str, Any] = field(default_factory=dict)
    """Extra JSON-able facts kept in ``items.jsonl`` (all gold answers, Loong level/set...)."""


@dataclass
class LoadOptions:
    """Settings that some loaders need besides the file."""

    loong_doc_dir: Path | None = None
    """Loong's ``data/doc`` folder; default: ``doc/`` next to the Loong jsonl."""

    limit: int | None = None
    """Keep only the first N items of each benchmark (smoke runs)."""

    _cache: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class RowContext:
    """Where a row came from, for error messages and loaders that read side files."""

    benchmark: str
    path: Path
    line: int
    options: LoadOptions
    line_kind: str = "line"

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line_kind == "line" else f"{self.path} row {self.line}"

    def error(self, problem: str, fix: str = "") -> BenchmarkFormatError:
        text = f"{self.where} ({self.benchmark}): {problem}"
        return BenchmarkFormatError(text + (f"; {fix}" if fix else ""))

    def field(self, row: Mapping[str, Any], name: str, kinds: tuple[type, ...] = (str,), *, required: bool = True):
        """``row[name]`` checked against ``kinds``; a missing field names close matches and the schema."""
        if name not in row or row[name] is None:
            if not required:
                return None
            spec = BENCHMARKS.get(self.benchmark, GENERIC)
            close = difflib.get_close_matches(name, [str(k) for k in row], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.error(
                f"missing field {name!r}{hint}; row has {sorted(map(str, row))}",
                f"{spec.name} rows need: {spec.fields}",
            )
        value = row[name]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise self.error(f"field {name!r} must be {names}, got {type(value).__name__}")
        if isinstance(value, str) and required and not value.strip():
            raise self.error(f"field {name!r} is empty")
        return value


RowParser = Callable[[Mapping[str, Any], RowContext], EvalItem]


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark schema: its parser, where its files live, and the documentation of its fields."""

    name: str
    parse: RowParser
    fields: str
    """Required/optional fields, as shown in errors and docs."""

    download: str
    """Where users get the files."""

    files: tuple[str, ...] = ()
    """Globs tried under the data dir when ``--bench NAME`` is given."""


BENCHMARKS: dict[str, BenchmarkSpec] = {}


def register_benchmark(name: str, *, fields: str, download: str, files: tuple[str, ...] = ()):
    """Register ``parse(row, ctx) -> EvalItem`` under ``name`` (stackable for shared schemas)."""

    def deco(parse: RowParser) -> RowParser:
        if name in BENCHMARKS:
            raise ValueError(f"benchmark {name!r} registered twice")
        BENCHMARKS[name] = BenchmarkSpec(
            name=name,
            parse=parse,
            fields=fields,
            download=download,
            files=files or (f"{name}.jsonl", f"{name}.json", f"{name}.parquet", name),
        )
        return parse

    return deco


# ----------------------------------------------------------------------------- helpers


def _number_text(value: int | float) -> str:
    """Shortest exact text of a number: ``12``, ``0.125``, ``1e-07``; integral floats lose ``.0``."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _native_id(row: Mapping[str, Any], ctx: RowContext, *names: str) -> str:
    for name in names:
        value = row.get(name)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return f"{ctx.path.stem}-{ctx.line}"


def _gold_text(value: Any, ctx: RowContext, name: str) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, (int, float)):
        return _number_text(value)
    if isinstance(value, str):
        if not value.strip():
            raise ctx.error(f"field {name!r} is empty")
        return value.strip()
    return json.dumps(value, ensure_ascii=False)


# ----------------------------------------------------------------------------- schemas


@register_benchmark(
    "docmath",
    fields="question (str), paragraphs (list[str]), ground_truth (number); optional question_id",
    download="DocMath-Eval testmini, https://huggingface.co/datasets/yale-nlp/DocMath-Eval "
    "(complong/compshort/simplong/simpshort_testmini.jsonl; the test split hides ground_truth)",
    files=("docmath", "docmath.jsonl", "docmath*.jsonl", "*_testmini.jsonl"),
)
def _docmath(row: Mapping[str, Any], ctx: RowContext) -> EvalItem:
    question = ctx.field(row, "question")
    paragraphs = ctx.field(row, "paragraphs", (list,))
    if not all(isinstance(p, str) for p in paragraphs):
        raise ctx.error("field 'paragraphs' must be a list of strings")
    if "ground_truth" not in row or row["ground_truth"] is None:
        raise ctx.error(
            "missing field 'ground_truth'",
            "DocMath's test split hides answers: evaluate the *_testmini.jsonl files",
        )
    truth = ctx.field(row, "ground_truth", (int, float, bool))
    subset = ctx.path.stem.removesuffix("_testmini").removesuffix("_test")
    return EvalItem(
        id=f"docmath/{_native_id(row, ctx, 'question_id', 'id')}",
        benchmark="docmath",
        document="\n".join(paragraphs),
        question=question.strip(),
        gold=_gold_text(truth, ctx, "ground_truth"),
        task=QA if isinstance(truth, bool) else NUMERIC,
        data_source="docmath",
        subset=subset,
    )


@register_benchmark(
    "frames",
    fields="Prompt (str), Answer (str), wiki_items (list of {title, text}); optional id / 'Unnamed: 0'",
    download="FRAMES, https://huggingface.co/datasets/google/frames-benchmark (gives wiki_links only: "
    "fetch each linked article's text into wiki_items yourself, as the QwenLong-L1 evaluation did)",
)
def _frames(row: Mapping[str, Any], ctx: RowContext) -> EvalItem:
    question = ctx.field(row, "Prompt")
    answer = ctx.field(row, "Answer", (str, int, float))
    items = ctx.field(row, "wiki_items", (list,))
    parts = []
    for i, wiki in enumerate(items):
        if not isinstance(wiki, Mapping) or not isinstance(wiki.get("text"), str):
            raise ctx.error(f"wiki_items[{i}] must be an object with a 'text' string (and a 'title')")
        title = str(wiki.get("title") or "").strip()
        parts.append(f"{title}\n{wiki['text']}" if title else wiki["text"])
    if not parts:
        raise ctx.error("field 'wiki_items' is empty", "fetch the articles of wiki_links into wiki_items")
    return EvalItem(
        id=f"frames/{_native_id(row, ctx, 'id', 'Unnamed: 0')}",
        benchmark="frames",
        document="\n".join(parts),
        question=question.strip(),
        gold=_gold_text(answer, ctx, "Answer"),
        task=QA,
        data_source="frames",
    )


_LONGBENCH_FIELDS = "input (question), context (str), answers (list[str], first is the gold); optional _id, length"


def _longbench(row: Mapping[str, Any], ctx: RowContext) -> EvalItem:
    question = ctx.field(row, "input")
    context = ctx.field(row, "context")
    answers = ctx.field(row, "answers", (list,))
    golds = [_gold_text(a, ctx, "answers") for a in answers if a is not None and str(a).strip()]
    if not golds:
        raise ctx.error("field 'answers' has no non-empty answer")
    meta = {"answers": golds}
    if isinstance(row.get("length"), int):
        meta["length_words"] = row["length"]
    return EvalItem(
        id=f"{ctx.benchmark}/{_native_id(row, ctx, '_id', 'id')}",
        benchmark=ctx.benchmark,
        document=context,
        question=question.strip(),
        gold=golds[0],
        task=QA,
        data_source=ctx.benchmark,
        meta=meta,
    )


for _name in ("2wikimqa", "hotpotqa", "musique", "narrativeqa", "qasper"):
    register_benchmark(
        _name,
        fields=_LONGBENCH_FIELDS,
        download=f"LongBench, https://huggingface.co/datasets/THUDM/LongBench (data.zip -> data/{_name}.jsonl)",
        files=(f"{_name}.jsonl", f"{_name}_e.jsonl", f"{_name}.json", f"{_name}.parquet", _name),
    )(_longbench)


def _loong_documents(row: Mapping[str, Any], ctx: RowContext, doc_type: str, level: int) -> str:
    """Loong's documents in row order, each under a title line (Loong itself shuffles them; we don't)."""
    inline = row.get("docs")
    if inline is not None:
        if not isinstance(inline, list) or not all(isinstance(d, str) for d in inline) or not inline:
            raise ctx.error("field 'docs' must be a non-empty list of document texts")
        return "\n\n".join(d.strip() for d in inline)
    names = ctx.field(row, "doc", (list,))
    if not names or not all(isinstance(n, str) for n in names):
        raise ctx.error("field 'doc' must be a non-empty list of document names")
    doc_dir = ctx.options.loong_doc_dir or ctx.path.parent / "doc"
    folder = doc_dir / doc_type
    if not folder.is_dir():
        raise ctx.error(
            f"Loong documents not found: {folder} is not a directory",
            "pass --loong-doc-dir pointing at Loong's data/doc folder (with financial/, legal/, paper/)",
        )
    texts = []
    instruction = str(row.get("instruction") or "")
    for i, name in enumerate(names):
        if doc_type == "financial":
            files = sorted(p for p in folder.glob("*.txt") if name in p.name)
            # Levels 1-3 use the 2024 report of each company; level 4 chains across years.
            preferred = [p for p in files if f"2024-{name}" in p.name] if level != 4 else []
            chosen = preferred or files
            if not chosen:
                raise ctx.error(f"no financial report named like {name!r} in {folder}")
            texts.append(f"《{name}》\n" + chosen[0].read_text(encoding="utf-8"))
        elif doc_type == "paper":
            path = folder / name
            if not path.is_file():
                raise ctx.error(f"paper {name!r} not found in {folder}")
            content = path.read_text(encoding="utf-8")
            title = content.split("\n", 1)[0].strip("#").strip() or name
            texts.append(f"{title}\n{content}")
        else:  # legal: one JSON holding every case
            cases = ctx.options._cache.get(str(folder))
            if cases is None:
                legal = folder / "legal.json"
                if not legal.is_file():
                    raise ctx.error(f"{legal} not found", "Loong ships it under data/doc/legal/")
                cases = json.loads(legal.read_text(encoding="utf-8"))
                ctx.options._cache[str(folder)] = cases
            case = cases.get(name)
            if not isinstance(case, Mapping) or not isinstance(case.get("content"), str):
                raise ctx.error(f"legal case {name!r} missing from {folder / 'legal.json'}")
            # Chain-of-reasoning legal items hand the verdicts over in the instruction: omit them here.
            verdict_in_question = level == 4 and "判决结果" in instruction
            body = case["content"] + ("" if verdict_in_question else str(case.get("result") or ""))
            texts.append(f"《判决文书{i + 1}》\n{body}")
    return "\n\n".join(t.strip() for t in texts)


@register_benchmark(
    "loong",
    fields="id, type (financial|legal|paper), level (1-4), set (1-4), question, instruction, answer (any JSON), "
    "doc (list of document names, read from --loong-doc-dir) or docs (list of texts)",
    download="Loong, https://github.com/MozerWang/Loong (data/loong.jsonl and data/doc/)",
    files=("loong.jsonl", "loong/loong.jsonl", "loong"),
)
def _loong(row: Mapping[str, Any], ctx: RowContext) -> EvalItem:
    doc_type = ctx.field(row, "type")
    if doc_type not in ("financial", "legal", "paper"):
        raise ctx.error(f"field 'type' is {doc_type!r}; Loong types are financial, legal, paper")
    level = ctx.field(row, "level", (int, str))
    try:
        level = int(level)
    except ValueError:
        level = 0
    if level not in LOONG_LEVELS:
        raise ctx.error(f"field 'level' is {row['level']!r}; Loong levels are 1-4 ({', '.join(LOONG_LEVELS.values())})")
    question = ctx.field(row, "question")
    instruction = ctx.field(row, "instruction", required=False) or ""
    if "answer" not in row or row["answer"] in (None, "", [], {}):
        raise ctx.error("missing or empty field 'answer'")
    answer = row["answer"]
    numeric = isinstance(answer, (int, float)) and not isinstance(answer, bool)
    if isinstance(answer, list) and all(isinstance(a, (str, int, float)) for a in answer):
        # One answer that is a list (an ordering, a set of names): as text, so the scorer does not read a
        # JSON list as alternative answers.
        answer = ", ".join(str(a) for a in answer)
    meta: dict[str, Any] = {"type": doc_type, "level": level}
    if row.get("set") is not None:
        meta["set"] = row["set"]
    return EvalItem(
        id=f"loong/{_native_id(row, ctx, 'id')}",
        benchmark="loong",
        document=_loong_documents(row, ctx, doc_type, level),
        question="\n\n".join(p for p in (instruction.strip(), question.strip()) if p),
        gold=_gold_text(answer, ctx, "answer"),
        task=NUMERIC if numeric else QA,
        data_source="loong",
        subset=LOONG_LEVELS[level],
        meta=meta,
    )


def _generic(row: Mapping[str, Any], ctx: RowContext) -> EvalItem:
    document = row.get("document", row.get("context"))
    if isinstance(document, list) and all(isinstance(d, str) for d in document):
        document = "\n".join(document)
    if not isinstance(document, str) or not document.strip():
        raise ctx.error(
            "missing field 'document' (or 'context'): a string or list of strings",
            f"generic rows need: {GENERIC.fields}",
        )
    question = ctx.field(row, "question")
    if row.get("answer") is not None:
        gold = _gold_text(row["answer"], ctx, "answer")
        answers = [gold]
    else:
        answers = [_gold_text(a, ctx, "answers") for a in ctx.field(row, "answers", (list,)) if a is not None]
        if not answers:
            raise ctx.error("field 'answers' is empty")
        gold = answers[0]
    choices = row.get("choices")
    if isinstance(choices, Mapping):
        choices = [choices[k] for k in sorted(choices)]
    if choices is not None and (not isinstance(choices, list) or not all(isinstance(c, str) for c in choices)):
        raise ctx.error("field 'choices' must be a list of option texts (or a {letter: text} object)")
    numeric = isinstance(row.get("answer"), (int, float)) and not isinstance(row.get("answer"), bool)
    label = row.get("task") or (CHOICE if choices else (NUMERIC if numeric else QA))
    try:
        task = normalize_task(label)
    except UnknownTaskError as exc:
        raise ctx.error(f"field 'task': {exc}") from None
    if task == CHOICE and not choices:
        raise ctx.error("task is 'choice' but field 'choices' is missing")
    from qwenlong_verl.driver.data.schema import canonical_gold  # the same gold rules as prepared training rows

    try:
        answers = list(dict.fromkeys(canonical_gold(task, a, choices or ()) for a in answers))
    except ValueError as exc:
        raise ctx.error(f"field {'answer' if row.get('answer') is not None else 'answers'!r}: {exc}") from None
    gold = answers[0]
    return EvalItem(
        id=f"{ctx.benchmark}/{_native_id(row, ctx, 'id', '_id')}",
        benchmark=ctx.benchmark,
        document=document,
        question=question.strip(),
        gold=gold,
        task=task,
        data_source=str(row.get("data_source") or ctx.benchmark),
        choices=tuple(choices) if choices else None,
        subset=str(row.get("subset") or ""),
        meta={"answers": answers} if len(answers) > 1 else {},
    )


GENERIC = BenchmarkSpec(
    name="generic",
    parse=_generic,
    fields="document or context (str | list[str]), question (str), answer (str | number) or answers (list); "
    "optional id, task (numeric|choice|qa), choices (list[str] or {letter: text}), data_source, subset",
    download="your own file (use --bench NAME=FILE with a NAME that is not a registered benchmark)",
)


# ----------------------------------------------------------------------------- files


def _rows(path: Path) -> Iterator[tuple[int, str, Any]]:
    """(line or row number, kind, row) for one supported file."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    yield number, "line", json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BenchmarkFormatError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
    elif suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise BenchmarkFormatError(f"{path}: not valid JSON ({exc})") from None
        if isinstance(data, Mapping) and isinstance(data.get("data"), list):
            data = data["data"]
        if not isinstance(data, list):
            raise BenchmarkFormatError(f"{path}: expected a JSON list of rows (or {{'data': [...]}})")
        for number, row in enumerate(data, start=1):
            yield number, "row", row
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        for number, row in enumerate(pq.read_table(path).to_pylist(), start=1):
            yield number, "row", row
    else:
        raise BenchmarkFormatError(f"{path}: unsupported file type; use {', '.join(SUPPORTED_SUFFIXES)}")


def _files_of(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
        if not files:
            raise BenchmarkFormatError(f"{path}: no {', '.join(SUPPORTED_SUFFIXES)} files in this directory")
        return files
    return [path]


def load_file(path: str | Path, benchmark: str, options: LoadOptions | None = None) -> list[EvalItem]:
    """Items of one benchmark file or directory, parsed with ``benchmark``'s schema (generic if unregistered)."""
    options = options or LoadOptions()
    spec = BENCHMARKS.get(benchmark, GENERIC)
    path = Path(path)
    if not path.exists():
        raise BenchmarkFormatError(f"{path}: no such file or directory")
    items: list[EvalItem] = []
    for file in _files_of(path):
        for number, kind, row in _rows(file):
            ctx = RowContext(benchmark=benchmark, path=file, line=number, options=options, line_kind=kind)
            if not isinstance(row, Mapping):
                raise ctx.error(f"expected a JSON object, got {type(row).__name__}")
            item = spec.parse(row, ctx)
            items.append(_with_source(item, ctx.where))
    if not items:
        raise BenchmarkFormatError(f"{path}: no rows")
    return items


def _with_source(item: EvalItem, where: str) -> EvalItem:
    from dataclasses import replace

    return replace(item, source=where)


# ----------------------------------------------------------------------------- --bench resolution


@dataclass(frozen=True)
class BenchSource:
    """A resolved ``--bench`` value."""

    name: str
    paths: tuple[Path, ...]


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def _name_of_path(path: Path) -> str | None:
    stem = path.name if path.is_dir() else path.stem
    key = stem.lower().replace("-", "_")
    matches = [n for n in BENCHMARKS if key.startswith(n)]
    if not matches and key.endswith("_testmini"):
        return "docmath"
    return max(matches, key=len) if matches else None


def resolve_bench(value: str, data_dir: str | Path | None = None) -> BenchSource:
    """``NAME``, ``PATH`` or ``NAME=PATH`` -> (benchmark name, path); errors say where we looked."""
    value = value.strip()
    if "=" in value:
        name, _, raw = value.partition("=")
        name = name.strip().lower()
        if not name or not raw.strip():
            raise BenchmarkFormatError(f"--bench {value!r}: expected NAME=PATH")
        path = Path(raw.strip()).expanduser()
        if not path.exists():
            raise BenchmarkFormatError(f"--bench {value!r}: {path} does not exist")
        return BenchSource(name, (path,))
    path = Path(value).expanduser()
    if path.exists() and (path.is_dir() or path.suffix.lower() in SUPPORTED_SUFFIXES):
        name = _name_of_path(path)
        if name is None:
            raise BenchmarkFormatError(
                f"--bench {value!r}: cannot tell the benchmark from the file name; pass NAME={value} "
                f"(registered: {', '.join(sorted(BENCHMARKS))}; any other NAME uses the generic schema)"
            )
        return BenchSource(name, (path,))
    name = value.lower()
    if name not in BENCHMARKS:
        close = difflib.get_close_matches(name, list(BENCHMARKS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise BenchmarkFormatError(
            f"--bench {value!r}: not a file and not a benchmark{hint}; registered: {', '.join(sorted(BENCHMARKS))}"
        )
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    spec = BENCHMARKS[name]
    for pattern in spec.files:
        found = sorted(root.glob(pattern))
        if found:  # several split files (DocMath) are loaded as one benchmark
            return BenchSource(name, tuple(found))
    raise BenchmarkFormatError(
        f"--bench {name}: no file found under {root} (tried {', '.join(spec.files)}); download it from "
        f"{spec.download}, then pass --data-dir or --bench {name}=PATH"
    )


def load_benchmarks(values: list[str], data_dir: str | Path | None = None, options: LoadOptions | None = None):
    """Resolve and load every ``--bench`` value; ids must be unique across the whole run."""
    options = options or LoadOptions()
    sources = [resolve_bench(v, data_dir) for v in values]
    names = [s.name for s in sources]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise BenchmarkFormatError(f"benchmark {', '.join(sorted(dup))} given twice in --bench")
    items: list[EvalItem] = []
    seen: dict[str, str] = {}
    for source in sources:
        loaded = [i for path in source.paths for i in load_file(path, source.name, options)]
        for item in loaded[: options.limit]:
            if item.id in seen:
                raise BenchmarkFormatError(
                    f"{item.source}: id {item.id!r} already used at {seen[item.id]}; ids must be unique per benchmark"
                )
            seen[item.id] = item.source
            items.append(item)
    return sources, items
