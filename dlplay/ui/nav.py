"""The app's pages in navigation order; a page appears once its file exists."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# (file relative to the repo root, url path, translation key of the title, icon)
PAGES: list[tuple[str, str, str, str]] = [
    ("pages/home.py", "home", "nav.home", ":material/home:"),
    ("pages/build.py", "build", "nav.build", ":material/account_tree:"),
    ("pages/train.py", "train", "nav.train", ":material/model_training:"),
    ("pages/dynamics.py", "dynamics", "nav.dynamics", ":material/monitoring:"),
    ("pages/draw.py", "draw", "nav.draw", ":material/draw:"),
    ("pages/inside.py", "inside", "nav.inside", ":material/biotech:"),
    ("pages/sequences.py", "sequences", "nav.sequences", ":material/view_timeline:"),
    ("pages/evaluate.py", "evaluate", "nav.evaluate", ":material/fact_check:"),
    ("pages/runs.py", "runs", "nav.runs", ":material/history:"),
    ("pages/admin.py", "admin", "nav.admin", ":material/admin_panel_settings:"),
]


def available_pages() -> list[tuple[str, str, str, str]]:
    return [p for p in PAGES if (ROOT / p[0]).exists()]
