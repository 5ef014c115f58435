"""The package's import graph has no circle: every module can be imported on its own, and a lower
layer never reaches back into a higher one (imports inside functions count: they are circles that
only hide until a call)."""

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = Path(REPO) / "facexai"


def is_main_guard(node: ast.AST) -> bool:
    """`if __name__ == "__main__":` runs when the file is a script, a module of its own (`__main__`),
    never while the package imports it: its imports are not edges of the package's graph."""
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def imported(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    package = module if is_package else module.rpartition(".")[0]
    out = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if is_main_guard(node):
            continue
        stack.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target in known:
                out.add(target)
            out |= {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known}
    return out


def import_graph(repo: Path = Path(REPO), root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere in its body but a main guard)."""
    files = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(repo).with_suffix("").parts
        files[".".join(parts[:-1] if path.name == "__init__.py" else parts)] = path
    return {m: imported(ast.parse(p.read_text()), m, p.name == "__init__.py", set(files)) - {m}
            for m, p in files.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
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
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
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
                    out.append(sorted(component))
    return out


def test_the_walker_finds_a_circle(tmp_path):
    # a package whose a imports b at the top and b imports a inside a function: one circle
    pkg = tmp_path / "facexai"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub/__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub/b.py").write_text("def f():\n    from .. import a\n")
    (pkg / "c.py").write_text("from . import a\nif __name__ == '__main__':\n    from . import c2\n")
    (pkg / "c2.py").write_text("from . import c\n")
    graph = import_graph(tmp_path, pkg)
    assert graph["facexai.a"] == {"facexai.sub", "facexai.sub.b"}
    assert graph["facexai.sub.b"] == {"facexai", "facexai.a"}
    assert circles(graph) == [["facexai.a", "facexai.sub.b"]]  # c -> c2 only under the main guard


def test_no_import_circle_in_the_package():
    found = circles(import_graph())
    assert found == [], "import circles (modules that reach each other): " + "; ".join(" <-> ".join(c) for c in found)
