"""The house rules of docs/architecture.md, read from the code's own imports (every import statement, also those
inside functions): no import circle, the worker side never reaches the driver, the shared leaves reach
nothing, and the modules every veRL process or a judge client imports load neither veRL nor torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "qwenlong_verl"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (``from a.b import c`` counts ``a.b.c`` when that is a module)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names
                ]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_graph_reader_finds_a_circle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_in_the_package():
    assert find_cycles(import_graph()) == []


@pytest.mark.parametrize(
    "side, forbidden",
    [
        ("qwenlong_verl.worker", "qwenlong_verl.driver"),
        ("qwenlong_verl.common", "qwenlong_verl.driver"),
        ("qwenlong_verl.common", "qwenlong_verl.worker"),
    ],
)
def test_imports_flow_one_way(side, forbidden):
    graph = import_graph()
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module.startswith(side + ".") or module == side
        for target in targets
        if target.startswith(forbidden + ".") or target == forbidden
    )
    assert wrong == []


CHEAP = [
    "qwenlong_verl",
    "qwenlong_verl.worker.plugin",
    "qwenlong_verl.common.openai_client",
    "qwenlong_verl.worker.rewards.judge",
    "qwenlong_verl.worker.rewards",
    "qwenlong_verl.driver.eval.runner",
    "qwenlong_verl.driver.eval.memory",
    "qwenlong_verl.worker.agent.episode",
]


def test_entry_point_judge_and_eval_import_no_verl_and_no_torch():
    code = (
        "import importlib, sys\n"
        f"for name in {CHEAP!r}:\n"
        "    importlib.import_module(name)\n"
        "heavy = sorted(m for m in ('verl', 'torch') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == ""
