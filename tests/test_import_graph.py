"""The arrows between dlplay's modules point one way: the import graph of dlplay/ (read from the source,
imports inside functions included) has no cycle; only dlplay/ui imports streamlit; the training path
pulls in neither streamlit nor plotly, so a worker can run it with torch and numpy alone."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "dlplay"
# the modules a training worker needs (the registries too, once they exist)
TRAINING_PATH = ("data.datasets", "nn.spec", "nn.model", "classify.train", "classify.probe", "run.metrics",
                 "run.status", "server.handle", "nn.activations", "nn.layers", "nn.optimizers")
UI = "dlplay.ui"


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = REPO) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted((root / "dlplay").rglob("*.py"))}


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside ``if TYPE_CHECKING:`` (never executed)."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(name: str, path: Path, known: set[str]) -> tuple[set[str], set[str]]:
    """(dlplay modules, top-level outside packages) that ``name`` imports at run time."""
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    inside, outside = set(), set()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # ``from pkg import sub`` imports the submodule; ``from mod import name`` the module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            if target == "dlplay" or target.startswith("dlplay."):
                while target not in known and "." in target:
                    target = target.rpartition(".")[0]
                if target in known and target != name:
                    inside.add(target)
            else:
                outside.add(target.split(".")[0])
    return inside, outside


def graph(root: Path = REPO) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    mods = modules(root)
    inside, outside = {}, {}
    for name, path in mods.items():
        inside[name], outside[name] = imports_of(name, path, set(mods))
    return inside, outside


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle (``a -> b -> a``) if the graph has any."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def reachable(edges: dict[str, set[str]], starts: list[str]) -> set[str]:
    seen, todo = set(), list(starts)
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges.get(node, ()))
    return seen


def test_the_import_graph_of_dlplay_has_no_cycle():
    inside, _ = graph()
    assert len(inside) > 20 and sum(map(len, inside.values())) > 40  # the walk sees the package and its arrows
    assert find_cycle(inside) is None, " -> ".join(find_cycle(inside))


def test_only_dlplay_ui_imports_streamlit():
    _, outside = graph()
    core = sorted(m for m in outside if m != UI and not m.startswith(UI + "."))
    assert len(core) > 15
    assert [m for m in core if "streamlit" in outside[m]] == []


def test_the_training_path_needs_neither_streamlit_nor_plotly():
    inside, outside = graph()
    starts = [f"dlplay.{m}" for m in TRAINING_PATH if f"dlplay.{m}" in inside]
    assert {"dlplay.classify.train", "dlplay.nn.model", "dlplay.data", "dlplay.classify.handle"} <= set(starts)
    pulled = reachable(inside, starts)
    offenders = {m: sorted(outside[m] & {"streamlit", "plotly"}) for m in pulled if outside[m] & {"streamlit", "plotly"}}
    assert offenders == {}, f"the training path {sorted(pulled)} imports {offenders}"


def test_the_checks_see_a_cycle_and_a_stray_import(tmp_path):
    pkg = tmp_path / "dlplay"
    (pkg / "ui").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "ui" / "__init__.py").write_text("")
    (pkg / "ui" / "state.py").write_text("import streamlit as st\nfrom dlplay.ui.runs import x\n")
    (pkg / "ui" / "runs.py").write_text("def f():\n    from dlplay.ui import state\n")
    (pkg / "train.py").write_text("from .figures import plot\nfrom typing import TYPE_CHECKING\n"
                                  "if TYPE_CHECKING:\n    from .ui import state\n")
    (pkg / "figures.py").write_text("import plotly.graph_objects as go\n")
    inside, outside = graph(tmp_path)
    assert find_cycle(inside) == ["dlplay.ui.runs", "dlplay.ui.state", "dlplay.ui.runs"]
    assert inside["dlplay.classify.train"] == {"dlplay.figures"}  # the TYPE_CHECKING import does not count
    assert "plotly" in outside["dlplay.figures"] and "streamlit" in outside["dlplay.ui.state"]
    assert reachable(inside, ["dlplay.classify.train"]) == {"dlplay.classify.train", "dlplay.figures"}
