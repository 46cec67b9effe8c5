"""A recipe's merge step (``kind: merge``): models of earlier phases merged into one Hugging Face folder.

``qwenlong-verl train`` runs it as a child, ``python -m qwenlong_verl.driver.merge --method sce --base B
--models A C --parameters '{"select_topk": 1.0}' --dtype bfloat16 --out DIR`` (the command ``plan`` prints).
The folder appears whole or not at all (:func:`~qwenlong_verl.common.files.atomic_folder`): a killed merge leaves
only ``DIR.partial``, which the next merge removes. Config, generation config and tokenizer are the base model's.

SCE (FuseChat 2.0, arXiv 2408.07990), per tensor, with task vectors ``d_m = theta_m - theta_base``:

* **Select**: keep the fraction ``select_topk`` of the elements whose ``d_m`` vary most across the models
  (population variance over ``m``, counted among the elements where it is not zero); zero the rest in every ``d_m``;
* **Calculate**: one weight per model, ``w_m`` = mean of its selected ``d_m**2``, normalised to sum 1 (equal
  weights when every ``d_m`` is zero);
* **Erase**: at each element drop the ``d_m`` whose sign differs from the sign of ``sum_m d_m``;
* merged = ``theta_base + sum_m w_m d_m / sum_m w_m``, both sums over the models kept at that element.

The merge is mergekit's (``merge_method: sce``, the FuseChat authors' method), not ours: it reads the shards one
tensor at a time (a 30B model merges in a few GB of memory), knows the architectures (Qwen2, Qwen3, Qwen3-MoE),
runs on CPU with our torch and pins nothing we use otherwise. ``tests/driver/test_merge.py`` checks its output
against the definition above, computed independently.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qwenlong_verl.common.errors import InputError, QwenLongError, RunFailed
from qwenlong_verl.common.files import atomic_folder

logger = logging.getLogger(__name__)

MERGE_MODULE = "qwenlong_verl.driver.merge"
"""``python -m`` this module runs one merge."""

DTYPES = ("bfloat16", "float16", "float32")
"""Data types a merged model may be written in."""

COMPUTE_DTYPE = "float32"
"""What the merge computes in: squares and sums of small differences of bf16 weights need more than bf16."""


@dataclass
class SCEParameters:
    """Parameters of ``method: sce``."""

    select_topk: float = 1.0
    """Fraction of each tensor's elements kept, those whose task vectors vary most across the models (SCE's
    Select); 1: all of them (only Calculate and Erase act)."""

    def __post_init__(self) -> None:
        if not 0 < self.select_topk <= 1:
            raise ValueError(f"select_topk must be in (0, 1], got {self.select_topk}")


@dataclass(frozen=True)
class MergeMethod:
    """One merge method a recipe can name: mergekit's name for it and its parameters' dataclass."""

    mergekit_name: str
    parameters: type
    reference: str


MERGE_METHODS: dict[str, MergeMethod] = {
    "sce": MergeMethod("sce", SCEParameters, "FuseChat 2.0, arXiv 2408.07990"),
}
"""``method:`` of a merge step -> how it is run."""


class MergeError(RunFailed):
    """A merge that cannot run: an input model missing or unlike the others, mergekit absent or failing."""


@dataclass
class MergeSpec:
    """One merge, resolved: model folders (or hub names), method, parameters, where it goes."""

    method: str
    base: str
    """The model the task vectors are taken against."""
    models: list[str]
    parameters: dict[str, Any] = field(default_factory=dict)
    dtype: str = "bfloat16"
    out: str = ""

    def args(self) -> list[str]:
        """This spec as the command-line arguments of ``python -m qwenlong_verl.driver.merge``."""
        return [
            "--method",
            self.method,
            "--base",
            self.base,
            "--models",
            *self.models,
            "--parameters",
            json.dumps(self.parameters, sort_keys=True),
            "--dtype",
            self.dtype,
            "--out",
            self.out,
        ]

    @classmethod
    def from_args(cls, argv: Sequence[str]) -> MergeSpec:
        parser = argparse.ArgumentParser(prog=f"python -m {MERGE_MODULE}", description=__doc__.split("\n\n")[0])
        parser.add_argument("--method", required=True, choices=sorted(MERGE_METHODS))
        parser.add_argument("--base", required=True, help="model the task vectors are taken against")
        parser.add_argument("--models", required=True, nargs="+", help="models to merge")
        parser.add_argument("--parameters", default="{}", help="the method's parameters, a JSON object")
        parser.add_argument("--dtype", default="bfloat16", choices=DTYPES)
        parser.add_argument("--out", required=True, help="the merged model's folder")
        ns = parser.parse_args(list(argv))
        try:
            parameters = json.loads(ns.parameters)
        except json.JSONDecodeError as exc:
            raise InputError(f"--parameters {ns.parameters!r} is not JSON ({exc}); pass an object") from None
        if not isinstance(parameters, dict):
            raise InputError(f"--parameters must be a JSON object, got {ns.parameters!r}")
        try:
            parameters = asdict(MERGE_METHODS[ns.method].parameters(**parameters))
        except (TypeError, ValueError) as exc:
            raise InputError(f"--parameters: {exc}") from None
        return cls(ns.method, ns.base, list(ns.models), parameters, ns.dtype, ns.out)


def architecture(path: str) -> str | None:
    """The ``architectures`` of a local model folder's ``config.json`` (None: not a local folder)."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return None
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MergeError(f"{config}: not a readable model config ({exc})") from None
    return ",".join(data.get("architectures") or []) or str(data.get("model_type", "?"))


