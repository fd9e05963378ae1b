"""Project hygiene: CI runs the README's test command; the core never imports streamlit."""
import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)


def test_readme_has_two_commands_and_ci_runs_the_test_command_verbatim():
    commands = readme_commands()
    assert len(commands) == 2
    install_and_start, test = commands
    assert "streamlit run app.py" in install_and_start
    assert "requirements.txt" in install_and_start
    assert "pytest" in test
    assert "chromium" in test
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert test in ci.splitlines()


def test_core_package_does_not_import_streamlit_and_only_figures_import_plotly():
    core = [p for p in (REPO / "dlplay").rglob("*.py") if p.relative_to(REPO / "dlplay").parts[0] != "ui"]
    assert len(core) > 30
    assert (REPO / "dlplay" / "figures" / "style.py") in core
    for path in core:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        assert "streamlit" not in names, path
        if path.relative_to(REPO / "dlplay").parts[0] != "figures":
            assert "plotly" not in names, path


def test_requirements_pin_the_cpu_and_cuda_capable_torch():
    reqs = (REPO / "requirements.txt").read_text().split()
    assert "torch==2.13.0" in reqs
    pins = [l for l in (REPO / "requirements.txt").read_text().splitlines() if l and not l.startswith("#")]
    assert pins
    assert all("==" in l for l in pins)


def test_ci_runs_ruff_and_mypy_after_the_test_command_and_benches_need_no_path_edits():
    _, test = readme_commands()
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert ci.index(test) < ci.index(".venv/bin/ruff check .") < ci.index(".venv/bin/mypy")
    assert "-e ." in (REPO / "requirements-dev.txt").read_text().splitlines()  # dlplay installs editable
    for path in (REPO / "bench").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "sys.path.insert(0, str(REPO))" not in text, path  # benches import the installed dlplay


def test_the_installed_package_has_every_subpackage():
    """pyproject's package list finds every folder of dlplay/ with an __init__.py (a wheel without
    dlplay.figures or dlplay.server would fail at import)."""
    import tomllib

    from setuptools import find_packages

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    found = set(find_packages(str(REPO), include=config["include"]))
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "dlplay").rglob("__init__.py")}
    assert on_disk <= found, sorted(on_disk - found)
