"""No import cycles in our packages: the folder tree reads top to bottom, and stays that way.

Every import counts: one inside a function (a late import that dodges a cycle is still a cycle in
the design) and one under ``if TYPE_CHECKING:`` (two modules whose types need each other belong
together, or one of them holds a type that belongs lower). ``from pkg import name`` is an edge to
``pkg.name`` when that is a module, else to ``pkg``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ROOTS = {
    "batch_gateway": PROJECT_ROOT / "layers" / "batch_gateway" / "batch_gateway",
    "batch_gateway_local": PROJECT_ROOT / "src" / "batch_gateway_local",
}
Graph = dict[str, set[str]]


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, root in ROOTS.items():
        for path in root.rglob("*.py"):
            parts = [package, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, *([base] if base else [])])
    out = set()
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        out.add(candidate if candidate in known else base)
    return out


def import_graph() -> Graph:
    modules = _modules()
    known = set(modules)
    graph: Graph = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _imports(tree):
            for target in _targets(node, name, path.name == "__init__.py", known):
                if target in known and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_no_module_imports_itself_round_a_loop() -> None:
    found = cycles(import_graph())
    assert found == [], "import cycles (each line: the modules of one cycle):\n" + "\n".join(
        " <-> ".join(cycle) for cycle in found
    )


def test_the_check_sees_a_cycle() -> None:
    # The checker itself must be able to fail: a three-module loop and a late import are both found.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    late = ast.parse("def f():\n    from pkg import b\n")
    assert [_targets(n, "pkg.a", False, {"pkg.b"}) for n in _imports(late)] == [{"pkg.b"}]
    guarded = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.b\n")
    assert [_targets(n, "pkg.a", False, {"pkg.b"}) for n in _imports(guarded)][-1] == {"pkg.b"}


# The layer's folders, bottom first: a module imports only from its own folder or one below.
# (intake sits above workflow: it starts the execution with workflow's ExecutionInput.)
LAYERS = ("base", "storage", "providers", "workflow", "intake", "triggers", "api")


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in LAYERS else "base"


def test_the_layer_folders_import_only_downwards() -> None:
    graph = import_graph()
    upward = [
        f"{module} -> {target}"
        for module, targets in sorted(graph.items())
        if module.startswith("batch_gateway.")
        for target in sorted(targets)
        if target.startswith("batch_gateway.") and LAYERS.index(_layer(target)) > LAYERS.index(_layer(module))
    ]
    assert upward == [], "imports against the layer order " + " < ".join(LAYERS) + ":\n" + "\n".join(upward)


def test_the_deployed_package_never_imports_the_local_tooling() -> None:
    graph = import_graph()
    leaks = [
        f"{module} -> {target}"
        for module, targets in sorted(graph.items())
        if module.startswith("batch_gateway.") or module == "batch_gateway"
        for target in targets
        if target.startswith("batch_gateway_local")
    ]
    assert leaks == []


def test_the_emulator_imports_nothing_of_the_local_tooling_around_it() -> None:
    # The emulator sits below the stack: the stack hands it what it needs (Bedrock's act_as hook).
    graph = import_graph()
    outside = [
        f"{module} -> {target}"
        for module, targets in sorted(graph.items())
        if module.startswith("batch_gateway_local.emulator")
        for target in sorted(targets)
        if target.startswith("batch_gateway_local.") and not target.startswith("batch_gateway_local.emulator")
    ]
    assert outside == []
