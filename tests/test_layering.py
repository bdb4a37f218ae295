"""Dependencies run one way: runtimes and converters never reach up into the SDK's API."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"runtimes": "pocketbert.runtimes", "converters": "pocketbert.converters"}
# What each layer may import from pocketbert (prefixes); the SDK's API layer is not among them.
ALLOWED = {
    "pocketbert.core": ("pocketbert.core",),
    "pocketbert.runtimes": ("pocketbert.core", "pocketbert.runtimes"),
    "pocketbert.converters": ("pocketbert.core", "pocketbert.runtimes", "pocketbert.converters"),
}


def _module_files():
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path, package
    for path in sorted((ROOT / "sdk" / "core").rglob("*.py")):
        yield path, "pocketbert.core"


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            if node.module == "pocketbert":  # "from pocketbert import x" names a submodule
                names += [f"pocketbert.{a.name}" for a in node.names]
    return [n for n in names if n == "pocketbert" or n.startswith("pocketbert.")]


@pytest.mark.parametrize(
    ("path", "layer"), list(_module_files()), ids=lambda v: getattr(v, "name", v)
)
def test_layer_imports_only_what_lies_below_it(path: Path, layer: str):
    allowed = ALLOWED[layer]
    bad = [
        n
        for n in _imports(path)
        if n != "pocketbert" and not any(n == a or n.startswith(a + ".") for a in allowed)
    ]
    assert not bad, f"{path.relative_to(ROOT)} ({layer}) imports {bad}; allowed: {allowed}"


def _sdk_import_graph() -> dict[str, set[str]]:
    """Module-level (not function-local, not TYPE_CHECKING) imports between SDK modules."""
    graph: dict[str, set[str]] = {}
    sdk = ROOT / "sdk"
    for path in sdk.rglob("*.py"):
        rel = path.relative_to(sdk).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        name = ".".join(["pocketbert", *parts])
        deps = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.startswith("pocketbert"):
                    deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("pocketbert")}
        graph[name] = deps
    return graph


def test_sdk_modules_import_each_other_without_cycles():
    graph = _sdk_import_graph()

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for dep in graph.get(todo.pop(), ()):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    cycles = [
        (a, b)
        for a, deps in graph.items()
        for b in deps
        if b != a
        and b in graph
        and a in reach(b)
        and not a.startswith(b + ".")
        and not b.startswith(a + ".")
    ]
    assert not cycles, f"module-level import cycles: {cycles}"


def test_the_layering_check_catches_a_reach_up(tmp_path: Path):
    bad = tmp_path / "bad.py"
    bad.write_text("from pocketbert.exporter import export\nfrom pocketbert import verify\n")
    assert _imports(bad) == ["pocketbert.exporter", "pocketbert", "pocketbert.verify"]
