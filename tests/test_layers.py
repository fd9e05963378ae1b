"""The layers of dlplay: import-linter's contracts in pyproject.toml hold (arrows point down only, also at
type level; only dlplay.ui imports streamlit, only dlplay.figures plotly), and no module imports itself
through others: no circle, TYPE_CHECKING imports included."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]


def cycles(package: str) -> list[list[str]]:
    """The strongly connected groups of more than one module in ``package``'s import graph (Tarjan)."""
    graph = grimp.build_graph(package, cache_dir=None)
    edges = {m: {t for t in graph.find_modules_directly_imported_by(m) if t.split(".")[0] == package and t != m}
             for m in graph.modules if m.split(".")[0] == package}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    code = "import sys; sys.argv = ['lint-imports', '--no-cache']; from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run([sys.executable, "-c", code],
                          cwd=cwd, capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(cwd), "PATH": ""})


def test_dlplay_has_no_circle_even_at_type_level():
    assert cycles("dlplay") == []


def test_the_import_linter_contracts_hold():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


def test_the_checks_see_a_circle_and_an_upward_arrow(tmp_path, monkeypatch):
    """A package with a circle through a TYPE_CHECKING import, and its lower layer importing streamlit."""
    pkg = tmp_path / "toy"
    (pkg / "low").mkdir(parents=True)
    (pkg / "high").mkdir()
    for init in (pkg, pkg / "low", pkg / "high"):
        (init / "__init__.py").write_text("")
    (pkg / "low" / "a.py").write_text("from toy.low import b\n")
    (pkg / "low" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from toy.low import a\n")
    (pkg / "low" / "c.py").write_text("from toy.high import d\nimport streamlit\n")
    (pkg / "high" / "d.py").write_text("from toy.low import a\n")
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent("""
        [tool.importlinter]
        root_package = "toy"
        include_external_packages = true

        [[tool.importlinter.contracts]]
        name = "layers"
        type = "layers"
        layers = ["toy.high", "toy.low"]

        [[tool.importlinter.contracts]]
        name = "no streamlit below"
        type = "forbidden"
        source_modules = ["toy.low"]
        forbidden_modules = ["streamlit"]
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert ["toy.low.a", "toy.low.b"] in cycles("toy")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "toy.low.c -> toy.high.d" in result.stdout
    assert "Contracts: 0 kept, 2 broken." in result.stdout
