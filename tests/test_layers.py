"""The package's imports point down the layers of ARCHITECTURE.md, form no circle, and defer only with a reason.

Every import statement counts: at the top of a file, inside a function, or under TYPE_CHECKING. A module
imported inside a function must say why on its line, on a comment line just above its block
(`# deferred: ...`), or for a whole file in a top-level `# deferred imports: ...` line: start-up time is a
reason, hiding a circle is not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "degradation"

# Lowest first. A module may import its own layer or any layer below; a package's layer covers its modules.
LAYERS: list[tuple[str, ...]] = [
    ("models", "data", "errors", "schema", "precision", "machine", "revision"),
    ("conf", "io", "lock", "runs", "cliargs", "variants", "fetch", "resultsdir"),
    ("train",),
    ("results",),
    ("analysis", "sweep", "bench", "bench_share", "bench_loader"),
    ("figures",),
    ("cli", "__main__", "__init__"),
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = ("degradation", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    """The layer of degradation.<top>[...]; the package itself (its __init__) is the top layer."""
    parts = module.split(".")
    return RANK["__init__"] if len(parts) == 1 else RANK[parts[1]]


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported degradation module, line, inside a function) for every import statement of a file."""
    return imports_of_source(path, module_name(path))


def imports_of_source(path: Path, this: str) -> list[tuple[str, int, bool]]:
    tree = ast.parse(path.read_text())
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in child.names:
                    full = f"{base}.{alias.name}"
                    target = full if full in MODULES else base
                    if target.startswith("degradation"):
                        found.append((target, child.lineno, in_function))
            elif isinstance(child, ast.Import):
                names = [a.name for a in child.names if a.name.startswith("degradation")]
                found.extend((name, child.lineno, in_function) for name in names)
            visit(child, nested)

    visit(tree, False)
    return found


GRAPH = {name: sorted({t for t, _, _ in imports(path) if t != name}) for name, path in MODULES.items()}


def test_every_module_has_a_layer() -> None:
    unknown = sorted({m.split(".")[1] for m in MODULES if "." in m} - set(RANK))
    assert not unknown, f"add {unknown} to LAYERS here and to ARCHITECTURE.md"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_down(name: str) -> None:
    upward = [t for t in GRAPH[name] if layer_of(t) > layer_of(name)]
    assert not upward, f"{name} (layer {layer_of(name)}) imports from a higher layer: {upward}"


def find_circles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Depth-first search over the module graph; a back edge closes a circle (a package's __init__ importing
    a submodule that imports the package is one too)."""
    state: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in graph.get(node, []):
            if state.get(target) == 1:
                circles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                walk(target)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name)
    return circles


def upward_imports(graph: dict[str, list[str]]) -> list[str]:
    return [f"{m} -> {t}" for m, targets in graph.items() for t in targets if layer_of(t) > layer_of(m)]


def test_no_import_circle() -> None:
    circles = find_circles(GRAPH)
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_no_upward_import() -> None:
    assert not upward_imports(GRAPH)


def test_deferred_imports_say_why() -> None:
    silent = []
    for path in MODULES.values():
        lines = path.read_text().splitlines()
        if any(text.startswith("# deferred imports:") for text in lines):
            continue
        for _, line, in_function in imports(path):
            if not in_function:
                continue
            above = line - 2
            while above >= 0 and lines[above].strip().startswith(("from ", "import ")):
                above -= 1
            reason = "# deferred" in lines[line - 1] or (above >= 0 and lines[above].strip().startswith("# deferred"))
            if not reason:
                silent.append(f"{path.relative_to(PACKAGE.parent)}:{line}")
    assert not silent, "imports inside functions without a `# deferred: why` comment: " + ", ".join(silent)


def test_the_checker_catches_an_upward_import_a_circle_and_a_silent_deferral(tmp_path) -> None:
    """The checker can fail: made-up graphs and a made-up file with each fault are caught."""
    assert upward_imports({"degradation.models.cifar": ["degradation.cli"]}) == [
        "degradation.models.cifar -> degradation.cli"]
    assert find_circles({"a": ["b"], "b": ["c"], "c": ["a"]}) == [["a", "b", "c", "a"]]
    assert find_circles({"a": ["b"], "b": ["c"], "c": []}) == []
    source = tmp_path / "m.py"
    source.write_text("import os\n\n\ndef f():\n    from degradation.cli import main\n    return main\n")
    assert ("degradation.cli", 5, True) in imports_of_source(source, "degradation.m")
