"""The app's pages in navigation order; a page appears once its file exists (Admin: only with a token)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOME = "home"

# (file relative to the repo root, url path, translation key of the title, icon)
PAGES: list[tuple[str, str, str, str]] = [
    ("views/home.py", "home", "nav.home", ":material/home:"),
    ("views/build.py", "build", "nav.build", ":material/account_tree:"),
    ("views/train.py", "train", "nav.train", ":material/model_training:"),
    ("views/dynamics.py", "dynamics", "nav.dynamics", ":material/monitoring:"),
    ("views/draw.py", "draw", "nav.draw", ":material/draw:"),
    ("views/inside.py", "inside", "nav.inside", ":material/biotech:"),
    ("views/step.py", "step", "nav.step", ":material/slow_motion_video:"),
    ("views/sequences.py", "sequences", "nav.sequences", ":material/view_timeline:"),
    ("views/generate.py", "generate", "nav.generate", ":material/auto_awesome:"),
    ("views/plane.py", "plane", "nav.plane", ":material/scatter_plot:"),
    ("views/mydata.py", "mydata", "nav.mydata", ":material/upload_file:"),
    ("views/guesses.py", "guesses", "nav.guess", ":material/psychology_alt:"),
    ("views/evaluate.py", "evaluate", "nav.evaluate", ":material/fact_check:"),
    ("views/explore.py", "explore", "nav.explore", ":material/travel_explore:"),
    ("views/runs.py", "runs", "nav.runs", ":material/history:"),
    ("views/deploy.py", "deploy", "nav.deploy", ":material/rocket_launch:"),
    ("views/admin.py", "admin", "nav.admin", ":material/admin_panel_settings:"),
]


def available_pages() -> list[tuple[str, str, str, str]]:
    """The pages this server offers: those whose file exists; Admin only when DLPLAY_ADMIN_TOKEN is set."""
    from dlplay.server.admin import admin_token

    admin = admin_token() is not None
    return [p for p in PAGES if (ROOT / p[0]).exists() and (p[1] != "admin" or admin)]


def open_home_by_its_name() -> None:
    """``/home`` opens Home instead of "Page not found" over it.

    Streamlit serves the default page only at the app's root: its own url path matches no request.
    Call before ``st.navigation``; a request for ``/home`` then resolves as one for the root.
    (Uses Streamlit's page manager; where that changes, ``/home`` shows the not-found notice again.)
    """
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

        ctx = get_script_run_ctx()
        if ctx is None:  # bare mode: no page manager, no alias
            return
        pages = ctx.pages_manager
        if (pages.intended_page_name or "").lower() == HOME and not pages.intended_page_script_hash:
            pages.set_script_intent("", "")
    except Exception:  # noqa: BLE001 - bare mode or another Streamlit: no alias, nothing breaks
        return
