"""Everything the app imports (and the exporters it offers need) is pinned in requirements.txt.

The README installs requirements.txt only, so an import that only requirements-dev.txt satisfies
works in the tests and fails for a learner (the ONNX export did exactly that).
"""
from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

from dlplay.classify.checkpoint import EXPORT_MODULES

REPO = Path(__file__).resolve().parents[1]
LOCAL = {"dlplay", "views", "app"}


def app_files() -> list[Path]:
    return [REPO / "app.py", *sorted((REPO / "views").glob("*.py")), *sorted((REPO / "dlplay").rglob("*.py"))]


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every absolute import in a file, inside functions too."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def third_party_modules() -> dict[str, set[str]]:
    """module -> the files importing it, for modules neither in the standard library nor the app's own."""
    found: dict[str, set[str]] = {}
    for path in app_files():
        for name in imported_modules(path):
            if name in sys.stdlib_module_names or name in LOCAL or name == "__future__":
                continue
            found.setdefault(name, set()).add(str(path.relative_to(REPO)))
    for kind, modules in EXPORT_MODULES.items():  # imported by torch on the exporter's behalf
        for name in modules:
            found.setdefault(name, set()).add(f"checkpoint export ({kind})")
    return found


# optional requirement files, and the only folder whose imports they may satisfy
OPTIONAL = {"requirements-cluster.txt": "dlplay/cluster/"}


def pinned(file: str = "requirements.txt") -> dict[str, str]:
    """Distribution name (normalised) -> version, from a requirements file (``-r`` lines skipped)."""
    pins = {}
    for line in (REPO / file).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pins[normalise(name)] = version.strip()
    return pins


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_scan_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import os\n\ndef f():\n    import onnx.helper\n    from pandas import DataFrame\n"
                      "    from . import sibling\n")
    assert imported_modules(source) == {"os", "onnx", "pandas"}


def test_every_third_party_import_is_pinned_in_requirements_txt():
    dists = importlib.metadata.packages_distributions()
    pins = pinned()
    unpinned = {}
    for module, files in sorted(third_party_modules().items()):
        candidates = {normalise(d) for d in dists.get(module, [module])}
        if candidates & set(pins):
            continue
        optional = [folder for file, folder in OPTIONAL.items() if candidates & set(pinned(file))]
        if optional and all(f.startswith(tuple(optional)) for f in files):
            continue  # e.g. ray: only dlplay/cluster imports it, and only with DLPLAY_RAY_ADDRESS set
        unpinned[module] = sorted(files)
    assert not unpinned, f"imported but not pinned in requirements.txt: {unpinned}"


def test_pins_match_the_installed_versions():
    """The versions the tests ran against are the ones a learner installs."""
    for file in ["requirements.txt", *OPTIONAL]:
        for name, version in pinned(file).items():
            assert importlib.metadata.version(name).split("+")[0] == version, name  # torch: 2.13.0+cpu


def test_the_cluster_requirements_add_ray_to_the_app_and_the_tests_install_them():
    lines = (REPO / "requirements-cluster.txt").read_text(encoding="utf-8").splitlines()
    assert "-r requirements.txt" in lines
    assert "ray" in pinned("requirements-cluster.txt")
    assert "-r requirements-cluster.txt" in (REPO / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
    assert "ray" not in pinned()  # a single learner does not need it