def input_problems(spec: MergeSpec, present_only: bool) -> list[str]:
    """What is wrong with the inputs: folders without ``config.json`` (unless ``present_only``: a folder not there
    yet, or a hub name, is fine), local models of different architectures."""
    problems, seen = [], {}
    for path in [spec.base, *spec.models]:
        arch = architecture(path)
        if arch is None:
            if not present_only and Path(path).exists():
                problems.append(f"{path} has no config.json: not a Hugging Face model folder")
            continue
        seen[path] = arch
    if len(set(seen.values())) > 1:
        problems.append(
            "the models have different architectures ("
            + ", ".join(f"{p}: {a}" for p, a in seen.items())
            + "); merging needs one architecture"
        )
    return problems


def merge_models(spec: MergeSpec) -> Path:
    """Merge ``spec.models`` on ``spec.base`` into ``spec.out`` (atomically); returns the folder."""
    problems = input_problems(spec, present_only=False)
    if problems:
        raise MergeError("; ".join(problems))
    try:
        from mergekit.config import MergeConfiguration
        from mergekit.merge import run_merge
        from mergekit.options import MergeOptions
    except ImportError as exc:
        raise MergeError(f"the merge step needs mergekit ({exc}); pip install 'mergekit>=0.1.5,<0.2'") from None
    method = MERGE_METHODS[spec.method]
    config = MergeConfiguration.model_validate(
        {
            "merge_method": method.mergekit_name,
            "base_model": spec.base,
            "models": [{"model": m} for m in spec.models],
            "parameters": dict(spec.parameters),
            "dtype": COMPUTE_DTYPE,
            "out_dtype": spec.dtype,
        }
    )
    options = MergeOptions(copy_tokenizer=True, write_model_card=False, lazy_unpickle=True, quiet=True)
    out = Path(spec.out)
    logger.info(
        "merging %s on %s by %s %s into %s", ", ".join(spec.models), spec.base, spec.method, spec.parameters, out
    )
    with atomic_folder(out) as partial:
        run_merge(config, str(partial), options)
        if not (partial / "config.json").is_file():
            raise MergeError(f"mergekit wrote no config.json into {partial}; nothing was published at {out}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        out = merge_models(MergeSpec.from_args(sys.argv[1:] if argv is None else argv))
    except QwenLongError as exc:
        logger.error("%s", exc)
        return exc.exit_code
    logger.info("merged model: %s", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
